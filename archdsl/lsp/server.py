"""The language server: open documents, one analysis worker, and the LSP handlers (pygls).

Analyses run on a worker thread, never on the event loop, so that requests keep being
answered while a big spec expands; a document changed again while its analysis runs is
analysed once more afterwards, and the stale result is dropped (a queued analysis of an
old version never starts). Requests about a document wait for the analysis of its current
text, at most `FRESH_WAIT` seconds, then answer from the latest one there is. Any failure
inside a handler is logged and answered with an empty result: the server never dies on a
spec.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import JsonRPCNotification, LanguageServerProtocol

from .. import __version__
from ..errors import Span
from .actions import code_actions
from .analysis import Analysis, analyse, reachable
from .completion import completion
from .definition import definition
from .diagnostics import diagnostics
from .hover import hover
from .inlay import inlay_hints
from .positions import Lines
from .symbols import symbols

log = logging.getLogger("archdsl.lsp")
FRESH_WAIT = 2.0  # seconds a request waits for the analysis of the current text
MAX_SCANNED = 500  # spec files looked at for the specs that use a library


@dataclass
class Document:
    uri: str
    path: Path | None
    text: str
    version: int
    changed: float = field(default_factory=time.monotonic)
    analysis: Analysis | None = None  # the latest finished, perhaps of an older version
    analysed: int | None = None  # the version `analysis` is of
    tree: Analysis | None = None  # the latest analysis with a syntax tree (completion reads names from it)
    waiters: list[asyncio.Future] = field(default_factory=list)
    _imports: tuple[int, set[Path]] | None = None

    def imports(self, files: dict[Path, str]) -> set[Path]:
        """Every file this document uses, directly or not (cached per version)."""
        if self.path is None:
            return set()
        if self._imports is None or self._imports[0] != self.version:
            self._imports = (self.version, reachable(self.path, files))
        return self._imports[1]


def _may_be_library(text: str) -> bool:
    """No `input` line: the text may be a library of blocks, shown in a spec that uses it."""
    return re.search(r"^[ \t]*input\b", text, re.MULTILINE) is None


def path_of(uri: str) -> Path | None:
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme != "file":
        return None
    return Path(urllib.parse.unquote(parsed.path)).resolve()


# What a message that does not read as LSP's becomes: a notification nothing answers (see Protocol).
UNREADABLE = "$/archdsl/unreadable"


class _OneLine(logging.Filter):
    """pygls logs a traceback for every message it cannot read (bytes that are no JSON, JSON that is
    no LSP message): the client's fault, not a bug to debug. One line says what it was instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("Unable to deserialize message"):
            return False  # Protocol.structure_message logs it
        if str(record.msg).startswith("Unable to handle message") and record.exc_info:
            exc = record.exc_info[1]
            record.msg, record.args = "a message that does not read as JSON-RPC was ignored (%s: %s)", (
                type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
            record.exc_info = record.exc_text = None
        return True


for _name in ("pygls.protocol.json_rpc", "pygls.io_", "pygls.server"):
    logging.getLogger(_name).addFilter(_OneLine())


class Protocol(LanguageServerProtocol):
    """pygls's protocol, but a request whose params do not read (a negative position, a number for a
    uri) is answered with JSON-RPC's Invalid Params error: pygls drops it, and the editor then waits
    for a reply that never comes. The log gets one line, not a traceback."""

    def structure_message(self, data):
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            method = data.get("method")
            log.warning("a message for %r does not read as LSP's (%s); %s", method, exc.message,
                        "answered with an error" if "id" in data and method else "ignored")
            if "id" in data and method:
                error = JsonRpcInvalidParams(f"{method}: the params do not read as LSP's")
                self._send_response(data["id"], error=error.to_response_error())
            return JsonRPCNotification(method=UNREADABLE, jsonrpc=self.VERSION, params=None)


class ArchServer(LanguageServer):
    def __init__(self):
        super().__init__("archdsl", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Full,
                         protocol_cls=Protocol)
        self.documents: dict[str, Document] = {}
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archdsl-analysis")
        self.queue: dict[str, None] = {}  # documents waiting for an analysis, oldest first
        self.draining = False
        self.shape_hints = True

    # ---- analysis scheduling ----
    def request(self, uri: str) -> None:
        self.queue.pop(uri, None)
        self.queue[uri] = None
        if not self.draining:
            self.draining = True
            asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.queue:
                uri = next(iter(self.queue))
                del self.queue[uri]
                doc = self.documents.get(uri)
                if doc is None:
                    continue
                version, text = doc.version, doc.text
                files = self.buffers()
                importers = self.importers(doc, files) if _may_be_library(text) else ()
                try:
                    result = await loop.run_in_executor(
                        self.executor, functools.partial(analyse, text, doc.path, files=files, importers=importers))
                except Exception:  # noqa: BLE001 - analyse catches what a spec can cause; this is a bug
                    log.exception("analysis of %s failed", uri)
                    continue
                if self.documents.get(uri) is not doc or doc.version != version:
                    continue  # changed meanwhile: the newer text is queued already
                self.finished(doc, result)
        finally:
            self.draining = False

    def finished(self, doc: Document, result: Analysis) -> None:
        doc.analysis, doc.analysed = result, doc.version
        if result.spec is not None:
            doc.tree = result
        lines = Lines(doc.text, self.encoding)
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=doc.uri, diagnostics=diagnostics(result, lines), version=doc.version))
        for waiter in doc.waiters:
            if not waiter.done():
                waiter.set_result(None)
        doc.waiters.clear()

    async def fresh(self, uri: str) -> Document | None:
        """The document, once the analysis of its current text is there (or FRESH_WAIT has passed)."""
        doc = self.documents.get(uri)
        if doc is None or doc.analysed == doc.version:
            return doc
        waiter = asyncio.get_running_loop().create_future()
        doc.waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, FRESH_WAIT)
        except asyncio.TimeoutError:
            pass
        return doc

    def changed(self, doc: Document) -> None:
        """Analyse `doc`, and the open documents whose analysis reads it (its importers, or its libraries)."""
        self.request(doc.uri)
        if doc.path is None:
            return
        files = self.buffers()
        for other in self.documents.values():
            if other is doc:
                continue
            context = other.analysis.context if other.analysis is not None else None
            if context == doc.path or doc.path in other.imports(files):
                self.request(other.uri)

    # ---- what the analysis reads besides the document ----
    def buffers(self) -> dict[Path, str]:
        """The open documents' texts, which win over the files on disk."""
        return {d.path: d.text for d in self.documents.values() if d.path is not None}

    def importers(self, doc: Document, files: dict[Path, str]) -> list[Path]:
        """Specs that use the library `doc`: open ones first (the latest edited first), then files nearby."""
        if doc.path is None:
            return []
        found = [d.path for d in sorted(self.documents.values(), key=lambda d: -d.changed)
                 if d is not doc and d.path is not None and doc.path in d.imports(files)]
        for path in self._nearby_specs(doc.path):
            if path not in found and path != doc.path and doc.path in reachable(path, files):
                found.append(path)
        return found

    def _nearby_specs(self, path: Path) -> list[Path]:
        roots = [path.parent, path.parent.parent]
        for folder in self.workspace.folders.values():
            folder_path = path_of(folder.uri)
            if folder_path is not None:
                roots.append(folder_path)
        found: list[Path] = []
        for root in dict.fromkeys(roots):
            for candidate in sorted(root.glob("*.arch")):
                if len(found) >= MAX_SCANNED:
                    return found
                found.append(candidate.resolve())
        return list(dict.fromkeys(found))

    @property
    def encoding(self) -> str:
        return self.server_capabilities.position_encoding or types.PositionEncodingKind.Utf16

    def lines(self, doc: Document) -> Lines:
        return Lines(doc.text, self.encoding)

    def uri_of(self, span: Span, doc: Document) -> str:
        if doc.analysis is not None and doc.analysis.mine(span):
            return doc.uri
        return Path(span.source.name).resolve().as_uri()


server = ArchServer()


def safe(default):
    """Log a handler's failure and answer `default`: a bug in one feature must not end the session."""
    def wrap(handler):
        @functools.wraps(handler)
        async def run(ls: ArchServer, params):
            try:
                return await handler(ls, params)
            except Exception:  # noqa: BLE001
                log.exception("%s failed", handler.__name__)
                return default
        return run
    return wrap


@server.feature(UNREADABLE)
def unreadable(ls: ArchServer, params) -> None:
    """A message Protocol could not read: already answered or logged."""


# ---- documents ----


@server.feature(types.INITIALIZE)
def initialize(ls: ArchServer, params: types.InitializeParams) -> None:
    options = params.initialization_options or {}
    ls.shape_hints = _shape_hints(options, ls.shape_hints)


def _shape_hints(settings, default: bool) -> bool:
    """`{"inlayHints": {"shapes": false}}`, also under an `archdsl` key (VS Code's settings)."""
    if not isinstance(settings, dict):
        return default
    settings = settings.get("archdsl", settings)
    hints = settings.get("inlayHints", {}) if isinstance(settings, dict) else {}
    value = hints.get("shapes", default) if isinstance(hints, dict) else default
    return value if isinstance(value, bool) else default


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
def did_change_configuration(ls: ArchServer, params: types.DidChangeConfigurationParams) -> None:
    ls.shape_hints = _shape_hints(params.settings, ls.shape_hints)


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: ArchServer, params: types.DidOpenTextDocumentParams) -> None:
    item = params.text_document
    doc = Document(item.uri, path_of(item.uri), item.text, item.version)
    ls.documents[item.uri] = doc
    ls.changed(doc)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: ArchServer, params: types.DidChangeTextDocumentParams) -> None:
    doc = ls.documents.get(params.text_document.uri)
    if doc is None or not params.content_changes:
        return
    doc.text = params.content_changes[-1].text  # full sync: each change is the whole text
    doc.version = params.text_document.version
    doc.changed = time.monotonic()
    ls.changed(doc)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: ArchServer, params: types.DidSaveTextDocumentParams) -> None:
    doc = ls.documents.get(params.text_document.uri)
    if doc is not None:
        ls.changed(doc)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: ArchServer, params: types.DidCloseTextDocumentParams) -> None:
    doc = ls.documents.pop(params.text_document.uri, None)
    if doc is not None:
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=doc.uri, diagnostics=[]))
        for waiter in doc.waiters:
            if not waiter.done():
                waiter.set_result(None)


# ---- requests ----


@server.feature(types.TEXT_DOCUMENT_HOVER)
@safe(None)
async def on_hover(ls: ArchServer, params: types.HoverParams):
    doc = await ls.fresh(params.text_document.uri)
    if doc is None or doc.analysis is None:
        return None
    return hover(doc.analysis, ls.lines(doc), params.position)


@server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=["@", "(", ",", "=", '"']))
@safe(None)
async def on_completion(ls: ArchServer, params: types.CompletionParams):
    doc = await ls.fresh(params.text_document.uri)
    if doc is None:
        return None
    return completion(doc.tree, ls.lines(doc), params.position)


@server.feature(types.TEXT_DOCUMENT_DEFINITION)
@safe([])
async def on_definition(ls: ArchServer, params: types.DefinitionParams):
    doc = await ls.fresh(params.text_document.uri)
    if doc is None or doc.tree is None:
        return []
    return definition(doc.tree, ls.lines(doc), params.position, lambda span: ls.uri_of(span, doc))


@server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
@safe([])
async def on_symbols(ls: ArchServer, params: types.DocumentSymbolParams):
    doc = await ls.fresh(params.text_document.uri)
    if doc is None or doc.tree is None:
        return []
    return symbols(doc.tree, ls.lines(doc))


@server.feature(types.TEXT_DOCUMENT_INLAY_HINT, types.InlayHintOptions(resolve_provider=False))
@safe([])
async def on_inlay_hints(ls: ArchServer, params: types.InlayHintParams):
    doc = await ls.fresh(params.text_document.uri)
    if doc is None or doc.analysis is None or not ls.shape_hints or doc.analysed != doc.version:
        return []
    wanted = params.range
    return inlay_hints(doc.analysis, ls.lines(doc), wanted.start.line + 1, wanted.end.line + 1)


@server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]))
@safe([])
async def on_code_action(ls: ArchServer, params: types.CodeActionParams):
    doc = await ls.fresh(params.text_document.uri)
    if doc is None or doc.analysis is None or doc.analysed != doc.version:
        return []
    return code_actions(doc.analysis, ls.lines(doc), doc.uri, params.range)


@server.feature(types.TEXT_DOCUMENT_FORMATTING)
@safe(None)
async def on_formatting(ls: ArchServer, params: types.DocumentFormattingParams):
    """`archdsl fmt` on the buffer: one edit replacing the whole text (none where it does not parse)."""
    from ..errors import ArchError
    from ..formatter import format_text

    doc = ls.documents.get(params.text_document.uri)
    if doc is None:
        return None
    try:
        formatted = format_text(doc.text, doc.uri, doc.path, ls.buffers())
    except ArchError:
        return None
    if formatted == doc.text:
        return []
    lines = ls.lines(doc)
    end = lines.position(len(lines.lines), len(lines.lines[-1]) + 1)
    return [types.TextEdit(range=types.Range(start=types.Position(0, 0), end=end), new_text=formatted)]


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="archdsl lsp: %(levelname)s: %(message)s")
    server.start_io()
    return 0

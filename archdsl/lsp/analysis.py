"""One document's analysis: what `archdsl check` finds in it, and what is where in its text.

`analyse(text, path, …)` parses the text, resolves its `use` imports (unsaved buffers of
other open files win over the disk: `files`), expands and checks it, and keeps every stage's
result, so that an editor still has the syntax tree when the expansion fails. A library
(blocks only, no `input`) has no network of its own: it is shown inside the network of a
spec that uses it (`importers`), so that hovering `conv3-c/s` in a block shows every layer
that token became there.

Problems are placed in this document: an error inside a `use`d file is shown at the `use`
line that brings that file in, with the real place as its `origin`.
"""
from __future__ import annotations

import dataclasses
import enum
import gc
import functools
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

from .. import ast
from ..errors import ArchError, Source, Span
from ..expand import MAX_LAYERS, FileContext
from ..ir import BlockInstance, Layer
from ..loader import Loader, build_network, display_name
from ..network import Network
from ..parser import parse
from .positions import contains, span_key

UNTITLED = "<untitled>"
# How many specs that use a library are tried, in turn, for one whose network shows it.
MAX_IMPORTERS = 3
_USE = re.compile(r'^[ \t]*use[ \t]+"([^"\n]*)"', re.MULTILINE)


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """An error or warning, placed in the analysed document; `origin` is its real place in another file."""

    severity: Severity
    message: str
    span: Span
    origin: Span | None = None


@dataclass
class Analysis:
    source: Source
    path: Path | None
    spec: ast.Spec | None = None
    ctx: FileContext | None = None
    net: Network | None = None
    context: Path | None = None  # a library: the spec whose network shows it
    problems: list[Problem] = field(default_factory=list)
    seconds: float = 0.0

    # ---- what is where ----
    def mine(self, span: Span | None) -> bool:
        """Whether a span is in this document (the same file, as this text)."""
        return span is not None and span.source.name == self.source.name and span.source.text == self.source.text

    @functools.cached_property
    def layers_at(self) -> dict[tuple, list[Layer]]:
        """The layers each written token of this document became (one per expansion)."""
        found: dict[tuple, list[Layer]] = {}
        if self.net is not None:
            for layer in self.net.layers:
                if self.mine(layer.span) and not layer.inserted:
                    found.setdefault(span_key(layer.span), []).append(layer)
        return found

    @functools.cached_property
    def blocks_at(self) -> dict[tuple, list[BlockInstance]]:
        """The block instances (calls and composites) each term of this document became."""
        found: dict[tuple, list[BlockInstance]] = {}
        if self.net is not None:
            for block in self.net.blocks.values():
                if not block.kind.is_part and self.mine(block.span):
                    found.setdefault(span_key(block.span), []).append(block)
        return found

    @functools.cached_property
    def outputs_at(self) -> dict[tuple, list[str]]:
        """The tensor each term of this document ended on, once per expansion."""
        if self.net is None:
            return {}
        return {span_key(span): nodes for span, nodes in self.net.graph.term_outputs.items() if self.mine(span)}

    @functools.cached_property
    def warnings_at(self) -> dict[tuple, list[str]]:
        found: dict[tuple, list[str]] = {}
        for problem in self.problems:
            if problem.severity is Severity.WARNING and problem.origin is None:
                found.setdefault(span_key(problem.span), []).append(problem.message)
        return found

    @functools.cached_property
    def _instance_layers(self) -> dict[str, list[Layer]]:
        found: dict[str, list[Layer]] = {}
        if self.net is not None:
            for layer in self.net.layers:
                for instance in layer.scope:
                    found.setdefault(instance, []).append(layer)
        return found

    def layers_in(self, instance: str) -> list[Layer]:
        """Every layer a block instance holds, in the order they were built."""
        return self._instance_layers.get(instance, [])

    def nodes_at(self, line: int, col: int) -> list:
        """The syntax tree's nodes at a 1-based position, outermost first (empty without a tree)."""
        if self.spec is None:
            return []
        chain = []
        children = list(roots(self.spec))
        while True:
            inner = next((n for n in children if contains(n.span, line, col)), None)
            if inner is None:
                return chain
            chain.append(inner)
            children = list(children_of(inner))


# ---- the syntax tree, walked generically (new constructs need no change here) ----


def roots(spec: ast.Spec) -> Iterator:
    """The file's statements and top-level terms."""
    yield from spec.uses
    yield from spec.blocks
    yield from spec.afters
    yield from spec.defaults
    yield from spec.train
    yield from spec.body


def children_of(node) -> Iterator:
    """The nodes directly inside `node`: every field that holds a spanned dataclass, or a tuple of them."""
    if not dataclasses.is_dataclass(node):
        return
    for f in dataclasses.fields(node):
        if f.name in ("span", "name_span", "source"):
            continue
        yield from _spanned(getattr(node, f.name))


def _spanned(value) -> Iterator:
    if isinstance(value, (tuple, list)):
        for item in value:
            yield from _spanned(item)
    elif dataclasses.is_dataclass(value) and isinstance(getattr(value, "span", None), Span):
        yield value


def walk(node) -> Iterator:
    """`node` and every node inside it, in source order."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(list(children_of(current))))


def all_nodes(spec: ast.Spec) -> Iterator:
    for root in roots(spec):
        yield from walk(root)


def block_around(chain: Sequence) -> ast.BlockDef | None:
    """The block definition a position is inside, from `nodes_at`'s chain (None: the file's top level)."""
    return next((n for n in reversed(chain) if isinstance(n, ast.BlockDef)), None)


def names_in_scope(spec: ast.Spec, block: ast.BlockDef | None) -> list[ast.NameAs]:
    """The `-> name`s written in a block's body, or at the top level (with composites', which share it)."""
    scope_roots = [block.body] if block is not None else list(spec.body)
    return [n for root in scope_roots for n in walk(root) if isinstance(n, ast.NameAs)]


# ---- imports ----


def locate_use(written: str, importer: Path, root: Path) -> Path | None:
    """The file a `use "written"` in `importer` reads when `root`'s spec is checked, found as the
    loader finds it (beside the importer, then on ARCHDSL_PATH), or None where the loader refuses it."""
    loader = Loader()
    loader.root = root
    try:
        return loader.locate(ast.Use(written, Span(Source(str(importer), ""), 1, 1, 1, 1)), importer)[1]
    except ArchError:
        return None


def used_paths(text: str, importer: Path, root: Path) -> list[Path]:
    """The files a spec's `use` lines name (read from the text alone), resolved as the loader does."""
    found = (locate_use(m.group(1), importer, root) for m in _USE.finditer(text))
    return [path for path in found if path is not None]


def reachable(path: Path, files: Mapping[Path, str], limit: int = 200, root: Path | None = None) -> set[Path]:
    """Every file `path` uses, directly or through other files (cycles and unreadable files stop the walk),
    when the spec in `root` (by default `path`'s folder) is checked."""
    root = root or path.parent
    seen: set[Path] = set()
    stack = [path]
    while stack and len(seen) < limit:
        current = stack.pop()
        text = files.get(current)
        if text is None:
            try:
                text = current.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
        for used in used_paths(text, current, root):
            if used not in seen:
                seen.add(used)
                stack.append(used)
    return seen


# ---- the analysis ----


def source_name(path: Path | None) -> str:
    """The name spans carry: as the loader names `use`d files, so that a library's spans match."""
    return display_name(path) if path is not None else UNTITLED


def is_library(spec: ast.Spec) -> bool:
    return spec.input is None and not spec.body


def analyse(text: str, path: Path | None, *, files: Mapping[Path, str] | None = None,
            importers: Iterable[Path] = (), max_layers: int = MAX_LAYERS) -> Analysis:
    """Everything `archdsl check` finds in `text` (the document at `path`), kept stage by stage."""
    start = time.perf_counter()
    collecting = gc.isenabled()
    gc.disable()  # as `archdsl check` does: many small objects, few cycles; collecting while the graph grows costs ~15%
    try:
        return _analyse(text, path, files, importers, max_layers, start)
    finally:
        if collecting:
            gc.enable()


def _analyse(text, path, files, importers, max_layers, start) -> Analysis:
    path = path.resolve() if path is not None else None
    files = {Path(p).resolve(): t for p, t in (files or {}).items()}
    if path is not None:
        files[path] = text
    result = Analysis(Source(source_name(path), text), path)
    try:
        _run(result, files, importers, max_layers)
    except ArchError as err:
        _report(result, Severity.ERROR, err.message, err.span, files)
    except (RecursionError, MemoryError, Exception) as exc:  # a bug in archdsl: shown, never fatal to the server
        result.problems.append(Problem(
            Severity.ERROR, f"archdsl internal error: {type(exc).__name__}: {exc} (please report it)",
            Span(result.source, 1, 1, 1, 1)))
    result.seconds = time.perf_counter() - start
    return result


def _run(result: Analysis, files: dict[Path, str], importers: Iterable[Path], max_layers: int) -> None:
    result.spec = parse(result.source)
    result.ctx = Loader(files).main_context(result.spec, result.path)
    if not is_library(result.spec) or result.path is None:
        result.net = build_network(result.spec, result.ctx, result.path, max_layers=max_layers)
        for warning in result.net.warnings:
            _report(result, Severity.WARNING, warning.message, warning.span, files)
        return
    for importer in list(importers)[:MAX_IMPORTERS]:  # a library: shown in a network that uses it
        if _in_context(result, importer, files, max_layers):
            return


def _in_context(result: Analysis, importer: Path, files: dict[Path, str], max_layers: int) -> bool:
    """Load `importer` with this library's text; keep its network, and the problems that are this library's."""
    importer = importer.resolve()
    try:
        text = files[importer] if importer in files else importer.read_text(encoding="utf-8")
        source = Source(source_name(importer), text)
        spec = parse(source)
        ctx = Loader(files).main_context(spec, importer)
        net = build_network(spec, ctx, importer, max_layers=max_layers)
    except ArchError as err:
        if result.mine(err.span):
            result.problems.append(Problem(Severity.ERROR, err.message, err.span))
            return True
        return False
    except (OSError, UnicodeDecodeError):
        return False
    result.net, result.context = net, importer
    for warning in net.warnings:
        if result.mine(warning.span):
            result.problems.append(Problem(Severity.WARNING, warning.message, warning.span))
    return True


def _report(result: Analysis, severity: Severity, message: str, span: Span | None, files: Mapping[Path, str]) -> None:
    if span is None:
        result.problems.append(Problem(severity, message, Span(result.source, 1, 1, 1, 1)))
    elif result.mine(span):
        result.problems.append(Problem(severity, message, span))
    else:
        use = _use_leading_to(result, Path(span.source.name).resolve(), files)
        where = use.span if use is not None else Span(result.source, 1, 1, 1, 1)
        result.problems.append(Problem(severity, f"{span}: {message}", where, origin=span))


def _use_leading_to(result: Analysis, target: Path, files: Mapping[Path, str]) -> ast.Use | None:
    """The `use` of this document through which `target` was read."""
    if result.spec is None:
        return None
    importer = result.path if result.path is not None else Path.cwd() / "spec.arch"
    for use in result.spec.uses:
        used = locate_use(use.path, importer, importer.parent)
        if used is not None and (used == target or target in reachable(used, files, root=importer.parent)):
            return use
    return None

"""A real LSP client for `archdsl lsp` (pytest-lsp's, on pygls): the tests and benchmarks/lsp_latency.py
drive the server through it. It keeps every publishDiagnostics, with its version and arrival time."""
from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features
from pygls.protocol import default_converter

REPO = Path(__file__).resolve().parents[1]
PUBLISH = types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS


def _published(client: LanguageClient, params: types.PublishDiagnosticsParams) -> None:
    client.diagnostics[params.uri] = params.diagnostics
    client.published.append((time.perf_counter(), params))


def make_client() -> LanguageClient:
    client = LanguageClient(converter_factory=default_converter)
    register_lsp_features(client, {**DEFAULT_CLIENT_FEATURES, PUBLISH: _published})
    client.published = []
    return client


def config(**env) -> ClientServerConfig:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    environment.pop("ARCHDSL_DEBUG", None)
    return ClientServerConfig(server_command=[sys.executable, "-m", "archdsl", "lsp"], client_factory=make_client,
                              server_env={**environment, **env})


class Session:
    """Documents opened and changed through one client, with the versions it sent."""

    def __init__(self, client: LanguageClient):
        self.client = client
        self.versions: dict[str, int] = {}

    def open(self, path: Path, text: str | None = None) -> str:
        uri = path.resolve().as_uri()
        self.versions[uri] = 1
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(types.TextDocumentItem(
            uri=uri, language_id="archdsl", version=1, text=path.read_text() if text is None else text)))
        return uri

    def change(self, uri: str, text: str) -> int:
        self.versions[uri] += 1
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
            [types.TextDocumentContentChangeWholeDocument(text=text)]))
        return self.versions[uri]

    def close(self, uri: str) -> None:
        self.client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))

    async def diagnostics(self, uri: str, version: int | None = None, timeout: float = 30.0):
        """The diagnostics published for `uri` at `version` (default: the latest sent), with their arrival time."""
        version = self.versions[uri] if version is None else version
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for arrived, params in reversed(self.client.published):
                if params.uri == uri and params.version == version:
                    return params.diagnostics, arrived
            await asyncio.sleep(0.002)
        raise TimeoutError(f"no diagnostics for {uri} version {version} within {timeout} s")

    async def hover(self, uri: str, line: int, character: int):
        return await self.client.text_document_hover_async(
            types.HoverParams(types.TextDocumentIdentifier(uri), types.Position(line, character)))

    async def complete(self, uri: str, line: int, character: int):
        return await self.client.text_document_completion_async(
            types.CompletionParams(types.TextDocumentIdentifier(uri), types.Position(line, character)))

    async def definition(self, uri: str, line: int, character: int):
        return await self.client.text_document_definition_async(
            types.DefinitionParams(types.TextDocumentIdentifier(uri), types.Position(line, character)))

    async def symbols(self, uri: str):
        return await self.client.text_document_document_symbol_async(
            types.DocumentSymbolParams(types.TextDocumentIdentifier(uri)))

    async def inlay_hints(self, uri: str, last_line: int = 10_000):
        return await self.client.text_document_inlay_hint_async(types.InlayHintParams(
            types.TextDocumentIdentifier(uri), types.Range(types.Position(0, 0), types.Position(last_line, 0))))

    async def code_actions(self, uri: str, diagnostic: types.Diagnostic):
        return await self.client.text_document_code_action_async(types.CodeActionParams(
            types.TextDocumentIdentifier(uri), diagnostic.range, types.CodeActionContext(diagnostics=[diagnostic])))


def initialize_params(root: Path = REPO, options: dict | None = None) -> types.InitializeParams:
    from pytest_lsp import client_capabilities

    return types.InitializeParams(capabilities=client_capabilities("visual-studio-code"), root_uri=root.as_uri(),
                                  workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
                                  initialization_options=options)

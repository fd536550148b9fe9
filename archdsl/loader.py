"""Read spec files, resolve `use` imports, and build the checked `Network`.

This is the core's front door: read → parse → resolve imports → count →
expand → analysis passes. It imports neither torch nor tvm.
"""
from __future__ import annotations

import os
from pathlib import Path

from . import ast
from .errors import ArchError, Source, Span, SpecImportError, SpecSyntaxError, SpecNameError
from .expand import MAX_LAYERS, Expander, FileContext
from .budget import count_layers
from .parser import parse

MAX_FILE_BYTES = 4 * 1024 * 1024


def read_source(path: str | os.PathLike, span: Span | None = None) -> Source:
    """A spec file's text, or an ArchError for a missing, unreadable, binary or huge file."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise SpecImportError(f"no such spec file: {name}", span) from None
    except IsADirectoryError:
        raise SpecImportError(f"{name} is a folder; expected a .arch spec file", span) from None
    except OSError as exc:
        raise SpecImportError(f"cannot read {name}: {exc.strerror or exc}", span) from None
    if len(data) > MAX_FILE_BYTES:
        raise SpecSyntaxError(f"{name} is {len(data):,} bytes; a spec file is at most {MAX_FILE_BYTES:,}", span)
    nul = data.find(b"\0")
    if nul >= 0:
        raise SpecSyntaxError(f"{name} is not a text spec: it holds binary data (a NUL byte at offset {nul})", span)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecSyntaxError(f"{name} is not UTF-8 text (byte {exc.start}: {data[exc.start]:#04x})", span) from None
    return Source(name, text.lstrip("\ufeff"))


class Loader:
    """Parses files once each and builds their FileContexts, following `use`."""

    def __init__(self):
        self.contexts: dict[Path, FileContext] = {}
        self.in_progress: list[Path] = []

    def context(self, spec: ast.Spec, path: Path | None) -> FileContext:
        ctx = FileContext(spec)
        for use in spec.uses:
            imported = self.import_file(use, path)
            for name, entry in imported.blocks.items():
                ctx.blocks.setdefault(name, entry)
        for block in spec.blocks:
            if block.name in {b.name for b in spec.blocks if b is not block and b.span.line < block.span.line}:
                raise SpecNameError(f"block '{block.name}' is defined twice. Received: a second `block {block.name}`", block.span)
            ctx.blocks[block.name] = (block, ctx)
        for after in spec.afters:
            ctx.afters[after.family] = after
        for default in spec.defaults:
            ctx.defaults[default.family] = tuple(default.args)
            for arg in default.args:
                if arg.keyword is None:
                    raise SpecNameError(
                        f"defaults take named options, as in defaults maxpool(ceil=true). Received: a positional value",
                        arg.span,
                    )
        return ctx

    def import_file(self, use: ast.Use, importer: Path | None) -> FileContext:
        base = importer.parent if importer is not None else Path.cwd()
        path = (base / use.path).resolve()
        if path in self.in_progress:
            cycle = " → ".join(p.name for p in self.in_progress[self.in_progress.index(path):] + [path])
            raise SpecImportError(f"import cycle: {cycle}. Received: use \"{use.path}\"", use.span)
        if path in self.contexts:
            return self.contexts[path]
        if not path.is_file():
            raise SpecImportError(
                f"cannot find \"{use.path}\" (looked for {path}, relative to the importing file)."
                f" Received: use \"{use.path}\"",
                use.span,
            )
        self.in_progress.append(path)
        try:
            spec = parse(read_source(path, use.span))
            ctx = self.context(spec, path)
        finally:
            self.in_progress.pop()
        self.contexts[path] = ctx
        return ctx


def build_graph(source: Source, path: Path | None, max_layers: int = MAX_LAYERS):
    """Parse, expand and return (spec, graph). Raises ArchError on any problem."""
    spec = parse(source)
    loader = Loader()
    if path is not None:
        loader.in_progress.append(path.resolve())
    ctx = loader.context(spec, path.resolve() if path is not None else None)
    count_layers(spec, ctx, max_layers)
    graph = Expander(ctx).run()
    return spec, graph


def is_path(value) -> bool:
    if isinstance(value, os.PathLike):
        return True
    return isinstance(value, str) and "\n" not in value and (value.endswith(".arch") or os.path.isfile(value))


def load_source(path_or_text) -> tuple[Source, Path | None]:
    if is_path(path_or_text):
        return read_source(path_or_text), Path(path_or_text)
    if not isinstance(path_or_text, str):
        raise ArchError(f"archdsl.load takes a path or spec text. Received: {type(path_or_text).__name__}")
    return Source("<spec>", path_or_text), None

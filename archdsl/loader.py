"""Read spec files, resolve `use` imports, and build the checked `Network`.

This is the core's front door: read → parse → resolve imports → count →
expand → analysis passes. It imports neither torch nor tvm.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Mapping

from . import ast
from .errors import ArchError, Source, Span, SpecImportError, SpecNameError, SpecSyntaxError, did_you_mean
from .expand import MAX_LAYERS, Expander, FileContext
from .budget import count_layers
from .parser import parse

MAX_FILE_BYTES = 4 * 1024 * 1024


def _file_span(name: str, data: bytes = b"", offset: int = 0) -> Span:
    """Where in a file that is no spec the problem is: `name:line:col`, for errors without a `use` to point at."""
    start = data.rfind(b"\n", 0, offset) + 1
    end = data.find(b"\n", offset)
    line = data.count(b"\n", 0, offset) + 1
    col = len(data[start:offset].decode("utf-8", "replace")) + 1
    text = data[start : end if end >= 0 else len(data)].decode("utf-8", "replace")[: col + 40]
    return Span(Source(name, "\n" * (line - 1) + text), line, col, line, col + 1)


def display_name(path: Path) -> str:
    """A path as a user would type it: relative for a file under the working folder, else absolute."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return str(path) if relative.startswith(os.pardir) else relative


def read_source(path: str | os.PathLike, span: Span | None = None) -> Source:
    """A spec file's text, or an ArchError for a missing, unreadable, binary or huge file.

    `span` is the `use` that imports the file; without one, errors point into the file itself.
    """
    name = str(path)
    try:
        if not Path(path).is_dir() and not stat.S_ISREG(os.stat(path).st_mode):
            # a FIFO would block and a device like /dev/zero would never end
            raise SpecImportError(f"{name} is not a regular file; expected a .arch spec file", span or _file_span(name))
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise SpecImportError(f"no such spec file: {name}", span or _file_span(name)) from None
    except IsADirectoryError:
        raise SpecImportError(f"{name} is a folder; expected a .arch spec file", span or _file_span(name)) from None
    except OSError as exc:
        raise SpecImportError(f"cannot read {name}: {exc.strerror or exc}", span or _file_span(name)) from None
    if len(data) > MAX_FILE_BYTES:
        raise SpecSyntaxError(f"{name} is over {MAX_FILE_BYTES:,} bytes, the most a spec file may hold", span or _file_span(name))
    nul = data.find(b"\0")
    if nul >= 0:
        raise SpecSyntaxError(
            f"{name} is not a text spec: it holds binary data (a NUL byte at offset {nul})",
            span or _file_span(name, data, nul),
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecSyntaxError(
            f"{name} is not UTF-8 text (byte {exc.start}: {data[exc.start]:#04x})",
            span or _file_span(name, data, exc.start),
        ) from None
    return Source(name, text.lstrip("\ufeff"))


class Loader:
    """Parses files once each and builds their FileContexts, following `use`.

    `files` maps paths to texts read instead of the disk's (an editor's unsaved buffers).
    """

    def __init__(self, files: Mapping[str | os.PathLike, str] | None = None):
        self.contexts: dict[Path, FileContext] = {}
        self.in_progress: list[Path] = []
        self.files = {Path(p).resolve(): text for p, text in (files or {}).items()}

    def main_context(self, spec: ast.Spec, path: Path | None) -> FileContext:
        """The context of the file being checked (`path`, or None for spec text)."""
        if path is None:
            return self.context(spec, None)
        self.in_progress.append(path.resolve())
        try:
            return self.context(spec, path.resolve())
        finally:
            self.in_progress.pop()

    def context(self, spec: ast.Spec, path: Path | None) -> FileContext:
        ctx = FileContext(spec)
        imported_from: dict[str, ast.Use] = {}
        for use in spec.uses:
            imported = self.import_file(use, path)
            for name, entry in imported.blocks.items():
                if name in ctx.blocks and ctx.blocks[name] is not entry:
                    first = imported_from[name]
                    raise SpecNameError(
                        f"block '{name}' comes from two imports (\"{first.path}\" at line {first.span.line} and this one);"
                        f" rename one of them. Received: use \"{use.path}\"",
                        use.span,
                    )
                ctx.blocks[name] = entry
                imported_from[name] = use
        local: set[str] = set()
        for block in spec.blocks:  # a file's own blocks shadow imported ones
            if block.name in local:
                raise SpecNameError(f"block '{block.name}' is defined twice. Received: a second `block {block.name}`", block.span)
            local.add(block.name)
            ctx.blocks[block.name] = (block, ctx)
        for after in spec.afters:
            family = canonical_family(after.family, after.span, "after")
            if family in ctx.afters:
                raise SpecNameError(
                    f"a second `after {after.family}` (the first is at line {ctx.afters[family].span.line});"
                    f" list every layer in one: after {after.family} = [bn relu]. Received: after {after.family}",
                    after.span,
                )
            ctx.afters[family] = after
        for default in spec.defaults:
            family = canonical_family(default.family, default.span, "defaults")
            if family in ctx.defaults:
                raise SpecNameError(
                    f"a second `defaults {default.family}`; give every option in one. Received: defaults {default.family}(…)",
                    default.span,
                )
            for arg in default.args:
                if arg.keyword is None:
                    raise SpecNameError(
                        "defaults take named options, as in defaults maxpool(ceil=true). Received: a positional value",
                        arg.span,
                    )
            ctx.defaults[family] = tuple(default.args)
        return ctx

    def import_file(self, use: ast.Use, importer: Path | None) -> FileContext:
        base = importer.parent if importer is not None else Path.cwd()
        path = (base / use.path).resolve()
        if path in self.in_progress:
            cycle = " → ".join(p.name for p in self.in_progress[self.in_progress.index(path):] + [path])
            raise SpecImportError(f"import cycle: {cycle}. Received: use \"{use.path}\"", use.span)
        if path in self.contexts:
            return self.contexts[path]
        if path not in self.files and not path.is_file():
            raise SpecImportError(
                f"cannot find \"{use.path}\" (looked for {path}, relative to the importing file)."
                f" Received: use \"{use.path}\"",
                use.span,
            )
        self.in_progress.append(path)
        try:
            text = self.files[path] if path in self.files else read_source(path, use.span).text
            spec = parse(Source(display_name(path), text))
            ctx = self.context(spec, path)
        finally:
            self.in_progress.pop()
        self.contexts[path] = ctx
        return ctx


def canonical_family(name: str, span: Span, statement: str) -> str:
    """The registered family for a name in `after`/`defaults`, aliases included (`upconv` → `deconv`)."""
    from .expand import spec_families
    from .ops import REGISTRY

    cls = REGISTRY.get(name)
    if cls is None:
        raise SpecNameError(
            f"`{statement} {name}` names no layer type{did_you_mean(name, spec_families()) or '.'}"
            f" Expected one of: {', '.join(spec_families())}. Received: {name}",
            span,
        )
    return cls.family


def expand_spec(spec: ast.Spec, ctx: FileContext, max_layers: int = MAX_LAYERS):
    """Count, then expand the file's body into the graph IR. Raises ArchError on any problem."""
    count_layers(spec, ctx, max_layers)
    return Expander(ctx, max_layers).run()


def build_network(spec: ast.Spec, ctx: FileContext, path: Path | None, *, strict: bool = False,
                  max_layers: int = MAX_LAYERS):
    """The checked `Network` of a parsed file whose imports are resolved (`Loader.main_context`)."""
    from .network import Network, name_outputs
    from .passes import run_all

    graph = expand_spec(spec, ctx, max_layers)
    warnings = run_all(graph)
    if strict and warnings:
        raise ArchError(warnings[0].message, warnings[0].span)
    graph.outputs = name_outputs(graph)
    name = spec.name[0] if spec.name else (path.stem if path is not None else "network")
    return Network(name, graph, spec, path, warnings)


def is_path(value) -> bool:
    if isinstance(value, os.PathLike):
        return True
    return isinstance(value, str) and "\n" not in value and (value.endswith(".arch") or os.path.isfile(value))


def load_source(path_or_text, files: Mapping[str | os.PathLike, str] | None = None) -> tuple[Source, Path | None]:
    if is_path(path_or_text):
        path = Path(path_or_text)
        for written, text in (files or {}).items():
            if Path(written).resolve() == path.resolve():
                return Source(str(path_or_text), text), path
        return read_source(path_or_text), path
    if not isinstance(path_or_text, str):
        raise ArchError(f"archdsl.load takes a path or spec text. Received: {type(path_or_text).__name__}")
    return Source("<spec>", path_or_text), None

"""Read spec files, resolve `use` imports, and build the checked `Network`.

This is the core's front door: read → parse → resolve imports → count →
expand → analysis passes. It imports neither torch nor tvm.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Mapping

from . import ast
from .errors import ArchError, Source, Span, SpecImportError, SpecNameError, SpecSyntaxError, did_you_mean
from .files import open_regular, os_error
from .expand import MAX_LAYERS, Expander, FileContext
from .budget import count_layers
from .parser import parse

MAX_FILE_BYTES = 4 * 1024 * 1024
SPEC_SUFFIX = ".arch"
# Folders (separated like PATH) that `use` may read from besides the top spec's own folder,
# searched in order for a relative path that is not next to the importing file.
SEARCH_PATH = "ARCHDSL_PATH"
# How many files deep `use` may chain (a.arch uses b.arch uses c.arch …).
MAX_IMPORT_DEPTH = 64
# A statement only an archdsl spec starts a line with: until one has been read, a file
# that fails to parse is not shown, as it may be anything that was named *.arch.
_STATEMENT = re.compile(r"^[ \t]*(use|block|after|defaults|network|input|train)\b", re.MULTILINE)


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
        with open_regular(path, "a .arch spec file", "spec file") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except ArchError as err:
        raise SpecImportError(err.message, span or _file_span(name)) from None
    except OSError as exc:  # a read error after the open (EIO)
        raise SpecImportError(os_error(exc, name, writing=False).message, span or _file_span(name)) from None
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


def search_path() -> tuple[Path, ...]:
    """The folders in ARCHDSL_PATH, made absolute; empty entries and missing folders are left out."""
    folders = []
    for entry in os.environ.get(SEARCH_PATH, "").split(os.pathsep):
        if entry.strip():
            folder = _absolute(Path(entry).expanduser())
            try:
                if folder.is_dir():
                    folders.append(folder)
            except OSError:  # a name too long for the file system: no folder to search
                continue
    return tuple(folders)


class Loader:
    """Parses files once each and builds their FileContexts, following `use`.

    `files` maps paths to texts read instead of the disk's (an editor's unsaved buffers).

    `use` reads only spec files (`*.arch`, the name a link leads to included) inside
    `root` — the folder of the file being checked, or the working folder for spec
    text — or inside a folder of ARCHDSL_PATH: a spec cannot make archdsl read, or
    quote, a file elsewhere on the machine.
    """

    def __init__(self, files: Mapping[str | os.PathLike, str] | None = None):
        self.contexts: dict[Path, FileContext] = {}
        self.in_progress: list[Path] = []
        self.files = {Path(p).resolve(): text for p, text in (files or {}).items()}
        self.root = _absolute(Path.cwd())
        self.search_path = search_path()

    def main_context(self, spec: ast.Spec, path: Path | None) -> FileContext:
        """The context of the file being checked (`path`, or None for spec text)."""
        if path is None:
            return self.context(spec, None)
        absolute = _absolute(path)
        self.root = absolute.parent
        self.in_progress.append(path.resolve())
        try:
            return self.context(spec, absolute)
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
            _check_parameters(block)
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
        path, target = self.locate(use, importer)
        if target in self.in_progress:
            cycle = " → ".join(p.name for p in self.in_progress[self.in_progress.index(target):] + [target])
            raise SpecImportError(f"import cycle: {cycle}. Received: use \"{use.path}\"", use.span)
        if target in self.contexts:
            return self.contexts[target]
        if len(self.in_progress) > MAX_IMPORT_DEPTH:
            raise SpecImportError(
                f"`use` chains more than {MAX_IMPORT_DEPTH} files deep"
                f" ({self.in_progress[0].name} → {self.in_progress[1].name} → … → {self.in_progress[-1].name});"
                f" import the blocks from fewer files. Received: use \"{use.path}\"",
                use.span,
            )
        self.in_progress.append(target)
        try:
            text = self.files[target] if target in self.files else read_source(path, use.span).text
            spec = parse_imported(Source(display_name(path), text), use)
            ctx = self.context(spec, path)
        finally:
            self.in_progress.pop()
        self.contexts[target] = ctx
        return ctx

    def locate(self, use: ast.Use, importer: Path | None) -> tuple[Path, Path]:
        """The file `use` names, as written (absolute, without `..`) and resolved; nothing is read.

        It must be named *.arch, and so must the file a link leads to; and it must lie in
        the top spec's folder or an ARCHDSL_PATH folder as written. Links placed inside
        those folders are followed: they are their owner's choice.
        """
        received = f'Received: use "{use.path}"'
        if "\0" in use.path:
            raise SpecImportError(f"a path cannot hold a NUL character. Received: use {use.path!r}", use.span)
        if not use.path.lower().endswith(SPEC_SUFFIX):
            raise SpecImportError(f"`use` imports archdsl specs, files named *{SPEC_SUFFIX}. {received}", use.span)
        base = importer.parent if importer is not None else self.root
        written = Path(use.path).expanduser()
        candidates = [_absolute(base / written)]
        if not written.is_absolute() and not use.path.startswith(("./", "../")):
            candidates += [_absolute(folder / written) for folder in self.search_path]
        for candidate in candidates:
            target = resolve(candidate, use.span, received)
            if target in self.files or target.is_file():
                break
        else:
            searched = f" or in {SEARCH_PATH} ({', '.join(map(str, self.search_path))})" if len(candidates) > 1 else ""
            raise SpecImportError(
                f"cannot find \"{use.path}\" (looked for {candidates[0]}, relative to the importing file{searched})."
                f" {received}",
                use.span,
            )
        if not any(candidate.is_relative_to(folder) for folder in (self.root, *self.search_path)):
            raise SpecImportError(
                f"\"{use.path}\" is {candidate}, outside the folder of the spec being loaded ({self.root});"
                f" `use` reads files under that folder, or under a folder named in {SEARCH_PATH}"
                f" (e.g. {SEARCH_PATH}={candidate.parent}). {received}",
                use.span,
            )
        if target.suffix.lower() != SPEC_SUFFIX:
            raise SpecImportError(
                f"\"{use.path}\" is a link to {target}, which is not a spec file (*{SPEC_SUFFIX}). {received}", use.span
            )
        return candidate, target


def _absolute(path: Path) -> Path:
    """`path` made absolute with `..` taken out by name, not through links (what `use` checks and opens)."""
    return Path(os.path.normpath(os.path.abspath(path)))


def resolve(path: Path, span: Span, received: str) -> Path:
    """`path` with links followed, or a SpecImportError for a link loop or an over-long name."""
    try:
        resolved = path.resolve()
        resolved.stat()  # a name longer than the file system allows fails here, or not at all
    except FileNotFoundError:
        return resolved
    except RuntimeError:  # Python < 3.13 reports a symlink loop so
        raise SpecImportError(f"cannot read {path}: a symbolic link on the way points back at itself. {received}", span) from None
    except OSError as exc:
        raise SpecImportError(f"{os_error(exc, path, writing=False).message}. {received}", span) from None
    return resolved


def parse_imported(source: Source, use: ast.Use) -> ast.Spec:
    """Parse a file `use` imports; a file that fails before its first archdsl statement is not quoted.

    Anything may be named *.arch. Until a line has started with a statement only a spec
    has (`use`, `block`, `after`, …), an error in the file says where, but shows no line of it.
    """
    try:
        return parse(source)
    except SpecSyntaxError as err:
        first = _STATEMENT.search(source.text)
        first_line = source.text.count("\n", 0, first.start()) + 1 if first else None
        if err.span is not None and (first_line is None or err.span.line < first_line):
            raise SpecImportError(
                f"{source.name} does not read as an archdsl spec: it fails to parse at line {err.span.line},"
                f" column {err.span.col}, before any archdsl statement (use, block, after, defaults, network,"
                f" input, train), so archdsl shows none of it. Received: use \"{use.path}\"",
                use.span,
            ) from None
        raise


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


def _check_parameters(block: ast.BlockDef) -> None:
    """Each of a block's parameters has its own name: `block b(c, c)` would bind one and lose the other."""
    seen: set[str] = set()
    for param in block.params:
        if param.name in seen:
            written = ", ".join(p.name for p in block.params)
            raise SpecNameError(
                f"block '{block.name}' names the parameter '{param.name}' twice; give each parameter its own name."
                f" Received: block {block.name}({written})",
                param.span,
            )
        seen.add(param.name)

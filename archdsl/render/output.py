"""Where a diagram goes: the format from the file's extension, and the file itself.

Only the image formats need Graphviz's `dot` program; `.dot` is the source
text, written without it. Every failure is an `ArchError` with one line that
says what to do, so that the CLI prints it and exits 1.
"""
from __future__ import annotations

from pathlib import Path

from .. import files
from ..errors import ArchError

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot", ".html": "html"}
# The paper-style figure (`--style blocks`) is drawn by archdsl itself, not by dot.
BLOCK_FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".tex": "tex"}
INSTALL_DOT = "install Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz)"


class RenderError(ArchError):
    """A diagram that cannot be written: a bad extension or path, or no Graphviz."""


def output_format(path: Path, style: str = "graph") -> str:
    formats = BLOCK_FORMATS if style == "blocks" else FORMATS
    fmt = formats.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(formats))
        got = f"'{path.suffix}'" if path.suffix else "no extension"
        what = "the paper-style figure's (--style blocks)" if style == "blocks" else "the diagram's"
        raise RenderError(f"cannot tell {what} format from {path}: expected one of {known}. Received: {got}")
    return fmt


def check_writable(path: Path) -> None:
    """Fail before the layout (seconds on a large network) rather than after it."""
    try:
        files.check_writable(path)  # creates the folder, as `compile -o` and `train --out` create theirs
    except ArchError as err:
        raise RenderError(f"cannot write the diagram: {err.message}") from None


def write(digraph, path: Path, fmt: str) -> None:
    data = digraph.source.encode("utf-8") if fmt == "dot" else run_dot(digraph, fmt)
    try:
        files.write_bytes(path, data)
    except ArchError as err:
        raise RenderError(f"cannot write the diagram: {err.message}") from None


def run_dot(digraph, fmt: str) -> bytes:
    import graphviz

    try:
        # quiet: dot's notes on huge PNGs ("scaling by 0.5 to fit") are not errors.
        return digraph.pipe(format=fmt, quiet=True)
    except graphviz.ExecutableNotFound:
        raise RenderError(
            f"drawing .{fmt} needs Graphviz's `dot` program, which is not on PATH: {INSTALL_DOT}."
            " (A .dot file needs no Graphviz: archdsl render SPEC -o net.dot)"
        ) from None
    except graphviz.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        raise RenderError(f"Graphviz's dot failed on this diagram: {detail[-1] if detail else exc}") from None

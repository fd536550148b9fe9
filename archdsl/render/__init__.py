"""Diagrams of a network through Graphviz: `archdsl render`, `Network.render`.

    >>> net = archdsl.load("specs/resnet152.arch")
    >>> net.render("resnet152.svg", depth=1)   # one box per bottleneck block

The pieces, one concern each: `collapse` decides what is drawn at a depth,
`labels` writes the text, `style` the colours and legend, `dot` builds the
`graphviz.Digraph`, `output` writes the file. The Python package `graphviz`
is imported only here, when a diagram is asked for.
"""
from __future__ import annotations

import os
from pathlib import Path

from .collapse import build_view
from .output import RenderError, check_writable, output_format, write

RANKDIRS = ("TB", "LR")

__all__ = ["render", "to_digraph", "RenderError", "RANKDIRS"]


def to_digraph(net, depth: int | None = None, rankdir: str = "TB"):
    """The network as a `graphviz.Digraph` (Jupyter shows it inline); see `collapse` for `depth`."""
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 0):
        raise RenderError(f"the depth must be a whole number ≥ 0 (0: the whole network as one box). Received: {depth!r}")
    if rankdir not in RANKDIRS:
        raise RenderError(f"rankdir must be {' or '.join(RANKDIRS)}. Received: {rankdir!r}")
    try:
        from .dot import to_digraph as build
    except ImportError as exc:
        if exc.name != "graphviz":
            raise
        raise RenderError("drawing needs the Python package graphviz: pip install graphviz") from None
    return build(net, build_view(net.layers, net.blocks, depth), rankdir)


def render(net, path: str | os.PathLike, depth: int | None = None, rankdir: str = "TB") -> Path:
    """Draw `net` to `path`: .svg, .png or .pdf through Graphviz's dot, or .dot source (no dot needed)."""
    path = Path(path)
    fmt = output_format(path)
    check_writable(path)
    write(to_digraph(net, depth, rankdir), path, fmt)
    return path

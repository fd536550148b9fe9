"""Diagrams of a network: `archdsl render`, `archdsl view`, `Network.render`.

    >>> net = archdsl.load("specs/resnet152.arch")
    >>> net.render("resnet152.svg", depth=1)   # one box per bottleneck block
    >>> net.render("vgg16.pdf", style="blocks")  # the papers' 3-D feature maps
    >>> net.render("resnet152.html")            # one page to explore, offline

The pieces, one concern each: `collapse` decides what is drawn at a depth,
`fold` what joins a layer's box in compact diagrams, `junctions` where a frame's
input fans out, `wrap` how a long chain is cut into columns, `labels` writes the
text, `style` the colours and legend, `dot` builds the `graphviz.Digraph`,
`output` writes the file; `blocks` draws the paper-style figure and `viewer`
the interactive page. The Python package `graphviz` is imported only when a
Graphviz diagram is asked for.
"""
from __future__ import annotations

import os
from pathlib import Path

from .collapse import build_view
from .output import RenderError, check_writable, output_format, write

RANKDIRS = ("TB", "LR")
STYLES = ("graph", "blocks")

__all__ = ["render", "to_digraph", "RenderError", "RANKDIRS", "STYLES"]


def check_options(depth, rankdir: str, wrap, style: str = "graph") -> None:
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 0):
        raise RenderError(f"the depth must be a whole number ≥ 0 (0: the whole network as one box). Received: {depth!r}")
    if rankdir not in RANKDIRS:
        raise RenderError(f"rankdir must be {' or '.join(RANKDIRS)}. Received: {rankdir!r}")
    if wrap is not None and wrap != "auto" and (isinstance(wrap, bool) or not isinstance(wrap, int) or wrap < 1):
        raise RenderError(f"wrap must be a whole number ≥ 1 (columns, or rows left to right) or 'auto'. Received: {wrap!r}")
    if style not in STYLES:
        raise RenderError(f"style must be {' or '.join(STYLES)}. Received: {style!r}")


def to_digraph(net, depth: int | None = None, rankdir: str = "TB", full: bool = False, wrap=None, ids: bool = False,
               block: str | None = None):
    """The network as a `graphviz.Digraph` (Jupyter shows it inline); see `collapse` for `depth`.

    Compact unless `full`; `wrap`: a number of columns (rows with rankdir LR), or 'auto'
    (the default when compact: a network too long for a page is cut into columns);
    `block`: draw only the first call of that block, with its templates (`definition`).
    """
    check_options(depth, rankdir, wrap)
    if block is not None:
        from .definition import definition_network

        net = definition_network(net, block)
    try:
        from .dot import to_digraph as build
    except ImportError as exc:
        if exc.name != "graphviz":
            raise
        raise RenderError("drawing needs the Python package graphviz: pip install graphviz") from None
    from .wrap import auto_runs, wrap as cut

    view = build_view(net.graph, depth, compact=not full)
    if wrap is None and not full:
        wrap = "auto"
    runs = auto_runs(view, rankdir) if wrap == "auto" else (wrap or 1)
    return build(net, view, rankdir, compact=not full, wrapping=cut(view, runs), ids=ids, templates=block is not None)


def render(net, path: str | os.PathLike, depth: int | None = None, rankdir: str = "TB", full: bool = False,
           wrap=None, style: str = "graph", block: str | None = None) -> Path:
    """Draw `net` to `path`: .svg, .png or .pdf through Graphviz's dot, .dot source (no dot needed),
    .html (the interactive viewer), or with `style="blocks"` the paper-style figure (.svg, .pdf, .png, .tex).
    `block`: only the first call of that block (its definition view)."""
    path = Path(path)
    check_options(depth, rankdir, wrap, style)
    fmt = output_format(path, style)
    check_writable(path)
    if block is not None and (fmt == "html" or style == "blocks"):
        from .definition import definition_network

        net, block = definition_network(net, block), None
    if fmt == "html":
        from .viewer import write_page

        write_page(net, path, depth)
    elif style == "blocks":
        from .blocks import write_figure

        write_figure(net, path, fmt, depth)
    else:
        write(to_digraph(net, depth, rankdir, full, wrap, block=block), path, fmt)
    return path

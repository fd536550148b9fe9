"""How a diagram looks: one colour per kind of layer, cluster styles, and the legend.

Colours are chosen per `Op.kind`, so a new op type gets its colour from its
kind without touching this file; a kind not listed here is drawn white.
"""
from __future__ import annotations

from html import escape

from ..ir import BlockKind
from ..ops import Kind

FONT = "Helvetica"

# Light fills, so that black text stays readable on every one of them. The
# order is the legend's order: the data path first, then the rest.
KIND_COLOURS: dict[Kind, str] = {
    Kind.INPUT: "#e5e7e9",
    Kind.CONVOLUTION: "#aed6f1",
    Kind.POOLING: "#f9e79f",
    Kind.NORMALIZATION: "#d7bde2",
    Kind.ACTIVATION: "#abebc6",
    Kind.FC: "#f5b7b1",
    Kind.MERGE: "#fad7a0",
    Kind.REGULARIZATION: "#f2f3f4",
    Kind.RESIZE: "#a3e4d7",
    Kind.RESHAPE: "#fcf3cf",
}
OTHER_COLOUR = "#ffffff"
COLLAPSED = "collapsed block"  # the legend's name for a block drawn as one box
COLLAPSED_COLOUR = "#b2babb"


def kind_colour(kind: Kind | str) -> str:
    if kind == COLLAPSED:
        return COLLAPSED_COLOUR
    return KIND_COLOURS.get(kind, OTHER_COLOUR)


def kind_name(kind: Kind | str) -> str:
    return kind.value if isinstance(kind, Kind) else kind


def legend_order(kinds: set) -> list:
    """The kinds a diagram shows, in the legend's fixed order (unknown kinds sorted, then blocks)."""
    known = [k for k in KIND_COLOURS if k in kinds]
    unknown = sorted((k for k in kinds if k not in KIND_COLOURS and k != COLLAPSED), key=kind_name)
    return known + unknown + ([COLLAPSED] if COLLAPSED in kinds else [])


# ---- nodes and edges ----
NODE_ATTRS = {"shape": "box", "style": "rounded,filled", "fontname": FONT, "fontsize": "11", "margin": "0.12,0.04", "penwidth": "0.8"}
EDGE_ATTRS = {"fontname": FONT, "fontsize": "9", "fontcolor": "#616a6b", "color": "#566573", "arrowsize": "0.6"}
GRAPH_ATTRS = {"fontname": FONT, "labelloc": "t", "labeljust": "c", "nodesep": "0.25", "ranksep": "0.3", "newrank": "true"}

# A network output gets a double border, so that auxiliary heads stand out.
OUTPUT_ATTRS = {"peripheries": "2"}
COLLAPSED_ATTRS = {"shape": "box3d", "style": "filled", "margin": "0.15,0.1"}
# Skips (a residual's identity, SE's pass-through, a @name skip) are drawn
# dashed and loose (weight 0), so the body keeps its straight column and the
# skip visibly runs around it.
SKIP_EDGE_ATTRS = {"style": "dashed", "color": "#2e86c1", "fontcolor": "#2e86c1", "weight": "0"}

# Compact diagrams: a little more room between ranks, for the edges' shapes.
COMPACT_GRAPH_ATTRS = {"ranksep": "0.28", "nodesep": "0.3"}
# An edge from one column of a wrapped diagram to another: it must not pull the columns into one.
WRAPPED_EDGE_ATTRS = {"constraint": "false"}
# Where a tensor entering a frame fans out to the layers inside it.
POINT_ATTRS = {"shape": "point", "width": "0.07", "color": "#566573"}

# ---- clusters, by BlockInstance.kind ----
CLUSTER_ATTRS: dict[BlockKind, dict[str, str]] = {
    BlockKind.BLOCK: {"style": "rounded,filled", "fillcolor": "#f8f9f9", "color": "#909497"},
    BlockKind.RESIDUAL: {"style": "rounded,filled", "fillcolor": "#ebf5fb", "color": "#5dade2"},
    BlockKind.INCEPTION: {"style": "rounded,filled", "fillcolor": "#fef9e7", "color": "#f4d03f"},
    BlockKind.SE: {"style": "rounded,filled", "fillcolor": "#f5eef8", "color": "#af7ac5"},
    # Parts of a composite: an inception branch keeps its layers in one
    # column; a residual's shortcut is marked as such.
    BlockKind.BRANCH: {"style": "dotted", "color": "#b3b6b7", "label": ""},
    BlockKind.SHORTCUT: {"style": "dashed", "color": "#2e86c1"},
}
CLUSTER_COMMON = {"fontname": FONT, "fontsize": "10", "margin": "10"}
# A labelled stage (`"conv2_x": …`): a plain frame with its label on the left, as a paper's table row.
STAGE_ATTRS = {"style": "rounded", "color": "#7b7d7d", "penwidth": "1.2", "labeljust": "l", "margin": "12"}


def frame_attrs(frame) -> dict[str, str]:
    """A cluster's look: by its block's kind, or a stage's."""
    kind = getattr(frame, "kind", None)
    return STAGE_ATTRS if kind is None else CLUSTER_ATTRS[kind]


def legend_html(kinds: set[str], per_row: int = 6) -> str:
    """Colour swatches for the kinds a diagram shows, as a grid. It is part of the title, not a
    node, so that a diagram's nodes are exactly its layers and blocks."""
    swatches = [
        f'<td bgcolor="{kind_colour(k)}" border="1" width="12" height="10" fixedsize="true"></td>'
        f'<td align="left"><font point-size="10">{escape(kind_name(k))}</font></td>'
        for k in legend_order(kinds)
    ]
    rows = ["".join(swatches[i : i + per_row]) for i in range(0, len(swatches), per_row)]
    return '<table border="0" cellspacing="3" cellpadding="0">' + "".join(f"<tr>{r}</tr>" for r in rows) + "</table>"

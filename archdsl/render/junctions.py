"""Edges that fan out inside a frame start from one point inside it.

A residual's input feeds its body and, dashed, its add; an inception's input feeds
every branch. Drawn as they are, those edges all cross the frame's border, and the
skip runs outside the block. Here each such fan-out becomes one edge into the frame,
to a small point, and the point's edges inside: the skip stays inside its block's
frame, as the papers draw it. Nothing here knows what kind of block it is.
"""
from __future__ import annotations

from .collapse import Edge, View


def add_junctions(view: View) -> None:
    fans: dict[tuple[str, str], list[Edge]] = {}
    for edge in view.edges:
        fans.setdefault((edge.tail, edge.tensor.name), []).append(edge)
    edges: list[Edge] = []
    for edge in view.edges:  # in the view's order, each fan where its first edge was
        fan = fans.pop((edge.tail, edge.tensor.name), None)
        if fan is None:
            continue
        for entered, group in _by_entered_frame(view, edge.tail, fan).items():
            if entered is None or len(group) < 2:
                edges.extend(group)
                continue
            point = f"{entered}>{edge.tensor.name}"  # no colon: Graphviz reads one as a port
            frame = _innermost_common(view, group)
            view.points[point] = frame
            view.contents.setdefault(frame, []).insert(0, point)
            edges.append(Edge(edge.tail, point, edge.tensor, skip=False))
            edges.extend(Edge(point, e.head, e.tensor, e.skip, labelled=False) for e in group)
    view.edges = edges


def _by_entered_frame(view: View, tail: str, fan: list[Edge]) -> dict[str | None, list[Edge]]:
    """The edges of one tensor, grouped by the outermost frame each enters (None: none)."""
    outside = set(view.frames_around(tail))
    groups: dict[str | None, list[Edge]] = {}
    for edge in fan:
        entered = [f for f in view.frames_around(edge.head) if f not in outside]
        groups.setdefault(entered[-1] if entered else None, []).append(edge)
    return groups


def _innermost_common(view: View, group: list[Edge]) -> str:
    """The innermost frame around every head of the group."""
    chains = [view.frames_around(edge.head) for edge in group]
    common = set(chains[0]).intersection(*chains[1:])
    return next(f for f in chains[0] if f in common)

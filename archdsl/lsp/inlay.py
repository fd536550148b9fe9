"""Inlay hints: the shape of the tensor each line ends on, written after the line's last term."""
from __future__ import annotations

from lsprotocol import types

from .. import ast
from .analysis import Analysis, all_nodes
from .positions import Lines, span_key
from .text import shapes_text


def inlay_hints(analysis: Analysis, lines: Lines, first: int, last: int) -> list[types.InlayHint]:
    """Hints for the 1-based lines first..last: after the term that ends last on each line (the outermost
    one where several end there), the shape it ended on — every distinct shape where it expands more than once."""
    if analysis.spec is None or analysis.net is None:
        return []
    ends: dict[int, tuple[tuple[int, int], object]] = {}
    after_terms = {span_key(a.term.span) for a in analysis.spec.afters}
    for node in _terms(analysis.spec):
        span = node.span
        if not first <= span.end_line <= last or span_key(span) not in analysis.outputs_at:
            continue
        rank = (span.end_col, -span.line, -span.col)  # the last to end; the outermost of those
        if span.end_line not in ends or rank > ends[span.end_line][0]:
            ends[span.end_line] = (rank, node)
    hints = []
    for line, (_, node) in sorted(ends.items()):
        if span_key(node.span) in after_terms:
            continue
        nodes = analysis.outputs_at[span_key(node.span)]
        shapes = [analysis.net.layer(n).shape for n in nodes if n in analysis.net.graph]
        if not shapes:
            continue
        hints.append(types.InlayHint(
            position=lines.position(node.span.end_line, node.span.end_col),
            label=f"→ {shapes_text(shapes)}",
            kind=types.InlayHintKind.Type,
            padding_left=True,
        ))
    return hints


def _terms(spec: ast.Spec):
    """Every node of the tree that is a term (layers, groups, composites, names, …), statements aside."""
    statements = (ast.Use, ast.After, ast.Defaults, ast.Setting)
    for node in all_nodes(spec):
        if not isinstance(node, statements):
            yield node

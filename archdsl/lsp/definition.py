"""Go to definition: a block call → its `block`, `@name` → its `-> name`, a `use` path → the file."""
from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from .. import ast
from ..errors import Span
from .analysis import Analysis
from .hover import definition_of
from .positions import Lines


def definition(analysis: Analysis, lines: Lines, position: types.Position, uri_of) -> list[types.Location]:
    """`uri_of(span)` → the URI of the file a span is in (this document's, or another's)."""
    line, col = lines.offset(position)
    chain = analysis.nodes_at(line, col)
    for depth in range(len(chain) - 1, -1, -1):
        target = _target(analysis, chain[depth], chain[: depth + 1])
        if isinstance(target, Span):
            return [types.Location(uri=uri_of(target), range=_range(analysis, lines, target))]
        if isinstance(target, Path):
            start = types.Position(line=0, character=0)
            return [types.Location(uri=target.as_uri(), range=types.Range(start=start, end=start))]
    return []


def _target(analysis: Analysis, node, chain) -> Span | Path | None:
    if isinstance(node, (ast.Ref, ast.RefArg)):
        if node.name == "input" and analysis.spec.input is not None:
            found = definition_of(analysis, node.name, chain)
            return found.span if found is not None else analysis.spec.input[1]
        found = definition_of(analysis, node.name, chain)
        return found.span if found is not None else None
    if isinstance(node, ast.Layer) and analysis.ctx is not None and node.name in analysis.ctx.blocks:
        return analysis.ctx.blocks[node.name][0].span
    if isinstance(node, ast.Use):
        base = analysis.path.parent if analysis.path is not None else Path.cwd()
        path = (base / node.path).resolve()
        return path if path.is_file() else None
    return None


def _range(analysis: Analysis, lines: Lines, span: Span) -> types.Range:
    if analysis.mine(span):
        return lines.range(span)
    return Lines(span.source.text).range(span)  # another file: its own text counts its columns

"""Document symbols (the outline): the network, its input, `use`s, blocks with the tensors they
name, the top level's named tensors, the outputs and the train section."""
from __future__ import annotations

from lsprotocol import types

from .. import ast
from ..errors import Span
from ..shapes import fmt_shape
from .analysis import Analysis, names_in_scope
from .hover import signature
from .positions import Lines, span_key
from .text import shapes_text


def symbols(analysis: Analysis, lines: Lines) -> list[types.DocumentSymbol]:
    spec = analysis.spec
    if spec is None:
        return []
    found: list[tuple[Span, types.DocumentSymbol]] = []

    def add(span: Span, name: str, kind: types.SymbolKind, detail: str = "", children=None, select: Span | None = None):
        symbol = types.DocumentSymbol(name=name, kind=kind, range=lines.range(span),
                                      selection_range=lines.range(select or span), detail=detail or None,
                                      children=children)
        found.append((span, symbol))
        return symbol

    if spec.name is not None:
        add(spec.name[1], spec.name[0], types.SymbolKind.Module, "network")
    if spec.input is not None:
        add(spec.input[1], "input", types.SymbolKind.Constant, fmt_shape(spec.input[0]))
    for use in spec.uses:
        add(use.span, f'use "{use.path}"', types.SymbolKind.Namespace)
    for block in spec.blocks:
        children = [_tensor(analysis, lines, n) for n in names_in_scope(spec, block)]
        add(block.span, block.name, types.SymbolKind.Function, signature(block), children or None)
    for name in names_in_scope(spec, None):
        found.append((name.span, _tensor(analysis, lines, name)))
    if analysis.net is not None and analysis.context is None:
        for output, node in analysis.net.output_nodes.items():
            layer = analysis.net.layer(node)
            if layer.span is not None and analysis.mine(layer.span):
                add(layer.span, f"output {output}", types.SymbolKind.Event, fmt_shape(layer.shape))
    if spec.train_span is not None:
        settings = [types.DocumentSymbol(name=s.key, kind=types.SymbolKind.Property, range=lines.range(s.span),
                                         selection_range=lines.range(s.span)) for s in spec.train]
        add(spec.train_span, "train", types.SymbolKind.Object, children=settings or None)
    found.sort(key=lambda pair: (pair[0].line, pair[0].col))
    return [symbol for _, symbol in found]


def _tensor(analysis: Analysis, lines: Lines, name: ast.NameAs) -> types.DocumentSymbol:
    nodes = analysis.outputs_at.get(span_key(name.span), [])
    shapes = [analysis.net.layer(n).shape for n in nodes if n in analysis.net.graph] if analysis.net else []
    return types.DocumentSymbol(name=f"@{name.name}", kind=types.SymbolKind.Variable, range=lines.range(name.span),
                                selection_range=lines.range(name.span), detail=shapes_text(shapes) if shapes else None)

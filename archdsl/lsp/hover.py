"""Hover: what archdsl knows about the token under the cursor, in Markdown.

A layer token: each layer it became (resolved token, input → output shape, params, MACs,
receptive field and jump) and the fit check's arithmetic where it warns. A block call or a
composite: each expansion's totals and the layers of the first. `@name` and `-> name`: where
the tensor was named and its shape. `use`: the file and its blocks. A train setting: its
default and the values it takes.
"""
from __future__ import annotations

from lsprotocol import types

from .. import ast
from ..expand import resolve_family
from ..ir import BlockInstance, Layer
from ..loader import display_name
from ..report import per_dim_text
from ..shapes import fmt_shape
from .analysis import Analysis, block_around, names_in_scope
from .positions import Lines, span_key
from .text import family_names, op_doc, options_line, shapes_text

MAX_ROWS = 16  # rows of a table of expansions before "… n more"


def hover(analysis: Analysis, lines: Lines, position: types.Position) -> types.Hover | None:
    line, col = lines.offset(position)
    chain = analysis.nodes_at(line, col)
    for depth in range(len(chain) - 1, -1, -1):
        node = chain[depth]
        text = _describe(analysis, node, chain[: depth + 1])
        if text:
            return types.Hover(
                contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text),
                range=lines.range(node.span),
            )
    if analysis.spec is not None and analysis.spec.input is not None:
        shape, span = analysis.spec.input
        if span.line == line:
            return types.Hover(
                contents=types.MarkupContent(kind=types.MarkupKind.Markdown,
                                             value=f"**input** {fmt_shape(shape)}: channels first, no batch"),
                range=lines.range(span),
            )
    return None


def _describe(analysis: Analysis, node, chain) -> str | None:
    if isinstance(node, (ast.Ref, ast.RefArg, ast.NameAs)):
        return tensor_text(analysis, node, chain)
    if isinstance(node, ast.Layer):
        if is_block_call(analysis, node.name):
            return block_call_text(analysis, node)
        return layer_text(analysis, node)
    if isinstance(node, ast.Use):
        return use_text(analysis, node)
    if isinstance(node, ast.Setting):
        from .train_settings import setting_text

        return setting_text(node)
    if isinstance(node, ast.BlockDef):
        return block_def_text(analysis, node)
    if span_key(node.span) in analysis.blocks_at:  # a composite: inception<…>, residual<…>, se<r>, …
        return instances_text(analysis, node, f"**{_first_line(node)}**")
    return None


def is_block_call(analysis: Analysis, name: str) -> bool:
    if analysis.ctx is not None:
        return name in analysis.ctx.blocks
    return analysis.spec is not None and any(b.name == name for b in analysis.spec.blocks)


def _first_line(node) -> str:
    span = node.span
    text = span.source.line(span.line)[span.col - 1:]
    if span.end_line == span.line:
        text = text[: span.end_col - span.col]
    return text.strip()


def _in_network(analysis: Analysis) -> str:
    if analysis.net is None:
        return ""
    where = f" ({display_name(analysis.net.path)})" if analysis.context is not None else ""
    return f" in {analysis.net.name}{where}"


# ---- a layer token ----


def layer_text(analysis: Analysis, term: ast.Layer) -> str:
    cls, _ = resolve_family(term.name)
    head = f"**{term.text}**"
    if cls is not None:
        head += f" · {family_names(cls)}: {op_doc(cls)}"
    parts = [head]
    if cls is not None:
        parts.append(f"Options: {options_line(cls)}")
    layers = analysis.layers_at.get(span_key(term.span), [])
    if len(layers) == 1:
        parts.append(_one_layer(analysis, layers[0]))
    elif layers:
        parts.append(f"{len(layers)} layers{_in_network(analysis)}:\n\n" + _layers_table(analysis, layers))
    elif analysis.net is None:
        parts.append("_No shapes: the spec does not check yet._" if not _is_lib_without_context(analysis)
                     else "_A library: open a spec that uses it to see its shapes._")
    else:
        parts.append(f"_Not expanded{_in_network(analysis)}._")
    for message in analysis.warnings_at.get(span_key(term.span), []):
        parts.append(f"⚠ {message}")
    return "\n\n".join(parts)


def _is_lib_without_context(analysis: Analysis) -> bool:
    return analysis.spec is not None and analysis.spec.input is None and analysis.context is None


def _inputs(analysis: Analysis, layer: Layer) -> str:
    return ", ".join(fmt_shape(analysis.net.layer(i).shape) for i in layer.inputs) or "—"


def _one_layer(analysis: Analysis, layer: Layer) -> str:
    return "\n".join([
        f"- layer `{layer.name}`{_in_network(analysis)}: `{layer.op.describe()}`",
        f"- shape: {_inputs(analysis, layer)} → **{fmt_shape(layer.shape)}**",
        f"- params: {layer.params:,} · MACs: {layer.macs:,}",
        f"- receptive field: {per_dim_text(layer.receptive_field)} · jump: {per_dim_text(layer.jump)}",
    ])


def _layers_table(analysis: Analysis, layers: list[Layer]) -> str:
    rows = ["| layer | resolved | input → output | params | MACs | RF | jump |",
            "|---|---|---|--:|--:|--:|--:|"]
    for layer in layers[:MAX_ROWS]:
        rows.append(
            f"| `{layer.name}` | `{layer.op.describe()}` | {_inputs(analysis, layer)} → {fmt_shape(layer.shape)}"
            f" | {layer.params:,} | {layer.macs:,} | {per_dim_text(layer.receptive_field)} | {per_dim_text(layer.jump)} |"
        )
    if len(layers) > MAX_ROWS:
        rows.append(f"| … {len(layers) - MAX_ROWS} more | | | | | | |")
    rows.append(f"| **total** | | | {sum(l.params for l in layers):,} | {sum(l.macs for l in layers):,} | | |")
    return "\n".join(rows)


# ---- block calls, composites and definitions ----


def block_call_text(analysis: Analysis, term: ast.Layer) -> str:
    head = f"**{term.text}**"
    if analysis.ctx is not None and term.name in analysis.ctx.blocks:
        block, _ = analysis.ctx.blocks[term.name]
        head += f" · block `{signature(block)}` ({block.span})"
    return instances_text(analysis, term, head)


def signature(block: ast.BlockDef) -> str:
    params = ", ".join(p.name + (f"={_expr_text(p.default)}" if p.default is not None else "") for p in block.params)
    return f"{block.name}({params})" if block.params else block.name


def _expr_text(expr) -> str:
    span = expr.span
    if span.line == span.end_line:
        return span.source.line(span.line)[span.col - 1: span.end_col - 1]
    return "…"


def instances_text(analysis: Analysis, node, head: str) -> str:
    instances = analysis.blocks_at.get(span_key(node.span), [])
    if not instances:
        return head + ("\n\n_No shapes: the spec does not check yet._" if analysis.net is None else "")
    outputs = analysis.outputs_at.get(span_key(node.span), [])
    paired = outputs if len(outputs) == len(instances) else [None] * len(instances)
    rows = ["| instance | input → output | params | MACs | layers |", "|---|---|--:|--:|--:|"]
    for block, output in list(zip(instances, paired))[:MAX_ROWS]:
        rows.append(_instance_row(analysis, block, output))
    if len(instances) > MAX_ROWS:
        rows.append(f"| … {len(instances) - MAX_ROWS} more | | | | |")
    first = instances[0]
    expansion = _expansion(analysis, first)
    count = f"{len(instances)} expansion{'s' if len(instances) > 1 else ''}{_in_network(analysis)}"
    return f"{head}\n\n{count}:\n\n" + "\n".join(rows) + f"\n\n`{first.id}` expands to:\n\n{expansion}"


def _instance_row(analysis: Analysis, block: BlockInstance, output: str | None) -> str:
    layers = analysis.layers_in(block.id)
    end = output or (layers[-1].name if layers else None)
    entry = fmt_shape(analysis.net.layer(block.entry).shape) if block.entry else "—"
    out = fmt_shape(analysis.net.layer(end).shape) if end in analysis.net.graph else "—"
    return (f"| `{block.id}` | {entry} → {out} | {sum(l.params for l in layers):,} | {sum(l.macs for l in layers):,}"
            f" | {len(layers)} |")


def _expansion(analysis: Analysis, block: BlockInstance) -> str:
    layers = analysis.layers_in(block.id)
    prefix = block.id + "."
    rows = [(l.name.removeprefix(prefix), l.token, fmt_shape(l.shape), f"{l.params:,}") for l in layers[:MAX_ROWS * 2]]
    widths = [max(len(r[i]) for r in rows) for i in range(4)] if rows else [0] * 4
    body = "\n".join(f"{a.ljust(widths[0])}  {b.ljust(widths[1])}  {c.ljust(widths[2])}  {d.rjust(widths[3])}"
                     for a, b, c, d in rows)
    if len(layers) > len(rows):
        body += f"\n… {len(layers) - len(rows)} more layers"
    return f"```\n{body}\n```"


def block_def_text(analysis: Analysis, block: ast.BlockDef) -> str:
    instances = [b for b in (analysis.net.blocks.values() if analysis.net else ()) if b.user and b.name == block.name
                 and not b.kind.is_part]
    head = f"**block {signature(block)}**"
    if not instances:
        return head + ("\n\n_Not called_" + _in_network(analysis) if analysis.net is not None else "")
    shapes = []
    for b in instances:
        layers = analysis.layers_in(b.id)
        if layers:
            shapes.append(layers[-1].shape)
    params = sum(l.params for b in instances for l in analysis.layers_in(b.id))
    return (f"{head}\n\ncalled {len(instances)} time{'s' if len(instances) > 1 else ''}{_in_network(analysis)};"
            f" outputs {shapes_text(shapes)}; {params:,} params in all")


# ---- tensors, imports ----


def definition_of(analysis: Analysis, name: str, chain) -> ast.NameAs | None:
    """The `-> name` that a `@name` at the end of `chain` reads (the first in its scope)."""
    if analysis.spec is None:
        return None
    return next((n for n in names_in_scope(analysis.spec, block_around(chain)) if n.name == name), None)


def tensor_text(analysis: Analysis, node, chain) -> str:
    name = node.name
    spec = analysis.spec
    if name == "input" and block_around(chain) is None and spec.input is not None:
        return f"**@input**: the network's input, {fmt_shape(spec.input[0])} (line {spec.input[1].line})"
    definition = node if isinstance(node, ast.NameAs) else definition_of(analysis, name, chain)
    if definition is None:
        return f"**@{name}**: no tensor is named `{name}` here (name one with `-> {name}`)"
    nodes = analysis.outputs_at.get(span_key(definition.span), [])
    shapes = [analysis.net.layer(n).shape for n in nodes if n in analysis.net.graph] if analysis.net else []
    where = f"named at line {definition.span.line}: `-> {name}`"
    if not shapes:
        return f"**@{name}**: {where}"
    return f"**@{name}**: {where}; shape **{shapes_text(shapes)}**" + (
        f" (node `{nodes[0]}`)" if len(nodes) == 1 else f" ({len(nodes)} expansions)")


def use_text(analysis: Analysis, use: ast.Use) -> str:
    from pathlib import Path

    base = analysis.path.parent if analysis.path is not None else Path.cwd()
    path = (base / use.path).resolve()
    blocks = []
    if analysis.ctx is not None:
        blocks = sorted(name for name, (block, _) in analysis.ctx.blocks.items()
                        if Path(block.span.source.name).resolve() == path)
    listing = ", ".join(f"`{b}`" for b in blocks) or "none"
    return f"**use** `{path}`\n\nBlocks: {listing}"

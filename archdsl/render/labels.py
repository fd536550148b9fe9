"""The text of a diagram: node, cluster and edge labels, and the title.

Labels are Graphviz HTML-like labels, so that the token can be bold and the
figures smaller, and so that whatever a spec wrote (quotes, backslashes, <)
reaches the picture escaped by `html.escape` rather than by hand.
"""
from __future__ import annotations

import re
from html import escape

from ..ir import BlockInstance, BlockKind, Layer, Stage
from ..ops import Kind
from ..shapes import fmt_shape
from .collapse import Box

SMALL = '<font point-size="9">{}</font>'
MAX_WRITTEN = 60  # longer calls are cut with …

# `conv1-(4*c)/s`: the layer's name, then its dimension and stride, each a word or a (…) expression.
_PART = r"(\((?:[^()]|\([^()]*\))*\)|[A-Za-z0-9_]+)"
_TOKEN = re.compile(rf"(?:soft-max|[A-Za-z_][A-Za-z0-9_]*)(?:-{_PART})?(?:/{_PART})?")
_LITERAL = re.compile(r"\d+(x\d+)*")  # 64, 2, 1x7; anything else came from block arguments


def compact(n: int) -> str:
    """1792 → '1.79k', 138357544 → '138M': short enough for a box."""
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= factor:
            return f"{n / factor:.3g}{suffix}"
    return str(n)


def html(lines: list[str]) -> str:
    """Already-escaped lines as one HTML-like label."""
    return "<" + "<br/>".join(lines) + ">"


def is_parametrized(token: str) -> bool:
    """Whether a token's sizes come from block arguments (`conv1-(4*c)`, `conv3-c/s`)."""
    match = _TOKEN.match(token)
    return match is not None and any(p is not None and not _LITERAL.fullmatch(p) for p in match.groups())


def resolved(layer: Layer) -> str:
    """The token with a block's arguments filled in: `conv3-c/s` → `conv3-128/2`; a literal token as written."""
    return layer.op.describe() if is_parametrized(layer.token) else layer.token


def layer_label(layer: Layer, outputs: list[str], label: str | None = None) -> str:
    """`conv3-64` in bold; the resolved spelling inside blocks; shape, params, output names (--full)."""
    lines = [f"<b>{escape(label)}</b>"] if label else []
    lines.append(f"<b>{escape(layer.token)}</b>")
    if is_parametrized(layer.token):
        lines.append(SMALL.format("= " + escape(layer.op.describe())))
    figures = fmt_shape(layer.shape)
    if layer.params:
        figures += f" · {compact(layer.params)} params"
    lines.append(SMALL.format(figures))
    lines += output_lines(outputs)
    return html(lines)


def chain_label(box: Box, outputs: list[str], label: str | None, shape: str | None, template: bool = False) -> str:
    """A compact box: `conv3-128/2 · bn · relu` (resolved tokens, the first bold), its params.

    `shape` is shown on the box only where no edge shows it: the input's, an output's.
    `template`: under the tokens, in small type, the block's own spelling (`conv3-c/s`)
    where it differs (a block's definition view).
    """
    tokens = [escape(resolved(layer)) for layer in box.layers]
    lines = [f"<b>{escape(label)}</b>", " · ".join(tokens)] if label else [" · ".join([f"<b>{tokens[0]}</b>", *tokens[1:]])]
    if template and any(is_parametrized(layer.token) for layer in box.layers):
        lines.append(SMALL.format("<i>" + escape(" · ".join(layer.token for layer in box.layers)) + "</i>"))
    params = sum(layer.params for layer in box.layers)
    figures = [f"{compact(params)} params"] if params else []
    if shape and not outputs:
        figures.insert(0, escape(shape))
    if figures:
        lines.append(SMALL.format(" · ".join(figures)))
    lines += output_lines(outputs, shape)
    return html(lines)


def output_lines(outputs: list[str], shape: str | None = None) -> list[str]:
    """'output' for the main one; 'output aux1' for a named head; with the shape where edges show none."""
    tail = f" {escape(shape)}" if shape else ""
    return [SMALL.format(("<i>output</i>" if n == "output" else f"<i>output {escape(n)}</i>") + tail) for n in outputs]


def written(block: BlockInstance) -> str:
    """A user block's call as the spec wrote it (`bottleneck(128, s=2)`); an inline composite's keyword.

    An inline `inception< … >` is its whole text, which its cluster already shows.
    """
    span = block.span
    if block.user and span is not None and span.line == span.end_line:
        text = " ".join(span.source.line(span.line)[span.col - 1 : span.end_col - 1].split())
        if text:
            return text if len(text) <= MAX_WRITTEN else text[: MAX_WRITTEN - 1] + "…"
    return block.name


def block_title(block: BlockInstance, label: str | None = None) -> str:
    """`bottleneck(128, 2)`, with the composite it is (`residual`) when a user block names one;
    a labelled block is its label, in bold, then the call in small type."""
    if label:
        return f"<b>{escape(label)}</b> " + SMALL.format(escape(written(block)))
    title = f"<b>{escape(written(block))}</b>"
    if block.user and block.kind is not BlockKind.BLOCK:
        title += " " + SMALL.format(escape(block.kind.value))
    return title


def totals(layers: tuple[Layer, ...]) -> str:
    params = sum(layer.params for layer in layers)
    macs = sum(layer.macs for layer in layers)
    count = sum(1 for layer in layers if layer.op.kind is not Kind.INPUT)
    return f"{count} layers · {compact(params)} params · {compact(macs)} MACs"


def box_label(box: Box, shapes: list[str], outputs: list[str], network_name: str,
              label: str | None = None, compact: bool = False) -> str:
    """A collapsed block: its name, its output shape(s) (on edges instead, when compact) and its totals."""
    title = block_title(box.block, label) if box.block is not None else f"<b>{escape(network_name)}</b>"
    shown = escape(", ".join(shapes))
    lines = [title] if compact else [title, SMALL.format(shown)]
    lines.append(SMALL.format(totals(box.layers)))
    lines += output_lines(outputs, ", ".join(shapes) if compact else None)
    return html(lines)


def cluster_label(frame: BlockInstance | Stage, label: str | None = None) -> str:
    """A block's call as written, or its label; a stage's label; a residual's shortcut says whether
    archdsl inserted the projection."""
    if isinstance(frame, Stage):
        return html([f'<font point-size="13"><b>{escape(frame.label)}</b></font>'])
    if frame.kind is BlockKind.SHORTCUT:
        return html([SMALL.format("<i>projection shortcut</i>" if frame.inserted else "<i>shortcut</i>")])
    return html([block_title(frame, label)])


def edge_label(tensor: Layer, name: str | None, shape: bool = True) -> str:
    """The shape an edge carries (where `shape`), with the tensor's @name when the spec named it (plain text)."""
    parts = ([f"@{name}"] if name else []) + ([fmt_shape(tensor.shape)] if shape else [])
    return " " + " ".join(parts) if parts else ""


def title(name: str, input_shape, outputs: dict, params: int, macs: int, legend: str) -> str:
    """The network's name, input, outputs and totals, above the legend."""
    outs = ", ".join(f"{escape(n)} {fmt_shape(s)}" for n, s in outputs.items())
    return (
        '<<table border="0" cellspacing="0" cellpadding="2">'
        f'<tr><td><font point-size="18"><b>{escape(name)}</b></font></td></tr>'
        f'<tr><td><font point-size="12">input {fmt_shape(input_shape)} → {outs}</font></td></tr>'
        f'<tr><td><font point-size="12">{params:,} params ({compact(params)}) · {macs:,} MACs ({compact(macs)})</font></td></tr>'
        f"<tr><td>{legend}</td></tr>"
        "</table>>"
    )

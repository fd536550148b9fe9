"""The `check` table and its JSON form."""
from __future__ import annotations

from decimal import Decimal

from .hierarchy import Hierarchy
from .network import Network
from .ops.base import compact_sizes
from .shapes import fmt_shape


def per_dim_text(values: tuple) -> str:
    """(5, 5) → "5"; (5, 17) → "5x17": one value per spatial dimension, as tokens write sizes; "-" for none."""
    return compact_sizes(values) if values else "-"


def human(n: float, unit: str = "") -> str:
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= factor:
            value = n / factor if abs(n) < 1e300 else Decimal(n) / Decimal(factor)  # beyond what a float holds
            return f"{value:.3g} {suffix}{unit}"
    return f"{n:g} {unit}".rstrip()


def table(net: Network) -> str:
    """One row per layer; a `label` column (the paper's names: conv2_x, inception (3a)) when the spec labels any."""
    hierarchy = Hierarchy(net.graph)
    labelled = hierarchy.has_labels
    rows = [("layer", *(("label",) if labelled else ()), "op", "output", "params", "MACs", "RF", "line")]
    for layer in net.layers:
        rows.append(
            (
                layer.name,
                *((hierarchy.known_as(layer.name) or "",) if labelled else ()),
                layer.token,
                fmt_shape(layer.shape),
                f"{layer.params:,}",
                f"{layer.macs:,}",
                per_dim_text(layer.receptive_field),
                str(layer.line or ""),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    right = {len(rows[0]) - k for k in (1, 2, 3, 4)}  # params, MACs, RF, line
    lines = []
    for i, row in enumerate(rows):
        cells = [c.rjust(w) if j in right else c.ljust(w) for j, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    outputs = ", ".join(f"{name} {fmt_shape(shape)}" for name, shape in net.outputs.items())
    lines.append("")
    lines.append(f"{net.name}: input {fmt_shape(net.input_shape)} → {outputs}")
    lines.append(
        f"total: {net.params:,} params ({human(net.params)}), {net.macs:,} MACs ({human(net.macs)}),"
        f" {len(net.layers) - 1:,} layers, activations {human(net.activation_memory, 'B')} at batch 1 (fp32)"
    )
    return "\n".join(lines)


def as_json(net: Network) -> dict:
    hierarchy = Hierarchy(net.graph)
    return {
        "name": net.name,
        "input_shape": list(net.input_shape),
        "outputs": {name: list(shape) for name, shape in net.outputs.items()},
        "params": net.params,
        "macs": net.macs,
        "activation_memory": net.activation_memory,
        "layers": [
            {
                "name": layer.name,
                "op": layer.token,
                "output_shape": list(layer.shape),
                "params": layer.params,
                "macs": layer.macs,
                "memory": layer.memory,
                "receptive_field": list(layer.receptive_field),
                "jump": list(layer.jump),
                "line": layer.line,
                "block": layer.scope[-1] if layer.scope else None,
                "label": hierarchy.known_as(layer.name),
            }
            for layer in net.layers
        ],
        "warnings": [w.format() for w in net.warnings],
    }

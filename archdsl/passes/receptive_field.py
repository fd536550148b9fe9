"""Receptive field and jump of every layer, per spatial dimension.

For a window of extent k and stride s: r_out = r_in + (k − 1)·j_in and
j_out = j_in·s (Araujo et al., "Computing receptive fields of CNNs").
Transposed convolutions and upsampling divide the jump instead, and widen the
field by (⌈k/s⌉ − 1)·j_in: each of their outputs sees at most ⌈k/s⌉ inputs.
Where branches merge, the field is the largest of the inputs' and the jump the
smallest.
"""
from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction


def _divide(jump: int | Fraction, stride: int) -> int | Fraction:
    """jump / stride, exact; an int while it divides (Fractions are slow, and rarely needed)."""
    if isinstance(jump, int) and jump % stride == 0:
        return jump // stride
    return Fraction(jump, stride)


def receptive_fields(graph) -> None:
    # node → (field, jump, (field, jump) as the Layer shows them); pointwise layers share their input's
    state: dict[str, tuple[tuple, tuple, tuple | None]] = {}
    for node, data in graph.nodes(data=True):
        layer = data["layer"]
        shown = None
        if not layer.inputs:
            rank = max(len(layer.shape) - 1, 0)
            field, jump = (1,) * rank, (1,) * rank
        else:
            if len(layer.inputs) == 1:
                field, jump, shown = state[layer.inputs[0]]
            else:
                fields = [state[i][0] for i in layer.inputs]
                jumps = [state[i][1] for i in layer.inputs]
                field = tuple(max(f) for f in zip(*fields))
                jump = tuple(min(j) for j in zip(*jumps))
            window = layer.op.window(tuple(graph.nodes[i]["layer"].shape for i in layer.inputs))
            if window is not None:
                shown = None
                if window.transposed:
                    # each output sees at most ⌈k/s⌉ inputs, one input jump apart
                    field = tuple(f + (-(-k // s) - 1) * j for f, k, s, j in zip(field, window.kernel, window.stride, jump))
                    jump = tuple(_divide(j, s) for j, s in zip(jump, window.stride))
                else:
                    field = tuple(f + (k - 1) * j for f, k, j in zip(field, window.kernel, jump))
                    jump = tuple(j * s for j, s in zip(jump, window.stride))
        if shown is None:  # ints stay exact; fractional jumps (after transposed layers) become floats
            shown = (tuple(math.ceil(f) for f in field), tuple(j if isinstance(j, int) else float(j) for j in jump))
        state[node] = (field, jump, shown)
        data["layer"] = replace(layer, receptive_field=shown[0], jump=shown[1])

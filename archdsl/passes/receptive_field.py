"""Receptive field, jump and field start of every layer, per spatial dimension.

For a window of extent k, stride s and padding p: r_out = r_in + (k − 1)·j_in,
j_out = j_in·s and start_out = start_in − p·j_in (Araujo et al., "Computing
receptive fields of CNNs"), where `start` is the input coordinate at which the
field of the layer's first output position begins (negative where padding reaches
past the edge): output position i sees input coordinates start + i·j … start + i·j + r − 1.
Transposed convolutions and upsampling divide the jump instead, and widen the
field by (⌈k/s⌉ − 1)·j_in: each of their outputs sees at most ⌈k/s⌉ inputs.
Where branches merge, the field is the largest of the inputs', the jump and the
start the smallest. Through convolutions and pooling these are exact; a transposed
layer's outputs do not step evenly over its inputs (outputs 0 and 1 of upsample(2)
read the same input), so after one a position's field is right to within one step
of the transposed layer's input.
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


def _shown(value: int | Fraction) -> int | float:
    """Ints stay exact; fractions (after transposed layers) become floats."""
    return value if isinstance(value, int) else float(value)


def receptive_fields(graph) -> None:
    # node → (field, jump, start, (field, jump, start) as the Layer shows them); pointwise layers share their input's
    state: dict[str, tuple[tuple, tuple, tuple, tuple | None]] = {}
    for node, data in graph.nodes(data=True):
        layer = data["layer"]
        shown = None
        if not layer.inputs:
            rank = max(len(layer.shape) - 1, 0)
            field, jump, start = (1,) * rank, (1,) * rank, (0,) * rank
        else:
            if len(layer.inputs) == 1:
                field, jump, start, shown = state[layer.inputs[0]]
            else:
                fields = [state[i][0] for i in layer.inputs]
                jumps = [state[i][1] for i in layer.inputs]
                starts = [state[i][2] for i in layer.inputs]
                field = tuple(max(f) for f in zip(*fields))
                jump = tuple(min(j) for j in zip(*jumps))
                start = tuple(min(s) for s in zip(*starts))
            window = layer.op.window(tuple(graph.nodes[i]["layer"].shape for i in layer.inputs))
            if window is not None:
                shown = None
                kernel, stride, padding = window.kernel, window.stride, window.padding
                if window.transposed:
                    # each output sees at most ⌈k/s⌉ inputs, one input jump apart; output 0 sees the inputs
                    # i with i·s = p − t for a kernel tap t < k, the first of them i = ⌈(p − k + 1)/s⌉
                    field = tuple(f + (-(-k // s) - 1) * j for f, k, s, j in zip(field, kernel, stride, jump))
                    start = tuple(a - ((k - 1 - p) // s) * j for a, k, s, p, j in zip(start, kernel, stride, padding, jump))
                    jump = tuple(_divide(j, s) for j, s in zip(jump, stride))
                else:
                    field = tuple(f + (k - 1) * j for f, k, j in zip(field, kernel, jump))
                    start = tuple(a - p * j for a, p, j in zip(start, padding, jump))
                    jump = tuple(j * s for j, s in zip(jump, stride))
        if shown is None:
            shown = (tuple(math.ceil(f) for f in field), tuple(map(_shown, jump)), tuple(map(_shown, start)))
        state[node] = (field, jump, start, shown)
        data["layer"] = replace(layer, receptive_field=shown[0], jump=shown[1], field_start=shown[2])

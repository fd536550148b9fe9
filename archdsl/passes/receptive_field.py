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


def receptive_fields(graph) -> None:
    state: dict[str, tuple[tuple[Fraction, ...], tuple[Fraction, ...]]] = {}
    for node, data in graph.nodes(data=True):
        layer = data["layer"]
        rank = max(len(layer.shape) - 1, 0)
        if not layer.inputs:
            field, jump = (Fraction(1),) * rank, (Fraction(1),) * rank
        else:
            fields = [state[i][0] for i in layer.inputs]
            jumps = [state[i][1] for i in layer.inputs]
            field = tuple(max(f) for f in zip(*fields))
            jump = tuple(min(j) for j in zip(*jumps))
            window = layer.op.window(tuple(graph.nodes[i]["layer"].shape for i in layer.inputs))
            if window is not None:
                if window.transposed:
                    # each output sees at most ⌈k/s⌉ inputs, one input jump apart
                    field = tuple(f + (-(-k // s) - 1) * j for f, k, s, j in zip(field, window.kernel, window.stride, jump))
                    jump = tuple(j / s for j, s in zip(jump, window.stride))
                else:
                    field = tuple(f + (k - 1) * j for f, k, j in zip(field, window.kernel, jump))
                    jump = tuple(j * s for j, s in zip(jump, window.stride))
        state[node] = (field, jump)
        data["layer"] = replace(
            layer,
            receptive_field=tuple(math.ceil(f) for f in field),
            jump=tuple(float(j) for j in jump),
        )

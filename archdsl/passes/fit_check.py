"""Warn where a layer's windows leave real input rows or columns uncovered.

(W − F + 2P)/S must leave no remainder that falls on the input: AlexNet's
conv11-96/4 on 224 gives 54.25 and skips a row, where 227 fits. A remainder
that falls on padding, or a narrow kernel skipping its usual gap, is fine.
"""
from __future__ import annotations

from ..errors import ArchWarning
from ..ops import Window
from ..shapes import nearest_fitting_sizes, uncovered_input_rows

AXES = {1: ("columns",), 2: ("rows", "columns"), 3: ("frames", "rows", "columns")}


def check_fit(graph) -> list[ArchWarning]:
    warnings = []
    for node, data in graph.nodes(data=True):
        layer = data["layer"]
        if not layer.inputs or layer.inserted and layer.span is None:
            continue
        inputs = tuple(graph.nodes[i]["layer"].shape for i in layer.inputs)
        window = layer.op.window(inputs)
        if window is None or window.transposed or window.ceil:
            continue
        spatial = inputs[0][1:]
        if window == Window.covering(spatial):
            continue  # a global window (gap, fc) always fits
        axes = AXES.get(len(spatial), ("positions",) * len(spatial))
        for size, k, s, p, axis in zip(spatial, window.kernel, window.stride, window.padding, axes):
            lost = uncovered_input_rows(size, k, s, p)
            if not lost:
                continue
            below, above = nearest_fitting_sizes(size, k, s, p)
            fits = " or ".join(str(v) for v in (below, above) if v is not None)
            ratio = (size - k + 2 * p) / s + 1
            warnings.append(
                ArchWarning(
                    f"{layer.token} doesn't fit its {size}-wide input: ({size} − {k} + 2·{p})/{s} + 1 = {ratio:g},"
                    f" so its windows leave {lost} input {axis if lost > 1 else axis[:-1]} uncovered;"
                    f" an input of {fits} would fit. Received: input shape {'x'.join(map(str, inputs[0]))}",
                    layer.span,
                )
            )
            break
    return warnings

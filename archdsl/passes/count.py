"""Parameters, multiply-accumulates (MACs) and activation memory of every layer.

MACs count convolutions and fully connected layers only (what dominates and
what the papers quote); memory is the output activation in fp32 at batch 1.
"""
from __future__ import annotations

import math
from dataclasses import replace

BYTES_PER_VALUE = 4


def count_costs(graph) -> None:
    for node, data in graph.nodes(data=True):
        layer = data["layer"]
        inputs = tuple(graph.nodes[i]["layer"].shape for i in layer.inputs)
        data["layer"] = replace(
            layer,
            params=layer.op.params(inputs) if inputs else 0,
            macs=layer.op.macs(inputs, layer.shape) if inputs else 0,
            memory=math.prod(layer.shape) * BYTES_PER_VALUE,
        )

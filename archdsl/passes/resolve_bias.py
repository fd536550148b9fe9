"""Decide convolution biases left to archdsl: none where a batch norm follows.

A bias before bn is cancelled by bn's mean subtraction and shifted back by its
β, so the papers' code (and torchvision) leave it out; the parameter counts of
the zoo depend on it. `bias=true` or `bias=false` in the spec wins.
"""
from __future__ import annotations

from dataclasses import replace

from ..ops import BatchNorm, Conv, Deconv


def resolve_bias(graph) -> None:
    for node, data in graph.nodes(data=True):
        layer = data["layer"]
        if not isinstance(layer.op, (Conv, Deconv)) or layer.op.bias is not None:
            continue
        consumers = [graph.nodes[s]["layer"].op for s in graph.successors(node)]
        followed_by_bn = len(consumers) == 1 and isinstance(consumers[0], BatchNorm)
        data["layer"] = replace(layer, op=replace(layer.op, bias=not followed_by_bn))

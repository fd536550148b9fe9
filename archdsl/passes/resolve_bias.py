"""Decide convolution biases left to archdsl: none where a batch norm follows.

A bias before bn is cancelled by bn's mean subtraction and shifted back by its
β, so the papers' code (and torchvision) leave it out; the parameter counts of
the zoo depend on it. `bias=true` or `bias=false` in the spec wins.
"""
from __future__ import annotations

from dataclasses import replace

from ..ops import Trait


def resolve_bias(graph) -> None:
    """Give every op whose `bias` is left to archdsl (None) one, unless its only consumer cancels it."""
    for node, data in graph.nodes(data=True):
        layer = data["layer"]
        if getattr(layer.op, "bias", False) is not None:
            continue
        consumers = [graph.nodes[s]["layer"].op for s in graph.successors(node)]
        cancelled = len(consumers) == 1 and consumers[0].has(Trait.CANCELS_BIAS)
        data["layer"] = replace(layer, op=replace(layer.op, bias=not cancelled))

"""Compact diagrams: a layer's element-wise and normalizing followers fold into its box.

`conv3-64 bn relu` is one box, `conv3-64 · bn · relu`, as the papers draw it. What
folds is decided by what the ops are, never by their names: a layer folds into the
box before it when it is `Trait.ELEMENTWISE` (activations, dropout) or a
normalization (`Kind.NORMALIZATION`: bn, lrn, …), reads only that box's tensor, and
that tensor goes nowhere else. A new op folds, or not, by the traits it declares.
"""
from __future__ import annotations

from ..hierarchy import Hierarchy
from ..ir import IRGraph, Layer
from ..ops import Kind, Trait


def folds(layer: Layer) -> bool:
    """Whether a layer may join the box of the layer before it."""
    return layer.op.has(Trait.ELEMENTWISE) or layer.op.kind is Kind.NORMALIZATION


def fold_chains(graph: IRGraph, hierarchy: Hierarchy, where: dict[str, str]) -> None:
    """Point each foldable layer at its predecessor's box in `where` (layer name → box id), in place."""
    outputs = set(graph.outputs.values())
    for name, data in graph.nodes(data=True):
        layer: Layer = data["layer"]
        if where[name] != name or len(set(layer.inputs)) != 1 or not folds(layer):
            continue  # inside a collapsed block already, a merge, or a layer that keeps its own box
        (before,) = set(layer.inputs)
        tail: Layer = graph.nodes[before]["layer"]
        box = where[before]
        if (
            box not in graph  # the predecessor is drawn inside a collapsed block
            or tail.op.kind is Kind.INPUT
            or graph.out_degree(before) != 1  # its tensor goes elsewhere too
            or before in outputs
            or before in graph.tensor_names  # a named tensor keeps its edge, where its name is shown
            or name in graph.labels  # a labelled layer is a box of its own, titled by its label
            or hierarchy.parent(name) != hierarchy.parent(box)  # across a frame's border
        ):
            continue
        where[name] = box

"""Where a layer, block or stage sits: the frames around it, and the label a reader knows it by.

Frames are block instances (`graph.blocks`) and labelled stages (`graph.stages`).
An item's parent is the stage that lists it, else the block instance it was
written in; a stage's parent is the stage around it, else its block instance.
Diagrams nest their clusters by it; `archdsl check` names each layer's label by it.
"""
from __future__ import annotations

from collections.abc import Iterator

from .ir import IRGraph


class Hierarchy:
    def __init__(self, graph: IRGraph):
        self.graph = graph
        self.stage_of = {member: stage.id for stage in graph.stages.values() for member in stage.members}

    def parent(self, item: str) -> str | None:
        """The innermost frame around a layer, block instance or stage (None: the network's body)."""
        graph = self.graph
        if item in self.stage_of:
            return self.stage_of[item]
        if item in graph.stages:
            return graph.stages[item].parent
        if item in graph.blocks:
            return graph.blocks[item].parent
        scope = graph.nodes[item]["layer"].scope
        return scope[-1] if scope else None

    def ancestors(self, item: str) -> Iterator[str]:
        """The frames around `item`, innermost first."""
        frame = self.parent(item)
        while frame is not None:
            yield frame
            frame = self.parent(frame)

    def label(self, item: str) -> str | None:
        """The spec's own label for a layer, block instance or stage."""
        if item in self.graph.stages:
            return self.graph.stages[item].label
        return self.graph.labels.get(item)

    def known_as(self, item: str) -> str | None:
        """The innermost label on the way out from `item`: its own, its block's, its stage's."""
        for frame in (item, *self.ancestors(item)):
            label = self.label(frame)
            if label is not None:
                return label
        return None

    @property
    def has_labels(self) -> bool:
        return bool(self.graph.labels or self.graph.stages)

"""The items of an imported spec: layers, merges, composites, splits, names, block calls.

The importer's structure passes (`composites`, `sequence`, `blocks`) turn the imported graph into
a sequence of these; `write` writes them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .convert import Layer

# ---- the items of a spec ---------------------------------------------------------------------------------


@dataclass
class LayerItem:
    node: str


@dataclass
class MergeItem:
    """A merge written with named tensors: `add(@a)`, `concat(@a, @b)` (the current tensor first)."""

    node: str
    refs: list[str]


@dataclass
class Residual:
    fork: str
    merge: str
    body: list
    shortcut: list | None  # None: archdsl's own projection, left for it to insert; []: the identity
    inserted: list[str] = field(default_factory=list)  # the projection's layers, when archdsl inserts them


@dataclass
class Inception:
    fork: str
    merge: str
    branches: list[list]


@dataclass
class SqueezeExcite:
    fork: str
    merge: str
    ratio: int | None  # se<r>: the squeeze is C/r
    squeeze: int | None  # se<squeeze=n> where no whole r gives it
    act: str  # the activation between (relu) and the gate (sigmoid), as archdsl's families
    gate: str
    form: str  # fc, or conv (torchvision's 1×1 convolutions)
    layers: list[str]

    def options(self, slots: dict | None = None) -> str:
        """`16`, `squeeze=8, act=silu, form=conv`: what se<…> needs written."""
        slots = slots or {}
        if self.ratio is not None:
            parts = [str(slots.get((self.merge, "ratio"), self.ratio))]
        else:
            parts = [f"squeeze={slots.get((self.merge, 'squeeze'), self.squeeze)}"]
        parts += [f"{k}={v}" for k, v, d in (("act", self.act, "relu"), ("gate", self.gate, "sigmoid"),
                                                 ("form", self.form, "fc")) if v != d]
        return ", ".join(parts)


@dataclass
class SplitItem:
    """`split(24, 40) -> a, b`: the channels of one tensor cut into parts, each named."""

    nodes: list[str]  # the parts' layers, in channel order
    names: list[str] = field(default_factory=list)


@dataclass
class Name:
    name: str


@dataclass
class Ref:
    name: str


@dataclass
class Call:
    block: "Block"
    args: tuple  # one value per parameter
    nodes: list[str]  # the layers of this occurrence


@dataclass
class Repeat:
    call: Call
    count: int


@dataclass
class Block:
    name: str
    params: list[str]
    defaults: dict[str, int]
    template: list  # the first occurrence's items
    slots: dict  # (node of the template, field) → a number, or the expression text of a parameter
    values: dict = field(default_factory=dict)  # parameter → its value in each occurrence
    calls: list[Call] = field(default_factory=list)


Composite = (Residual, Inception, SqueezeExcite)


def nodes_of(items) -> list[str]:
    """Every layer in a sequence of items (composites' layers included), in order."""
    out = []
    for item in items:
        if isinstance(item, (LayerItem, MergeItem)):
            out.append(item.node)
        elif isinstance(item, SplitItem):
            out += item.nodes
        elif isinstance(item, Residual):
            out += nodes_of(item.body) + (nodes_of(item.shortcut) if item.shortcut else item.inserted) + [item.merge]
        elif isinstance(item, Inception):
            out += [n for b in item.branches for n in nodes_of(b)] + [item.merge]
        elif isinstance(item, SqueezeExcite):
            out += item.layers + [item.merge]
        elif isinstance(item, Call):
            out += item.nodes
    return out


def output_of(item) -> str:
    if isinstance(item, (LayerItem, MergeItem)):
        return item.node
    if isinstance(item, SplitItem):
        return item.nodes[-1]
    if isinstance(item, Composite):
        return item.merge
    raise TypeError(item)


def layer_of(graph, node) -> Layer:
    """The imported layer at `node` of the imported graph."""
    return graph.nodes[node]["layer"]


def all_items(items):
    """Every item in a sequence, those inside composites too."""
    for item in items:
        yield item
        if isinstance(item, Residual):
            yield from all_items(item.body)
            yield from all_items(item.shortcut or [])
        elif isinstance(item, Inception):
            for branch in item.branches:
                yield from all_items(branch)

"""What a diagram draws at a given `--depth`: boxes, the edges between them, and open frames.

Depth counts levels of the network's hierarchy, as `du --max-depth` does for
folders. Level 1 is the spec's body: its layers, and its blocks (`inception`,
`residual`, `se`, user blocks). Each block opens one more level: the layers and
blocks written inside it. `--depth N` draws levels 1…N; a block at level N is
drawn as one box (its totals), and the blocks above it as clusters around
their contents. So

    --depth 0   the whole network as one box
    --depth 1   top-level layers, and each top-level block as one box
                (ResNet-152: stem, 50 bottleneck boxes, head)
    --depth 2   top-level blocks open, blocks nested in them as boxes
    no --depth  everything open

An inception's branches and a residual's shortcut are parts of their block,
not blocks of their own: they add no level and never collapse alone. A
labelled stage (`"conv2_x": …`) is a frame around its layers and blocks, and
no level either. Compact views (`compact=True`) also fold each layer's
element-wise and normalizing followers into its box (`fold.fold_chains`) and
gather the edges a frame's input fans out into one point inside the frame
(`junctions.add_junctions`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from ..hierarchy import Hierarchy
from ..ir import BlockInstance, IRGraph, Layer, Stage, layers_in_order
from ..ops import Kind

WHOLE_NETWORK = "network"  # the one box at depth 0 (no other node can then clash with its name)

Frame = Union[BlockInstance, Stage]


@dataclass(frozen=True)
class Box:
    """One node of the diagram: a layer (with the layers folded into it), or every layer of a collapsed block."""

    id: str
    layers: tuple[Layer, ...]
    block: BlockInstance | None  # the collapsed block; None for a layer and for the whole network
    cluster: str | None  # the open frame (block instance or stage) it is drawn in; None at the top level
    collapsed: bool = False  # a block (or, at depth 0, the network) drawn as one box

    @property
    def head(self) -> Layer:
        return self.layers[0]


@dataclass(frozen=True)
class Edge:
    tail: str
    head: str
    tensor: Layer  # the layer whose output the edge carries
    skip: bool  # a residual's identity, SE's pass-through or a @name argument of add/concat
    labelled: bool = True  # False from a junction point: the edge into the point says what it carries


@dataclass
class View:
    boxes: dict[str, Box] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    clusters: dict[str, Frame] = field(default_factory=dict)  # the frames drawn open
    contents: dict[str | None, list[str]] = field(default_factory=dict)  # frame → box, point and frame ids, in order
    points: dict[str, str | None] = field(default_factory=dict)  # junction point → the frame it is drawn in
    hierarchy: Hierarchy | None = None

    def frames_around(self, item: str) -> list[str]:
        """The open frames around a box or point, innermost first."""
        frame = self.boxes[item].cluster if item in self.boxes else self.points[item]
        return [] if frame is None else [frame, *self.hierarchy.ancestors(frame)]


def levels(blocks: dict[str, BlockInstance], scope: tuple[str, ...]) -> list[str]:
    """The block instances of a scope that count as levels (parts of composites do not)."""
    return [i for i in scope if not blocks[i].kind.is_part]


def owner(layer: Layer, blocks: dict[str, BlockInstance], depth: int | None) -> str | None:
    """The collapsed block a layer is drawn inside, or None when it is drawn itself."""
    if depth is None:
        return None
    if depth == 0:
        return WHOLE_NETWORK
    counted = levels(blocks, layer.scope)
    return counted[depth - 1] if len(counted) >= depth else None


def is_skip(tail: Layer, head: Layer, blocks: dict[str, BlockInstance]) -> bool:
    """Whether an edge into a merge is the path that bypasses the rest: drawn dashed, around it."""
    if head.op.kind is not Kind.MERGE:
        return False
    if not head.inserted:  # add(@x), concat(@e1) as written: the first input is the main path
        return head.inputs.index(tail.name) > 0
    # A composite's merge: its block's input, passed through untouched (a residual's identity,
    # SE's x), runs around the body. A projection is drawn in its own cluster, and an
    # inception's concat joins branches that are all drawn.
    block = blocks.get(head.scope[-1]) if head.scope else None
    return block is not None and block.merge == head.name and tail.name == block.skip == block.entry


def build_view(graph: IRGraph, depth: int | None = None, compact: bool = False) -> View:
    """The boxes, edges and frames for `depth` (None: everything open; see the module's doc)."""
    from .fold import fold_chains
    from .junctions import add_junctions

    blocks = graph.blocks
    hierarchy = Hierarchy(graph)
    view = View(hierarchy=hierarchy)
    layers = layers_in_order(graph)
    by_name = {layer.name: layer for layer in layers}
    where: dict[str, str] = {}  # layer name → box id
    for layer in layers:
        where[layer.name] = owner(layer, blocks, depth) or layer.name
    if compact:
        fold_chains(graph, hierarchy, where)
    members: dict[str, list[Layer]] = {}
    for layer in layers:
        members.setdefault(where[layer.name], []).append(layer)
    for box_id, inside in members.items():
        if box_id == WHOLE_NETWORK and depth == 0:
            view.boxes[box_id] = Box(box_id, tuple(inside), None, None, collapsed=True)
        elif box_id in blocks:
            view.boxes[box_id] = Box(box_id, tuple(inside), blocks[box_id], hierarchy.parent(box_id), collapsed=True)
        else:
            view.boxes[box_id] = Box(box_id, tuple(inside), None, hierarchy.parent(inside[0].name))
    _nest(view, graph, hierarchy)
    seen: set[tuple[str, str, str]] = set()
    for head in layers:
        for name in head.inputs:
            tail = by_name[name]
            key = (where[name], where[head.name], name)
            if key[0] == key[1] or key in seen:
                continue
            seen.add(key)
            view.edges.append(Edge(key[0], key[1], tail, is_skip(tail, head, blocks)))
    if compact:
        add_junctions(view)
    return view


def _nest(view: View, graph: IRGraph, hierarchy: Hierarchy) -> None:
    """Open every frame that holds a box, and list each frame's contents in drawing order."""
    view.contents[None] = []
    for box in view.boxes.values():
        child, parent = box.id, box.cluster
        while True:
            if child not in view.contents.setdefault(parent, []):
                view.contents[parent].append(child)
            if parent is None or parent in view.clusters:
                break
            view.clusters[parent] = graph.stages[parent] if parent in graph.stages else graph.blocks[parent]
            child, parent = parent, hierarchy.parent(parent)

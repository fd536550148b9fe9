"""What a diagram draws at a given `--depth`: boxes, the edges between them, and open clusters.

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
not blocks of their own: they add no level and never collapse alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import BlockInstance, Layer
from ..ops import Kind

WHOLE_NETWORK = "network"  # the one box at depth 0 (no other node can then clash with its name)


@dataclass(frozen=True)
class Box:
    """One node of the diagram: a layer, or every layer of a collapsed block."""

    id: str
    layers: tuple[Layer, ...]
    block: BlockInstance | None  # the collapsed block; None for a layer and for the whole network
    cluster: str | None  # the open block instance it is drawn in; None at the top level
    collapsed: bool = False  # a block (or, at depth 0, the network) drawn as one box


@dataclass(frozen=True)
class Edge:
    tail: str
    head: str
    tensor: Layer  # the layer whose output the edge carries
    skip: bool  # a residual's identity, SE's pass-through or a @name argument of add/concat


@dataclass
class View:
    boxes: dict[str, Box] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    clusters: dict[str, BlockInstance] = field(default_factory=dict)  # the blocks drawn open
    contents: dict[str | None, list[str]] = field(default_factory=dict)  # cluster → box and cluster ids, in order


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


def build_view(layers: list[Layer], blocks: dict[str, BlockInstance], depth: int | None = None) -> View:
    """The boxes, edges and clusters for `depth` (None: everything open; see the module's doc)."""
    view = View()
    by_name = {layer.name: layer for layer in layers}
    where: dict[str, str] = {}  # layer name → box id
    members: dict[str, list[Layer]] = {}
    for layer in layers:
        box = owner(layer, blocks, depth) or layer.name
        where[layer.name] = box
        members.setdefault(box, []).append(layer)
    for box_id, inside in members.items():
        if box_id == WHOLE_NETWORK and depth == 0:
            view.boxes[box_id] = Box(box_id, tuple(inside), None, None, collapsed=True)
        elif box_id in blocks:
            block = blocks[box_id]
            view.boxes[box_id] = Box(box_id, tuple(inside), block, block.parent, collapsed=True)
        else:
            (layer,) = inside
            view.boxes[box_id] = Box(box_id, (layer,), None, layer.scope[-1] if layer.scope else None)
    _nest(view, blocks)
    seen: set[tuple[str, str, str]] = set()
    for head in layers:
        for name in head.inputs:
            tail = by_name[name]
            key = (where[name], where[head.name], name)
            if key[0] == key[1] or key in seen:
                continue
            seen.add(key)
            view.edges.append(Edge(key[0], key[1], tail, is_skip(tail, head, blocks)))
    return view


def _nest(view: View, blocks: dict[str, BlockInstance]) -> None:
    """Open every block that holds a box, and list each cluster's contents in drawing order."""
    view.contents[None] = []
    for box in view.boxes.values():
        child, parent = box.id, box.cluster
        while True:
            if child not in view.contents.setdefault(parent, []):
                view.contents[parent].append(child)
            if parent is None or parent in view.clusters:
                break
            view.clusters[parent] = blocks[parent]
            child, parent = parent, blocks[parent].parent

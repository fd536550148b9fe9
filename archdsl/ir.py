"""The graph IR: an `IRGraph` (a networkx DiGraph) whose nodes carry frozen `Layer` values.

Node keys are layer names (unique, dotted by block instance:
`bottleneck3.conv2`). Edges run from producer to consumer; a layer's `inputs`
keep the order its op needs (concat order, SE's (x, s)). What the graph knows
as a whole (its input, its blocks, its outputs) are named fields of `IRGraph`.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

import networkx as nx

from .errors import Span
from .ops import Op
from .shapes import Shape


class BlockKind(enum.Enum):
    """What a block instance is. BRANCH and SHORTCUT are parts of a composite, not blocks of their own."""

    BLOCK = "block"  # a user block that is not a single composite
    INCEPTION = "inception"
    RESIDUAL = "residual"
    SE = "se"
    BRANCH = "branch"  # one branch of an inception
    SHORTCUT = "shortcut"  # a residual's shortcut: written, or the projection archdsl inserted

    @property
    def is_part(self) -> bool:
        return self in (BlockKind.BRANCH, BlockKind.SHORTCUT)


@dataclass(frozen=True)
class BlockInstance:
    """One expansion of a composite or a user block, with the facts backends and diagrams read.

    `id` is the dotted prefix of its layers' names; `name` is what the spec
    called (`bottleneck` for a user block, else the construct's keyword); `user`
    says whether a `block` definition was called. A user block built around one
    composite (`residual<…> relu`) *is* that composite: its kind is the
    composite's.
    """

    id: str
    kind: BlockKind
    name: str
    span: Span | None
    parent: str | None
    user: bool = False
    entry: str | None = None  # the tensor the block reads
    merge: str | None = None  # the node closing a composite: residual's add, inception's concat, se's mul
    skip: str | None = None  # the merge's input that bypasses the body: a residual's identity or shortcut end, se's x
    shortcut: str | None = None  # the id of a residual's shortcut part, when it has one
    inserted: bool = False  # a part archdsl made itself (the projection shortcut)

    @property
    def depth(self) -> int:
        return self.id.count(".") + 1


@dataclass(frozen=True)
class Stage:
    """A labelled run of layers and blocks that is no single block: `"conv2_x": basic(64) * 2`.

    Stages group what diagrams frame and tables name together; they add no level
    to `--depth` and nothing to layer names. `members` are the layers, block
    instances and inner stages written in it, in order; `parent` is the block
    instance it was written in (None: the network's body).
    """

    id: str  # `stage#1`: never a layer name or a block instance id
    label: str
    span: Span | None
    parent: str | None
    members: tuple[str, ...]


@dataclass(frozen=True)
class Layer:
    """One node of the IR with everything the analysis knows about it.

    `scope` lists the block instances it came from, outermost first. `token`
    is the layer as written in the spec (`conv3-64`), or archdsl's own
    spelling for layers it inserted (`inserted=True`: projection shortcuts,
    squeeze-and-excitation's parts, merges).
    """

    name: str
    op: Op
    inputs: tuple[str, ...]
    shape: Shape
    span: Span | None
    scope: tuple[str, ...] = ()
    token: str = ""
    inserted: bool = False
    # Filled in by the analysis passes (archdsl.passes):
    params: int = 0
    macs: int = 0
    memory: int = 0  # bytes of the output activation, fp32, batch 1
    receptive_field: tuple[int, ...] = ()
    jump: tuple[int | float, ...] = ()  # an int while whole; a float after transposed layers
    # where the field of the first output position starts on the input (negative into padding):
    # output position i sees input coordinates field_start + i·jump … field_start + i·jump + receptive_field − 1
    field_start: tuple[int | float, ...] = ()

    @property
    def line(self) -> int | None:
        return self.span.line if self.span else None


class _GraphField:
    """A named field of the graph, kept in `graph.graph` so that networkx's copies carry it."""

    def __init__(self, default_factory=None):
        self.default_factory = default_factory

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, graph, owner=None):
        if graph is None:
            return self
        if self.name not in graph.graph and self.default_factory is not None:
            graph.graph[self.name] = self.default_factory()
        return graph.graph.get(self.name)

    def __set__(self, graph, value):
        graph.graph[self.name] = value


class IRGraph(nx.DiGraph):
    """The network as a DiGraph of layers, with what it knows as a whole as named fields."""

    input = _GraphField()  # the input node's name
    blocks = _GraphField(dict)  # instance id → BlockInstance
    tensor_names = _GraphField(dict)  # node → the name a spec gave its tensor with `-> name`
    labels = _GraphField(dict)  # layer name or block instance id → what the spec labelled it (`"3a": …`)
    stages = _GraphField(dict)  # stage id → Stage: a labelled run of several layers and blocks
    main_sink = _GraphField()  # the end of the last chain: the main output
    outputs = _GraphField(dict)  # output name → node, main output first (set by `network.name_outputs`)
    # the span of each written term → the tensor it ended on, once per expansion (in order): editors
    # show the shape after a line, a block call or an @name by it
    term_outputs = _GraphField(dict)

    def layer(self, name: str) -> Layer:
        return self.nodes[name]["layer"]

    def shape(self, name: str) -> Shape:
        return self.nodes[name]["layer"].shape


def layers_in_order(graph) -> list[Layer]:
    """Layers in the order they were built, which is a topological order."""
    return [data["layer"] for _, data in graph.nodes(data=True)]

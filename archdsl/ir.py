"""The graph IR: a networkx DiGraph whose nodes carry frozen `Layer` values.

Node keys are layer names (unique, dotted by block instance:
`bottleneck3.conv2`). Edges run from producer to consumer; a layer's `inputs`
keep the order its op needs (concat order, SE's (x, s)). Graph attributes:
`blocks` (instance id → BlockInstance), `input` (the input node's name) and
`outputs` (output name → node name).
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import Span
from .ops import Op
from .shapes import Shape


@dataclass(frozen=True)
class BlockInstance:
    """One expansion of a composite: `inception<…>`, `residual<…>`, `se<…>` or a user block.

    `id` is the dotted prefix of its layers' names; `name` is what the spec
    called (`bottleneck` for a user block, else the construct's keyword).
    """

    id: str
    # "block", "inception", "residual" or "se"; and the parts of a composite:
    # "branch" (one of an inception's) and "shortcut" (a residual's projection)
    kind: str
    name: str
    span: Span | None
    parent: str | None

    @property
    def depth(self) -> int:
        return self.id.count(".") + 1


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


def layers_in_order(graph) -> list[Layer]:
    """Layers in the order they were built, which is a topological order."""
    return [data["layer"] for _, data in graph.nodes(data=True)]

"""Ops with several inputs: `add(@x)`, `concat(@e1)`, `mul(@gate)`.

In a spec the current tensor is the first input and each `@name` adds one more.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ShapeError
from ..shapes import Shape, fmt_shape
from .base import Kind, Op, Trait, register


def _received(inputs: tuple[Shape, ...]) -> str:
    return "Received: " + ", ".join(fmt_shape(s) for s in inputs)


@register
@dataclass(frozen=True)
class Add(Op):
    family = "add"
    example = "-> a conv3-8 add(@a)"
    doc = "element-wise sum of the current tensor and each @name"
    kind = Kind.MERGE
    traits = frozenset({Trait.OUTPUT_OVERWRITABLE})
    min_inputs = 2
    max_inputs = None

    def output_shape(self, inputs: tuple[Shape, ...]) -> Shape:
        if len(set(inputs)) != 1:
            what = "channels" if len({s[1:] for s in inputs}) == 1 else "shapes"
            raise ShapeError(f"add needs tensors of one shape, but their {what} differ. {_received(inputs)}")
        return inputs[0]


@register
@dataclass(frozen=True)
class Concat(Op):
    """Concatenation on channels: spatial sizes must agree."""

    family = "concat"
    example = "-> a conv3-8 concat(@a)"
    doc = "concatenation on channels of the current tensor and each @name"
    kind = Kind.MERGE
    traits = frozenset({Trait.OUTPUT_OVERWRITABLE})
    min_inputs = 2
    max_inputs = None

    def output_shape(self, inputs: tuple[Shape, ...]) -> Shape:
        if len({len(s) for s in inputs}) != 1 or len({s[1:] for s in inputs}) != 1:
            raise ShapeError(f"concat needs tensors of one spatial size. {_received(inputs)}")
        return (sum(s[0] for s in inputs), *inputs[0][1:])


def broadcast_channels_first(inputs: tuple[Shape, ...]) -> Shape:
    """The shape of an element-wise product whose inputs broadcast channels first: a shorter
    shape gains trailing 1s (C → C×1×1 beside a C×H×W map), then every dimension is equal or 1."""
    rank = max(len(s) for s in inputs)
    padded = [s + (1,) * (rank - len(s)) for s in inputs]
    out = []
    for dims in zip(*padded):
        sizes = set(dims) - {1}
        if len(sizes) > 1:
            raise ShapeError(
                "mul needs tensors that broadcast: each dimension equal or 1, channels first"
                f" (a C or C×1×1 gate scales a C×H×W map). {_received(inputs)}"
            )
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


@register
@dataclass(frozen=True)
class Mul(Op):
    """The element-wise product, broadcasting channels first: `mul(@gate)` scales a C×H×W map by a
    C×1×1 (or C) gate, the last step of squeeze-and-excitation, which `se<r>` builds with it too."""

    family = "mul"
    example = "-> x gap conv1-8 sigmoid mul(@x)"
    doc = "element-wise product of the current tensor and each @name, broadcasting channels first"
    kind = Kind.MERGE
    traits = frozenset({Trait.OUTPUT_OVERWRITABLE})  # its gradient reads its inputs, not its output
    min_inputs = 2
    max_inputs = None

    def output_shape(self, inputs: tuple[Shape, ...]) -> Shape:
        return broadcast_channels_first(inputs)


@register
@dataclass(frozen=True)
class Input(Op):
    """The network's input tensor."""

    family = "input"
    kind = Kind.INPUT
    hidden = True
    min_inputs = 0
    max_inputs = 0
    shape: tuple[int, ...] = ()

    def output_shape(self, inputs: tuple[Shape, ...]) -> Shape:
        return self.shape

    def describe(self) -> str:
        return "input " + fmt_shape(self.shape)

"""Ops with several inputs: `add(@x)`, `concat(@e1)`, and SE's channel scaling.

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


@register
@dataclass(frozen=True)
class Scale(Op):
    """x · s per channel: squeeze-and-excitation's last step (x: C×H×W, s: C)."""

    family = "scale"
    kind = Kind.MERGE
    hidden = True
    min_inputs = 2
    max_inputs = 2

    def output_shape(self, inputs: tuple[Shape, ...]) -> Shape:
        x, s = inputs
        if s[0] != x[0] or any(d != 1 for d in s[1:]):
            raise ShapeError(f"scale needs one weight per channel of its input. {_received(inputs)}")
        return x


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

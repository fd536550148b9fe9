"""Fully connected layers (`fc-4096`, `FC-4096`, `fc-384(pointwise=true)`) and `flatten`.

An fc layer on a C×H×W tensor flattens it first, as the VGG table goes straight
from `maxpool` to `FC-4096`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..shapes import Shape
from .base import Call, Kind, Op, Option, Role, Trait, Weight, Window, flag, register


@register
@dataclass(frozen=True)
class FC(Op):
    """Fully connected. On a C×H×W map it flattens the map first, as the tables go from a pooling
    straight to `FC-4096`; with `pointwise=true` it is applied at each position instead, over the
    channels: ConvNeXt's nn.Linear on a channels-last map (a 1×1 convolution with 2-D weights)."""

    family = "fc"
    aliases = ("linear",)
    example = "fc-10"
    doc = "fully connected; flattens a C×H×W input first"
    options = (
        Option("bias", True, "true or false"),
        Option("pointwise", False, "apply at each position of a map, over its channels, instead of flattening it"),
    )
    kind = Kind.FC
    traits = frozenset({Trait.OUTPUT_OVERWRITABLE})
    out_features: int
    bias: bool = True
    pointwise: bool = False

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "FC":
        out = call.take_dimension("a number of units", "fc-4096")
        values = call.take_options(cls.options)
        bias = flag(values["bias"], "bias", call.text)
        pointwise = flag(values["pointwise"], "pointwise", call.text)
        call.finish()
        return cls(out, bool(bias), bool(pointwise) and len(inputs[0]) > 1)

    def in_features(self, inputs: tuple[Shape, ...]) -> int:
        return inputs[0][0] if self.pointwise else math.prod(inputs[0])

    def output_shape(self, inputs: tuple[Shape, ...]) -> Shape:
        return (self.out_features, *inputs[0][1:]) if self.pointwise else (self.out_features,)

    def weights(self, inputs: tuple[Shape, ...]) -> dict[str, Weight]:
        weight = {"weight": Weight((self.out_features, self.in_features(inputs)), Role.DENSE)}
        return {**weight, "bias": Weight((self.out_features,), Role.BIAS)} if self.bias else weight

    def macs(self, inputs: tuple[Shape, ...], output: Shape) -> int:
        return math.prod(output) * self.in_features(inputs)

    def window(self, inputs: tuple[Shape, ...]) -> Window | None:
        spatial = inputs[0][1:]
        if not spatial or self.pointwise:
            return None
        return Window.covering(spatial)

    def describe(self) -> str:
        return f"fc-{self.out_features}"


@register
@dataclass(frozen=True)
class Flatten(Op):
    family = "flatten"
    example = "flatten"
    doc = "C×H×W → C·H·W"
    kind = Kind.RESHAPE
    # after a global pool (C×1×1 → C) the channels stay in order: heads are found through it
    traits = frozenset({Trait.KEEPS_CHANNELS})

    def output_shape(self, inputs: tuple[Shape, ...]) -> Shape:
        return (math.prod(inputs[0]),)

"""Fully connected layers (`fc-4096`, `FC-4096`) and `flatten`.

An fc layer on a C×H×W tensor flattens it first, as the VGG table goes straight
from `maxpool` to `FC-4096`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..shapes import Shape
from .base import Call, Op, Window, register
from .conv import _flag


@register
@dataclass(frozen=True)
class FC(Op):
    family = "fc"
    aliases = ("linear",)
    kind = "fc"
    out_features: int
    bias: bool = True

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "FC":
        out = call.take_dimension("a number of units", "fc-4096")
        bias = _flag(call.take_option("bias", True), "bias", call.text)
        call.finish()
        return cls(out, bool(bias))

    def output_shape(self, inputs: tuple[Shape, ...]) -> Shape:
        return (self.out_features,)

    def params(self, inputs: tuple[Shape, ...]) -> int:
        return math.prod(inputs[0]) * self.out_features + (self.out_features if self.bias else 0)

    def macs(self, inputs: tuple[Shape, ...], output: Shape) -> int:
        return math.prod(inputs[0]) * self.out_features

    def window(self, inputs: tuple[Shape, ...]) -> Window | None:
        spatial = inputs[0][1:]
        if not spatial:
            return None
        return Window.covering(spatial)

    def describe(self) -> str:
        return f"fc-{self.out_features}"


@register
@dataclass(frozen=True)
class Flatten(Op):
    family = "flatten"
    kind = "reshape"

    def output_shape(self, inputs: tuple[Shape, ...]) -> Shape:
        return (math.prod(inputs[0]),)

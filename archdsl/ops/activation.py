"""Activations: `relu`, `sigmoid`, `tanh`, `gelu`, `leakyrelu(0.1)`, `softmax` (the table's `soft-max`)."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecArgumentError
from ..shapes import Shape
from .base import Call, Op, register


@dataclass(frozen=True)
class _Activation(Op):
    kind = "activation"


@register
@dataclass(frozen=True)
class ReLU(_Activation):
    family = "relu"


@register
@dataclass(frozen=True)
class Sigmoid(_Activation):
    family = "sigmoid"


@register
@dataclass(frozen=True)
class Tanh(_Activation):
    family = "tanh"


@register
@dataclass(frozen=True)
class GELU(_Activation):
    family = "gelu"


@register
@dataclass(frozen=True)
class LeakyReLU(_Activation):
    family = "leakyrelu"
    negative_slope: float = 0.01

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "LeakyReLU":
        slope = call.take_option("slope", 0.01, position=0)
        if isinstance(slope, bool) or not isinstance(slope, (int, float)) or slope < 0:
            raise SpecArgumentError(f"leakyrelu: slope must be a number ≥ 0. Received: slope={slope!r}", call.span)
        call.finish()
        return cls(float(slope))


@register
@dataclass(frozen=True)
class Softmax(_Activation):
    """Softmax over channels (the class scores)."""

    family = "softmax"
    aliases = ("soft-max",)

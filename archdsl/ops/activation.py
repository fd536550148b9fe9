"""Activations: `relu`, `sigmoid`, `tanh`, `gelu`, `leakyrelu(0.1)`, `softmax` (the table's `soft-max`).

An element-wise activation says what it computes as a `formula` (see `archdsl.formula`)
and, where PyTorch has a module for it, that module's name. The backends build every
`Activation` from these two facts, so adding one (say `mish`) is one class here and a
row in docs/language.md — no emitter.
"""
from __future__ import annotations

from dataclasses import dataclass

from typing import ClassVar

from ..shapes import Shape
from .base import Call, Kind, Op, Option, Trait, number, register


@dataclass(frozen=True)
class Activation(Op):
    """An element-wise activation. Its dataclass fields are its options, named as PyTorch's
    module names its arguments (`negative_slope`), so that both can be read off them."""

    kind = Kind.ACTIVATION
    traits = frozenset({Trait.ELEMENTWISE, Trait.KEEPS_CHANNELS})
    formula: ClassVar[str] = ""  # in x and the op's fields: "x * sigmoid(x)"
    torch_module: ClassVar[str | None] = None  # the torch.nn class computing it, if there is one


@register
@dataclass(frozen=True)
class ReLU(Activation):
    family = "relu"
    example = "relu"
    doc = "max(0, x)"
    formula = "where(x > 0, x, 0)"
    torch_module = "ReLU"


@register
@dataclass(frozen=True)
class Sigmoid(Activation):
    family = "sigmoid"
    example = "sigmoid"
    doc = "1 / (1 + e^−x)"
    formula = "sigmoid(x)"
    torch_module = "Sigmoid"


@register
@dataclass(frozen=True)
class Tanh(Activation):
    family = "tanh"
    example = "tanh"
    doc = "the hyperbolic tangent"
    formula = "tanh(x)"
    torch_module = "Tanh"


@register
@dataclass(frozen=True)
class GELU(Activation):
    family = "gelu"
    example = "gelu"
    doc = "x·Φ(x), the exact (erf) form"
    formula = "0.5 * x * (1 + erf(x * 0.7071067811865476))"
    torch_module = "GELU"


@register
@dataclass(frozen=True)
class LeakyReLU(Activation):
    family = "leakyrelu"
    example = "leakyrelu(0.1)"
    doc = "x for x > 0, slope·x below"
    formula = "where(x > 0, x, negative_slope * x)"
    torch_module = "LeakyReLU"
    options = (Option("slope", 0.01, "the slope for negative inputs", position=0),)
    negative_slope: float = 0.01

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "LeakyReLU":
        slope = number(call.take_options(cls.options)["slope"], "slope", "leakyrelu", low=0, span=call.span)
        call.finish()
        return cls(slope)


@register
@dataclass(frozen=True)
class Softmax(Op):
    """Softmax over channels (the class scores): not element-wise, so not an `Activation`."""

    family = "softmax"
    aliases = ("soft-max",)
    example = "softmax"
    doc = "over the channels (class scores)"
    kind = Kind.ACTIVATION
    traits = frozenset({Trait.KEEPS_CHANNELS})

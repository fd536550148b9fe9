"""Activations: `relu`, `relu6`, `sigmoid`, `tanh`, `gelu`, `silu` (`swish`), `hardswish`, `hardsigmoid`,
`elu(1.0)`, `leakyrelu(0.1)`, `prelu`, and `softmax` (the table's `soft-max`).

An element-wise activation says what it computes as a `formula` (see `archdsl.formula`)
and, where PyTorch has a module for it, that module's name. The backends build every
`Activation` from these two facts, so adding one (say `mish`) is one class here and a
row in docs/language.md — no emitter.
"""
from __future__ import annotations

from dataclasses import dataclass

from typing import ClassVar

from ..shapes import Shape
from .base import Call, Kind, Op, Option, Role, Trait, Weight, flag, number, register


@dataclass(frozen=True)
class Activation(Op):
    """An element-wise activation. Its dataclass fields are its options, named as PyTorch's
    module names its arguments (`alpha`), so that both can be read off them."""

    kind = Kind.ACTIVATION
    traits = frozenset({Trait.ELEMENTWISE, Trait.KEEPS_CHANNELS})
    formula: ClassVar[str] = ""  # in x and the op's fields: "x * sigmoid(x)"
    torch_module: ClassVar[str | None] = None  # the torch.nn class computing it, if there is one

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "Activation":
        """Options named as the fields, each a finite number (`elu(alpha=0.5)`, `elu(0.5)`)."""
        values = call.take_options(cls.options)
        call.finish()
        return cls(**{name: number(value, name, cls.family, span=call.span) for name, value in values.items()})


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
class ReLU6(Activation):
    family = "relu6"
    example = "relu6"
    doc = "min(max(0, x), 6) (MobileNetV2)"
    formula = "clip(x, 0, 6)"
    torch_module = "ReLU6"


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
class SiLU(Activation):
    family = "silu"
    aliases = ("swish",)
    example = "silu"
    doc = "x·sigmoid(x) (EfficientNet's swish)"
    formula = "x * sigmoid(x)"
    torch_module = "SiLU"


@register
@dataclass(frozen=True)
class Hardswish(Activation):
    family = "hardswish"
    example = "hardswish"
    doc = "x·relu6(x + 3)/6 (MobileNetV3)"
    formula = "x * clip(x + 3, 0, 6) / 6"
    torch_module = "Hardswish"


@register
@dataclass(frozen=True)
class Hardsigmoid(Activation):
    family = "hardsigmoid"
    example = "hardsigmoid"
    doc = "relu6(x + 3)/6 (MobileNetV3's squeeze-and-excitation gate)"
    formula = "clip(x + 3, 0, 6) / 6"
    torch_module = "Hardsigmoid"


@register
@dataclass(frozen=True)
class Mish(Activation):
    family = "mish"
    example = "mish"
    doc = "x·tanh(softplus(x)) (Misra, 2019)"
    formula = "x * tanh(softplus(x))"
    torch_module = "Mish"


@register
@dataclass(frozen=True)
class ELU(Activation):
    family = "elu"
    example = "elu(0.5)"
    doc = "x for x > 0, α·(eˣ − 1) below"
    formula = "where(x > 0, x, alpha * (exp(x) - 1))"
    torch_module = "ELU"
    options = (Option("alpha", 1.0, "the value approached for large negative inputs, −α", position=0),)
    alpha: float = 1.0


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


@register
@dataclass(frozen=True)
class PReLU(Op):
    """x for x > 0, a·x below, with the slope a learned (He et al., 2015): one slope shared by
    every channel (PyTorch's default) or one per channel (the paper's). Not an `Activation`:
    its slope is a weight, not a constant of a formula."""

    family = "prelu"
    example = "prelu(per_channel=true)"
    doc = "leaky ReLU with a learned slope"
    options = (
        Option("per_channel", False, "one slope per channel instead of one shared slope"),
        Option("init", 0.25, "the slopes' starting value"),
    )
    kind = Kind.ACTIVATION
    traits = frozenset({Trait.ELEMENTWISE, Trait.KEEPS_CHANNELS})
    per_channel: bool = False
    init: float = 0.25

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "PReLU":
        values = call.take_options(cls.options)
        call.finish()
        per_channel = bool(flag(values["per_channel"], "per_channel", "prelu", call.span))
        return cls(per_channel, number(values["init"], "init", "prelu", span=call.span))

    def slopes(self, inputs: tuple[Shape, ...]) -> int:
        return inputs[0][0] if self.per_channel else 1

    def weights(self, inputs: tuple[Shape, ...]) -> dict[str, Weight]:
        # nn.PReLU(num_parameters, init): `weight` of shape (num_parameters,), filled with init
        return {"weight": Weight((self.slopes(inputs),), Role.CONSTANT, fill=self.init)}

"""`dropout(0.5)` and stochastic depth, `droppath(0.2)`: identities at inference."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecArgumentError
from ..shapes import Shape
from .base import Call, Kind, Op, Option, Trait, choice, number, register


@register
@dataclass(frozen=True)
class Dropout(Op):
    family = "dropout"
    example = "dropout(0.5)"
    doc = "zeroes each element with probability p while training; the identity at inference"
    options = (Option("p", 0.5, "the probability of dropping an element, in [0, 1)", position=0),)
    kind = Kind.REGULARIZATION
    traits = frozenset({Trait.ELEMENTWISE, Trait.KEEPS_CHANNELS})
    p: float = 0.5

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "Dropout":
        p = number(call.take_options(cls.options)["p"], "p", "dropout", low=0, high=1, high_open=True, span=call.span)
        call.finish()
        return cls(p)


DROP_PATH_MODES = ("row", "batch")


@register
@dataclass(frozen=True)
class DropPath(Op):
    """Stochastic depth (Huang et al., 2016), written at the end of a residual body: while training,
    each sample's body output is dropped with probability p (`mode=row`; `batch`: the whole batch at
    once) and the kept ones scaled by 1/(1 − p); the identity at inference. As
    torchvision.ops.StochasticDepth(p, "row"), which EfficientNet and ConvNeXt use."""

    family = "droppath"
    aliases = ("stochasticdepth",)
    example = "droppath(0.2)"
    doc = "stochastic depth: drops a residual body per sample while training; the identity at inference"
    options = (
        Option("p", None, "the probability of dropping, in [0, 1] (required)", position=0),
        Option("mode", "row", "row (one draw per sample) or batch (one for the batch)"),
    )
    kind = Kind.REGULARIZATION
    traits = frozenset({Trait.ELEMENTWISE, Trait.KEEPS_CHANNELS})
    p: float
    mode: str = "row"

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "DropPath":
        values = call.take_options(cls.options)
        call.finish()
        if values["p"] is None:
            raise SpecArgumentError(f"droppath needs a probability, as in droppath(0.2). Received: {call.text}", call.span)
        p = number(values["p"], "p", "droppath", low=0, high=1, span=call.span)
        return cls(p, choice(values["mode"], "mode", DROP_PATH_MODES, "droppath", call.span))

    def describe(self) -> str:
        return f"droppath({self.p:g})"

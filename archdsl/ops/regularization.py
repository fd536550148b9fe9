"""`dropout(0.5)`: an identity at inference."""
from __future__ import annotations

from dataclasses import dataclass

from ..shapes import Shape
from .base import Call, Kind, Op, Option, Trait, number, register


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

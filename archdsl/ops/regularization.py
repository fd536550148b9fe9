"""`dropout(0.5)`: an identity at inference."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecArgumentError
from ..shapes import Shape
from .base import Call, Op, register


@register
@dataclass(frozen=True)
class Dropout(Op):
    family = "dropout"
    kind = "regularization"
    p: float = 0.5

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "Dropout":
        p = call.take_option("p", 0.5, position=0)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise SpecArgumentError(f"dropout: p must be a probability in [0, 1). Received: p={p!r}", call.span)
        call.finish()
        return cls(float(p))

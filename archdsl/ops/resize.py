"""`upsample(2)` (nearest) or `upsample(2, mode=bilinear)`: FCN and U-Net's way back up."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecArgumentError
from ..shapes import Shape
from .base import Call, Op, Window, per_dim, positive_sizes, register, spatial_rank

MODES = ("nearest", "bilinear")


@register
@dataclass(frozen=True)
class Upsample(Op):
    family = "upsample"
    kind = "resize"
    scale: tuple[int, ...]
    mode: str = "nearest"

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "Upsample":
        rank = spatial_rank(inputs[0], "upsample")
        scale = positive_sizes(call.take_option("scale", 2, position=0), "scale", call.span, "upsample")
        mode = call.take_option("mode", "nearest", position=1)
        if mode not in MODES:
            raise SpecArgumentError(f"upsample: mode must be one of {', '.join(MODES)}. Received: mode={mode!r}", call.span)
        if mode == "bilinear" and rank != 2:
            raise SpecArgumentError(f"upsample: bilinear needs a 2-D input. Received: a {rank}-D input", call.span)
        call.finish()
        return cls(per_dim(scale, rank, "scale", "upsample"), mode)

    def output_shape(self, inputs: tuple[Shape, ...]) -> Shape:
        shape = inputs[0]
        return (shape[0], *(n * s for n, s in zip(shape[1:], self.scale)))

    def window(self, inputs: tuple[Shape, ...]) -> Window:
        return Window((1,) * len(self.scale), self.scale, (0,) * len(self.scale), transposed=True)

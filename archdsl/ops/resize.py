"""`upsample(2)` (nearest) or `upsample(2, mode=bilinear)`: FCN and U-Net's way back up."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecArgumentError
from ..shapes import Shape
from .base import Call, Kind, Op, Option, Trait, Window, choice, per_dim, positive_sizes, register, spatial_rank

MODES = ("nearest", "bilinear")


@register
@dataclass(frozen=True)
class Upsample(Op):
    family = "upsample"
    example = "upsample(2)"
    doc = "repeat (nearest) or interpolate (bilinear) by a whole factor"
    options = (
        Option("scale", 2, "the factor per spatial dimension, or sizes like 1x2", position=0),
        Option("mode", "nearest", "nearest or bilinear (2-D only)", position=1),
    )
    kind = Kind.RESIZE
    traits = frozenset({Trait.KEEPS_CHANNELS})
    scale: tuple[int, ...]
    mode: str = "nearest"

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "Upsample":
        rank = spatial_rank(inputs[0], "upsample")
        values = call.take_options(cls.options)
        scale = positive_sizes(values["scale"], "scale", call.span, "upsample")
        mode = choice(values["mode"], "mode", MODES, "upsample", call.span)
        if mode == "bilinear" and rank != 2:
            raise SpecArgumentError(f"upsample: bilinear needs a 2-D input. Received: a {rank}-D input", call.span)
        call.finish()
        return cls(per_dim(scale, rank, "scale", "upsample"), mode)

    def output_shape(self, inputs: tuple[Shape, ...]) -> Shape:
        shape = inputs[0]
        return (shape[0], *(n * s for n, s in zip(shape[1:], self.scale)))

    def window(self, inputs: tuple[Shape, ...]) -> Window:
        return Window((1,) * len(self.scale), self.scale, (0,) * len(self.scale), transposed=True)

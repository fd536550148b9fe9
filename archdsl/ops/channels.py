"""Channel operations: `shuffle(g)`, and the parts `split -> a, b` cuts a tensor into (ShuffleNet)."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ShapeError, SpecArgumentError
from ..shapes import Shape, fmt_shape
from .base import Call, Kind, Op, Option, positive_int, register


@register
@dataclass(frozen=True)
class Shuffle(Op):
    """Channel shuffle (Zhang et al., 2018): the channels in `groups` groups, read out interleaved, so
    that the next grouped or split layer mixes what separate groups computed. torchvision's
    channel_shuffle: view as g × C/g, transpose, flatten."""

    family = "shuffle"
    example = "shuffle(2)"
    doc = "channel shuffle"
    options = (Option("groups", None, "how many groups to interleave (required); it must divide the channels", position=0),)
    kind = Kind.RESHAPE
    groups: int

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "Shuffle":
        value = call.take_options(cls.options)["groups"]
        call.finish()
        if value is None:
            raise SpecArgumentError(f"shuffle needs a number of groups, as in shuffle(2). Received: {call.text}", call.span)
        groups = positive_int(value, "groups", call.span, "shuffle")
        shape = inputs[0]
        if len(shape) < 2 or shape[0] % groups:
            raise ShapeError(
                f"shuffle({groups}) needs a C×H×W (or C×L, C×D×H×W) input whose channels the groups divide."
                f" Received: input shape {fmt_shape(shape)}",
                call.span,
            )
        return cls(groups)

    def describe(self) -> str:
        return f"shuffle({self.groups})"


@register
@dataclass(frozen=True)
class ChannelSlice(Op):
    """Channels start … stop − 1 of the input: one part of `split -> a, b` (see terms.Split)."""

    family = "split"
    kind = Kind.RESHAPE
    hidden = True
    start: int = 0
    stop: int = 1

    def output_shape(self, inputs: tuple[Shape, ...]) -> Shape:
        shape = inputs[0]
        if not 0 <= self.start < self.stop <= shape[0]:
            raise ShapeError(f"split: channels {self.start}…{self.stop - 1} are not all in the input."
                             f" Received: input shape {fmt_shape(shape)}")
        return (self.stop - self.start, *shape[1:])

    def describe(self) -> str:
        return f"split[{self.start}:{self.stop}]"

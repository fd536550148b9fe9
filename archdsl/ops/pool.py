"""Pooling: `maxpool` (2×2, stride 2), `maxpool3/2`, `avgpool5/3`, with `pad` and `ceil`
(Caffe's rounding, which GoogLeNet's table assumes), `gap` (global average pooling), and
`adaptiveavgpool(7)`, `adaptivemaxpool(7)`: pooling to a given output size."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import SpecArgumentError
from ..shapes import Shape, window_output_size
from .base import (
    Call, Kind, Op, Option, Trait, Window, compact_sizes, flag, kernel_rank, per_dim, positive_sizes, register,
    spatial_rank,
)
from .conv import _spatial_out, resolve_padding

POOL_OPTIONS = (
    Option("pad", 0, "a number, same, or sizes like 1x3; at most half the window"),
    Option("ceil", False, "round the output size up (Caffe's pooling)"),
)


@dataclass(frozen=True)
class _Pool(Op):
    kind = Kind.POOLING
    takes_kernel = True
    traits = frozenset({Trait.KEEPS_CHANNELS})
    options = POOL_OPTIONS
    default_kernel: ClassVar[int] = 2
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    ceil_mode: bool = False

    @classmethod
    def _common(cls, call: Call, inputs: tuple[Shape, ...], values: dict):
        kernel = call.take_kernel(default=cls.default_kernel)
        rank = kernel_rank(kernel, inputs[0], cls.family, call.text)
        kernel = per_dim(kernel, rank, "kernel", call.text)
        stride = per_dim(call.take_stride(kernel), rank, "stride", call.text)
        padding = resolve_padding(values["pad"], kernel, (1,) * rank, call.text)
        if any(2 * p > k for p, k in zip(padding, kernel)):
            raise SpecArgumentError(
                f"{call.text}: padding may be at most half the window. Received: pad={padding}, kernel={kernel}",
                call.span,
            )
        ceil = bool(flag(values["ceil"], "ceil", call.text))
        return kernel, stride, padding, ceil

    def output_shape(self, inputs: tuple[Shape, ...]) -> Shape:
        (shape,) = inputs
        sizes = [
            window_output_size(n, k, s, p, ceil=self.ceil_mode)
            for n, k, s, p in zip(shape[1:], self.kernel, self.stride, self.padding)
        ]
        return (shape[0], *_spatial_out(self.family, self.describe(), sizes, shape))

    def window(self, inputs: tuple[Shape, ...]) -> Window:
        return Window(self.kernel, self.stride, self.padding, ceil=self.ceil_mode)

    def describe(self) -> str:
        return f"{self.family}{self.kernel[0]}/{self.stride[0]}"


@register
@dataclass(frozen=True)
class MaxPool(_Pool):
    family = "maxpool"
    example = "maxpool3/2(pad=1)"
    doc = "max over each window; 2×2, stride 2 by default"

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "MaxPool":
        args = cls._common(call, inputs, call.take_options(cls.options))
        call.finish()
        return cls(*args)


@register
@dataclass(frozen=True)
class AvgPool(_Pool):
    family = "avgpool"
    example = "avgpool2/2"
    doc = "mean over each window; 2×2, stride 2 by default"
    options = POOL_OPTIONS + (Option("count_include_pad", True, "padding counts in the mean"),)
    count_include_pad: bool = True

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "AvgPool":
        values = call.take_options(cls.options)
        args = cls._common(call, inputs, values)
        include = flag(values["count_include_pad"], "count_include_pad", call.text)
        call.finish()
        return cls(*args, count_include_pad=bool(include))


@register
@dataclass(frozen=True)
class GlobalAvgPool(Op):
    """Average over every spatial position: C×H×W → C×1×1."""

    family = "gap"
    example = "gap"
    doc = "global average pooling: C×H×W → C×1×1"
    kind = Kind.POOLING
    traits = frozenset({Trait.KEEPS_CHANNELS})

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "GlobalAvgPool":
        spatial_rank(inputs[0], "gap")
        call.finish()
        return cls()

    def output_shape(self, inputs: tuple[Shape, ...]) -> Shape:
        return (inputs[0][0],) + (1,) * (len(inputs[0]) - 1)

    def window(self, inputs: tuple[Shape, ...]) -> Window:
        return Window.covering(inputs[0][1:])


def adaptive_windows(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive pooling windows along one axis: output i reads [⌊i·n/o⌋, ⌈(i+1)·n/o⌉)."""
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


@dataclass(frozen=True)
class _AdaptivePool(Op):
    """Pooling to a given output size, whatever the input's: each output reads the window
    `adaptive_windows` gives it (nn.AdaptiveAvgPool2d(n), nn.AdaptiveMaxPool2d(n))."""

    kind = Kind.POOLING
    traits = frozenset({Trait.KEEPS_CHANNELS})
    options = (Option("size", 1, "the output size per spatial dimension, or sizes like 7x7", position=0),)
    output_size: tuple[int, ...] = (1, 1)

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "_AdaptivePool":
        rank = spatial_rank(inputs[0], cls.family)
        size = positive_sizes(call.take_options(cls.options)["size"], "size", call.span, cls.family)
        call.finish()
        return cls(per_dim(size, rank, "size", cls.family))

    def output_shape(self, inputs: tuple[Shape, ...]) -> Shape:
        return (inputs[0][0], *self.output_size)

    def window(self, inputs: tuple[Shape, ...]) -> Window:
        # The windows differ in size and spacing where the output size does not divide the input's;
        # the receptive field takes the largest window and the smallest spacing (exact where it
        # divides). `ceil`: every input position is read, so the fit check has nothing to say.
        spatial = inputs[0][1:]
        windows = [adaptive_windows(n, o) for n, o in zip(spatial, self.output_size)]
        kernel = tuple(max(b - a for a, b in w) for w in windows)
        stride = tuple(max(1, min((w[i + 1][0] - w[i][0] for i in range(len(w) - 1)), default=1)) for w in windows)
        return Window(kernel, stride, (0,) * len(spatial), ceil=True)

    def describe(self) -> str:
        return f"{self.family}({compact_sizes(self.output_size)})"


@register
@dataclass(frozen=True)
class AdaptiveAvgPool(_AdaptivePool):
    family = "adaptiveavgpool"
    example = "adaptiveavgpool(3)"
    doc = "average pooling to a given output size"


@register
@dataclass(frozen=True)
class AdaptiveMaxPool(_AdaptivePool):
    family = "adaptivemaxpool"
    example = "adaptivemaxpool(2x4)"
    doc = "max pooling to a given output size"

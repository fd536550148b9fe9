"""Pooling: `maxpool` (2×2, stride 2), `maxpool3/2`, `avgpool5/3`, with `pad` and `ceil`
(Caffe's rounding, which GoogLeNet's table assumes), and `gap` (global average pooling)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import SpecArgumentError
from ..shapes import Shape, window_output_size
from .base import Call, Op, Window, kernel_rank, per_dim, register, spatial_rank
from .conv import _flag, _spatial_out, resolve_padding


@dataclass(frozen=True)
class _Pool(Op):
    kind = "pooling"
    default_kernel: ClassVar[int] = 2
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    ceil_mode: bool = False

    @classmethod
    def _common(cls, call: Call, inputs: tuple[Shape, ...]):
        kernel = call.take_kernel(default=cls.default_kernel)
        rank = kernel_rank(kernel, inputs[0], cls.family, call.text)
        kernel = per_dim(kernel, rank, "kernel", call.text)
        stride = per_dim(call.take_stride(kernel), rank, "stride", call.text)
        padding = resolve_padding(call.take_option("pad", 0), kernel, (1,) * rank, call.text)
        if any(2 * p > k for p, k in zip(padding, kernel)):
            raise SpecArgumentError(
                f"{call.text}: padding may be at most half the window. Received: pad={padding}, kernel={kernel}",
                call.span,
            )
        ceil = bool(_flag(call.take_option("ceil", False), "ceil", call.text))
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

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "MaxPool":
        args = cls._common(call, inputs)
        call.finish()
        return cls(*args)


@register
@dataclass(frozen=True)
class AvgPool(_Pool):
    family = "avgpool"
    count_include_pad: bool = True

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "AvgPool":
        args = cls._common(call, inputs)
        include = _flag(call.take_option("count_include_pad", True), "count_include_pad", call.text)
        call.finish()
        return cls(*args, count_include_pad=bool(include))


@register
@dataclass(frozen=True)
class GlobalAvgPool(Op):
    """Average over every spatial position: C×H×W → C×1×1."""

    family = "gap"
    kind = "pooling"

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "GlobalAvgPool":
        spatial_rank(inputs[0], "gap")
        call.finish()
        return cls()

    def output_shape(self, inputs: tuple[Shape, ...]) -> Shape:
        return (inputs[0][0],) + (1,) * (len(inputs[0]) - 1)

    def window(self, inputs: tuple[Shape, ...]) -> Window:
        return Window.covering(inputs[0][1:])

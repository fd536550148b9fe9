"""Convolutions: `conv3-64`, `conv7-64/2`, `conv1x7-128`, `conv3-64(pad=valid, dilation=2, groups=32)`,
and transposed convolutions `deconv2-64/2` (U-Net's up-conv, FCN's deconvolution).

The rank follows the kernel: `conv3x3x3` is 3-D; a square `conv3` takes the rank
of its input, so one spelling serves 1-D, 2-D and 3-D networks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import ShapeError, SpecArgumentError, did_you_mean
from ..shapes import Shape, fmt_shape, full_padding, same_padding, transposed_output_size, window_output_size
from .base import (
    Call, Kind, Op, Option, Role, Trait, Weight, Window, compact_sizes, flag, kernel_rank, per_dim, positive_int,
    positive_sizes, register,
)


def resolve_padding(value: Any, kernel: tuple[int, ...], dilation: tuple[int, ...], family: str) -> tuple[int, ...]:
    """`same` ((K−1)/2 per side), `valid` (0), `full` (K−1), a number, or sizes like 1x3."""
    rank = len(kernel)
    if value == "same":
        return tuple(same_padding(k, d) for k, d in zip(kernel, dilation))
    if value == "valid":
        return (0,) * rank
    if value == "full":
        return tuple(full_padding(k, d) for k, d in zip(kernel, dilation))
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return (value,) * rank
    if isinstance(value, tuple) and all(isinstance(v, int) and v >= 0 for v in value):
        return per_dim(value, rank, "pad", family)
    hint = did_you_mean(value, ("same", "valid", "full")) if isinstance(value, str) else ""
    raise SpecArgumentError(
        f"{family}: pad must be same, valid, full, a number or sizes like 1x3{hint or '.'} Received: pad={value!r}"
    )


def _groups(value: Any, in_channels: int, out_channels: int, family: str) -> int:
    groups = positive_int(value, "groups", None, family)
    if in_channels % groups or out_channels % groups:
        raise ShapeError(
            f"{family}: groups must divide both the input and output channels."
            f" Received: groups={groups}, in_channels={in_channels}, out_channels={out_channels}"
        )
    return groups


def _spatial_out(family: str, text: str, sizes: list[int], input_shape: Shape) -> tuple[int, ...]:
    if any(s < 1 for s in sizes):
        raise ShapeError(
            f"{text} shrinks the map below 1x1: its window is larger than the padded input."
            f" Received: input shape {fmt_shape(input_shape)}"
        )
    return tuple(sizes)


def _bias(has_bias: bool | None, out_channels: int) -> dict[str, Weight]:
    # bias=None (left to archdsl) counts as present until `passes.resolve_bias` decides
    return {} if has_bias is False else {"bias": Weight((out_channels,), Role.BIAS)}


PAD = Option("pad", "same", "same ((K−1)/2 per side), valid (0), full (K−1), a number or sizes like 1x3")
GROUPS = Option("groups", 1, "grouped convolution; groups = input channels is depthwise")
BIAS = Option("bias", None, "true or false; by default none where a batch norm follows")


@register
@dataclass(frozen=True)
class Conv(Op):
    """Convolution; `pad` defaults to same, so a stride-1 conv keeps the map's size."""

    family = "conv"
    example = "conv3-16/2"
    takes_kernel = True
    options = (PAD, Option("dilation", 1, "spacing of the kernel's taps (atrous convolution)"), GROUPS, BIAS)
    kind = Kind.CONVOLUTION
    traits = frozenset({Trait.OUTPUT_OVERWRITABLE})
    out_channels: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int = 1
    bias: bool | None = None  # None: decided by the graph — no bias when a bn follows

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "Conv":
        kernel = call.take_kernel(example="conv3-64 or conv-64(kernel=3)")
        rank = kernel_rank(kernel, inputs[0], "conv", call.text)
        kernel = per_dim(kernel, rank, "kernel", call.text)
        out_channels = call.take_dimension("a number of filters", "conv3-64")
        stride = per_dim(call.take_stride(1), rank, "stride", call.text)
        values = call.take_options(cls.options)
        dilation = per_dim(positive_sizes(values["dilation"], "dilation", call.span, call.text), rank, "dilation", call.text)
        padding = resolve_padding(values["pad"], kernel, dilation, call.text)
        groups = _groups(values["groups"], inputs[0][0], out_channels, call.text)
        bias = flag(values["bias"], "bias", call.text)
        call.finish()
        return cls(out_channels, kernel, stride, padding, dilation, groups, bias)

    def output_shape(self, inputs: tuple[Shape, ...]) -> Shape:
        (shape,) = inputs
        sizes = [
            window_output_size(n, k, s, p, d)
            for n, k, s, p, d in zip(shape[1:], self.kernel, self.stride, self.padding, self.dilation)
        ]
        return (self.out_channels, *_spatial_out("conv", self.describe(), sizes, shape))

    def weights(self, inputs: tuple[Shape, ...]) -> dict[str, Weight]:
        kernel = Weight((self.out_channels, inputs[0][0] // self.groups, *self.kernel), Role.KERNEL)
        return {"weight": kernel, **_bias(self.bias, self.out_channels)}

    def macs(self, inputs: tuple[Shape, ...], output: Shape) -> int:
        return math.prod(output) * math.prod(self.kernel) * (inputs[0][0] // self.groups)

    def window(self, inputs: tuple[Shape, ...]) -> Window:
        extent = tuple((k - 1) * d + 1 for k, d in zip(self.kernel, self.dilation))
        return Window(extent, self.stride, self.padding)

    def describe(self) -> str:
        stride = "" if set(self.stride) == {1} else "/" + compact_sizes(self.stride)
        return f"conv{compact_sizes(self.kernel)}-{self.out_channels}{stride}"


@register
@dataclass(frozen=True)
class Deconv(Op):
    """Transposed convolution; `pad` defaults to 0, so `deconv2-64/2` doubles the map."""

    family = "deconv"
    aliases = ("upconv",)
    example = "deconv2-16/2"
    takes_kernel = True
    options = (
        Option("pad", 0, "a number or sizes like 1x3 (removed from each side of the output)"),
        Option("output_padding", 0, "extra rows added to one side of the output, smaller than the stride"),
        GROUPS,
        BIAS,
    )
    kind = Kind.CONVOLUTION
    traits = frozenset({Trait.OUTPUT_OVERWRITABLE})
    out_channels: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    output_padding: tuple[int, ...]
    groups: int = 1
    bias: bool | None = None

    @classmethod
    def from_call(cls, call: Call, inputs: tuple[Shape, ...]) -> "Deconv":
        kernel = call.take_kernel(example="deconv2-64/2")
        rank = kernel_rank(kernel, inputs[0], "deconv", call.text)
        kernel = per_dim(kernel, rank, "kernel", call.text)
        out_channels = call.take_dimension("a number of filters", "deconv2-64/2")
        stride = per_dim(call.take_stride(1), rank, "stride", call.text)
        values = call.take_options(cls.options)
        padding = resolve_padding(values["pad"], kernel, (1,) * rank, call.text)
        output_padding = per_dim(values["output_padding"], rank, "output_padding", call.text)
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in output_padding):
            raise SpecArgumentError(
                f"{call.text}: output_padding must be a whole number ≥ 0. Received: output_padding={fmt_shape(output_padding)}",
                call.span,
            )
        groups = _groups(values["groups"], inputs[0][0], out_channels, call.text)
        bias = flag(values["bias"], "bias", call.text)
        call.finish()
        if any(op >= s for op, s in zip(output_padding, stride)):
            raise SpecArgumentError(
                f"{call.text}: output_padding must be smaller than the stride."
                f" Received: output_padding={fmt_shape(output_padding)}, stride={fmt_shape(stride)}",
                call.span,
            )
        return cls(out_channels, kernel, stride, padding, output_padding, groups, bias)

    def output_shape(self, inputs: tuple[Shape, ...]) -> Shape:
        (shape,) = inputs
        sizes = [
            transposed_output_size(n, k, s, p, op)
            for n, k, s, p, op in zip(shape[1:], self.kernel, self.stride, self.padding, self.output_padding)
        ]
        return (self.out_channels, *_spatial_out("deconv", self.describe(), sizes, shape))

    def weights(self, inputs: tuple[Shape, ...]) -> dict[str, Weight]:
        kernel = Weight((inputs[0][0], self.out_channels // self.groups, *self.kernel), Role.TRANSPOSED_KERNEL)
        return {"weight": kernel, **_bias(self.bias, self.out_channels)}

    def macs(self, inputs: tuple[Shape, ...], output: Shape) -> int:
        return math.prod(inputs[0]) * math.prod(self.kernel) * (self.out_channels // self.groups)

    def window(self, inputs: tuple[Shape, ...]) -> Window:
        return Window(self.kernel, self.stride, self.padding, transposed=True)

    def describe(self) -> str:
        return f"deconv{compact_sizes(self.kernel)}-{self.out_channels}/{compact_sizes(self.stride)}"

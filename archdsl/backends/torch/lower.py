"""The lowering table: op class → a small emitter that says how PyTorch computes the layer.

An emitter gets the layer, its input shapes and whether it may overwrite its input,
and returns an `Emitted`: the nn.Module to register for it (a `Ctor`, or None for
ops written inline, like `+` and `torch.cat`) and the forward expression, a format
string where `{m}` is the submodule and `{0}`, `{1}`, … are the input tensors.

Nothing here imports torch: the table produces source text, which `codegen` writes
out and `module` executes, so the standalone file and `to_torch()` are one thing.
To support a new op, add an emitter here (and to `backends/tvm/lower.py`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from ...errors import ArchError
from ...ir import Layer
from ...formula import evaluate as evaluate_formula, parse as parse_formula
from ...ops import (
    FC, LRN, Activation, AdaptiveAvgPool, AdaptiveMaxPool, Add, AvgPool, BatchNorm, ChannelSlice, Concat, Conv,
    Deconv, DropPath, Dropout, Flatten, GlobalAvgPool, GroupNorm, LayerNorm, LayerScale, MaxPool, Mul, Op, PReLU,
    ReLU, Shuffle, Softmax, Upsample,
)
from ...shapes import Shape
from .ctor import Ctor, ctor
from .local_modules import CHANNEL_LAYER_NORM, LAYER_SCALE, STOCHASTIC_DEPTH


@dataclass(frozen=True)
class Emitted:
    module: Ctor | None
    expr: str


@dataclass(frozen=True)
class EmitContext:
    inputs: tuple[Shape, ...]
    may_overwrite_input: bool  # the input dies here and autograd does not need it: in-place is safe


Emitter = Callable[[Op, EmitContext], Emitted]

CALL = "{m}({0})"


def _nd(name: str, shape: Shape) -> str:
    """`Conv` + a C×H×W input → `Conv2d`."""
    rank = len(shape) - 1
    if rank not in (1, 2, 3):
        raise ArchError(f"PyTorch has no {rank}-D {name}. Received: input shape {shape}")
    return f"{name}{rank}d"


def emit_conv(op: Conv, ctx: EmitContext) -> Emitted:
    (x,) = ctx.inputs
    module = ctor(
        _nd("Conv", x), x[0], op.out_channels, kernel_size=op.kernel, stride=op.stride, padding=op.padding,
        dilation=op.dilation, groups=op.groups, bias=op.bias is not False,
        defaults={"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True},
    )
    return Emitted(module, CALL)


def emit_deconv(op: Deconv, ctx: EmitContext) -> Emitted:
    (x,) = ctx.inputs
    module = ctor(
        _nd("ConvTranspose", x), x[0], op.out_channels, kernel_size=op.kernel, stride=op.stride,
        padding=op.padding, output_padding=op.output_padding, groups=op.groups, bias=op.bias is not False,
        defaults={"stride": 1, "padding": 0, "output_padding": 0, "groups": 1, "bias": True},
    )
    return Emitted(module, CALL)


def emit_maxpool(op: MaxPool, ctx: EmitContext) -> Emitted:
    (x,) = ctx.inputs
    module = ctor(
        _nd("MaxPool", x), kernel_size=op.kernel, stride=op.stride, padding=op.padding, ceil_mode=op.ceil_mode,
        defaults={"padding": 0, "ceil_mode": False},
    )
    return Emitted(module, CALL)


def emit_avgpool(op: AvgPool, ctx: EmitContext) -> Emitted:
    (x,) = ctx.inputs
    module = ctor(
        _nd("AvgPool", x), kernel_size=op.kernel, stride=op.stride, padding=op.padding, ceil_mode=op.ceil_mode,
        count_include_pad=op.count_include_pad, defaults={"padding": 0, "ceil_mode": False, "count_include_pad": True},
    )
    return Emitted(module, CALL)


def emit_global_avgpool(op: GlobalAvgPool, ctx: EmitContext) -> Emitted:
    (x,) = ctx.inputs
    return Emitted(ctor(_nd("AdaptiveAvgPool", x), 1), CALL)


def emit_fc(op: FC, ctx: EmitContext) -> Emitted:
    (x,) = ctx.inputs
    module = ctor("Linear", op.in_features(ctx.inputs), op.out_features, bias=op.bias, defaults={"bias": True})
    if op.pointwise:  # at each position, over the channels: channels last and back, as ConvNeXt's CNBlock
        last, first = _channels_last_and_back(len(x) + 1)
        return Emitted(module, f"{{m}}({{0}}.permute{last}).permute{first}")
    # The papers' tables go straight from a C×H×W map to an fc layer: flatten it first.
    return Emitted(module, "{m}(torch.flatten({0}, 1))" if len(x) > 1 else CALL)


def _channels_last_and_back(rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The permutations N×C×… → N×…×C and back, written out as torchvision's Permute([0, 2, 3, 1])
    does (`movedim(-1, 1)` would read shorter, but the TorchScript ONNX exporter writes its -1 into
    the Transpose's perm, which ONNX rejects)."""
    return (0, *range(2, rank), 1), (0, rank - 1, *range(1, rank - 1))


def emit_flatten(op: Flatten, ctx: EmitContext) -> Emitted:
    return Emitted(None, "torch.flatten({0}, 1)")


def emit_batchnorm(op: BatchNorm, ctx: EmitContext) -> Emitted:
    (x,) = ctx.inputs
    name = "BatchNorm1d" if len(x) <= 2 else _nd("BatchNorm", x)
    return Emitted(ctor(name, x[0], eps=op.eps, momentum=op.momentum, defaults={"eps": 1e-5, "momentum": 0.1}), CALL)


def emit_layernorm(op: LayerNorm, ctx: EmitContext) -> Emitted:
    (x,) = ctx.inputs
    # On a vector nn.LayerNorm normalises the features; on a map, the channels at each position.
    module = "LayerNorm" if len(x) == 1 else CHANNEL_LAYER_NORM
    return Emitted(ctor(module, x[0], eps=op.eps, defaults={"eps": 1e-5}), CALL)


def emit_groupnorm(op: GroupNorm, ctx: EmitContext) -> Emitted:
    (x,) = ctx.inputs
    return Emitted(ctor("GroupNorm", op.groups, x[0], eps=op.eps, defaults={"eps": 1e-5}), CALL)


def emit_layerscale(op: LayerScale, ctx: EmitContext) -> Emitted:
    (x,) = ctx.inputs
    return Emitted(ctor(LAYER_SCALE, x[0], init=op.init, dims=len(x) - 1, defaults={"init": 1e-6, "dims": 2}), CALL)


def emit_lrn(op: LRN, ctx: EmitContext) -> Emitted:
    return Emitted(ctor("LocalResponseNorm", op.size, alpha=op.alpha, beta=op.beta, k=op.k), CALL)


def emit_relu(op: ReLU, ctx: EmitContext) -> Emitted:
    # In place where the input is dead afterwards, as torchvision does: it saves an
    # allocation (and, on CPU, the page faults of a fresh buffer) per activation.
    return Emitted(ctor("ReLU", inplace=ctx.may_overwrite_input, defaults={"inplace": False}), CALL)


class SourcePrimitives:
    """`archdsl.formula`'s primitives as PyTorch source text, for activations torch.nn lacks."""

    def const(self, value: float) -> str:
        return repr(value)

    def neg(self, a: str) -> str:
        return f"(-{a})"


_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**", "gt": ">", "lt": "<", "ge": ">=", "le": "<="}
_CALLS = {name: f"torch.{name}" for name in ("exp", "log", "tanh", "sigmoid", "erf", "sqrt", "abs", "where")}
_CALLS.update(softplus="torch.nn.functional.softplus", clip="torch.clamp")
for _name, _symbol in _INFIX.items():
    setattr(SourcePrimitives, _name, lambda self, a, b, s=_symbol: f"({a} {s} {b})")
for _name, _function in _CALLS.items():
    setattr(SourcePrimitives, _name, lambda self, *args, f=_function: f"{f}({', '.join(args)})")


TORCH_SOURCE = SourcePrimitives()


def emit_activation(op: Activation, ctx: EmitContext) -> Emitted:
    """Any element-wise activation: its torch.nn module, with the op's fields as arguments
    (those at their defaults left out), or else its formula written out in `forward`."""
    fields = {f.name: getattr(op, f.name) for f in dataclasses.fields(op)}
    if op.torch_module is not None:
        defaults = {f.name: f.default for f in dataclasses.fields(op)}
        return Emitted(ctor(op.torch_module, **fields, defaults=defaults), CALL)
    return Emitted(None, evaluate_formula(parse_formula(op.formula), "{0}", fields, TORCH_SOURCE))


def emit_prelu(op: PReLU, ctx: EmitContext) -> Emitted:
    module = ctor("PReLU", num_parameters=op.slopes(ctx.inputs), init=op.init, defaults={"num_parameters": 1, "init": 0.25})
    return Emitted(module, CALL)


def emit_dropout(op: Dropout, ctx: EmitContext) -> Emitted:
    return Emitted(ctor("Dropout", p=op.p, defaults={"p": 0.5}), CALL)


def emit_droppath(op: DropPath, ctx: EmitContext) -> Emitted:
    return Emitted(ctor(STOCHASTIC_DEPTH, op.p, mode=op.mode, defaults={"mode": "row"}), CALL)


def emit_adaptive_pool(op: AdaptiveAvgPool | AdaptiveMaxPool, ctx: EmitContext) -> Emitted:
    (x,) = ctx.inputs
    name = "AdaptiveAvgPool" if isinstance(op, AdaptiveAvgPool) else "AdaptiveMaxPool"
    return Emitted(ctor(_nd(name, x), op.output_size), CALL)


def emit_upsample(op: Upsample, ctx: EmitContext) -> Emitted:
    return Emitted(ctor("Upsample", scale_factor=op.scale, mode=op.mode, defaults={"mode": "nearest"}), CALL)


def emit_add(op: Add, ctx: EmitContext) -> Emitted:
    return Emitted(None, " + ".join(f"{{{i}}}" for i in range(len(ctx.inputs))))


def emit_concat(op: Concat, ctx: EmitContext) -> Emitted:
    return Emitted(None, "torch.cat([" + ", ".join(f"{{{i}}}" for i in range(len(ctx.inputs))) + "], 1)")


def emit_mul(op: Mul, ctx: EmitContext) -> Emitted:
    # Channels first: a gate of lower rank (N×C from an fc) is viewed as N×C×1×1 to scale a map.
    # Written without the sizes (`s[:, :, None, None]`), so that a block class serves every width.
    rank = max(len(s) for s in ctx.inputs)
    factors = []
    for i, shape in enumerate(ctx.inputs):
        index = ", ".join([":"] * (len(shape) + 1) + ["None"] * (rank - len(shape)))
        factors.append(f"{{{i}}}" if len(shape) == rank else f"{{{i}}}[{index}]")
    return Emitted(None, " * ".join(factors))


def emit_shuffle(op: Shuffle, ctx: EmitContext) -> Emitted:
    # torchvision's channel_shuffle: view the channels as groups × C/groups, transpose, flatten back.
    (x,) = ctx.inputs
    return Emitted(None, f"{{0}}.unflatten(1, ({op.groups}, {x[0] // op.groups})).transpose(1, 2).flatten(1, 2)")


def emit_channel_slice(op: ChannelSlice, ctx: EmitContext) -> Emitted:
    (x,) = ctx.inputs
    start = "" if op.start == 0 else str(op.start)
    stop = "" if op.stop == x[0] else str(op.stop)
    return Emitted(None, f"{{0}}[:, {start}:{stop}]")


LOWERING: dict[type[Op], Emitter] = {
    Conv: emit_conv,
    Deconv: emit_deconv,
    MaxPool: emit_maxpool,
    AvgPool: emit_avgpool,
    GlobalAvgPool: emit_global_avgpool,
    FC: emit_fc,
    Flatten: emit_flatten,
    BatchNorm: emit_batchnorm,
    LayerNorm: emit_layernorm,
    GroupNorm: emit_groupnorm,
    LayerScale: emit_layerscale,
    LRN: emit_lrn,
    Activation: emit_activation,
    ReLU: emit_relu,
    PReLU: emit_prelu,
    Softmax: lambda op, ctx: Emitted(Ctor("Softmax", (), (("dim", 1),)), CALL),
    Dropout: emit_dropout,
    DropPath: emit_droppath,
    AdaptiveAvgPool: emit_adaptive_pool,
    AdaptiveMaxPool: emit_adaptive_pool,
    Upsample: emit_upsample,
    Add: emit_add,
    Concat: emit_concat,
    Mul: emit_mul,
    Shuffle: emit_shuffle,
    ChannelSlice: emit_channel_slice,
}

def find_emitter(op_class: type[Op]) -> Emitter | None:
    """The emitter of an op class, or of the nearest base class that has one (`Activation`)."""
    return next((LOWERING[c] for c in op_class.__mro__ if c in LOWERING), None)


def emit(layer: Layer, inputs: tuple[Shape, ...], may_overwrite_input: bool) -> Emitted:
    emitter = find_emitter(type(layer.op))
    if emitter is None:
        raise ArchError(
            f"the PyTorch backend has no lowering for '{layer.op.family}' (layer '{layer.name}');"
            " add an emitter to archdsl/backends/torch/lower.py",
            layer.span,
        )
    return emitter(layer.op, EmitContext(inputs, may_overwrite_input))


__all__ = ["LOWERING", "Emitted", "EmitContext", "emit", "find_emitter"]

"""Lower archdsl's graph IR to a TVM Relax IRModule with the BlockBuilder.

One small emitter per op class, looked up in `EMITTERS` (like TVM's own Relax
frontends): an emitter gets the layer and the Relax values of its inputs (batch
first) and returns the Relax value of its output. 1-D, 2-D and 3-D layers share
one emitter: the op's spatial tuples say which Relax op to call.

The module has one function, `main(x, *weights)`: weights are bound as constants by
default (TVM folds and specialises them); with `bind_weights=False` they become
parameters that the runner passes at every call. Several outputs come back as a
tuple in the order of `net.outputs`.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ... import ops
from ...errors import ArchError
from ...formula import evaluate as evaluate_formula, parse as parse_formula
from ...ops.pool import adaptive_windows
from ._tvm import import_tvm
from .weights import FoldPlan, bn_scale_shift, fold_batchnorms, random_weights, read_state_dict


@dataclass
class Lowered:
    """A lowered network: the module, its unbound weights, and how to map outputs back."""

    mod: object  # tvm.IRModule
    input_shape: tuple  # with batch
    output_names: list[str]
    param_names: list[str]  # names of main's weight parameters, in order (empty when bound)
    params: dict[str, np.ndarray]  # their values


class _Context:
    """What an emitter needs: the block builder and the layer's weights as Relax values."""

    def __init__(self, relax, bb, net, plan: FoldPlan, bind_weights: bool):
        self.relax, self.bb, self.net, self.plan, self.bind = relax, bb, net, plan, bind_weights
        self.param_vars: list = []
        self.param_values: dict[str, np.ndarray] = {}

    def weight(self, layer, pname: str):
        return self.constant(self.plan.weights[layer.name][pname], f"{self.weight_prefix(layer)}.{pname}")

    def weight_prefix(self, layer) -> str:
        return self.net.module_path(layer.name)

    def has_weight(self, layer, pname: str) -> bool:
        return pname in self.plan.weights.get(layer.name, {})

    def constant(self, array: np.ndarray, name: str):
        """A weight-like array: a bound constant, or a new parameter of main."""
        array = np.ascontiguousarray(array, dtype=np.float32)
        if self.bind:
            return self.relax.const(array, "float32")
        var = self.relax.Var(name, self.relax.TensorType(array.shape, "float32"))
        self.param_vars.append(var)
        self.param_values[name] = array
        return var

    def emit(self, expr):
        return self.bb.emit(expr)


def _shape(value) -> tuple[int, ...]:
    return tuple(int(d) for d in value.ty.shape)


def _channel_vector(ctx, vector, ndim: int):
    """Reshape a per-channel (C,) value to (1, C, 1, ...) so it broadcasts over N and space."""
    return ctx.relax.op.reshape(vector, (1, -1) + (1,) * (ndim - 2))


def _pads(padding) -> tuple[int, ...]:
    # Relax takes (begin..., end...) per spatial dim; archdsl's padding is symmetric.
    return tuple(padding) + tuple(padding)


def _add_bias(ctx, layer, value):
    if not ctx.has_weight(layer, "bias"):
        return value
    return ctx.relax.op.add(value, _channel_vector(ctx, ctx.weight(layer, "bias"), len(_shape(value))))


# ---- emitters -------------------------------------------------------------------


def emit_conv(ctx, layer, x):
    op, nn = layer.op, ctx.relax.op.nn
    conv = {1: nn.conv1d, 2: nn.conv2d, 3: nn.conv3d}[len(op.kernel)]
    y = ctx.emit(conv(x, ctx.weight(layer, "weight"), strides=tuple(op.stride), padding=_pads(op.padding),
                      dilation=tuple(op.dilation), groups=op.groups))
    return _add_bias(ctx, layer, y)


def emit_deconv(ctx, layer, x):
    op, nn = layer.op, ctx.relax.op.nn
    deconv = {1: nn.conv1d_transpose, 2: nn.conv2d_transpose, 3: nn.conv3d_transpose}[len(op.kernel)]
    y = ctx.emit(deconv(x, ctx.weight(layer, "weight"), strides=tuple(op.stride), padding=_pads(op.padding),
                        output_padding=tuple(op.output_padding), groups=op.groups))
    return _add_bias(ctx, layer, y)


def emit_maxpool(ctx, layer, x):
    op, nn = layer.op, ctx.relax.op.nn
    pool = {1: nn.max_pool1d, 2: nn.max_pool2d, 3: nn.max_pool3d}[len(op.kernel)]
    return pool(x, pool_size=tuple(op.kernel), strides=tuple(op.stride), padding=_pads(op.padding), ceil_mode=op.ceil_mode)


def emit_avgpool(ctx, layer, x):
    op, nn = layer.op, ctx.relax.op.nn
    pool = {1: nn.avg_pool1d, 2: nn.avg_pool2d, 3: nn.avg_pool3d}[len(op.kernel)]
    return pool(x, pool_size=tuple(op.kernel), strides=tuple(op.stride), padding=_pads(op.padding),
                ceil_mode=op.ceil_mode, count_include_pad=op.count_include_pad)


def emit_global_avgpool(ctx, layer, x):
    return ctx.relax.op.mean(x, axis=list(range(2, len(_shape(x)))), keepdims=True)


def _flat(ctx, x):
    shape = _shape(x)
    return x if len(shape) == 2 else ctx.emit(ctx.relax.op.reshape(x, (shape[0], math.prod(shape[1:]))))


def emit_fc(ctx, layer, x):
    # linear(x, W) computes x @ W.T; with bound weights FoldConstant does the transpose once.
    op = ctx.relax.op
    rank = len(_shape(x))
    if layer.op.pointwise:  # over the channels at each position: channels last, then back
        x = ctx.emit(op.permute_dims(x, [0, *range(2, rank), 1]))
    else:
        x = _flat(ctx, x)
    y = ctx.emit(op.linear(x, ctx.weight(layer, "weight")))
    if ctx.has_weight(layer, "bias"):
        y = ctx.emit(op.add(y, ctx.weight(layer, "bias")))
    if layer.op.pointwise:
        y = op.permute_dims(y, [0, rank - 1, *range(1, rank - 1)])
    return y


def emit_flatten(ctx, layer, x):
    return _flat(ctx, x)


def emit_identity(ctx, layer, x):
    return x


def emit_batchnorm(ctx, layer, x):
    if layer.name in ctx.plan.folded:  # already applied by the convolution before it
        return x
    scale, shift = bn_scale_shift(layer.op, ctx.plan.weights[layer.name])
    ndim, op = len(_shape(x)), ctx.relax.op
    y = ctx.emit(op.multiply(x, _channel_vector(ctx, ctx.constant(scale, f"{ctx.weight_prefix(layer)}.scale"), ndim)))
    return op.add(y, _channel_vector(ctx, ctx.constant(shift, f"{ctx.weight_prefix(layer)}.shift"), ndim))


def emit_lrn(ctx, layer, x):
    # PyTorch's LocalResponseNorm: x / (k + alpha * mean of x^2 over `size` channels)^beta,
    # the window padded with zeros by size//2 before and (size-1)//2 after. Relax has no
    # LRN op, so: view x^2 as (N, 1, C, rest) and average it over a (size, 1) window.
    op, relax_op = layer.op, ctx.relax.op
    shape = _shape(x)
    n, c, rest = shape[0], shape[1], math.prod(shape[2:])
    squares = ctx.emit(relax_op.reshape(relax_op.multiply(x, x), (n, 1, c, rest)))
    window = ctx.emit(relax_op.nn.avg_pool2d(squares, pool_size=(op.size, 1), strides=(1, 1),
                                            padding=(op.size // 2, 0, (op.size - 1) // 2, 0), count_include_pad=True))
    window = ctx.emit(relax_op.reshape(window, shape))
    base = relax_op.add(relax_op.multiply(window, ctx.relax.const(float(op.alpha), "float32")),
                        ctx.relax.const(float(op.k), "float32"))
    denominator = ctx.emit(relax_op.power(base, ctx.relax.const(float(op.beta), "float32")))
    return relax_op.divide(x, denominator)


def emit_relu(ctx, layer, x):
    return ctx.relax.op.nn.relu(x)


class _RelaxPrimitives:
    """`archdsl.formula`'s primitives as Relax ops: every element-wise activation in one emitter."""

    def __init__(self, ctx):
        self.ctx, op = ctx, ctx.relax.op
        self.add, self.sub, self.mul, self.div, self.pow = op.add, op.subtract, op.multiply, op.divide, op.power
        self.gt, self.lt, self.ge, self.le = op.greater, op.less, op.greater_equal, op.less_equal
        self.exp, self.log, self.tanh, self.sigmoid, self.erf, self.sqrt, self.abs = (
            op.exp, op.log, op.tanh, op.sigmoid, op.erf, op.sqrt, op.abs)
        self.neg, self.where = op.negative, op.where

    def const(self, value: float):
        return self.ctx.relax.const(value, "float32")

    def softplus(self, x):  # log(1 + e^x), and x itself where e^x would overflow (as PyTorch, threshold 20)
        return self.where(self.gt(x, self.const(20.0)), x, self.log(self.add(self.exp(x), self.const(1.0))))

    def clip(self, x, low, high):
        op = self.ctx.relax.op
        return op.maximum(op.minimum(x, high), low)


def emit_activation(ctx, layer, x):
    op = layer.op
    fields = {f.name: getattr(op, f.name) for f in dataclasses.fields(op)}
    return evaluate_formula(parse_formula(op.formula), x, fields, _RelaxPrimitives(ctx))


def emit_softmax(ctx, layer, x):
    return ctx.relax.op.nn.softmax(x, axis=1)


def emit_upsample(ctx, layer, x):
    op, relax_op = layer.op, ctx.relax.op
    shape = _shape(x)
    spatial = len(shape) - 2
    scales = tuple(op.scale) if isinstance(op.scale, (tuple, list)) else (op.scale,) * spatial
    out_spatial = tuple(int(math.floor(s * f)) for s, f in zip(shape[2:], scales))
    if op.mode == "nearest" and all(float(f).is_integer() for f in scales):
        # Integer nearest upsampling is a repeat along each axis: exact, and cheaper than resize.
        for axis, factor in enumerate(scales, start=2):
            if int(factor) != 1:
                x = ctx.emit(relax_op.repeat(x, int(factor), axis=axis))
        return x
    if op.mode == "nearest":
        # PyTorch 'nearest' = floor(dst / scale): asymmetric coordinates, floor rounding.
        kw = dict(method="nearest_neighbor", coordinate_transformation_mode="asymmetric", rounding_method="floor")
    else:
        # PyTorch (bi/tri)linear with align_corners=False is TVM's 'half_pixel'.
        kw = dict(method="linear", coordinate_transformation_mode="half_pixel")
    if spatial == 1:  # resize a (N, C, 1, L) view
        y = ctx.emit(relax_op.image.resize2d(relax_op.reshape(x, (shape[0], shape[1], 1, shape[2])),
                                             (1, out_spatial[0]), **kw))
        return relax_op.reshape(y, (shape[0], shape[1], out_spatial[0]))
    resize = relax_op.image.resize2d if spatial == 2 else relax_op.image.resize3d
    return resize(x, out_spatial, **kw)


def emit_add(ctx, layer, *xs):
    total = xs[0]
    for x in xs[1:]:
        total = ctx.emit(ctx.relax.op.add(total, x))
    return total


def emit_concat(ctx, layer, *xs):
    return ctx.relax.op.concat(list(xs), axis=1)


def emit_mul(ctx, layer, *xs):
    # Channels first, as the IR broadcasts: a gate of lower rank (N, C) becomes (N, C, 1, ...).
    rank = max(len(_shape(x)) for x in xs)
    product = None
    for x in xs:
        shape = _shape(x)
        if len(shape) < rank:
            x = ctx.emit(ctx.relax.op.reshape(x, shape + (1,) * (rank - len(shape))))
        product = x if product is None else ctx.emit(ctx.relax.op.multiply(product, x))
    return product


def emit_layerscale(ctx, layer, x):
    gamma = ctx.weight(layer, "layer_scale")  # (C, 1, …): broadcasts over N and space as it is
    return ctx.relax.op.multiply(x, gamma)


def emit_prelu(ctx, layer, x):
    op = ctx.relax.op
    slope = _channel_vector(ctx, ctx.weight(layer, "weight"), len(_shape(x)))  # one slope, or one per channel
    return op.where(op.greater(x, ctx.relax.const(0.0, "float32")), x, ctx.emit(op.multiply(x, slope)))


def emit_layernorm(ctx, layer, x):
    # Over the channels (axis 1) at each position, or over a vector's features.
    return ctx.relax.op.nn.layer_norm(x, ctx.weight(layer, "weight"), ctx.weight(layer, "bias"), axes=[1],
                                      epsilon=layer.op.eps)


def emit_groupnorm(ctx, layer, x):
    ndim = len(_shape(x))
    return ctx.relax.op.nn.group_norm(x, ctx.weight(layer, "weight"), ctx.weight(layer, "bias"),
                                      num_groups=layer.op.groups, channel_axis=1, axes=list(range(2, ndim)),
                                      epsilon=layer.op.eps)


def emit_shuffle(ctx, layer, x):
    op, shape, groups = ctx.relax.op, _shape(x), layer.op.groups
    n, c, rest = shape[0], shape[1], shape[2:]
    grouped = ctx.emit(op.reshape(x, (n, groups, c // groups, *rest)))
    swapped = ctx.emit(op.permute_dims(grouped, [0, 2, 1, *range(3, len(shape) + 1)]))
    return op.reshape(swapped, shape)


def emit_channel_slice(ctx, layer, x):
    return ctx.relax.op.strided_slice(x, axes=[1], begin=[layer.op.start], end=[layer.op.stop])


def emit_adaptive_pool(ctx, layer, x):
    """Where the output size divides the input's, the windows are a plain pool's; elsewhere they
    differ in size, and since a product of per-axis windows can be reduced one axis at a time,
    each axis is cut into its windows (`adaptive_windows`), reduced, and put back together."""
    op, nn = ctx.relax.op, ctx.relax.op.nn
    shape = _shape(x)
    spatial, out = shape[2:], layer.op.output_size
    is_max = isinstance(layer.op, ops.AdaptiveMaxPool)
    if all(n % o == 0 for n, o in zip(spatial, out)):
        window = tuple(n // o for n, o in zip(spatial, out))
        pools = ({1: nn.max_pool1d, 2: nn.max_pool2d, 3: nn.max_pool3d} if is_max
                 else {1: nn.avg_pool1d, 2: nn.avg_pool2d, 3: nn.avg_pool3d})
        return pools[len(spatial)](x, pool_size=window, strides=window)
    reduce = op.max if is_max else op.mean
    for axis, (size, count) in enumerate(zip(spatial, out), start=2):
        if size == count:
            continue
        parts = [ctx.emit(reduce(ctx.emit(op.strided_slice(x, axes=[axis], begin=[a], end=[b])), axis=[axis], keepdims=True))
                 for a, b in adaptive_windows(size, count)]
        x = ctx.emit(op.concat(parts, axis=axis))
    return x


Emitter = Callable[..., object]

# op class → emitter (`tests/test_op_coverage.py` fails while a registered op has none).
EMITTERS: dict[type[ops.Op], Emitter] = {
    ops.Conv: emit_conv,
    ops.Deconv: emit_deconv,
    ops.MaxPool: emit_maxpool,
    ops.AvgPool: emit_avgpool,
    ops.GlobalAvgPool: emit_global_avgpool,
    ops.FC: emit_fc,
    ops.Flatten: emit_flatten,
    ops.Dropout: emit_identity,  # inference
    ops.DropPath: emit_identity,  # inference
    ops.BatchNorm: emit_batchnorm,
    ops.LayerNorm: emit_layernorm,
    ops.GroupNorm: emit_groupnorm,
    ops.LayerScale: emit_layerscale,
    ops.LRN: emit_lrn,
    ops.Activation: emit_activation,
    ops.ReLU: emit_relu,
    ops.PReLU: emit_prelu,
    ops.Softmax: emit_softmax,
    ops.AdaptiveAvgPool: emit_adaptive_pool,
    ops.AdaptiveMaxPool: emit_adaptive_pool,
    ops.Upsample: emit_upsample,
    ops.Add: emit_add,
    ops.Concat: emit_concat,
    ops.Mul: emit_mul,
    ops.Shuffle: emit_shuffle,
    ops.ChannelSlice: emit_channel_slice,
}


def find_emitter(op_class) -> Emitter | None:
    """The emitter of an op class, or of the nearest base class that has one (`Activation`)."""
    return next((EMITTERS[c] for c in op_class.__mro__ if c in EMITTERS), None)


def check_supported(net) -> None:
    """Raise ArchError at the first layer the lowering cannot express (no TVM needed)."""
    for layer in net.layers[1:]:
        if find_emitter(type(layer.op)) is None:
            raise ArchError(
                f"the TVM backend cannot lower '{layer.token}' (op {layer.op.family}, layer '{layer.name}');"
                " add an emitter to archdsl/backends/tvm/lower.py",
                layer.span,
            )


def lower(net, state_dict=None, *, batch: int = 1, bind_weights: bool = True, fold_bn: bool = True) -> Lowered:
    """Lower `net` to a Relax IRModule with one function `main`.

    `state_dict` follows the PyTorch backend's names; None draws weights like
    PyTorch's default init. Raises ArchError for an op without an emitter (naming
    the op and the spec position) and for a state_dict that does not fit.
    """
    check_supported(net)
    import_tvm()
    from tvm import relax

    weights = random_weights(net) if state_dict is None else read_state_dict(net, state_dict)
    plan = fold_batchnorms(net, weights) if fold_bn else FoldPlan(weights=weights)
    bb = relax.BlockBuilder()
    ctx = _Context(relax, bb, net, plan, bind_weights)
    input_layer = net.layers[0]
    input_shape = (batch, *net.input_shape)
    x = relax.Var(input_layer.name.replace(".", "_") or "x", relax.TensorType(input_shape, "float32"))
    values = {input_layer.name: x}
    output_names = list(net.outputs)
    with bb.function("main"):
        with bb.dataflow():
            for layer in net.layers[1:]:
                args = [values[name] for name in layer.inputs]
                try:
                    result = find_emitter(type(layer.op))(ctx, layer, *args)
                    value = result if isinstance(result, relax.Var) else bb.emit(result)
                except ArchError as error:
                    raise error.with_span(layer.span)
                except Exception as error:  # a TVM type-inference error: say which layer
                    raise ArchError(f"the TVM backend failed to lower '{layer.token}' (layer '{layer.name}'): {error}", layer.span) from error
                got = _shape(value)[1:]
                if got != tuple(layer.shape):
                    raise ArchError(f"the TVM lowering of '{layer.token}' (layer '{layer.name}') gives shape {list(got)}, the IR says {list(layer.shape)}", layer.span)
                values[layer.name] = value
            results = [values[net.output_nodes[name]] for name in output_names]
            out = bb.emit_output(results[0] if len(results) == 1 else relax.Tuple(results))
        bb.emit_func_output(out, params=[x, *ctx.param_vars])
    mod = bb.get()
    return Lowered(mod=mod, input_shape=input_shape, output_names=output_names,
                   param_names=list(ctx.param_values), params=ctx.param_values)

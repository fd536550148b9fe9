"""ONNX nodes → archdsl layers: a table of small converters keyed by the ONNX op type, as TVM's
Relax frontends have them. Each converter reads one node (its attributes, its inputs' shapes, its
constant inputs) and adds layers to the imported graph, or makes its output another name for its
input (Identity, Dropout, a Reshape that only adds unit dimensions), or folds into the layer before it
(a MatMul's bias Add, a Flatten before a fully connected layer, which flattens by itself).

A node archdsl cannot express is an `UnsupportedOp` naming the node, its op type and what is
missing. The converters name the op classes they make; activations that ONNX spells as several
nodes (GELU, Mish, SiLU as exporters decompose them) are found among every registered activation by
what they compute (`activations`), so such an op added to archdsl is imported as soon as it is registered.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import networkx as nx

from ..errors import ArchError
from ..ops import (
    ELU, FC, GELU, LRN, Add, AvgPool, BatchNorm, ChannelSlice, Concat, Conv, Deconv, Flatten, GlobalAvgPool, GroupNorm,
    Hardsigmoid, Hardswish, Input, LayerNorm, LayerScale, LeakyReLU, MaxPool, Mul, Op, PReLU, ReLU, ReLU6, Shuffle,
    Sigmoid, SiLU, Softmax, Tanh, Trait, Upsample,
)
from ..ops.activation import Mish
from ..shapes import MAX_SIZE, fmt_shape
from .model import OnnxModel, attributes, module_hint


class UnsupportedOp(ArchError):
    """An ONNX node archdsl has no layer for (or not with these attributes)."""

    def __init__(self, node, what: str):
        name = node.name or (node.output[0] if node.output else "?")
        super().__init__(f"ONNX node '{name}' ({node.op_type}): {what}")
        self.node = node


@dataclass
class Layer:
    """One layer of the imported graph."""

    name: str
    op: Op
    inputs: tuple[str, ...]  # layer names
    shape: tuple[int, ...]  # without the batch
    weights: dict = field(default_factory=dict)  # PyTorch's tensor name → numpy array
    origin: str = ""  # the ONNX node it came from
    hint: str | None = None  # the PyTorch module path the exporter recorded
    classes: tuple[str, ...] = ()
    index: int = 0  # the ONNX node's position: the program's order


class Builder:
    """The imported graph as it grows: a networkx DiGraph whose nodes carry `Layer`s."""

    def __init__(self, model: OnnxModel):
        self.model = model
        self.graph = nx.DiGraph()
        self.producer: dict[str, str] = {}  # ONNX tensor → the layer whose value it is
        self.counts: dict[str, int] = {}
        self.done: set[int] = set()  # ONNX nodes already taken into a layer (an activation's parts)
        # Tensors that are a layer's value seen another way: ("last",) channels last (ConvNeXt's
        # permuted blocks), ("split", g) and ("split_t", g) a channel shuffle under way, ("groups", g)
        # and ("gn", g, eps) a group norm under way.
        self.views: dict[str, tuple] = {}
        self.position = {id(n): i for i, n in enumerate(model.nodes)}
        (source,) = model.inputs
        shape = model.shape(source)
        if shape is None or len(shape) < 2:
            raise ArchError(f"the input '{source}' needs a shape N×C(×…); ONNX gives {shape}")
        if any(d < 1 or d > MAX_SIZE for d in shape[1:]):
            raise ArchError(f"the input '{source}' has the shape {shape}; archdsl needs every size but the batch"
                            f" between 1 and {MAX_SIZE:,}")
        self.input = "input"
        self.graph.add_node("input", layer=Layer("input", Input(shape[1:]), (), shape[1:], origin=source))
        self.producer[source] = "input"

    # ---- reading a node ----
    def const(self, tensor: str):
        return self.model.constants.get(tensor) if tensor else None

    def shape(self, tensor: str) -> tuple[int, ...]:
        shape = self.model.shape(tensor)
        if shape is None:
            raise ArchError(f"onnx's shape inference gives no shape for tensor '{tensor}'")
        return shape

    def layer_of(self, tensor: str) -> Layer:
        return self.graph.nodes[self.producer[tensor]]["layer"]

    def produced(self, tensor: str) -> bool:
        return tensor in self.producer

    def consumers(self, tensor: str) -> list:
        return self.model.consumers.get(tensor, [])

    # ---- growing the graph ----
    def add(self, node, op: Op, inputs: list[str], weights: dict | None = None, output: str | None = None,
            view: tuple | None = None) -> Layer:
        views = {self.views.get(t) for t in inputs}
        if views != {None} and view is None:
            if views == {("last",)} and _keeps_layout(op):
                view = ("last",)
            else:
                raise UnsupportedOp(node, f"archdsl's {op.family} on a tensor held as {sorted(v for v in views if v)}"
                                          " (a permuted or regrouped view of a map)")
        sources = tuple(self.producer[t] for t in inputs)
        shapes = tuple(self.graph.nodes[s]["layer"].shape for s in sources)
        try:
            shape = op.output_shape(shapes)
        except ArchError as err:
            raise UnsupportedOp(node, f"archdsl's {op.family} cannot take it: {err.message}") from None
        _check_weights(node, op, shapes, weights or {})
        output = output or node.output[0]
        expected = self.model.shape(output)
        if expected is not None and view == ("last",):
            expected = (expected[0], expected[-1], *expected[1:-1])  # channels last: archdsl holds it channels first
        if expected is not None and tuple(expected[1:]) != tuple(shape):
            raise UnsupportedOp(node, f"archdsl's {op.describe()} computes {fmt_shape(shape)} where the ONNX graph has"
                                      f" {fmt_shape(tuple(expected[1:]))}")
        self.counts[op.family] = self.counts.get(op.family, 0) + 1
        name = f"{op.family}{self.counts[op.family]}"
        hint, classes = module_hint(node)
        layer = Layer(name, op, sources, shape, weights or {}, node.name or node.op_type, hint, classes,
                      self.position.get(id(node), len(self.graph)))
        self.graph.add_node(name, layer=layer)
        for s in sources:
            self.graph.add_edge(s, name)
        self.producer[output] = name
        if view is not None:
            self.views[output] = view
        return layer

    def alias(self, output: str, tensor: str, view: tuple | None | bool = True) -> None:
        """`output` is `tensor`'s value; seen as `tensor` is (view True), or as `view`."""
        self.producer[output] = self.producer[tensor]
        view = self.views.get(tensor) if view is True else view
        if view:
            self.views[output] = view
        else:
            self.views.pop(output, None)

    def view(self, tensor: str) -> tuple | None:
        return self.views.get(tensor)

    def replace(self, layer: Layer, op: Op, weights: dict) -> None:
        layer.op = op
        layer.weights = weights


def _check_weights(node, op: Op, shapes: tuple, weights: dict) -> None:
    """Each of the node's constants holds as many values as the layer's tensor it becomes (a bias of
    7 values on a conv of 4 filters is a damaged model, refused here with its node)."""
    expected = op.weights(shapes)
    for name, value in weights.items():
        weight = expected.get(name)
        if weight is not None and getattr(value, "size", weight.size) != weight.size:
            raise UnsupportedOp(node, f"its {name} holds {value.size:,} values (shape {tuple(value.shape)}); archdsl's"
                                      f" {op.describe()} has {weight.size:,} (shape {tuple(weight.shape)})")


def _keeps_layout(op: Op) -> bool:
    """Ops that act on each position's channels alike, so that they work channels last as they do
    channels first: element-wise ops (activations, prelu, dropout), layer norm, a pointwise fc, a layer
    scale, and adds of such tensors."""
    return op.has(Trait.ELEMENTWISE) or isinstance(op, (Add, Mul, LayerNorm, LayerScale)) \
        or isinstance(op, FC) and op.pointwise


Converter = Callable[[object, Builder, dict], None]
CONVERTERS: dict[str, Converter] = {}


def converter(*op_types: str):
    def register(function: Converter) -> Converter:
        for op_type in op_types:
            CONVERTERS[op_type] = function
        return function

    return register


# ---- helpers -------------------------------------------------------------------------------------------


def _data_inputs(node, b: Builder) -> list[str]:
    """The inputs that are tensors of the network (not constants, not shape computations)."""
    return [t for t in node.input if t and b.produced(t)]


def _one_input(node, b: Builder) -> str:
    inputs = _data_inputs(node, b)
    if len(inputs) != 1:
        raise UnsupportedOp(node, f"archdsl takes it with one tensor input; it has {len(inputs)}")
    return inputs[0]


def _symmetric(node, pads, rank: int) -> tuple[int, ...]:
    pads = list(pads) if pads is not None else [0] * (2 * rank)
    begin, end = pads[:rank], pads[rank:]
    if begin != end:
        raise UnsupportedOp(node, f"padding {pads} differs before and after; archdsl pads both sides alike")
    return tuple(begin)


def _auto_pad(node, attrs: dict, kernel, stride, dilation, in_sizes) -> list[int] | None:
    mode = attrs.get("auto_pad", b"NOTSET")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode in ("NOTSET", ""):
        return attrs.get("pads")
    if mode == "VALID":
        return [0] * (2 * len(kernel))
    begin, end = [], []
    for n, k, s, d in zip(in_sizes, kernel, stride, dilation):
        out = math.ceil(n / s)
        total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
        small, large = total // 2, total - total // 2
        begin.append(small if mode == "SAME_UPPER" else large)
        end.append(large if mode == "SAME_UPPER" else small)
    return begin + end


def f32(value) -> float:
    """A float attribute of ONNX (stored as float32) as the shortest decimal that is that float32:
    1e-05 rather than 9.999999747378752e-06, so that the spec reads as it was written."""
    import numpy as np

    return float(str(np.float32(value)))


# ---- convolution, pooling --------------------------------------------------------------------------------


def _kernel_and_bias(node, b: Builder):
    """A Conv's or ConvTranspose's kernel (inputs W, B: constants archdsl keeps as the layer's weights)."""
    weight = b.const(node.input[1])
    if weight is None:
        raise UnsupportedOp(node, "its weight is computed, not a constant; archdsl needs the kernel as a weight")
    return weight, b.const(node.input[2]) if len(node.input) > 2 else None


@converter("Conv")
def conv(node, b: Builder, attrs: dict) -> None:
    x = node.input[0]
    weight, bias = _kernel_and_bias(node, b)
    rank = weight.ndim - 2
    kernel = tuple(attrs.get("kernel_shape", weight.shape[2:]))
    stride = tuple(attrs.get("strides", (1,) * rank))
    dilation = tuple(attrs.get("dilations", (1,) * rank))
    groups = int(attrs.get("group", 1))
    pads = _auto_pad(node, attrs, kernel, stride, dilation, b.shape(x)[2:])
    padding = _symmetric(node, pads, rank)
    op = Conv(int(weight.shape[0]), kernel, stride, padding, dilation, groups, bias is not None)
    weights = {"weight": weight} | ({"bias": bias} if bias is not None else {})
    b.add(node, op, [x], weights)


@converter("ConvTranspose")
def conv_transpose(node, b: Builder, attrs: dict) -> None:
    x = node.input[0]
    weight, bias = _kernel_and_bias(node, b)
    rank = weight.ndim - 2
    groups = int(attrs.get("group", 1))
    if "output_shape" in attrs:
        raise UnsupportedOp(node, "an explicit output_shape; archdsl writes pad and output_padding")
    if tuple(attrs.get("dilations", (1,) * rank)) != (1,) * rank:
        raise UnsupportedOp(node, "dilation; archdsl's deconv has none")
    op = Deconv(int(weight.shape[1]) * groups, tuple(attrs.get("kernel_shape", weight.shape[2:])),
                tuple(attrs.get("strides", (1,) * rank)), _symmetric(node, attrs.get("pads"), rank),
                tuple(attrs.get("output_padding", (0,) * rank)), groups, bias is not None)
    b.add(node, op, [x], {"weight": weight} | ({"bias": bias} if bias is not None else {}))


def _pool(node, b: Builder, attrs: dict, cls) -> None:
    x = _one_input(node, b)
    kernel = tuple(attrs["kernel_shape"])
    rank = len(kernel)
    stride = tuple(attrs.get("strides", (1,) * rank))
    if tuple(attrs.get("dilations", (1,) * rank)) != (1,) * rank:
        raise UnsupportedOp(node, "a dilated pooling window; archdsl's pooling has no dilation")
    pads = _auto_pad(node, attrs, kernel, stride, (1,) * rank, b.shape(x)[2:])
    padding = _symmetric(node, pads, rank)
    ceil = bool(attrs.get("ceil_mode", 0))
    if cls is AvgPool:
        op = AvgPool(kernel, stride, padding, ceil, bool(attrs.get("count_include_pad", 0)))
    else:
        op = MaxPool(kernel, stride, padding, ceil)
    b.add(node, op, [x])


converter("MaxPool")(lambda node, b, attrs: _pool(node, b, attrs, MaxPool))
converter("AveragePool")(lambda node, b, attrs: _pool(node, b, attrs, AvgPool))


@converter("GlobalAveragePool")
def global_average_pool(node, b: Builder, attrs: dict) -> None:
    b.add(node, GlobalAvgPool(), [_one_input(node, b)])


@converter("ReduceMean")
def reduce_mean(node, b: Builder, attrs: dict) -> None:
    """The mean over every spatial position: global average pooling (kept dims), then a flatten if not."""
    x = _one_input(node, b)
    rank = len(b.shape(x))
    axes = attrs.get("axes")
    if axes is None and len(node.input) > 1:
        constant = b.const(node.input[1])
        axes = None if constant is None else [int(a) for a in constant.reshape(-1)]
    axes = sorted(a % rank for a in axes) if axes is not None else None
    if axes != list(range(2, rank)):
        raise UnsupportedOp(node, f"a mean over axes {axes}; archdsl averages over every spatial position only (gap)")
    if attrs.get("keepdims", 1):
        b.add(node, GlobalAvgPool(), [x])
    else:
        pooled = b.add(node, GlobalAvgPool(), [x], output=node.output[0] + "#pooled")
        b.producer[node.output[0] + "#pooled"] = pooled.name
        b.add(node, Flatten(), [node.output[0] + "#pooled"])


@converter("LRN")
def lrn(node, b: Builder, attrs: dict) -> None:
    size = int(attrs["size"])
    if size % 2 == 0:
        raise UnsupportedOp(node, "an even LRN size, whose window ONNX centres one channel later than archdsl does")
    b.add(node, LRN(size, f32(attrs.get("alpha", 1e-4)), f32(attrs.get("beta", 0.75)), f32(attrs.get("bias", 1.0))),
          [_one_input(node, b)])


# ---- normalisation ----------------------------------------------------------------------------------------


@converter("BatchNormalization")
def batch_norm(node, b: Builder, attrs: dict) -> None:
    x = node.input[0]
    scale, shift, mean, var = (b.const(t) for t in node.input[1:5])
    if any(v is None for v in (scale, shift, mean, var)):
        raise UnsupportedOp(node, "its scale, shift and statistics must be constants (a graph in inference mode)")
    momentum = float(attrs.get("momentum", 0.9))
    op = BatchNorm(f32(attrs.get("epsilon", 1e-5)), round(1.0 - momentum, 6))
    import numpy as np

    weights = {"weight": scale, "bias": shift, "running_mean": mean, "running_var": var,
               "num_batches_tracked": np.array(0, dtype=np.int64)}
    b.add(node, op, [x], weights)


# ---- activations ----------------------------------------------------------------------------------------------


def _activation(op_type: str, make: Callable[[dict], Op]):
    def convert(node, b: Builder, attrs: dict) -> None:
        b.add(node, make(attrs), [_one_input(node, b)])

    CONVERTERS[op_type] = convert


_activation("Relu", lambda attrs: ReLU())
_activation("Sigmoid", lambda attrs: Sigmoid())
_activation("Tanh", lambda attrs: Tanh())
_activation("LeakyRelu", lambda attrs: LeakyReLU(f32(attrs.get("alpha", 0.01))))


@converter("Gelu")
def gelu(node, b: Builder, attrs: dict) -> None:
    approximate = attrs.get("approximate", b"none")
    if (approximate.decode() if isinstance(approximate, bytes) else approximate) != "none":
        raise UnsupportedOp(node, "GELU's tanh approximation; archdsl's gelu is the exact (erf) form")
    b.add(node, GELU(), [_one_input(node, b)])


@converter("Softmax")
def softmax(node, b: Builder, attrs: dict) -> None:
    x = _one_input(node, b)
    rank = len(b.shape(x))
    axis = int(attrs.get("axis", -1 if b.model.opset >= 13 else 1)) % rank
    if axis != 1 and not (rank == 2 and axis == 1):
        raise UnsupportedOp(node, f"a softmax over axis {axis}; archdsl's is over the channels (axis 1)")
    b.add(node, Softmax(), [x])


@converter("Clip")
def clip(node, b: Builder, attrs: dict) -> None:
    """ReLU6 (torchvision's MobileNets) is Clip(0, 6)."""
    low = attrs.get("min")
    high = attrs.get("max")
    if low is None and len(node.input) > 1 and node.input[1]:
        low = b.const(node.input[1])
    if high is None and len(node.input) > 2 and node.input[2]:
        high = b.const(node.input[2])
    low = None if low is None else float(low)
    high = None if high is None else float(high)
    if (low, high) == (0.0, 6.0):
        b.add(node, ReLU6(), [_one_input(node, b)])
    elif low == 0.0 and high is None:
        b.add(node, ReLU(), [_one_input(node, b)])
    else:
        raise UnsupportedOp(node, f"a clip to [{low}, {high}]; archdsl has relu (0, ∞) and relu6 (0, 6)")


@converter("HardSigmoid")
def hard_sigmoid(node, b: Builder, attrs: dict) -> None:
    alpha, beta = f32(attrs.get("alpha", 0.2)), f32(attrs.get("beta", 0.5))
    if not (math.isclose(alpha, 1 / 6, rel_tol=1e-5) and math.isclose(beta, 0.5)):
        raise UnsupportedOp(node, f"a hard sigmoid with alpha={alpha}, beta={beta}; archdsl's is PyTorch's (1/6, 0.5)")
    b.add(node, Hardsigmoid(), [_one_input(node, b)])


@converter("HardSwish")
def hard_swish(node, b: Builder, attrs: dict) -> None:
    b.add(node, Hardswish(), [_one_input(node, b)])


@converter("Mish")
def mish(node, b: Builder, attrs: dict) -> None:
    b.add(node, Mish(), [_one_input(node, b)])


@converter("Elu")
def elu(node, b: Builder, attrs: dict) -> None:
    alpha = f32(attrs.get("alpha", 1.0))
    b.add(node, ELU(alpha) if alpha != 1.0 else ELU(), [_one_input(node, b)])


# ---- fully connected, reshapes ---------------------------------------------------------------------------------


def _flattened_source(b: Builder, tensor: str) -> str:
    """A fully connected layer flattens its input itself: read through a flatten that nothing else reads."""
    layer = b.layer_of(tensor)
    if isinstance(layer.op, Flatten) and b.graph.out_degree(layer.name) == 0:
        source = layer.inputs[0]
        b.graph.remove_node(layer.name)
        for t, producer in list(b.producer.items()):
            if producer == layer.name:
                b.producer[t] = source
        return source
    return b.producer[tensor]


@converter("Gemm")
def gemm(node, b: Builder, attrs: dict) -> None:
    import numpy as np

    x = node.input[0]
    weight = b.const(node.input[1])
    if weight is None or attrs.get("transA", 0):
        raise UnsupportedOp(node, "a product of two tensors of the network; archdsl's fc multiplies by a weight")
    weight = weight if attrs.get("transB", 0) else np.ascontiguousarray(weight.T)
    if float(attrs.get("alpha", 1.0)) != 1.0:
        weight = weight * float(attrs["alpha"])
    bias = b.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if bias is not None:
        beta = float(attrs.get("beta", 1.0))
        bias = np.broadcast_to(bias if beta == 1.0 else bias * beta, (weight.shape[0],))
    _fc(node, b, x, weight, bias)


def _fc(node, b: Builder, x: str, weight, bias) -> None:
    if b.view(x) == ("last",):  # a linear layer on channels last: an fc at each position (ConvNeXt)
        op = FC(int(weight.shape[0]), bias is not None, pointwise=True)
        b.add(node, op, [x], {"weight": weight} | ({"bias": bias} if bias is not None else {}))
        return
    source = _flattened_source(b, x)
    b.producer[x + "#flat"] = source
    op = FC(int(weight.shape[0]), bias is not None)
    b.add(node, op, [x + "#flat"], {"weight": weight} | ({"bias": bias} if bias is not None else {}))


@converter("MatMul")
def matmul(node, b: Builder, attrs: dict) -> None:
    import numpy as np

    weight = b.const(node.input[1])
    if weight is None or weight.ndim != 2 or (len(b.shape(node.input[0])) != 2 and b.view(node.input[0]) != ("last",)):
        raise UnsupportedOp(node, "a matrix product archdsl cannot write as an fc (N×n times a constant n×m)")
    _fc(node, b, node.input[0], np.ascontiguousarray(weight.T), None)


@converter("Flatten")
def flatten(node, b: Builder, attrs: dict) -> None:
    x = _one_input(node, b)
    if int(attrs.get("axis", 1)) != 1:
        raise UnsupportedOp(node, "a flatten from another axis than 1; archdsl keeps the batch and flattens the rest")
    _reshape(node, b, x)


def _reshape(node, b: Builder, x: str) -> None:
    """A reshape that only adds or drops unit dimensions is the same tensor to archdsl (SE's weights,
    N×C → N×C×1×1); one to N×(everything) is a flatten. The steps of a channel shuffle (N×C×H×W →
    N×g×C/g×H×W, transposed, back) and of a group norm (N×C×H×W → N×g×rest, normalised, back) are
    views until the reshape that ends them."""
    before, after = b.shape(x)[1:], b.shape(node.output[0])[1:]
    view = b.view(x)
    if view is not None:
        if view[0] == "split_t" and len(after) == len(before) - 1:
            _add_plain(node, b, Shuffle(view[1]), x)
            return
        if view[0] == "gn" and len(after) >= 2:
            import numpy as np

            channels = after[0]
            layer = _add_plain(node, b, GroupNorm(view[1], view[2]), x,
                               {"weight": np.ones(channels, np.float32), "bias": np.zeros(channels, np.float32)})
            layer.weights["#affine"] = "pending"  # the Mul and Add after it are its γ and β
            return
        raise UnsupportedOp(node, f"a reshape {fmt_shape(before)} → {fmt_shape(after)} of a tensor held as {view}")
    if len(before) >= 2 and len(after) == len(before) + 1 and after[2:] == before[1:] and after[0] * after[1] == before[0] \
            and after[0] > 1 and after[1] > 1:
        b.alias(node.output[0], x, ("split", after[0]))  # the first step of a channel shuffle
        return
    if len(before) >= 2 and len(after) == 2 and before[0] % after[0] == 0 and after[0] > 1 \
            and after[1] * after[0] == math.prod(before):
        b.alias(node.output[0], x, ("groups", after[0]))  # a group norm's regrouping
        return
    if [d for d in before if d != 1] == [d for d in after if d != 1] and (len(after) <= 1 or after[0] == before[0]):
        if len(after) == 1 and len(before) > 1:  # C×1×1 → C: a flatten, which an fc after it does itself
            b.add(node, Flatten(), [x])
        else:
            b.alias(node.output[0], x)
        return
    if len(after) == 1 and after[0] == math.prod(before):
        b.add(node, Flatten(), [x])
        return
    raise UnsupportedOp(node, f"a reshape {fmt_shape(before)} → {fmt_shape(after)}; archdsl flattens C×H×W to C·H·W only")


def _add_plain(node, b: Builder, op: Op, x: str, weights: dict | None = None) -> Layer:
    """A layer reading `x`'s layer as it is (ending a view)."""
    b.alias(x + "#plain", x, None)
    return b.add(node, op, [x + "#plain"], weights)


@converter("Reshape", "Squeeze", "Unsqueeze")
def reshape(node, b: Builder, attrs: dict) -> None:
    _reshape(node, b, node.input[0])


@converter("Identity", "Dropout")
def identity(node, b: Builder, attrs: dict) -> None:
    if node.input[0] in b.producer:
        b.alias(node.output[0], node.input[0])


@converter("Transpose")
def transpose(node, b: Builder, attrs: dict) -> None:
    """Channels to the end and back (ConvNeXt's permutes around its layer norm and pointwise layers),
    or the middle step of a channel shuffle."""
    x = _one_input(node, b)
    rank = len(b.shape(x))
    perm = [int(p) % rank for p in attrs.get("perm", range(rank - 1, -1, -1))]
    view = b.view(x)
    to_last = [0, *range(2, rank), 1]
    to_first = [0, rank - 1, *range(1, rank - 1)]
    if view is None and perm == to_last:
        b.alias(node.output[0], x, ("last",))
    elif view == ("last",) and perm == to_first:
        b.alias(node.output[0], x, None)
    elif view is not None and view[0] == "split" and perm == [0, 2, 1, *range(3, rank)]:
        b.alias(node.output[0], x, ("split_t", view[1]))
    else:
        raise UnsupportedOp(node, f"a transpose {perm}; archdsl holds maps channels first (it reads channels-last"
                                  " layer norms and fc layers, and channel shuffles)")


@converter("LayerNormalization")
def layer_norm(node, b: Builder, attrs: dict) -> None:
    x = node.input[0]
    rank = len(b.shape(x))
    axis = int(attrs.get("axis", -1)) % rank
    last = b.view(x) == ("last",)
    if axis != rank - 1 or not (last or rank == 2):
        raise UnsupportedOp(node, "a layer norm over other axes than the channels; archdsl's normalises the"
                                  " channels at each position")
    scale = b.const(node.input[1])
    bias = b.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if scale is None:
        raise UnsupportedOp(node, "its scale must be a constant")
    import numpy as np

    bias = np.zeros_like(scale) if bias is None else bias
    b.add(node, LayerNorm(f32(attrs.get("epsilon", 1e-5))), [x], {"weight": scale, "bias": bias})


@converter("InstanceNormalization")
def instance_norm(node, b: Builder, attrs: dict) -> None:
    """Group norm as PyTorch exports it: regroup, instance-normalise each group, ungroup, scale and shift."""
    x = node.input[0]
    view = b.view(x)
    scale, bias = b.const(node.input[1]), b.const(node.input[2])
    if view is None or view[0] != "groups" or scale is None or bias is None or scale.any() != 1 \
            or not (scale == 1).all() or bias.any():
        raise UnsupportedOp(node, "an instance norm; archdsl has group norm (which PyTorch exports as one)")
    b.alias(node.output[0], x, ("gn", view[1], f32(attrs.get("epsilon", 1e-5))))


@converter("PRelu")
def prelu(node, b: Builder, attrs: dict) -> None:
    x = node.input[0]
    slope = b.const(node.input[1])
    if slope is None:
        raise UnsupportedOp(node, "its slope must be a constant")
    slope = slope.reshape(-1)
    channels = b.shape(x)[1]
    if slope.size not in (1, channels):
        raise UnsupportedOp(node, f"{slope.size} slopes on {channels} channels; archdsl's prelu has one or one per channel")
    b.add(node, PReLU(slope.size > 1), [x], {"weight": slope})


@converter("Split")
def split(node, b: Builder, attrs: dict) -> None:
    """A cut of the channels into parts (ShuffleNetV2's `x.chunk(2, dim=1)`): one slice layer per part,
    which the writer writes as `split -> a, b`."""
    x = node.input[0]
    rank = len(b.shape(x))
    if int(attrs.get("axis", 0)) % rank != 1:
        raise UnsupportedOp(node, f"a split on axis {attrs.get('axis', 0)}; archdsl splits channels")
    start = 0
    for output in node.output:
        size = b.shape(output)[1]
        b.add(node, ChannelSlice(start, start + size), [x], output=output)
        start += size


@converter("Slice")
def channel_slice(node, b: Builder, attrs: dict) -> None:
    """Channels start … stop − 1 (archdsl's own `split` exports as one Slice per part)."""
    import numpy as np

    x = node.input[0]
    rank = len(b.shape(x))
    starts, ends = (b.const(t) for t in node.input[1:3])
    axes = b.const(node.input[3]) if len(node.input) > 3 and node.input[3] else np.arange(rank)
    steps = b.const(node.input[4]) if len(node.input) > 4 and node.input[4] else None
    if starts is None or ends is None or axes is None or (steps is not None and (steps != 1).any()) \
            or [int(a) % rank for a in axes.reshape(-1)] != [1]:
        raise UnsupportedOp(node, "a slice of other axes than the channels, or with a step; archdsl cuts channels")
    channels = b.shape(x)[1]
    start, end = (int(np.clip(v.reshape(-1)[0] + (channels if v.reshape(-1)[0] < 0 else 0), 0, channels))
                  for v in (starts, ends))
    b.add(node, ChannelSlice(start, end), [x])


# ---- merges -----------------------------------------------------------------------------------------------


@converter("Add", "Sum")
def add(node, b: Builder, attrs: dict) -> None:
    inputs = _data_inputs(node, b)
    constants = [t for t in node.input if t and not b.produced(t)]
    if len(inputs) == 1 and len(constants) == 1:  # a MatMul's bias, a group norm's β
        import dataclasses

        import numpy as np

        layer = b.layer_of(inputs[0])
        bias = b.const(constants[0])
        fresh = b.graph.out_degree(layer.name) == 0 and bias is not None
        if isinstance(layer.op, FC) and not layer.op.bias and fresh:
            b.replace(layer, dataclasses.replace(layer.op, bias=True),
                      {**layer.weights, "bias": np.broadcast_to(bias, (layer.op.out_features,)).copy()})
            b.alias(node.output[0], inputs[0])
            return
        if layer.weights.get("#affine") in ("pending", "scaled") and fresh and bias.size == layer.shape[0]:
            layer.weights["bias"] = bias.reshape(-1).astype(np.float32)
            del layer.weights["#affine"]
            b.alias(node.output[0], inputs[0])
            return
        raise UnsupportedOp(node, "adding a constant; archdsl adds tensors of the network only")
    if len(inputs) < 2:
        raise UnsupportedOp(node, "archdsl's add sums two or more tensors of the network")
    shapes = {b.shape(t) for t in inputs}
    if len(shapes) != 1:
        raise UnsupportedOp(node, f"an add that broadcasts {sorted(shapes)}; archdsl adds tensors of one shape")
    b.add(node, Add(), inputs)


@converter("Mul")
def mul(node, b: Builder, attrs: dict) -> None:
    """x · sigmoid(x) is silu; a map times a per-channel gate is squeeze-and-excitation's last step
    (archdsl's mul broadcasts channels first); a map times a constant per channel is a layer scale."""
    inputs = _data_inputs(node, b)
    if len(inputs) == 1:
        constant = b.const(next(t for t in node.input if t and not b.produced(t)))
        _layer_scale(node, b, inputs[0], constant)
        return
    if len(inputs) != 2:
        raise UnsupportedOp(node, "archdsl's mul multiplies tensors of the network")
    x, s = inputs
    for a, c in ((x, s), (s, x)):
        gate = b.layer_of(c)
        if isinstance(gate.op, Sigmoid) and gate.inputs == (b.producer[a],) and len(b.consumers(c)) == 1:
            b.graph.remove_node(gate.name)
            b.add(node, SiLU(), [a])
            return
    shape_x, shape_s = b.shape(x)[1:], b.shape(s)[1:]
    if len(shape_s) > len(shape_x) or (shape_x != shape_s and all(d == 1 for d in shape_x[1:])):
        x, s = s, x
    b.add(node, Mul(), [x, s])


def _layer_scale(node, b: Builder, x: str, constant) -> None:
    import numpy as np

    layer = b.layer_of(x)
    if layer.weights.get("#affine") == "pending" and constant is not None and constant.size == layer.shape[0] \
            and b.graph.out_degree(layer.name) == 0:
        layer.weights["weight"] = constant.reshape(-1).astype(np.float32)  # a group norm's γ
        layer.weights["#affine"] = "scaled"
        b.alias(node.output[0], x)
        return
    shape = layer.shape
    if constant is None:
        raise UnsupportedOp(node, "multiplying by a computed constant; archdsl multiplies by weights per channel only")
    gamma = np.asarray(constant)
    if gamma.size != shape[0] or gamma.reshape(-1).shape[0] != shape[0]:
        raise UnsupportedOp(node, f"multiplying a {fmt_shape(shape)} map by a constant of shape {gamma.shape};"
                                  " archdsl's layerscale has one weight per channel")
    ((name, weight),) = LayerScale().weights((shape,)).items()
    b.add(node, LayerScale(), [x], {name: gamma.reshape(weight.shape)})


@converter("Concat")
def concat(node, b: Builder, attrs: dict) -> None:
    inputs = _data_inputs(node, b)
    if len(inputs) != len([t for t in node.input if t]):
        raise UnsupportedOp(node, "concatenating a constant")
    if int(attrs["axis"]) % len(b.shape(inputs[0])) != 1:
        raise UnsupportedOp(node, f"a concatenation on axis {attrs['axis']}; archdsl concatenates channels")
    if len(inputs) == 1:
        b.alias(node.output[0], inputs[0])
        return
    b.add(node, Concat(), inputs)


# ---- resizing ----------------------------------------------------------------------------------------------------


@converter("Resize", "Upsample")
def resize(node, b: Builder, attrs: dict) -> None:
    x = node.input[0]
    before, after = b.shape(x)[2:], b.shape(node.output[0])[2:]
    if any(a % n for a, n in zip(after, before)):
        raise UnsupportedOp(node, f"a resize {fmt_shape(before)} → {fmt_shape(after)} by a fraction; archdsl upsamples by whole factors")
    scale = tuple(a // n for a, n in zip(after, before))
    mode = attrs.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode == "nearest":
        written = "nearest"
    elif mode == "linear" and len(before) == 2:
        transform = attrs.get("coordinate_transformation_mode", b"half_pixel")
        transform = transform.decode() if isinstance(transform, bytes) else transform
        if transform not in ("half_pixel", "pytorch_half_pixel"):
            raise UnsupportedOp(node, f"bilinear resizing with {transform} coordinates; archdsl's is PyTorch's"
                                      " (align_corners=False)")
        written = "bilinear"
    else:
        raise UnsupportedOp(node, f"resizing by '{mode}'; archdsl upsamples nearest, or bilinear in 2-D")
    b.add(node, Upsample(scale, written), [x])


# ---- shape computations: nothing to archdsl ---------------------------------------------------------------------


@converter("Constant", "Shape", "Gather", "Cast", "ConstantOfShape", "Range", "Equal", "Where", "Size")
def plumbing(node, b: Builder, attrs: dict) -> None:
    """Nodes that compute shapes or constants: fine as long as no layer reads their output as a tensor."""
    if any(b.produced(t) for t in node.input if t) and node.op_type not in ("Shape", "Size"):
        raise UnsupportedOp(node, "an operation on a tensor of the network that archdsl has no layer for")


def as_activation(node, b: Builder) -> bool:
    """Whether `node` starts an element-wise activation, recognised by what it computes (see
    `activations`), which is then added as one layer."""
    from .activations import ELEMENTWISE, recognise

    if node.op_type not in ELEMENTWISE or node.domain not in ("", "ai.onnx"):
        return False
    data = [t for t in node.input if t and b.produced(t)]
    if len(data) != 1:
        return False
    found = recognise(data[0], b.model, b.produced, attributes)
    if found is None or id(node) not in {id(n) for n in found[2]}:
        return False
    cls, output, nodes = found
    last = max(nodes, key=lambda n: b.position[id(n)])
    b.add(last, cls(), [data[0]], output=output)
    b.done.update(id(n) for n in nodes)
    return True


def convert_node(node, b: Builder) -> None:
    function = CONVERTERS.get(node.op_type)
    if node.domain in ("", "ai.onnx") and not any(b.produced(t) for t in node.input if t):
        return  # computes a constant or a shape, not a tensor of the network
    if node.domain not in ("", "ai.onnx") or function is None:
        raise UnsupportedOp(node, f"archdsl has no layer for the op '{node.op_type}'"
                                  + (f" of domain '{node.domain}'" if node.domain not in ("", "ai.onnx") else ""))
    attrs = attributes(node)
    _check_sizes(node, attrs)
    function(node, b, attrs)


# ONNX's window attributes and the least value each may hold: a model that breaks these is no
# valid ONNX (onnxruntime refuses it too), and archdsl says so rather than writing a spec it refuses.
LEAST = {"kernel_shape": 1, "strides": 1, "dilations": 1, "group": 1, "size": 1, "pads": 0, "output_padding": 0}


def _check_sizes(node, attrs: dict) -> None:
    for name, least in LEAST.items():
        value = attrs.get(name)
        if value is None:
            continue
        several = isinstance(value, (list, tuple))
        if any(not isinstance(v, int) or v < least for v in (value if several else [value])):
            what = (("positive whole numbers" if least else "whole numbers ≥ 0") if several
                    else ("a positive whole number" if least else "a whole number ≥ 0"))
            raise UnsupportedOp(node, f"its {name} must be {what}; the model gives"
                                      f" {name}={list(value) if several else value}")

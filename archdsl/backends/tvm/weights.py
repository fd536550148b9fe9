"""Weights for the lowering: read a PyTorch state_dict, check it fits, fold batch norms.

The PyTorch backend puts every layer's tensors under `net.module_path(layer.name)`
and uses PyTorch's standard names and layouts, so a state_dict from it (or from a
checkpoint it wrote) maps onto the IR without any table. This module knows nothing of
TVM: it works on numpy arrays only, so it is cheap to test.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ...errors import ArchError


def op_kind(op) -> str:
    return type(op).__name__


def _shape_of(net, name) -> tuple:
    return tuple(net.graph.nodes[name]["layer"].shape)


def conv_has_bias(net, layer) -> bool:
    """Whether a Conv/Deconv has a bias: as written, else (bias=None) none when a bn follows.

    `archdsl.passes.resolve_bias` normally decides bias=None before any backend runs;
    this repeats its rule (exactly one consumer, a BatchNorm) for graphs built without it.
    """
    if layer.op.bias is not None:
        return bool(layer.op.bias)
    consumers = list(net.graph.successors(layer.name))
    return not (len(consumers) == 1 and op_kind(net.graph.nodes[consumers[0]]["layer"].op) == "BatchNorm")


def expected_params(net, layer) -> dict[str, tuple]:
    """The tensors PyTorch's module for `layer` holds, with their shapes ({} if none)."""
    op, kind = layer.op, op_kind(layer.op)
    if kind in ("Conv", "Deconv", "FC", "BatchNorm"):
        in_shape = _shape_of(net, layer.inputs[0])
    if kind == "Conv":
        shapes = {"weight": (op.out_channels, in_shape[0] // op.groups, *op.kernel)}
        if conv_has_bias(net, layer):
            shapes["bias"] = (op.out_channels,)
        return shapes
    if kind == "Deconv":
        shapes = {"weight": (in_shape[0], op.out_channels // op.groups, *op.kernel)}
        if conv_has_bias(net, layer):
            shapes["bias"] = (op.out_channels,)
        return shapes
    if kind == "FC":
        shapes = {"weight": (op.out_features, math.prod(in_shape))}
        if op.bias:
            shapes["bias"] = (op.out_features,)
        return shapes
    if kind == "BatchNorm":
        c = in_shape[0]
        return {"weight": (c,), "bias": (c,), "running_mean": (c,), "running_var": (c,)}
    return {}


# Buffers PyTorch keeps that inference does not use.
_IGNORED = ("num_batches_tracked",)


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor; torch is not imported here
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def read_state_dict(net, state_dict) -> dict[str, dict[str, np.ndarray]]:
    """{layer name: {param name: float32 array}}, checked against what the IR needs.

    A tensor that is missing, has the wrong shape, or is not used raises ArchError
    naming it, so a checkpoint from another spec fails with a clear message instead
    of a shape error deep inside TVM.
    """
    state = {key: value for key, value in state_dict.items() if not key.endswith(_IGNORED)}
    if state and all(key.startswith("module.") for key in state):  # saved from DataParallel
        state = {key[len("module."):]: value for key, value in state.items()}
    weights: dict[str, dict[str, np.ndarray]] = {}
    used = set()
    for layer in net.layers:
        shapes = expected_params(net, layer)
        if op_kind(layer.op) in ("Conv", "Deconv") and layer.op.bias is None and "bias" not in shapes:
            shapes["bias"] = (layer.op.out_channels,)  # bias=None: present or not, both fit
        for pname, shape in shapes.items():
            key = f"{net.module_path(layer.name)}.{pname}"
            if key not in state and pname == "bias" and layer.op.bias is None:
                continue  # bias=None: the PyTorch backend decides; accept either
            if key not in state:
                raise ArchError(f"the state_dict has no tensor '{key}' (layer '{layer.name}', {layer.token}, needs shape {list(shape)})", layer.span)
            array = _to_numpy(state[key])
            if tuple(array.shape) != tuple(shape):
                raise ArchError(
                    f"tensor '{key}' has shape {list(array.shape)} in the state_dict, "
                    f"but layer '{layer.name}' ({layer.token}) needs {list(shape)}",
                    layer.span,
                )
            weights.setdefault(layer.name, {})[pname] = np.ascontiguousarray(array, dtype=np.float32)
            used.add(key)
    unused = sorted(set(state) - used)
    if unused:
        more = f" and {len(unused) - 1} more" if len(unused) > 1 else ""
        raise ArchError(f"the state_dict has tensor '{unused[0]}'{more} that no layer of network '{net.name}' uses")
    return weights


def random_weights(net, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Weights drawn like PyTorch's default init (uniform ±1/sqrt(fan_in)); BN starts at identity.

    Used when no state_dict is given, so that an untrained network still produces
    outputs of a sensible scale (benchmarks, smoke tests).
    """
    rng = np.random.default_rng(seed)
    weights: dict[str, dict[str, np.ndarray]] = {}
    for layer in net.layers:
        shapes = expected_params(net, layer)
        if not shapes:
            continue
        kind = op_kind(layer.op)
        if kind == "BatchNorm":
            c = shapes["weight"][0]
            weights[layer.name] = {
                "weight": np.ones(c, np.float32), "bias": np.zeros(c, np.float32),
                "running_mean": np.zeros(c, np.float32), "running_var": np.ones(c, np.float32),
            }
            continue
        w_shape = shapes["weight"]
        fan_in = math.prod(w_shape[1:]) if kind != "Deconv" else w_shape[1] * math.prod(w_shape[2:])
        bound = 1.0 / math.sqrt(max(fan_in, 1))
        weights[layer.name] = {
            pname: rng.uniform(-bound, bound, size=shape).astype(np.float32) for pname, shape in shapes.items()
        }
    return weights


@dataclass
class FoldPlan:
    """Batch norms folded into the convolution before them, and BNs left as scale+shift."""

    weights: dict[str, dict[str, np.ndarray]]
    folded: set[str] = field(default_factory=set)  # BN layer names now computed by their conv


def _bn_scale_shift(bn_op, params) -> tuple[np.ndarray, np.ndarray]:
    # Inference batch norm is an affine map per channel: y = x * scale + shift.
    inv_std = 1.0 / np.sqrt(params["running_var"].astype(np.float64) + bn_op.eps)
    scale = params["weight"].astype(np.float64) * inv_std
    shift = params["bias"].astype(np.float64) - params["running_mean"].astype(np.float64) * scale
    return scale, shift


def bn_scale_shift(bn_op, params) -> tuple[np.ndarray, np.ndarray]:
    scale, shift = _bn_scale_shift(bn_op, params)
    return scale.astype(np.float32), shift.astype(np.float32)


def fold_batchnorms(net, weights: dict[str, dict[str, np.ndarray]]) -> FoldPlan:
    """Fold each BatchNorm into the Conv/Deconv feeding it when the BN is that conv's only consumer.

    A folded BN costs nothing at run time and leaves one fusable conv+bias for TVM to
    tune. A conv whose output is also used elsewhere (or is a network output) keeps
    its BN separate, because folding would change what the other consumers see.
    """
    weights = {name: dict(params) for name, params in weights.items()}
    by_name = {layer.name: layer for layer in net.layers}
    outputs = set(net.output_nodes.values())
    folded: set[str] = set()
    for layer in net.layers:
        if op_kind(layer.op) != "BatchNorm":
            continue
        producer = by_name[layer.inputs[0]]
        kind = op_kind(producer.op)
        if kind not in ("Conv", "Deconv") or producer.name in outputs:
            continue
        if list(net.graph.successors(producer.name)) != [layer.name]:
            continue
        scale, shift = _bn_scale_shift(layer.op, weights[layer.name])
        conv = weights[producer.name]
        w = conv["weight"].astype(np.float64)
        out_channels = producer.op.out_channels
        if kind == "Conv":  # weight (out, in/groups, *k): output channel is axis 0
            w = w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
        else:  # ConvTranspose weight (in, out/groups, *k): output channel g*(out/groups)+j
            groups = producer.op.groups
            in_c, out_per_group = w.shape[0], w.shape[1]
            grouped = w.reshape((groups, in_c // groups, out_per_group) + w.shape[2:])
            grouped = grouped * scale.reshape((groups, 1, out_per_group) + (1,) * (w.ndim - 2))
            w = grouped.reshape(w.shape)
        bias = conv.get("bias", np.zeros(out_channels, np.float32)).astype(np.float64)
        conv["weight"] = w.astype(np.float32)
        conv["bias"] = (bias * scale + shift).astype(np.float32)
        folded.add(layer.name)
    return FoldPlan(weights=weights, folded=folded)

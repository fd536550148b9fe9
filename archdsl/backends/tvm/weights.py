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
from ...state_dicts import unwrap_state_dict
from ...ops import BatchNorm, Role, Weight


def expected_params(net, layer) -> dict[str, Weight]:
    """The tensors inference needs for `layer`, by PyTorch's names: what its op declares,
    less the step counter batch norm keeps for training."""
    inputs = tuple(net.graph.nodes[i]["layer"].shape for i in layer.inputs)
    return {name: w for name, w in layer.op.weights(inputs).items() if w.role is not Role.STEP_COUNT}


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
    state_dict = unwrap_state_dict(state_dict)  # saved from DataParallel or torch.compile
    weights: dict[str, dict[str, np.ndarray]] = {}
    used = set()
    for layer in net.layers:
        prefix = net.module_path(layer.name)
        for pname, weight in layer.op.weights(tuple(net.graph.nodes[i]["layer"].shape for i in layer.inputs)).items():
            key = f"{prefix}.{pname}"
            if weight.role is Role.STEP_COUNT:  # training's bookkeeping: accepted, not needed
                used.add(key)
                continue
            shape = weight.shape
            if key not in state_dict:
                raise ArchError(f"the state_dict has no tensor '{key}' (layer '{layer.name}', {layer.token}, needs shape {list(shape)})", layer.span)
            array = _to_numpy(state_dict[key])
            if tuple(array.shape) != tuple(shape):
                raise ArchError(
                    f"tensor '{key}' has shape {list(array.shape)} in the state_dict, "
                    f"but layer '{layer.name}' ({layer.token}) needs {list(shape)}",
                    layer.span,
                )
            weights.setdefault(layer.name, {})[pname] = np.ascontiguousarray(array, dtype=np.float32)
            used.add(key)
    unused = sorted(set(state_dict) - used)
    if unused:
        more = f" and {len(unused) - 1} more" if len(unused) > 1 else ""
        raise ArchError(f"the state_dict has tensor '{unused[0]}'{more} that no layer of network '{net.name}' uses")
    return weights


def _fan_in(weight: Weight) -> int:
    if weight.role is Role.TRANSPOSED_KERNEL:  # (in, out/groups, *k): each output sums over out/groups·k
        return weight.shape[1] * math.prod(weight.shape[2:])
    return math.prod(weight.shape[1:])


def random_weights(net, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Weights drawn like PyTorch's default init (uniform ±1/sqrt(fan_in)); norms start at identity.

    Used when no state_dict is given, so that an untrained network still produces
    outputs of a sensible scale (benchmarks, smoke tests). What each tensor gets
    follows its role; a bias takes the bound of its layer's weight, as in PyTorch.
    """
    rng = np.random.default_rng(seed)
    weights: dict[str, dict[str, np.ndarray]] = {}
    for layer in net.layers:
        tensors = expected_params(net, layer)
        kernels = [w for w in tensors.values() if w.role in (Role.KERNEL, Role.TRANSPOSED_KERNEL, Role.DENSE)]
        bound = 1.0 / math.sqrt(max(_fan_in(kernels[0]), 1)) if kernels else 1.0
        drawn = {}
        for name, weight in tensors.items():
            if weight.role in (Role.SCALE, Role.RUNNING_VAR):
                value = np.ones(weight.shape)
            elif weight.role in (Role.SHIFT, Role.RUNNING_MEAN):
                value = np.zeros(weight.shape)
            elif weight.role is Role.CONSTANT:
                value = np.full(weight.shape, weight.fill)
            else:  # kernels, dense weights, biases
                value = rng.uniform(-bound, bound, size=weight.shape)
            drawn[name] = value.astype(np.float32)
        if drawn:
            weights[layer.name] = drawn
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
        if not isinstance(layer.op, BatchNorm):
            continue
        producer = by_name[layer.inputs[0]]
        kernel = expected_params(net, producer).get("weight")
        if kernel is None or kernel.role not in (Role.KERNEL, Role.TRANSPOSED_KERNEL) or producer.name in outputs:
            continue
        if list(net.graph.successors(producer.name)) != [layer.name]:
            continue
        scale, shift = _bn_scale_shift(layer.op, weights[layer.name])
        conv = weights[producer.name]
        w = conv["weight"].astype(np.float64)
        out_channels = producer.op.out_channels
        if kernel.role is Role.KERNEL:  # weight (out, in/groups, *k): output channel is axis 0
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

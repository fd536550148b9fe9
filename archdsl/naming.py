"""Where each layer lives in the PyTorch module: one function, used by every backend.

`module_paths(net)` maps an archdsl layer name (`bottleneck3.conv2`) to the dotted
path of its submodule in the module `to_torch()` builds, which is also the prefix of
its tensors in a state_dict (`bottleneck3_conv2.weight`). The TVM backend reads
state_dicts by it, training freezes and transfers layers by it, and hooks find a
layer's module by it (`model.get_submodule(path)`). It lives in the core, not in the
PyTorch backend, so that reading a checkpoint's names never needs more than the IR.
"""
from __future__ import annotations


def flat_module_name(layer_name: str) -> str:
    """A layer's submodule name in a flat module: dots, which nn.Module forbids in names, become '_'."""
    return layer_name.replace(".", "_")


def module_paths(net) -> dict[str, str]:
    """Layer name → submodule path, for every layer of `net` (layers without weights included)."""
    return {layer.name: flat_module_name(layer.name) for layer in net.layers}


def layer_for_module(net, path: str) -> str | None:
    """The layer whose submodule is `path` (or whose name is `path`), or None."""
    if path in net.graph:
        return path
    for layer, module in net.module_paths.items():
        if module == path:
            return layer
    return None

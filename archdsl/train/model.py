"""The PyTorch module of a network and what training does to its weights: outputs, init-from, freeze.

The PyTorch backend puts each layer's tensors under `net.module_path(layer)` with
PyTorch's own parameter names, so a state_dict key is `MODULE.weight`: that is how
weights are matched to layers here.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from archdsl.errors import ArchError, Span, did_you_mean
from archdsl.network import Network


def build_model(net: Network, init: str = "auto") -> nn.Module:
    """`net` lowered to PyTorch, its weights drawn by `init` (kaiming, xavier, torch; auto: kaiming)."""
    return net.to_torch(init=init)


def outputs_dict(result, names: list[str]) -> dict[str, torch.Tensor]:
    """The model's forward result as {output name: logits}, main output first."""
    if isinstance(result, torch.Tensor):
        return {names[0]: result}
    if isinstance(result, dict):
        return result
    if isinstance(result, (tuple, list)):
        return dict(zip(names, result))
    raise TypeError(f"unexpected model output {type(result).__name__}")


def layer_of_parameter(key: str) -> str:
    """'conv1.weight' -> 'conv1'; the module a state_dict entry belongs to."""
    return key.rsplit(".", 1)[0]


# ---- freezing -----------------------------------------------------------------------------------------


def freeze_up_to(model: nn.Module, net: Network, name: str, span: Span | None = None) -> list[str]:
    """Stop gradients for every layer up to and including `name`, in topological order; the frozen layers.

    `name` is a layer as `archdsl check` lists it (`bottleneck7.conv2`), a submodule of the PyTorch
    module (`layer3`, `layer3.1.conv2`: up to the last layer inside it), or a block instance."""
    from archdsl.naming import layers_under

    order = [layer.name for layer in net.layers]
    under = [name] if name in order else layers_under(net, name)
    target = under[-1] if under else None
    if target is None:
        modules = sorted({p.rsplit(".", 1)[0] for p in net.module_paths.values() if "." in p})
        raise ArchError(f"--freeze: the network has no layer or module '{name}'{did_you_mean(name, order + modules)} "
                        "(`archdsl check SPEC` lists the layer names; modules such as "
                        f"{', '.join(modules[:4]) or 'none'} are the PyTorch module's)", span)
    frozen = {net.module_path(n) for n in order[: order.index(target) + 1]}
    for key, param in model.named_parameters():
        if layer_of_parameter(key) in frozen:
            param.requires_grad_(False)
    return [n for n in order[: order.index(target) + 1]]


def frozen_modules(model: nn.Module) -> list[nn.Module]:
    """Batch norms with every parameter frozen: they are kept in eval mode so their statistics stay too."""
    result = []
    for module in model.modules():
        params = list(module.parameters(recurse=False))
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and params and not any(p.requires_grad for p in params):
            result.append(module)
    return result


# ---- loading weights ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transfer:
    loaded: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]  # (key, why)

    def describe(self) -> str:
        lines = [f"loaded {len(self.loaded)} tensors"]
        if self.skipped:
            layers: dict[str, str] = {}
            for key, why in self.skipped:
                layers.setdefault(layer_of_parameter(key), why)
            lines.append(f"skipped {len(self.skipped)} ({', '.join(f'{k}: {w}' for k, w in layers.items())})")
        return "; ".join(lines)


def load_matching(model: nn.Module, state: dict[str, torch.Tensor]) -> Transfer:
    """Copy the layers of `state` whose tensors all match the model's by name and shape; say what was skipped.

    A layer is taken whole or not at all: an fc whose weight does not fit keeps its fresh bias too.
    """
    own = model.state_dict()
    problems: dict[str, str] = {}
    for key, value in own.items():
        if key not in state:
            problems.setdefault(layer_of_parameter(key), "not in the checkpoint")
        elif tuple(state[key].shape) != tuple(value.shape):
            problems.setdefault(layer_of_parameter(key),
                                f"{key.rsplit('.', 1)[-1]} {_shape(state[key])} in the checkpoint, {_shape(value)} here")
    update = {k: state[k] for k in own if layer_of_parameter(k) not in problems}
    model.load_state_dict(update, strict=False)
    skipped = tuple((k, problems[layer_of_parameter(k)]) for k in own if layer_of_parameter(k) in problems)
    return Transfer(tuple(update), skipped)


def check_fits(model: nn.Module, state: dict[str, torch.Tensor], checkpoint: str, spec: str) -> None:
    """Raise, naming the layers that differ, unless `state` holds exactly the model's tensors."""
    own = model.state_dict()
    differ = [
        f"{layer_of_parameter(k)} ({k.rsplit('.', 1)[-1]} {_shape(state[k])} in the checkpoint, {_shape(v)} in the spec)"
        for k, v in own.items() if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    missing = sorted({layer_of_parameter(k) for k in own if k not in state})
    extra = sorted({layer_of_parameter(k) for k in state if k not in own})
    if not (differ or missing or extra):
        return
    parts = []
    if differ:
        parts.append("layers of another size: " + ", ".join(differ))
    if missing:
        parts.append("layers the checkpoint lacks: " + ", ".join(missing))
    if extra:
        parts.append("layers the spec lacks: " + ", ".join(extra))
    raise ArchError(f"checkpoint '{checkpoint}' was not trained from spec '{spec}': {'; '.join(parts)}. "
                    "Use the spec it was trained with, or --init-from to take only the matching layers")


def _shape(tensor: torch.Tensor) -> str:
    return "x".join(map(str, tensor.shape)) or "scalar"

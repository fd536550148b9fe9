"""Layers by the names `archdsl check` prints, and hooks that record what they compute.

A layer's submodule is found only through `archdsl.backends.torch.layer_module`
(which asks `net.module_path`), so the hooks keep working whatever shape the
generated module's hierarchy takes. A layer written inline in `forward` (add,
concat, flatten, SE's scale) has no submodule: its value is then read as the input
of a consumer that takes it alone (a residual's add is the input of the ReLU after
it), or, for an output, from the model's result.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from archdsl.errors import ArchError, did_you_mean
from archdsl.ir import Layer
from archdsl.network import Network
from archdsl.train import model as model_mod

from .trained import Trained


def layer_list(net: Network) -> str:
    return ", ".join(layer.name for layer in net.layers)


def find_layer(trained: Trained, name: str, option: str = "--layer") -> Layer:
    """The layer called `name` in the spec, or an error listing the layers `archdsl check` prints."""
    net = trained.net
    if name not in net.graph:
        names = [layer.name for layer in net.layers]
        raise ArchError(f"{option}: the network '{net.name}' has no layer '{name}'{did_you_mean(name, names)} "
                        f"(its layers, as `archdsl check` lists them: {layer_list(net)}). Received: {option} {name}")
    if name not in trained.model_net.graph:  # the trailing softmax, which training leaves out
        layer = net.layer(name)
        raise ArchError(f"{option}: layer '{name}' ({layer.token}) is the trailing softmax, which the trained model "
                        f"leaves out (it outputs logits); inspect '{layer.inputs[0]}' instead", layer.span)
    return trained.model_net.layer(name)


def spatial_layer(trained: Trained, name: str, what: str, option: str = "--layer") -> Layer:
    """A layer with a channels × height × width output, or an error saying this one has none."""
    layer = find_layer(trained, name, option)
    if len(layer.shape) != 3:
        shape = "x".join(map(str, layer.shape))
        candidates = [l.name for l in trained.model_net.layers if len(l.shape) == 3 and l.inputs]
        hint = f"; the last layer with one is '{candidates[-1]}'" if candidates else ""
        raise ArchError(f"{option} {name}: layer '{name}' ({layer.token}) outputs {shape}, a vector with no "
                        f"spatial map, so it has no {what}; choose a layer with a channels x height x width "
                        f"output{hint}. Received: shape {shape}", layer.span)
    return layer


@dataclass(frozen=True)
class Tap:
    """Where a layer's value is read: a submodule's output, a consumer's input, or a model output."""

    layer: str
    module: torch.nn.Module | None
    reads_input: bool  # the module is a consumer; its input is the layer's value
    output: str | None = None  # the model output that is the layer's value, when no module is


def tap(trained: Trained, name: str) -> Tap:
    from archdsl.backends.torch import layer_module

    model, net = trained.model, trained.model_net
    module = layer_module(model, net, name)
    if module is not None:
        return Tap(name, module, False)
    for consumer in net.graph.successors(name):
        if net.layer(consumer).inputs == (name,):
            consumer_module = layer_module(model, net, consumer)
            if consumer_module is not None:
                return Tap(name, consumer_module, True)
    outputs = {node: output for output, node in net.output_nodes.items()}
    if name in outputs:
        return Tap(name, None, False, outputs[name])
    layer = net.layer(name)
    raise ArchError(
        f"layer '{name}' ({layer.token}) is computed inline in the generated forward, so there is no submodule to "
        f"hook, and no layer with one takes it as its only input; inspect one of its inputs "
        f"({', '.join(layer.inputs)}) or its consumers ({', '.join(net.graph.successors(name))}) instead",
        layer.span)


def layer_values(trained: Trained, names: list[str], images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each layer's value, (batch, *layer shape), for one batch of normalised images (no gradients).

    Values are copied as they are made: a later in-place ReLU overwrites its input's buffer.
    """
    taps = [tap(trained, name) for name in names]
    shapes = {name: trained.model_net.layer(name).shape for name in names}
    record: dict[str, torch.Tensor] = {}

    def keeper(name: str):
        def keep(value: torch.Tensor) -> None:
            record[name] = value.detach().float().reshape(len(value), *shapes[name]).clone()
        return keep

    handles = []
    for t in taps:
        keep = keeper(t.layer)
        if t.module is not None and t.reads_input:
            handles.append(t.module.register_forward_pre_hook(lambda module, args, keep=keep: keep(args[0])))
        elif t.module is not None:
            handles.append(t.module.register_forward_hook(lambda module, args, out, keep=keep: keep(out)))
    try:
        with torch.no_grad():
            result = trained.model(images.to(trained.device))
    finally:
        for handle in handles:
            handle.remove()
    for t in taps:
        if t.output is not None:
            keeper(t.layer)(model_mod.outputs_dict(result, trained.output_names)[t.output])
    return record

"""What the weights look like: the first convolution's kernels as images, any layer's kernel norms.

    first_convolution(trained) -> Layer
    kernels(trained, layer=None) -> (out, in, kh, kw) array   the first convolution's by default
    kernel_norms(trained, layer) -> (out, in) array           L2 norm of each kernel slice
"""
from __future__ import annotations

import numpy as np

from archdsl.errors import ArchError
from archdsl.ir import Layer
from archdsl.ops import FC, Conv

from .layers import find_layer
from .trained import Trained


def first_convolution(trained: Trained) -> Layer:
    for layer in trained.model_net.layers:
        if isinstance(layer.op, Conv):
            return layer
    raise ArchError(f"network '{trained.net.name}' has no convolution, so it has no filters to show")


def _weight(trained: Trained, layer: Layer) -> np.ndarray:
    from archdsl.backends.torch import layer_module

    if not isinstance(layer.op, (Conv, FC)):
        raise ArchError(f"--layer {layer.name}: layer '{layer.name}' ({layer.token}) has no kernels; choose a "
                        "convolution or an fc layer. Received: " + type(layer.op).__name__, layer.span)
    module = layer_module(trained.model, trained.model_net, layer.name)
    return module.weight.detach().float().cpu().numpy()


def kernels(trained: Trained, layer: str | None = None) -> np.ndarray:
    """A convolution's kernels, (out channels, in channels per group, kh, kw); the first convolution's by default."""
    chosen = first_convolution(trained) if layer is None else find_layer(trained, layer)
    if not isinstance(chosen.op, Conv) or len(chosen.op.kernel) != 2:
        raise ArchError(f"--layer {chosen.name}: kernels are shown as images for 2-D convolutions; layer "
                        f"'{chosen.name}' ({chosen.token}) is not one", chosen.span)
    return _weight(trained, chosen)


def kernel_norms(trained: Trained, layer: str) -> np.ndarray:
    """(out, in): how strongly each output channel reads each input channel (an fc: each input feature)."""
    weight = _weight(trained, find_layer(trained, layer))
    return np.sqrt((weight.reshape(weight.shape[0], weight.shape[1], -1) ** 2).sum(-1))

"""torchvision's ImageNet classifiers written again in plain PyTorch: the oracle for archdsl's zoo.

torchvision does not install next to the CPU build of torch used here, so the tests carry their
own copies of its models, written from the papers and from torchvision/models/*.py: the same
classes, attribute names, registration order and defaults (BatchNorm eps/momentum, dropout,
initialisation), so that `state_dict()` has torchvision's keys and shapes, in torchvision's order.
(They were written from torchvision's source; no torchvision checkpoint could be loaded here to
compare, so tests/test_reference_models.py pins them to its published figures instead.)

    build(name)                 the randomly initialised model (deterministic under torch.manual_seed);
                                build(name, device="meta") builds it without memory or init cost
    param_count(model)          number of parameters (what torchvision publishes as num_params)
    weight_layout(model)        [(state_dict key, shape)] of every weight, in state_dict order
    weight_shapes(model)        Counter of those shapes: the multiset a one-to-one weight load needs
    macs(model, input_shape)    multiply-accumulates of one image, convolutions and linear layers only
    INPUT_SIZES[name]           the side of the square crop torchvision's eval transforms use
    PUBLISHED_PARAMS[name]      torchvision's published parameter count
    PUBLISHED_GFLOPS[name]      torchvision's published GFLOPS (its `_ops` metadata, a string with
                                the published precision), which count conv + linear multiply-adds
"""
from __future__ import annotations

import difflib
from collections import Counter
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from . import convnext, densenet, efficientnet, inception, mnasnet, mobilenet, regnet, resnet, shufflenet
from . import squeezenet, vgg

BUILDERS: Dict[str, Callable[..., nn.Module]] = {
    "alexnet": vgg.alexnet,
    "convnext_tiny": convnext.convnext_tiny,
    "densenet121": densenet.densenet121,
    **{name: (lambda name=name, **kwargs: efficientnet.efficientnet(name, **kwargs))
       for name in efficientnet.VARIANTS},
    "googlenet": inception.googlenet,                 # without its two auxiliary classifiers
    "inception_v3": inception.inception_v3,           # without AuxLogits (aux_logits=True adds it)
    "mnasnet1_0": mnasnet.mnasnet1_0,
    "mobilenet_v2": mobilenet.mobilenet_v2,
    "mobilenet_v3_large": mobilenet.mobilenet_v3_large,
    "mobilenet_v3_small": mobilenet.mobilenet_v3_small,
    "regnet_x_400mf": regnet.regnet_x_400mf,
    "resnet18": resnet.resnet18,
    "resnet50": resnet.resnet50,
    "resnext50_32x4d": resnet.resnext50_32x4d,
    "shufflenet_v2_x1_0": shufflenet.shufflenet_v2_x1_0,
    "squeezenet1_1": squeezenet.squeezenet1_1,
    "vgg16_bn": vgg.vgg16_bn,
    "wide_resnet50_2": resnet.wide_resnet50_2,
}
NAMES: Tuple[str, ...] = tuple(sorted(BUILDERS))

# torchvision's model cards (the `num_params` of each *_Weights enum). googlenet's and
# inception_v3's figures are for the models without auxiliary classifiers -- for inception_v3
# this is NOT torchvision's published 27,161,264, which includes AuxLogits (3,326,696 parameters;
# see INCEPTION_V3_WITH_AUX_PARAMS).
PUBLISHED_PARAMS: Dict[str, int] = {
    "alexnet": 61_100_840,
    "convnext_tiny": 28_589_128,
    "densenet121": 7_978_856,
    "efficientnet_b0": 5_288_548,
    "efficientnet_b1": 7_794_184,
    "efficientnet_b2": 9_109_994,
    "efficientnet_b3": 12_233_232,
    "efficientnet_b4": 19_341_616,
    "efficientnet_b5": 30_389_784,
    "efficientnet_b6": 43_040_704,
    "efficientnet_b7": 66_347_960,
    "googlenet": 6_624_904,
    "inception_v3": 23_834_568,
    "mnasnet1_0": 4_383_312,
    "mobilenet_v2": 3_504_872,
    "mobilenet_v3_large": 5_483_032,
    "mobilenet_v3_small": 2_542_856,
    "regnet_x_400mf": 5_495_976,
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "resnext50_32x4d": 25_028_904,
    "shufflenet_v2_x1_0": 2_278_604,
    "squeezenet1_1": 1_235_496,
    "vgg16_bn": 138_365_992,
    "wide_resnet50_2": 68_883_240,
}
INCEPTION_V3_WITH_AUX_PARAMS = 27_161_264  # torchvision's Inception_V3_Weights num_params

# torchvision's `_ops` metadata ("GFLOPS" on its model docs), which counts the multiply-adds of
# convolutions and linear layers for one image at INPUT_SIZES; kept as published, with its precision.
PUBLISHED_GFLOPS: Dict[str, str] = {
    "alexnet": "0.714",
    "convnext_tiny": "4.456",
    "densenet121": "2.834",
    "efficientnet_b0": "0.386",
    "efficientnet_b1": "0.687",
    "efficientnet_b2": "1.088",
    "efficientnet_b3": "1.827",
    "efficientnet_b4": "4.394",
    "efficientnet_b5": "10.266",
    "efficientnet_b6": "19.068",
    "efficientnet_b7": "37.746",
    "googlenet": "1.498",
    "inception_v3": "5.713",
    "mnasnet1_0": "0.314",
    "mobilenet_v2": "0.301",
    "mobilenet_v3_large": "0.217",
    "mobilenet_v3_small": "0.057",
    "regnet_x_400mf": "0.414",
    "resnet18": "1.814",
    "resnet50": "4.089",
    "resnext50_32x4d": "4.23",
    "shufflenet_v2_x1_0": "0.145",
    "squeezenet1_1": "0.349",
    "vgg16_bn": "15.47",
    "wide_resnet50_2": "11.398",
}

# The crop_size of each model's eval transforms in torchvision (EfficientNet's follow the ported
# weights: B2 is evaluated at 288, not the paper's 260).
INPUT_SIZES: Dict[str, int] = {
    **{name: 224 for name in BUILDERS},
    "inception_v3": 299,
    "efficientnet_b1": 240,
    "efficientnet_b2": 288,
    "efficientnet_b3": 300,
    "efficientnet_b4": 380,
    "efficientnet_b5": 456,
    "efficientnet_b6": 528,
    "efficientnet_b7": 600,
}


def build(name: str, *, device: Optional[torch.device | str] = None, **kwargs) -> nn.Module:
    """The reference model `name`, randomly initialised as torchvision initialises it (call
    torch.manual_seed first for a reproducible one). `device="meta"` builds only the shapes:
    instant, and enough for param_count, weight_shapes and macs. `kwargs` go to the builder
    (e.g. num_classes=10, aux_logits=True for inception_v3/googlenet)."""
    try:
        builder = BUILDERS[name]
    except KeyError:
        close = difflib.get_close_matches(name, NAMES, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"no reference model named {name!r}.{hint} Known: {', '.join(NAMES)}") from None
    if device is None:
        return builder(**kwargs)
    with torch.device(device):
        return builder(**kwargs)


def input_shape(name: str) -> Tuple[int, int, int]:
    """C×H×W of one image as torchvision evaluates `name`."""
    return (3, INPUT_SIZES[name], INPUT_SIZES[name])


def param_count(module: nn.Module) -> int:
    """Number of parameters (learnable tensors; running statistics are buffers, not counted)."""
    return sum(p.numel() for p in module.parameters())


_RUNNING_STATISTICS = ("running_mean", "running_var")


def weight_layout(module: nn.Module) -> List[Tuple[str, Tuple[int, ...]]]:
    """(key, shape) of every state_dict entry that is a parameter or a norm's running statistic
    (running_mean, running_var), in state_dict order; BatchNorm's num_batches_tracked counter is
    left out. Any other buffer is an error, so that this stays the whole of what a weight load moves."""
    parameter_keys = {name for name, _ in module.named_parameters(remove_duplicate=False)}
    layout = []
    for key, tensor in module.state_dict(keep_vars=True).items():
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            continue
        if key not in parameter_keys and leaf not in _RUNNING_STATISTICS:
            raise ValueError(f"{key}: a buffer that is neither a parameter nor a running statistic")
        layout.append((key, tuple(tensor.shape)))
    return layout


def weight_shapes(module: nn.Module) -> Counter:
    """The multiset of weight_layout's shapes: two models whose weight_shapes are equal can take
    each other's weights one to one (given a matching order)."""
    return Counter(shape for _, shape in weight_layout(module))


def macs(module: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-accumulates of one forward pass on one image of shape C×H×W, counting
    convolutions (output elements × kernel elements × in_channels/groups) and linear layers
    (output elements × in_features, so a linear layer applied at every pixel counts at every
    pixel), measured with forward hooks in eval mode (auxiliary heads that run only while training
    are not counted). Runs on the module's device: build it on "meta" for a free pass."""
    if len(input_shape) != 3:
        raise ValueError(f"input_shape is one image's C×H×W, got {tuple(input_shape)}")
    total = 0

    def count_conv(conv: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        kernel_elements = conv.weight.shape[2] * conv.weight.shape[3]
        total += output.numel() * kernel_elements * (conv.in_channels // conv.groups)

    def count_linear(linear: nn.Linear, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() * linear.in_features

    hooks = []
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(count_conv))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(count_linear))
    device = next(module.parameters()).device
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad():
            module(torch.zeros(1, *input_shape, device=device))
    finally:
        module.train(was_training)
        for hook in hooks:
            hook.remove()
    return total

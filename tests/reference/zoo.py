"""archdsl's zoo specs of these networks: which spec is pinned to which reference, and each spec at
a small input, where the backends' numerics are checked at a fraction of the cost.

    PINNED                      the specs in specs/ that are torchvision's networks, each named as
                                its reference (specs/densenet121.arch is reference "densenet121")
    SMALL_SIDES[name]           a small square input side at which the spec still checks without a
                                warning, with every block and every op still in the graph
    load_spec(name, side=None)  specs/NAME.arch, with its `input` line made 3×side×side when given
                                (or any shape: load_spec("c3d", "3x16x32x32"))
    load_text(text)             a spec written in a test, reading the zoo's libraries (`use "lib/…"`)
    settle(model)               norms' statistics and affine parameters and layer scales away from
                                their initial values, as training leaves them, so that
                                comparisons see the norms and the scaled residual branches
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, Tuple

import torch
from torch import nn

SPECS = Path(__file__).resolve().parents[2] / "specs"

# The spec → the side its backends are checked at (TVM compiles and ONNX exports of the full-size
# networks take minutes on two cores). ResNet-18/50 are checked at full size by test_tvm_backend's zoo.
SMALL_SIDES: Dict[str, int] = {
    "convnext_tiny": 32,       # stem /4, then /2 per stage: 1x1 in the last
    "densenet121": 32,         # 32 → 1x1 after the third transition
    "efficientnet_b0": 32,     # /32: 1x1 in the last two stages
    "efficientnet_b1": 32,
    "inception_v3": 75,        # the smallest input torchvision's Inception-v3 takes: 8x8 → 1x1
    "mnasnet1_0": 64,
    "mobilenet_v2": 32,
    "mobilenet_v3_large": 32,
    "mobilenet_v3_small": 32,
    "regnet_x_400mf": 64,
    "resnext50_32x4d": 64,
    "shufflenet_v2_x1_0": 32,  # 1x1 in Stage4
    "squeezenet1_1": 63,       # odd, as 223: conv1's 3x3/2 windows then cover every row
    "vgg16_bn": 32,            # 512x1x1, pooled to 512x7x7 for the fc layers
    "wide_resnet50_2": 64,
}
PINNED: Tuple[str, ...] = tuple(sorted({"resnet18", "resnet50", *SMALL_SIDES}))

_INPUT_LINE = re.compile(r"^input\s+\d+(x\d+)*\b", re.M)


def load_spec(name: str, side=None):
    """The zoo spec `name` (an archdsl.Network), at its own input, at 3×side×side, or at the shape `side`."""
    import archdsl

    path = SPECS / f"{name}.arch"
    if side is None:
        return archdsl.load(path)
    shape = side if isinstance(side, str) else f"3x{side}x{side}"
    text, count = _INPUT_LINE.subn(f"input {shape}", path.read_text())
    if count != 1:
        raise ValueError(f"{path} has {count} `input` lines; expected one to resize")
    return load_text(text)


def load_text(text: str):
    """A spec given as text, which may `use "lib/…"` as the zoo's specs do."""
    import archdsl

    here = os.getcwd()
    os.chdir(SPECS)  # a spec given as text finds its `use` files from the working folder
    try:
        return archdsl.load(text)
    finally:
        os.chdir(here)


def settle(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every norm the statistics and affine parameters of a trained one, and every layer scale
    a trained size (in place). A fresh norm is the identity, which hides a wrong eps, a norm that is
    skipped or folded badly, and a network whose outputs have faded to nothing; a fresh layer scale
    (ConvNeXt's 1e-6) hides its whole residual branch."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(n, generator=generator) * 1.5 + 0.05)
            if isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)):
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.2)
        for name, parameter in model.named_parameters():
            if name.rsplit(".", 1)[-1] == "layer_scale":  # torchvision's name, and archdsl's LayerScale's
                parameter.copy_(torch.rand(parameter.shape, generator=generator) * 0.5 + 0.25)
    return model

"""The modules torch.nn lacks, as the source the generated file defines them with.

torchvision keeps such small classes in its model files (LayerNorm2d in convnext.py,
StochasticDepth in torchvision.ops); archdsl writes each into the generated file the
first time a layer needs it, so that the file imports nothing but torch. Each is
written in that file's style: `import torch` and `from torch import nn` are in scope.
"""
from __future__ import annotations

from .ctor import LocalModule

LAYER_SCALE = LocalModule("LayerScale", '''class LayerScale(nn.Module):
    """x · γ per channel, γ learned and starting small: ConvNeXt's layer scale (Touvron et al., 2021)."""

    def __init__(self, channels, init=1e-6, dims=2):
        super().__init__()
        # (C, 1, 1) for C×H×W maps, as torchvision's CNBlock stores it; (C,) for vectors
        self.layer_scale = nn.Parameter(torch.full((channels,) + (1,) * dims, float(init)))

    def forward(self, x):
        return x * self.layer_scale
''')

CHANNEL_LAYER_NORM = LocalModule("ChannelLayerNorm", '''class ChannelLayerNorm(nn.LayerNorm):
    """Layer norm over the channels at each position of an N×C×… map: ConvNeXt's LayerNorm2d."""

    def forward(self, x):
        x = x.movedim(1, -1)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.movedim(x.dim() - 1, 1)  # not -1: TorchScript's ONNX export would write it into the perm
''')

STOCHASTIC_DEPTH = LocalModule("StochasticDepth", '''class StochasticDepth(nn.Module):
    """Drops a residual branch for a random subset of the batch while training, scaling the kept
    ones by 1/(1 − p); the identity at inference (Huang et al., 2016; torchvision.ops.StochasticDepth)."""

    def __init__(self, p, mode="row"):
        super().__init__()
        self.p = p
        self.mode = mode  # "row": one draw per sample; "batch": one for the whole batch

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.dim() - 1) if self.mode == "row" else [1] * x.dim()
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise

    def extra_repr(self):
        return f"p={self.p}, mode={self.mode!r}"
''')

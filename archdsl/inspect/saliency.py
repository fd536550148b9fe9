"""Which pixels matter for the predicted class: occlusion (Zeiler & Fergus) and gradient saliency (Simonyan et al.).

    occlusion(trained, image, patch=None, stride=None, target=None) -> Saliency
    gradient_saliency(trained, image, target=None) -> Saliency
    default_occlusion(net) -> ((ph, pw), (sh, sw))

Occlusion slides a grey square over the image and maps how much the class's
probability drops; "grey" is the data set's mean pixel (0 once normalised), so the
square carries no information. Each pixel's value is the mean drop of the windows
that cover it. Its default size is a receptive field of the network's own: the
largest field that is at most a quarter of the input, i.e. what a mid-level unit
sees (LeNet-5 on 32x32: 6, S2's field); the stride is half the size.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from archdsl.errors import ArchError
from archdsl.network import Network

from .trained import Trained

Size = int | tuple[int, int]


@dataclass(frozen=True, eq=False)
class Saliency:
    map: np.ndarray  # (H, W), the image's size; larger means more important
    target: int  # the class explained: the predicted one unless asked otherwise
    probability: float  # the network's probability of `target` on the whole image


def default_occlusion(net: Network) -> tuple[tuple[int, int], tuple[int, int]]:
    height, width = net.input_shape[1:]
    fields = [layer.receptive_field for layer in net.layers
              if len(layer.shape) == 3 and layer.inputs and layer.receptive_field[0] * 4 <= height
              and layer.receptive_field[1] * 4 <= width]
    size = max(fields, key=lambda f: f[0] * f[1]) if fields else (max(1, height // 4), max(1, width // 4))
    return tuple(size), (max(1, size[0] // 2), max(1, size[1] // 2))


def occlusion_window(net: Network, patch: Size | None = None,
                     stride: Size | None = None) -> tuple[tuple[int, int], tuple[int, int]]:
    """(patch, stride) as (height, width) pairs: the ones given, checked, else `default_occlusion`'s."""
    limit = tuple(net.input_shape[1:])
    default_patch, default_stride = default_occlusion(net)
    return (_pair(patch if patch is not None else default_patch, "--patch", limit),
            _pair(stride if stride is not None else default_stride, "--stride", limit))


def _pair(value: Size, option: str, limit: tuple[int, int]) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or any(int(v) < 1 for v in pair) or any(int(v) > m for v, m in zip(pair, limit)):
        raise ArchError(f"{option} expects a size from 1 to the input's {limit[0]}x{limit[1]}, got {value}")
    return int(pair[0]), int(pair[1])


def _starts(size: int, patch: int, stride: int) -> list[int]:
    """Window offsets along one side, the last flush with the edge so that every pixel is covered."""
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


def _target(trained: Trained, image: torch.Tensor, target: int | None) -> tuple[int, float]:
    with torch.no_grad():
        probabilities = trained.logits(image[None]).softmax(1)[0]
    if target is None:
        target = int(probabilities.argmax())
    elif not 0 <= target < len(probabilities):
        raise ArchError(f"--target {target}: the network has classes 0 to {len(probabilities) - 1}")
    return target, float(probabilities[target])


def occlusion(trained: Trained, image: torch.Tensor, patch: Size | None = None, stride: Size | None = None,
              target: int | None = None, batch_size: int = 256) -> Saliency:
    """The drop in `target`'s probability when a grey patch hides each part of `image` (normalised (C, H, W))."""
    height, width = image.shape[1:]
    patch, stride = occlusion_window(trained.net, patch, stride)
    target, base = _target(trained, image, target)
    windows = [(top, left) for top in _starts(height, patch[0], stride[0]) for left in _starts(width, patch[1], stride[1])]
    drops = []
    with torch.no_grad():
        for begin in range(0, len(windows), batch_size):
            chunk = windows[begin:begin + batch_size]
            hidden = image.expand(len(chunk), *image.shape).clone()
            for n, (top, left) in enumerate(chunk):
                hidden[n, :, top:top + patch[0], left:left + patch[1]] = 0  # the mean pixel, normalised
            drops.append(base - trained.logits(hidden).softmax(1)[:, target].cpu())
    drop = torch.cat(drops)
    total, cover = torch.zeros(height, width), torch.zeros(height, width)
    for value, (top, left) in zip(drop.tolist(), windows):
        total[top:top + patch[0], left:left + patch[1]] += value
        cover[top:top + patch[0], left:left + patch[1]] += 1
    return Saliency((total / cover).numpy(), target, base)


def gradient_saliency(trained: Trained, image: torch.Tensor, target: int | None = None) -> Saliency:
    """|∂ score / ∂ pixel|, the largest over colour channels: how fast the class's score moves with each pixel."""
    target, base = _target(trained, image, target)
    pixels = image[None].to(trained.device).requires_grad_(True)
    score = trained.logits(pixels)[0, target]
    (gradient,) = torch.autograd.grad(score, pixels)
    return Saliency(gradient[0].abs().amax(0).cpu().numpy(), target, base)


def mass_share(saliency: np.ndarray, mask: np.ndarray) -> float:
    """The share of the (positive) saliency mass that falls on `mask`'s pixels."""
    positive = np.clip(saliency, 0, None)
    total = positive.sum()
    return float(positive[mask].sum() / total) if total > 0 else 0.0

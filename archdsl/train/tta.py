"""Test-time augmentation: several views of each image, their class probabilities averaged.

    10crop   AlexNet's test: the four corners and the centre of an image 256/224
             times the input size, and their mirrors
    flip     the image and its mirror

`load_size(kind, input_shape)` is the size to read the images at, `views(kind,
images, size)` cuts a batch into its views; `evaluate_split` averages the
softmax over them.
"""
from __future__ import annotations

import torch

KINDS = ("none", "flip", "10crop")
TEN_CROP_SCALE = 256 / 224  # AlexNet: 224x224 crops of images resized to 256


def load_size(kind: str, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """(C, H, W) to read the data at: larger than the input for 10-crop, else the input."""
    if kind != "10crop":
        return tuple(input_shape)
    channels, height, width = input_shape
    return channels, round(height * TEN_CROP_SCALE), round(width * TEN_CROP_SCALE)


def views(kind: str, images: torch.Tensor, size: tuple[int, int]) -> list[torch.Tensor]:
    """The batch's views of size `size` (H, W)."""
    if kind == "none":
        return [images]
    if kind == "flip":
        return [images, images.flip(-1)]
    if kind != "10crop":
        raise ValueError(f"unknown test-time augmentation {kind!r}; expected one of {', '.join(KINDS)}")
    height, width = size
    full_h, full_w = images.shape[-2:]
    corners = [(0, 0), (0, full_w - width), (full_h - height, 0), (full_h - height, full_w - width),
               ((full_h - height) // 2, (full_w - width) // 2)]
    crops = [images[..., top : top + height, left : left + width] for top, left in corners]
    return crops + [crop.flip(-1) for crop in crops]

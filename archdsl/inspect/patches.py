"""Maximally activating patches: for a channel of a layer, the data set's parts that excite it most.

    top_patches(trained, layer, channels, k=8, split="test") -> {channel: [Patch, …]}   strongest first
    patch_pixels(trained, patches, split) -> [(C, rf_h, rf_w) array, …]

Each image gives at most one patch per channel (its strongest position), so the k
patches come from k different images. A patch is the receptive field of that
position — which the IR computes (`Layer.receptive_field`, `jump`, `field_start`):
the only pixels that position can depend on. Parts of the field that lie in the
padding are shown as the data set's mean, which is what zero padding of the
normalised input is.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from archdsl.errors import ArchError
from archdsl.ir import Layer

from .layers import layer_values, spatial_layer
from .trained import Trained


@dataclass(frozen=True)
class Patch:
    image: int  # index in the split
    label: int
    position: tuple[int, int]  # (row, column) in the layer's map
    box: tuple[int, int, int, int]  # (top, left, bottom, right) in input pixels, end exclusive; may reach past the edges
    activation: float


def field_box(layer: Layer, row: int, col: int) -> tuple[int, int, int, int]:
    """The input pixels that position (row, col) of `layer` sees."""
    (fh, fw), (jh, jw), (sh, sw) = layer.receptive_field, layer.jump, layer.field_start
    top, left = round(sh + row * jh), round(sw + col * jw)
    return top, left, top + fh, left + fw


def top_patches(trained: Trained, layer: str, channels: list[int], k: int = 8,
                split: str = "test") -> dict[int, list[Patch]]:
    chosen = spatial_layer(trained, layer, "patches")
    count = chosen.shape[0]
    bad = [c for c in channels if not 0 <= c < count]
    if bad:
        raise ArchError(f"--channel {bad[0]}: layer '{layer}' has channels 0 to {count - 1}; choose among them",
                        chosen.span)
    if k < 1:
        raise ArchError(f"--top-k expects a number >= 1, got {k}")
    width = chosen.shape[2]
    pick = torch.tensor(channels)
    best = torch.full((len(channels), 0), float("-inf"))
    where = torch.zeros((len(channels), 0), dtype=torch.long)  # image index * positions + position
    labels_seen: list[torch.Tensor] = []
    start = 0
    for images, labels in trained.batches(split):
        maps = layer_values(trained, [layer], images)[layer].cpu()[:, pick].flatten(2)  # (B, channels, positions)
        strongest, position = maps.max(2)
        image_index = torch.arange(start, start + len(labels))[:, None]
        best = torch.cat([best, strongest.T], 1)
        where = torch.cat([where, (image_index * maps.shape[2] + position).T], 1)
        keep = best.topk(min(k, best.shape[1]), dim=1)
        best, where = keep.values, where.gather(1, keep.indices)
        labels_seen.append(labels.cpu())
        start += len(labels)
    if start == 0:
        raise ArchError(f"the {split} split is empty; choose another --split")
    all_labels = torch.cat(labels_seen)
    positions = chosen.shape[1] * width
    result = {}
    for row, channel in enumerate(channels):
        patches = []
        for value, code in zip(best[row].tolist(), where[row].tolist()):
            image, flat = divmod(code, positions)
            y, x = divmod(flat, width)
            patches.append(Patch(image, int(all_labels[image]), (y, x), field_box(chosen, y, x), value))
        result[channel] = patches
    return result


def patch_pixels(trained: Trained, patches: list[Patch], split: str = "test") -> list[np.ndarray]:
    """Each patch's field cut out of its image on the [0, 1] scale, (C, field_h, field_w)."""
    if not patches:
        return []
    images, _ = trained.images_at(split, [p.image for p in patches])
    pixels = trained.pixels(images)
    mean = torch.tensor(trained.data.info.mean, dtype=pixels.dtype).view(-1, 1, 1)
    crops = []
    for patch, picture in zip(patches, pixels):
        top, left, bottom, right = patch.box
        channels, height, width = picture.shape
        crop = mean.expand(channels, bottom - top, right - left).clone()
        inside = (slice(max(top, 0), min(bottom, height)), slice(max(left, 0), min(right, width)))
        crop[:, inside[0].start - top:inside[0].stop - top, inside[1].start - left:inside[1].stop - left] = \
            picture[:, inside[0], inside[1]]
        crops.append(crop.numpy())
    return crops

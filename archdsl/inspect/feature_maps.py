"""What a layer computes on one image: its feature maps.

    feature_maps(trained, layer, image) -> (channels, height, width) array
"""
from __future__ import annotations

import numpy as np
import torch

from .layers import layer_values, spatial_layer
from .trained import Trained


def feature_maps(trained: Trained, layer: str, image: torch.Tensor) -> np.ndarray:
    """`layer`'s output for one normalised (C, H, W) image; a layer without a spatial map is an error."""
    spatial_layer(trained, layer, "feature maps")
    return layer_values(trained, [layer], image[None])[layer][0].cpu().numpy()

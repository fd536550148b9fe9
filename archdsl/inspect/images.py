"""The image a question is asked about: an index into a split, or an image file.

    pick_image(trained, image, split) -> Picked   normalised (C, H, W), its label if known, a caption
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from archdsl.errors import ArchError

from .trained import Trained

ImageRef = int | str | Path


@dataclass(frozen=True, eq=False)
class Picked:
    image: torch.Tensor  # normalised (C, H, W), as the network reads it
    label: int | None
    caption: str


def pick_image(trained: Trained, image: ImageRef, split: str = "test") -> Picked:
    if isinstance(image, (int, np.integer)) or (isinstance(image, str) and image.isdigit()):
        index = int(image)
        images, labels = trained.images_at(split, [index])
        label = int(labels[0])
        return Picked(images[0], label, f"{split} image {index} (class {trained.class_names[label]})")
    path = Path(image)
    return Picked(trained.normalize(read_image_file(path, trained.net.input_shape)), None, path.name)


def read_image_file(path: Path, shape: tuple[int, ...]) -> torch.Tensor:
    """An image file as (C, H, W) pixels in [0, 1] of the spec's input shape (grey or colour, resized)."""
    if not path.is_file():
        raise ArchError(f"--image {path}: no such file; give an image file or the index of an image in the split")
    from PIL import Image, UnidentifiedImageError

    channels, height, width = shape
    try:
        with Image.open(path) as opened:
            picture = opened.convert("L" if channels == 1 else "RGB")
            picture = picture.resize((width, height), Image.Resampling.BILINEAR)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise ArchError(f"--image {path}: cannot read it as an image ({type(exc).__name__}: {exc}); "
                        "give a PNG or JPEG file") from None
    pixels = np.asarray(picture, dtype=np.float32) / 255
    if pixels.ndim == 2:
        pixels = pixels[None]
    else:
        pixels = pixels.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(pixels))

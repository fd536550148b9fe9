"""Arrays → PNG pictures: grids of small images, heat maps, a scatter plot.

Pixels are drawn with Pillow (nearest-neighbour enlargement, so a 5x5 kernel stays
25 crisp squares); labelled charts (kernel norms, t-SNE) with matplotlib's Agg
backend. Every writer returns the path it wrote.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from archdsl import files

# between tiles: a dark blue that no grey image has, so it is never mistaken for the grey (the
# data set's mean) that fills the part of a patch lying in the padding
_GAP = (0.12, 0.2, 0.4)
_TILE = 48  # pixels a tile is enlarged to (at least), so that 5x5 kernels are visible


def stretch(values: np.ndarray, symmetric: bool = False) -> np.ndarray:
    """`values` mapped to [0, 1]: min-max, or around zero (0 → 0.5) when `symmetric`."""
    values = np.asarray(values, dtype=np.float32)
    if symmetric:
        top = float(np.abs(values).max())
        return values * (0.5 / top) + 0.5 if top > 0 else np.full_like(values, 0.5)
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def colorize(values: np.ndarray, cmap: str = "viridis") -> np.ndarray:
    """(H, W) values in [0, 1] → (H, W, 3) RGB through a matplotlib colour map."""
    from matplotlib import colormaps

    return colormaps[cmap](np.clip(values, 0, 1))[..., :3].astype(np.float32)


def as_rgb(image: np.ndarray) -> np.ndarray:
    """(C, H, W) with C = 1 or 3, or (H, W), or (H, W, 3) → (H, W, 3)."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, -1)
    if image.shape[-1] == 3 and image.shape[0] != 3:
        return image
    if image.shape[0] == 1:
        return np.repeat(image[0][..., None], 3, -1)
    if image.shape[0] == 3:
        return image.transpose(1, 2, 0)
    raise ValueError(f"cannot show an image of shape {image.shape}")


def grid(tiles: Sequence[np.ndarray], columns: int) -> np.ndarray:
    """Equal-sized RGB tiles (H, W, 3) in rows of `columns`, a one-pixel gap around each."""
    tiles = [as_rgb(t) for t in tiles]
    height, width = tiles[0].shape[:2]
    columns = max(1, min(columns, len(tiles)))
    rows = -(-len(tiles) // columns)
    canvas = np.empty((rows * (height + 1) + 1, columns * (width + 1) + 1, 3), dtype=np.float32)
    canvas[:] = _GAP
    for n, tile in enumerate(tiles):
        r, c = divmod(n, columns)
        canvas[1 + r * (height + 1):(r + 1) * (height + 1), 1 + c * (width + 1):(c + 1) * (width + 1)] = tile
    return canvas


def rows_of(rows: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
    """Rows of equal-sized tiles, each row as long as the longest (short rows padded with gap)."""
    columns = max(len(row) for row in rows)
    blank = np.empty_like(as_rgb(rows[0][0]))
    blank[:] = _GAP
    return grid([tile for row in rows for tile in (*row, *[blank] * (columns - len(row)))], columns)


def save_png(image: np.ndarray, path: Path, tile: int | None = None) -> Path:
    """An RGB (H, W, 3) array in [0, 1] as a PNG, enlarged by a whole factor so that a `tile`-pixel tile is >= 48 px."""
    from PIL import Image

    pixels = (np.clip(as_rgb(image), 0, 1) * 255).round().astype(np.uint8)
    factor = max(1, -(-_TILE // tile)) if tile else 1
    picture = Image.fromarray(pixels)
    if factor > 1:
        picture = picture.resize((picture.width * factor, picture.height * factor), Image.Resampling.NEAREST)
    with files.atomic_write(path) as file:
        picture.save(file, format="PNG")
    return path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def scatter(points: np.ndarray, labels: np.ndarray, names: Sequence[str], path: Path, title: str) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 6))
    classes = np.unique(labels)
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for n, label in enumerate(classes):
        chosen = labels == label
        ax.scatter(points[chosen, 0], points[chosen, 1], s=8, color=cmap(n % cmap.N), label=str(names[label]))
    if len(classes) <= 20:
        ax.legend(markerscale=2, fontsize=8, loc="best", title="class")
    ax.set(title=title, xticks=[], yticks=[])
    fig.tight_layout()
    files.save_figure(fig, path, dpi=100)
    return path

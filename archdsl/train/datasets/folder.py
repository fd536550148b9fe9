"""An image folder: one subfolder per class, or train/ val/ test/ each holding those.

Images are read with Pillow. A folder with any colour image is read as RGB (grey
images replicated), else as greyscale, so that every image has the same channels.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from archdsl.errors import ArchError
from archdsl.train.datasets.raw import RawDataset, RawSplit

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
_SPLITS = ("train", "val", "test")
_GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})


def read_folder(root: Path) -> RawDataset:
    split_dirs = _split_dirs(root)
    class_names = _class_names(split_dirs["train"])
    files = {split: _list_images(folder, class_names) for split, folder in split_dirs.items()}
    for split, listing in files.items():
        if not listing:
            raise ArchError(
                f"{split_dirs[split]}: expected images ({', '.join(sorted(IMAGE_SUFFIXES))}) in one subfolder "
                "per class, got none; put each class's images in their own subfolder"
                + ("" if split == "train" else f", or remove {split}/ to carve {split} out of train/")
            )
    Image = _pillow()
    headers = {path: _header(Image, path) for listing in files.values() for path, _ in listing}
    channels = 1 if all(image_mode in _GREY_MODES for image_mode, _ in headers.values()) else 3
    mode = "L" if channels == 1 else "RGB"
    sizes = {size for _, size in headers.values()}
    native_size = next(iter(sizes)) if len(sizes) == 1 else None
    splits = {split: _decode(Image, listing, mode, native_size is not None) for split, listing in files.items()}
    return RawDataset(
        "folder", class_names, channels, native_size, splits["train"], splits.get("val"), splits.get("test")
    )


def _split_dirs(root: Path) -> dict[str, Path]:
    """{'train': ..., maybe 'val', 'test'}: a train/ holding class folders means a pre-split layout."""
    train = root / "train"
    if train.is_dir() and any(child.is_dir() for child in train.iterdir()):
        return {split: root / split for split in _SPLITS if (root / split).is_dir()}
    return {"train": root}


def _class_names(folder: Path) -> tuple[str, ...]:
    names = tuple(sorted(child.name for child in folder.iterdir() if child.is_dir() and not child.name.startswith(".")))
    if not names:
        raise ArchError(
            f"{folder}: expected one subfolder per class, got no subfolders;"
            " put each class's images in its own subfolder"
        )
    return names


def _list_images(folder: Path, class_names: tuple[str, ...]) -> list[tuple[Path, int]]:
    extra = sorted(
        child.name for child in folder.iterdir()
        if child.is_dir() and not child.name.startswith(".") and child.name not in class_names
    )
    if extra:
        raise ArchError(
            f"{folder}: expected only the training classes {list(class_names)}, got also {extra}; "
            "add those classes to train/ or remove them"
        )
    return [
        (path, label)
        for label, name in enumerate(class_names) if (folder / name).is_dir()
        for path in sorted((folder / name).iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
    ]


def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError as error:
        raise ArchError(
            "reading an image folder needs Pillow, which is not installed;"
            " run: pip install pillow"
        ) from error
    return Image


def _header(Image: Any, path: Path) -> tuple[str, tuple[int, int]]:
    """(mode, (height, width)) without decoding the pixels."""
    try:
        with Image.open(path) as image:
            return image.mode, (image.height, image.width)
    except (OSError, ValueError, SyntaxError) as error:
        raise ArchError(
            f"{path}: expected a PNG or JPEG image, but it cannot be read ({error});"
            " replace or delete it"
        ) from error


def _decode(Image: Any, listing: list[tuple[Path, int]], mode: str, same_size: bool) -> RawSplit:
    arrays = tuple(_pixels(Image, path, mode) for path, _ in listing)
    labels = np.array([label for _, label in listing], dtype=np.int64)
    return RawSplit(np.stack(arrays) if same_size else arrays, labels)


def _pixels(Image: Any, path: Path, mode: str) -> np.ndarray:
    """(C, H, W) uint8; Pillow's L conversion is the ITU-R 601 luminance used elsewhere."""
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert(mode))
    except (OSError, ValueError, SyntaxError) as error:
        raise ArchError(
            f"{path}: expected a PNG or JPEG image, but it cannot be decoded ({error});"
            " replace or delete it"
        ) from error
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)

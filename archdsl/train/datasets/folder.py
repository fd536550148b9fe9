"""An image folder: one subfolder per class, or train/ val/ test/ each holding those.

Image folders are never decoded up front: `read_folder` lists the files and
reads each one's header (format, size; no pixels), so that a file that cannot
be trained on is reported by name before the first batch, and the pixels are
decoded batch by batch in DataLoader workers (see `archdsl.train.datasets.stream`).

Only the formats the docs promise are read — PNG and JPEG, by content, whatever
the name says — and only regular files (a FIFO named `x.png` would block a
reader forever). An image larger than Pillow's decompression-bomb limit, or
with no pixels, is refused. With `skip_bad` those files are left out and listed
instead of stopping the run.
"""
from __future__ import annotations

import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from archdsl.errors import ArchError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
FORMATS = ("PNG", "JPEG")  # Pillow's names of the formats read
_SPLITS = ("train", "val", "test")


class BadImage(ArchError):
    """A file in an image folder that cannot be trained on; the message names it."""

    def __init__(self, path: Path | str, reason: str):
        super().__init__(f"{path}: {reason}; replace or delete it, or pass --skip-bad-images to leave such files out")
        self.path, self.reason = str(path), reason


@dataclass(frozen=True, eq=False)
class FolderSplit:
    """The files of one split: paths (as strings) and integer labels, no pixels."""

    paths: tuple[str, ...]
    labels: np.ndarray  # int64 (N,)

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, indices: np.ndarray) -> "FolderSplit":
        return FolderSplit(tuple(self.paths[i] for i in indices), self.labels[indices])


@dataclass(frozen=True, eq=False)
class ImageFolder:
    """A listed image folder. Missing `val`/`test` splits are carved out of `pool`."""

    root: Path
    class_names: tuple[str, ...]
    channels: int  # 3 if any image is in colour, else 1 (as far as the headers tell)
    native_size: tuple[int, int] | None  # None: the images differ in size
    pool: FolderSplit
    val: FolderSplit | None
    test: FolderSplit | None
    skipped: tuple[BadImage, ...] = ()  # with skip_bad: the files left out
    ignored: tuple[str, ...] = ()  # files whose name is not .png/.jpg/.jpeg
    size_example: tuple[tuple[str, tuple[int, int]], ...] = ()  # two files of differing sizes, when they differ

    kind = "folder"


def read_folder(root: Path, skip_bad: bool = False) -> ImageFolder:
    split_dirs = _split_dirs(root)
    class_names = _class_names(split_dirs["train"])
    Image = pillow()
    skipped: list[BadImage] = []
    ignored: list[str] = []
    sizes: dict[tuple[int, int], str] = {}
    colour = False
    splits: dict[str, FolderSplit] = {}
    for split, folder in split_dirs.items():
        listing = _list_images(folder, class_names, ignored)
        _check_classes(folder, class_names, listing, split)
        paths, labels = [], []
        for path, label in listing:
            try:
                mode, size = read_header(Image, path)
            except BadImage as bad:
                if not skip_bad:
                    raise
                skipped.append(bad)
                continue
            colour = colour or mode not in _GREY_MODES
            if len(sizes) < 2:
                sizes.setdefault(size, str(path))
            paths.append(str(path))
            labels.append(label)
        if not paths:
            raise ArchError(f"{folder}: every image was left out as unreadable ({len(skipped)} files); "
                            "nothing to train on")
        if split == "train" and len(set(labels)) < len(class_names):
            lost = [name for label, name in enumerate(class_names) if label not in set(labels)]
            raise ArchError(f"{folder}: every image of class {', '.join(repr(n) for n in lost)} was left out as "
                            "unreadable; every class needs training images")
        splits[split] = FolderSplit(tuple(paths), np.array(labels, dtype=np.int64))
    example = tuple((path, size) for size, path in sizes.items()) if len(sizes) > 1 else ()
    return ImageFolder(root, class_names, 3 if colour else 1, next(iter(sizes)) if len(sizes) == 1 else None,
                       splits["train"], splits.get("val"), splits.get("test"), tuple(skipped), tuple(ignored),
                       example)


_GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})


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


def _list_images(folder: Path, class_names: tuple[str, ...], ignored: list[str]) -> list[tuple[Path, int]]:
    extra = sorted(
        child.name for child in folder.iterdir()
        if child.is_dir() and not child.name.startswith(".") and child.name not in class_names
    )
    if extra:
        raise ArchError(
            f"{folder}: expected only the training classes {list(class_names)}, got also {extra}; "
            "add those classes to train/ or remove them"
        )
    listing = []
    for label, name in enumerate(class_names):
        if not (folder / name).is_dir():
            continue
        for path in sorted((folder / name).iterdir()):
            if path.name.startswith("."):
                continue
            if path.suffix.lower() in IMAGE_SUFFIXES:
                listing.append((path, label))
            elif not path.is_dir():
                ignored.append(str(path))
    return listing


def _check_classes(folder: Path, class_names: tuple[str, ...], listing: list, split: str) -> None:
    if not listing:
        raise ArchError(
            f"{folder}: expected images ({', '.join(sorted(IMAGE_SUFFIXES))}) in one subfolder per class, got "
            "none; put each class's images in their own subfolder"
            + ("" if split == "train" else f", or remove {split}/ to carve {split} out of train/")
        )
    if split != "train":  # a small validation set may lack a class
        return
    present = {label for _, label in listing}
    empty = [name for label, name in enumerate(class_names) if label not in present]
    if empty:
        raise ArchError(
            f"{folder}: class folder{'s' if len(empty) > 1 else ''} {', '.join(repr(n) for n in empty)} "
            f"hold{'' if len(empty) > 1 else 's'} no images ({', '.join(sorted(IMAGE_SUFFIXES))}); add images "
            "or remove the folder (every class needs training images)"
        )


def pillow() -> Any:
    try:
        from PIL import Image
    except ImportError as error:
        raise ArchError(
            "reading an image folder needs Pillow, which is not installed;"
            " run: pip install pillow"
        ) from error
    return Image


def _open(Image: Any, path: Path | str) -> Any:
    """The file opened by Pillow as PNG or JPEG, or BadImage. Never blocks: only regular files are opened."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise BadImage(path, f"cannot be read ({error.strerror or error})") from None
    if not stat.S_ISREG(mode):
        raise BadImage(path, "is not a regular file (a FIFO, device or socket); expected a PNG or JPEG image")
    try:
        with warnings.catch_warnings():
            # Between Pillow's limit and twice it Pillow only warns; here it is an error either way.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path, formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise BadImage(path, f"is too large to decode safely ({error}); a decompression bomb, or an image to "
                             "shrink first") from None
    except Image.UnidentifiedImageError:
        raise BadImage(path, f"is not a {' or '.join(FORMATS)} image (or its header is corrupt); only PNG and "
                             "JPEG are read, whatever the name says") from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise BadImage(path, f"cannot be read as an image ({error})") from None
    if image.width < 1 or image.height < 1:
        image.close()
        raise BadImage(path, f"has no pixels ({image.width}x{image.height})")
    return image


def read_header(Image: Any, path: Path | str) -> tuple[str, tuple[int, int]]:
    """(mode, (height, width)) without decoding the pixels."""
    with _open(Image, path) as image:
        return image.mode, (image.height, image.width)


def decode(Image: Any, path: Path | str, mode: str) -> np.ndarray:
    """(C, H, W) uint8 in `mode` ("L" or "RGB"); Pillow's L is the ITU-R 601 luminance used elsewhere."""
    try:
        with _open(Image, path) as image:
            pixels = np.asarray(image if image.mode == mode else image.convert(mode))
    except BadImage:
        raise
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise BadImage(path, f"cannot be decoded ({error})") from None
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)

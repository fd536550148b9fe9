"""MNIST / Fashion-MNIST in the IDX format, read without any helper library.

An IDX file is: two zero bytes, a type byte (0x08 = unsigned byte), a byte with
the number of dimensions, one big-endian uint32 per dimension, then the data.
"""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from archdsl.errors import ArchError
from archdsl.train.datasets.raw import RawDataset, RawSplit

_UBYTE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def is_idx_folder(folder: Path) -> bool:
    return _find(folder, _FILES["train"][0]) is not None


def read_idx_folder(folder: Path) -> RawDataset:
    train = _read_pair(folder, *_FILES["train"])
    test = _read_pair(folder, *_FILES["test"])
    num_classes = int(max(train.labels.max(initial=0), test.labels.max(initial=0))) + 1
    names = tuple(str(label) for label in range(num_classes))
    size = tuple(int(d) for d in train.images.shape[-2:])
    if test.images.shape[-2:] != train.images.shape[-2:]:
        raise ArchError(
            f"{folder}: expected test images of the training size {size[0]}x{size[1]}, got "
            f"{test.images.shape[-2]}x{test.images.shape[-1]}; the files come from different datasets"
        )
    return RawDataset("idx", names, 1, size, train, test=test)


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """The uint8 array stored in an IDX file (gzipped or not), validated."""
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ArchError(
            f"{path}: expected an IDX file starting with bytes 00 00, got {raw[:4].hex(' ') or 'an empty file'}; "
            "the file is not IDX or is corrupt, download it again"
        )
    if raw[2] != _UBYTE or raw[3] != ndim:
        raise ArchError(
            f"{path}: expected unsigned-byte data with {ndim} dimensions (type 0x08), got type "
            f"0x{raw[2]:02x} with {raw[3]} dimensions; this is not an MNIST-style {ndim}-D file"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ArchError(f"{path}: expected a {header}-byte IDX header, got {len(raw)} bytes; the file is truncated")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(raw) != expected:
        raise ArchError(
            f"{path}: expected {expected} bytes for dimensions {'x'.join(map(str, dims))}, got {len(raw)}; "
            "the file is truncated or corrupt, download it again"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _read_pair(folder: Path, images_name: str, labels_name: str) -> RawSplit:
    images = read_idx(_require(folder, images_name), 3)
    labels_path = _require(folder, labels_name)
    labels = read_idx(labels_path, 1)
    if len(labels) != len(images):
        raise ArchError(
            f"{labels_path}: expected {len(images)} labels (one per image), got {len(labels)}; "
            "the image and label files do not belong together"
        )
    return RawSplit(images[:, None, :, :], labels.astype(np.int64))


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _require(folder: Path, name: str) -> Path:
    found = _find(folder, name)
    if found is None:
        raise ArchError(f"{folder}: expected {name} or {name}.gz, got neither; put all four MNIST files in the folder")
    return found


def _read_bytes(path: Path) -> bytes:
    """File contents, decompressed when they start with the gzip magic (whatever the name says)."""
    try:
        data = path.read_bytes()
        return gzip.decompress(data) if data[:2] == _GZIP_MAGIC else data
    except (OSError, EOFError, zlib.error) as error:
        raise ArchError(
            f"{path}: cannot read it ({error});"
            " check the file is complete, or download it again"
        ) from error

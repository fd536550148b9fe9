"""MNIST / Fashion-MNIST in the IDX format, read without any helper library.

An IDX file is: two zero bytes, a type byte (0x08 = unsigned byte), a byte with
the number of dimensions, one big-endian uint32 per dimension, then the data.
"""
from __future__ import annotations

import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from archdsl.errors import ArchError
from archdsl.files import open_regular
from archdsl.train.datasets.raw import RawDataset, RawSplit

_UBYTE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer around the deflate stream
_CHUNK = 1 << 20
# The most bytes one IDX file may hold: 80 times MNIST's training images. More would
# not fit in memory once decoded and resized; a header claiming more is corrupt.
MAX_BYTES = 4 << 30
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
    """The uint8 array stored in an IDX file (gzipped or not), validated.

    The header is checked before the data is read, and a gzipped file is inflated
    only as far as its header says it holds (plus one byte, to notice more): a
    small .gz that inflates to gigabytes is refused after reading what fits.
    """
    try:
        with open_regular(path, "an IDX file (MNIST's format), gzipped or not") as file:
            gz = file.read(2) == _GZIP_MAGIC
            file.seek(0)
            stream = _Inflater(file) if gz else file
            dims, header = _read_header(path, stream, ndim)
            expected = math.prod(dims)
            if not gz:
                size = os.fstat(file.fileno()).st_size
                if size != header + expected:
                    raise _wrong_length(path, dims, header + expected, size)
            data = stream.read(expected + 1)  # one byte more than the dimensions say: trailing data
    except (OSError, EOFError, zlib.error) as error:
        raise ArchError(f"{path}: cannot read it ({error}); check the file is complete, or download it again") from None
    if len(data) != expected:
        raise _wrong_length(path, dims, header + expected, header + len(data), "or more" if gz else "")
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def _read_header(path: Path, stream, ndim: int) -> tuple[tuple[int, ...], int]:
    """The dimensions, checked: each at least 1, and together at most MAX_BYTES."""
    raw = stream.read(4)
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
    sizes = stream.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise ArchError(f"{path}: expected a {header}-byte IDX header, got {4 + len(sizes)} bytes; the file is truncated")
    dims = struct.unpack(f">{ndim}I", sizes)
    shown = "x".join(map(str, dims))
    if 0 in dims:
        raise ArchError(f"{path}: dimensions {shown} hold nothing (a count or a side of 0); the file is corrupt")
    if math.prod(dims) > MAX_BYTES:
        raise ArchError(f"{path}: dimensions {shown} make {math.prod(dims):,} bytes, more than archdsl reads"
                        f" ({MAX_BYTES:,}); the header is corrupt, or the data set is too large to load at once")
    return dims, header


def _wrong_length(path: Path, dims, expected: int, got: int, more: str = "") -> ArchError:
    return ArchError(
        f"{path}: expected {expected:,} bytes for dimensions {'x'.join(map(str, dims))}, got {got:,}"
        f"{' ' + more if more and got > expected else ''}; the file is truncated or corrupt, download it again"
    )


class _Inflater:
    """A gzip stream (of one or more members) read like a file: `read(n)` inflates only n bytes."""

    def __init__(self, file):
        self._file = file
        self._inflate = zlib.decompressobj(_GZIP_WBITS)
        self._buffer = bytearray()
        self._ended = False

    def read(self, n: int) -> bytes:
        while len(self._buffer) < n and not self._ended:
            self._more(n - len(self._buffer))
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def _more(self, wanted: int) -> None:
        if self._inflate.eof:  # another member may follow, as `cat a.gz b.gz` makes (its bytes: unused_data)
            rest = self._inflate.unused_data.lstrip(b"\0")  # gzip allows zero padding after a member
            while not rest:
                chunk = self._file.read(_CHUNK)
                if not chunk:
                    self._ended = True
                    return
                rest = chunk.lstrip(b"\0")
            self._inflate = zlib.decompressobj(_GZIP_WBITS)
        elif self._inflate.unconsumed_tail:  # input left over when `wanted` bytes came out
            rest = self._inflate.unconsumed_tail
        else:
            rest = self._file.read(_CHUNK)
            if not rest:
                raise EOFError("the gzip stream ends before its end marker")
        self._buffer += self._inflate.decompress(rest, wanted)


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



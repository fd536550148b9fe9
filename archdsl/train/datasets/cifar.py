"""CIFAR-10 / CIFAR-100 "python version" batches, unpickled without trusting them.

The batches are dicts of byte strings, lists and one uint8 ndarray, pickled by
Python 2. A plain `pickle.load` would run whatever callable a tampered file
names, so `_SafeUnpickler` resolves only the numpy helpers an ndarray needs.
"""
from __future__ import annotations

import io
import math
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from archdsl.errors import ArchError
from archdsl.files import open_regular
from archdsl.train.datasets.raw import RawDataset, RawSplit, check_labels

_SIDE = 32
_ROW = 3 * _SIDE * _SIDE  # one image: 1024 red, then 1024 green, then 1024 blue bytes
_CIFAR10_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR10_DIR = "cifar-10-batches-py"
_CIFAR100_DIR = "cifar-100-python"

# (module, name) pairs an ndarray pickle refers to; numpy 2 renamed numpy.core
# to numpy._core, and pickles from either side must load.
_ALLOWED_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how Python 3 writes bytes at pickle protocol 2
})


# The largest batch file read: CIFAR-100's training batch is 155 MB. The whole file is
# read first, so that a length in the pickle larger than the file fails at once.
MAX_BATCH_BYTES = 1 << 30


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        canonical = module.replace("numpy._core", "numpy.core", 1)
        if (canonical, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}, which a CIFAR batch never does")
        if (canonical, name) == ("numpy.core.multiarray", "_reconstruct"):
            return _reconstruct
        if canonical.startswith("numpy.core."):
            return getattr(_numpy_core(canonical.rpartition(".")[2]), name)
        return super().find_class(module, name)


def _reconstruct(subtype, shape, dtype):
    """numpy's _reconstruct, which allocates `shape` before the data arrives: bounded by the file's size."""
    try:
        count = math.prod(shape) if isinstance(shape, tuple) else int(shape)
    except TypeError:
        raise pickle.UnpicklingError(f"an array of shape {shape!r:.60}") from None
    if not isinstance(subtype, type) or count > MAX_BATCH_BYTES:
        raise pickle.UnpicklingError(f"it asks for an array of shape {shape!r:.60}, larger than any CIFAR batch")
    return _numpy_core("multiarray")._reconstruct(subtype, shape, dtype)


def _numpy_core(submodule: str) -> Any:
    """numpy.core.<submodule> under its real name, avoiding numpy 2's deprecation shim."""
    import importlib

    try:
        return importlib.import_module(f"numpy._core.{submodule}")
    except ImportError:  # numpy 1.x
        return importlib.import_module(f"numpy.core.{submodule}")


def load_batch(path: Path) -> dict[str, Any]:
    """One pickled batch as a dict with str keys (Python 2 wrote them as bytes)."""
    if not path.exists():
        raise ArchError(f"{path.parent}: expected a CIFAR batch file {path.name}, got none; the download is incomplete")
    with open_regular(path, "a CIFAR python batch") as file:
        size = os.fstat(file.fileno()).st_size
        if size > MAX_BATCH_BYTES:
            raise ArchError(f"{path}: {size:,} bytes, more than any CIFAR batch ({MAX_BATCH_BYTES:,} at most);"
                            " this is not a CIFAR batch")
        data = file.read(MAX_BATCH_BYTES + 1)
    try:
        # latin1 maps Python 2 byte strings 1:1, which numpy needs for array data.
        batch = _SafeUnpickler(io.BytesIO(data), encoding="latin1").load()
    except Exception as error:  # unpickling corrupt bytes raises almost anything
        raise ArchError(
            f"{path}: expected a CIFAR python batch, but it cannot be unpickled ({error});"
            " download it again"
        ) from error
    if not isinstance(batch, dict):
        raise ArchError(f"{path}: expected a pickled dict, got {type(batch).__name__}; this is not a CIFAR batch")
    return {_text(key): value for key, value in batch.items()}


def cifar_kind(folder: Path) -> tuple[str, Path] | None:
    """('cifar10' | 'cifar100', folder holding the batches) when `folder` is CIFAR."""
    for inner in (_CIFAR10_DIR, _CIFAR100_DIR):
        if (folder / inner).is_dir():
            folder = folder / inner
    if (folder / _CIFAR10_BATCHES[0]).is_file():
        return "cifar10", folder
    if (folder / "meta").is_file() and (folder / "train").is_file():
        return "cifar100", folder
    return None


def _class_names(path: Path, key: str) -> tuple[str, ...]:
    names = _field(load_batch(path), key, path)
    if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, (str, bytes)) for n in names):
        raise ArchError(f"{path}: expected '{key}' as a list of class names, got {type(names).__name__}"
                        f" {names!r:.60}; the file is corrupt or not this dataset")
    return tuple(_text(n) for n in names)


def read_cifar10(folder: Path) -> RawDataset:
    names = _class_names(folder / "batches.meta", "label_names")
    parts = [_read_split(folder / name, "labels", len(names)) for name in _CIFAR10_BATCHES]
    pool = RawSplit(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]))
    test = _read_split(folder / "test_batch", "labels", len(names))
    return RawDataset("cifar10", names, 3, (_SIDE, _SIDE), pool, test=test)


def read_cifar100(folder: Path) -> RawDataset:
    names = _class_names(folder / "meta", "fine_label_names")
    pool = _read_split(folder / "train", "fine_labels", len(names))
    test = _read_split(folder / "test", "fine_labels", len(names))
    return RawDataset("cifar100", names, 3, (_SIDE, _SIDE), pool, test=test)


def _read_split(path: Path, label_key: str, num_classes: int) -> RawSplit:
    batch = load_batch(path)
    data = np.asarray(_field(batch, "data", path))
    labels = check_labels(_field(batch, label_key, path), num_classes, path)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _ROW or len(data) != len(labels):
        raise ArchError(
            f"{path}: expected 'data' as uint8 ({len(labels)}, {_ROW}) for {len(labels)} labels, got "
            f"{data.dtype} {data.shape}; the batch is corrupt, download it again"
        )
    return RawSplit(data.reshape(-1, 3, _SIDE, _SIDE), labels)


def _field(batch: dict[str, Any], key: str, path: Path) -> Any:
    if key not in batch:
        raise ArchError(
            f"{path}: expected a '{key}' entry, got only {sorted(batch)};"
            " this is not a CIFAR batch of this kind"
        )
    return batch[key]


def _text(value: str | bytes) -> str:
    return value.decode("latin1") if isinstance(value, bytes) else value

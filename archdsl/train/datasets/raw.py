"""What every dataset reader returns: decoded uint8 images at native size.

Readers do no resizing or normalising; that happens once, in `archdsl.train.data`,
so that every source goes through the same (tested) tensor path.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archdsl.errors import ArchError


@dataclass(frozen=True, eq=False)
class RawSplit:
    """Images and integer labels of one split: `images` is uint8 (N, C, H, W)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, indices: np.ndarray) -> "RawSplit":
        return RawSplit(self.images[indices], self.labels[indices])


@dataclass(frozen=True, eq=False)
class RawDataset:
    """A decoded source. Missing `val`/`test` splits are carved out of `pool`."""

    kind: str
    class_names: tuple[str, ...]
    channels: int
    native_size: tuple[int, int]
    pool: RawSplit
    val: RawSplit | None = None
    test: RawSplit | None = None


def check_labels(labels, num_classes: int, where: Path | str) -> np.ndarray:
    """Labels as int64, refusing anything but a flat sequence of whole numbers in [0, num_classes)."""
    if isinstance(labels, np.ndarray):
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise ArchError(f"{where}: expected labels as a list of whole numbers, got a {labels.dtype} array of shape "
                            f"{labels.shape}; the file is corrupt or not this dataset")
        values = labels
    elif isinstance(labels, (list, tuple)):
        bad = next((v for v in labels if isinstance(v, bool) or not isinstance(v, (int, np.integer))), None)
        if bad is not None:
            raise ArchError(f"{where}: expected labels as whole numbers, got {type(bad).__name__} {bad!r:.40}; the file"
                            " is corrupt or not this dataset")
        values = labels
    else:
        raise ArchError(f"{where}: expected a list of labels, got {type(labels).__name__}; the file is corrupt or not"
                        " this dataset")
    if len(values) and (min(values) < 0 or max(values) >= num_classes):
        raise ArchError(
            f"{where}: expected labels in 0..{num_classes - 1}, got "
            f"{int(min(values))}..{int(max(values))}; the file is corrupt or not this dataset"
        )
    return np.asarray(values, dtype=np.int64)

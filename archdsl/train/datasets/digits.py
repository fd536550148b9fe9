"""scikit-learn's bundled 8x8 digits: the dataset that needs no download."""
from __future__ import annotations

import numpy as np

from archdsl.train.datasets.raw import RawDataset, RawSplit

_DIGITS_LEVELS = 16  # load_digits pixels are 0..16


def read_digits() -> RawDataset:
    from sklearn.datasets import load_digits

    digits = load_digits()
    scaled = np.rint(digits.images * (255 / _DIGITS_LEVELS)).astype(np.uint8)
    images = scaled[:, None, :, :]
    names = tuple(str(name) for name in digits.target_names)
    labels = np.asarray(digits.target, dtype=np.int64)
    return RawDataset("digits", names, 1, images.shape[-2:], RawSplit(images, labels))

"""Readers that turn a dataset source into a `RawDataset` of uint8 images."""
from __future__ import annotations

from pathlib import Path

from archdsl.errors import ArchError
from archdsl.train.datasets.cifar import cifar_kind, read_cifar10, read_cifar100
from archdsl.train.datasets.digits import read_digits
from archdsl.train.datasets.folder import ImageFolder, read_folder
from archdsl.train.datasets.idx import is_idx_folder, read_idx_folder
from archdsl.train.datasets.raw import RawDataset, RawSplit

__all__ = ["ImageFolder", "RawDataset", "RawSplit", "read_source"]

BUILTIN = "digits"


def read_source(source: str, skip_bad: bool = False) -> RawDataset | ImageFolder:
    """Decode `source`: 'digits', a folder of MNIST IDX files or CIFAR batches; or list a folder of class subfolders.

    Image folders are listed, not decoded (they are streamed); `skip_bad` leaves their unreadable files out.
    """
    if source == BUILTIN:
        return read_digits()
    folder = Path(source).expanduser()
    if not folder.exists():
        raise ArchError(
            f"dataset '{source}' does not exist; expected '{BUILTIN}' or a folder of MNIST IDX files, "
            "CIFAR python batches, or one image subfolder per class; fix the path"
        )
    if not folder.is_dir():
        raise ArchError(
            f"dataset '{source}' is a file; expected '{BUILTIN}' or a folder (of MNIST IDX files, CIFAR "
            "python batches, or image subfolders); give the folder that contains it"
        )
    if is_idx_folder(folder):
        return read_idx_folder(folder)
    cifar = cifar_kind(folder)
    if cifar is not None:
        kind, batches = cifar
        return read_cifar10(batches) if kind == "cifar10" else read_cifar100(batches)
    return read_folder(folder, skip_bad)

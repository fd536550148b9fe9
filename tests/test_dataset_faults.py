"""Hostile data files: IDX headers that overflow or hold nothing, a .gz that inflates to far more than
its header says, CIFAR labels of the wrong type, a CIFAR pickle that asks for gigabytes. Each is one
error naming the file, within bounded memory and time."""
from __future__ import annotations

import gzip
import os
import pickle
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from archdsl.errors import ArchError
from archdsl.train.datasets import read_source
from archdsl.train.datasets.idx import MAX_BYTES, read_idx


def idx_bytes(dims: tuple[int, ...], data: bytes = b"") -> bytes:
    return b"\0\0\x08" + bytes([len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + data


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dims, message", [
    ((2**32 - 1,) * 3, "make 79,228,162,458,924,105,385,300,197,375 bytes, more than archdsl reads"),
    ((2**21, 2**21, 2**22), "make 18,446,744,073,709,551,616 bytes"),  # 2^64: wraps to 0 in int64
    ((2**16, 2**16, 2**16), f"more than archdsl reads ({MAX_BYTES:,})"),
    ((4, 0, 28), "dimensions 4x0x28 hold nothing (a count or a side of 0)"),
    ((0, 28, 28), "dimensions 0x28x28 hold nothing"),
])
def test_idx_headers_that_overflow_or_hold_nothing(tmp_path, gz, dims, message):
    path = tmp_path / ("images.gz" if gz else "images")
    content = idx_bytes(dims, bytes(16))
    path.write_bytes(gzip.compress(content) if gz else content)
    with pytest.raises(ArchError) as info:
        read_idx(path, 3)
    assert message in info.value.message and str(path) in info.value.message


def test_a_small_gz_that_inflates_to_far_more_than_its_header_says(tmp_path):
    """256 MB of zeros behind a header for 4 images of 28x28: read up to the header's size, then refused."""
    path = tmp_path / "train-images-idx3-ubyte.gz"
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [compressor.compress(idx_bytes((4, 28, 28)))]
    zeros = bytes(1 << 20)
    parts += [compressor.compress(zeros) for _ in range(256)]
    path.write_bytes(b"".join(parts) + compressor.flush())
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(ArchError) as info:
            read_idx(path, 3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "expected 3,152 bytes for dimensions 4x28x28, got 3,153 or more" in info.value.message
    assert peak < 16 << 20, f"{peak:,} bytes at the peak"


def test_gz_members_and_truncation(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    content = idx_bytes(array.shape, array.tobytes())
    (tmp_path / "two-members.gz").write_bytes(gzip.compress(content[:10]) + gzip.compress(content[10:]))
    assert np.array_equal(read_idx(tmp_path / "two-members.gz", 3), array)
    (tmp_path / "cut.gz").write_bytes(gzip.compress(content)[:-12])
    with pytest.raises(ArchError, match="cut.gz: cannot read it"):
        read_idx(tmp_path / "cut.gz", 3)


# ---- CIFAR ------------------------------------------------------------------------------------------------------

def cifar10(folder: Path, labels, data=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "batches.meta", "wb") as file:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, file)
    rows = data if data is not None else np.zeros((4, 3072), np.uint8)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as file:
            pickle.dump({"data": rows, "labels": labels}, file, protocol=2)
    return folder


@pytest.mark.parametrize("labels, message", [
    (["a", "b", "c", "d"], "expected labels as whole numbers, got str 'a'"),
    ([0.5, 1, 2, 3], "expected labels as whole numbers, got float 0.5"),
    ([[1], [2], [3], [4]], "expected labels as whole numbers, got list [1]"),
    ([True, False, True, False], "expected labels as whole numbers, got bool True"),
    (None, "expected a list of labels, got NoneType"),
    (7, "expected a list of labels, got int"),
    (np.zeros((4, 1), np.int64), "expected labels as a list of whole numbers, got a int64 array of shape (4, 1)"),
    (np.zeros(4, np.float32), "got a float32 array"),
    ([0, 1, 2, 10**30], "expected labels in 0..9, got 0..1000000000000000000000000000000"),
])
def test_cifar_labels_of_the_wrong_type(tmp_path, labels, message):
    folder = cifar10(tmp_path / "cifar", labels)
    with pytest.raises(ArchError) as info:
        read_source(str(folder))
    assert message in info.value.message and "data_batch_1" in info.value.message


def test_cifar_class_names_of_the_wrong_type(tmp_path):
    folder = cifar10(tmp_path / "cifar", [0, 1, 2, 3])
    with open(folder / "batches.meta", "wb") as file:
        pickle.dump({"label_names": 10}, file)
    with pytest.raises(ArchError, match="batches.meta: expected 'label_names' as a list of class names, got int"):
        read_source(str(folder))


def test_a_cifar_pickle_that_asks_for_gigabytes(tmp_path):
    """numpy's _reconstruct allocates the shape the pickle names before the data arrives: 7 GiB here."""
    folder = cifar10(tmp_path / "cifar", [0, 1, 2, 3])
    data = (folder / "data_batch_1").read_bytes()
    at = data.find(b"K\x00\x85")  # the (0,) shape numpy pickles for _reconstruct
    size = (7 << 30).to_bytes(5, "little")
    (folder / "data_batch_1").write_bytes(data[:at] + b"\x8a" + bytes([len(size)]) + size + b"\x85" + data[at + 3:])
    with pytest.raises(ArchError) as info:
        read_source(str(folder))
    assert "data_batch_1" in info.value.message
    assert "asks for an array of shape (7516192768,), larger than any CIFAR batch" in info.value.message


def test_a_cifar_length_longer_than_the_file(tmp_path):
    folder = cifar10(tmp_path / "cifar", [0, 1, 2, 3])
    (folder / "data_batch_1").write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", 7 << 30) + b"abc")
    with pytest.raises(ArchError, match="data_batch_1: expected a CIFAR python batch, but it cannot be unpickled"):
        read_source(str(folder))


def test_a_file_larger_than_any_cifar_batch_is_not_read(tmp_path):
    folder = cifar10(tmp_path / "cifar", [0, 1, 2, 3])
    with open(folder / "data_batch_2", "r+b") as file:
        file.truncate((1 << 30) + 1)  # sparse: no disk used
    with pytest.raises(ArchError, match="data_batch_2: 1,073,741,825 bytes, more than any CIFAR batch"):
        read_source(str(folder))


@pytest.mark.timeout(60)  # opening a FIFO for reading waits for a writer: fail, don't hang
def test_fifos_among_the_data_files_are_refused(tmp_path):
    folder = cifar10(tmp_path / "cifar", [0, 1, 2, 3])
    (folder / "test_batch").unlink()
    os.mkfifo(folder / "test_batch")
    with pytest.raises(ArchError, match="test_batch is not a regular file"):
        read_source(str(folder))
    mnist = tmp_path / "mnist"
    mnist.mkdir()
    os.mkfifo(mnist / "train-images-idx3-ubyte")
    with pytest.raises(ArchError, match="train-images-idx3-ubyte is not a regular file"):
        read_idx(mnist / "train-images-idx3-ubyte", 3)


def test_gz_zero_padding_after_the_last_member_is_allowed(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "padded.gz").write_bytes(gzip.compress(idx_bytes(array.shape, array.tobytes())) + bytes(5000))
    assert np.array_equal(read_idx(tmp_path / "padded.gz", 3), array)

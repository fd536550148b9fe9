"""The dataset layer: readers for every source format, splits, resizing, batching."""
from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from archdsl.errors import ArchError
from archdsl.train import data
from archdsl.train.data import (
    DataSplits,
    DatasetInfo,
    HorizontalFlip,
    RandomCrop,
    Split,
    load_dataset,
    make_augment,
    stratified_take,
)
from archdsl.train.datasets.idx import read_idx

# --------------------------------------------------------------------------- helpers


def write_idx(path: Path, array: np.ndarray, *, gz: bool = False) -> Path:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def write_mnist(folder: Path, n_train: int = 40, n_test: int = 20, *, gz: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.arange(n_test, dtype=np.uint8) % 10,
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        write_idx(folder / (name + (".gz" if gz else "")), array, gz=gz)
    return arrays


class Py2Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Writes bytes the way Python 2 wrote str, as the real CIFAR batches do."""

    dispatch = dict(pickle._Pickler.dispatch)  # type: ignore[attr-defined]

    def save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def py2_pickle(path: Path, obj: object) -> None:
    import io

    buffer = io.BytesIO()
    Py2Pickler(buffer, protocol=2).dump(obj)
    # Python 2's numpy lived at numpy.core; GLOBAL opcodes are newline-terminated text.
    path.write_bytes(buffer.getvalue().replace(b"numpy._core.", b"numpy.core."))


def cifar_rows(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)


def write_cifar10(root: Path, per_batch: int = 4) -> tuple[np.ndarray, np.ndarray]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    py2_pickle(folder / "batches.meta", {b"label_names": names, b"num_cases_per_batch": per_batch, b"num_vis": 3072})
    rows = []
    for i in range(1, 6):
        batch = cifar_rows(per_batch, i)
        rows.append(batch)
        labels = [(i + j) % 10 for j in range(per_batch)]
        py2_pickle(folder / f"data_batch_{i}", {
            b"batch_label": f"training batch {i} of 5".encode(), b"labels": labels, b"data": batch,
            b"filenames": [b"x.png"] * per_batch,
        })
    test = cifar_rows(6, 99)
    py2_pickle(folder / "test_batch", {b"batch_label": b"testing batch 1 of 1", b"labels": [0, 1, 2, 3, 4, 5],
                                       b"data": test, b"filenames": [b"t.png"] * 6})
    return np.concatenate(rows), test


def write_cifar100(root: Path) -> None:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    fine = [f"class{i}" for i in range(100)]
    with (folder / "meta").open("wb") as f:
        pickle.dump({"fine_label_names": fine, "coarse_label_names": [f"c{i}" for i in range(20)]}, f)
    for name, n, seed in (("train", 30, 1), ("test", 10, 2)):
        with (folder / name).open("wb") as f:
            pickle.dump({"data": cifar_rows(n, seed), "fine_labels": [(3 * j) % 100 for j in range(n)],
                         "coarse_labels": [j % 20 for j in range(n)], "filenames": ["a"] * n}, f)


def write_png(path: Path, pixels: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def splits_of(labels: torch.Tensor, images: torch.Tensor | None = None, channels: int = 1) -> DataSplits:
    """A DataSplits over given tensors, for loader tests that need no source."""
    n = len(labels)
    images = torch.zeros((n, channels, 4, 4), dtype=torch.uint8) if images is None else images
    split = Split(images, labels)
    shape = tuple(images.shape[1:])
    info = DatasetInfo("test", "test", ("a",), channels, shape[1:], shape, (0.0,) * channels, (1.0,) * channels)
    return DataSplits(split, split, split, info)


@pytest.fixture(scope="module")
def digits32() -> DataSplits:
    return load_dataset("digits", (1, 32, 32), seed=0)


# --------------------------------------------------------------------------- digits and splitting


def test_digits_split_sizes_and_stratification(digits32: DataSplits) -> None:
    sizes = [len(digits32.train), len(digits32.val), len(digits32.test)]
    assert sizes == [1258, 180, 359]  # 1797 split 70/10/20, rounded
    assert digits32.info.num_classes == 10 and digits32.info.native_size == (8, 8)
    everything = torch.cat([digits32.train.labels, digits32.val.labels, digits32.test.labels])
    totals = torch.bincount(everything, minlength=10)
    for split, size in zip((digits32.val, digits32.test), sizes[1:]):
        counts = torch.bincount(split.labels, minlength=10).double()
        assert torch.all((counts - totals * size / 1797).abs() < 1)


def test_digits_split_is_deterministic_by_seed(digits32: DataSplits) -> None:
    again = load_dataset("digits", (1, 32, 32), seed=0)
    other = load_dataset("digits", (1, 32, 32), seed=1)
    assert torch.equal(again.test.images, digits32.test.images)
    assert torch.equal(again.train.labels, digits32.train.labels)
    assert not torch.equal(other.test.images, digits32.test.images)


@settings(max_examples=60, deadline=None)
@example(labels=[0] * 6 + [1] * 3 + [2], fraction=0.5, seed=0)  # shares 3, 1.5, 0.5: the remainder decides
@given(st.lists(st.integers(0, 4), min_size=1, max_size=60), st.floats(0, 1), st.integers(0, 2**32 - 1))
def test_stratified_take_partitions_exactly(labels: list[int], fraction: float, seed: int) -> None:
    labels_array = np.array(labels)
    candidates = np.arange(len(labels))
    count = round(len(labels) * fraction)
    taken, rest = stratified_take(labels_array, candidates, count, np.random.default_rng(seed))
    assert len(taken) == count
    assert sorted(np.concatenate([taken, rest]).tolist()) == candidates.tolist()
    totals = np.bincount(labels_array, minlength=5)
    share = np.bincount(labels_array[taken], minlength=5)
    assert np.all(np.abs(share - totals * count / len(labels)) < 1)


def test_bad_fractions_are_refused() -> None:
    with pytest.raises(ArchError, match="sum < 1"):
        load_dataset("digits", (1, 8, 8), seed=0, val_fraction=0.5, test_fraction=0.5)


# --------------------------------------------------------------------------- resizing and channels


def test_native_size_keeps_pixels_exactly() -> None:
    from sklearn.datasets import load_digits

    splits = load_dataset("digits", (1, 8, 8), seed=0, val_fraction=0, test_fraction=0, normalize="none")
    stored = np.sort(splits.train.images.numpy().reshape(len(splits.train), -1), axis=0)
    expected = np.sort(np.rint(load_digits().images * 255 / 16).reshape(1797, -1), axis=0)
    assert np.array_equal(stored, expected)


def test_resize_to_colour_input_replicates_grey(digits32: DataSplits) -> None:
    splits = load_dataset("digits", (3, 64, 48), seed=0, normalize="none")
    assert splits.train.images.shape[1:] == (1, 64, 48)  # replicated per batch, not stored three times
    images, labels = next(iter(splits.loader("test", 5)))
    assert images.shape == (5, 3, 64, 48) and labels.shape == (5,)
    assert torch.equal(images[:, 0], images[:, 1]) and torch.equal(images[:, 1], images[:, 2])
    assert 0 <= images.min() and images.max() <= 1 and images.max() > 0.5


def test_per_batch_resize_matches_resize_up_front(monkeypatch: pytest.MonkeyPatch) -> None:
    eager = load_dataset("digits", (1, 20, 20), seed=0, normalize="none")
    monkeypatch.setattr(data, "_EAGER_RESIZE_BYTES", 0)
    lazy = load_dataset("digits", (1, 20, 20), seed=0, normalize="none")
    assert lazy.test.images.shape[-2:] == (8, 8)
    (a, _), (b, _) = next(iter(eager.loader("test", 50))), next(iter(lazy.loader("test", 50)))
    assert a.shape == b.shape == (50, 1, 20, 20)
    assert (a - b).abs().max() <= 1 / 255 + 1e-6  # eager storage rounds to uint8 once


@pytest.mark.parametrize("shape", [(784,), (4, 32, 32), (1, 0, 32), (1, 1, 32, 32)])
def test_unmappable_input_shape_says_the_fix(shape: tuple[int, ...]) -> None:
    with pytest.raises(ArchError, match=r"1x8x8 images.*\(channels, height, width\).*\(1, 8, 8\)"):
        load_dataset("digits", shape, seed=0)


def test_dataset_normalisation_standardises_training_batches(digits32: DataSplits) -> None:
    images = torch.cat([x for x, _ in digits32.loader("train", 500)])
    assert abs(float(images.mean())) < 1e-3 and abs(float(images.std()) - 1) < 1e-3


def test_explicit_and_bad_normalisation() -> None:
    splits = load_dataset("digits", (1, 8, 8), seed=0, normalize=((0.5,), (0.25,)))
    images, _ = next(iter(splits.loader("train", 2000)))
    assert float(images.min()) == pytest.approx(-2) and float(images.max()) == pytest.approx(2)
    with pytest.raises(ArchError, match="normalize"):
        load_dataset("digits", (1, 8, 8), seed=0, normalize="imagenet")
    with pytest.raises(ArchError, match="std > 0"):
        load_dataset("digits", (1, 8, 8), seed=0, normalize=((0.5,), (0.0,)))


# --------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path: Path, gz: bool) -> None:
    array = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    assert np.array_equal(read_idx(write_idx(tmp_path / "a", array, gz=gz), 3), array)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_folder_loads_with_official_test_split(tmp_path: Path, gz: bool) -> None:
    arrays = write_mnist(tmp_path, gz=gz)
    splits = load_dataset(str(tmp_path), (1, 28, 28), seed=0, normalize="none")
    assert (splits.info.kind, splits.info.num_classes, splits.info.native_size) == ("idx", 10, (28, 28))
    assert (len(splits.train), len(splits.val), len(splits.test)) == (36, 4, 20)
    assert torch.equal(splits.test.images[:, 0], torch.from_numpy(arrays["t10k-images-idx3-ubyte"]))
    assert torch.equal(splits.test.labels, torch.arange(20) % 10)


def test_corrupt_idx_files_raise(tmp_path: Path) -> None:
    good = write_idx(tmp_path / "good", np.zeros((4, 2, 2), np.uint8)).read_bytes()
    cases = {
        "magic": b"\x08\x03" + good[2:],
        "truncated": good[:-1],
        "trailing": good + b"\x00",
        "header": good[:9],
        "dims": good[:3] + b"\x01" + good[4:],
        "gzip": gzip.compress(good)[:-6],
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ArchError, match=name):  # the message names the file
            read_idx(tmp_path / name, 3)


def test_mnist_count_mismatch_and_missing_file(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(19, np.uint8))
    with pytest.raises(ArchError, match="expected 20 labels"):
        load_dataset(str(tmp_path), (1, 28, 28), seed=0)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(ArchError, match="t10k-labels-idx1-ubyte"):
        load_dataset(str(tmp_path), (1, 28, 28), seed=0)


# --------------------------------------------------------------------------- CIFAR


def test_cifar10_round_trip_from_python2_pickles(tmp_path: Path) -> None:
    train_rows, test_rows = write_cifar10(tmp_path)
    splits = load_dataset(str(tmp_path), (3, 32, 32), seed=0, val_fraction=0.2, normalize="none")
    info = splits.info
    assert (info.kind, info.native_channels, info.class_names[:2]) == ("cifar10", 3, ("airplane", "automobile"))
    assert (len(splits.train), len(splits.val), len(splits.test)) == (16, 4, 6)
    # Rows are planes: 1024 red bytes, then green, then blue.
    assert torch.equal(splits.test.images[2, 0].reshape(-1), torch.from_numpy(test_rows[2, :1024]))
    assert torch.equal(splits.test.images[2, 2].reshape(-1), torch.from_numpy(test_rows[2, 2048:]))
    assert torch.equal(splits.test.labels, torch.arange(6))
    stored = {bytes(row) for row in splits.train.images.reshape(16, -1).numpy()}
    stored |= {bytes(row) for row in splits.val.images.reshape(4, -1).numpy()}
    assert stored == {bytes(row) for row in train_rows}


def test_cifar_to_grey_input_uses_luminance(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    splits = load_dataset(str(tmp_path / "cifar-10-batches-py"), (1, 16, 16), seed=0, normalize="none")
    assert splits.test.images.shape == (6, 1, 16, 16)
    colour = load_dataset(str(tmp_path), (3, 16, 16), seed=0, normalize="none").test.images.double()
    luma = (colour * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    assert (luma - splits.test.images.double()).abs().max() <= 1.5  # two uint8 roundings apart


def test_cifar100_round_trip_with_fine_labels(tmp_path: Path) -> None:
    write_cifar100(tmp_path)
    splits = load_dataset(str(tmp_path), (3, 32, 32), seed=0, normalize="none")
    assert (splits.info.kind, splits.info.num_classes, splits.info.class_names[3]) == ("cifar100", 100, "class3")
    assert (len(splits.train), len(splits.val), len(splits.test)) == (27, 3, 10)
    assert torch.equal(splits.test.labels, torch.tensor([(3 * j) % 100 for j in range(10)]))


class _Exploit:
    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.mkdir, (str(self.target),))


def test_cifar_unpickling_refuses_code_and_garbage(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(pickle.dumps({"data": _Exploit(tmp_path / "pwned"), "labels": []}))
    with pytest.raises(ArchError, match="cannot be unpickled"):
        load_dataset(str(tmp_path), (3, 32, 32), seed=0)
    assert not (tmp_path / "pwned").exists()
    batch.write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]})[:40])
    with pytest.raises(ArchError, match="test_batch"):
        load_dataset(str(tmp_path), (3, 32, 32), seed=0)
    batch.write_bytes(pickle.dumps({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}))
    with pytest.raises(ArchError, match=r"uint8 \(2, 3072\)"):
        load_dataset(str(tmp_path), (3, 32, 32), seed=0)
    batch.write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]}))
    with pytest.raises(ArchError, match=r"labels in 0..9"):
        load_dataset(str(tmp_path), (3, 32, 32), seed=0)


# --------------------------------------------------------------------------- image folders


def streamed(splits, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A streamed split's images (pixel values 0-255 when normalize is none) and labels, in order."""
    images, labels = zip(*splits.loader(split, 1000))
    return (torch.cat(images) * 255).round(), torch.cat(labels)


def grey(value: int, size: tuple[int, int] = (6, 6)) -> np.ndarray:
    return np.full(size, value, dtype=np.uint8)


def test_image_folder_with_class_subfolders(tmp_path: Path) -> None:
    for i in range(5):
        write_png(tmp_path / "cat" / f"{i}.png", grey(10 * i))
        write_png(tmp_path / "dog" / f"{i}.png", grey(200 + i))
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    splits = load_dataset(str(tmp_path), (1, 6, 6), seed=0, val_fraction=0.2, test_fraction=0.2, normalize="none")
    info = splits.info
    assert (info.kind, info.class_names, info.native_channels) == ("folder", ("cat", "dog"), 1)
    assert info.native_size == (6, 6)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (6, 2, 2)
    for split in ("train", "val", "test"):
        images, labels = streamed(splits, split)
        is_dog = images[:, 0, 0, 0] >= 200
        assert torch.equal(is_dog.long(), labels)


def test_image_folder_with_train_val_test_and_mixed_images(tmp_path: Path) -> None:
    for split, count in (("train", 4), ("val", 2), ("test", 3)):
        for i in range(count):
            write_png(tmp_path / split / "a" / f"{i}.png", grey(50, (8 + i, 6)))  # sizes differ
            colour = np.zeros((6, 6, 3), np.uint8)
            colour[..., 0] = 255
            write_png(tmp_path / split / "b" / f"{i}.png", colour)
    splits = load_dataset(str(tmp_path), (3, 12, 12), seed=0, normalize="none")
    assert (splits.info.native_channels, splits.info.native_size) == (3, None)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (8, 4, 6)
    images, labels = streamed(splits, "test")
    assert images.shape == (6, 3, 12, 12)
    red = images[labels == 1]
    assert torch.all(red[:, 0] == 255) and torch.all(red[:, 1:] == 0)
    assert torch.all(images[labels == 0] == 50)  # grey replicated to RGB


def test_shrinking_is_antialiased(tmp_path: Path) -> None:
    stripes = np.tile(np.array([255, 0, 0, 0], np.uint8), (16, 4))  # one lit column in four
    write_png(tmp_path / "a" / "0.png", stripes)
    write_png(tmp_path / "a" / "1.png", stripes)
    splits = load_dataset(str(tmp_path), (1, 4, 4), seed=0, val_fraction=0, test_fraction=0, normalize="none")
    # Plain bilinear would sample between unlit columns and see black; the block mean is 63.75.
    images = streamed(splits, "train")[0].double()
    assert torch.all(images > 30) and abs(float(images.mean()) - 63.75) < 5


def test_constant_images_normalise_without_dividing_by_zero(tmp_path: Path) -> None:
    for i in range(3):
        write_png(tmp_path / "a" / f"{i}.png", grey(90))
    splits = load_dataset(str(tmp_path), (1, 6, 6), seed=0, val_fraction=0, test_fraction=0)
    assert splits.info.std == (1.0,)
    images, _ = next(iter(splits.loader("train", 3)))
    assert torch.all(images == 0)


def test_image_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(ArchError, match="does not exist"):
        load_dataset(str(tmp_path / "missing"), (1, 8, 8), seed=0)
    with pytest.raises(ArchError, match="one subfolder per class"):
        load_dataset(str(tmp_path), (1, 8, 8), seed=0)
    (tmp_path / "cat").mkdir()
    with pytest.raises(ArchError, match="got none"):
        load_dataset(str(tmp_path), (1, 8, 8), seed=0)
    write_png(tmp_path / "cat" / "ok.png", grey(1))
    (tmp_path / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ArchError, match="broken.png"):
        load_dataset(str(tmp_path), (1, 8, 8), seed=0)


# --------------------------------------------------------------------------- loading, sharding, augmentation


def shard_ids(splits: DataSplits, world_size: int, **kwargs: object) -> list[list[int]]:
    return [
        torch.cat([y for _, y in splits.loader("train", 3, rank=rank, world_size=world_size, **kwargs)]).tolist()
        for rank in range(world_size)
    ]


@pytest.mark.parametrize("shuffle", [False, True])
def test_shards_are_disjoint_equal_and_cover(shuffle: bool) -> None:
    splits = splits_of(torch.arange(12))
    shards = [
        torch.cat([y for _, y in splits.loader(
            "train", 3, shuffle, torch.Generator().manual_seed(7) if shuffle else None, rank=rank, world_size=3
        )]).tolist()
        for rank in range(3)
    ]
    assert [len(s) for s in shards] == [4, 4, 4]
    assert sorted(sum(shards, [])) == list(range(12))


def test_uneven_shards_are_padded_to_equal_size() -> None:
    splits = splits_of(torch.arange(10))
    shards = shard_ids(splits, 4)
    assert [len(s) for s in shards] == [3, 3, 3, 3]
    assert set(sum(shards, [])) == set(range(10))  # 2 of the 12 slots repeat an image
    assert len(splits.loader("train", 2, rank=3, world_size=4)) == 2


def test_loader_batches_and_drop_last() -> None:
    splits = splits_of(torch.arange(10))
    assert [len(y) for _, y in splits.loader("train", 4)] == [4, 4, 2]
    assert [len(y) for _, y in splits.loader("train", 4, drop_last=True)] == [4, 4]
    with pytest.raises(ValueError, match="generator"):
        splits.loader("train", 4, shuffle=True, world_size=2)


def test_shuffle_is_deterministic_per_generator() -> None:
    splits = splits_of(torch.arange(50))

    def order(seed: int) -> list[int]:
        return torch.cat([y for _, y in splits.loader("train", 8, True, torch.Generator().manual_seed(seed))]).tolist()

    assert order(1) == order(1) and order(1) != order(2) and sorted(order(1)) == list(range(50))


def test_augmentation_is_deterministic_and_does_something() -> None:
    images = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8)
    splits = splits_of(torch.arange(16), images, channels=3)
    augment = (RandomCrop(pad=2), HorizontalFlip())

    def batch(seed: int) -> torch.Tensor:
        return next(iter(splits.loader("train", 16, False, torch.Generator().manual_seed(seed), augment)))[0]

    plain = next(iter(splits.loader("train", 16)))[0]
    assert torch.equal(batch(3), batch(3))
    assert not torch.equal(batch(3), batch(4)) and not torch.equal(batch(3), plain)


def test_random_crop_is_a_window_of_the_zero_padded_image() -> None:
    images = torch.rand(6, 2, 5, 7)
    cropped = RandomCrop(pad=3)(images, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(images, (3, 3, 3, 3))
    for original, out in zip(padded, cropped):
        windows = [original[:, y : y + 5, x : x + 7] for y in range(7) for x in range(7)]
        assert any(torch.equal(out, window) for window in windows)
    assert not all(torch.equal(out, image) for out, image in zip(cropped, images))


def test_flip_mirrors_whole_images() -> None:
    images = torch.rand(32, 1, 3, 4)
    generator = torch.Generator().manual_seed(0)
    flipped = HorizontalFlip()(images, generator)
    mirrored = [torch.equal(out, image.flip(-1)) for out, image in zip(flipped, images)]
    assert all(m or torch.equal(out, image) for m, out, image in zip(mirrored, flipped, images))
    assert 0 < sum(mirrored) < 32
    assert torch.equal(HorizontalFlip(p=1)(images, generator), images.flip(-1))


def test_ranks_draw_different_augmentations() -> None:
    # Rank 0 reads even indices, rank 1 odd ones: both see the same 8 images.
    images = torch.randint(0, 256, (8, 1, 6, 6), dtype=torch.uint8).repeat_interleave(2, dim=0)
    splits = splits_of(torch.arange(16), images)
    batches = [
        next(iter(splits.loader("train", 8, False, torch.Generator().manual_seed(0), (RandomCrop(2),), rank, 2)))[0]
        for rank in range(2)
    ]
    assert not torch.equal(batches[0], batches[1])


def test_make_augment() -> None:
    assert make_augment("crop", pad=4) == RandomCrop(4)
    assert make_augment("flip") == HorizontalFlip()
    with pytest.raises(ArchError, match="did you mean 'crop'"):
        make_augment("corp")
    with pytest.raises(ArchError, match="takes pad, got size"):
        make_augment("crop", size=3)
    with pytest.raises(ArchError, match="pad"):
        make_augment("crop", pad=-1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_batches_on_gpu_match_cpu(digits32: DataSplits) -> None:
    augment = (RandomCrop(4), HorizontalFlip())
    cpu = next(iter(digits32.loader("train", 64, True, torch.Generator().manual_seed(5), augment)))
    gpu = next(iter(digits32.to("cuda").loader("train", 64, True, torch.Generator().manual_seed(5), augment)))
    assert gpu[0].device.type == "cuda" and gpu[1].device.type == "cuda"
    assert torch.allclose(gpu[0].cpu(), cpu[0], atol=1e-5) and torch.equal(gpu[1].cpu(), cpu[1])

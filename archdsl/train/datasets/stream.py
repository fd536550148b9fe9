"""Image folders streamed from disk: decoded, augmented and batched in DataLoader workers.

    stream_splits(folder, parts, shape, ...) -> StreamSplits    the DataSplits interface over files
    StreamSplits.loader(...) -> StreamLoader                    one epoch's batches of one split

Memory is bounded by the batches in flight (batch size x workers x prefetch),
not by the data set: nothing holds the pixels of more than those batches.

Exactness is kept as for data in memory (see archdsl.train.loop): the epoch's
order comes from `shard_order` with the epoch's generator, and every image
gets its own augmentation seed, drawn from that generator and its index in the
data set, so the numbers depend neither on the number of workers nor on how
the images are sharded over ranks (two ranks with batch B augment exactly as
one process with batch 2B).

A file that turns out unreadable while training (corrupt pixel data behind a
good header) ends the run with its name, or with `skip_bad` is left out of its
batch and counted (`StreamLoader.skipped`).
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

from archdsl.errors import ArchError
from archdsl.train.data import (
    Augmentation, DatasetInfo, NamedSplits, Normalize, RandomResizedCrop, _convert, _normalization, _to_float,
    batch_count, check_loader, shard_order,
)
from archdsl.train.datasets.folder import BadImage, FolderSplit, ImageFolder, decode, pillow

STATS_SAMPLE = 1000  # images decoded to estimate the dataset normalisation of a streamed folder
_SEED_MIX = 0x9E3779B97F4A7C15  # spreads consecutive indices over the seed space (Fibonacci hashing)
_SEED_MASK = (1 << 63) - 1


class DataError(ArchError):
    """Data loading failed during an epoch (an unreadable image, a worker that died)."""


def default_workers() -> int:
    """Loader processes for streamed data: the cores, at most 8 (decoding small images rarely needs more)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


@dataclass(frozen=True, eq=False)
class FolderImages(torch.utils.data.Dataset):
    """Item (index, seed) -> (image at the input size, label, its augmentations' draws), or a bad file's
    (path, reason). `collate` makes the batch: floats, augmentation applied per batch, normalised.

    Only paths and labels are held; a worker decodes the file when asked. Each image's draws come from its
    own generator, seeded by the sampler; applying them per batch costs a fraction of doing it per image.
    """

    split: FolderSplit
    shape: tuple[int, int, int]
    mean: torch.Tensor  # (C, 1, 1)
    std: torch.Tensor
    augment: tuple[Augmentation, ...] = ()

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, item: tuple[int, int]):
        index, seed = item
        path, label = self.split.paths[index], int(self.split.labels[index])
        try:
            pixels = decode(pillow(), path, "L" if self.shape[0] == 1 else "RGB")
        except BadImage as bad:
            return bad.path, bad.reason  # reported (or skipped) by the main process, which knows the policy
        generator = torch.Generator().manual_seed(seed) if self.augment else None
        size = self.shape[1:]
        if self._crops_natively:  # crop at native resolution, then resize
            box = self.augment[0].draw(1, pixels.shape[1], pixels.shape[2], generator)
            image = self.augment[0].crop_to(torch.tensor(pixels)[None].float().div_(255), box, size)[0]
        else:
            image = _convert(pixels[None], pixels.shape[0], size)[0]  # uint8
        return image, label, tuple(a.draw(1, *size, generator) for a in self._batch_augment)

    @property
    def _crops_natively(self) -> bool:
        return bool(self.augment) and isinstance(self.augment[0], RandomResizedCrop)

    @property
    def _batch_augment(self) -> tuple[Augmentation, ...]:
        return self.augment[1:] if self._crops_natively else self.augment

    def collate(self, items: list) -> tuple[torch.Tensor, torch.Tensor, list[tuple[str, str]]]:
        """Stack the good images, augment and normalise them; pass the bad files' (path, reason) along."""
        good = [item for item in items if len(item) == 3]
        bad = [item for item in items if len(item) == 2]
        if not good:
            return torch.empty(0), torch.empty(0, dtype=torch.long), bad
        images = torch.stack([image for image, _, _ in good])
        if images.dtype == torch.uint8:
            images = _to_float(images, self.shape)
        else:
            images = images.expand(-1, self.shape[0], -1, -1)
        for k, augmentation in enumerate(self._batch_augment):
            images = augmentation.apply(images, torch.cat([draws[k] for _, _, draws in good]))
        labels = torch.tensor([label for _, label, _ in good])
        return ((images - self.mean) / self.std).contiguous(), labels, bad

    def raw(self, index: int) -> torch.Tensor:
        """uint8 (C, H, W) at the input size, not augmented or normalised (for the normalisation statistics)."""
        pixels = decode(pillow(), self.split.paths[index], "L" if self.shape[0] == 1 else "RGB")
        return _convert(pixels[None], self.shape[0], self.shape[1:])[0]


class _EpochBatches:
    """A batch sampler: this rank's epoch order in batches of (index, augmentation seed), drawn per iteration."""

    def __init__(self, count: int, batch_size: int, shuffle: bool, generator: torch.Generator | None, rank: int,
                 world_size: int, drop_last: bool, augmenting: bool):
        self.count, self.batch_size, self.shuffle, self.generator = count, batch_size, shuffle, generator
        self.rank, self.world_size, self.drop_last, self.augmenting = rank, world_size, drop_last, augmenting

    def __len__(self) -> int:
        return batch_count(self.count, self.batch_size, self.world_size, self.drop_last)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        order = shard_order(self.count, self.shuffle, self.generator, self.rank, self.world_size)
        base = 0
        if self.augmenting and self.generator is not None:  # drawn after the order, identically on every rank
            base = int(torch.randint(1 << 62, (1,), generator=self.generator))
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            indices = order[start : start + self.batch_size].tolist()
            yield [(i, (base + i * _SEED_MIX) & _SEED_MASK) for i in indices]


class StreamLoader:
    """One split's batches as (float32 (B, C, H, W) normalised images, int64 (B,) labels), read by workers.

    The same contract as data.BatchLoader: each iteration is one epoch, ranks
    read disjoint shards of an order all ranks agree on. A bad file ends the
    iteration with DataError naming it, or with `skip_bad` is dropped from its
    batch and recorded in `skipped`.
    """

    def __init__(self, dataset: FolderImages, batches: _EpochBatches, workers: int, pin_memory: bool,
                 skip_bad: bool):
        self.dataset, self.batches, self.workers = dataset, batches, workers
        self.pin_memory, self.skip_bad = pin_memory, skip_bad
        self.skipped: list[tuple[str, str]] = []

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_sampler=self.batches, num_workers=self.workers, collate_fn=self.dataset.collate,
            pin_memory=self.pin_memory, prefetch_factor=2 if self.workers else None,
            worker_init_fn=_worker_init if self.workers else None)
        with forking_workers():
            iterator = iter(loader)  # forks the workers
        try:
            while True:
                try:
                    images, labels, bad = next(iterator)
                except StopIteration:
                    return
                except (ArchError, KeyboardInterrupt):
                    raise
                except Exception as error:  # a worker died or raised: its message, without the traceback
                    raise loader_failure(error) from None
                for path, reason in bad:
                    if not self.skip_bad:
                        raise DataError(str(BadImage(path, reason).message))
                    self.skipped.append((path, reason))
                if len(labels):
                    yield images, labels
        finally:
            del iterator  # shuts the workers down now, also when the epoch is abandoned (Ctrl-C, an error)


@contextlib.contextmanager
def forking_workers():
    """Hold Ctrl-C back while loader workers are forked: they start with it blocked (see _worker_init), and
    the main process gets a Ctrl-C pressed meanwhile as soon as they are started."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def _worker_init(_worker_id: int) -> None:
    """Each loader worker: leave Ctrl-C to the main process, and give its batches' memory back.

    Ctrl-C reaches a terminal's whole process group; only the main process acts on it, and it stops the
    workers itself (a worker that died of it first would look like a crash). glibc raises its threshold
    for returning large blocks to the system as blocks are freed, so a worker making a 1.5 MB batch after
    another kept up to 150 MB of freed heap (measured on 64x64 images, batch 32); a fixed threshold keeps
    it at ~15 MB.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.excepthook = _worker_excepthook
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, 128 * 1024)
    except (OSError, AttributeError):  # not glibc
        pass


def _worker_excepthook(kind, value, traceback) -> None:
    """What a loader worker prints of an error no code of its own caught: one line, or nothing.

    A worker's errors in loading reach the main process through torch's queue, which
    reports them. What is left for this hook is multiprocessing's resource sharer: a
    thread that hands the main process the worker's shared memory, and calls
    sys.excepthook (a traceback on the terminal the user shares) when the main process
    hangs up in the middle, as it does when it stops its workers after Ctrl-C.
    """
    import multiprocessing

    if issubclass(kind, (ConnectionError, EOFError, multiprocessing.AuthenticationError)):
        return  # the main process hung up: it is stopping, and says why itself
    print(f"archdsl: loader worker {os.getpid()}: {kind.__name__}: {value}", file=sys.stderr)


def is_worker_failure(error: BaseException) -> bool:
    """torch's own report of a loader worker that died, raised from its SIGCHLD handler wherever the main
    process happens to be (in a training step too)."""
    return isinstance(error, RuntimeError) and str(error).startswith("DataLoader worker")


def as_data_error(error: BaseException) -> DataError | None:
    """`error` as the DataError a user reads: itself, or torch's report of a worker that died; else None."""
    if isinstance(error, DataError):
        return error
    return loader_failure(error) if is_worker_failure(error) else None


def loader_failure(error: Exception) -> DataError:
    """A loader's failure (a worker that died or raised) as the DataError a user reads; the watch on the
    other workers ends with it."""
    stop_watching_workers()
    return DataError(f"data loading failed: {_worker_message(error)}")


@contextlib.contextmanager
def worker_deaths_as_data_errors() -> Iterator[None]:
    """Run the block with torch's report of a loader worker that died (from anywhere in it) as a DataError."""
    try:
        yield
    except RuntimeError as err:
        data_error = as_data_error(err)
        if data_error is None:
            raise
        raise data_error from None


def stop_watching_workers() -> None:
    """A worker's failure ends the command: from here the other workers' deaths are no news.

    torch reports each worker that dies from its SIGCHLD handler, as a RuntimeError raised
    wherever the main process happens to be, for as long as the loader's iterator lives;
    and the error being reported keeps it alive. A second worker killed with the first
    then broke into the report of the first (an "internal error", exit 3).
    """
    import threading

    if hasattr(signal, "SIGCHLD") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def _worker_message(error: Exception) -> str:
    """The useful part of a DataLoader error: the worker's own exception line, or how it died."""
    text = str(error).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    if "Original Traceback" in text and lines:  # re-raised from a worker: the last line is its exception
        return f"a loader worker raised {type(error).__name__}: {lines[-1].strip()}"
    return text or type(error).__name__


@dataclass(frozen=True, eq=False)
class StreamSplits(NamedSplits):
    """An image folder's splits, streamed: the interface of data.DataSplits."""

    train: FolderSplit
    val: FolderSplit
    test: FolderSplit
    info: DatasetInfo
    folder: ImageFolder

    streamed = True  # read from disk batch by batch (data.DataSplits: decoded into memory)

    def loader(
        self,
        split: str,
        batch_size: int,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        augment: Sequence[Augmentation] = (),
        rank: int = 0,
        world_size: int = 1,
        *,
        drop_last: bool = False,
        workers: int = 0,
        pin_memory: bool = False,
        skip_bad: bool = False,
    ) -> StreamLoader:
        check_loader(batch_size, shuffle, generator, rank, world_size)
        dataset = self._dataset(split, tuple(augment))
        batches = _EpochBatches(len(dataset), batch_size, shuffle, generator, rank, world_size, drop_last,
                                bool(augment))
        return StreamLoader(dataset, batches, workers, pin_memory, skip_bad)

    def _dataset(self, split: str, augment: tuple[Augmentation, ...] = ()) -> FolderImages:
        mean = torch.tensor(self.info.mean).view(-1, 1, 1)
        std = torch.tensor(self.info.std).view(-1, 1, 1)
        return FolderImages(self.split(split), self.info.input_shape, mean, std, augment)

    def to(self, device) -> "StreamSplits":
        return self  # batches are made on the CPU by the workers and moved by the training loop


def stream_splits(folder: ImageFolder, parts: tuple[FolderSplit, ...], shape: tuple[int, int, int], source: str,
                  normalize: Normalize, seed: int, workers: int) -> StreamSplits:
    train, val, test = parts
    sample = _stats_sample(FolderImages(train, shape, torch.zeros(shape[0], 1, 1), torch.ones(shape[0], 1, 1)),
                           seed, workers) if normalize == "dataset" else None
    mean, std = _normalization(normalize, sample, shape[0])
    info = DatasetInfo("folder", source, folder.class_names, folder.channels, folder.native_size, shape, mean, std)
    return StreamSplits(train, val, test, info, folder)


def _stats_sample(dataset: FolderImages, seed: int, workers: int) -> torch.Tensor:
    """uint8 (n, C, H, W): up to STATS_SAMPLE training images chosen by the seed, decoded in `workers` processes."""
    count = len(dataset)
    if not count:
        return torch.zeros(0, *dataset.shape, dtype=torch.uint8)
    chosen = np.sort(np.random.default_rng(seed).permutation(count)[:STATS_SAMPLE]) if count > STATS_SAMPLE \
        else np.arange(count)
    loader = torch.utils.data.DataLoader(_Raw(dataset, chosen), batch_size=64, num_workers=workers,
                                         collate_fn=_collate_raw, worker_init_fn=_worker_init if workers else None)
    try:
        with forking_workers():
            iterator = iter(loader)
        return torch.cat(list(iterator))
    except ArchError:
        raise
    except Exception as error:
        raise loader_failure(error) from None


@dataclass(frozen=True, eq=False)
class _Raw(torch.utils.data.Dataset):
    dataset: FolderImages
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        try:
            return self.dataset.raw(int(self.indices[i]))
        except BadImage as bad:
            return bad.path, bad.reason


def _collate_raw(items: list) -> torch.Tensor:
    good = [item for item in items if isinstance(item, torch.Tensor)]
    return torch.stack(good) if good else torch.zeros(0, dtype=torch.uint8)


def describe_skipped(skipped: Sequence[tuple[str, str]], limit: int = 5) -> str:
    """'N files: a.png (why), b.png (why), … and K more'."""
    shown = "; ".join(f"{path} ({reason})" for path, reason in skipped[:limit])
    more = f"; and {len(skipped) - limit} more" if len(skipped) > limit else ""
    return f"{len(skipped)} file{'s' if len(skipped) != 1 else ''}: {shown}{more}"

"""The dataset layer of training: from a spec's `dataset` to batches of tensors.

    read_source         decode the source into uint8 images at native size
    _split              seeded, stratified train/val/test partition
    _store              map channels and resize once, kept as uint8
    BatchLoader         per batch: float, grey->colour, augment, normalise

Images stay uint8 until a batch is drawn: CIFAR-10 is 180 MB that way and four
times that as float32. Everything random is drawn from explicit generators, so
a seed reproduces a run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, ClassVar, Iterator, Literal, Protocol, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from archdsl.errors import ArchError, did_you_mean
from archdsl.train.config import AUGMENTATIONS as ARGUMENT_RANGES
from archdsl.train.datasets import RawDataset, RawSplit, read_source
from archdsl.train.datasets.folder import ImageFolder

if TYPE_CHECKING:
    from archdsl.train.datasets.stream import StreamSplits

SPLITS = ("train", "val", "test")
Normalize = Union[Literal["dataset", "none"], tuple[Sequence[float], Sequence[float]]]

_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, the weights of Pillow's convert("L")
_EAGER_RESIZE_BYTES = 2 << 30  # a split larger than this once resized stays native, resized per batch
_CHUNK_PIXELS = 1 << 24  # pixels converted at a time: bounds float32 scratch to 64 MB


@dataclass(frozen=True)
class DatasetInfo:
    """What the data is, as read from it, and how batches are normalised."""

    kind: str  # digits | idx | cifar10 | cifar100 | folder
    source: str
    class_names: tuple[str, ...]
    native_channels: int
    native_size: tuple[int, int] | None  # None: an image folder whose images differ in size
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]  # per input channel, on the [0, 1] scale
    std: tuple[float, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True, eq=False)
class Split:
    """One split, stored compactly.

    `images` is uint8 (N, C, H, W) with C = 1 when grey images feed a colour
    input (replicated per batch), and H, W native when resizing the whole split
    up front would exceed `_EAGER_RESIZE_BYTES` (resized per batch instead).
    """

    images: torch.Tensor
    labels: torch.Tensor  # int64 (N,)

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device | str) -> "Split":
        return Split(self.images.to(device), self.labels.to(device))


class Augmentation(Protocol):
    """A random change of a batch, in two steps so that each image's draws can come from its own generator:

        draw(n, height, width, generator) -> params (a tensor, one row per image)
        apply(images, params) -> images

    Calling it draws for the whole batch from one generator (data in memory); streamed data draws each
    image's row from the image's own generator and applies them per batch (see datasets/stream.py).
    """

    def draw(self, n: int, height: int, width: int, generator: torch.Generator | None) -> torch.Tensor: ...

    def apply(self, images: torch.Tensor, params: torch.Tensor) -> torch.Tensor: ...

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor: ...


class _DrawThenApply:
    name: ClassVar[str]  # the spec's name for it

    def __post_init__(self) -> None:
        """Each argument in the range a spec's `augment` is read with (config.AUGMENTATIONS)."""
        for arg, allowed in ARGUMENT_RANGES[self.name].items():
            allowed.check(getattr(self, arg), f"{self.name}: argument '{arg}'", None)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        n, _, height, width = images.shape
        return self.apply(images, self.draw(n, height, width, generator))


@dataclass(frozen=True)
class RandomCrop(_DrawThenApply):
    """Pad each side by `pad` zeros (black: it runs before normalising) and crop back at a random offset."""

    name = "crop"
    pad: int = 4

    def draw(self, n: int, height: int, width: int, generator: torch.Generator | None) -> torch.Tensor:
        if self.pad == 0:
            return torch.zeros(n, 2, dtype=torch.long)
        return torch.randint(0, 2 * self.pad + 1, (2, n), generator=generator).T  # (n, 2): dy, dx

    def apply(self, images: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        if self.pad == 0:
            return images
        n, _, h, w = images.shape
        dy, dx = params.T.to(images.device)
        # A view of every (h, w) window of the padded images: (n, c, 2p+1, 2p+1, h, w), one picked per image.
        windows = F.pad(images, (self.pad,) * 4).unfold(2, h, 1).unfold(3, w, 1)
        return windows[torch.arange(n, device=images.device), :, dy, dx]


@dataclass(frozen=True)
class HorizontalFlip(_DrawThenApply):
    """Mirror each image left-right with probability `p`."""

    name = "flip"
    p: float = 0.5

    def draw(self, n: int, height: int, width: int, generator: torch.Generator | None) -> torch.Tensor:
        return torch.rand(n, generator=generator) < self.p

    def apply(self, images: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        return torch.where(params.to(images.device)[:, None, None, None], images.flip(-1), images)


@dataclass(frozen=True)
class RandomResizedCrop(_DrawThenApply):
    """A random part of each image, stretched back to full size: AlexNet's and ResNet's scale augmentation.

    The part covers a uniform `min_scale`..1 of the area with an aspect ratio
    log-uniform in 1/`max_ratio`..`max_ratio` (torchvision's RandomResizedCrop,
    after ten tries a centre crop). Streamed image folders crop the decoded
    image at its native size, before it is resized to the input.
    """

    name = "resized_crop"
    min_scale: float = 0.08
    max_ratio: float = 4 / 3

    def draw(self, n: int, height: int, width: int, generator: torch.Generator | None) -> torch.Tensor:
        return torch.tensor([self._box(height, width, generator) for _ in range(n)], dtype=torch.long).view(n, 4)

    def apply(self, images: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        return self.crop_to(images, params, tuple(images.shape[-2:]))

    def crop_to(self, images: torch.Tensor, boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Each image's box (top, left, height, width), resized to `size` (H, W)."""
        crops = []
        for image, (top, left, h, w) in zip(images, boxes.tolist()):
            crops.append(_resize(image[None, :, top : top + h, left : left + w], size))
        return torch.cat(crops)

    def _box(self, height: int, width: int, generator: torch.Generator | None) -> tuple[int, int, int, int]:
        area = height * width
        log_ratio = math.log(self.max_ratio)
        for _ in range(10):
            scale, ratio, y, x = torch.rand(4, generator=generator).tolist()
            target = area * (self.min_scale + (1 - self.min_scale) * scale)
            aspect = math.exp((2 * ratio - 1) * log_ratio)
            w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                return int(y * (height - h + 1)), int(x * (width - w + 1)), h, w
        side = min(height, width)
        return (height - side) // 2, (width - side) // 2, side, side


@dataclass(frozen=True)
class ColorJitter(_DrawThenApply):
    """Random brightness, contrast and saturation per image, each a factor in 1 ± its value (on [0, 1] pixels)."""

    name = "jitter"
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4

    def draw(self, n: int, height: int, width: int, generator: torch.Generator | None) -> torch.Tensor:
        spread = torch.tensor([self.brightness, self.contrast, self.saturation])
        return 1 + (2 * torch.rand(n, 3, generator=generator) - 1) * spread  # (n, 3) factors

    def apply(self, images: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        n, channels = images.shape[:2]
        factors = params.to(images.device)
        b, c, s = (factors[:, i].view(n, 1, 1, 1) for i in range(3))
        images = images * b
        grey = _luma(images) if channels == 3 else images
        mean = grey.mean(dim=(1, 2, 3), keepdim=True)
        images = (images - mean) * c + mean
        if channels == 3:
            grey = _luma(images)
            images = grey + (images - grey) * s
        return images.clamp(0, 1)


def _luma(images: torch.Tensor) -> torch.Tensor:
    return (images * torch.tensor(_LUMA, device=images.device).view(1, 3, 1, 1)).sum(1, keepdim=True)


AUGMENTATIONS = {kind.name: kind for kind in (RandomCrop, HorizontalFlip, RandomResizedCrop, ColorJitter)}


def make_augment(name: str, **params: float) -> Augmentation:
    """The augmentation a spec names, e.g. make_augment("crop", pad=4)."""
    if name not in AUGMENTATIONS:
        raise ArchError(
            f"unknown augmentation '{name}'; expected one of {', '.join(AUGMENTATIONS)}"
            + did_you_mean(name, AUGMENTATIONS)
        )
    kind = AUGMENTATIONS[name]
    accepted = [field.name for field in fields(kind)]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ArchError(f"augmentation '{name}' takes {', '.join(accepted)}, got {', '.join(unknown)}; remove them")
    return kind(**params)


@dataclass(frozen=True, eq=False)
class BatchLoader:
    """Batches of one split as (float32 (B, C, H, W) normalised images, int64 (B,) labels).

    With `world_size` > 1 this rank reads every world_size-th index of the
    epoch's order, padded by wrapping around so that all ranks get the same
    number of batches (as torch's DistributedSampler does); shuffling ranks must
    then pass generators seeded identically (e.g. seed + epoch) so that they
    agree on the order. Each iteration is one epoch and advances `generator`.
    Batches live where the split does (see DataSplits.to); random draws are
    made on the CPU generator, so a seed gives the same batches on any device.
    """

    split: Split
    input_shape: tuple[int, int, int]
    mean: torch.Tensor  # (C, 1, 1)
    std: torch.Tensor
    batch_size: int
    shuffle: bool = False
    generator: torch.Generator | None = None
    augment: tuple[Augmentation, ...] = ()
    rank: int = 0
    world_size: int = 1
    drop_last: bool = False

    skipped = ()  # images in memory were all decoded: none is ever skipped (see stream.StreamLoader)

    def __post_init__(self) -> None:
        check_loader(self.batch_size, self.shuffle, self.generator, self.rank, self.world_size)

    def __len__(self) -> int:
        return batch_count(len(self.split), self.batch_size, self.world_size, self.drop_last)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = shard_order(len(self.split), self.shuffle, self.generator, self.rank, self.world_size)
        generator = self._augment_generator()
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order[start : start + self.batch_size].to(self.split.images.device)
            images = _to_float(self.split.images[index], self.input_shape)
            for augmentation in self.augment:
                images = augmentation(images, generator)
            yield (images - self.mean) / self.std, self.split.labels[index]

    def _augment_generator(self) -> torch.Generator | None:
        """This rank's own generator: ranks share `generator`'s state, and identical crops on every rank waste them."""
        if not self.augment or self.generator is None:
            return None
        seed = int(torch.randint(1 << 62, (1,), generator=self.generator))
        return torch.Generator().manual_seed(seed + self.rank)


def check_loader(batch_size: int, shuffle: bool, generator: torch.Generator | None, rank: int,
                 world_size: int) -> None:
    """What a loader of either kind (BatchLoader, stream.StreamLoader) needs of its arguments."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    if shuffle and world_size > 1 and generator is None:
        raise ValueError("sharded shuffling needs a generator seeded identically on every rank")


def shard_order(count: int, shuffle: bool, generator: torch.Generator | None, rank: int = 0,
                world_size: int = 1) -> torch.Tensor:
    """The indices rank `rank` reads in one epoch: every world_size-th of the epoch's order.

    The order is a permutation drawn from `generator` (or 0..count-1), padded by
    wrapping around so that every rank gets ceil(count / world_size) indices, as
    torch's DistributedSampler does. In-memory and streamed data both read it.
    """
    order = torch.randperm(count, generator=generator) if shuffle else torch.arange(count)
    padded = math.ceil(count / world_size) * world_size
    if padded > count:
        order = order.repeat(math.ceil(padded / count))[:padded]
    return order[rank::world_size]


def batch_count(count: int, batch_size: int, world_size: int, drop_last: bool) -> int:
    """Batches per epoch on each rank."""
    whole, part = divmod(math.ceil(count / world_size), batch_size)
    return whole + (part > 0 and not drop_last)


class NamedSplits:
    """What DataSplits and stream.StreamSplits share: a split by its name."""

    def split(self, name: str):
        if name not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {name!r}")
        return getattr(self, name)


@dataclass(frozen=True, eq=False)
class DataSplits(NamedSplits):
    train: Split
    val: Split
    test: Split
    info: DatasetInfo

    streamed = False  # decoded into memory (see stream.StreamSplits for the other kind)

    def to(self, device: torch.device | str) -> "DataSplits":
        """The splits moved to `device`: on a GPU, batches are then cut and augmented there."""
        return DataSplits(self.train.to(device), self.val.to(device), self.test.to(device), self.info)

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
    ) -> BatchLoader:
        """Batches of `split`; see BatchLoader. drop_last avoids a last batch of one, which BatchNorm rejects.

        `workers`, `pin_memory` and `skip_bad` are for streamed data (see stream.StreamSplits); tensors in memory
        need none of them.
        """
        chosen = self.split(split)
        device = chosen.images.device
        return BatchLoader(
            chosen,
            self.info.input_shape,
            torch.tensor(self.info.mean, device=device).view(-1, 1, 1),
            torch.tensor(self.info.std, device=device).view(-1, 1, 1),
            batch_size,
            shuffle,
            generator,
            tuple(augment),
            rank,
            world_size,
            drop_last,
        )


def load_dataset(
    source: str,
    input_shape: tuple[int, ...],
    *,
    seed: int,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    normalize: Normalize = "dataset",
    skip_bad: bool = False,
    workers: int = 0,
) -> "DataSplits | StreamSplits":
    """Read `source`, split it and store it resized to `input_shape` (C, H, W).

    `source` is "digits" (scikit-learn's 8x8 digits) or a folder: MNIST-style
    IDX files, CIFAR-10/100 python batches, or one image subfolder per class
    (optionally inside train/, val/, test/). A split the source lacks is carved
    out of its training images, stratified by class: `test_fraction` and
    `val_fraction` of them. `normalize` is "dataset" (per-channel mean and std
    of the training split), "none" (pixels in [0, 1]) or explicit (mean, std).

    Digits, IDX and CIFAR are decoded into memory (DataSplits); an image folder
    is listed, not decoded, and streamed from disk by `workers` processes
    (StreamSplits, the same interface); `skip_bad` leaves its unreadable files out.
    """
    _check_fractions(val_fraction, test_fraction)
    raw = read_source(source, skip_bad=skip_bad)
    shape = _check_input_shape(tuple(input_shape), raw, source)
    parts = _split(raw, val_fraction, test_fraction, seed, source)
    if isinstance(raw, ImageFolder):
        from archdsl.train.datasets.stream import stream_splits

        return stream_splits(raw, parts, shape, source, normalize, seed, workers)
    train, val, test = (_store(part, shape) for part in parts)
    mean, std = _normalization(normalize, train.images, shape[0])
    info = DatasetInfo(raw.kind, source, raw.class_names, raw.channels, raw.native_size, shape, mean, std)
    return DataSplits(train, val, test, info)


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ArchError(
            f"expected val and test fractions >= 0 that leave training data (sum < 1), got val {val_fraction} "
            f"and test {test_fraction}; lower them"
        )


def _check_input_shape(shape: tuple[int, ...], raw: RawDataset | ImageFolder, source: str) -> tuple[int, int, int]:
    """The spec input as (C, H, W), if the data's images can be mapped onto it."""
    if len(shape) == 3 and shape[0] in (1, 3) and all(isinstance(d, int) and d > 0 for d in shape):
        return shape  # type: ignore[return-value]
    if raw.native_size is None:
        native, example = f"{raw.channels}-channel", f"({raw.channels}, H, W)"
    else:
        height, width = raw.native_size
        native, example = f"{raw.channels}x{height}x{width}", f"({raw.channels}, {height}, {width})"
    raise ArchError(
        f"dataset '{source}' holds {native} images, which cannot feed the spec input {shape}; expected an "
        f"input of (channels, height, width) with 1 or 3 channels; declare it as e.g. {example} "
        "(images are resized to it)"
    )


def _split(raw: RawDataset | ImageFolder, val_fraction: float, test_fraction: float, seed: int, source: str) -> tuple[RawSplit, ...]:
    """(train, val, test): the source's own splits, the missing ones carved out of its pool."""
    pool = raw.pool
    count = len(pool)
    n_test = 0 if raw.test is not None else round(count * test_fraction)
    n_val = 0 if raw.val is not None else round(count * val_fraction)
    if n_test + n_val >= count:
        raise ArchError(
            f"dataset '{source}' has {count} training images, too few to hold out {n_val} for validation "
            f"and {n_test} for test; add images or lower val_fraction/test_fraction"
        )
    rng = np.random.default_rng(seed)
    test_index, rest = stratified_take(pool.labels, np.arange(count), n_test, rng)
    val_index, train_index = stratified_take(pool.labels, rest, n_val, rng)
    return (
        pool.take(train_index),
        raw.val if raw.val is not None else pool.take(val_index),
        raw.test if raw.test is not None else pool.take(test_index),
    )


def stratified_take(
    labels: np.ndarray, candidates: np.ndarray, count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(taken, rest): `count` random `candidates`, each class giving its share.

    Shares are rounded by largest remainder in exact integer arithmetic, so
    every class gets within one of its proportional share and the total is exact.
    """
    if count == 0:
        return candidates[:0], candidates
    classes, sizes = np.unique(labels[candidates], return_counts=True)
    quotas = count * sizes
    takes = quotas // len(candidates)
    short = count - int(takes.sum())
    takes[np.argsort(-(quotas % len(candidates)), kind="stable")[:short]] += 1
    taken = np.concatenate([
        rng.permutation(candidates[labels[candidates] == label])[:take] for label, take in zip(classes, takes)
    ])
    taken.sort()
    return taken, np.setdiff1d(candidates, taken, assume_unique=True)


def _store(part: RawSplit, shape: tuple[int, int, int]) -> Split:
    """`part` as uint8 tensors, channels mapped and (if it fits in memory) resized to `shape`."""
    channels, height, width = shape
    labels = torch.from_numpy(np.array(part.labels, dtype=np.int64))
    count, native_channels, native_height, native_width = part.images.shape
    stored_channels = min(native_channels, channels)  # 1 -> 3 is replicated per batch
    eager = count * stored_channels * height * width <= _EAGER_RESIZE_BYTES
    size = (height, width) if eager else (native_height, native_width)
    images = torch.empty((count, stored_channels, *size), dtype=torch.uint8)
    step = max(1, _CHUNK_PIXELS // (native_channels * max(native_height * native_width, height * width)))
    for start in range(0, count, step):
        images[start : start + step] = _convert(part.images[start : start + step], stored_channels, size)
    return Split(images, labels)


def _convert(images: np.ndarray, channels: int, size: tuple[int, int]) -> torch.Tensor:
    """uint8 (N, C, H, W) with colour reduced to luminance when `channels` is 1, resized to `size`."""
    tensor = torch.tensor(images)  # a copy: IDX arrays are read-only views of the file's bytes
    if tensor.shape[1] == channels and tuple(tensor.shape[-2:]) == size:
        return tensor
    pixels = tensor.float()
    if pixels.shape[1] != channels:
        pixels = (pixels * torch.tensor(_LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
    if tuple(pixels.shape[-2:]) != size:
        pixels = _resize(pixels, size)
    return pixels.round_().clamp_(0, 255).to(torch.uint8)


def _resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    # Antialiasing matters when shrinking (224 -> 32) and is a no-op when enlarging.
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)


def _to_float(images: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """A stored uint8 batch as float32 in [0, 1] of exactly `shape` per image."""
    pixels = images.float().div_(255)
    if tuple(pixels.shape[-2:]) != shape[1:]:
        pixels = _resize(pixels, shape[1:])
    return pixels.expand(-1, shape[0], -1, -1)


def _normalization(normalize: Normalize, train_images: torch.Tensor | None,
                   channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per input channel; `train_images` (uint8) are needed only for "dataset"."""
    if normalize == "none":
        return (0.0,) * channels, (1.0,) * channels
    if normalize == "dataset":
        mean, std = _channel_stats(train_images)
        # A constant channel would divide by zero; leave it unscaled instead.
        std = tuple(s if s > 0 else 1.0 for s in std)
        return _per_channel(mean, channels), _per_channel(std, channels)
    return _explicit_normalization(normalize, channels)


def _channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and std of uint8 images on the [0, 1] scale, via 256-bin histograms."""
    values = torch.arange(256, dtype=torch.float64) / 255
    means, stds = [], []
    for channel in range(images.shape[1]):
        counts = torch.bincount(images[:, channel].reshape(-1), minlength=256).double()
        total = counts.sum()
        mean = float((counts * values).sum() / total)
        variance = float((counts * (values - mean) ** 2).sum() / total)
        means.append(mean)
        stds.append(math.sqrt(variance))
    return tuple(means), tuple(stds)


def _per_channel(values: tuple[float, ...], channels: int) -> tuple[float, ...]:
    return values * channels if len(values) == 1 else values


def _explicit_normalization(normalize: object, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    expected = f"expected normalize 'dataset', 'none' or (mean, std) with 1 or {channels} values each"
    try:
        if isinstance(normalize, str) or len(normalize) != 2:  # type: ignore[arg-type]
            raise TypeError
        mean, std = (tuple(float(v) for v in values) for values in normalize)  # type: ignore[union-attr]
    except (TypeError, ValueError) as error:
        raise ArchError(f"{expected}, got {normalize!r}; use one of those") from error
    if {len(mean), len(std)} - {1, channels} or min(std) <= 0:
        raise ArchError(f"{expected} and std > 0, got mean {mean} and std {std}; fix the values")
    return _per_channel(mean, channels), _per_channel(std, channels)

"""The streaming data pipeline: memory against data-set size, and whether it keeps the model fed.

    python benchmarks/data_pipeline.py [--sizes 2000 20000] [--dir DIR] [--rounds 3] [--workers 2]

1. Generates image folders of 64x64 images (half PNG, half JPEG; 10 classes of
   shapes on noise) of each size under --dir (kept: a second run reuses them).
2. Peak memory: for each size, one whole `archdsl train --epochs 1` process
   (2 workers, training on one thread), sampled every 0.2 s with psutil: the main process's peak RSS,
   and the peak of the whole tree's USS (the workers' private memory included;
   pages shared with the main process after fork are counted once).
3. Throughput: in this process, training epochs of the same model on the
   smallest folder, streamed (workers decoding PNG/JPEG, augmenting per image)
   and from in-memory uint8 tensors of the same images (augmenting per batch),
   taking turns round by round so that load on the shared machine hits both
   alike; the ratio is the median of the rounds' ratios. Also the share of each
   streamed epoch the training loop spent waiting for a batch (a starved model
   waits; one slowed by the workers' competing for the CPU does not), and the
   loader alone.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

SPEC = """network bench64
input 3x64x64
conv3-16 relu maxpool2
conv3-32 relu maxpool2
conv3-32 relu maxpool2
fc-128 relu
fc-10
"""
CLASSES = 10
BATCH = 32  # with this model: under device.SMALL_BATCH_MACS, so training takes one thread and the workers the other core
AUGMENT = "[crop(pad=4), flip]"


def generate(folder: Path, count: int, seed: int = 0) -> None:
    """`count` 64x64 images: class k is a bright square at a place of its own, on noise; a marker file when done."""
    from PIL import Image

    done = folder / ".complete"
    if done.exists():
        return
    rng = np.random.default_rng(seed)
    for label in range(CLASSES):
        (folder / f"class{label}").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        label = i % CLASSES
        pixels = rng.integers(0, 120, (64, 64, 3), dtype=np.uint8)
        y, x = 6 * (label // 4) + rng.integers(0, 20), 12 * (label % 4) + rng.integers(0, 8)
        pixels[y : y + 16, x : x + 16] = 200 + rng.integers(0, 55, 3, dtype=np.uint8)
        path = folder / f"class{label}" / f"{i:06d}"
        if i % 2:
            Image.fromarray(pixels).save(path.with_suffix(".png"))
        else:
            Image.fromarray(pixels).save(path.with_suffix(".jpg"), quality=90)
    done.write_text("")


def peak_memory(spec: Path, folder: Path, out: Path, workers: int) -> dict:
    """Train one epoch in a fresh process; peak RSS of the main process and peak USS of the whole tree (MB)."""
    import psutil

    command = [sys.executable, "-m", "archdsl", "train", str(spec), "--dataset", str(folder), "--epochs", "1",
               "--batch-size", str(BATCH), "--augment", AUGMENT, "--workers", str(workers), "--out", str(out),
               "--no-tensorboard", "--no-progress"]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    main = psutil.Process(process.pid)
    peak = {"main_rss": 0, "tree_uss": 0}
    samples: list[int] = []

    def sample() -> None:
        while process.poll() is None:
            try:
                tree = [main, *main.children(recursive=True)]
                rss = main.memory_info().rss
                samples.append(rss)
                peak["main_rss"] = max(peak["main_rss"], rss)
                peak["tree_uss"] = max(peak["tree_uss"], sum(p.memory_full_info().uss for p in tree))
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
            time.sleep(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    stdout, stderr = process.communicate()
    sampler.join()
    if process.returncode:
        raise SystemExit(f"training failed:\n{stderr[-3000:]}")
    epoch = next(line for line in stdout.splitlines() if line.startswith("epoch 1/1"))
    return {"main_rss_mb": peak["main_rss"] / 2**20, "tree_uss_mb": peak["tree_uss"] / 2**20,
            "main_rss_median_mb": statistics.median(samples) / 2**20 if samples else 0.0,
            "wall_s": time.perf_counter() - started, "epoch": epoch}


def throughput(spec: Path, folder: Path, rounds: int, workers: int) -> list[tuple[float, float]]:
    """(streamed img/s, in-memory img/s) per round: one training epoch each, taking turns."""
    import torch

    import archdsl
    from archdsl.train.config import overrides_from_pairs, resolve_config
    from archdsl.train.data import DataSplits, Split
    from archdsl.train.device import cpu_threads, place
    from archdsl.train.loop import _augmentations, epoch_generator, make_loss, run_epoch
    from archdsl.train import optim

    net = archdsl.load(spec)
    config = resolve_config(net.train_settings, overrides_from_pairs(
        [f"dataset={folder}", f"batch_size={BATCH}", f"augment={AUGMENT}"]))
    from archdsl.train.data import load_dataset

    streamed = load_dataset(str(folder), net.input_shape, seed=0, workers=workers)
    # The same training images, decoded once into uint8 tensors at the input size (what the old path held).
    dataset = streamed._dataset("train")
    images = torch.stack([dataset.raw(i) for i in range(len(dataset))])
    empty = Split(images[:0], torch.zeros(0, dtype=torch.long))
    memory = DataSplits(Split(images, torch.from_numpy(streamed.train.labels)), empty, empty, streamed.info)
    placement = place("cpu")
    torch.set_num_threads(cpu_threads(net.macs * BATCH))
    augment = _augmentations(config)
    names = list(net.output_nodes)
    results = []
    for round_ in range(rounds):
        measured = {}
        for kind, data, loader_workers in (("streamed", streamed, workers), ("memory", memory, 0)):
            torch.manual_seed(0)
            model = net.to_torch()
            optimizer = optim.make_optimizer(model.parameters(), config)
            loader = _Waits(data.loader("train", BATCH, True, epoch_generator(0, round_), augment,
                                        workers=loader_workers))
            start = time.perf_counter()
            tally = run_epoch(model, loader, make_loss(config, names), names, placement, optimizer)
            wall = time.perf_counter() - start
            measured[kind] = tally.count / wall
            measured[f"{kind} wait"] = loader.waited / wall
        results.append((measured["streamed"], measured["memory"]))
        print(f"  round {round_ + 1}: streamed {measured['streamed']:,.0f} img/s (waiting for data "
              f"{measured['streamed wait']:.1%} of the time), in memory {measured['memory']:,.0f} img/s, ratio "
              f"{measured['streamed'] / measured['memory']:.3f}", flush=True)
    return results


class _Waits:
    """A loader whose iteration records the time the training loop spent waiting for the next batch."""

    def __init__(self, loader):
        self.loader, self.waited = loader, 0.0

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        batches = iter(self.loader)
        try:
            while True:
                start = time.perf_counter()
                try:
                    batch = next(batches)
                except StopIteration:
                    return
                self.waited += time.perf_counter() - start
                yield batch
        finally:
            close = getattr(batches, "close", None)
            if close:
                close()


def loader_alone(folder: Path, workers: int) -> tuple[float, float]:
    """(img/s, worker CPU µs per image): the streamed loader with nothing to feed, augmenting as in training."""

    from archdsl.train.data import load_dataset, make_augment
    from archdsl.train.loop import epoch_generator

    data = load_dataset(str(folder), (3, 64, 64), seed=0, workers=workers)
    augment = [make_augment("crop", pad=4), make_augment("flip")]
    start = time.perf_counter()
    count = sum(len(y) for _, y in data.loader("train", BATCH, True, epoch_generator(0, 0), augment, workers=workers))
    rate = count / (time.perf_counter() - start)
    dataset = data._dataset("train", tuple(augment))
    cpu = time.process_time()
    for first in range(0, 320, BATCH):
        dataset.collate([dataset[(i, i)] for i in range(first, first + BATCH)])
    return rate, (time.process_time() - cpu) / 320 * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "archdsl-data-pipeline")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    spec = args.dir / "bench64.arch"
    spec.write_text(SPEC)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    folders = {}
    for size in args.sizes:
        folders[size] = args.dir / f"images{size}"
        start = time.perf_counter()
        generate(folders[size], size)
        print(f"folder of {size:,} images ready ({time.perf_counter() - start:.1f}s): {folders[size]}", flush=True)

    print("\npeak memory, one epoch each (`archdsl train`, "
          f"{args.workers} workers, batch {BATCH}):")
    rows = []
    for size, folder in folders.items():
        out = args.dir / f"run{size}-{int(time.time())}"
        figures = peak_memory(spec, folder, out, args.workers)
        held = size * 3 * 64 * 64 / 2**20
        rows.append((size, figures))
        print(f"  {size:>7,} images: main process peak RSS {figures['main_rss_mb']:.0f} MB (median over the run "
              f"{figures['main_rss_median_mb']:.0f} MB), whole tree peak USS "
              f"{figures['tree_uss_mb']:.0f} MB ({held:.0f} MB of pixels as uint8 in memory would add); "
              f"{figures['wall_s']:.1f}s\n           {figures['epoch']}", flush=True)
    if len(rows) > 1:
        (small, a), (large, b) = rows[0], rows[-1]
        print(f"  {large:,} / {small:,} images: main peak RSS x{b['main_rss_mb'] / a['main_rss_mb']:.3f}, median RSS "
              f"x{b['main_rss_median_mb'] / a['main_rss_median_mb']:.3f}, tree peak USS "
              f"x{b['tree_uss_mb'] / a['tree_uss_mb']:.3f}")

    smallest = folders[min(folders)]
    rate, per_image = loader_alone(smallest, args.workers)
    print(f"\nthe streamed loader alone ({args.workers} workers, decoding and augmenting): {rate:,.0f} img/s; "
          f"{per_image:.0f} µs of CPU per image (decode, augment, normalise)")
    print(f"\nthroughput, training epochs on {smallest.name} ({args.rounds} rounds, taking turns):")
    results = throughput(spec, smallest, args.rounds, args.workers)
    ratios = [s / m for s, m in results]
    print(f"  median streamed {statistics.median(s for s, _ in results):,.0f} img/s, in memory "
          f"{statistics.median(m for _, m in results):,.0f} img/s; streamed / in memory: median "
          f"{statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})")


if __name__ == "__main__":
    main()

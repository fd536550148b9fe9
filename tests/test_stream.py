"""Image folders streamed from disk: bad files named (or skipped), augmentation independent of workers and
ranks, memory bounded by the batches in flight, worker crashes and Ctrl-C handled."""
from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from archdsl.errors import ArchError
from archdsl.train.data import load_dataset, make_augment
from archdsl.train.datasets.folder import read_folder

TINY = "network tiny\ninput 3x12x12\nconv3-6 relu maxpool2\nfc-3\n"


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height and whose pixel data is empty."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def make_folder(root: Path, per_class: int = 20, size: int = 16, classes: int = 3, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for label in range(classes):
        folder = root / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = (rng.integers(0, 80, (size, size, 3)) + 80 * label).astype(np.uint8)
            Image.fromarray(pixels).save(folder / (f"{i}.png" if i % 2 else f"{i}.jpg"), quality=95)
    return root


# ---- bad files: each named, or left out and listed -----------------------------------------------------


def bad_files(folder: Path) -> dict[str, str]:
    """Write one bad file of each kind into `folder`; {name: a phrase its error must contain}."""
    (folder / "text.png").write_text("not an image at all")
    Image.new("RGB", (4, 4)).save(folder / "gif.png", format="GIF")  # Pillow opens GIFs; the docs promise PNG/JPEG
    (folder / "zero.png").write_bytes(png_header_only(5, 0))
    (folder / "bomb.png").write_bytes(png_header_only(40_000, 40_000))  # 1.6 G pixels claimed in 60 bytes
    os.mkfifo(folder / "fifo.png")  # opening it for reading would block forever
    return {"text.png": "not a PNG or JPEG", "gif.png": "not a PNG or JPEG", "zero.png": "zero.png",
            "bomb.png": "too large to decode safely", "fifo.png": "not a regular file"}


@pytest.mark.timeout(60)
def test_each_kind_of_bad_file_is_named_and_skip_bad_lists_them(tmp_path):
    root = make_folder(tmp_path / "data", per_class=4)
    expected = bad_files(root / "class1")
    for name, phrase in expected.items():
        others = [n for n in expected if n != name]
        hidden = [root / "class1" / f".{n}" for n in others]
        for n, h in zip(others, hidden):
            (root / "class1" / n).rename(h)  # hidden files are not read: one bad file at a time
        with pytest.raises(ArchError) as info:
            read_folder(root)
        assert f"{name}:" in info.value.message and phrase in info.value.message, info.value.message
        assert "--skip-bad-images" in info.value.message
        for n, h in zip(others, hidden):
            h.rename(root / "class1" / n)
    listed = read_folder(root, skip_bad=True)
    assert sorted(Path(bad.path).name for bad in listed.skipped) == sorted(expected)
    assert len(listed.pool) == 12  # the good images only


def test_an_empty_class_a_stray_file_and_mixed_sizes(tmp_path, capsys):
    root = make_folder(tmp_path / "data", per_class=4, classes=2)
    (root / "empty").mkdir()
    with pytest.raises(ArchError, match=r"'empty' holds no images"):
        read_folder(root)
    (root / "empty").rmdir()
    (root / "class0" / "notes.txt").write_text("labelled by hand")
    Image.fromarray(np.zeros((30, 20, 3), np.uint8)).save(root / "class1" / "big.png")
    listed = read_folder(root)
    assert listed.ignored == (str(root / "class0" / "notes.txt"),)
    assert {size for _, size in listed.size_example} == {(16, 16), (30, 20)}
    from archdsl.train.loop import describe_folder

    lines: list[str] = []
    splits = load_dataset(str(root), (3, 12, 12), seed=0, val_fraction=0, test_fraction=0, normalize="none")
    describe_folder(splits, lines.append)
    assert any("notes.txt" in line and "not .png/.jpg/.jpeg" in line for line in lines)
    assert any("differ in size" in line and "big.png is 30x20" in line for line in lines)


def test_a_file_whose_pixels_are_corrupt_stops_the_epoch_or_is_skipped(tmp_path):
    root = make_folder(tmp_path / "data", per_class=6)
    good = (root / "class2" / "1.png").read_bytes()
    (root / "class2" / "1.png").write_bytes(good[: len(good) // 2])  # the header is whole, the pixels are not
    splits = load_dataset(str(root), (3, 12, 12), seed=0, val_fraction=0, test_fraction=0, normalize="none")
    from archdsl.train.datasets.stream import DataError

    with pytest.raises(DataError, match=r"class2/1.png: cannot be decoded"):
        for _ in splits.loader("train", 4, workers=2):
            pass
    loader = splits.loader("train", 4, workers=2, skip_bad=True)
    labels = torch.cat([y for _, y in loader])
    assert len(labels) == 17 and [Path(p).name for p, _ in loader.skipped] == ["1.png"]


# ---- determinism: augmentation depends on neither workers nor ranks ----------------------------------------


def test_augmented_batches_are_the_same_for_any_workers_and_for_two_ranks_of_half_the_batch(tmp_path):
    root = make_folder(tmp_path / "data", per_class=8, size=20)
    splits = load_dataset(str(root), (3, 12, 12), seed=0, val_fraction=0, test_fraction=0)
    augment = [make_augment("resized_crop"), make_augment("flip"), make_augment("jitter")]

    def epoch(batch: int, workers: int, rank: int = 0, world: int = 1) -> list[torch.Tensor]:
        loader = splits.loader("train", batch, True, torch.Generator().manual_seed(7), augment, rank, world,
                               workers=workers)
        return [images for images, _ in loader]

    alone = epoch(8, 0)
    assert all(torch.equal(a, b) for a, b in zip(alone, epoch(8, 2)))
    ranks = [epoch(4, 2, rank, 2) for rank in range(2)]
    for k, batch in enumerate(alone):  # rank r reads every 2nd image of the global order
        interleaved = torch.stack([ranks[0][k], ranks[1][k]], 1).reshape(batch.shape)
        assert torch.equal(interleaved, batch)
    again = epoch(8, 0)
    assert all(torch.equal(a, b) for a, b in zip(alone, again))
    other = splits.loader("train", 8, True, torch.Generator().manual_seed(8), augment)
    assert not torch.equal(next(iter(other))[0], alone[0])  # another epoch's generator: other crops


def test_resized_crop_and_jitter():
    images = torch.rand(6, 3, 10, 14)
    crop = make_augment("resized_crop", min_scale=0.2)
    out = crop(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and not torch.allclose(out, images)
    assert torch.equal(out, crop(images, torch.Generator().manual_seed(0)))
    whole = make_augment("resized_crop", min_scale=1.0, max_ratio=1.0)  # the whole image (square: a centre crop)
    square = torch.rand(2, 1, 8, 8)
    assert torch.allclose(whole(square, None), square, atol=1e-6)
    jitter = make_augment("jitter", brightness=0.5, contrast=0.5, saturation=0.5)
    jittered = jitter(images, torch.Generator().manual_seed(1))
    assert jittered.min() >= 0 and jittered.max() <= 1 and not torch.allclose(jittered, images)
    with pytest.raises(ArchError, match="min_scale"):
        make_augment("resized_crop", min_scale=0)


# ---- memory: bounded by the batches in flight, not by the data set ------------------------------------------

PEAK_RSS = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_data_set(tmp_path):
    """One epoch over 80 and over 480 images of 256x256 (192 kB each decoded): the peak RSS stays put."""
    source = tmp_path / "one.png"
    y, x = np.mgrid[0:256, 0:256]
    Image.fromarray(np.stack([x, y, (x + y) // 2], -1).astype(np.uint8)).save(source)
    spec = tmp_path / "tiny.arch"
    spec.write_text(TINY)
    peaks = {}
    for count in (80, 480):
        root = tmp_path / f"data{count}"
        for i in range(count):
            folder = root / f"class{i % 3}"
            folder.mkdir(parents=True, exist_ok=True)
            os.link(source, folder / f"{i}.png")  # the same bytes, read and decoded again each time
        command = [sys.executable, "-m", "archdsl", "train", str(spec), "--dataset", str(root), "--epochs", "1",
                   "--workers", "2", "--batch-size", "16", "--out", str(tmp_path / f"run{count}"),
                   "--no-tensorboard", "--no-progress"]
        done = subprocess.run([sys.executable, "-c", PEAK_RSS, *command], capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        peaks[count] = int(done.stdout.split()[-1]) / 1024  # MB
    decoded_extra = 400 * 256 * 256 * 3 / 2**20  # what holding the extra images' pixels would cost: 75 MB
    print(f"peak RSS {peaks}, MB")
    assert peaks[480] - peaks[80] < 0.15 * decoded_extra, (peaks, decoded_extra)


# ---- a dying worker, Ctrl-C ----------------------------------------------------------------------------------


def start_training(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, Path]:
    root = make_folder(tmp_path / "data", per_class=40)
    spec = tmp_path / "tiny.arch"
    spec.write_text(TINY)
    out = tmp_path / "run"
    env = dict(os.environ)
    env.pop("ARCHDSL_DEBUG", None)

    def child_setup():  # its own session (as a terminal's job) and Ctrl-C's default meaning
        os.setsid()
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    process = subprocess.Popen([sys.executable, "-m", "archdsl", "train", str(spec), "--dataset", str(root),
                                "--epochs", "300", "--workers", "2", "--out", str(out), "--no-tensorboard", *extra],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               preexec_fn=child_setup)
    return process, out


def wait_for(condition, process, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while not condition() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, process.communicate()[1][-2000:]


def session_processes(sid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == sid:
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_a_dead_worker_reported_from_anywhere_is_a_data_error_and_ends_the_watch():
    from archdsl.train.datasets.stream import DataError, worker_deaths_as_data_errors

    previous = signal.signal(signal.SIGCHLD, lambda *_: None)  # as torch's loader installs its watch
    try:
        with pytest.raises(DataError) as info, worker_deaths_as_data_errors():
            raise RuntimeError("DataLoader worker (pid 4242) is killed by signal: Killed. ")
        assert info.value.message.startswith("data loading failed: DataLoader worker (pid 4242) is killed")
        # The other workers' deaths would break into the report of this one: the watch is over.
        assert signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL
        with pytest.raises(RuntimeError, match="out of memory"), worker_deaths_as_data_errors():
            raise RuntimeError("CUDA out of memory")  # not a worker's death: left as it is
    finally:
        signal.signal(signal.SIGCHLD, previous)


def test_a_worker_prints_no_traceback_when_the_main_process_hangs_up():
    # In a worker (its own process, as the loader forks it): multiprocessing's resource sharer
    # calls sys.excepthook when the main process, stopping its workers after Ctrl-C, hangs up.
    script = (
        "import sys\n"
        "from archdsl.train.datasets.stream import _worker_init\n"
        "_worker_init(0)\n"
        "for error in (ConnectionResetError(104, 'Connection reset by peer'), EOFError(), ValueError('odd')):\n"
        "    try:\n"
        "        raise error\n"
        "    except BaseException:\n"
        "        sys.excepthook(*sys.exc_info())\n"
    )
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    lines = ran.stderr.strip().splitlines()  # nothing for the hang-ups, one line for the rest
    assert len(lines) == 1 and "loader worker" in lines[0] and lines[0].endswith("ValueError: odd"), ran.stderr


@pytest.mark.slow
def test_a_killed_worker_ends_the_run_with_its_error_and_keeps_the_checkpoint(tmp_path):
    import psutil

    process, out = start_training(tmp_path)
    wait_for(lambda: (out / "metrics.csv").exists(), process)
    trainer = psutil.Process(process.pid)
    while process.poll() is None:  # workers live while an epoch runs: kill one mid-epoch
        for child in trainer.children():
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        time.sleep(0.05)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 1, stderr[-2000:]
    assert "data loading failed: DataLoader worker" in stderr, stderr[-2000:]  # "exited unexpectedly", or "killed"
    assert f"--resume {out}" in stderr and "Traceback" not in stderr
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] >= 1


@pytest.mark.slow
def test_ctrl_c_with_workers_running_leaves_no_process_behind(tmp_path):
    import psutil

    process, out = start_training(tmp_path)
    wait_for(lambda: (out / "metrics.csv").exists() and psutil.Process(process.pid).children(), process)
    os.killpg(process.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole foreground group
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and f"--resume {out}" in stderr
    deadline = time.time() + 10
    while session_processes(process.pid) and time.time() < deadline:
        time.sleep(0.1)
    assert session_processes(process.pid) == []

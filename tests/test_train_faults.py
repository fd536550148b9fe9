"""Faults around a training run: damaged checkpoints, a death between writes, a full disk, a read-only
folder, bad settings at the command line. Each is one clear error naming the file, nothing is lost,
and nothing hangs."""
from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import archdsl
from archdsl import files
from archdsl.errors import ArchError
from archdsl.train import checkpoint as ckpt
from archdsl.train.config import overrides_from_pairs, resolve_config
from archdsl.train.loop import RunOptions, train

TINY = """network tiny
input 1x8x8
conv3-6 relu maxpool2
fc-10
"""
FAST = ("batch_size=64", "lr=0.01", "optimizer=adam", "augment=none")


def run(spec: Path, out: Path, *pairs: str, resume: Path | None = None):
    net = archdsl.load(spec)
    config = resolve_config(net.train_settings, overrides_from_pairs([*FAST, *pairs]), net.input_shape)
    return train(net, config, RunOptions(out=out, resume=resume, progress=False, log=lambda *_: None))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished 2-epoch run: (spec, run folder)."""
    folder = tmp_path_factory.mktemp("finished")
    spec = folder / "tiny.arch"
    spec.write_text(TINY)
    run(spec, folder / "run", "epochs=2")
    return spec, folder / "run"


def no_temporary_files(folder: Path) -> bool:
    return not [p.name for p in folder.iterdir() if ".tmp" in p.name]


# ---- damaged checkpoints: one clear error naming the file ----------------------------------------------------------

def damaged_checkpoints(finished_run: Path, folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, what the error says), every file of our own making."""
    good = torch.load(finished_run / "last.pt", weights_only=True)
    made: dict[str, tuple[Path, str]] = {}

    def save(name, payload, message):
        torch.save(payload, folder / name)
        made[name] = (folder / name, message)

    (folder / "empty.pt").write_bytes(b"")
    made["empty.pt"] = (folder / "empty.pt", "is empty (0 bytes)")
    (folder / "truncated.pt").write_bytes((finished_run / "last.pt").read_bytes()[:3000])
    made["truncated.pt"] = (folder / "truncated.pt", "cannot be read (RuntimeError: PytorchStreamReader failed")
    (folder / "text.pt").write_text("not a checkpoint at all\n")
    made["text.pt"] = (folder / "text.pt", "cannot be read")
    save("claims-only.pt", {"format": ckpt.FORMAT}, "says it is an archdsl checkpoint (archdsl-checkpoint-1) but lacks model")
    save("model-a-list.pt", {**good, "model": [1, 2, 3]}, "its 'model' is a list")
    save("model-none.pt", {"model": None}, "its 'model' is nothing (None); expected the weights")
    save("model-of-numbers.pt", {"model": {"conv1.weight": 3}}, "its weights hold a number under 'conv1.weight'")
    save("a-list.pt", [1, 2, 3], "holds a list; expected a state_dict")
    save("empty-dict.pt", {}, "holds an empty dict")
    save("bad-config.pt", {**good, "config": {"lr": "fast", "optimizer": 3}}, "the settings in")
    # tensors that load_state_dict cannot copy (it raised: exit 3), or would copy losing part of them
    weights = good["model"]
    for name, convert, message in [
            ("sparse", lambda v: v.to_sparse(), "a sparse_coo tensor under"),
            ("meta", lambda v: torch.empty(v.shape, device="meta"), "a tensor without data (device 'meta')"),
            ("quantized", lambda v: torch.quantize_per_tensor(v, 0.1, 0, torch.qint8), "a quantized tensor (qint8)"),
            ("complex", lambda v: v.to(torch.complex64), "a tensor of complex64 values"),
            ("bool", lambda v: v > 0, "a tensor of bool values")]:
        save(f"model-{name}.pt", {**good, "model": {k: convert(v) for k, v in weights.items()}}, message)
    return made


def test_damaged_checkpoints_are_errors_naming_the_file(finished, tmp_path):
    spec, finished_run = finished
    from archdsl.train.evaluate import evaluate

    net = archdsl.load(spec)
    for name, (path, message) in damaged_checkpoints(finished_run, tmp_path).items():
        with pytest.raises(ArchError) as info:
            evaluate(net, path)
        assert message in info.value.message and str(path) in info.value.message, (name, info.value.message)


@pytest.mark.parametrize("drop", ["optimizer", "rng", "history", "best_epoch", "scheduler"])
def test_resume_needs_every_field(finished, tmp_path, drop):
    spec, finished_run = finished
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    payload = torch.load(run_dir / "last.pt", weights_only=True)
    del payload[drop]
    torch.save(payload, run_dir / "last.pt")
    with pytest.raises(ArchError) as info:
        run(spec, run_dir, "epochs=3", resume=run_dir)
    assert f"says it is an archdsl checkpoint (archdsl-checkpoint-1) but lacks {drop}" in info.value.message
    assert str(run_dir / "last.pt") in info.value.message


@pytest.mark.parametrize("field, value, message", [
    ("epoch", "two", "its 'epoch' is a string"),
    ("epoch", 7, "epoch 7, best epoch"),
    ("optimizer", {"state": {}, "param_groups": []}, "its optimizer state does not fit this run"),
    ("rng", {"torch": 1}, "its random number generator states does not fit"),
    # rows and states that loaded, then failed in the first step or when metrics.csv was written (exit 3)
    ("history", [{"epoch": "one"}] * 2, "row 1 of its history holds a string for 'epoch'; expected a row of metrics"),
    ("history", [5, 5], "row 1 of its history is a number; expected a row of metrics"),
    ("scheduler", {"last_epoch": "x", "base_lrs": "x"}, r"its schedule state does not fit this run \(ValueError: "
                                                        "'base_lrs' is a string, expected 1 entries"),
    ("scheduler", {}, "its schedule state does not fit this run"),
])
def test_resume_refuses_fields_that_do_not_fit(finished, tmp_path, field, value, message):
    spec, finished_run = finished
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    payload = torch.load(run_dir / "last.pt", weights_only=True)
    payload[field] = value
    torch.save(payload, run_dir / "last.pt")
    with pytest.raises(ArchError, match=message):
        run(spec, run_dir, "epochs=3", resume=run_dir)


def test_resume_refuses_optimizer_buffers_of_another_shape(finished, tmp_path):
    spec, finished_run = finished
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    payload = torch.load(run_dir / "last.pt", weights_only=True)
    for state in payload["optimizer"]["state"].values():
        state.update({key: torch.zeros(99) for key, value in state.items() if value.dim()})
    torch.save(payload, run_dir / "last.pt")
    with pytest.raises(ArchError, match=r"its optimizer state does not fit this run \(ValueError: parameter 0's "
                                        r"'exp_avg' is a tensor of shape \(99,\), the parameter \(6, 1, 3, 3\)\)"):
        run(spec, run_dir, "epochs=3", resume=run_dir)


def test_a_fifo_as_checkpoint_does_not_block(finished, tmp_path):
    """evaluate, --init-from and --resume, each in a subprocess: a regression hangs there, and fails here."""
    spec, finished_run = finished
    fifo = tmp_path / "pipe.pt"
    os.mkfifo(fifo)
    resumed = tmp_path / "run"
    shutil.copytree(finished_run, resumed)
    (resumed / "last.pt").unlink()
    os.mkfifo(resumed / "last.pt")
    env = {k: v for k, v in os.environ.items() if k != "ARCHDSL_DEBUG"}
    for args, path in ((["evaluate", spec, fifo], fifo), (["train", spec, "--init-from", fifo, "--epochs", "1",
                                                          "--out", tmp_path / "new"], fifo),
                       (["train", "--resume", resumed], resumed / "last.pt")):
        done = subprocess.run([sys.executable, "-m", "archdsl", *map(str, args)], capture_output=True, text=True,
                              timeout=120, env=env)
        assert done.returncode == 1, done.stderr
        assert f"{path} is not a regular file; expected a checkpoint written by torch.save" in done.stderr
        assert "Traceback" not in done.stderr


# ---- a death between last.pt and best.pt -----------------------------------------------------------------------------

def test_a_death_between_last_and_best_is_repaired_on_resume(tmp_path, monkeypatch):
    """The process dies after last.pt of an improving epoch and before best.pt: best.pt holds an older epoch,
    while last.pt (and so summary.json) name this one. Resuming makes best.pt hold the epoch they name."""
    spec = tmp_path / "tiny.arch"
    spec.write_text(TINY)
    run_dir = tmp_path / "run"
    save = ckpt.save_atomic

    class Died(BaseException):
        pass

    def dying(payload, path):
        if path.name == "best.pt" and payload["epoch"] >= 2:
            raise Died  # as a kill -9 would, after last.pt and before best.pt
        save(payload, path)

    monkeypatch.setattr(ckpt, "save_atomic", dying)
    with pytest.raises(Died):
        run(spec, run_dir, "epochs=4")
    monkeypatch.setattr(ckpt, "save_atomic", save)
    last = torch.load(run_dir / "last.pt", weights_only=True)
    died_at = last["epoch"]
    assert last["best_epoch"] == died_at >= 2
    assert torch.load(run_dir / "best.pt", weights_only=True)["epoch"] < died_at  # the inconsistency

    def dies_at_the_next_epoch(payload, path):
        if payload["epoch"] > died_at:
            raise Died  # so that what best.pt holds now is the resume's repair, not a later epoch's save
        save(payload, path)

    monkeypatch.setattr(ckpt, "save_atomic", dies_at_the_next_epoch)
    with pytest.raises(Died):
        run(spec, run_dir, f"epochs={died_at + 1}", resume=run_dir)
    best = torch.load(run_dir / "best.pt", weights_only=True)
    assert best["epoch"] == died_at == torch.load(run_dir / "last.pt", weights_only=True)["best_epoch"]
    assert all(torch.equal(best["model"][k], last["model"][k]) for k in last["model"])

    monkeypatch.setattr(ckpt, "save_atomic", save)
    run(spec, run_dir, f"epochs={died_at + 1}", resume=run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["best_epoch"] == torch.load(run_dir / "best.pt", weights_only=True)["epoch"]


# ---- a full disk, a read-only folder --------------------------------------------------------------------------------

def test_a_full_disk_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    """The disk fills while epoch 2's checkpoint is written (every write from then on fails, as on a full disk)."""
    spec = tmp_path / "tiny.arch"
    spec.write_text(TINY)
    run_dir = tmp_path / "run"
    write = files._Recording.write
    state = {"full": False}

    def filling(self, data):
        if state["full"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write(self, data)

    save = ckpt.save_atomic

    def save_then_fill(payload, path):
        state["full"] = payload["epoch"] >= 2
        save(payload, path)

    monkeypatch.setattr(files._Recording, "write", filling)
    monkeypatch.setattr(ckpt, "save_atomic", save_then_fill)
    with pytest.raises(ArchError) as info:
        run(spec, run_dir, "epochs=3")
    assert info.value.message == (
        f"no space left on device while writing {run_dir / 'last.pt'}; {run_dir / 'last.pt'} still holds epoch 1: "
        f"make room (or fix the folder), then continue with: archdsl train --resume {run_dir}")
    assert torch.load(run_dir / "last.pt", weights_only=True)["epoch"] == 1
    assert no_temporary_files(run_dir)


def test_a_disk_that_fills_between_last_and_best_says_last_holds_this_epoch(tmp_path, monkeypatch):
    """last.pt of epoch 1 was written, best.pt was not: the message said 'no epoch was saved yet'."""
    spec = tmp_path / "tiny.arch"
    spec.write_text(TINY)
    run_dir = tmp_path / "run"
    save = ckpt.save_atomic

    def best_fails(payload, path):
        if path.name == ckpt.BEST:
            raise files.os_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), path)
        save(payload, path)

    monkeypatch.setattr(ckpt, "save_atomic", best_fails)
    with pytest.raises(ArchError) as info:
        run(spec, run_dir, "epochs=2")
    assert info.value.message == (
        f"no space left on device while writing {run_dir / 'best.pt'}; {run_dir / 'last.pt'} still holds epoch 1: "
        f"make room (or fix the folder), then continue with: archdsl train --resume {run_dir}")
    assert torch.load(run_dir / "last.pt", weights_only=True)["epoch"] == 1


def test_evaluate_refuses_an_output_it_cannot_write_before_evaluating(finished, tmp_path, monkeypatch):
    """The confusion PNG was written after the whole split was evaluated, and its failure lost the figures."""
    spec, finished_run = finished
    from archdsl.train import loop
    from archdsl.train.evaluate import EvalOptions, evaluate

    (tmp_path / "a-file").write_text("")
    monkeypatch.setattr(loop, "load_data", lambda *a, **k: pytest.fail("evaluated before checking the output"))
    with pytest.raises(ArchError, match="a part of the path is a file"):
        evaluate(archdsl.load(spec), finished_run / "last.pt", EvalOptions(out=tmp_path / "a-file" / "out"))


def test_a_read_only_folder(tmp_path, monkeypatch):
    """Root writes into chmod-000 folders: the OS's EROFS is raised where archdsl creates files in the folder."""
    spec = tmp_path / "tiny.arch"
    spec.write_text(TINY)
    run_dir = tmp_path / "run"
    opened = os.open

    def read_only(path, flags, *args):
        if str(path).startswith(str(run_dir)) and flags & os.O_CREAT:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return opened(path, flags, *args)

    monkeypatch.setattr(files.os, "open", read_only)
    with pytest.raises(ArchError) as info:
        run(spec, run_dir, "epochs=1")
    assert info.value.message.startswith(f"cannot write to {run_dir}/")
    assert "the file system is read-only" in info.value.message
    assert no_temporary_files(run_dir)


def test_atomic_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    path = tmp_path / "data.bin"
    files.write_bytes(path, b"old")
    with pytest.raises(ArchError, match=f"no space left on device while writing {path}"):
        with files.atomic_write(path) as file:
            file.write(b"new, half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    with pytest.raises(ValueError):  # not the file system's: passed on as it is
        with files.atomic_write(path) as file:
            file.write(b"new")
            raise ValueError("a bug")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]


def test_atomic_write_writes_into_a_fifo_and_through_a_link(tmp_path):
    """`-o /dev/stdout` or a FIFO is written into, never replaced by a file; a link keeps pointing at its file."""
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    files.write_bytes(fifo, b"through the pipe")
    reader.join(timeout=30)
    assert received == [b"through the pipe"] and fifo.is_fifo()
    (tmp_path / "real.txt").write_text("old")
    (tmp_path / "link.txt").symlink_to(tmp_path / "real.txt")
    files.write_text(tmp_path / "link.txt", "new")
    assert (tmp_path / "link.txt").is_symlink() and (tmp_path / "real.txt").read_text() == "new"
    with pytest.raises(ArchError, match="it is a folder"):
        files.write_text(tmp_path, "x")

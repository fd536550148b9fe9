"""`archdsl train --nproc 2`: DistributedDataParallel on the CPU (gloo) through torch.distributed.run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import archdsl
from archdsl.train.distributed import Context, context_from_env

TINY = "network tiny\ninput 1x8x8\nconv3-6 relu maxpool2\nfc-10\n"


def test_two_processes_train_and_rank_0_writes_a_checkpoint_that_loads_alone(tmp_path, run_archdsl):
    spec = tmp_path / "tiny.arch"
    spec.write_text(TINY)
    out = tmp_path / "run"
    done = run_archdsl("train", spec, "--nproc", "2", "--epochs", "1", "--out", out, "--optimizer", "adam",
                       "--lr", "0.01", "--augment", "none", "--no-progress", timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "x2 processes" in done.stdout and done.stdout.count("epoch 1/1:") == 1  # rank 0 alone reports
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["test_top1"] > 0.3
    state = torch.load(out / "last.pt", weights_only=True)["model"]
    assert not any(key.startswith("module.") for key in state)
    archdsl.load(TINY).to_torch().load_state_dict(state)  # a single process takes the DDP-trained weights


def test_the_launcher_environment_is_read(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert context_from_env() == Context()
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    ctx = context_from_env()
    assert (ctx.rank, ctx.world_size, ctx.local_rank, ctx.is_main) == (3, 4, 1, False)


def _children(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return children


def _rank(pid: int) -> int | None:
    env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return next((int(v[5:]) for v in env if v.startswith(b"RANK=")), None)


@pytest.mark.slow
def test_a_killed_worker_is_summed_up_with_how_to_resume(tmp_path):
    """kill -9 of rank 1 mid-run: which rank died and how, and the command that resumes; no torchrun traceback."""
    spec = tmp_path / "tiny.arch"
    spec.write_text(TINY)
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "ARCHDSL_DEBUG"}
    launcher = subprocess.Popen(
        [sys.executable, "-m", "archdsl", "train", str(spec), "--nproc", "2", "--epochs", "500", "--out", str(out),
         "--optimizer", "adam", "--lr", "0.01", "--augment", "none", "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        for line in launcher.stdout:  # rank 0 reports each finished epoch; its checkpoint is written by then
            if line.startswith("epoch 2/500"):
                break
        victim = next(pid for pid in _children(launcher.pid) if _rank(pid) == 1)
        os.kill(victim, signal.SIGKILL)
        _, stderr = launcher.communicate(timeout=120)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == 1
    assert "Traceback" not in stderr and "ChildFailedError" not in stderr and "internal error" not in stderr, stderr
    assert f"rank 1 (local rank 1, pid {victim}) was killed by SIGKILL" in stderr
    assert f"continue with: archdsl train --resume {out} --nproc 2" in stderr
    assert len(stderr.strip().splitlines()) <= 5, stderr
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] >= 2

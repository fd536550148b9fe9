"""`archdsl train --nproc 2`: DistributedDataParallel on the CPU (gloo) through torch.distributed.run."""
from __future__ import annotations

import json

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

"""A real two-machine job on loopback: two `archdsl train --nnodes 2 --node-rank R` processes, as on two hosts.

Checks that the ranks read disjoint shards covering the data, that rank 0 alone writes a run folder, and that
LeNet-5 (no batch norm) ends two epochs with the weights of one process trained on the same global batch.
"""
from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys

import pytest
import torch

COMMON = ("--epochs", "2", "--augment", "none", "--no-tensorboard", "--no-progress")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_on_loopback_train_like_one_process_with_the_global_batch(tmp_path, specs_dir):
    spec = str(specs_dir / "lenet5.arch")
    env = dict(os.environ, ARCHDSL_TRACE_SHARDS=str(tmp_path / "trace"))
    env.pop("ARCHDSL_DEBUG", None)
    port = free_port()
    nodes = [subprocess.Popen([sys.executable, "-m", "archdsl", "train", spec, *COMMON, "--batch-size", "32",
                               "--out", str(tmp_path / f"node{rank}"), "--nproc", "1", "--nnodes", "2",
                               "--node-rank", str(rank), "--rdzv-endpoint", f"127.0.0.1:{port}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for rank in (0, 1)]
    single = subprocess.run([sys.executable, "-m", "archdsl", "train", spec, *COMMON, "--batch-size", "64",
                             "--out", str(tmp_path / "single")], capture_output=True, text=True, timeout=300)
    outputs = [node.communicate(timeout=300) for node in nodes]
    for node, (stdout, stderr) in zip(nodes, outputs):
        assert node.returncode == 0, stderr[-3000:]
    assert single.returncode == 0, single.stderr[-3000:]

    # rank 0 alone wrote a run folder (rank 1 was given another --out, which must not exist)
    assert (tmp_path / "node0" / "last.pt").exists() and not (tmp_path / "node1").exists()
    assert "x2 processes" in outputs[0][0] and "epoch 2/2:" not in outputs[1][0]
    summary = json.loads((tmp_path / "node0" / "summary.json").read_text())
    assert summary["world_size"] == 2

    for epoch in (1, 2):
        shards = [set(json.loads((tmp_path / "trace" / f"rank{r}-epoch{epoch}.json").read_text())["indices"])
                  for r in (0, 1)]
        assert shards[0].isdisjoint(shards[1]) and len(shards[0]) == len(shards[1]) == 629
        assert shards[0] | shards[1] == set(range(1258))  # digits' training split, all of it

    two = torch.load(tmp_path / "node0" / "last.pt", weights_only=True)["model"]
    one = torch.load(tmp_path / "single" / "last.pt", weights_only=True)["model"]
    assert two.keys() == one.keys()
    for key in one:  # DDP averages the two half-batches' gradients: the whole batch's, up to rounding
        assert torch.allclose(two[key], one[key], rtol=0, atol=1e-6), (key, (two[key] - one[key]).abs().max())
    with open(tmp_path / "node0" / "metrics.csv") as f:  # it learned: the weights compared are trained ones
        losses = [float(row["train_loss"]) for row in csv.DictReader(f)]
    assert losses[1] < losses[0] - 0.01

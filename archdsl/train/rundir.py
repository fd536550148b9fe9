"""A run folder: what a training run leaves behind.

    SPEC.arch        the spec as trained (a copy)
    config.json      the resolved TrainConfig, and how the run was placed
    metrics.csv      one row per finished epoch
    curves.png       loss and accuracy against epochs
    last.pt          the checkpoint after the last finished epoch
    best.pt          the checkpoint with the best validation top-1 so far
    summary.json     at the end: test_top1, test_top5 (fractions), epochs, best_val_top1, best_epoch, wall_s,
                     params, device, world_size (and skipped_images, when images were left out)
    events.out.tfevents.*   TensorBoard's (unless --no-tensorboard)
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from archdsl import files
from archdsl.errors import ArchError


def new_run_dir(name: str, root: str | os.PathLike = "runs") -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{name}-{stamp}"
    path, n = base, 1
    while path.exists():  # two runs in the same second
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def prepare(path: Path, spec_text: str, spec_file: str, config: dict[str, Any], resuming: bool) -> None:
    if not resuming and path.exists() and (path / "last.pt").exists():
        raise ArchError(f"run folder '{path}' already holds a run; continue it with --resume {path}, "
                        "or choose another --out")
    try:
        files.make_folder(path)
    except ArchError as err:
        raise ArchError(f"{err.message}; choose another --out") from None
    if not resuming:
        files.write_text(path / spec_file, spec_text)
        write_json(config, path / "config.json")


def write_json(data: dict[str, Any], path: Path) -> None:
    files.write_text(path, json.dumps(data, indent=2) + "\n")

"""Checkpoints: written atomically, read with `torch.load(weights_only=True)`.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts only (the
RNG states are stored as tensors), so loading one never runs pickled code:

    format, spec_name, epoch (finished epochs), model, optimizer, scheduler, scaler,
    rng {torch, cuda, numpy, python}, best_val_top1, best_epoch, history (metrics rows),
    config (TrainConfig.to_json()), class_names, num_classes
"""
from __future__ import annotations

import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from archdsl.backends.torch.checkpoint import check_tensors, describe, read_torch_file, state_dict_of
from archdsl.errors import ArchError
from archdsl.files import atomic_write

FORMAT = "archdsl-checkpoint-1"
LAST, BEST = "last.pt", "best.pt"

# What an archdsl checkpoint holds, by kind (a tuple: any of them). Every reader needs the
# model; --resume needs the rest. Checked before any of it is used.
_NUMBER = (int, float)
FIELDS_FOR_WEIGHTS = {"model": Mapping}
FIELDS_OPTIONAL = {"config": Mapping, "class_names": list, "num_classes": (int, type(None)), "spec_name": str,
                   "loss_start": (int, float, type(None))}
FIELDS_FOR_RESUME = {"epoch": int, "optimizer": Mapping, "scheduler": Mapping, "rng": Mapping, "history": list,
                     "best_val_top1": _NUMBER, "best_epoch": int, "scaler": (Mapping, type(None)), "config": Mapping}


def save_atomic(payload: dict[str, Any], path: Path) -> None:
    """Write to a temporary file, then rename: an interrupted or failed save leaves the previous file whole.

    A full disk or a read-only folder is an ArchError naming `path` (files.atomic_write),
    not torch's "unexpected pos …", and leaves no temporary file behind.
    """
    with atomic_write(path) as file:
        torch.save(payload, file)


def save_epoch(state: dict[str, Any], run_dir: Path, improved: bool) -> None:
    """last.pt, then best.pt when this epoch is the best so far.

    A death between the two leaves last.pt naming this epoch as the best while
    best.pt holds an older one; `repair_best` (on --resume) copies last.pt over it.
    A failed write says what the folder still holds, and how to go on.
    """
    try:
        save_atomic(state, run_dir / LAST)
        if improved:
            save_atomic(state, run_dir / BEST)
    except ArchError as err:
        kept = state["epoch"] - 1
        if not kept:
            raise ArchError(f"{err.message}; no epoch was saved yet") from None
        raise ArchError(f"{err.message}; {run_dir / LAST} still holds epoch {kept}: make room (or fix the folder), "
                        f"then continue with: archdsl train --resume {run_dir}") from None


def repair_best(last: dict[str, Any], run_dir: Path) -> None:
    """Make best.pt hold last.pt's best epoch when a death between their writes left it behind."""
    if last["best_epoch"] != last["epoch"]:
        return  # last.pt is not the best: best.pt was written in an earlier, finished epoch
    best = run_dir / BEST
    try:
        held = read_torch_file(best).get("epoch") if best.is_file() else None
    except ArchError:
        held = None  # unreadable: rewritten below
    if held != last["epoch"]:
        save_atomic(last, best)


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu", *, resume: bool = False) -> dict[str, Any]:
    """An archdsl checkpoint, or a bare state_dict as {"format": "state_dict", "model": …}; checked.

    `resume`: the checkpoint must hold everything a run needs to continue, not just weights.
    """
    path = Path(path)
    if path.is_dir():  # a run folder: its last checkpoint
        path = path / LAST
    if not path.exists():
        raise ArchError(f"checkpoint '{path}' does not exist; give a .pt file or a run folder with last.pt")
    payload = read_torch_file(path, map_location)
    if isinstance(payload, Mapping) and payload.get("format") == FORMAT:
        check_fields(payload, path, resume)
        return dict(payload)
    if resume:
        raise ArchError(f"checkpoint {path} holds weights only, not an archdsl training run (format {FORMAT});"
                        " --resume needs the last.pt of an archdsl train run folder")
    return {"format": "state_dict", "model": state_dict_of(payload, path)}


def check_fields(payload: Mapping[str, Any], path: Path, resume: bool) -> None:
    """Every field a reader will use is there and of its kind; else an ArchError naming the file and the fields."""
    wanted = {**FIELDS_FOR_WEIGHTS, **(FIELDS_FOR_RESUME if resume else {})}
    missing = [key for key in wanted if key not in payload]
    if missing:
        raise ArchError(f"checkpoint {path} says it is an archdsl checkpoint ({FORMAT}) but lacks "
                        f"{', '.join(missing)}; it is damaged, or was not written by archdsl train")
    for key, kind in {**wanted, **FIELDS_OPTIONAL}.items():
        if key in payload and not isinstance(payload[key], kind) or key in wanted and isinstance(payload[key], bool):
            raise ArchError(f"checkpoint {path}: its '{key}' is {describe(payload[key])}, which an archdsl checkpoint"
                            " never holds there; the file is damaged")
    check_tensors(payload["model"], path)  # empty for a network without weights
    if resume and (type(payload["config"].get("epochs")) is not int or payload["config"]["epochs"] < 1):
        raise ArchError(f"checkpoint {path}: its config holds no epoch count; the file is damaged")
    if resume and not 0 <= payload["best_epoch"] <= payload["epoch"] == len(payload["history"]):
        raise ArchError(f"checkpoint {path}: epoch {payload['epoch']}, best epoch {payload['best_epoch']} and "
                        f"{len(payload['history'])} rows of history do not agree; the file is damaged")


# ---- random number generator states, as tensors ------------------------------------------------


def rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                  "cached": float(cached)},
        "python": {"version": int(version), "internal": torch.tensor(internal, dtype=torch.int64),
                   "gauss": None if gauss is None else float(gauss)},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    numpy = state["numpy"]
    np.random.set_state(("MT19937", numpy["keys"].numpy().astype(np.uint32), numpy["pos"], numpy["has_gauss"],
                         numpy["cached"]))
    python = state["python"]
    random.setstate((python["version"], tuple(int(v) for v in python["internal"]), python["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def restore(resume: dict[str, Any], path: Path, optimizer, schedule, scaler) -> None:
    """Load a checked checkpoint's states into a fresh run; a part that does not fit is an ArchError."""
    parts = (("optimizer state", lambda: optimizer.load_state_dict(resume["optimizer"])),
             ("schedule state", lambda: schedule.load_state_dict(resume["scheduler"])),
             ("mixed-precision scaler state", lambda: scaler is not None and resume.get("scaler")
              and scaler.load_state_dict(resume["scaler"])),
             ("random number generator states", lambda: set_rng_state(resume["rng"])))
    for what, load_part in parts:
        try:
            load_part()
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as exc:
            from archdsl.backends.torch.checkpoint import first_sentence

            raise ArchError(f"checkpoint {path}: its {what} does not fit this run ({type(exc).__name__}: "
                            f"{first_sentence(exc)}); the file is damaged or comes from another run") from None

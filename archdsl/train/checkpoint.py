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
    kept = state["epoch"] - 1
    try:
        save_atomic(state, run_dir / LAST)
        kept = state["epoch"]  # best.pt, if it fails now, is put back from last.pt on --resume (repair_best)
        if improved:
            save_atomic(state, run_dir / BEST)
    except ArchError as err:
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
    if resume:
        _check_history(payload["history"], path)


def _check_history(history: list, path: Path) -> None:
    """Every row of the metrics so far holds a number for each column metrics.csv writes."""
    from archdsl.train.metrics import COLUMNS

    for number, row in enumerate(history, 1):
        bad = next((key for key in COLUMNS if not isinstance(row, Mapping) or not _is_number(row.get(key))), None)
        if bad is not None:
            got = f"is {describe(row)}" if not isinstance(row, Mapping) else f"holds {describe(row.get(bad))} for '{bad}'"
            raise ArchError(f"checkpoint {path}: row {number} of its history {got}; expected a row of metrics, a number"
                            f" for each of {', '.join(COLUMNS)}. The file is damaged")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
    """Load a checked checkpoint's states into a fresh run; a part that does not fit is an ArchError.

    torch's load_state_dict takes the optimizer's, the schedule's and the scaler's
    states as they come: a moment buffer of another shape, or a schedule's `last_epoch`
    that is a string, would only fail in the first step. Each is held to the kinds of
    the state this run makes (`same_kinds`) and the optimizer's buffers to the shapes
    of their parameters.
    """
    def load_like(target, state) -> None:
        same_kinds(target.state_dict(), state, "")
        target.load_state_dict(state)

    def load_optimizer(state) -> None:
        same_kinds(optimizer.state_dict()["param_groups"], state["param_groups"], "param_groups")
        optimizer.load_state_dict(state)
        check_optimizer_buffers(optimizer)

    parts = (("optimizer state", lambda: load_optimizer(resume["optimizer"])),
             ("schedule state", lambda: load_like(schedule, resume["scheduler"])),
             ("mixed-precision scaler state", lambda: scaler is not None and resume.get("scaler")
              and load_like(scaler, resume["scaler"])),
             ("random number generator states", lambda: set_rng_state(resume["rng"])))
    for what, load_part in parts:
        try:
            load_part()
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as exc:
            from archdsl.backends.torch.checkpoint import first_sentence

            raise ArchError(f"checkpoint {path}: its {what} does not fit this run ({type(exc).__name__}: "
                            f"{first_sentence(exc)}); the file is damaged or comes from another run") from None


def same_kinds(fresh: Any, loaded: Any, where: str) -> None:
    """ValueError at the first entry of `loaded` that is not of the kind `fresh` (the state this run makes) has there.

    Numbers may be ints or floats, an entry that is None in `fresh` may hold anything,
    and keys only one side has are left to load_state_dict (another torch version adds
    some); a mapping that shares no key with `fresh` is not its state at all.
    """
    if fresh is None:
        return
    if isinstance(fresh, Mapping):
        if not isinstance(loaded, Mapping) or fresh and not any(key in loaded for key in fresh):
            raise ValueError(f"{where or 'the state'} is {describe(loaded)} without any of {', '.join(map(str, fresh))}")
        for key in fresh:
            if key in loaded:
                same_kinds(fresh[key], loaded[key], f"{where}[{key!r}]" if where else repr(key))
        return
    if isinstance(fresh, (list, tuple)):
        if not isinstance(loaded, (list, tuple)) or len(loaded) != len(fresh):
            raise ValueError(f"{where} is {describe(loaded)}{f' of {len(loaded)}' if isinstance(loaded, (list, tuple)) else ''}"
                             f", expected {len(fresh)} entries")
        for index, (mine, theirs) in enumerate(zip(fresh, loaded)):
            same_kinds(mine, theirs, f"{where}[{index}]")
        return
    kinds = (bool,) if isinstance(fresh, bool) else (int, float) if _is_number(fresh) else (type(fresh),)
    if not isinstance(loaded, kinds) or isinstance(loaded, bool) != isinstance(fresh, bool):
        raise ValueError(f"{where} is {describe(loaded)}, expected {describe(fresh)}")


def check_optimizer_buffers(optimizer) -> None:
    """ValueError unless each parameter's optimizer buffers are tensors of its shape (or scalars: adam's step)."""
    for index, param in enumerate(p for group in optimizer.param_groups for p in group["params"]):
        for key, value in optimizer.state.get(param, {}).items():
            if value is None:
                continue
            if not isinstance(value, torch.Tensor) or value.dim() and value.shape != param.shape:
                raise ValueError(f"parameter {index}'s {key!r} is {describe(value)}, the parameter "
                                 f"{tuple(param.shape)}")

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
from pathlib import Path
from typing import Any

import numpy as np
import torch

from archdsl.backends.torch.checkpoint import read_torch_file, unwrap_state_dict
from archdsl.errors import ArchError

FORMAT = "archdsl-checkpoint-1"


def save_atomic(payload: dict[str, Any], path: Path) -> None:
    """Write to a temporary file, then rename: an interrupted save leaves the previous file whole."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():  # a run folder: its last checkpoint
        path = path / "last.pt"
    if not path.exists():
        raise ArchError(f"checkpoint '{path}' does not exist; give a .pt file or a run folder with last.pt")
    payload = read_torch_file(path, map_location)
    if isinstance(payload, dict) and payload.get("format") == FORMAT:
        return payload
    if isinstance(payload, dict) and isinstance(payload.get("model"), dict):
        payload = payload["model"]  # another trainer's {"model": state_dict, ...}
    if isinstance(payload, dict) and payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
        return {"format": "state_dict", "model": unwrap_state_dict(payload)}  # a bare state_dict (e.g. from elsewhere)
    raise ArchError(f"checkpoint '{path}' is neither an archdsl checkpoint nor a state_dict")


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

"""Read weights saved by `torch.save`: a bare state_dict or a trainer checkpoint {"model": state_dict, …}."""
from __future__ import annotations

from pathlib import Path

import torch

from ...errors import ArchError


def read_torch_file(path: Path, map_location="cpu"):
    """`torch.load` of a file we were handed, as data only; an unreadable file is an ArchError."""
    try:
        # weights_only: a checkpoint is data; never run code from a file we were handed.
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt, truncated, or not written by torch.save
        raise ArchError(f"checkpoint '{path}' cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0]});"
                        " it may be truncated or not a PyTorch checkpoint") from None


def unwrap_state_dict(state: dict) -> dict:
    """Keys without the prefixes DDP (`module.`) and torch.compile (`_orig_mod.`) add."""
    for prefix in ("module.", "_orig_mod."):
        if state and all(key.startswith(prefix) for key in state):
            state = {key[len(prefix):]: value for key, value in state.items()}
    return state


def load_checkpoint(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ArchError(f"no checkpoint at '{path}'")
    obj = read_torch_file(path)
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ArchError(f"'{path}' holds no state_dict (expected tensors by name, or a dict with a 'model' key)")
    return unwrap_state_dict(obj)


def load_weights(model, state_dict: dict, net_name: str) -> None:
    """`model.load_state_dict`, with a mismatch reported as an ArchError naming the tensors."""
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:
        raise ArchError(f"the checkpoint does not fit network '{net_name}': {exc}") from None

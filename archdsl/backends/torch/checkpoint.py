"""Read weights saved by `torch.save`: a bare state_dict or a trainer checkpoint {"model": state_dict, …}."""
from __future__ import annotations

from pathlib import Path

import torch

from ...errors import ArchError


def load_checkpoint(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ArchError(f"no checkpoint at '{path}'")
    try:
        # weights_only: a checkpoint is data; never run code from a file we were handed.
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ArchError(f"cannot read checkpoint '{path}': {type(exc).__name__}: {exc}") from None
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ArchError(f"'{path}' holds no state_dict (expected tensors by name, or a dict with a 'model' key)")
    if obj and all(k.startswith("module.") for k in obj):  # saved from DataParallel / DDP
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def load_weights(model, state_dict: dict, net_name: str) -> None:
    """`model.load_state_dict`, with a mismatch reported as an ArchError naming the tensors."""
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:
        raise ArchError(f"the checkpoint does not fit network '{net_name}': {exc}") from None

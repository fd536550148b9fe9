"""Load what the commands are given: a spec (path, text or Network) and a checkpoint."""
from __future__ import annotations

import os

from ...errors import ArchError


def load_network(spec):
    """A Network from a path or spec text; a Network (or anything with .layers) passes through."""
    if hasattr(spec, "layers") and hasattr(spec, "graph"):
        return spec
    import archdsl

    return archdsl.load(spec)


def load_state_dict(checkpoint):
    """A state_dict from a checkpoint path (torch.save of a state_dict or of {'state_dict': ...}) or a dict."""
    if isinstance(checkpoint, dict) and not any(k in checkpoint for k in ("state_dict", "model_state_dict", "model")):
        return checkpoint
    if isinstance(checkpoint, (str, os.PathLike)):
        if not os.path.exists(checkpoint):
            raise ArchError(f"checkpoint {checkpoint} does not exist")
        if str(checkpoint).endswith(".npz"):
            import numpy as np

            with np.load(checkpoint) as archive:
                return {key: archive[key] for key in archive.files}
        # A .pt file needs torch to read; the PyTorch backend's reader says how to install it where it is missing.
        from ..torch import load_checkpoint

        return load_checkpoint(checkpoint)
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            return checkpoint[key]
    if not isinstance(checkpoint, dict):
        raise ArchError("the checkpoint holds no state_dict (expected a dict of tensors, or {'state_dict': ...})")
    return checkpoint

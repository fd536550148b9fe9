"""Load what the commands are given: a spec (path, text or Network) and a checkpoint."""
from __future__ import annotations

import os

from ...errors import ArchError
from ...state_dicts import weights_key


def load_network(spec):
    """A Network from a path or spec text; a Network (or anything with .layers) passes through."""
    if hasattr(spec, "layers") and hasattr(spec, "graph"):
        return spec
    import archdsl

    return archdsl.load(spec)


def load_state_dict(checkpoint):
    """A state_dict from a checkpoint path (torch.save of a state_dict or of {'state_dict': ...}) or a dict."""
    if isinstance(checkpoint, dict) and weights_key(checkpoint) is None:
        return checkpoint
    if isinstance(checkpoint, (str, os.PathLike)):
        if not os.path.exists(checkpoint):
            raise ArchError(f"checkpoint {checkpoint} does not exist")
        if str(checkpoint).endswith(".npz"):
            return _read_npz(checkpoint)
        # A .pt file needs torch to read; the PyTorch backend's reader says how to install it where it is missing.
        from ..torch import load_checkpoint

        return load_checkpoint(checkpoint)
    key = weights_key(checkpoint) if isinstance(checkpoint, dict) else None
    if key is not None and isinstance(checkpoint[key], dict):
        return checkpoint[key]
    if not isinstance(checkpoint, dict):
        raise ArchError("the checkpoint holds no state_dict (expected a dict of tensors, or {'state_dict': ...})")
    return checkpoint


def _read_npz(path) -> dict:
    """The arrays of a .npz checkpoint (numpy.savez of a state_dict), as data only."""
    import zipfile

    import numpy as np

    from ...files import open_regular

    try:
        with open_regular(path, "a checkpoint: .pt (torch.save) or .npz (numpy.savez)", "checkpoint") as file, \
                np.load(file, allow_pickle=False) as archive:
            weights = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        reason = str(exc).split(". ")[0]
        raise ArchError(f"checkpoint {path} cannot be read as a .npz of weights ({type(exc).__name__}: {reason})") from None
    bad = next((key for key, value in weights.items() if value.dtype.kind not in "fiub"), None)
    if bad is not None or not weights:
        raise ArchError(f"checkpoint {path} holds no weights" if not weights else
                        f"checkpoint {path}: '{bad}' holds {weights[bad].dtype} values, not numbers")
    return weights

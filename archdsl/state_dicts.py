"""What a saved state_dict looks like, whoever saved it: the keys trainers keep the weights under,
and the prefixes wrappers add to every name. Shared by the PyTorch backend's checkpoint reader and
the TVM backend's weight loading; it needs neither torch nor numpy."""
from __future__ import annotations

from typing import Mapping

# Where trainers keep the weights in a checkpoint dict: archdsl's own, then the common ones.
WEIGHT_KEYS = ("model", "state_dict", "model_state_dict")
# What wrappers put before every name: DistributedDataParallel, torch.compile.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def weights_key(payload: Mapping) -> str | None:
    """The key a checkpoint dict keeps its weights under, or None for a bare state_dict."""
    return next((key for key in WEIGHT_KEYS if key in payload), None)


def unwrap_state_dict(state: Mapping) -> dict:
    """The names without the prefixes wrappers add (each stripped where every name carries it)."""
    state = dict(state)
    for prefix in WRAPPER_PREFIXES:
        if state and all(key.startswith(prefix) for key in state):
            state = {key[len(prefix):]: value for key, value in state.items()}
    return state

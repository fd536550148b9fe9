"""Read weights saved by `torch.save`: a bare state_dict or a trainer checkpoint {"model": state_dict, …}.

Everything a user hands us as a checkpoint goes through `read_torch_file` (a regular,
non-empty file, loaded as data only) and `state_dict_of` (tensors by name), so that a
zero-byte file, a FIFO, a truncated zip or a `model` that is a list is one clear
error naming the file, never a hang or a traceback.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch

from ...errors import ArchError
from ...files import open_regular
from ...state_dicts import unwrap_state_dict, weights_key

EXPECTED = "a checkpoint written by torch.save (a .pt file)"


def read_torch_file(path: str | os.PathLike, map_location="cpu"):
    """`torch.load` of a file we were handed, as data only; an unreadable file is an ArchError."""
    with open_regular(path, EXPECTED, "checkpoint") as file:
        if os.fstat(file.fileno()).st_size == 0:
            raise ArchError(f"checkpoint {path} is empty (0 bytes); expected {EXPECTED}. Was its writing cut short?")
        try:
            # weights_only: a checkpoint is data; never run code from a file we were handed.
            return torch.load(file, map_location=map_location, weights_only=True)
        except Exception as exc:  # corrupt, truncated, or not written by torch.save
            raise ArchError(f"checkpoint {path} cannot be read ({type(exc).__name__}: {first_sentence(exc)});"
                            " it may be truncated or not a PyTorch checkpoint") from None


def first_sentence(exc: BaseException) -> str:
    """The start of an exception's message (torch's run to paragraphs), or its type when it has none."""
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    text = text.split(". ")[0].removeprefix("[enforce fail at ").strip()
    return text[:200] or "no message"


def describe(value) -> str:
    """A value's kind in words, for "… is a list, expected …"."""
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return {type(None): "nothing (None)", list: "a list", tuple: "a tuple", str: "a string", int: "a number",
            float: "a number", bool: "true/false", dict: "a dict"}.get(type(value), f"a {type(value).__name__}")


def state_dict_of(payload, path) -> dict[str, torch.Tensor]:
    """The weights in what `torch.load` returned: a bare state_dict, or under 'model' (or 'state_dict', …)."""
    weights = payload
    if isinstance(payload, Mapping):
        key = weights_key(payload)
        if key is not None:
            weights = payload[key]
            if not isinstance(weights, Mapping):
                raise ArchError(f"checkpoint {path}: its '{key}' is {describe(weights)}; expected the weights, a "
                                "mapping of parameter names to tensors")
        elif not payload:
            raise ArchError(f"checkpoint {path} holds an empty dict; expected weights (parameter names to tensors)")
    if not isinstance(weights, Mapping):
        raise ArchError(f"checkpoint {path} holds {describe(weights)}; expected a state_dict (parameter names to "
                        "tensors) or a dict with one under 'model'")
    return unwrap_state_dict(check_tensors(weights, path))


def check_tensors(weights: Mapping, path) -> dict[str, torch.Tensor]:
    """`weights` as a dict, when every entry is a tensor of numbers under a name; else an ArchError naming the entry."""
    for name, value in weights.items():
        if not isinstance(name, str) or not isinstance(value, torch.Tensor):
            raise ArchError(f"checkpoint {path}: its weights hold {describe(value)} under {name!r}; expected a tensor"
                            " for every parameter name (is it a state_dict?)")
        kind = unloadable(value)
        if kind:
            raise ArchError(f"checkpoint {path}: its weights hold {kind} under {name!r}; expected a dense tensor of"
                            " real numbers, as a network's parameters are")
    return dict(weights)


def unloadable(tensor: torch.Tensor) -> str | None:
    """What makes `tensor` no network weight (load_state_dict cannot copy it, or would drop part of it), or None."""
    if tensor.layout != torch.strided:
        return f"a {str(tensor.layout).removeprefix('torch.').removeprefix('_')} tensor"
    if tensor.is_meta:
        return "a tensor without data (device 'meta')"
    if tensor.is_quantized:
        return f"a quantized tensor ({str(tensor.dtype).removeprefix('torch.')})"
    if tensor.is_complex() or tensor.dtype == torch.bool:
        return f"a tensor of {str(tensor.dtype).removeprefix('torch.')} values"
    return None


def load_checkpoint(path) -> dict:
    """The state_dict in a checkpoint file (a bare one, or a trainer's)."""
    return state_dict_of(read_torch_file(Path(path)), path)


def load_weights(model, state_dict: dict, net_name: str) -> None:
    """`model.load_state_dict`, with a mismatch reported as an ArchError naming the tensors."""
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:
        raise ArchError(f"the checkpoint does not fit network '{net_name}': {exc}") from None

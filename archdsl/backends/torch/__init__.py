"""The PyTorch backend: a checked `Network` → an nn.Module, a standalone .py, an ONNX file.

    to_torch(net, init="auto")            -> nn.Module (the source it runs: type(model).archdsl_source)
    generate_source(net, init="auto")     -> str, a file importing only torch
    export_onnx(net, path, model=None, batch=1, check=True) -> Path
    load_checkpoint(path)                 -> state_dict (a raw one, or a trainer's {"model": …})
    layer_module(model, net, layer_name)  -> the submodule that computes a layer, or None

Lowering is a table from op class to emitter (`lower.LOWERING`); `plan` turns the IR
into named statements, `codegen` prints them, `module` executes that source.
"""
from __future__ import annotations

from ...errors import ArchError

try:
    import torch  # noqa: F401  (the real torch: this package's name does not shadow it)
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ArchError(
        f"the PyTorch backend needs PyTorch: pip install torch==2.13.0 'archdsl[torch]' (import failed: {exc})"
    ) from None

from .checkpoint import load_checkpoint  # noqa: E402
from .codegen import generate_source  # noqa: E402
from .module import to_torch  # noqa: E402
from .onnx_export import export_onnx  # noqa: E402
from .plan import build_plan  # noqa: E402


def layer_module(model, net, layer_name: str):
    """The submodule of `model` (built by `to_torch`) that computes `layer_name`, or None for a layer
    written inline in `forward` (add, concat, flatten)."""
    try:
        return model.get_submodule(net.module_path(layer_name))
    except AttributeError:
        return None


__all__ = ["to_torch", "generate_source", "export_onnx", "load_checkpoint", "build_plan", "layer_module"]

"""ONNX export through `torch.onnx.export`, checked with onnx.checker and onnxruntime.

The dynamo-based exporter (torch.export + onnxscript; the default since torch 2.9)
is used first; the TorchScript exporter (`dynamo=False`, deprecated but still
shipped in 2.13) is the fallback for a graph torch.export cannot capture. Both work
offline. The batch dimension is dynamic; outputs are named as in the spec.

The file is the architecture as written, so that `archdsl import` reads the spec back:
batch norms stay batch norms (the exporters fold them into the convolutions by default,
which changes the parameters), a bias stays even where it is still all zeros, and `lrn`
is ONNX's own LRN operator rather than the nine operators PyTorch computes it with.
"""
from __future__ import annotations

import contextlib
import functools
import io
import logging
import warnings
from pathlib import Path

import torch

from ... import files
from ...errors import ArchError

OPSET = 18


def export_onnx(net, path, *, model=None, batch: int = 1, check: bool = True, exporter: str = "auto") -> Path:
    """Write `net` (or `model`, its `to_torch()` with trained weights) to `path` as ONNX.

    `exporter`: "dynamo", "torchscript", or "auto" (dynamo, then torchscript).
    With `check`, the file must pass `onnx.checker.check_model` and onnxruntime must
    reproduce PyTorch's outputs (to 1e-4, relative to the outputs' magnitude where it is over 1).
    """
    path = Path(path)
    files.check_writable(path)
    model = (model if model is not None else net.to_torch()).eval().cpu()
    # The batch axis is dynamic, so the example's size is only what is traced; torch.export treats
    # a dimension of size 1 as the constant 1 and then refuses to make it dynamic, so trace 2 or more.
    example = torch.randn(max(batch, 2), *net.input_shape)
    names = list(net.outputs)
    order = ("dynamo", "torchscript") if exporter == "auto" else (exporter,)
    errors = []
    for kind in order:
        try:
            _EXPORTERS[kind](model, example, path, names)
            break
        except OSError as exc:  # the disk, not the exporter: the next one would fail the same way
            raise files.os_error(exc, path) from None
        except Exception as exc:  # the next exporter may manage; report all if none does
            errors.append(f"{kind}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    else:
        raise ArchError(f"ONNX export of network '{net.name}' failed: " + "; ".join(errors))
    if errors:
        warnings.warn(f"ONNX export of '{net.name}' fell back to the TorchScript exporter ({errors[0]})", stacklevel=2)
    if check:
        check_onnx(path, model, net)
    return path


def _quiet():
    """The exporters print progress and deprecation notes; a compiler should not."""
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    logger = logging.getLogger("torch.onnx")  # "torchvision is not installed. Skipping …"
    level = logger.level
    logger.setLevel(logging.ERROR)
    stack.callback(logger.setLevel, level)
    return stack


def _adaptive_max_pool(x, output_size):
    """aten.adaptive_max_pool{1,2,3}d as slices, amax and cat, one spatial axis at a time (a product of
    windows is reduced axis by axis): ONNX has no operator for it where the output size does not divide
    the input's, and neither exporter lowers it. The indices are unused (return_indices=False)."""
    from ...ops.pool import adaptive_windows

    for axis, out in enumerate(output_size, start=2):
        size = x.shape[axis]
        if size != out:
            x = torch.cat([x.narrow(axis, a, b - a).amax(axis, keepdim=True) for a, b in adaptive_windows(size, out)], axis)
    return x, torch.zeros(x.shape, dtype=torch.int64, device=x.device)


def _export_dynamo(model, example, path: Path, names: list[str]) -> None:
    batch = torch.export.Dim("batch", min=1)
    with _quiet(), _onnx_lrn(model):
        program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
        if any(isinstance(m, (torch.nn.AdaptiveMaxPool1d, torch.nn.AdaptiveMaxPool2d, torch.nn.AdaptiveMaxPool3d))
               for m in model.modules()):
            table = torch.export.default_decompositions()
            for op in (torch.ops.aten.adaptive_max_pool1d, torch.ops.aten.adaptive_max_pool2d,
                       torch.ops.aten.adaptive_max_pool3d):
                table[op.default] = _adaptive_max_pool
            program = program.run_decompositions(table)
        onnx_program = torch.onnx.export(
            program, dynamo=True, opset_version=OPSET, input_names=["input"], output_names=names, optimize=False,
            verbose=False, custom_translation_table={torch.ops.archdsl.lrn.default: _lrn_onnxscript()},
        )
        _optimize_keeping_the_architecture(onnx_program.model, set(model.state_dict()))
        onnx_program.save(str(path))


def _optimize_keeping_the_architecture(model, parameters: set[str]) -> None:
    """onnxscript's optimizer (what `optimize=True` runs: constant folding, its rewrite rules, clean-up)
    without the rules that change the architecture: folding batch norms into convolutions, dropping
    biases that are zero (a fresh model's are), and merging equal initialisers. The zero biases the
    exporter itself gives convolutions that have none go (they are not among the `parameters`)."""
    import onnx_ir as ir
    import onnx_ir.passes.common as common
    from onnxscript import rewriter
    from onnxscript.optimizer import _constant_folding
    from onnxscript.rewriter.rules import common as rules

    changing = {
        rules.fuse_batchnorm_into_conv_rule, rules.fuse_batchnorm_into_conv_transpose_rule,
        rules.fuse_batchnorm_into_gemm_rule, rules.remove_optional_bias_from_conv_rule,
        rules.remove_optional_bias_from_conv_transpose_rule, rules.remove_optional_bias_from_gemm_rule,
    }
    kept = [rule for rule in rewriter._DEFAULT_REWRITE_RULES if rule not in changing]
    passes = ir.passes.Sequential(
        common.InlinePass(),
        ir.passes.PassManager(
            [_constant_folding.FoldConstantsPass(shape_inference=True, input_size_limit=8192, output_size_limit=1 << 20),
             rewriter.RewritePass(kept), common.RemoveUnusedNodesPass(), common.RemoveUnusedFunctionsPass(),
             common.RemoveUnusedOpsetsPass()],
            steps=2, early_stop=True,
        ),
        common.RemoveUnusedNodesPass(),
        common.LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0),
        common.CommonSubexpressionEliminationPass(),
        common.NameFixPass(),
    )
    passes(model)
    for node in model.graph:
        if node.op_type in ("Conv", "ConvTranspose", "Gemm") and len(node.inputs) == 3 and node.inputs[2] is not None:
            bias = node.inputs[2]
            value = bias.const_value
            if bias.name not in parameters and value is not None and not value.numpy().any():
                node.resize_inputs(2)
    common.RemoveUnusedNodesPass()(model)


def _export_torchscript(model, example, path: Path, names: list[str]) -> None:
    with _quiet(), _onnx_lrn(model):
        torch.onnx.export(
            model, (example,), str(path), dynamo=False, opset_version=OPSET, input_names=["input"],
            output_names=names, dynamic_axes={"input": {0: "batch"}, **{n: {0: "batch"} for n in names}},
            training=torch.onnx.TrainingMode.PRESERVE,  # batch norms stay (eval mode would fold them)
        )


# ---- lrn as ONNX's LRN ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _lrn_op():
    """`torch.ops.archdsl.lrn`: PyTorch's local response norm as one op, which the exporters translate to LRN."""

    @torch.library.custom_op("archdsl::lrn", mutates_args=())
    def lrn(x: torch.Tensor, size: int, alpha: float, beta: float, k: float) -> torch.Tensor:
        return torch.nn.functional.local_response_norm(x, size, alpha, beta, k)

    @lrn.register_fake
    def _(x, size, alpha, beta, k):
        return torch.empty_like(x)

    def symbolic(g, x, size, alpha, beta, k):  # the TorchScript exporter's translation
        from torch.onnx import symbolic_helper as helper

        value = helper._maybe_get_const
        return g.op("LRN", x, size_i=value(size, "i"), alpha_f=value(alpha, "f"), beta_f=value(beta, "f"),
                    bias_f=value(k, "f"))

    torch.onnx.register_custom_op_symbolic("archdsl::lrn", symbolic, OPSET)
    return lrn


def _lrn_onnxscript():
    from onnxscript import opset18 as op

    def lrn(x, size: int, alpha: float, beta: float, k: float):
        return op.LRN(x, size=size, alpha=alpha, beta=beta, bias=k)

    return lrn


class _LRN(torch.nn.Module):
    def __init__(self, module: torch.nn.LocalResponseNorm):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = module.size, module.alpha, module.beta, module.k

    def forward(self, x):
        return torch.ops.archdsl.lrn(x, self.size, self.alpha, self.beta, self.k)


@contextlib.contextmanager
def _onnx_lrn(model):
    """Each LocalResponseNorm of an odd size swapped for the one-op version while exporting (ONNX's LRN
    centres an even window one channel later than PyTorch does, so even sizes keep PyTorch's ops)."""
    _lrn_op()
    swapped = []
    for name, module in list(model.named_modules()):
        if isinstance(module, torch.nn.LocalResponseNorm) and module.size % 2 == 1:
            parent_name, _, attr = name.rpartition(".")
            parent = model.get_submodule(parent_name)
            setattr(parent, attr, _LRN(module))
            swapped.append((parent, attr, module))
    try:
        yield
    finally:
        for parent, attr, module in swapped:
            setattr(parent, attr, module)


_EXPORTERS = {"dynamo": _export_dynamo, "torchscript": _export_torchscript}


def check_onnx(path: Path, model, net, *, atol: float = 1e-4, batch: int = 3) -> None:
    """onnx.checker, then onnxruntime against PyTorch on a random batch (not the export's size).

    The bound is `atol` for outputs of order 1 and relative beyond: freshly initialised deep
    networks (DenseNet-121: logits near 1e3) carry float32 rounding of 1e-3 in both runtimes."""
    try:
        import numpy as np
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise ArchError(f"checking the ONNX file needs onnx and onnxruntime: pip install 'archdsl[torch]' ({exc})") from None

    onnx.checker.check_model(str(path), full_check=True)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(batch, *net.input_shape)
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        expected = model(x)
    expected = list(expected.values()) if isinstance(expected, dict) else [expected]
    for name, a, b in zip(net.outputs, got, expected):
        if a.shape != tuple(b.shape):
            raise ArchError(f"the ONNX model of '{net.name}' gives output '{name}' the shape {a.shape}, PyTorch {tuple(b.shape)}")
        error = float(np.abs(a - b.numpy()).max())
        bound = atol * max(1.0, float(b.abs().max()))
        if not error <= bound:
            raise ArchError(
                f"the ONNX model of '{net.name}' disagrees with PyTorch on output '{name}':"
                f" max |difference| {error:.3g} (bound {bound:.3g}: {atol} × max(1, max |output|))"
            )

"""Build a lowered network with `tvm.compile`, and export it as a self-contained directory.

The export is what `archdsl run` loads with TVM's runtime and numpy alone:

    OUT/model.so     the compiled Relax VM executable (kernels + VM bytecode; bound weights inside)
    OUT/params.npz   weights passed as parameters (only when built with bind_weights=False)
    OUT/meta.json    input shape, output names, target, spec name, parameter order
"""
from __future__ import annotations

import json
import os
import time

import numpy as np

from ._tvm import import_tvm
from .database import best_records_dir
from .fold_weight_layouts import fold_weight_layouts
from .parallelize_untuned import parallelize_untuned
from .target import is_gpu, target_to_dict

FORMAT_VERSION = 1


# CPU kernels read 2-D convolutions as NHWC activations and OHWI weights: the channel
# axis is innermost, so MetaSchedule vectorizes over channels with unit-stride loads.
# On this 2-core Zen 3 one conv (64 ch, 56x56, 64 trials) ran 4.7 ms in NCHW and 3.0 ms
# in NHWC with the weight layout rewrite below. ConvertLayout keeps the network's
# interface NCHW: it transposes once at the input and once before flatten.
# Transposed convolutions stay NCHW (TVM legalizes them in no other layout), with a
# transpose on either side when they sit among NHWC layers.
CPU_CONV_LAYOUTS = {"relax.nn.conv2d": ["NHWC", "OHWI"], "relax.nn.conv2d_transpose": ["NCHW", "IOHW"]}


def optimize(mod, target, database_dir: str | None = None):
    """Legalize and fuse `mod` for `target`; apply tuned schedules from a MetaSchedule database.

    On CPUs, the weights (constants) are marked layout-free before tuning, so that a
    schedule may store them in whatever order its loops read them; after the database
    is applied, those rewrites become separate functions of constants, which
    FoldConstant evaluates once at build time (MetaSchedule's weight prepacking).
    Untuned GPU kernels need a thread binding to run at all: DLight's default
    schedules give every fused kernel one. Untuned CPU kernels stay naive loops.
    Tuning and building both go through here, so a database's workloads match.
    """
    import_tvm()
    from tvm import relax

    cpu = not is_gpu(target)
    with target:
        mod = relax.transform.DecomposeOpsForInference()(mod)  # any batch norm the folding left
        if cpu:
            mod = relax.transform.ConvertLayout(CPU_CONV_LAYOUTS)(mod)
            mod = fold_weight_layouts(mod)  # the weights' new layouts, in numpy rather than TIR
        mod = relax.transform.CanonicalizeBindings()(mod)
        mod = relax.get_pipeline("zero")(mod)  # legalize, fold constants, fuse
        if cpu:
            mod = relax.transform.AttachAttrLayoutFreeBuffers()(mod)
        if database_dir is not None:
            mod = relax.transform.MetaScheduleApplyDatabase(best_records_dir(database_dir))(mod)
            if cpu:
                mod = relax.transform.SplitLayoutRewritePreproc()(mod)
                mod = relax.transform.FoldConstant()(mod)
        if not cpu:
            from tvm.s_tir import dlight

            mod = dlight.ApplyDefaultSchedule(
                dlight.gpu.Matmul(), dlight.gpu.GEMV(), dlight.gpu.Reduction(),
                dlight.gpu.GeneralReduction(), dlight.gpu.Fallback(),
            )(mod)
    return mod


def build(mod, target, database_dir: str | None = None):
    """A `tvm.runtime.Executable` for `mod` (a Relax module straight from `lower`)."""
    tvm = import_tvm()
    from ...errors import ArchError

    if is_gpu(target) and not tvm.runtime.enabled(target.kind.name):
        raise ArchError(f"this TVM build cannot generate {target.kind.name} code (the PyPI wheel is CPU-only); "
                        "build TVM with CUDA enabled to compile for --device cuda")
    mod = optimize(mod, target, database_dir)
    if not is_gpu(target):
        # After optimize, not in it: tuning must see the kernels unscheduled.
        mod = parallelize_untuned(mod)
    return tvm.compile(mod, target=target)


def export(executable, lowered, target, out_dir: str, *, spec_name: str = "", extra: dict | None = None) -> dict:
    """Write model.so, params.npz (if any) and meta.json to `out_dir`; return the metadata."""
    os.makedirs(out_dir, exist_ok=True)
    executable.export_library(os.path.join(out_dir, "model.so"))
    if lowered.param_names:
        np.savez(os.path.join(out_dir, "params.npz"), **{name: lowered.params[name] for name in lowered.param_names})
    meta = {
        "format": FORMAT_VERSION,
        "spec": spec_name,
        "input_shape": list(lowered.input_shape),
        "input_dtype": "float32",
        "outputs": lowered.output_names,
        "params": lowered.param_names,
        "target": target_to_dict(target),
        "device": "cuda" if is_gpu(target) else "cpu",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(extra or {}),
    }
    with open(os.path.join(out_dir, "meta.json"), "w") as handle:
        json.dump(meta, handle, indent=2)
    return meta

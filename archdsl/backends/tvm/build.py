"""Build a lowered network with `tvm.compile`, and export it as a self-contained directory.

The export is what `archdsl run` loads with TVM's runtime and numpy alone:

    OUT/model.so     the compiled Relax VM executable (kernels + VM bytecode; bound weights inside)
    OUT/params.npz   weights passed as parameters (only when built with bind_weights=False)
    OUT/meta.json    input shape, output names, target, spec name, parameter order
"""
from __future__ import annotations

import json
import time

import numpy as np

from ... import files
from ...errors import ArchError
from . import artefact
from ._tvm import import_tvm
from .database import best_records_dir
from .fold_weight_layouts import fold_weight_layouts
from .parallelize_untuned import parallelize_untuned
from .target import is_gpu, target_to_dict


# CPU kernels read 2-D convolutions as NHWC activations and OHWI weights: the channel
# axis is innermost, so MetaSchedule vectorizes over channels with unit-stride loads.
# On this 2-core Zen 3 one conv (64 ch, 56x56, 64 trials) ran 4.7 ms in NCHW and 3.0 ms
# in NHWC with the weight layout rewrite below. ConvertLayout keeps the network's
# interface NCHW: it transposes once at the input and once before flatten.
# Transposed convolutions stay NCHW (TVM legalizes them in no other layout), with a
# transpose on either side when they sit among NHWC layers.
CPU_CONV_LAYOUTS = {"relax.nn.conv2d": ["NHWC", "OHWI"], "relax.nn.conv2d_transpose": ["NCHW", "IOHW"]}


def count_scheduled(mod) -> tuple[int, int]:
    """(kernels with a schedule, all kernels) of a module: after a database is applied, the tuned ones."""
    import_tvm()
    from tvm import tirx

    kernels = [func for func in mod.functions.values() if isinstance(func, tirx.PrimFunc)]
    return sum(1 for f in kernels if f.attrs is not None and "tirx.is_scheduled" in f.attrs), len(kernels)


def optimize(mod, target, database_dir: str | None = None, report: dict | None = None):
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
            if report is not None:  # a database whose records do not match applies nothing, silently
                report["tuned_kernels"], report["kernels"] = count_scheduled(mod)
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


def build(mod, target, database_dir: str | None = None, report: dict | None = None):
    """A `tvm.runtime.Executable` for `mod` (a Relax module straight from `lower`).

    With a database, `report` receives how many kernels it scheduled: tuned_kernels of kernels.
    """
    tvm = import_tvm()

    if is_gpu(target) and not tvm.runtime.enabled(target.kind.name):
        raise ArchError(f"this TVM build cannot generate {target.kind.name} code (the PyPI wheel is CPU-only); "
                        "build TVM with CUDA enabled to compile for --device cuda")
    mod = optimize(mod, target, database_dir, report)
    if not is_gpu(target):
        # After optimize, not in it: tuning must see the kernels unscheduled.
        mod = parallelize_untuned(mod)
    return tvm.compile(mod, target=target)


def export(executable, lowered, target, out_dir: str, *, spec_name: str = "", extra: dict | None = None) -> dict:
    """Write model.so, params.npz (if any) and meta.json to `out_dir`; return the metadata.

    The folder is written whole or not at all: into a temporary folder beside it,
    renamed at the end (an interrupted build leaves the previous one as it was).
    An existing `out_dir` is replaced only when it holds nothing but a build.
    """
    out = artefact.check_out_dir(out_dir)
    with files.atomic_folder(out) as tmp:
        library = tmp / artefact.LIBRARY
        executable.export_library(str(library))
        if lowered.param_names:
            with files.atomic_write(tmp / artefact.PARAMS) as handle:
                np.savez(handle, **{name: lowered.params[name] for name in lowered.param_names})
        meta = {
            "format": artefact.FORMAT_VERSION,
            "spec": spec_name,
            "input_shape": list(lowered.input_shape),
            "input_dtype": "float32",
            "outputs": lowered.output_names,
            "params": lowered.param_names,
            "param_shapes": {name: list(np.shape(lowered.params[name])) for name in lowered.param_names},
            "library": artefact.library_fingerprint(library),
            "target": target_to_dict(target),
            "device": "cuda" if is_gpu(target) else "cpu",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **(extra or {}),
        }
        files.write_text(tmp / artefact.META, json.dumps(meta, indent=2))
    return meta

"""The Apache TVM backend: graph IR -> Relax IRModule -> compiled (optionally tuned) module.

Public API (TVM is imported only when one of these runs, never at import time):

    to_tvm(net, state_dict=None, target=None)      -> callable runner (numpy/torch in, numpy out)
    compile_spec(spec, out_dir, ...)               -> writes OUT/model.so, params.npz, meta.json
    run_exported(out_dir, x)                        -> numpy outputs, needs only tvm + numpy
    tune(spec, trials=..., target=..., db=...)      -> MetaSchedule tuning into a reusable database

and, for the Relax module itself, `archdsl.backends.tvm.lower.lower(net, ...)` -> Lowered.
(Submodules are named so that none shadows these functions: `tuning`, not `tune`.)
"""
from __future__ import annotations


def to_tvm(net, state_dict=None, target=None, *, batch: int = 1, bind_weights: bool = True, db: str | None = None):
    """Compile `net` for `target` (default: this CPU) and return a runner.

    The runner takes a batch-first numpy array or torch tensor and returns a numpy
    array (one output) or {output name: array}. `db` applies a tuning database.
    """
    from .build import build
    from .lower import lower
    from .runner import TVMRunner
    from .target import is_gpu, resolve_target
    from .database import open_database_dir

    tvm_target = resolve_target(target)
    lowered = lower(net, state_dict, batch=batch, bind_weights=bind_weights)
    database_dir = open_database_dir(db, net, tvm_target, batch, create=False) if db else None
    executable = build(lowered.mod, tvm_target, database_dir)
    return TVMRunner(executable, lowered.input_shape, lowered.output_names, lowered.params, lowered.param_names,
                     device="cuda" if is_gpu(tvm_target) else "cpu")


def compile_spec(*args, **kwargs):
    from .compile import compile_spec as _compile_spec

    return _compile_spec(*args, **kwargs)


def tune(*args, **kwargs):
    from .tuning import tune as _tune

    return _tune(*args, **kwargs)


def run_exported(out_dir, x):
    from .runner import run_exported as _run_exported

    return _run_exported(out_dir, x)


__all__ = ["to_tvm", "compile_spec", "tune", "run_exported"]

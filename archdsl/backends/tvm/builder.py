"""A MetaSchedule builder that keeps its worker processes and skips the tensor-intrinsic import.

TVM's LocalBuilder starts fresh worker processes for every batch of candidates, and
its build function imports `tvm.s_tir.tensor_intrin` (16.6 s here) in each new
worker: about half of ResNet-18's tuning time was spent there. This builder keeps
one process pool for the whole tuning run (each worker imports TVM once) and builds
with a function that does not import the intrinsics: float32 schedules for LLVM and
CUDA never tensorize with them.
"""
from __future__ import annotations

from ._tvm import import_tvm


def _build_in_worker(mod, target, params):
    # Runs in a worker process; imports are local so cloudpickle ships this function by value.
    import os
    import tempfile

    from tvm.driver import build as tvm_build
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock
    from tvm.support.tar import tar

    mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod)
    rt_mod = tvm_build(mod, target=target)
    path = os.path.join(tempfile.mkdtemp(), "tvm_tmp_mod." + tar.output_format)
    rt_mod.export_library(path, fcompile=tar)
    return path


def make_builder(max_workers: int, timeout_sec: float = 60.0):
    """A PyBuilder with a persistent pool of `max_workers` processes."""
    import sys

    import cloudpickle

    import_tvm()
    from tvm.ir.utils import derived_object
    from tvm.s_tir.meta_schedule.builder import BuilderResult, PyBuilder
    from tvm.support.popen_pool import PopenPoolExecutor, StatusKind

    # Ship this module's functions to the workers by value: they need not find archdsl
    # on their sys.path (the workers are `python -m tvm.exec.popen_worker`).
    cloudpickle.register_pickle_by_value(sys.modules[__name__])

    @derived_object
    class PersistentBuilder(PyBuilder):
        def __init__(self):
            super().__init__()
            self.pool = PopenPoolExecutor(max_workers=max_workers, timeout=timeout_sec)

        def build(self, build_inputs):
            jobs = [(b.mod, b.target, None) for b in build_inputs]
            results = []
            for outcome in self.pool.map_with_error_catching(lambda job: _build_in_worker(*job), jobs):
                if outcome.status == StatusKind.COMPLETE:
                    results.append(BuilderResult(outcome.value, None))
                elif outcome.status == StatusKind.TIMEOUT:
                    results.append(BuilderResult(None, f"build timed out after {timeout_sec} s"))
                else:
                    results.append(BuilderResult(None, f"build failed: {outcome.value}"))
            return results

        def shutdown(self):
            self.pool.shutdown()

    return PersistentBuilder()

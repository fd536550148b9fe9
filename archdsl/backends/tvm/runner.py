"""Run a compiled network: a callable that takes numpy/torch input and returns numpy outputs.

Used both in-process (`to_tvm`) and for exported directories (`run_exported`), which
needs only tvm and numpy: no archdsl IR, no torch.
"""
from __future__ import annotations

import os
import statistics
import time

import numpy as np

from ...errors import ArchError
from . import artefact
from ._tvm import import_tvm


class TVMRunner:
    """Calls the Relax VM's `main`. One output -> an array; several -> {name: array}."""

    def __init__(self, executable, input_shape, output_names, params: dict | None = None,
                 param_names=(), device: str = "cpu"):
        tvm = import_tvm()
        from tvm import relax

        self.device = tvm.cuda(0) if device == "cuda" else tvm.cpu(0)
        self.vm = relax.VirtualMachine(executable, self.device)
        self.input_shape = tuple(input_shape)
        self.output_names = list(output_names)
        self._tvm = tvm
        # Weights passed as parameters live on the device once, not per call.
        self._params = [tvm.runtime.tensor(np.ascontiguousarray(params[name], np.float32), self.device)
                        for name in param_names]
        self._main = self.vm["main"]

    def _input(self, x):
        if hasattr(x, "detach"):  # torch tensor; torch is not imported here
            x = x.detach().cpu().numpy()
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.shape == self.input_shape[1:]:  # a single sample without its batch axis
            x = x[None]
        if x.shape != self.input_shape:
            raise ArchError(f"input has shape {list(x.shape)}, the compiled network takes {list(self.input_shape)} "
                            "(batch first; the batch size is fixed at compile time)")
        return self._tvm.runtime.tensor(x, self.device)

    def run_raw(self, tvm_input):
        """Run on an input already on the device, return TVM values (for timing)."""
        return self._main(tvm_input, *self._params)

    def __call__(self, x):
        result = self.run_raw(self._input(x))
        if len(self.output_names) == 1:
            return result.numpy()
        return {name: result[i].numpy() for i, name in enumerate(self.output_names)}

    def benchmark(self, repeat: int = 50, warmup: int = 5, x=None) -> float:
        """Median latency of `main` in seconds (input already on the device)."""
        x = self._input(np.random.default_rng(0).standard_normal(self.input_shape, dtype=np.float32) if x is None else x)
        for _ in range(warmup):
            self.run_raw(x)
        self.device.sync()
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            self.run_raw(x)
            self.device.sync()
            times.append(time.perf_counter() - start)
        return statistics.median(times)


def load_exported(out_dir: str) -> TVMRunner:
    """A runner for a directory written by `compile_spec` (needs tvm and numpy only).

    The folder is checked before its model.so is loaded (artefact.py): a garbage or
    empty meta.json, a missing or truncated model.so, a missing or damaged params.npz
    are errors naming the folder. It is still native code: run only trusted folders.
    """
    meta = artefact.read_meta(out_dir)
    library = artefact.check_library(out_dir, meta)
    params = artefact.read_params(out_dir, meta)
    tvm = import_tvm()
    try:
        executable = tvm.runtime.load_module(str(library))
        return TVMRunner(executable, meta["input_shape"], meta["outputs"], params, meta["params"], meta["device"])
    except Exception as exc:  # TVM's own errors (InternalError, TVMError): a library that does not load or start
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise ArchError(f"{out_dir}/{artefact.LIBRARY} cannot be loaded on this machine's {meta['device']}"
                        f" ({first[:300]}); compile it again here: archdsl compile SPEC --target tvm -o {out_dir}") from None


def run_exported(out_dir: str, x):
    """Load `out_dir` and run it on `x` (array, or path to a .npy file); numpy outputs."""
    if isinstance(x, (str, os.PathLike)):
        x = artefact.read_input(x, artefact.read_meta(out_dir)["input_shape"])
    return load_exported(out_dir)(x)

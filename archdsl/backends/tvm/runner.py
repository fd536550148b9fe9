"""Run a compiled network: a callable that takes numpy/torch input and returns numpy outputs.

Used both in-process (`to_tvm`) and for exported directories (`run_exported`), which
needs only tvm and numpy: no archdsl IR, no torch.
"""
from __future__ import annotations

import json
import os
import statistics
import time

import numpy as np

from ...errors import ArchError
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
    """A runner for a directory written by `compile_spec` (needs tvm and numpy only)."""
    meta_path = os.path.join(out_dir, "meta.json")
    if not os.path.exists(meta_path):
        raise ArchError(f"{out_dir} is not a compiled archdsl model (no meta.json); create one with: archdsl compile SPEC --target tvm -o {out_dir}")
    with open(meta_path) as handle:
        meta = json.load(handle)
    tvm = import_tvm()
    executable = tvm.runtime.load_module(os.path.join(out_dir, "model.so"))
    params = {}
    if meta.get("params"):
        with np.load(os.path.join(out_dir, "params.npz")) as archive:
            params = {name: archive[name] for name in meta["params"]}
    return TVMRunner(executable, meta["input_shape"], meta["outputs"], params, meta.get("params", []), meta.get("device", "cpu"))


def run_exported(out_dir: str, x):
    """Load `out_dir` and run it on `x` (array, or path to a .npy file); numpy outputs."""
    if isinstance(x, (str, os.PathLike)):
        x = np.load(x)
    return load_exported(out_dir)(x)

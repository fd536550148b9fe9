"""Measuring on machines registered with TVM's RPC tracker (`--rpc-tracker HOST:PORT --rpc-key KEY`).

Kernels are still built here (cross-compiled for the target you name); only the
measurements run on the servers. Start a tracker and servers with:

    python -m tvm.exec.rpc_tracker --host 0.0.0.0 --port 9190
    python -m tvm.exec.rpc_server --tracker HOST:9190 --key KEY      # on each device
"""
from __future__ import annotations

import os
import statistics
import tempfile

import numpy as np

from ...errors import ArchError
from ._tvm import import_tvm


def parse_tracker(text: str | None) -> tuple[str, int]:
    if not text or ":" not in text:
        raise ArchError(f"--rpc-tracker must be HOST:PORT (e.g. 127.0.0.1:9190). Received: {text!r}")
    host, _, port = text.rpartition(":")
    try:
        return host, int(port)
    except ValueError:
        raise ArchError(f"--rpc-tracker port must be a number. Received: {text!r}") from None


class RemoteSession:
    """A tracker address and server key; opens sessions on demand."""

    def __init__(self, host: str, port: int, key: str, session_timeout_s: int = 120):
        self.host, self.port, self.key, self.timeout = host, port, key, session_timeout_s

    def _tracker(self):
        import_tvm()
        from tvm import rpc

        try:
            return rpc.connect_tracker(self.host, self.port)
        except Exception as error:
            raise ArchError(f"cannot reach the RPC tracker at {self.host}:{self.port} ({error}); "
                            "start one with: python -m tvm.exec.rpc_tracker --port PORT") from None

    def check(self) -> None:
        """Fail early, with a message, when no server has registered with this key."""
        summary = self._tracker().summary()
        keys = {}
        for server in summary.get("server_info", []):
            key = str(server.get("key", "")).split(":")[-1]  # entries read 'server:KEY'
            keys[key] = keys.get(key, 0) + 1
        if self.key not in keys:
            known = ", ".join(sorted(keys)) or "none"
            raise ArchError(f"no RPC server with key '{self.key}' is registered at {self.host}:{self.port} "
                            f"(keys there: {known}); start one with: python -m tvm.exec.rpc_server "
                            f"--tracker {self.host}:{self.port} --key {self.key}")

    def session(self):
        return self._tracker().request(self.key, priority=1, session_timeout=self.timeout)

    def meta_schedule_runner(self):
        from tvm.s_tir.meta_schedule.runner import EvaluatorConfig, RPCConfig, RPCRunner

        config = RPCConfig(tracker_host=self.host, tracker_port=self.port, tracker_key=self.key,
                           session_timeout_sec=self.timeout)
        return RPCRunner(config, EvaluatorConfig(number=3, repeat=1, min_repeat_ms=50))

    def latency(self, executable, lowered, repeat: int = 10) -> float:
        """Median latency of `main` on a server, in seconds."""
        from tvm import relax

        tvm = import_tvm()
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.so")
            executable.export_library(path)
            sess = self.session()
            sess.upload(path)
            remote_mod = sess.load_module("model.so")
        device = sess.cpu()
        vm = relax.VirtualMachine(remote_mod, device)
        x = tvm.runtime.tensor(np.random.default_rng(0).standard_normal(lowered.input_shape, dtype=np.float32), device)
        params = [tvm.runtime.tensor(lowered.params[name], device) for name in lowered.param_names]
        # The stateful API: timing a function that returns a tuple does not work over RPC.
        vm.set_input("main", x, *params)
        timer = vm.time_evaluator("invoke_stateful", device, number=1, repeat=repeat, min_repeat_ms=0)
        return statistics.median(timer("main").results)

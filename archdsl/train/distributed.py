"""DistributedDataParallel through PyTorch's own launcher.

`archdsl train SPEC --nproc N` runs PyTorch's launcher (torch.distributed.run) in this
process, as `torchrun --nproc-per-node N [--nnodes … --rdzv-endpoint …] -m archdsl train SPEC …`
would, and sums up a failed worker in a few lines. Each process finds RANK/WORLD_SIZE/LOCAL_RANK in its environment (so
running `torchrun … -m archdsl train SPEC` by hand works too). gloo on CPU, nccl
on GPU. Every rank trains on its shard of each batch order; only rank 0 writes.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from archdsl.errors import ArchError

if TYPE_CHECKING:  # torch is imported where used: the CLI's parser reads LAUNCHER_OPTIONS without it
    import torch

# torchrun options passed through unchanged (multi-node runs)
LAUNCHER_OPTIONS = ("nnodes", "node_rank", "rdzv_endpoint", "rdzv_backend", "rdzv_id", "master_addr", "master_port")


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def context_from_env() -> Context:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context()
    return Context(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def init(ctx: Context, device: torch.device) -> None:
    import torch.distributed

    if not ctx.distributed or torch.distributed.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    torch.distributed.init_process_group(backend)


def shutdown(ctx: Context) -> None:
    import torch.distributed

    if ctx.distributed and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


# What gloo and NCCL say when another process of the run has gone (killed, crashed, out of memory)
_PEER_GONE = ("Connection reset by peer", "Connection closed by peer", "Broken pipe", "Socket Timeout",
              "NCCL communicator was aborted", "connection refused", "Connection refused")


def lost_peer(exc: BaseException, ctx: Context | None = None) -> ArchError | None:
    """An ArchError for a collective that failed because another process of the run is gone; else None."""
    text = str(exc)
    if not isinstance(exc, RuntimeError) or not any(sign in text for sign in _PEER_GONE):
        return None
    ctx = ctx or context_from_env()
    return ArchError(f"rank {ctx.rank}: lost contact with the other processes of the distributed run "
                     f"({text.split('] ', 1)[-1].split('. ')[0]}); the launcher says which one stopped")


def all_sum(values: torch.Tensor, ctx: Context, device: torch.device) -> torch.Tensor:
    """Elementwise sum over ranks (float64 sums on CPU; on the device for nccl)."""
    import torch.distributed

    if not ctx.distributed:
        return values
    on = values.to(device)
    try:
        torch.distributed.all_reduce(on)
    except RuntimeError as exc:
        raise lost_peer(exc, ctx) or exc
    return on.cpu()


def barrier(ctx: Context) -> None:
    import torch.distributed

    if ctx.distributed:
        try:
            torch.distributed.barrier()
        except RuntimeError as exc:
            raise lost_peer(exc, ctx) or exc


def launch(nproc: int, argv: list[str], launcher: dict[str, str | None], run_dir: Path | None = None) -> int:
    """Run `archdsl ARGV` under torch.distributed.run with `nproc` processes per node; its exit code.

    The launcher runs in this process, so that a failed worker is summarised in a few
    lines (which rank, how it ended, how to resume `run_dir`) instead of torchrun's
    ChildFailedError traceback.
    """
    import logging

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    command = [f"--nproc-per-node={nproc}"]
    for key, value in launcher.items():
        if value is not None:
            command.append(f"--{key.replace('_', '-')}={value}")
    if not any(launcher.get(k) for k in ("nnodes", "rdzv_endpoint", "master_port")):
        command.append("--standalone")  # one machine: pick a free port, no rendezvous server needed
    command += ["-m", "archdsl", *argv]
    threads = os.environ.get("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    saved_env = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = threads  # the workers inherit this process's environment
    quiet = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
             if name.startswith(("torch.distributed.elastic", "torch.distributed.run"))]
    levels = [logger.level for logger in quiet]
    for logger in quiet:  # its lines about stopping the others say what the summary below says
        logger.setLevel(logging.CRITICAL)
    try:
        run(parse_args(command))
        return 0
    except ChildFailedError as exc:
        return _summarise(exc, nproc, run_dir)
    except (KeyboardInterrupt, SignalException):
        return 130
    finally:
        for logger, level in zip(quiet, levels):
            logger.setLevel(level)
        if saved_env is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = saved_env


# Exit codes of `archdsl` itself: its own message is already printed by the worker
_OWN_CODES = {1: "stopped with an error (above)", 3: "hit an internal error (above)", 130: "was interrupted"}


def _summarise(exc, nproc: int, run_dir: Path | None) -> int:
    """A few lines for a failed distributed run, on stderr; the exit code to return."""
    import signal

    rank, failure = exc.get_first_failure()
    if failure.exitcode < 0:
        try:
            how = f"was killed by {signal.Signals(-failure.exitcode).name}"
        except ValueError:
            how = f"was killed by signal {-failure.exitcode}"
    else:
        how = _OWN_CODES.get(failure.exitcode, f"exited with code {failure.exitcode}")
    others = len(exc.failures) - 1
    lines = [f"archdsl: the distributed run stopped: rank {rank} (local rank {failure.local_rank}, pid "
             f"{failure.pid}) {how}" + (f"; the launcher then stopped the other process{'es' if others > 1 else ''}"
                                        if others else "")]
    if failure.exitcode < 0 and -failure.exitcode == getattr(signal, "SIGKILL", -1):
        lines.append("  (SIGKILL: killed from outside, often by the kernel when memory runs out)")
    if run_dir is not None:
        if (run_dir / "last.pt").exists():
            lines.append(f"{run_dir / 'last.pt'} holds the last finished epoch; continue with: "
                         f"archdsl train --resume {run_dir} --nproc {nproc}")
        else:
            lines.append(f"no epoch finished, so {run_dir} holds nothing to resume")
    print("\n".join(lines), file=sys.stderr)
    return 130 if failure.exitcode == 130 else 1

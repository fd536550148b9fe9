"""DistributedDataParallel through PyTorch's own launcher.

`archdsl train SPEC --nproc N` re-executes itself as

    python -m torch.distributed.run --nproc-per-node N [--nnodes … --rdzv-endpoint …] -m archdsl train SPEC …

and each process finds RANK/WORLD_SIZE/LOCAL_RANK in its environment (so
running `torchrun … -m archdsl train SPEC` by hand works too). gloo on CPU, nccl
on GPU. Every rank trains on its shard of each batch order; only rank 0 writes.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

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


def all_sum(values: torch.Tensor, ctx: Context, device: torch.device) -> torch.Tensor:
    """Elementwise sum over ranks (float64 sums on CPU; on the device for nccl)."""
    import torch.distributed

    if not ctx.distributed:
        return values
    on = values.to(device)
    torch.distributed.all_reduce(on)
    return on.cpu()


def barrier(ctx: Context) -> None:
    import torch.distributed

    if ctx.distributed:
        torch.distributed.barrier()


def launch(nproc: int, argv: list[str], launcher: dict[str, str | None]) -> int:
    """Run `archdsl ARGV` under torch.distributed.run with `nproc` processes per node; its exit code."""
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
    for key, value in launcher.items():
        if value is not None:
            command.append(f"--{key.replace('_', '-')}={value}")
    if not any(launcher.get(k) for k in ("nnodes", "rdzv_endpoint", "master_port")):
        command.append("--standalone")  # one machine: pick a free port, no rendezvous server needed
    command += ["-m", "archdsl", *argv]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc))))
    try:
        return subprocess.call(command, env=env)
    except KeyboardInterrupt:
        return 130

"""Where training runs, and the precision it runs in there."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from archdsl.errors import ArchError


@dataclass(frozen=True)
class Placement:
    device: torch.device
    amp_dtype: torch.dtype | None  # autocast dtype on CUDA, None on CPU (fp32)
    channels_last: bool

    @property
    def needs_scaler(self) -> bool:
        return self.amp_dtype == torch.float16

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def describe(self) -> str:
        if self.device.type == "cuda":
            name = torch.cuda.get_device_name(self.device)
            amp = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.amp_dtype, "fp32")
            return f"{self.device} ({name}, {amp} autocast{', channels-last' if self.channels_last else ''})"
        threads = torch.get_num_threads()
        return f"cpu ({threads} thread{'s' if threads > 1 else ''}, fp32)"


# Below this many multiply-accumulates per batch a CPU training step is a few
# milliseconds, and splitting it over threads costs more than it saves: on the
# 2-core machine LeNet-5 (27 M MACs per batch of 64) trains an epoch of digits in
# 0.3 s of CPU on 1 thread and 2.5-4 s on 2 threads when the other core is busy.
SMALL_BATCH_MACS = 300_000_000


def cpu_threads(macs_per_batch: int, requested: int | None = None) -> int:
    """Threads for CPU training: `requested`, else 1 for small models and every core otherwise."""
    if requested:
        return requested
    if macs_per_batch < SMALL_BATCH_MACS:
        return 1
    return torch.get_num_threads()


def place(requested: str = "auto", local_rank: int = 0, amp: bool = True) -> Placement:
    """'auto' is CUDA when there is one (this rank's GPU), else the CPU."""
    name = requested.lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ArchError(f"--device {requested}: this PyTorch sees no CUDA device; use --device cpu")
        device = torch.device(name if ":" in name else f"cuda:{local_rank}")
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels
        dtype = None
        if amp:
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return Placement(device, dtype, channels_last=True)
    if name != "cpu":
        raise ArchError(f"unknown device '{requested}'; expected auto, cpu, cuda or cuda:N")
    return Placement(torch.device("cpu"), None, channels_last=False)

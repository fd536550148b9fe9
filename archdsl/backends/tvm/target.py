"""Pick the TVM target: this machine's CPU by default, named precisely.

TVM 0.27 takes targets as dicts. `mcpu: native` silently falls back to a generic
x86-64 (no AVX2/AVX-512 code), so the CPU is detected instead: LLVM's host CPU name
(the one LLVM inside the TVM wheel knows), checked against /proc/cpuinfo flags where
LLVM says nothing useful.
"""
from __future__ import annotations

import os

from ...errors import ArchError
from ._tvm import import_tvm


def cpu_count() -> int:
    """Cores this process may use (cgroup/affinity aware), the thread count TVM should use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cpuinfo_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _guess_from_flags(flags: set[str], vendor: str) -> str | None:
    """A conservative mcpu from ISA flags when LLVM reports only 'generic'."""
    if not flags:
        return None
    if vendor == "amd":
        if "avx512f" in flags:
            return "znver4"
        if "vaes" in flags and "avx2" in flags:
            return "znver3"
        if "avx2" in flags:
            return "znver2"
        return None
    if {"avx512f", "avx512bw", "avx512vl"} <= flags:
        return "skylake-avx512"
    if "avx2" in flags and "fma" in flags:
        return "core-avx2"
    return None


def detect_cpu() -> str:
    """The LLVM `mcpu` name for this machine, e.g. 'znver3' or 'skylake-avx512'."""
    import_tvm()
    from tvm.target import codegen

    name = str(codegen.llvm_get_system_cpu())
    if name and name != "generic":
        return name
    vendor = "amd" if "AuthenticAMD" in _read("/proc/cpuinfo") else "intel"
    return _guess_from_flags(_cpuinfo_flags(), vendor) or "generic"


def _is_x86() -> bool:
    import platform

    return platform.machine() in ("x86_64", "AMD64")


def _read(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read(4096)
    except OSError:
        return ""


def host_target_dict(num_cores: int | None = None) -> dict:
    import_tvm()
    from tvm.target import codegen

    target = {"kind": "llvm", "mcpu": detect_cpu(), "num-cores": num_cores or cpu_count()}
    if not _is_x86():
        target["mtriple"] = str(codegen.llvm_get_system_triple())
    return target


CUDA_TARGET = {"kind": "cuda", "arch": "sm_80", "max_threads_per_block": 1024, "max_shared_memory_per_block": 49152, "thread_warp_size": 32}


def _cuda_target_dict() -> dict:
    """A CUDA target for the local GPU (its compute capability), or sm_80 when none is visible."""
    tvm = import_tvm()
    target = dict(CUDA_TARGET)
    try:
        device = tvm.cuda(0)
        if device.exist:
            target["arch"] = "sm_" + str(device.compute_version).replace(".", "")
    except Exception:  # no CUDA runtime in this wheel/machine: keep the default arch
        pass
    target["host"] = host_target_dict()
    return target


def resolve_target(target=None):
    """A `tvm.target.Target` from None/'cpu'/'llvm' (this CPU), 'cuda', a dict, or a Target."""
    tvm = import_tvm()
    if isinstance(target, tvm.target.Target):
        return target
    if target is None or target in ("cpu", "llvm", "native"):
        spec = host_target_dict()
    elif target in ("cuda", "gpu"):
        spec = _cuda_target_dict()
    elif isinstance(target, dict):
        spec = dict(target)
    elif isinstance(target, str) and target.strip().startswith("{"):
        import json

        try:
            spec = json.loads(target)
        except ValueError as exc:
            raise ArchError(f"--target {target!r:.80} is not a JSON target dict ({exc})") from None
        if not isinstance(spec, dict):
            raise ArchError(f"--target {target!r:.80} is not a JSON object such as {{\"kind\": \"llvm\"}}")
    else:
        raise ArchError(f"unknown TVM target '{target}': use cpu, cuda, or a target dict such as "
                        "'{\"kind\": \"llvm\", \"mcpu\": \"znver3\", \"num-cores\": 2}'")
    try:
        return tvm.target.Target(spec)
    except Exception as error:
        raise ArchError(f"TVM rejects target {spec}: {error}") from None


def target_to_dict(target) -> dict:
    """A JSON-able description of a target (for meta.json and the tuning manifest)."""
    import json

    return json.loads(str(target))  # a Target prints as JSON in TVM 0.27


def is_gpu(target) -> bool:
    return target.kind.name in ("cuda", "rocm", "metal", "vulkan", "opencl")

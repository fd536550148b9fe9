"""A ceiling on the memory a step may take, for work whose size a small hostile file decides.

    with memory_ceiling(2 << 30):   # at most 2 GiB more address space than now
        …                            # an allocation past it raises MemoryError (C++: std::bad_alloc)

onnx's shape inference materialises the values it propagates (a 224-byte model whose
`Range(0, 2e8)` feeds a `Cast` took 22 GB and a minute), and folding a graph's constants
computes whatever a `ConstantOfShape` asks for. Nothing in a file's size bounds either, so
the step runs under a ceiling instead: past it the allocation fails and the step says so.
Where the platform has no address-space limit (not Linux), the block runs unbounded.
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator


def _address_space() -> int | None:
    """This process's virtual memory size now, in bytes (Linux's /proc), or None."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[0])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


@contextlib.contextmanager
def memory_ceiling(extra: int) -> Iterator[None]:
    """Run the block with at most `extra` bytes of address space more than the process has now."""
    try:
        import resource
    except ImportError:  # Windows
        yield
        return
    now = _address_space()
    if now is None:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    ceiling = now + extra
    if hard != resource.RLIM_INFINITY:
        ceiling = min(ceiling, hard)
    if soft != resource.RLIM_INFINITY and soft <= ceiling:
        yield  # already held lower
        return
    try:
        resource.setrlimit(resource.RLIMIT_AS, (ceiling, hard))
    except (ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))

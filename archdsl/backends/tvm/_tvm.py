"""Import TVM lazily, and say how to install it when it is missing or the wrong version.

Nothing outside this backend imports TVM: `import tvm` costs seconds (it pulls in torch),
and `archdsl check` must work on machines without it. Every module here calls
`import_tvm()` inside its functions, never at module level.
"""
from __future__ import annotations

from ...errors import ArchError

REQUIRED_TVM = "0.27.0"
# apache-tvm-ffi 0.1.15 segfaults whenever TVM serializes an object (every tuning
# database write); 0.1.14.post1 is the version measured to work with apache-tvm 0.27.
REQUIRED_FFI = "0.1.14"
INSTALL_HINT = (
    "install it with: pip install 'archdsl[tvm]'  "
    "(that is: pip install apache-tvm==0.27.0.post1 apache-tvm-ffi==0.1.14.post1; "
    "tuning also needs psutil cloudpickle xgboost-cpu)"
)

_checked = False


def _use_every_core() -> None:
    """Give TVM's thread pool one thread per usable core, unless TVM_NUM_THREADS or
    OMP_NUM_THREADS (which TVM also reads) says otherwise.

    Left alone, TVM's runtime takes half the hardware threads on x86, assuming SMT
    siblings. On a 2-vCPU machine without SMT that is one thread: every kernel ran on
    one core, and tuning, which measured candidates that way, could not tell a serial
    schedule from a parallel one (ResNet-18's 512-channel conv: it kept a serial
    schedule of 4.3 ms over a parallel one of 2.1 ms). The variable must be set before
    the pool starts, and MetaSchedule's measuring processes inherit it.
    """
    import os

    from .target import cpu_count

    if not (os.environ.get("TVM_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")):
        os.environ["TVM_NUM_THREADS"] = str(cpu_count())


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def import_tvm():
    """Return the `tvm` module, or raise ArchError explaining how to install it."""
    global _checked
    if not _checked:
        tvm_version = _version("apache-tvm")
        if tvm_version is None:
            try:
                import tvm  # noqa: F401  (a source build has no apache-tvm distribution)
            except ImportError:
                raise ArchError(f"the TVM backend needs Apache TVM {REQUIRED_TVM}, which is not installed; {INSTALL_HINT}") from None
        elif not tvm_version.startswith(REQUIRED_TVM):
            raise ArchError(f"the TVM backend needs Apache TVM {REQUIRED_TVM}, found {tvm_version}; {INSTALL_HINT}")
        ffi_version = _version("apache-tvm-ffi")
        if ffi_version is not None and not ffi_version.startswith(REQUIRED_FFI):
            raise ArchError(
                f"apache-tvm-ffi {ffi_version} is installed, but {REQUIRED_FFI}.post1 is required "
                f"(0.1.15 crashes when TVM saves tuning records); {INSTALL_HINT}"
            )
        _use_every_core()
        _checked = True
    try:
        import tvm
        from tvm import relax  # noqa: F401
    except ImportError as error:
        raise ArchError(f"Apache TVM failed to import ({error}); {INSTALL_HINT}") from None
    return tvm

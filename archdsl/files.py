"""Files on disk: the one place where OS errors become ArchErrors naming the path, and atomic writes.

    os_error(exc, path, writing=True)   -> ArchError   "no space left on device while writing runs/x/last.pt"
    atomic_write(path) as file: …                      a temporary file beside `path`, renamed over it at the end
    write_text(path, text) / write_bytes(path, data)   atomic_write for a whole text or blob
    save_figure(fig, path, **savefig)                  a matplotlib figure, atomically, then closed
    atomic_folder(path) as tmp: …                      a temporary folder beside `path`, renamed to it at the end

An interrupted or failed write leaves the previous file (or folder) whole and no
temporary file behind. Writers that turn the OS error into one of their own
(torch's zip writer says "unexpected pos 262976 vs 262864" when the disk is
full) are seen through: the file object `atomic_write` hands out keeps the first
OS error, and that is what the user reads.
"""
from __future__ import annotations

import contextlib
import errno
import itertools
import os
import shutil
import stat
from pathlib import Path
from typing import Iterator

from .errors import ArchError

_WRITE_REASONS = {
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOENT: "its folder does not exist",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder",
    errno.ENAMETOOLONG: "the name is longer than the file system allows",
    errno.ELOOP: "a symbolic link on the way points back at itself",
    errno.EFBIG: "the file is larger than this system lets a process write",
}
_READ_REASONS = {
    **_WRITE_REASONS,
    errno.ENOENT: "no such file",
}
_FULL = (errno.ENOSPC, errno.EDQUOT)
_counter = itertools.count()


def os_error(exc: OSError, path: str | os.PathLike, writing: bool | None = True) -> ArchError:
    """An ArchError saying what went wrong with `path`, in words (not "[Errno 28]").

    `writing` None: not known whether `path` was being read or written.
    """
    if exc.errno in _FULL:
        quota = " (the disk quota is used up)" if exc.errno == errno.EDQUOT else ""
        return ArchError(f"no space left on device while writing {path}{quota}")
    verb = {True: "cannot write to", False: "cannot read", None: "cannot use"}[writing]
    return ArchError(f"{verb} {path}: {reason(exc, writing)}")


def reason(exc: OSError, writing: bool | None = True) -> str:
    """Why an OS call failed, in words."""
    reasons = _WRITE_REASONS if writing else {**_READ_REASONS, errno.ENOENT: "it does not exist"} \
        if writing is None else _READ_REASONS
    return reasons.get(exc.errno) or exc.strerror or str(exc)


class _Recording:
    """A binary file that remembers the first OS error its writes and flushes raised."""

    def __init__(self, raw):
        self._raw = raw
        self.error: OSError | None = None

    def _record(self, call, *args):
        try:
            return call(*args)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def write(self, data) -> int:
        return self._record(self._raw.write, data)

    def flush(self) -> None:
        self._record(self._raw.flush)

    def fileno(self) -> int:
        return self._raw.fileno()

    # torch.save (zip) and numpy ask these of a file object
    def tell(self) -> int:
        return self._raw.tell()

    def seek(self, *args) -> int:
        return self._raw.seek(*args)

    def seekable(self) -> bool:
        return self._raw.seekable()

    def read(self, *args):  # numpy takes an object with `read` for a file; a write-only one raises here
        return self._raw.read(*args)

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return self._raw.closed


def temporary_name(path: Path) -> Path:
    """A hidden name beside `path`, unique to this process and call."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{next(_counter)}")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[_Recording]:
    """A binary file object whose contents replace `path` when the block ends without an exception.

    Any OS error (a full disk, a read-only folder) becomes an ArchError naming `path`;
    the old `path` stays as it was and the temporary file is removed. A `path` that is
    a device or a FIFO (`-o /dev/stdout`) is written into directly: it is never replaced.
    A file that is replaced keeps its permissions (`archdsl fmt` rewriting a spec).
    """
    shown = path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = None  # not there yet (or not reachable: creating the temporary file says why)
    if mode is not None and stat.S_ISDIR(mode):
        raise ArchError(f"cannot write to {shown}: it is a folder")
    direct = mode is not None and not stat.S_ISREG(mode)  # /dev/stdout, a FIFO: written into, never replaced
    if mode is not None and not direct and path.is_symlink():
        path = Path(os.path.realpath(path))  # the file a link names is replaced, not the link
    tmp = path if direct else temporary_name(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | (0 if direct else os.O_CREAT | os.O_EXCL), 0o666)
    except OSError as exc:
        raise os_error(exc, shown) from None
    file = _Recording(os.fdopen(fd, "wb"))
    try:
        if mode is not None and not direct:
            os.fchmod(fd, stat.S_IMODE(mode))
        yield file
        file.flush()
        if not direct:
            os.fsync(file.fileno())  # the rename must not land before the data on a power cut
        file._raw.close()
        if not direct:
            os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            file._raw.close()
        if not direct:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if file.error is not None:  # what the writer saw first, whatever it raised after
            raise os_error(file.error, shown) from None
        if isinstance(exc, OSError):
            raise os_error(exc, shown) from None
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path) as file:
        file.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def save_figure(fig, path: str | os.PathLike, **savefig) -> None:
    """A matplotlib figure written atomically (the format from the extension), then closed."""
    import matplotlib.pyplot as plt

    savefig.setdefault("format", Path(path).suffix.lstrip(".").lower() or "png")
    try:
        with atomic_write(path) as file:
            fig.savefig(file, **savefig)
    finally:
        plt.close(fig)


def make_folder(path: str | os.PathLike) -> None:
    """`mkdir -p`, with an OS error as an ArchError naming the folder."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ArchError(f"{path} is a file, not a folder; nothing can be written into it") from None
    except OSError as exc:
        if exc.errno in _FULL:
            raise os_error(exc, path) from None
        raise ArchError(f"cannot create the folder {path}: {reason(exc)}") from None


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder beside `path`, renamed to `path` when the block ends without an exception.

    An existing `path` is replaced only then (moved aside, and removed after the
    rename), so a reader never sees a half-written folder, and a failure leaves
    the old one whole.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ArchError(f"cannot write the folder {path}: a file of that name is in the way")
    make_folder(path.parent if str(path.parent) else ".")
    tmp = temporary_name(path)
    try:
        tmp.mkdir()
    except OSError as exc:
        raise os_error(exc, path) from None
    try:
        yield tmp
        old = temporary_name(path) if path.exists() else None
        if old is not None:
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except OSError:
            if old is not None:
                os.replace(old, path)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise os_error(exc, path) from None
        raise


def _open_nonblocking(path: str | os.PathLike) -> int:
    # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever
    return os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))


def open_regular(path: str | os.PathLike, expected: str, what: str = "file"):
    """`path` opened for binary reading, or an ArchError when it is missing or no regular file.

    A FIFO, a device (/dev/zero never ends) or a folder is refused without reading
    from it or blocking on it. `what` names the file in "no such …", `expected`
    says what should have been there.
    """
    try:
        fd = _open_nonblocking(path)
    except FileNotFoundError:
        raise ArchError(f"no such {what}: {path}") from None
    except IsADirectoryError:
        raise ArchError(f"{path} is a folder; expected {expected}") from None
    except OSError as exc:
        raise os_error(exc, path, writing=False) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ArchError(f"{path} is a folder; expected {expected}")
        if not stat.S_ISREG(mode):
            raise ArchError(f"{path} is not a regular file; expected {expected}")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def check_writable(path: str | os.PathLike) -> None:
    """Fail now, with the reason, if `path` cannot be written (before minutes of work that would be lost).

    Creates the folder it goes in; tries a temporary file there (os.access is no
    answer: root passes it on a read-only file system).
    """
    path = Path(path)
    if path.is_dir():
        raise ArchError(f"cannot write to {path}: it is a folder")
    make_folder(path.parent if str(path.parent) else ".")
    probe = temporary_name(path)
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        os.unlink(probe)
    except OSError as exc:
        raise os_error(exc, path) from None

"""The folder `archdsl compile --target tvm` writes, and every check made before it runs.

    OUT/model.so     the compiled Relax VM executable: native code, loaded with dlopen
    OUT/params.npz   weights passed as parameters (only when built with bind_weights=False)
    OUT/meta.json    input shape, output names, target, parameter order and shapes, and
                     model.so's size and SHA-256, written when it was built

A compiled folder is native code: `archdsl run` executes it. Run only folders you
built or got from a source you trust; the checks below catch damage (a truncated
copy, a garbage file), not malice. They run before dlopen: a truncated model.so
would otherwise kill the process with SIGBUS when a missing page is touched.
Needs numpy only (no tvm, no torch).
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ArchError
from ...files import open_regular

# 2: model.so's size and hash, and the parameters' shapes, are recorded; format 1 had neither.
FORMAT_VERSION = 2
LIBRARY, PARAMS, META = "model.so", "params.npz", "meta.json"
FILES = (LIBRARY, PARAMS, META)
_MAX_META_BYTES = 1 << 20
_COMPILE_AGAIN = "compile it again: archdsl compile SPEC --target tvm -o {out}"


def check_out_dir(out_dir: str | os.PathLike) -> Path:
    """`out_dir` when a build may be written there: new, empty, or an earlier build (which it replaces whole)."""
    out = Path(out_dir)
    if out.is_dir() and out.resolve() != Path.cwd().resolve():
        strangers = sorted(p.name for p in out.iterdir() if p.name not in FILES)
        if strangers:
            raise ArchError(f"{out} holds other files ({', '.join(strangers[:5])}{', …' if len(strangers) > 5 else ''});"
                            " a build replaces its whole folder: choose a new or empty -o folder")
    elif out.exists():
        raise ArchError(f"-o {out}: a build is a folder; choose a new or empty one (not the working folder or a file)")
    return out


def library_fingerprint(path: str | os.PathLike) -> dict[str, Any]:
    """{"file", "bytes", "sha256"} of a built model.so, for meta.json."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return {"file": LIBRARY, "bytes": os.path.getsize(path), "sha256": digest.hexdigest()}


def _damaged(out: Path, what: str) -> ArchError:
    return ArchError(f"{out} is not a usable compiled archdsl model: {what}; {_COMPILE_AGAIN.format(out=out)}")


def read_meta(out: str | os.PathLike) -> dict[str, Any]:
    """meta.json, with every field `run` uses checked; an ArchError naming the folder when anything is off."""
    out = Path(out)
    path = out / META
    if not path.exists():
        raise ArchError(f"{out} is not a compiled archdsl model (no {META}); create one with: "
                        f"archdsl compile SPEC --target tvm -o {out}")
    with open_regular(path, f"the {META} archdsl compile writes") as file:
        text = file.read(_MAX_META_BYTES + 1)
    if len(text) > _MAX_META_BYTES:
        raise _damaged(out, f"its {META} is over {_MAX_META_BYTES:,} bytes")
    try:
        meta = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _damaged(out, f"its {META} is not JSON ({exc})") from None
    if not isinstance(meta, dict) or not meta:
        raise _damaged(out, f"its {META} holds {'nothing' if not meta else type(meta).__name__}, not the build's description")
    if meta.get("format") != FORMAT_VERSION:
        raise _damaged(out, f"its {META} is of format {meta.get('format')!r}, this archdsl reads format {FORMAT_VERSION}"
                            " (format 1 recorded no checksum of model.so)")
    problems = []
    shape = meta.get("input_shape")
    if not (isinstance(shape, list) and shape and all(type(d) is int and 1 <= d <= 2**31 for d in shape)):
        problems.append(f"input_shape {shape!r:.60}")
    outputs = meta.get("outputs")
    if not (isinstance(outputs, list) and outputs and all(isinstance(n, str) for n in outputs)):
        problems.append(f"outputs {outputs!r:.60}")
    params, shapes = meta.get("params"), meta.get("param_shapes")
    if not (isinstance(params, list) and all(isinstance(n, str) for n in params) and isinstance(shapes, dict)
            and all(isinstance(shapes.get(n), list) and all(type(d) is int and d >= 0 for d in shapes[n]) for n in params)):
        problems.append("params / param_shapes")
    if meta.get("device") not in ("cpu", "cuda"):
        problems.append(f"device {meta.get('device')!r:.30}")
    library = meta.get("library")
    if not (isinstance(library, dict) and library.get("file") == LIBRARY and type(library.get("bytes")) is int
            and isinstance(library.get("sha256"), str)):
        problems.append("library (model.so's size and SHA-256)")
    if problems:
        raise _damaged(out, f"its {META} has no valid {', '.join(problems)}")
    return meta


def check_library(out: str | os.PathLike, meta: dict[str, Any]) -> Path:
    """model.so, when it is the file that was built: its size and SHA-256 as meta.json records them."""
    out = Path(out)
    path = out / LIBRARY
    try:
        with open_regular(path, "the model.so archdsl compile writes", "compiled library") as file:
            size = os.fstat(file.fileno()).st_size
            if size != meta["library"]["bytes"]:
                raise _damaged(out, f"{LIBRARY} is {size:,} bytes, it was built as {meta['library']['bytes']:,}"
                                    f" (a truncated or replaced copy)")
            digest = hashlib.sha256()
            for chunk in iter(lambda: file.read(1 << 20), b""):
                digest.update(chunk)
            file.seek(0)
            beyond = _elf_beyond_end(file, size)
            if beyond:
                raise _damaged(out, f"{LIBRARY} is {size:,} bytes but its ELF headers place {beyond} (a truncated copy"
                                    " whose checksum was recomputed)")
    except ArchError as err:
        if err.message.startswith(f"{out} is not a usable"):
            raise
        raise _damaged(out, err.message) from None
    if digest.hexdigest() != meta["library"]["sha256"]:
        raise _damaged(out, f"{LIBRARY} is not the file that was built (its SHA-256 differs from {META}'s)")
    return path


def _elf_beyond_end(file, size: int) -> str | None:
    """What an ELF library's headers place past the end of its `size` bytes, or None (also for a non-ELF file).

    dlopen maps each loadable segment as the program headers say; a page past the
    end of the file is a SIGBUS when it is touched, so a short file must be refused
    before dlopen whatever meta.json says of it.
    """
    import struct

    head = file.read(64)
    if len(head) < 52 or head[:4] != b"\x7fELF" or head[4] not in (1, 2) or head[5] not in (1, 2):
        return None  # not ELF (dlopen then refuses it with its own message)
    wide, order = head[4] == 2, "<" if head[5] == 1 else ">"
    if wide and len(head) < 64:
        return "the ELF header"
    fields = struct.unpack_from(order + ("QQQIHHHHHH" if wide else "IIIIHHHHHH"), head, 24)
    phoff, shoff, phentsize, phnum, shentsize, shnum = fields[1], fields[2], *fields[5:7], *fields[7:9]
    if phoff + phentsize * phnum > size:
        return f"its program headers up to byte {phoff + phentsize * phnum:,}"
    if shnum and shoff + shentsize * shnum > size:
        return f"its section headers up to byte {shoff + shentsize * shnum:,}"
    file.seek(phoff)
    table = file.read(phentsize * phnum)
    for index in range(phnum):
        entry = table[index * phentsize:(index + 1) * phentsize]
        if wide:
            kind, _, offset, _, _, filesz = struct.unpack_from(order + "IIQQQQ", entry)
        else:
            kind, offset, _, _, filesz = struct.unpack_from(order + "IIIII", entry)
        if kind == 1 and offset + filesz > size:  # PT_LOAD
            return f"a loadable segment up to byte {offset + filesz:,}"
    return None


def read_params(out: str | os.PathLike, meta: dict[str, Any]) -> dict[str, np.ndarray]:
    """params.npz's arrays, each as meta.json says: float data of the recorded shape."""
    out = Path(out)
    if not meta["params"]:
        return {}
    path = out / PARAMS
    try:
        with open_regular(path, "the params.npz archdsl compile writes", "weights file") as file, \
                np.load(file, allow_pickle=False) as archive:
            params = {}
            for name in meta["params"]:
                if name not in archive.files:
                    raise _damaged(out, f"{PARAMS} lacks the weight '{name}'")
                array = archive[name]
                if array.dtype.kind not in "fiu" or list(array.shape) != meta["param_shapes"][name]:
                    raise _damaged(out, f"{PARAMS} holds '{name}' as {array.dtype} {list(array.shape)}, "
                                        f"built as float32 {meta['param_shapes'][name]}")
                params[name] = array
            return params
    except ArchError as err:
        if err.message.startswith(f"{out} is not a usable"):
            raise
        raise _damaged(out, err.message) from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:  # not a zip, a damaged member, pickled data
        raise _damaged(out, f"{PARAMS} cannot be read ({type(exc).__name__}: {exc})") from None


def read_input(path: str | os.PathLike, input_shape: list[int]) -> np.ndarray:
    """An .npy input, its header checked (numeric, the compiled shape with or without the batch) before its data is read."""
    expected = "a .npy array (numpy.save) of numbers"
    with open_regular(path, expected, "input file") as file:
        try:
            version = np.lib.format.read_magic(file)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(file)
        except (ValueError, OSError, EOFError, SyntaxError) as exc:
            raise ArchError(f"input {path} is not {expected} ({exc})") from None
        if dtype.kind not in "fiub":
            raise ArchError(f"input {path} holds {dtype} values; expected numbers (float32 is what the model takes)")
        if list(shape) not in (list(input_shape), list(input_shape[1:])):
            raise ArchError(f"input has shape {list(shape)}, the compiled network takes {list(input_shape)} "
                            "(batch first; the batch size is fixed at compile time)")
        file.seek(0)
        try:
            return np.load(file, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ArchError(f"input {path} cannot be read ({exc}); it is truncated or not {expected}") from None

"""A compiled TVM folder that is damaged, incomplete or not a build at all: `archdsl run` says which file
is wrong before it loads model.so (a truncated library would kill the process with SIGBUS), the build
folder is written whole or not at all, and a tuning database that schedules nothing says so."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import archdsl
from archdsl.backends import tvm as tvm_backend
from archdsl.backends.tvm import artefact
from archdsl.errors import ArchError

SPEC = "network small\ninput 4x8x8\nconv3-8 relu fc-4\n"
X = np.random.default_rng(0).standard_normal((1, 4, 8, 8)).astype(np.float32)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """One build with its weights as parameters (so that params.npz exists), and its output on X."""
    out = tmp_path_factory.mktemp("built") / "small"
    tvm_backend.compile_spec(SPEC, str(out), bind_weights=False, log=lambda *_: None)
    return out


def copy(built: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(built, tmp_path / "copy"))


def edit_meta(folder: Path, **changes) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    for key, value in changes.items():
        if value is None:
            meta.pop(key)
        else:
            meta[key] = value
    (folder / "meta.json").write_text(json.dumps(meta))


def refused(folder: Path, message: str, x=X) -> str:
    with pytest.raises(ArchError) as info:
        tvm_backend.run_exported(str(folder), x)
    assert message in info.value.message, info.value.message
    assert str(folder) in info.value.message or (isinstance(x, Path) and str(x) in info.value.message)
    return info.value.message


def test_the_build_records_what_it_wrote(built):
    meta = json.loads((built / "meta.json").read_text())
    assert meta["format"] == artefact.FORMAT_VERSION == 2
    assert meta["library"] == artefact.library_fingerprint(built / "model.so")
    assert set(meta["param_shapes"]) == set(meta["params"]) and meta["params"]
    assert sorted(p.name for p in built.iterdir()) == ["meta.json", "model.so", "params.npz"]
    assert tvm_backend.run_exported(str(built), X).shape == (1, 4)


@pytest.mark.parametrize("content, message", [
    (b"garbage{", "its meta.json is not JSON"),
    (b"", "its meta.json is not JSON"),
    (b"{}", "its meta.json holds nothing, not the build's description"),
    (b"[1, 2]", "its meta.json holds list, not the build's description"),
    (b"\xff\xfe\x00", "its meta.json is not JSON"),
])
def test_a_meta_json_that_is_garbage_or_empty(built, tmp_path, content, message):
    folder = copy(built, tmp_path)
    (folder / "meta.json").write_bytes(content)
    refused(folder, message)


@pytest.mark.parametrize("changes, message", [
    ({"format": 1}, "of format 1, this archdsl reads format 2"),
    ({"input_shape": None}, "has no valid input_shape None"),
    ({"input_shape": [1, 0, 8, 8]}, "has no valid input_shape [1, 0, 8, 8]"),
    ({"outputs": 5}, "has no valid outputs 5"),
    ({"param_shapes": None}, "has no valid params / param_shapes"),
    ({"device": "tpu"}, "has no valid device 'tpu'"),
    ({"library": {"file": "model.so"}}, "has no valid library"),
])
def test_a_meta_json_missing_or_garbling_a_field(built, tmp_path, changes, message):
    folder = copy(built, tmp_path)
    edit_meta(folder, **changes)
    refused(folder, message)


def test_model_so_missing_or_replaced(built, tmp_path):
    folder = copy(built, tmp_path)
    data = bytearray((folder / "model.so").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "model.so").write_bytes(bytes(data))
    refused(folder, "model.so is not the file that was built (its SHA-256 differs from meta.json's)")
    (folder / "model.so").write_text("not a library\n")
    refused(folder, "model.so is 14 bytes, it was built as")
    (folder / "model.so").unlink()
    refused(folder, "no such compiled library")


def test_a_truncated_model_so_is_an_error_not_a_crash(built, tmp_path):
    """dlopen of a truncated library maps pages past its end: touching one is SIGBUS. In a subprocess."""
    folder = copy(built, tmp_path)
    library = folder / "model.so"
    library.write_bytes(library.read_bytes()[: library.stat().st_size // 3])
    np.save(tmp_path / "x.npy", X)
    env = {k: v for k, v in os.environ.items() if k != "ARCHDSL_DEBUG"}
    done = subprocess.run([sys.executable, "-m", "archdsl", "run", str(folder), "--input", str(tmp_path / "x.npy")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "(a truncated or replaced copy)" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("keep", [64, 1000, "half", "all but one"])
def test_a_truncated_model_so_with_a_recomputed_checksum_is_an_error_not_sigbus(built, tmp_path, keep):
    """meta.json rewritten to the short file's size and SHA-256: the checksum passed and dlopen died of SIGBUS.
    The ELF headers say how long the file must be. In a subprocess, as a crash would take pytest with it."""
    folder = copy(built, tmp_path)
    library = folder / "model.so"
    data = library.read_bytes()
    keep = {"half": len(data) // 2, "all but one": len(data) - 1}.get(keep, keep)
    library.write_bytes(data[:keep])
    edit_meta(folder, library=artefact.library_fingerprint(library))
    np.save(tmp_path / "x.npy", X)
    env = {k: v for k, v in os.environ.items() if k != "ARCHDSL_DEBUG"}
    done = subprocess.run([sys.executable, "-m", "archdsl", "run", str(folder), "--input", str(tmp_path / "x.npy")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert f"model.so is {keep:,} bytes but its ELF headers place" in done.stderr and "Traceback" not in done.stderr


def test_params_npz_missing_garbage_or_not_matching(built, tmp_path):
    folder = copy(built, tmp_path)
    meta = json.loads((folder / "meta.json").read_text())
    first = meta["params"][0]
    with np.load(folder / "params.npz") as archive:
        weights = {name: archive[name] for name in archive.files}
    np.savez(folder / "params.npz", **{**weights, first: np.zeros((3, 3), np.float32)})
    refused(folder, f"params.npz holds '{first}' as float32 [3, 3], built as float32 {meta['param_shapes'][first]}")
    np.savez(folder / "params.npz", **{k: v for k, v in weights.items() if k != first})
    refused(folder, f"params.npz lacks the weight '{first}'")
    np.savez(folder / "params.npz", **{**weights, first: np.array(["a", "b"])})
    refused(folder, f"params.npz holds '{first}' as <U1")
    (folder / "params.npz").write_bytes(b"PK\x03\x04 not really a zip")
    refused(folder, "params.npz cannot be read")
    (folder / "params.npz").unlink()
    refused(folder, "no such weights file")


def test_inputs_missing_garbage_or_not_numbers(built, tmp_path):
    cases = {
        "missing.npy": (None, "no such input file"),
        "garbage.npy": (b"garbage", "is not a .npy array (numpy.save) of numbers"),
        "empty.npy": (b"", "is not a .npy array"),
        "objects.npy": (np.array([{"a": 1}], dtype=object), "holds object values; expected numbers"),
        "strings.npy": (np.array(["x"] * 4), "holds <U1 values"),
        "shape.npy": (np.zeros((2, 4, 8, 8), np.float32), "input has shape [2, 4, 8, 8], the compiled network takes"),
        "truncated.npy": (np.zeros((1, 4, 8, 8), np.float32), "cannot be read"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif content is not None:
            np.save(path, content, allow_pickle=True)
        if name == "truncated.npy":
            path.write_bytes(path.read_bytes()[:-10])
        with pytest.raises(ArchError) as info:
            tvm_backend.run_exported(str(built), path)
        assert message in info.value.message, (name, info.value.message)
    np.save(tmp_path / "one.npy", X[0])  # without the batch axis: fine
    assert tvm_backend.run_exported(str(built), tmp_path / "one.npy").shape == (1, 4)


def test_the_build_folder_is_written_whole_or_not_at_all(built, tmp_path, monkeypatch):
    out = copy(built, tmp_path)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    from tvm.runtime import Executable

    def fails(self, path, *args, **kwargs):
        Path(path).write_bytes(b"half a library")
        raise KeyboardInterrupt  # Ctrl-C while the library is written

    monkeypatch.setattr(Executable, "export_library", fails)
    with pytest.raises(KeyboardInterrupt):
        tvm_backend.compile_spec(SPEC, str(out), bind_weights=False, log=lambda *_: None)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the old build, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy"]  # no temporary folder left


def test_a_folder_holding_other_files_is_not_replaced(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ArchError, match="holds other files \\(notes.txt\\); a build replaces its whole folder"):
        tvm_backend.compile_spec(SPEC, str(out), log=lambda *_: None)
    assert (out / "notes.txt").read_text() == "keep me"


def test_a_tuning_database_that_schedules_nothing_says_so(tmp_path):
    """Record files that exist but hold nothing: the build used to say "tuned": true and run untuned."""
    from archdsl.backends.tvm.database import RECORD_FILES, open_database_dir
    from archdsl.backends.tvm.target import resolve_target

    net = archdsl.load(SPEC)
    db = open_database_dir(str(tmp_path / "db"), net, resolve_target("cpu"), 1, create=True)
    for folder in (Path(db), Path(db) / "best"):
        folder.mkdir(exist_ok=True)
        for name in RECORD_FILES:
            (folder / name).write_text("")
    lines: list[str] = []
    meta = tvm_backend.compile_spec(net, str(tmp_path / "out"), db=db, log=lines.append)
    assert meta["tuned"] is False and meta["tuned_kernels"] == 0 and meta["kernels"] > 0
    warning = next(line for line in lines if line.startswith("warning: the tuning database"))
    assert f"scheduled 0 of this network's {meta['kernels']} kernels" in warning and "archdsl tune" in warning


def test_an_output_that_cannot_be_written_is_refused_before_the_run(built, tmp_path, run_archdsl):
    np.save(tmp_path / "x.npy", X)
    (tmp_path / "folder.npy").mkdir()
    ran = run_archdsl("run", built, "--input", tmp_path / "x.npy", "-o", tmp_path / "folder.npy")
    assert ran.returncode == 1 and "cannot write to" in ran.stderr and "it is a folder" in ran.stderr, ran.stderr
    assert "Traceback" not in ran.stderr and ran.stdout == ""  # refused before running: no output summary
    ran = run_archdsl("run", built, "--input", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert ran.returncode == 0 and ran.stdout.startswith("output: shape 1x4"), ran.stdout + ran.stderr
    assert np.load(tmp_path / "y.npy").shape == (1, 4)

"""The TVM commands as a user runs them: compile --target tvm with a checkpoint, then run."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import torch

import archdsl


def archdsl_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "archdsl", *args], capture_output=True, text=True, cwd=cwd, timeout=300)

def test_compile_with_a_checkpoint_then_run_matches_pytorch(tmp_path, specs_dir):
    spec = specs_dir / "lenet5.arch"
    torch.manual_seed(3)
    model = archdsl.load(spec).to_torch().eval()
    torch.save({"model": model.state_dict()}, tmp_path / "ckpt.pt")
    x = np.random.default_rng(0).standard_normal((1, 1, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)

    built = archdsl_cli("compile", str(spec), "--target", "tvm", "--checkpoint", "ckpt.pt", "-o", "out", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    assert "untuned" in built.stdout + built.stderr and "archdsl tune" in built.stdout + built.stderr

    ran = archdsl_cli("run", "out", "--input", "x.npy", "-o", "y.npy", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "output: shape 1x10" in ran.stdout
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, atol=1e-4, rtol=0)

def test_run_rejects_a_wrong_batch_and_a_missing_build(tmp_path, specs_dir):
    built = archdsl_cli("compile", str(specs_dir / "lenet5.arch"), "--target", "tvm", "-o", "out", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    np.save(tmp_path / "x2.npy", np.zeros((2, 1, 32, 32), np.float32))
    wrong = archdsl_cli("run", "out", "--input", "x2.npy", cwd=tmp_path)
    assert wrong.returncode == 1 and "the batch size is fixed at compile time" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    missing = archdsl_cli("run", "nothing-here", "--input", "x2.npy", cwd=tmp_path)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr and "nothing-here" in missing.stderr

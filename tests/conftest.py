"""Shared fixtures. Keep this small: helpers a single test file needs live in that file."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def specs_dir() -> Path:
    return REPO / "specs"


@pytest.fixture(scope="session")
def run_archdsl():
    """Run `python -m archdsl ARGS…` in a fresh process; returns the CompletedProcess (text)."""

    def run(*args, cwd=None, timeout=120, module=True):
        env = dict(os.environ)
        env.pop("ARCHDSL_DEBUG", None)  # the CLI must never show a traceback
        if module:
            command = [sys.executable, "-m", "archdsl", *map(str, args)]
        else:
            command = [str(Path(sys.executable).with_name("archdsl")), *map(str, args)]
        return subprocess.run(
            command, cwd=cwd or REPO, env=env, capture_output=True, text=True, timeout=timeout
        )

    return run

"""Packaging: the wheel carries the grammar, its core needs only lark and networkx, and an
installed archdsl works outside the source tree."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    (path,) = out.glob("archdsl-*.whl")
    return path


def metadata(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as z:
        (name,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        return z.read(name).decode()


@pytest.mark.slow
def test_wheel_contains_the_grammar_and_the_package(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        assert "archdsl/grammar/archdsl.lark" in names
        assert z.read("archdsl/grammar/archdsl.lark") == (REPO / "grammar" / "archdsl.lark").read_bytes()
        for module in ("__init__", "__main__", "cli", "parser", "expand", "loader", "shapes", "ops/conv", "passes/count"):
            assert f"archdsl/{module}.py" in names
        # the interactive page's script and the Graphviz it lays out with, with their licenses
        for asset in ("viewer.html", "viewer.js", "viewer.css", "graphviz/graphviz.js", "graphviz/LICENSE.hpcc-js-Apache-2.0",
                      "graphviz/LICENSE.graphviz-EPL-1.0"):
            assert f"archdsl/render/assets/{asset}" in names
        entry_points = z.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert re.search(r"^archdsl = archdsl\.cli:main$", entry_points, re.M)


@pytest.mark.slow
def test_wheel_core_requirements_are_lark_and_networkx_only(wheel):
    requires = re.findall(r"^Requires-Dist: (.+)$", metadata(wheel), re.M)
    core = [r for r in requires if "extra ==" not in r]
    assert sorted(re.split(r"[\s<>=!~;\[]", r)[0].lower() for r in core) == ["lark", "networkx"]
    assert any(r.startswith("torch") and "extra == 'torch'" in r for r in requires)
    assert not any("torch" in r or "tvm" in r or "graphviz" in r for r in core)


@pytest.mark.slow
def test_installed_wheel_checks_from_another_folder(wheel, tmp_path):
    """Install the wheel alone into a folder and run it from elsewhere: the grammar must come from the wheel."""
    target = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(target), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    work = tmp_path / "work"
    (work / "lib").mkdir(parents=True)
    shutil.copy(REPO / "specs" / "resnet18.arch", work)
    shutil.copy(REPO / "specs" / "lib" / "resnet_blocks.arch", work / "lib")
    env = {**os.environ, "PYTHONPATH": str(target)}  # ahead of the editable install of the checkout
    probe = subprocess.run(
        [sys.executable, "-c", "import archdsl, archdsl.grammar as g; print(archdsl.__file__); print(g.grammar_path())"],
        cwd=work, env=env, capture_output=True, text=True, timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    package_file, grammar = probe.stdout.splitlines()
    assert Path(package_file).is_relative_to(target)
    assert Path(grammar) == target / "archdsl" / "grammar" / "archdsl.lark"
    result = subprocess.run(
        [sys.executable, "-m", "archdsl", "check", "-q", "resnet18.arch"],
        cwd=work, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("resnet18.arch: 11,689,512 params")


def test_installed_script_works_from_another_folder(tmp_path, specs_dir):
    """The `archdsl` script of this environment, run outside the checkout."""
    script = Path(sys.executable).with_name("archdsl")
    assert script.exists()
    shutil.copy(specs_dir / "lenet5.arch", tmp_path)
    result = subprocess.run([str(script), "check", "--json", "lenet5.arch"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert '"params": 61706' in result.stdout

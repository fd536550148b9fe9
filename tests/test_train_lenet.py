"""The acceptance run: `archdsl train specs/lenet5.arch` with no flags reaches >= 98% test accuracy on digits.

Slow (about 30-40 s on an idle 2-core CPU, minutes when the machine is busy), so
marked; it is the only test that trains a real network to convergence.
"""
from __future__ import annotations

import json

import pytest

from archdsl.cli import main


@pytest.mark.slow
def test_lenet5_defaults_reach_98_percent_on_digits(specs_dir, tmp_path, capsys):
    out = tmp_path / "lenet5"
    assert main(["train", str(specs_dir / "lenet5.arch"), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_top1"] >= 0.98, summary
    assert summary["params"] == 61_706
    stdout = capsys.readouterr().out
    assert f"test top-1 {summary['test_top1']:.2%}" in stdout

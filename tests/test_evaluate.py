"""`archdsl evaluate`: a checkpoint's top-1/top-5 and confusion matrix, and the errors around it."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

import archdsl
from archdsl.cli import main
from archdsl.errors import ArchError
from archdsl.train.config import overrides_from_pairs, resolve_config
from archdsl.train.evaluate import EvalOptions, evaluate
from archdsl.train.loop import RunOptions, train

TINY = "network tiny\ninput 1x8x8\nconv3-6 relu maxpool2\nfc-10\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("eval")
    (folder / "tiny.arch").write_text(TINY)
    net = archdsl.load(folder / "tiny.arch")
    config = resolve_config(net.train_settings, overrides_from_pairs(["epochs=2", "lr=0.01", "optimizer=adam", "augment=none"]))
    train(net, config, RunOptions(out=folder / "run", progress=False, log=lambda line: None))
    return folder / "run"


def test_evaluate_reproduces_the_runs_test_accuracy(run_dir, tmp_path):
    result = evaluate(archdsl.load(TINY), run_dir / "last.pt", EvalOptions(out=tmp_path))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert result.top1 == pytest.approx(summary["test_top1"]) and result.top5 == pytest.approx(summary["test_top5"])
    assert result.confusion.shape == (10, 10) and int(result.confusion.sum()) == result.images == 359
    assert int(result.confusion.diag().sum()) == round(result.top1 * result.images)
    assert result.png == tmp_path / "confusion_test.png" and result.png.read_bytes()[:4] == b"\x89PNG"


def test_cli_prints_the_matrix_and_writes_the_png_next_to_the_checkpoint(run_dir, tmp_path, capsys):
    spec = tmp_path / "tiny.arch"
    spec.write_text(TINY)
    assert main(["evaluate", str(spec), str(run_dir / "best.pt"), "--split", "val"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"on val \(1\d\d images\): top-1 \d+\.\d\d%", out) and "true \\ predicted" in out
    assert (run_dir / "confusion_val.png").exists()
    assert main(["evaluate", str(spec), str(run_dir), "--json", "-o", str(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["split"] == "test" and len(data["confusion"]) == 10


def test_a_checkpoint_from_another_spec_names_the_layers_that_differ(run_dir):
    other = archdsl.load("network other\ninput 1x8x8\nconv3-8 relu maxpool2\nfc-10\n")
    with pytest.raises(ArchError) as info:
        evaluate(other, run_dir / "last.pt", EvalOptions())
    message = info.value.message
    assert "not trained from spec 'other'" in message
    assert "conv1 (weight 6x1x3x3 in the checkpoint, 8x1x3x3 in the spec)" in message and "fc1" in message


def test_unreadable_and_missing_checkpoints_are_errors(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ArchError, match="cannot be read"):
        evaluate(archdsl.load(TINY), bad)
    spec = tmp_path / "tiny.arch"
    spec.write_text(TINY)
    assert main(["evaluate", str(spec), str(tmp_path / "missing.pt")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_a_bare_state_dict_is_evaluated_too(run_dir, tmp_path):
    state = torch.load(run_dir / "last.pt", weights_only=True)["model"]
    torch.save(state, tmp_path / "weights.pt")
    result = evaluate(archdsl.load(TINY), tmp_path / "weights.pt", EvalOptions(out=tmp_path))
    assert result.images == 359 and result.top1 > 0.3

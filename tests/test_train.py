"""Training from a spec: run folders, exact resume, Ctrl-C, heads, transfer learning, bad input.

Everything runs tiny specs on scikit-learn's digits at their native 8x8, a few
epochs each, so that the whole file stays well under a minute on 2 cores.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import archdsl
from archdsl.cli import main
from archdsl.errors import ArchError
from archdsl.train.config import TrainConfig, resolve_config, overrides_from_pairs
from archdsl.train.loop import Interrupted, RunOptions, make_loss, train

TINY = """network tiny
input 1x8x8
conv3-6 relu maxpool2
fc-10
"""
FAST = ("epochs=2", "batch_size=64", "lr=0.01", "optimizer=adam", "augment=none")


def write(tmp_path: Path, text: str, name: str = "tiny.arch") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run(spec: Path, out: Path, *pairs: str, resume: Path | None = None, log=None):
    net = archdsl.load(spec)
    config = resolve_config(net.train_settings, overrides_from_pairs(list(pairs)))
    lines: list[str] = []
    result = train(net, config, RunOptions(out=out, resume=resume, progress=False, log=log or lines.append))
    return result, lines


def rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One finished 2-epoch run, shared by the tests that only read it."""
    folder = tmp_path_factory.mktemp("trained")
    spec = write(folder, TINY)
    result, lines = run(spec, folder / "run", *FAST)
    return spec, result, lines


# ---- the run folder -----------------------------------------------------------------------------------------


def test_a_run_writes_its_folder(trained):
    spec, result, lines = trained
    folder = result.run_dir
    assert {p.name for p in folder.iterdir()} >= {"tiny.arch", "config.json", "metrics.csv", "curves.png", "last.pt",
                                                  "best.pt", "summary.json"}
    assert (folder / "tiny.arch").read_text() == TINY
    config = json.loads((folder / "config.json").read_text())
    assert config["epochs"] == 2 and config["optimizer"]["name"] == "adam" and config["augment"] == []
    assert config["dataset"] == "digits" and config["spec"] == "tiny.arch"
    table = rows(folder)
    assert list(table[0]) == ["epoch", "train_loss", "train_acc", "val_loss", "val_top1", "val_top5", "lr", "time_s"]
    assert [r["epoch"] for r in table] == ["1", "2"]
    assert float(table[1]["train_loss"]) < float(table[0]["train_loss"])
    summary = json.loads((folder / "summary.json").read_text())
    assert set(summary) >= {"test_top1", "test_top5", "epochs", "wall_s", "params", "device"}
    assert 0.3 < summary["test_top1"] <= summary["test_top5"] <= 1 and summary["epochs"] == 2
    assert summary["params"] == archdsl.load(spec).params
    assert (folder / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert any(line.startswith("epoch 2/2: train loss") for line in lines)


def test_checkpoints_load_with_weights_only(trained):
    _, result, _ = trained
    payload = torch.load(result.run_dir / "last.pt", weights_only=True)
    assert payload["epoch"] == 2 and len(payload["history"]) == 2
    model = archdsl.load(TINY).to_torch()
    model.load_state_dict(payload["model"])  # the spec's own module takes the weights as they are
    assert isinstance(payload["rng"]["torch"], torch.Tensor)


def test_an_existing_run_folder_is_not_overwritten(trained, tmp_path):
    spec, result, _ = trained
    with pytest.raises(ArchError, match="--resume"):
        run(spec, result.run_dir, *FAST)


# ---- resume -------------------------------------------------------------------------------------------------


def interrupt_after(epoch: int):
    """A log callback that presses Ctrl-C right after epoch `epoch` was reported (its checkpoint is written)."""

    def log(line: str) -> None:
        if line.startswith(f"epoch {epoch}/"):
            raise KeyboardInterrupt

    return log


def test_resume_ends_exactly_like_an_uninterrupted_run(tmp_path):
    # dropout, augmentation and a schedule all draw or keep state that resume must restore
    spec = write(tmp_path, TINY.replace("fc-10", "dropout(0.3) fc-10"))
    settings = ("epochs=4", "lr=0.01", "augment=[crop(pad=1), flip]", "optimizer=sgd(momentum=0.9)",
                "schedule=step(1, 0.7)", "batch_size=50")
    straight, _ = run(spec, tmp_path / "straight", *settings)
    with pytest.raises(Interrupted) as info:
        run(spec, tmp_path / "stopped", *settings, log=interrupt_after(2))
    assert info.value.epoch == 2 and len(rows(tmp_path / "stopped")) == 2
    resumed, _ = run(spec, tmp_path / "stopped", *settings, resume=tmp_path / "stopped")

    def without_time(table):
        return [{k: v for k, v in row.items() if k != "time_s"} for row in table]

    assert without_time(rows(tmp_path / "stopped")) == without_time(rows(tmp_path / "straight"))
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "stopped" / "last.pt", weights_only=True)
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert resumed.test_top1 == straight.test_top1


def test_ctrl_c_exits_130_without_a_traceback_and_says_how_to_resume(tmp_path, run_archdsl):
    spec = write(tmp_path, TINY)
    out = tmp_path / "run"
    env = dict(os.environ)
    env.pop("ARCHDSL_DEBUG", None)
    # As in a terminal: a shell's background job (CI may be one) starts with SIGINT ignored,
    # and Python then never raises KeyboardInterrupt, so give the child the default disposition.
    process = subprocess.Popen([sys.executable, "-m", "archdsl", "train", str(spec), "--out", str(out),
                                "--epochs", "500"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 90
    while not (out / "metrics.csv").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert process.poll() is None, "the run ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert f"--resume {out}" in stderr
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] >= 1


# ---- outputs and heads ----------------------------------------------------------------------------------------


def test_a_trailing_softmax_is_trained_on_logits_and_the_weights_fit_the_spec(tmp_path):
    text = TINY.replace("fc-10", "fc-10 soft-max")
    result, lines = run(write(tmp_path, text), tmp_path / "run", *FAST)
    assert any("softmax1" in line and "logits" in line for line in lines)
    assert result.test_top1 > 0.5  # log(softmax) of a softmax would not learn this fast
    state = torch.load(result.run_dir / "best.pt", weights_only=True)["model"]
    archdsl.load(text).to_torch().load_state_dict(state)


def test_auxiliary_outputs_add_weighted_losses_in_training_only():
    config = TrainConfig(aux_weight=0.3)
    loss = make_loss(config, ["output", "aux"])
    labels = torch.tensor([0, 1])
    main, aux = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([[0.0, 3.0], [1.0, 0.0]])
    smoothing = config.label_smoothing  # the default's, applied to both heads
    assert smoothing > 0

    def ce(logits):
        return torch.nn.functional.cross_entropy(logits, labels, label_smoothing=smoothing)

    expected = ce(main) + 0.3 * ce(aux)
    assert torch.allclose(loss({"output": main, "aux": aux}, labels), expected)


def test_a_network_with_an_auxiliary_classifier_trains(tmp_path):
    text = "input 1x8x8\nconv3-6 relu -> feat\nfc-10 soft-max -> aux\n@feat\nmaxpool2 fc-10 soft-max\n"
    result, lines = run(write(tmp_path, text), tmp_path / "run", *FAST, "aux_weight=0.5")
    assert result.test_top1 > 0.5
    assert any("softmax" in line for line in lines)


def test_a_class_count_mismatch_is_explained_and_num_classes_replaces_the_head(tmp_path):
    spec = write(tmp_path, TINY.replace("fc-10", "fc-5"))
    with pytest.raises(ArchError) as info:
        run(spec, tmp_path / "a", *FAST)
    message = info.value.message
    assert "10 classes" in message and "fc-5" in message and "--num-classes 10" in message
    result, lines = run(spec, tmp_path / "b", *FAST, "num_classes=10")
    assert any("new 10-way head: fc1" in line for line in lines)
    payload = torch.load(result.run_dir / "last.pt", weights_only=True)
    assert payload["model"]["fc1.weight"].shape[0] == 10


# ---- transfer learning ------------------------------------------------------------------------------------------


def test_init_from_loads_matching_layers_and_freeze_stops_them(trained, tmp_path):
    _, source_run, _ = trained
    # same features, a different classifier: fc1 has another input size, so it cannot be taken over
    text = "network other\ninput 1x8x8\nconv3-6 relu maxpool2 conv3-8 relu\nfc-10\n"
    spec = write(tmp_path, text)
    source = torch.load(source_run.run_dir / "last.pt", weights_only=True)["model"]
    result, lines = run(spec, tmp_path / "run", *FAST, f"init_from={source_run.run_dir / 'last.pt'}",
                        "freeze=conv1")
    report = next(line for line in lines if line.startswith("init from"))
    assert "loaded 2 tensors" in report and "fc1" in report and "conv2" in report
    assert any(line.startswith("frozen: 2 layers") for line in lines)
    trained_state = torch.load(result.run_dir / "last.pt", weights_only=True)["model"]
    assert torch.equal(trained_state["conv1.weight"], source["conv1.weight"])  # frozen: unchanged
    assert not torch.equal(trained_state["fc1.bias"], torch.zeros(10))


def test_init_from_another_class_count_gets_a_new_head(trained, tmp_path):
    _, source_run, _ = trained
    spec = write(tmp_path, TINY.replace("fc-10", "fc-3"))
    result, lines = run(spec, tmp_path / "run", "epochs=1", f"init_from={source_run.run_dir / 'best.pt'}")
    assert any("new 10-way head" in line for line in lines)
    assert "loaded 4 tensors" in next(line for line in lines if line.startswith("init from"))


def test_freeze_of_an_unknown_layer_says_which_exist(tmp_path):
    with pytest.raises(ArchError, match="did you mean 'conv1'"):
        run(write(tmp_path, TINY), tmp_path / "run", *FAST, "freeze=conv_1")


# ---- bad input ----------------------------------------------------------------------------------------------------


def test_a_missing_dataset_is_reported_at_the_spec_line(tmp_path):
    spec = write(tmp_path, TINY + 'train {\n  epochs = 1\n  dataset = "no/such/folder"\n}\n')
    with pytest.raises(ArchError) as info:
        run(spec, tmp_path / "run")
    assert "does not exist" in info.value.message and info.value.span.line == 7


def test_a_corrupt_data_file_is_an_error(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03garbage")
    (folder / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00")
    with pytest.raises(ArchError):
        run(write(tmp_path, TINY), tmp_path / "run", "epochs=1", f"dataset={folder}")


def test_cli_errors_exit_1_with_the_spec_position(tmp_path, capsys):
    spec = write(tmp_path, TINY + "train {\n  optimizer = adamm\n}\n")
    assert main(["train", str(spec), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert f"{spec}:6:15: error: unknown optimizer 'adamm'; did you mean 'adam'?" in err
    assert main(["train", str(write(tmp_path, TINY, "ok.arch")), "--schedule", "cosinus"]) == 1
    assert "did you mean 'cosine'" in capsys.readouterr().err


def test_resume_needs_a_run_folder(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path)]) == 1
    assert "not a run folder" in capsys.readouterr().err


def test_an_input_the_data_cannot_feed_says_how_to_fix_it(tmp_path):
    spec = write(tmp_path, "input 1x64\nconv3-4 relu fc-10\n")
    with pytest.raises(ArchError, match="cannot feed the spec input"):
        run(spec, tmp_path / "run", "epochs=1")


def test_progress_is_a_tqdm_bar_on_a_terminal_and_plain_lines_elsewhere(monkeypatch):
    import io

    from archdsl.train import progress as progress_mod

    bar_stream, log_stream, quiet_stream = io.StringIO(), io.StringIO(), io.StringIO()
    bar = progress_mod.Progress("epoch 1/3 train", 40, stream=bar_stream, terminal=True, redraw_s=0)
    for step in range(1, 5):
        bar.update(step * 10, 0.5, 0.75)
    bar.close()
    drawn = bar_stream.getvalue()
    assert "epoch 1/3 train" in drawn and "40/40" in drawn and "img/s" in drawn and "loss 0.5000 acc 75.00%" in drawn

    clock = iter([0.0, 10.0, 31.0, 45.0, 62.0])  # start, then one reading per update
    monkeypatch.setattr(progress_mod.time, "perf_counter", lambda: next(clock))
    plain = progress_mod.Progress("epoch 1/3 validation", 400, stream=log_stream, terminal=False, every_s=30)
    for images in (100, 200, 300, 400):
        plain.update(images, 1.25, 0.5)
    monkeypatch.undo()
    lines = log_stream.getvalue().splitlines()
    assert lines == ["epoch 1/3 validation: 200/400 images (50%), 6 img/s, ETA 0:31, loss 1.2500 acc 50.00%",
                     "epoch 1/3 validation: 400/400 images (100%), 6 img/s, ETA 0:00, loss 1.2500 acc 50.00%"]
    assert "\x1b" not in log_stream.getvalue() and "\r" not in log_stream.getvalue()
    quiet = progress_mod.Progress("test", 10, stream=quiet_stream, terminal=False, every_s=30)
    quiet.update(10, 1.0, 1.0)  # a short phase says nothing: the summary line follows
    assert quiet_stream.getvalue() == ""


def test_a_plateau_schedule_and_adamw_checkpoint_load_with_weights_only(tmp_path):
    result, _ = run(write(tmp_path, TINY), tmp_path / "run", "epochs=2", "schedule=plateau(0.1, 0)",
                    "optimizer=adamw", "lr=0.01")
    payload = torch.load(result.run_dir / "last.pt", weights_only=True)
    assert payload["scheduler"]["factor"] == 0.1 and payload["optimizer"]["state"]


def test_an_unusable_device_is_an_error(tmp_path, capsys):
    spec = write(tmp_path, TINY)
    assert main(["train", str(spec), "--device", "tpu", "--out", str(tmp_path / "a")]) == 1
    assert "unknown device 'tpu'" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["train", str(spec), "--device", "cuda", "--out", str(tmp_path / "b")]) == 1
        assert "no CUDA device" in capsys.readouterr().err


def test_an_image_folder_with_three_classes_trains_with_a_new_head(tmp_path):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, name in enumerate(("circle", "square", "stripe")):
        folder = tmp_path / "shapes" / name
        folder.mkdir(parents=True)
        for i in range(12):  # 12x12 images, resized to the spec's 8x8; each class its own brightness
            pixels = rng.integers(0, 60, (12, 12), dtype=np.uint8) + 90 * label
            Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.png")
    spec = write(tmp_path, TINY)
    result, lines = run(spec, tmp_path / "run", *FAST, "epochs=3", f"dataset={tmp_path / 'shapes'}",
                        "num_classes=3", "batch_size=8")
    assert any("resized to 1x8x8" in line and "3 classes" in line for line in lines)
    assert any("new 3-way head: fc1" in line for line in lines)
    assert torch.load(result.run_dir / "last.pt", weights_only=True)["class_names"] == ["circle", "square", "stripe"]

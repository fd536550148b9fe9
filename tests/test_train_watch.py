"""Watching and guarding a run: TensorBoard files (read with tensorboard's own reader), warm-up, the divergence
stop, accuracy at chance, extending a finished run, test-time augmentation, `archdsl runs`."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import archdsl
from archdsl.cli import main
from archdsl.errors import ArchError
from archdsl.train.config import overrides_from_pairs, resolve_config
from archdsl.train.guard import Diverged, LossGuard, at_chance
from archdsl.train.loop import RunOptions, train

TINY = "network tiny\ninput 1x8x8\nconv3-6 relu maxpool2\nfc-10\n"
FAST = ("batch_size=64", "lr=0.01", "optimizer=adam", "augment=none")


def run(tmp_path: Path, out: str, *pairs: str, resume: Path | None = None, tensorboard: bool = True,
        text: str = TINY):
    spec = tmp_path / "tiny.arch"
    spec.write_text(text)
    net = archdsl.load(spec)
    config = resolve_config(net.train_settings, overrides_from_pairs(list(pairs)))
    lines: list[str] = []
    result = train(net, config, RunOptions(out=tmp_path / out, resume=resume, progress=False, log=lines.append,
                                           tensorboard=tensorboard))
    return result, lines


def rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def events(run_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    reader = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    reader.Reload()
    return reader


# ---- TensorBoard and warm-up ----------------------------------------------------------------------------------


def test_tensorboard_events_hold_steps_epochs_totals_and_the_confusion_matrix(tmp_path):
    result, _ = run(tmp_path, "run", *FAST, "epochs=2", "warmup=1", "lr=0.02", "optimizer=sgd", "schedule=constant")
    reader = events(result.run_dir)
    tags = reader.Tags()
    assert {"train/loss_step", "train/lr_step", "train/loss", "val/top1", "lr", "epoch", "test/top1"} <= set(
        tags["scalars"])
    assert "test/confusion" in tags["images"]
    assert {"network/text_summary", "config/text_summary"} <= set(tags["tensors"])
    network = reader.Tensors("network/text_summary")[0].tensor_proto.string_val[0].decode()
    assert f"total: {archdsl.load(TINY).params:,} params" in network and "conv3-6" in network
    steps = reader.Scalars("train/lr_step")
    per_epoch = len(steps) // 2
    assert per_epoch == math.ceil(1258 / 64)  # digits' training split, in batches of 64
    # warm-up: linear over the first epoch's steps, then the scheduled rate
    expected = [0.02 * min(1, s / per_epoch) for s in range(1, 2 * per_epoch + 1)]
    assert [e.step for e in steps] == list(range(1, 2 * per_epoch + 1))
    assert np.allclose([e.value for e in steps], expected, rtol=1e-6)
    table = rows(result.run_dir)
    val = reader.Scalars("val/top1")
    assert [e.step for e in val] == [per_epoch, 2 * per_epoch]
    assert np.allclose([e.value for e in val], [float(r["val_top1"]) for r in table])
    loss_steps = [e.value for e in reader.Scalars("train/loss_step")]
    assert math.isclose(np.mean(loss_steps[:per_epoch]), float(table[0]["train_loss"]), rel_tol=0.05)


def test_no_tensorboard_writes_no_event_files(tmp_path):
    result, _ = run(tmp_path, "run", *FAST, "epochs=1", tensorboard=False)
    assert not list(result.run_dir.glob("events.out.tfevents.*"))


def test_a_resumed_run_purges_the_interrupted_epochs_steps(tmp_path):
    def stop_in_epoch_2(line: str) -> None:
        if line.startswith("epoch 1/"):
            raise KeyboardInterrupt

    from archdsl.train.loop import Interrupted

    spec = tmp_path / "tiny.arch"
    spec.write_text(TINY)
    net = archdsl.load(spec)
    config = resolve_config(net.train_settings, overrides_from_pairs([*FAST, "epochs=2"]))
    with pytest.raises(Interrupted):
        train(net, config, RunOptions(out=tmp_path / "run", progress=False, log=stop_in_epoch_2))
    train(net, config, RunOptions(resume=tmp_path / "run", progress=False, log=lambda _: None))
    steps = [e.step for e in events(tmp_path / "run").Scalars("train/loss_step")]
    assert steps == sorted(set(steps)) and len(steps) == 2 * math.ceil(1258 / 64)


# ---- the divergence stop and accuracy at chance ---------------------------------------------------------------


def test_a_diverging_run_stops_naming_epoch_and_step_and_keeps_its_checkpoint(tmp_path):
    _, _ = run(tmp_path, "run", "batch_size=64", "optimizer=sgd(momentum=0.9)", "lr=0.01", "augment=none",
               "epochs=1", "schedule=constant")
    with pytest.raises(Diverged) as info:  # the same run, extended at a rate that cannot work
        spec = tmp_path / "tiny.arch"
        net = archdsl.load(spec)
        config = resolve_config(net.train_settings, overrides_from_pairs(
            ["batch_size=64", "optimizer=sgd(momentum=0.9)", "lr=5000", "augment=none", "epochs=3",
             f"init_from={tmp_path / 'run' / 'last.pt'}", "schedule=constant"]))
        train(net, config, RunOptions(out=tmp_path / "hot", progress=False, log=lambda _: None))
    message = info.value.message
    assert "training diverged at epoch 1, step" in message
    assert "lr = 5000" in message and "try 500" in message and "warmup = 2" in message
    assert not (tmp_path / "hot" / "last.pt").exists()  # nothing finished: nothing saved


def test_the_guard_stops_on_non_finite_and_runaway_losses():
    guard = LossGuard(lr=0.1, warmup=0)
    for step in range(1, 11):
        guard.check(2.3, 1, step)
    assert guard.start == pytest.approx(2.3)
    for step in range(11, 20):
        guard.check(5.0, 1, step)  # worse, but not far above the start
    with pytest.raises(Diverged, match=r"epoch 2, step 3: the training loss became nan"):
        guard.check(float("nan"), 2, 3)
    with pytest.raises(Diverged, match=r"epoch 4, step \d+: the training loss grew to .*x its start \(2.3\)"):
        for step in range(1, 100):
            guard.check(1000.0, 4, step)
    with pytest.raises(Diverged, match=r"end of epoch 5: the validation loss is inf"):
        guard.check_validation(float("inf"), 5)
    warm = LossGuard(lr=0.1, warmup=3)
    with pytest.raises(Diverged, match=r"longer warm-up \(warmup = 6\)"):
        warm.check(float("inf"), 1, 1)


def test_chance_is_within_noise_of_guessing():
    assert at_chance(0.11, 10, 180) and not at_chance(0.30, 10, 180)
    assert at_chance(0.6, 2, 12) and not at_chance(0.95, 2, 200)


def test_a_run_stuck_at_chance_says_so(tmp_path):
    result, lines = run(tmp_path, "run", *FAST, "epochs=3", "lr=1e-7")  # learns nothing in 3 epochs
    top1 = float(rows(result.run_dir)[2]["val_top1"])
    assert top1 < 0.2
    assert any("no better than guessing among 10 classes" in line and "after 3 epochs" in line for line in lines)
    _, good = run(tmp_path, "good", *FAST, "epochs=3")
    assert not any("guessing" in line for line in good)


# ---- extending a finished run ----------------------------------------------------------------------------------


def test_extending_a_finished_cosine_run_replans_the_schedule_and_says_so(tmp_path):
    run(tmp_path, "run", *FAST, "epochs=2", "lr=0.04", "optimizer=sgd", tensorboard=False)
    assert float(rows(tmp_path / "run")[1]["lr"]) == pytest.approx(0.02)  # cosine over 2: 0.04, then 0.02
    _, lines = run(tmp_path, "run", *FAST, "epochs=4", "lr=0.04", "optimizer=sgd", resume=tmp_path / "run",
                   tensorboard=False)
    note = next(line for line in lines if "re-planned" in line)
    assert "cosine schedule re-planned for 4 epochs (was 2): epoch 3 trains at lr 0.02" in note
    lrs = [float(r["lr"]) for r in rows(tmp_path / "run")]
    # epochs 3 and 4 follow the cosine over 4 epochs: 0.04 (1 + cos(pi t/4)) / 2 at t = 2, 3; never 0
    assert lrs[2:] == pytest.approx([0.02, 0.04 * (1 + math.cos(3 * math.pi / 4)) / 2])
    import json

    assert json.loads((tmp_path / "run" / "config.json").read_text())["epochs"] == 4


def test_resuming_a_finished_run_without_more_epochs_or_with_fewer_is_refused(tmp_path, capsys):
    run(tmp_path, "run", *FAST, "epochs=2", tensorboard=False)
    assert main(["train", "--resume", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "finished all its 2 epochs" in err and "--epochs N" in err and "--init-from" in err
    assert main(["train", "--resume", str(tmp_path / "run"), "--epochs", "1"]) == 1
    assert "already trained 2 epochs" in capsys.readouterr().err


def test_a_schedule_that_reached_zero_is_refused_with_how_to_fine_tune(tmp_path):
    from archdsl.train.loop import _plan_resume
    from archdsl.train import optim
    from archdsl.train.config import TrainConfig

    model = torch.nn.Linear(2, 2)
    config = TrainConfig(epochs=5, schedule=("step", (("every", 1), ("gamma", 0.5))))
    optimizer = optim.make_optimizer(model.parameters(), config)
    schedule = optim.make_schedule(optimizer, config)
    for group in optimizer.param_groups:
        group["lr"] = 0.0  # where a schedule with gamma 0 would be
    with pytest.raises(ArchError, match=r"reached 0 .* --init-from runs/x/last.pt"):
        _plan_resume(schedule, optimizer, 3, 4, config, Path("runs/x"), archdsl.load(TINY))


# ---- test-time augmentation ------------------------------------------------------------------------------------


def test_ten_crop_views_are_the_corners_centre_and_mirrors():
    from archdsl.train.tta import load_size, views

    assert load_size("10crop", (3, 224, 224)) == (3, 256, 256)
    image = torch.arange(5 * 6, dtype=torch.float).view(1, 1, 5, 6)
    crops = views("10crop", image, (3, 4))
    assert len(crops) == 10
    assert torch.equal(crops[0], image[..., :3, :4]) and torch.equal(crops[3], image[..., 2:, 2:])
    assert torch.equal(crops[4], image[..., 1:4, 1:5])
    assert all(torch.equal(crops[i + 5], crops[i].flip(-1)) for i in range(5))
    assert [v.shape for v in views("flip", image, (5, 6))] == [image.shape] * 2


def test_evaluate_with_ten_crops_and_flips_on_digits(tmp_path, capsys):
    run(tmp_path, "run", *FAST, "epochs=3", tensorboard=False)
    spec = str(tmp_path / "tiny.arch")
    results = {}
    for tta in ("none", "flip", "10crop"):
        assert main(["evaluate", spec, str(tmp_path / "run"), "--tta", tta, "--json", "-o", str(tmp_path)]) == 0
        import json

        results[tta] = json.loads(capsys.readouterr().out)
    assert {r["images"] for r in results.values()} == {359}
    assert results["10crop"]["tta"] == "10crop"
    for r in results.values():
        assert 0.3 < r["top1"] <= 1
    assert results["none"]["top1"] != results["10crop"]["top1"] or results["none"]["loss"] != results["10crop"]["loss"]


# ---- archdsl runs ---------------------------------------------------------------------------------------------


def test_runs_lists_run_folders_and_compares_two(tmp_path, capsys):
    run(tmp_path, "runs/a", *FAST, "epochs=2", tensorboard=False)
    run(tmp_path, "runs/b", *FAST, "epochs=1", "lr=0.001", tensorboard=False)
    (tmp_path / "runs" / "c").mkdir()  # not a run
    assert main(["runs", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out.splitlines()
    import json

    summary = json.loads((tmp_path / "runs" / "a" / "summary.json").read_text())
    a = next(line for line in out if line.startswith("a "))
    assert "tiny.arch" in a and "digits" in a and "2/2" in a and f"{summary['test_top1']:.2%}" in a
    assert any(line.startswith("b ") and "1/1" in line for line in out)
    assert not any(line.startswith("c ") for line in out)
    plot = tmp_path / "ab.png"
    assert main(["runs", "--compare", str(tmp_path / "runs" / "a"), str(tmp_path / "runs" / "b"),
                 "-o", str(plot)]) == 0
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert main(["runs", "--compare", str(tmp_path / "runs" / "a"), str(tmp_path / "runs" / "c")]) == 1
    assert "is not a run folder" in capsys.readouterr().err


def test_runs_reads_damaged_run_folders_without_blocking_or_failing(tmp_path, capsys):
    """A FIFO named summary.json blocked `archdsl runs` for ever; a metrics row without val_top1 and a summary
    holding strings were internal errors. Each now reads as the part of the run that is there."""
    import json
    import os
    import threading

    config = json.dumps({"network": "tiny", "spec": "tiny.arch", "dataset": "digits", "epochs": 2})
    row = "epoch,train_loss,train_acc,val_loss,val_top1,val_top5,lr,time_s\n1,2.0,0.3,2.0,0.7,0.9,0.05,0.5\n"
    folders = {"fifo": (row, None), "no-val": ("epoch,train_loss\n1,2.0\n", "{}"),
               "strings": (row, '{"test_top1": "x", "wall_s": [1]}'), "list": (row, "[1, 2]")}
    for name, (metrics, summary) in folders.items():
        folder = tmp_path / "runs" / name
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(config)
        (folder / "metrics.csv").write_text(metrics)
        if summary is None:
            os.mkfifo(folder / "summary.json")
        else:
            (folder / "summary.json").write_text(summary)
    codes = []
    lister = threading.Thread(target=lambda: codes.append(main(["runs", str(tmp_path / "runs")])), daemon=True)
    lister.start()
    lister.join(timeout=60)
    assert codes == [0], "archdsl runs blocked or failed"
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("fifo ") and "70.00% (ep 1)" in line and "1/2 *" in line for line in out), out
    assert any(line.startswith("no-val ") and " 0/2 " in line for line in out), out
    assert any(line.startswith("strings ") and "70.00% (ep 1)   -" in line for line in out), out
    assert main(["runs", "--compare", str(tmp_path / "runs" / "no-val"), str(tmp_path / "runs" / "fifo")]) == 1
    assert "has no finished epoch to draw" in capsys.readouterr().err


def test_sync_bn_needs_cuda_and_says_why(tmp_path, capsys):
    spec = tmp_path / "bn.arch"
    spec.write_text("network bn\ninput 1x8x8\nconv3-6 bn relu maxpool2\nfc-10\n")
    assert main(["train", str(spec), "--sync-bn", "--device", "cpu", "--epochs", "1",
                 "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "--sync-bn needs CUDA" in err and "SyncBatchNorm" in err

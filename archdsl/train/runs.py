"""Run folders side by side: what `archdsl runs` lists and compares. Reads only the plain files (no torch).

    find_runs(root) -> [RunInfo]            every run folder under `root` (config.json beside metrics.csv or last.pt)
    is_run(folder), read_run(folder)        one folder
    table(runs) -> str                      spec, epochs done/planned, best validation and test top-1, wall time
    plot_compare(runs, path)                the runs' curves in one figure
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from archdsl import files
from archdsl.errors import ArchError


@dataclass(frozen=True)
class RunInfo:
    path: Path
    network: str
    spec: str
    dataset: str
    epochs_done: int
    epochs_planned: int | None
    best_val_top1: float | None
    best_epoch: int | None
    test_top1: float | None
    wall_s: float | None  # the summary's, else the finished epochs' total
    finished: bool
    rows: tuple[dict[str, float], ...]


def find_runs(root: Path) -> list[RunInfo]:
    root = Path(root)
    if not root.is_dir():
        raise ArchError(f"'{root}' is not a folder; give the folder that holds run folders (default runs/)")
    if is_run(root):
        return [read_run(root)]
    found = []
    for current, folders, _ in os.walk(root):
        folders.sort()
        here = Path(current)
        if here != root and is_run(here):
            found.append(read_run(here))
            folders.clear()  # a run's own subfolders are not runs
    return found


def is_run(folder: Path) -> bool:
    return (folder / "config.json").is_file() and ((folder / "metrics.csv").is_file() or (folder / "last.pt").is_file())


# The metrics.csv columns this module reads; a row without a number in each is not shown.
ROW_COLUMNS = ("epoch", "train_loss", "val_loss", "val_top1", "time_s")


def read_run(folder: Path) -> RunInfo:
    """What a run folder's plain files say; a file that is missing, damaged or of the wrong kind says nothing."""
    folder = Path(folder)
    config = _json(folder / "config.json") or {}
    summary = _json(folder / "summary.json")
    rows = tuple(_rows(folder / "metrics.csv"))
    best = max(rows, key=lambda r: r["val_top1"], default=None)
    wall = _number(summary.get("wall_s")) if summary else (sum(r["time_s"] for r in rows) if rows else None)
    epochs = config.get("epochs")
    return RunInfo(folder, str(config.get("network", "?")), str(config.get("spec", "?")),
                   str(config.get("dataset", "?")), len(rows), epochs if type(epochs) is int else None,
                   best["val_top1"] if best else None, int(best["epoch"]) if best else None,
                   _number(summary.get("test_top1")) if summary else None, wall, summary is not None, rows)


def _number(value) -> float | None:
    """`value` when it is a finite number (a summary.json written by archdsl holds no other), else None."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return value if ok else None


def _text(path: Path) -> str | None:
    """A regular file's text, or None: a FIFO named summary.json is not read (it would block for ever)."""
    try:
        with files.open_regular(path, "a file archdsl train writes") as file:
            return file.read().decode("utf-8")
    except (ArchError, OSError, ValueError):
        return None


def _json(path: Path) -> dict | None:
    try:
        value = json.loads(_text(path) or "null")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _rows(path: Path) -> list[dict[str, float]]:
    try:
        table = csv.DictReader(io.StringIO(_text(path) or "", newline=""))
        rows = [{k: float(v) for k, v in row.items() if isinstance(k, str) and isinstance(v, str) and v}
                for row in table]
    except (ValueError, csv.Error):
        return []
    return [row for row in rows if all(math.isfinite(row.get(key, math.nan)) for key in ROW_COLUMNS)]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    from archdsl.train.progress import format_duration

    return format_duration(seconds)


def table(runs: Sequence[RunInfo], root: Path) -> str:
    header = ("run", "spec", "dataset", "epochs", "best val top-1", "test top-1", "wall")
    lines = [header]
    for run in runs:
        planned = f"/{run.epochs_planned}" if run.epochs_planned is not None else ""
        best = f"{_pct(run.best_val_top1)} (ep {run.best_epoch})" if run.best_epoch else "-"
        name = str(run.path.relative_to(root)) if run.path != root and run.path.is_relative_to(root) else str(run.path)
        lines.append((name, run.spec, run.dataset, f"{run.epochs_done}{planned}" + ("" if run.finished else " *"),
                      best, _pct(run.test_top1), _duration(run.wall_s)))
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in lines]
    text.insert(1, "  ".join("-" * width for width in widths))
    if any(not run.finished for run in runs):
        text.append("* unfinished (no summary.json): interrupted, or still running")
    return "\n".join(text)


def plot_compare(runs: Sequence[RunInfo], path: Path) -> None:
    """Loss and validation top-1 against epochs, every run in the same two panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for run in runs:
        epochs = [r["epoch"] for r in run.rows]
        line = ax_loss.plot(epochs, [r["train_loss"] for r in run.rows], marker="o", label=f"{run.path.name} train")[0]
        ax_loss.plot(epochs, [r["val_loss"] for r in run.rows], marker=".", linestyle="--", color=line.get_color(),
                     label=f"{run.path.name} validation")
        ax_acc.plot(epochs, [r["val_top1"] for r in run.rows], marker="o", color=line.get_color(),
                    label=f"{run.path.name} validation top-1")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="validation top-1", ylim=(0, 1.01))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(" vs ".join(run.path.name for run in runs))
    fig.tight_layout()
    files.save_figure(fig, path, dpi=100)

"""TensorBoard event files in the run folder (`tensorboard --logdir runs/` shows every run).

    train/loss_step, train/lr_step                  every training step
    train/loss, train/top1, val/loss, val/top1, val/top5, lr, epoch, epoch_time_s     every epoch

Every scalar is plotted against the training step, counted from the run's
start (an epoch's scalars at its last step; `epoch` maps steps to epochs).
    network (text)                                  the `archdsl check` table and its totals
    config (text)                                   the resolved settings
    test/confusion (image), test/top1, test/top5     at the end

Written by rank 0 only, through torch.utils.tensorboard (which needs the
`tensorboard` package: `pip install "archdsl[torch]"`); `--no-tensorboard` turns
it off. A resumed run purges the events after its last checkpoint, so the
curves carry no trace of the epoch that was interrupted.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Sequence


class Board:
    def __init__(self, run_dir: Path, purge_step: int | None = None):
        self.writer = None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            print("archdsl: warning: tensorboard is not installed, so no event files are written; "
                  'pip install "archdsl[torch]" (or tensorboard), or pass --no-tensorboard', file=sys.stderr)
            return
        self.writer = SummaryWriter(str(run_dir), purge_step=purge_step, flush_secs=30)

    def describe(self, network_table: str, config: dict[str, Any]) -> None:
        if self.writer is None:
            return
        self.writer.add_text("network", _code(network_table), 0)
        self.writer.add_text("config", _code(json.dumps(config, indent=2)), 0)

    def step(self, global_step: int, loss: float, lr: float) -> None:
        if self.writer is not None:
            self.writer.add_scalar("train/loss_step", loss, global_step)
            self.writer.add_scalar("train/lr_step", lr, global_step)

    def epoch(self, row: dict[str, float], global_step: int) -> None:
        """One metrics.csv row, at the epoch's last step."""
        if self.writer is None:
            return
        for tag, key in (("train/loss", "train_loss"), ("train/top1", "train_acc"), ("val/loss", "val_loss"),
                         ("val/top1", "val_top1"), ("val/top5", "val_top5"), ("lr", "lr"), ("epoch", "epoch"),
                         ("epoch_time_s", "time_s")):
            self.writer.add_scalar(tag, row[key], global_step)
        self.writer.flush()

    def test(self, global_step: int, top1: float, top5: float, confusion, class_names: Sequence[str], title: str) -> None:
        if self.writer is None:
            return
        from archdsl.train.metrics import confusion_figure

        self.writer.add_scalar("test/top1", top1, global_step)
        self.writer.add_scalar("test/top5", top5, global_step)
        self.writer.add_figure("test/confusion", confusion_figure(confusion, class_names, title), global_step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _code(text: str) -> str:
    """Markdown (TensorBoard renders text as markdown): a preformatted block."""
    return "\n".join("    " + line for line in text.splitlines())

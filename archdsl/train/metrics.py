"""Accuracy counts, the per-epoch metrics table, and the pictures of a run (Agg backend, no display)."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from archdsl import files

COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_top1", "val_top5", "lr", "time_s")


@dataclass
class Tally:
    """Sums over batches (kept as float64 sums so that ranks can add theirs up)."""

    loss_sum: float = 0.0
    top1: int = 0
    top5: int = 0
    count: int = 0

    def add(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        n = labels.shape[0]
        self.loss_sum += float(loss) * n
        hits = topk_hits(logits, labels, (1, 5))
        self.top1 += hits[0]
        self.top5 += hits[1]
        self.count += n

    def as_tensor(self) -> torch.Tensor:
        return torch.tensor([self.loss_sum, self.top1, self.top5, self.count], dtype=torch.float64)

    @classmethod
    def from_tensor(cls, values: torch.Tensor) -> "Tally":
        loss, top1, top5, count = values.tolist()
        return cls(loss, int(top1), int(top5), int(count))

    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.count, 1)

    @property
    def acc1(self) -> float:
        return self.top1 / max(self.count, 1)

    @property
    def acc5(self) -> float:
        return self.top5 / max(self.count, 1)


def topk_hits(logits: torch.Tensor, labels: torch.Tensor, ks: Sequence[int]) -> list[int]:
    """How many labels are among the k highest scores, for each k (k capped at the class count)."""
    k_max = min(max(ks), logits.shape[1])
    top = logits.topk(k_max, dim=1).indices
    hit = top == labels[:, None]
    return [int(hit[:, : min(k, k_max)].any(dim=1).sum()) for k in ks]


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, classes: int) -> torch.Tensor:
    """counts[true, predicted]."""
    index = labels.long() * classes + predictions.long()
    return torch.bincount(index, minlength=classes * classes).view(classes, classes)


def format_confusion(matrix: torch.Tensor, names: Sequence[str]) -> str:
    """The matrix as text: rows are the true class, columns the predicted one."""
    labels = [str(n)[:8] for n in names]
    width = max(max(len(l) for l in labels), len(str(int(matrix.max()) if matrix.numel() else 0)), 3)
    lines = ["true \\ predicted", " " * (width + 1) + " ".join(l.rjust(width) for l in labels)]
    for label, row in zip(labels, matrix.tolist()):
        lines.append(label.rjust(width) + " " + " ".join(str(v).rjust(width) for v in row))
    return "\n".join(lines)


def write_csv(rows: Sequence[dict], path: Path) -> None:
    """The whole table, rewritten each epoch (atomically), so it always matches the last checkpoint."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _fmt(row[k]) for k in COLUMNS})
    files.write_text(path, text.getvalue())


def _fmt(value) -> str:
    return str(value) if isinstance(value, int) else repr(float(value))


def plot_curves(rows: Sequence[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], marker="o", label="train")
    ax_loss.plot(epochs, [r["val_loss"] for r in rows], marker="o", label="validation")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.plot(epochs, [r["train_acc"] for r in rows], marker="o", label="train top-1")
    ax_acc.plot(epochs, [r["val_top1"] for r in rows], marker="o", label="validation top-1")
    ax_acc.plot(epochs, [r["val_top5"] for r in rows], marker=".", linestyle="--", label="validation top-5")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.01))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)


def plot_confusion(matrix: torch.Tensor, names: Sequence[str], path: Path, title: str) -> None:

    _save(confusion_figure(matrix, names, title), path)


def confusion_figure(matrix: torch.Tensor, names: Sequence[str], title: str):
    """The confusion matrix as a matplotlib figure (rows: true class, columns: predicted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = len(names)
    size = min(4 + 0.4 * classes, 20)
    fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(matrix.numpy(), cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046)
    if classes <= 30:  # beyond that the labels would overlap
        ax.set_xticks(range(classes), [str(n) for n in names], rotation=90)
        ax.set_yticks(range(classes), [str(n) for n in names])
        threshold = matrix.max().item() / 2
        for i in range(classes):
            for j in range(classes):
                value = int(matrix[i, j])
                if value:
                    ax.text(j, i, str(value), ha="center", va="center", fontsize=8,
                            color="white" if value > threshold else "black")
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    return fig


def _save(fig, path: Path) -> None:
    """A figure as a PNG, written atomically (a full disk is an ArchError naming the file)."""
    files.save_figure(fig, path, dpi=100, format="png")

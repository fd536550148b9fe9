"""Watching a run for the ways training fails quietly: divergence, and accuracy stuck at chance.

    LossGuard.check(loss, epoch, step)       raises Diverged on a non-finite loss or one far above its start
    at_chance(top1, classes, images)         whether a validation accuracy is within noise of guessing

A diverged run stops at once (the last finished epoch's checkpoint is kept),
naming the epoch and step and suggesting what usually fixes it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from archdsl.errors import ArchError

FACTOR = 10.0  # "far above its start": a smoothed loss this many times the first steps'
START_STEPS = 10  # steps averaged for the starting loss
SMOOTHING = 0.1  # weight of each new step in the running loss
CHANCE_AFTER = 3  # epochs before a run at chance is reported


class Diverged(ArchError):
    """The loss became non-finite or grew far above its start."""


@dataclass
class LossGuard:
    lr: float
    warmup: int
    start: float | None = None  # the mean of the first START_STEPS losses (kept in checkpoints)
    _first: tuple[float, ...] = ()
    _running: float | None = None

    def check(self, loss: float, epoch: int, step: int, what: str = "training loss") -> None:
        """`epoch` and `step` are 1-based, for the message."""
        if not math.isfinite(loss):
            raise self._diverged(f"the {what} became {loss}", epoch, step)
        if self.start is None:
            self._first += (loss,)
            if len(self._first) == START_STEPS:
                self.start = sum(self._first) / len(self._first)
            return
        self._running = loss if self._running is None else (1 - SMOOTHING) * self._running + SMOOTHING * loss
        if self._running > FACTOR * self.start:
            raise self._diverged(f"the {what} grew to {self._running:.4g}, {self._running / self.start:.0f}x its "
                                 f"start ({self.start:.4g})", epoch, step)

    def check_validation(self, loss: float, epoch: int) -> None:
        if not math.isfinite(loss) or (self.start is not None and loss > FACTOR * self.start):
            start = f", {loss / self.start:.0f}x the training loss's start ({self.start:.4g})" \
                if self.start and math.isfinite(loss) else ""
            raise self._diverged(f"the validation loss is {loss:.4g}{start}", epoch, None)

    def _diverged(self, what: str, epoch: int, step: int | None) -> Diverged:
        where = f"epoch {epoch}, step {step}" if step is not None else f"the end of epoch {epoch}"
        warm = f"or a longer warm-up (warmup = {self.warmup * 2})" if self.warmup else \
            "or warm up the learning rate first (warmup = 2: two epochs of linear warm-up)"
        return Diverged(f"training diverged at {where}: {what}; stopped. Lower the learning rate (lr = {self.lr:g} "
                        f"now; try {self.lr / 10:g}) {warm}. The checkpoints of the last finished epoch are kept")


def at_chance(top1: float, classes: int, images: int) -> bool:
    """Whether `top1` on `images` is within two standard deviations of guessing among `classes`."""
    if classes < 2 or images < 1:
        return False
    chance = 1 / classes
    noise = 2 * math.sqrt(chance * (1 - chance) / images)
    return top1 <= chance + max(noise, 0.01)

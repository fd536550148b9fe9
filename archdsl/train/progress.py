"""A small progress bar on stderr: one line per epoch, redrawn in place on a terminal only.

When stderr is not a terminal (a log file, CI, pytest) nothing is drawn during
the epoch; the epoch's summary line (printed by the loop) is all that appears.
"""
from __future__ import annotations

import sys
import time
from typing import TextIO

_WIDTH = 24
_REDRAW_S = 0.1  # at most ten redraws a second: drawing must not slow training


class ProgressBar:
    def __init__(self, label: str, total: int, stream: TextIO | None = None, enabled: bool | None = None):
        self.label = label
        self.total = max(total, 1)
        self.stream = stream or sys.stderr
        self.enabled = _is_tty(self.stream) if enabled is None else enabled
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self.images = 0

    def update(self, step: int, images: int, loss: float, acc: float) -> None:
        self.images = images
        now = time.perf_counter()
        if not self.enabled or (now - self._last_draw < _REDRAW_S and step < self.total):
            return
        self._last_draw = now
        filled = round(_WIDTH * step / self.total)
        bar = "#" * filled + "." * (_WIDTH - filled)
        rate = images / max(now - self.start, 1e-9)
        self.stream.write(f"\r{self.label} [{bar}] {step}/{self.total} loss {loss:.4f} acc {acc:6.2%} "
                          f"{rate:,.0f} img/s\x1b[K")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    @property
    def images_per_s(self) -> float:
        return self.images / max(time.perf_counter() - self.start, 1e-9)


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False

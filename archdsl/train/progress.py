"""Progress of one phase (a training epoch, validation, the test) on stderr, through tqdm.

On a terminal: a tqdm bar with the ETA, images per second, and the running
loss and accuracy. Elsewhere (a log file, CI, nohup): no bar, but one plain
line every `every_s` seconds (default 30), so that a long epoch shows life;
a phase shorter than that prints nothing, and its summary line (printed by
the loop) is all that appears.
"""
from __future__ import annotations

import sys
import time
from typing import TextIO

PLAIN_EVERY_S = 30.0


class Progress:
    def __init__(self, label: str, total_images: int, *, stream: TextIO | None = None, terminal: bool | None = None,
                 every_s: float = PLAIN_EVERY_S, redraw_s: float = 0.2):
        self.label, self.total = label, max(total_images, 1)
        self.stream = stream or sys.stderr
        self.terminal = _is_tty(self.stream) if terminal is None else terminal
        self.every_s = every_s  # redraw_s: the bar is redrawn at most this often, so that drawing never slows training
        self.start = self._last_line = time.perf_counter()
        self.images = 0
        self._bar = None
        if self.terminal:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=label, unit="img", unit_scale=False, file=self.stream,
                             leave=False, dynamic_ncols=True, mininterval=redraw_s)

    def update(self, images: int, loss: float, acc: float) -> None:
        """`images` seen so far in this phase; the running mean loss and top-1."""
        advance, self.images = images - self.images, images
        if self._bar is not None:
            self._bar.set_postfix_str(f"loss {loss:.4f} acc {acc:.2%}", refresh=False)
            self._bar.update(advance)
            return
        now = time.perf_counter()
        if now - self._last_line >= self.every_s:
            self._last_line = now
            elapsed = now - self.start
            rate = images / max(elapsed, 1e-9)
            eta = (self.total - images) / rate if rate > 0 else float("inf")
            self.stream.write(f"{self.label}: {images:,}/{self.total:,} images ({images / self.total:.0%}), "
                              f"{rate:,.0f} img/s, ETA {format_duration(eta)}, loss {loss:.4f} acc {acc:.2%}\n")
            self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def format_duration(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False

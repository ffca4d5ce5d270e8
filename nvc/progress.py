"""A small progress bar for long work, drawn on stderr only when it is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Call `update(done, total)` as work advances and `close()` at the end.

    On a terminal it redraws one line at most ten times a second; elsewhere (pipes,
    CI logs, tests) it prints nothing, so output stays quiet and machine-readable.
    """

    def __init__(self, label: str, *, stream: TextIO | None = None, enabled: bool | None = None):
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self._drawn = False
        self.extra = ""  # free text shown after the counters, e.g. "PSNR 34.1 dB"

    def update(self, done: int, total: int | None = None) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last_draw < 0.1 and (total is None or done < total):
            return
        self._last_draw = now
        self.stream.write("\r" + self.line(done, total, now - self.start) + "\x1b[K")
        self.stream.flush()
        self._drawn = True

    def line(self, done: int, total: int | None, elapsed: float) -> str:
        rate = done / elapsed if elapsed > 0 else 0.0
        text = f"{self.label} {done}"
        if total:
            width = 24
            filled = min(width, int(width * done / total))
            bar = "#" * filled + "-" * (width - filled)
            eta = (total - done) / rate if rate > 0 else 0.0
            text = f"{self.label} [{bar}] {done}/{total} {rate:.1f} fps ETA {eta:.0f}s"
        else:
            text += f" frames {rate:.1f} fps"
        return f"{text} {self.extra}".rstrip()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False

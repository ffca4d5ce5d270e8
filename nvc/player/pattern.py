"""`testsrc`: a built-in moving test pattern for `nvc live`, cheap enough for real time.

Drawn directly in limited-range 4:2:0 Y'CbCr (BT.709), then converted when another pixel
format is asked for:

- 75% colour bars scrolling left, a quarter of the width per second;
- below them a luma ramp scrolling right;
- a white square bouncing around the frame;
- across the top, the frame number as 16 black/white blocks (most significant bit first),
  so a recording or a screenshot tells which frame it is.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from nvc.media import Frame, convert, rgb_to_yuv

BARS_RGB = [  # 75% bars: white, yellow, cyan, green, magenta, red, blue, black
    (191, 191, 191),
    (191, 191, 0),
    (0, 191, 191),
    (0, 191, 0),
    (191, 0, 191),
    (191, 0, 0),
    (0, 0, 191),
    (0, 0, 0),
]
COUNTER_BITS = 16  # frame number blocks across the top
WHITE, BLACK, GREY = 235, 16, 128  # limited-range luma / neutral chroma


def _bar_rows(width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One row of Y, Cb and Cr (chroma at half width) of the bars, `width` wide."""
    rgb = np.array(BARS_RGB, dtype=np.uint8)[None, :, :]  # (1, 8, 3)
    y, cb, cr = rgb_to_yuv(rgb, "yuv444p")
    index = (np.arange(width) * len(BARS_RGB)) // width
    cw = -(-width // 2)
    cindex = (np.arange(cw) * 2 * len(BARS_RGB)) // max(width, 1)
    cindex = np.minimum(cindex, len(BARS_RGB) - 1)
    return y[0, index], cb[0, cindex], cr[0, cindex]


class TestPattern:
    """Frames of the moving test pattern: `frame(k)` is frame k (pts k, time base 1/fps)."""

    __test__ = False  # not a pytest test class

    def __init__(self, width: int, height: int, fps: Fraction, format: str = "yuv420p") -> None:
        if width < 16 or height < 16:
            raise ValueError("the test pattern needs at least 16x16 pixels")
        self.width, self.height, self.fps, self.format = width, height, fps, format
        self._y_row, self._cb_row, self._cr_row = _bar_rows(width)
        self._ramp = np.linspace(BLACK, WHITE, width).astype(np.uint8)
        self._bars_h = (height * 3) // 4
        self._strip = max(2, height // 12)
        self._box = max(4, min(width, height) // 5) & ~1

    def _shift(self, k: int, fraction: float) -> int:
        """Pixels moved after k frames at `fraction` of the width per second."""
        return int(k * self.width * fraction / float(self.fps)) % self.width

    def frame(self, k: int) -> Frame:
        w, h = self.width, self.height
        cw, ch = -(-w // 2), -(-h // 2)
        y = np.empty((h, w), np.uint8)
        cb = np.full((ch, cw), GREY, np.uint8)
        cr = np.full((ch, cw), GREY, np.uint8)
        shift = self._shift(k, 0.25)
        y[: self._bars_h] = np.roll(self._y_row, -shift)
        cb[: self._bars_h // 2] = np.roll(self._cb_row, -(shift // 2))
        cr[: self._bars_h // 2] = np.roll(self._cr_row, -(shift // 2))
        y[self._bars_h :] = np.roll(self._ramp, self._shift(k, 0.5))
        # the bouncing square (even position so chroma lines up)
        box = self._box
        span_x, span_y = max(1, w - box), max(1, h - box)
        tx, ty = self._shift(k, 0.37) * 2, self._shift(k, 0.23) * 2
        bx = (tx % span_x if (tx // span_x) % 2 == 0 else span_x - tx % span_x) & ~1
        by = (ty % span_y if (ty // span_y) % 2 == 0 else span_y - ty % span_y) & ~1
        y[by : by + box, bx : bx + box] = WHITE
        cb[by // 2 : (by + box) // 2, bx // 2 : (bx + box) // 2] = GREY
        cr[by // 2 : (by + box) // 2, bx // 2 : (bx + box) // 2] = GREY
        # the frame counter
        strip = self._strip
        for bit in range(COUNTER_BITS):
            x0 = bit * w // COUNTER_BITS
            x1 = (bit + 1) * w // COUNTER_BITS
            on = (k >> (COUNTER_BITS - 1 - bit)) & 1
            y[:strip, x0:x1] = WHITE if on else BLACK
        cb[: -(-strip // 2)] = GREY
        cr[: -(-strip // 2)] = GREY
        frame = Frame((y, cb, cr), "yuv420p", pts=k, time_base=1 / self.fps)
        return frame if self.format == "yuv420p" else convert(frame, self.format)


def read_counter(luma: np.ndarray, height: int | None = None) -> int:
    """The frame number drawn in a (decoded) pattern's luma plane."""
    h, w = luma.shape
    strip = max(2, (height or h) // 12)
    value = 0
    for bit in range(COUNTER_BITS):
        x0 = bit * w // COUNTER_BITS
        x1 = (bit + 1) * w // COUNTER_BITS
        block = luma[:strip, x0:x1]
        value = (value << 1) | int(float(block.mean()) > (WHITE + BLACK) / 2)
    return value

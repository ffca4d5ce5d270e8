"""The decoded state of a 2D Gaussian frame: integer parameters, the same on every decoder.

`Gaussians2D` holds one int64 array per attribute, in the units of `tables.py`. Every
decoder that has read the same units holds exactly these integers; `crc()` is what each
unit carries so that a decoder can tell that it has drifted from the encoder.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nvc.codec.gaussian import tables as T

IntArray = npt.NDArray[np.int64]

ATTRIBUTES = ("x", "y", "s1", "s2", "a", "c0", "c1", "c2")  # coding order of the attributes


@dataclass(frozen=True, eq=False)
class Gaussians2D:
    """N image-plane Gaussians (all arrays (N,) int64; see tables.py for the units)."""

    x: IntArray  # centre column in 1/16 px (pixel i covers 16 i .. 16 i + 16)
    y: IntArray  # centre row in 1/16 px
    s1: IntArray  # log-scale of the first axis: sigma = 2**(s/8) / 4 px, 0..SCALE_MAX
    s2: IntArray  # log-scale of the second axis
    a: IntArray  # angle of the first axis in pi/256, 0..255
    c0: IntArray  # colour of channel 0 (Y or R) in 2**-12 of full scale
    c1: IntArray  # colour of channel 1 (Cb or G)
    c2: IntArray  # colour of channel 2 (Cr or B)
    background: tuple[int, int, int] = (0, 0, 0)  # added to every pixel, 2**-12 full scale

    @property
    def count(self) -> int:
        return int(self.x.shape[0])

    def columns(self) -> list[IntArray]:
        return [getattr(self, name) for name in ATTRIBUTES]

    @classmethod
    def from_columns(
        cls, cols: list[IntArray], background: tuple[int, int, int] = (0, 0, 0)
    ) -> Gaussians2D:
        a = [np.ascontiguousarray(c, dtype=np.int64) for c in cols]
        if len(a) != len(ATTRIBUTES):
            raise ValueError(f"expected {len(ATTRIBUTES)} columns, got {len(a)}")
        bg = (int(background[0]), int(background[1]), int(background[2]))
        return cls(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], background=bg)

    @classmethod
    def empty(cls) -> Gaussians2D:
        return cls.from_columns([np.zeros(0, np.int64) for _ in ATTRIBUTES])

    def take(self, index: IntArray | npt.NDArray[np.bool_]) -> Gaussians2D:
        return Gaussians2D.from_columns([c[index] for c in self.columns()], self.background)

    def concat(self, other: Gaussians2D) -> Gaussians2D:
        """self's Gaussians, then other's; self's background."""
        return Gaussians2D.from_columns(
            [np.concatenate([a, b]) for a, b in zip(self.columns(), other.columns(), strict=True)],
            self.background,
        )

    def with_background(self, background: tuple[int, int, int]) -> Gaussians2D:
        return Gaussians2D.from_columns(self.columns(), background)

    def crc(self) -> int:
        """CRC-32 of the count, the background and every attribute (ATTRIBUTES order), all
        as int32 little-endian."""
        crc = zlib.crc32(self.count.to_bytes(4, "little"))
        crc = zlib.crc32(np.array(self.background, "<i4").tobytes(), crc)
        for col in self.columns():
            crc = zlib.crc32(col.astype("<i4").tobytes(), crc)
        return crc

    def equal(self, other: Gaussians2D) -> bool:
        return self.background == other.background and all(
            np.array_equal(a, b) for a, b in zip(self.columns(), other.columns(), strict=True)
        )


@dataclass(frozen=True)
class Bounds:
    """The ranges every attribute is clamped to, for a width x height picture."""

    width: int
    height: int

    @property
    def margin(self) -> int:
        return 8 * T.POS_ONE  # centres may lie up to 8 px outside the picture

    def clamp(self, g: Gaussians2D) -> Gaussians2D:
        """The state with every attribute in range (angles wrap); the decoder's rule."""
        m = self.margin
        return Gaussians2D(
            np.clip(g.x, -m, self.width * T.POS_ONE + m),
            np.clip(g.y, -m, self.height * T.POS_ONE + m),
            np.clip(g.s1, 0, T.SCALE_MAX),
            np.clip(g.s2, 0, T.SCALE_MAX),
            np.mod(g.a, T.ANGLES),
            np.clip(g.c0, -T.COLOR_LIMIT, T.COLOR_LIMIT),
            np.clip(g.c1, -T.COLOR_LIMIT, T.COLOR_LIMIT),
            np.clip(g.c2, -T.COLOR_LIMIT, T.COLOR_LIMIT),
            tuple(min(max(b, -T.COLOR_LIMIT), T.COLOR_LIMIT) for b in g.background),  # type: ignore[arg-type]
        )

"""Pixel formats nvc reads, codes and writes.

Names follow FFmpeg's (`yuv420p`, `yuv420p10le`, ...) so they map one to one onto PyAV.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nvc.errors import MediaError


@dataclass(frozen=True)
class PixelFormat:
    name: str  # FFmpeg's name for the format, e.g. "yuv420p10le"
    family: str  # "yuv" (three planes Y, Cb, Cr) or "rgb" (one interleaved (H, W, 3) plane)
    bit_depth: int  # bits per sample: 8 or 10 (yuv), 8 or 16 (rgb)
    chroma_shift_x: int  # log2 of horizontal chroma subsampling (1 for 4:2:0, 0 for 4:4:4)
    chroma_shift_y: int  # log2 of vertical chroma subsampling (1 for 4:2:0, 0 for 4:4:4)

    @property
    def dtype(self) -> np.dtype:
        """numpy dtype of one sample: uint8 up to 8 bits, little-endian uint16 above."""
        return np.dtype(np.uint8) if self.bit_depth <= 8 else np.dtype("<u2")

    @property
    def max_value(self) -> int:
        return (1 << self.bit_depth) - 1

    def plane_shapes(self, width: int, height: int) -> list[tuple[int, ...]]:
        """Shapes of the planes of a width x height frame; odd sizes round chroma up."""
        if self.family == "rgb":
            return [(height, width, 3)]
        cw = -(-width // (1 << self.chroma_shift_x))
        ch = -(-height // (1 << self.chroma_shift_y))
        return [(height, width), (ch, cw), (ch, cw)]

    def frame_bytes(self, width: int, height: int) -> int:
        """Bytes of one frame in planar raw layout (the .yuv / y4m payload size)."""
        n = sum(int(np.prod(s)) for s in self.plane_shapes(width, height))
        return n * self.dtype.itemsize


FORMATS: dict[str, PixelFormat] = {
    f.name: f
    for f in [
        PixelFormat("yuv420p", "yuv", 8, 1, 1),
        PixelFormat("yuv420p10le", "yuv", 10, 1, 1),
        PixelFormat("yuv444p", "yuv", 8, 0, 0),
        PixelFormat("yuv444p10le", "yuv", 10, 0, 0),
        PixelFormat("rgb24", "rgb", 8, 0, 0),
        PixelFormat("rgb48le", "rgb", 16, 0, 0),
    ]
}


def pixel_format(name: str) -> PixelFormat:
    """Look up a supported pixel format by name; MediaError if nvc does not support it."""
    try:
        return FORMATS[name]
    except KeyError:
        supported = ", ".join(FORMATS)
        raise MediaError(f"unsupported pixel format {name!r} (supported: {supported})") from None

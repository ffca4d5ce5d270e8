"""The Frame: one picture as numpy planes, with its presentation time."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from nvc.errors import MediaError
from nvc.media.formats import PixelFormat, pixel_format


@dataclass(frozen=True, eq=False)
class Frame:
    planes: tuple[np.ndarray, ...]  # yuv: (Y (H, W), Cb (h, w), Cr (h, w)); rgb: ((H, W, 3),)
    format: str  # pixel format name, a key of nvc.media.formats.FORMATS
    pts: int = 0  # presentation time in units of time_base (nvc counts frames: pts = index)
    time_base: Fraction = Fraction(1, 25)  # seconds per pts tick
    full_range: bool = False  # yuv only: full-range (JPEG) rather than limited (studio) levels

    def __post_init__(self) -> None:
        fmt = pixel_format(self.format)
        shapes = fmt.plane_shapes(self.width, self.height)
        if len(self.planes) != len(shapes):
            raise MediaError(f"{self.format} needs {len(shapes)} planes, got {len(self.planes)}")
        for i, (plane, shape) in enumerate(zip(self.planes, shapes, strict=True)):
            if plane.shape != shape or plane.dtype != fmt.dtype:
                raise MediaError(
                    f"plane {i} of a {self.width}x{self.height} {self.format} frame must be "
                    f"{shape} {fmt.dtype}, got {plane.shape} {plane.dtype}"
                )

    @property
    def pixel_format(self) -> PixelFormat:
        return pixel_format(self.format)

    @property
    def width(self) -> int:
        return int(self.planes[0].shape[1])

    @property
    def height(self) -> int:
        return int(self.planes[0].shape[0])

    @property
    def time(self) -> float:
        """Presentation time in seconds."""
        return float(self.pts * self.time_base)

    def equal(self, other: Frame) -> bool:
        """True when both frames hold the same format, size and samples (times not compared)."""
        return (
            self.format == other.format
            and self.full_range == other.full_range
            and len(self.planes) == len(other.planes)
            and all(np.array_equal(a, b) for a, b in zip(self.planes, other.planes, strict=True))
        )

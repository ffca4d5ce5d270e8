"""The Frame: one picture as numpy planes, with its presentation time and colour metadata.

Frames trade with numpy and PyAV the way PyAV's own frames do:

    rgb = frame.to_ndarray()                      # (H, W, 3) uint8, like av.VideoFrame's
    yuv = frame.to_ndarray("yuv420p")             # PyAV's layouts for the YUV formats
    frame = Frame.from_ndarray(rgb, "rgb24", pts=3, time_base=Fraction(1, 30))
    av_frame = frame.to_av()                      # an av.VideoFrame, colour tags set
    frame = Frame.from_av(av_frame)               # any pixel format FFmpeg knows

Array layouts (PyAV's): rgb24 / rgb48le (H, W, 3); yuv420p / yuv420p10le the three planes
stacked into (H * 3 / 2, W) (even width and height only); yuv444p / yuv444p10le (3, H, W).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from nvc.errors import MediaError
from nvc.media.colorspace import BT709, ColorSpace
from nvc.media.formats import PixelFormat, pixel_format

if TYPE_CHECKING:
    import av


@dataclass(frozen=True, eq=False)
class Frame:
    planes: tuple[np.ndarray, ...]  # yuv: (Y (H, W), Cb (h, w), Cr (h, w)); rgb: ((H, W, 3),)
    format: str  # pixel format name, a key of nvc.media.formats.FORMATS
    pts: int = 0  # presentation time in units of time_base (nvc counts frames: pts = index)
    time_base: Fraction = Fraction(1, 25)  # seconds per pts tick
    full_range: bool = False  # yuv only: full-range (JPEG) rather than limited (studio) levels
    colorspace: ColorSpace = BT709  # matrix, primaries, transfer (nvc.media.colorspace)

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
        if not isinstance(self.colorspace, ColorSpace):
            raise TypeError("colorspace must be an nvc.media.colorspace.ColorSpace")

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
        """True when both frames hold the same format, range, size and samples (times and
        colour metadata not compared)."""
        return (
            self.format == other.format
            and self.full_range == other.full_range
            and len(self.planes) == len(other.planes)
            and all(np.array_equal(a, b) for a, b in zip(self.planes, other.planes, strict=True))
        )

    # -- numpy and PyAV ------------------------------------------------------------------
    def to_ndarray(self, format: str = "rgb24") -> np.ndarray:
        """The picture as one array in `format` (converted when the frame is in another),
        in PyAV's layout for that format (see the module docstring)."""
        from nvc.media.color import convert

        frame = convert(self, format)
        fmt = frame.pixel_format
        if fmt.family == "rgb":
            return frame.planes[0].copy()
        if fmt.chroma_shift_x == 0 and fmt.chroma_shift_y == 0:
            return np.stack(frame.planes)
        if self.width % 2 or self.height % 2:
            raise MediaError(
                f"a {format} array needs an even width and height, not {self.width}x{self.height}"
            )
        flat = np.concatenate([plane.reshape(-1) for plane in frame.planes])
        return flat.reshape(self.height * 3 // 2, self.width)

    @classmethod
    def from_ndarray(
        cls,
        array: np.ndarray,
        format: str = "rgb24",
        *,
        pts: int = 0,
        time_base: Fraction = Fraction(1, 25),
        full_range: bool = False,
        colorspace: ColorSpace = BT709,
    ) -> Frame:
        """A frame holding a copy of `array`, laid out as `to_ndarray(format)` returns it."""
        fmt = pixel_format(format)
        array = np.asarray(array)
        if array.dtype != fmt.dtype:
            if array.dtype.kind != "u" or array.dtype.itemsize != fmt.dtype.itemsize:
                raise MediaError(f"a {format} array must be {fmt.dtype}, got {array.dtype}")
            array = array.astype(fmt.dtype)
        if (
            fmt.dtype.itemsize > 1
            and fmt.bit_depth < 16
            and array.size
            and array.max() > fmt.max_value
        ):
            raise MediaError(f"a {format} array holds {int(array.max())}, above {fmt.max_value}")
        planes: tuple[np.ndarray, ...]
        if fmt.family == "rgb":
            if array.ndim != 3 or array.shape[2] != 3:
                raise MediaError(f"a {format} array must have shape (H, W, 3), got {array.shape}")
            planes = (array.copy(),)
        elif fmt.chroma_shift_x == 0 and fmt.chroma_shift_y == 0:
            if array.ndim != 3 or array.shape[0] != 3:
                raise MediaError(f"a {format} array must have shape (3, H, W), got {array.shape}")
            planes = tuple(array[i].copy() for i in range(3))
        else:
            if array.ndim != 2 or array.shape[0] % 3 or array.shape[1] % 2:
                raise MediaError(
                    f"a {format} array must have shape (H * 3 / 2, W) with an even width and "
                    f"height, got {array.shape}"
                )
            height, width = array.shape[0] * 2 // 3, array.shape[1]
            if height % 2:
                raise MediaError(f"a {format} array needs an even height, got {height}")
            flat = array.reshape(-1)
            n, c = height * width, height * width // 4
            chroma = (height // 2, width // 2)
            planes = (
                flat[:n].reshape(height, width).copy(),
                flat[n : n + c].reshape(chroma).copy(),
                flat[n + c :].reshape(chroma).copy(),
            )
        return cls(planes, format, pts, Fraction(time_base), full_range, colorspace)

    def to_av(self) -> av.VideoFrame:
        """An av.VideoFrame with these samples, pts, time_base, range and colour tags."""
        from nvc.media.pyav_io import av_frame_from

        out = av_frame_from(self)
        out.pts = self.pts
        out.time_base = self.time_base
        return out

    @classmethod
    def from_av(cls, frame: av.VideoFrame, format: str | None = None) -> Frame:
        """A frame from a PyAV frame, in `format` or else the nearest nvc format (as nvc's
        PyAV reader picks it), with the frame's pts (0 when unset), time_base (1/25 when
        unset), range and colour tags (unspecified colour reads as BT.709)."""
        from nvc.media.pyav_io import frame_from_av

        return frame_from_av(frame, format)

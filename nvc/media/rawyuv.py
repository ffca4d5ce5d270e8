"""Raw planar .yuv files: headerless frames of a known size, rate and pixel format.

The layout is the one FFmpeg and the UVG / JVET test sequences use: per frame the Y
plane, then Cb, then Cr; 10-bit samples are little-endian 16-bit words. Frames are read
one at a time (seek + readinto into a fresh buffer), so a 2 GB file costs one frame of
memory; a FIFO or device is read the same way as a stream (frame count unknown). The
frame size is bounded (MAX_PIXELS) and checked against the file size before any frame
buffer is allocated; 10-bit samples above 1023 are a MediaError. When size, rate or
format are not given they are taken from the file name, as in
`Beauty_1920x1080_120fps_420_8bit_YUV.yuv` or `Kimono_1920x1080_24.yuv`; a name that
says nothing about chroma or bit depth means yuv420p.
"""

from __future__ import annotations

import io
import os
import re
import stat
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from nvc.errors import MediaError
from nvc.media.base import (
    BinaryFileWriter,
    VideoReader,
    as_fps,
    check_samples,
    check_size,
    plane_bytes,
    read_exactly,
    split_planes,
)
from nvc.media.formats import pixel_format
from nvc.media.frame import Frame

RAW_FORMATS = ("yuv420p", "yuv420p10le", "yuv444p", "yuv444p10le")

_SIZE = re.compile(r"(?<![0-9])([0-9]{1,5})x([0-9]{1,5})(?![0-9])", re.IGNORECASE)
_FPS = re.compile(r"(?<![0-9.])([0-9]+(?:\.[0-9]+)?)(?:fps|hz)(?![a-z])", re.IGNORECASE)
_BITS = re.compile(r"(?<![0-9])(8|10|12|16)[-_]?bits?(?![a-z])", re.IGNORECASE)
_CHROMA = re.compile(r"(?<![0-9])(400|420|422|444)(?![0-9]|fps|hz)", re.IGNORECASE)
# JCT-VC style: the rate is the bare number right after the size, as in _1920x1080_50.yuv
_BARE_FPS = re.compile(r"^[_-]([0-9]+(?:\.[0-9]+)?)(?=$|[_.-])")


@dataclass(frozen=True)
class RawYuvName:
    """What a raw file's name says; None where it says nothing."""

    size: tuple[int, int] | None  # (width, height)
    fps: Fraction | None
    pix_fmt: str | None  # None when the name has neither chroma nor bit depth


def parse_raw_name(name: str) -> RawYuvName:
    """Size, rate and pixel format from a UVG / JVET style file name."""
    stem = Path(name).stem
    size = None
    fps = None
    m = _SIZE.search(stem)
    if m:
        size = (int(m.group(1)), int(m.group(2)))
    f = _FPS.search(stem)
    if f:
        fps = as_fps(f.group(1))
    elif m:
        bare = _BARE_FPS.match(stem[m.end() :])
        if bare and bare.group(1) not in ("400", "420", "422", "444"):
            fps = as_fps(bare.group(1))
    bits = _BITS.search(stem)
    chroma = _CHROMA.search(stem[m.end() :] if m else stem)
    pix_fmt = None
    if bits or chroma:
        depth = int(bits.group(1)) if bits else 8
        sub = chroma.group(1) if chroma else "420"
        pix_fmt = f"yuv{sub}p" + ("" if depth == 8 else f"{depth}le")
    return RawYuvName(size, fps, pix_fmt)


def raw_format(pix_fmt: str) -> str:
    """Check that `pix_fmt` is one raw .yuv files may hold."""
    pixel_format(pix_fmt)
    if pix_fmt not in RAW_FORMATS:
        raise MediaError(f"raw .yuv files hold {', '.join(RAW_FORMATS)}, not {pix_fmt}")
    return pix_fmt


class RawYuvReader(VideoReader):
    """Frames of a raw .yuv file; `seek_frame` is O(1)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        size: tuple[int, int] | None = None,
        fps: Fraction | float | None = None,
        pix_fmt: str | None = None,
    ) -> None:
        p = Path(path)
        guess = parse_raw_name(p.name)
        size = size if size is not None else guess.size
        rate = as_fps(fps) if fps is not None else guess.fps
        missing = [n for n, v in (("size", size), ("fps", rate)) if v is None]
        if size is None or rate is None:
            raise MediaError(
                f"raw video {p.name} needs {' and '.join(missing)} (e.g. size=(1920, 1080), "
                f"fps=50, pix_fmt='yuv420p'), or a name like Name_1920x1080_50fps_420_8bit.yuv"
            )
        width, height = size
        check_size(width, height)
        fmt = raw_format(pix_fmt or guess.pix_fmt or "yuv420p")
        self._frame_bytes = pixel_format(fmt).frame_bytes(width, height)
        try:
            self._file: io.BufferedReader = open(p, "rb")  # noqa: SIM115 - closed by close()
        except OSError as e:
            raise MediaError(f"cannot open {p}: {e.strerror or e}") from None
        try:
            st = os.fstat(self._file.fileno())
        except OSError as e:
            self._file.close()
            raise MediaError(f"cannot read {p}: {e.strerror or e}") from None
        self._stream = not stat.S_ISREG(st.st_mode)  # a FIFO or device: read as it comes
        total = st.st_size
        if not self._stream and total == 0:
            self._file.close()
            raise MediaError(f"{p} is empty: no frames")
        if not self._stream and total % self._frame_bytes:
            self._file.close()
            raise MediaError(
                f"{p.name} is {total} bytes, not a multiple of the {self._frame_bytes}-byte "
                f"frame of {width}x{height} {fmt}"
            )
        super().__init__(
            p,
            width=width,
            height=height,
            fps=rate,
            format=fmt,
            full_range=False,
            frame_count=None if self._stream else total // self._frame_bytes,
        )

    def _read_planes(self) -> tuple[np.ndarray, ...] | None:
        buf = read_exactly(self._file, self._frame_bytes)
        if buf is None:
            return None
        planes = split_planes(buf, self._source_format, self.width, self.height)
        check_samples(planes, self._source_format, f"{self.path}: frame {self._index}")
        return planes

    def _seek(self, index: int) -> None:
        if self._stream:
            if index != self._index:
                raise MediaError(f"cannot seek in {self.path}: it is a stream")
            return
        self._file.seek(index * self._frame_bytes)

    def _close(self) -> None:
        self._file.close()


class RawYuvWriter(BinaryFileWriter):
    """Writes frames back to back as raw planar .yuv (no header: remember size and rate);
    streams to stdout (`-`), a pipe or a device as well."""

    formats = RAW_FORMATS

    def _write(self, frame: Frame) -> None:
        for plane in frame.planes:
            self._file.write(plane_bytes(plane, self._dtype))

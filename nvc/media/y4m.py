"""YUV4MPEG2 (.y4m) reading and writing, with nvc's own parser.

A y4m file is one header line, `YUV4MPEG2` followed by space-separated tags
(W width, H height, F rate n:d, I interlacing, A pixel aspect n:d, C colour space,
X extension), then per frame a line `FRAME` (optionally with tags, which nvc ignores)
and the raw planes. Supported colour spaces: 420jpeg, 420paldv, 420mpeg2, 420 (all read
as yuv420p; the chroma siting is not modelled), 444, 420p10, 444p10. The extension
`XCOLORRANGE=FULL` marks full-range levels (FFmpeg writes it). Frames are read one at a
time into fresh arrays; a whole file is never loaded.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from nvc.errors import MediaError
from nvc.media.base import (
    MAX_DIMENSION,
    VideoReader,
    VideoWriter,
    plane_bytes,
    read_exactly,
    split_planes,
)
from nvc.media.formats import pixel_format
from nvc.media.frame import Frame

MAGIC = b"YUV4MPEG2"
MAX_LINE = 4096  # longest header or FRAME line accepted

# y4m colour-space tag -> nvc pixel format
COLORSPACES: dict[str, str] = {
    "420jpeg": "yuv420p",
    "420paldv": "yuv420p",
    "420mpeg2": "yuv420p",
    "420": "yuv420p",
    "444": "yuv444p",
    "420p10": "yuv420p10le",
    "444p10": "yuv444p10le",
}
# nvc pixel format -> (C tag, XYSCSS tag) written, as FFmpeg writes them
_WRITE_TAGS: dict[str, tuple[str, str]] = {
    "yuv420p": ("420jpeg", "420JPEG"),
    "yuv444p": ("444", "444"),
    "yuv420p10le": ("420p10", "420P10"),
    "yuv444p10le": ("444p10", "444P10"),
}


@dataclass(frozen=True)
class Y4MHeader:
    width: int  # W
    height: int  # H
    fps: Fraction  # F
    format: str  # nvc pixel format from C (default 420jpeg)
    full_range: bool  # XCOLORRANGE=FULL
    interlacing: str = "p"  # I: p, t, b, m or ?
    aspect: Fraction | None = None  # A, None when 0:0 (unknown) or absent

    def to_bytes(self) -> bytes:
        ctag, xyscss = _WRITE_TAGS[self.format]
        parts = [
            "YUV4MPEG2",
            f"W{self.width}",
            f"H{self.height}",
            f"F{self.fps.numerator}:{self.fps.denominator}",
            f"I{self.interlacing}",
            "A0:0"
            if self.aspect is None
            else f"A{self.aspect.numerator}:{self.aspect.denominator}",
            f"C{ctag}",
            f"XYSCSS={xyscss}",
        ]
        parts.append("XCOLORRANGE=FULL" if self.full_range else "XCOLORRANGE=LIMITED")
        return (" ".join(parts) + "\n").encode("ascii")


def _ratio(tag: str, value: str) -> tuple[int, int]:
    num, sep, den = value.partition(":")
    if not sep or not num.isdigit() or not den.isdigit():
        raise MediaError(f"bad y4m header: {tag}{value} is not n:d")
    return int(num), int(den)


def _dimension(tag: str, value: str) -> int:
    if not value.isdigit():
        raise MediaError(f"bad y4m header: {tag}{value} is not a number")
    n = int(value)
    if not 0 < n <= MAX_DIMENSION:
        raise MediaError(f"bad y4m header: {tag}{n} is out of range (1..{MAX_DIMENSION})")
    return n


def parse_header(line: bytes) -> Y4MHeader:
    """Parse a y4m header line (with or without its newline); MediaError if malformed."""
    try:
        text = line.rstrip(b"\n").decode("ascii")
    except UnicodeDecodeError:
        raise MediaError("bad y4m header: not ASCII") from None
    words = text.split(" ")
    if words[0] != "YUV4MPEG2":
        raise MediaError("not a y4m file: the header does not start with YUV4MPEG2")
    width = height = None
    fps = None
    colorspace = "420jpeg"
    interlacing = "p"
    aspect = None
    full_range = False
    for word in words[1:]:
        if not word:
            continue
        tag, value = word[0], word[1:]
        if tag == "W":
            width = _dimension("W", value)
        elif tag == "H":
            height = _dimension("H", value)
        elif tag == "F":
            num, den = _ratio("F", value)
            if num == 0 or den == 0:
                raise MediaError(f"bad y4m header: frame rate F{value}")
            fps = Fraction(num, den)
        elif tag == "I":
            if value not in ("p", "t", "b", "m", "?"):
                raise MediaError(f"bad y4m header: interlacing I{value}")
            interlacing = value
        elif tag == "A":
            num, den = _ratio("A", value)
            aspect = Fraction(num, den) if num and den else None
        elif tag == "C":
            colorspace = value
        elif tag == "X":
            key, _, val = value.partition("=")
            if key.upper() == "COLORRANGE":
                full_range = val.upper() == "FULL"
        # other tags are ignored, as the format allows
    if width is None or height is None:
        raise MediaError("bad y4m header: width (W) or height (H) missing")
    if fps is None:
        raise MediaError("bad y4m header: frame rate (F) missing")
    fmt = COLORSPACES.get(colorspace)
    if fmt is None:
        supported = ", ".join(COLORSPACES)
        raise MediaError(f"unsupported y4m colour space C{colorspace} (supported: {supported})")
    return Y4MHeader(width, height, fps, fmt, full_range, interlacing, aspect)


def _readline(f: io.BufferedReader, what: str) -> bytes:
    line = f.readline(MAX_LINE + 1)
    if line and not line.endswith(b"\n"):
        if len(line) > MAX_LINE:
            raise MediaError(f"bad y4m file: {what} line longer than {MAX_LINE} bytes")
        raise MediaError(f"bad y4m file: {what} line is cut off")
    return line


def _is_frame_line(line: bytes) -> bool:
    return line == b"FRAME\n" or line.startswith(b"FRAME ")


class Y4MReader(VideoReader):
    """Frames of a .y4m file, read one at a time."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        p = Path(path)
        try:
            self._file: io.BufferedReader = open(p, "rb")  # noqa: SIM115 - closed by close()
        except OSError as e:
            raise MediaError(f"cannot open {p}: {e.strerror or e}") from None
        try:
            header = parse_header(_readline(self._file, "header"))
            self._start = self._file.tell()
            self._frame_bytes = pixel_format(header.format).frame_bytes(header.width, header.height)
            first = _readline(self._file, "FRAME")
            if not first:
                raise MediaError(f"{p} holds no frames")
            if not _is_frame_line(first):
                raise MediaError(f"bad y4m file {p}: no FRAME line after the header")
            # With plain FRAME lines every frame has the same size: count and seek directly.
            self._stride: int | None = None
            frame_count = None
            if first == b"FRAME\n" and self._file.seekable():
                size = os.fstat(self._file.fileno()).st_size
                stride = len(first) + self._frame_bytes
                if (size - self._start) % stride == 0:
                    self._stride = stride
                    frame_count = (size - self._start) // stride
            self._file.seek(self._start)
        except BaseException:
            self._file.close()
            raise
        self.header = header
        super().__init__(
            p,
            width=header.width,
            height=header.height,
            fps=header.fps,
            format=header.format,
            full_range=header.full_range,
            frame_count=frame_count,
        )

    def _read_planes(self) -> tuple[np.ndarray, ...] | None:
        line = _readline(self._file, "FRAME")
        if not line:
            return None
        if not _is_frame_line(line):
            raise MediaError(f"bad y4m file {self.path}: frame {self._index} has no FRAME line")
        try:
            buf = read_exactly(self._file, self._frame_bytes)
        except MediaError as e:
            raise MediaError(f"{self.path}: frame {self._index}: {e}") from None
        if buf is None:
            raise MediaError(f"{self.path}: frame {self._index} is empty (file cut off)")
        return split_planes(buf, self._source_format, self.width, self.height)

    def _seek(self, index: int) -> None:
        if self._stride is not None:
            self._file.seek(self._start + index * self._stride)
            return
        self._file.seek(self._start)
        for i in range(index):
            line = _readline(self._file, "FRAME")
            if not _is_frame_line(line):
                raise MediaError(f"cannot seek to frame {index} of {self.path}: it has {i}")
            self._file.seek(self._frame_bytes, os.SEEK_CUR)

    def _close(self) -> None:
        self._file.close()


class Y4MWriter(VideoWriter):
    """Writes a .y4m file (progressive, square pixels, XCOLORRANGE tagged)."""

    formats = tuple(_WRITE_TAGS)

    def _open(self) -> None:
        self._file: io.BufferedWriter = open(self._tmp, "wb")  # noqa: SIM115 - closed by _finish
        header = Y4MHeader(self.width, self.height, self.fps, self.format, self.full_range)
        self._file.write(header.to_bytes())
        self._dtype = pixel_format(self.format).dtype

    def _write(self, frame: Frame) -> None:
        self._file.write(b"FRAME\n")
        for plane in frame.planes:
            self._file.write(plane_bytes(plane, self._dtype))

    def _finish(self) -> None:
        self._file.close()

    def _discard(self) -> None:
        self._file.close()

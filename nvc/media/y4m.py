"""YUV4MPEG2 (.y4m) reading and writing, with nvc's own parser.

A y4m file is one header line, `YUV4MPEG2` followed by space-separated tags
(W width, H height, F rate n:d, I interlacing, A pixel aspect n:d, C colour space,
X extension), then per frame a line `FRAME` (optionally with tags, which nvc ignores)
and the raw planes. Supported colour spaces: 420jpeg, 420paldv, 420mpeg2, 420 (all read
as yuv420p; the chroma siting is not modelled), 444, 420p10, 444p10. The extension
`XCOLORRANGE=FULL` marks full-range levels (FFmpeg writes it); nvc's own extension
`XNVC_COLOR=matrix,primaries,transfer` (FFmpeg's names, e.g. smpte170m,smpte170m,smpte170m)
carries colour metadata other than BT.709 (absent: BT.709). Frames are read one at a
time into fresh arrays; a whole file is never loaded.

What is refused with a MediaError rather than misread: interlaced video (It, Ib, Im:
nvc codes progressive frames; deinterlace first, e.g. `ffmpeg -vf yadif`; I? is read as
progressive), a frame rate outside (0, 10000] or with terms above 2^31 - 1, a frame
larger than MAX_PIXELS, and 10-bit samples above 1023.

A reader also reads a stream (stdin `-`, a pipe): lazily, frame by frame, without
seeking; the frame count is then unknown and only `seek_frame` to the current position
works. The writer streams to stdout `-`, pipes and devices the same way.
"""

from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np

from nvc.errors import MediaError
from nvc.fileio import is_stdio, open_stdin
from nvc.media.base import (
    MAX_DIMENSION,
    BinaryFileWriter,
    VideoReader,
    as_fps,
    check_samples,
    check_size,
    plane_bytes,
    read_exactly,
    split_planes,
)
from nvc.media.colorspace import BT709, ColorSpace
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
# interlacing tags nvc refuses -> what they mean
_INTERLACED = {"t": "top field first", "b": "bottom field first", "m": "mixed modes"}
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
    interlacing: str = "p"  # I: always p (It/Ib/Im are refused, I? is read as p)
    aspect: Fraction | None = None  # A, None when 0:0 (unknown) or absent
    colorspace: ColorSpace = BT709  # XNVC_COLOR, written when not BT.709

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
        if self.colorspace != BT709:
            parts.append("XNVC_COLOR=" + ",".join(self.colorspace.names))
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
    colour = BT709
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
            try:
                fps = as_fps(Fraction(num, den))
            except MediaError as e:
                raise MediaError(f"bad y4m header: F{value}: {e}") from None
        elif tag == "I":
            if value not in ("p", "t", "b", "m", "?"):
                raise MediaError(f"bad y4m header: interlacing I{value}")
            if value in _INTERLACED:
                raise MediaError(
                    f"interlaced y4m (I{value}: {_INTERLACED[value]}) is not supported: nvc "
                    "codes progressive frames; deinterlace first (e.g. ffmpeg -vf yadif)"
                )
            interlacing = "p"
        elif tag == "A":
            num, den = _ratio("A", value)
            aspect = Fraction(num, den) if num and den else None
        elif tag == "C":
            colorspace = value
        elif tag == "X":
            key, _, val = value.partition("=")
            if key.upper() == "COLORRANGE":
                full_range = val.upper() == "FULL"
            elif key.upper() == "NVC_COLOR":
                names = val.split(",")
                if len(names) != 3:
                    raise MediaError(f"bad y4m header: X{value} is not matrix,primaries,transfer")
                try:
                    colour = ColorSpace.from_names(*names)
                except MediaError as e:
                    raise MediaError(f"bad y4m header: X{value}: {e}") from None
        # other tags are ignored, as the format allows
    if width is None or height is None:
        raise MediaError("bad y4m header: width (W) or height (H) missing")
    try:
        check_size(width, height)
    except MediaError as e:
        raise MediaError(f"bad y4m header: {e}") from None
    if fps is None:
        raise MediaError("bad y4m header: frame rate (F) missing")
    fmt = COLORSPACES.get(colorspace)
    if fmt is None:
        supported = ", ".join(COLORSPACES)
        raise MediaError(f"unsupported y4m colour space C{colorspace} (supported: {supported})")
    return Y4MHeader(width, height, fps, fmt, full_range, interlacing, aspect, colour)


def _readline(f: io.BufferedIOBase, what: str) -> bytes:
    line = f.readline(MAX_LINE + 1)
    if line and not line.endswith(b"\n"):
        if len(line) > MAX_LINE:
            raise MediaError(f"bad y4m file: {what} line longer than {MAX_LINE} bytes")
        raise MediaError(f"bad y4m file: {what} line is cut off")
    return line


def _is_frame_line(line: bytes) -> bool:
    return line == b"FRAME\n" or line.startswith(b"FRAME ")


def _seekable(f: io.BufferedIOBase) -> bool:
    try:
        return f.seekable() and stat.S_ISREG(os.fstat(f.fileno()).st_mode)
    except (OSError, ValueError):
        return False


class Y4MReader(VideoReader):
    """Frames of a .y4m file, a pipe, or stdin (`-`), read one at a time.

    `path` may also be a binary file object (`name` then names it in messages); the
    reader closes it. A non-seekable source is read lazily: its frame count is None.
    """

    def __init__(self, path: str | os.PathLike[str] | BinaryIO, *, name: str = "-") -> None:
        if isinstance(path, str | os.PathLike):
            p = Path(path)
            try:
                self._file: io.BufferedIOBase = (
                    open_stdin() if is_stdio(p) else open(p, "rb")  # noqa: SIM115 - close()
                )
            except OSError as e:
                raise MediaError(f"cannot open {p}: {e.strerror or e}") from None
        else:
            p = Path(name)
            self._file = cast(io.BufferedIOBase, path)  # any binary file with readinto()
        try:
            header = parse_header(_readline(self._file, "header"))
            self._frame_bytes = pixel_format(header.format).frame_bytes(header.width, header.height)
            self._seekable = _seekable(self._file)
            self._start = self._file.tell() if self._seekable else 0
            first = _readline(self._file, "FRAME")
            if not first:
                raise MediaError(f"{p} holds no frames")
            if not _is_frame_line(first):
                raise MediaError(f"bad y4m file {p}: no FRAME line after the header")
            self._stride: int | None = None
            self._pending_line: bytes | None = None  # a FRAME line read ahead (streams)
            frame_count = None
            if self._seekable:
                size = os.fstat(self._file.fileno()).st_size
                if size - self._file.tell() < self._frame_bytes:  # before allocating a frame
                    raise MediaError(
                        f"{p}: frame 0 is cut off: {header.width}x{header.height} "
                        f"{header.format} frames are {self._frame_bytes} bytes"
                    )
                # With plain FRAME lines every frame has the same size: count and seek.
                stride = len(first) + self._frame_bytes
                if first == b"FRAME\n" and (size - self._start) % stride == 0:
                    self._stride = stride
                    frame_count = (size - self._start) // stride
                self._file.seek(self._start)
            else:
                self._pending_line = first
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
        self.colorspace = header.colorspace

    def _read_planes(self) -> tuple[np.ndarray, ...] | None:
        if self._pending_line is not None:
            line, self._pending_line = self._pending_line, None
        else:
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
        planes = split_planes(buf, self._source_format, self.width, self.height)
        check_samples(planes, self._source_format, f"{self.path}: frame {self._index}")
        return planes

    def _seek(self, index: int) -> None:
        if not self._seekable:
            if index != self._index:
                raise MediaError(f"cannot seek in {self.path}: it is a stream")
            return
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


class Y4MWriter(BinaryFileWriter):
    """Writes a .y4m file, or streams it to stdout (`-`), a pipe or a device
    (progressive, square pixels, XCOLORRANGE tagged)."""

    formats = tuple(_WRITE_TAGS)

    def _start(self) -> None:
        header = Y4MHeader(
            self.width,
            self.height,
            self.fps,
            self.format,
            self.full_range,
            colorspace=self.colorspace,
        )
        self._file.write(header.to_bytes())

    def _write(self, frame: Frame) -> None:
        self._file.write(b"FRAME\n")
        for plane in frame.planes:
            self._file.write(plane_bytes(plane, self._dtype))

"""open_video and open_writer: pick the reader or writer for a path.

Readers: `-` -> y4m from standard input; a directory -> PNG sequence; `.y4m` or a file
starting with `YUV4MPEG2` -> y4m; `.yuv` -> raw planar YUV; a pipe or device (not a
regular file) -> y4m, read as a stream; anything else -> PyAV (mp4, mkv, webm, mov, ...).

Writers, by extension: `.y4m`, `.yuv`, `.mp4` / `.m4v` / `.mov` / `.mkv`; `-` -> y4m on
standard output; an existing device or FIFO, or a descriptor path (/dev/stdout), without
one of those extensions -> y4m streamed into it; a path ending in a slash, a path
without extension or an existing directory (unless named like a file, `x.mp4`: an
error) -> PNG sequence.
Where the output goes follows nvc.fileio's rule.
"""

from __future__ import annotations

import os
import stat
from fractions import Fraction
from pathlib import Path

from nvc.errors import MediaError
from nvc.fileio import descriptor, is_stdio
from nvc.media.base import VideoReader, VideoWriter, as_fps, check_size
from nvc.media.colorspace import BT709, ColorSpace
from nvc.media.pngseq import PngSequenceReader, PngSequenceWriter
from nvc.media.pyav_io import MUXERS, PyAVReader, PyAVWriter
from nvc.media.rawyuv import RawYuvReader, RawYuvWriter
from nvc.media.y4m import MAGIC, Y4MReader, Y4MWriter

RAW_EXTENSIONS = (".yuv",)
FILES = (".y4m", *RAW_EXTENSIONS, *MUXERS)  # extensions that always mean a file output


def _is_stream(path: Path) -> bool:
    """True for an existing path that is neither a regular file nor a directory."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _starts_with(path: Path, magic: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(magic)) == magic
    except OSError:
        return False


def open_video(
    path: str | os.PathLike[str],
    *,
    size: tuple[int, int] | None = None,
    fps: Fraction | float | None = None,
    pix_fmt: str | None = None,
) -> VideoReader:
    """Open a video for reading frame by frame.

    For raw `.yuv`, `size`, `fps` and `pix_fmt` describe the file (taken from its name when
    not given). For other inputs `fps` overrides the file's rate, `pix_fmt` converts the
    frames to that format, and `size`, when given, must match the file.
    """
    p = Path(path)
    if not is_stdio(p) and not p.exists():
        raise MediaError(f"no such file: {p}")
    rate = as_fps(fps) if fps is not None else None
    if size is not None:
        if len(size) != 2:
            raise MediaError(f"size must be (width, height), got {size!r}")
        check_size(*size)
    reader: VideoReader
    if is_stdio(p) or (_is_stream(p) and p.suffix.lower() not in RAW_EXTENSIONS):
        reader = Y4MReader(p)  # never sniffed: that would consume the stream's bytes
    elif p.is_dir():
        reader = PngSequenceReader(p)
    elif p.suffix.lower() in RAW_EXTENSIONS:
        return RawYuvReader(p, size=size, fps=rate, pix_fmt=pix_fmt)
    elif p.suffix.lower() == ".y4m" or _starts_with(p, MAGIC + b" "):
        reader = Y4MReader(p)
    else:
        reader = PyAVReader(p)
    if size is not None and tuple(size) != (reader.width, reader.height):
        reader.close()
        raise MediaError(
            f"{p} is {reader.width}x{reader.height}, not the {size[0]}x{size[1]} asked for"
        )
    reader.set_output(format=pix_fmt, fps=rate)
    return reader


def open_writer(
    path: str | os.PathLike[str],
    *,
    width: int,
    height: int,
    fps: Fraction | float,
    format: str,
    full_range: bool = False,
    colorspace: ColorSpace = BT709,
) -> VideoWriter:
    """Open an atomic writer; its kind follows the path (see the module docstring).
    `colorspace` is written as tags where the output has them (mp4 / mkv / mov, y4m)."""
    text = os.fspath(path)
    p = Path(text)
    suffix = p.suffix.lower()
    cls: type[VideoWriter]
    streams = _is_stream(p) or descriptor(p) is not None  # /dev/null, a FIFO, /dev/stdout
    if is_stdio(text) or (streams and suffix not in FILES):
        cls = Y4MWriter
    elif text.endswith(("/", os.sep)) or not suffix or (p.is_dir() and suffix not in FILES):
        cls = PngSequenceWriter
    elif suffix == ".y4m":
        cls = Y4MWriter
    elif suffix in RAW_EXTENSIONS:
        cls = RawYuvWriter
    elif suffix in MUXERS:
        cls = PyAVWriter
    else:
        raise MediaError(
            f"cannot write {suffix} files: use .y4m, .yuv, .mp4, .mov, .mkv or a directory "
            "for PNG frames"
        )
    return cls(
        p,
        width=width,
        height=height,
        fps=fps,
        format=format,
        full_range=full_range,
        colorspace=colorspace,
    )

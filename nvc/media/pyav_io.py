"""Container files through PyAV (FFmpeg): mp4, mkv, webm, mov, ... in; mp4, mkv, mov out.

Reading keeps a frame's native pixel format when nvc supports it (yuv420p, yuv420p10le,
yuv444p, yuv444p10le, rgb24, rgb48le); yuvj420p / yuvj444p become yuv420p / yuv444p with
full_range=True. Anything else is converted with FFmpeg's scaler to the nearest supported
format: RGB-like (rgb, bgr, gbrp, palette) to rgb24 or, above 8 bits, rgb48le; YUV and
grey to yuv444p(10le) when chroma is not subsampled, else yuv420p(10le); 10 bits and up
become 10 bits. The rate is the stream's average frame rate (25 when the file has none).
Colour tags (matrix, primaries, transfer; H.273 code points) come from the first frame, or
the stream when the frame has none; unspecified ones read as BT.709. Audio is not read: a
file with audio gets one warning on the "nvc.media" logger (printed on stderr when logging
is not configured) saying it is dropped.

Writing is lossless, for inspection: libx264 with qp=0 for the YUV formats (4:2:0 needs
an even width and height), libx264rgb for rgb24, and FFV1 for rgb48le (.mkv only). The
stream is tagged with the writer's range and colour space.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import numpy as np
from av.video.reformatter import VideoReformatter
from av.video.stream import VideoStream

from nvc.errors import MediaError
from nvc.media.base import VideoReader, VideoWriter, as_fps
from nvc.media.color import convert
from nvc.media.colorspace import ColorSpace
from nvc.media.formats import FORMATS, pixel_format
from nvc.media.frame import Frame

log = logging.getLogger("nvc.media")

DEFAULT_FPS = Fraction(25)  # used when a file states no frame rate
_FULL_RANGE = 2  # AVCOL_RANGE_JPEG
_LIMITED_RANGE = 1  # AVCOL_RANGE_MPEG
_RGB_MATRIX = 0  # AVCOL_SPC_RGB: what an RGB frame is tagged with

# full-range ("j") YUV formats FFmpeg still reports -> (nvc format, full range)
_JPEG_FORMATS = {"yuvj420p": "yuv420p", "yuvj444p": "yuv444p"}

# container extension -> muxer name
MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


def av_error(path: Path | str, e: Exception, action: str = "read") -> MediaError:
    """A one-line MediaError for an exception raised by PyAV (`action`: read or write)."""
    text = getattr(e, "strerror", None) or str(e) or type(e).__name__
    text = " ".join(str(text).split())
    return MediaError(f"cannot {action} {path}: {text}")


def target_format(av_format: str, width: int, height: int) -> tuple[str, bool]:
    """nvc format and full-range hint for frames FFmpeg reports in pixel format `av_format`."""
    if av_format in FORMATS:
        return av_format, False
    if av_format in _JPEG_FORMATS:
        return _JPEG_FORMATS[av_format], True
    try:
        fmt = av.VideoFormat(av_format)
    except (ValueError, av.error.FFmpegError):
        raise MediaError(f"unsupported pixel format {av_format}") from None
    bits = max((c.bits for c in fmt.components), default=8)
    full = av_format.startswith("yuvj")
    if fmt.is_rgb or fmt.has_palette:
        return ("rgb48le" if bits > 8 else "rgb24"), False
    components = [c for c in fmt.components if not c.is_alpha]
    if not components:
        raise MediaError(f"unsupported pixel format {av_format}")
    full_chroma = (
        len(components) >= 3
        and fmt.chroma_width(width) == width
        and fmt.chroma_height(height) == height
    )
    name = "yuv444p" if full_chroma else "yuv420p"
    return name + ("10le" if bits > 8 else ""), full


def planes_from_av(frame: av.VideoFrame, format: str) -> tuple[np.ndarray, ...]:
    """Copies of the planes of a PyAV frame already in nvc pixel format `format`."""
    fmt = pixel_format(format)
    out = []
    for plane, shape in zip(frame.planes, fmt.plane_shapes(frame.width, frame.height), strict=True):
        rows, row_samples = shape[0], int(np.prod(shape[1:]))
        raw = np.frombuffer(memoryview(plane), dtype=np.uint8)
        raw = raw[: rows * plane.line_size].reshape(rows, plane.line_size)
        data = raw[:, : row_samples * fmt.dtype.itemsize].view(fmt.dtype)
        out.append(data.reshape(shape).copy())
    return tuple(out)


def av_frame_from(frame: Frame, av_format: str | None = None) -> av.VideoFrame:
    """A PyAV frame holding `frame`'s samples (in PyAV format `av_format`, default the same).

    `av_format` may only differ in byte order (rgb48be for rgb48le data): the samples are
    byte-swapped to match.
    """
    name = av_format or frame.format
    out = av.VideoFrame(frame.width, frame.height, name)
    big_endian = name.endswith("be")
    for plane, data in zip(out.planes, frame.planes, strict=True):
        dst = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(-1, plane.line_size)
        dtype = np.dtype(">u2" if big_endian else "<u2") if data.dtype.itemsize > 1 else None
        data = np.ascontiguousarray(data, dtype=dtype)
        rows = data.reshape(data.shape[0], -1).view(np.uint8)
        dst[: rows.shape[0], : rows.shape[1]] = rows
    yuv = frame.pixel_format.family == "yuv"
    if yuv:
        out.color_range = _FULL_RANGE if frame.full_range else _LIMITED_RANGE
    out.colorspace = frame.colorspace.matrix if yuv else _RGB_MATRIX
    out.color_primaries = frame.colorspace.primaries
    out.color_trc = frame.colorspace.transfer
    return out


def colorspace_of(frame: av.VideoFrame, stream: Any = None, *, rgb: bool = False) -> ColorSpace:
    """The colour tags of a PyAV frame, those of `stream`'s codec context where the frame
    leaves one unspecified; unspecified in both reads as BT.709. Frames that nvc reads as
    RGB (`rgb`) get the BT.709 matrix whatever their tag (RGB samples have none; BT.709 is
    the one nvc's codecs use both ways when they convert RGB to Y'CbCr and back)."""
    ctx = getattr(stream, "codec_context", None)
    codes = []
    for name in ("colorspace", "color_primaries", "color_trc"):
        value = int(getattr(frame, name))
        if value == 2 and ctx is not None:  # unspecified on the frame: ask the stream
            value = int(getattr(ctx, name, 2))
        codes.append(value)
    if rgb:
        codes[0] = 1
    return ColorSpace.from_codes(*codes)


def frame_from_av(frame: av.VideoFrame, format: str | None = None) -> Frame:
    """An nvc Frame from a PyAV frame (see Frame.from_av)."""
    if not isinstance(frame, av.VideoFrame):
        raise TypeError(f"expected an av.VideoFrame, got {type(frame).__name__}")
    importer = FrameImporter(frame)
    planes = importer.planes(frame, "an av.VideoFrame")
    time_base = Fraction(frame.time_base) if frame.time_base else Fraction(1, 25)
    out = Frame(
        planes,
        importer.format,
        int(frame.pts) if frame.pts is not None else 0,
        time_base,
        importer.full_range,
        importer.colorspace,
    )
    return out if format is None else convert(out, format)


class FrameImporter:
    """Turns PyAV frames of one stream into nvc planes in a fixed nvc format."""

    def __init__(self, first: av.VideoFrame) -> None:
        self.width = first.width
        self.height = first.height
        self.format, full = target_format(first.format.name, first.width, first.height)
        family = pixel_format(self.format).family
        self.full_range = family == "yuv" and (full or first.color_range == _FULL_RANGE)
        self.colorspace = colorspace_of(first, rgb=family == "rgb")  # refined by PyAVReader
        self._reformatter = VideoReformatter()

    def planes(self, frame: av.VideoFrame, where: Path | str) -> tuple[np.ndarray, ...]:
        if (frame.width, frame.height) != (self.width, self.height):
            raise MediaError(
                f"{where}: frame size changes from {self.width}x{self.height} "
                f"to {frame.width}x{frame.height}"
            )
        name = frame.format.name
        if name != self.format and _JPEG_FORMATS.get(name) != self.format:
            kwargs: dict[str, Any] = {"format": self.format}
            if pixel_format(self.format).family == "yuv":
                rng = "JPEG" if self.full_range else "MPEG"
                kwargs.update(src_color_range=rng, dst_color_range=rng)
            try:
                frame = self._reformatter.reformat(frame, **kwargs)
            except (av.error.FFmpegError, ValueError) as e:
                raise av_error(where, e) from None
        return planes_from_av(frame, self.format)


def _stream_rate(stream: Any) -> Fraction:
    """The stream's average frame rate, else FFmpeg's guess, else DEFAULT_FPS."""
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            try:
                return as_fps(Fraction(rate))
            except MediaError:
                continue
    return DEFAULT_FPS


class PyAVReader(VideoReader):
    """Frames of the first video stream of anything FFmpeg can demux and decode.

    The first frame is decoded on opening (so an empty or undecodable file fails early).
    `seek_frame(i)` reopens the file and decodes i frames: correct but O(i).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        p = Path(path)
        self._container: Any
        self._decoder: Iterator[av.VideoFrame]
        self._open(p)
        try:
            first = self._next_av_frame(p)
            if first is None:
                raise MediaError(f"{p} holds no video frames")
            self._importer = FrameImporter(first)
            stream = self._container.streams.video[0]
            rgb = pixel_format(self._importer.format).family == "rgb"
            self._importer.colorspace = colorspace_of(first, stream, rgb=rgb)
            if self._container.streams.audio:
                log.warning("%s: the audio is dropped (nvc codes the first video stream only)", p)
            fps = _stream_rate(stream)
            frame_count = int(stream.frames) if stream.frames else None
        except BaseException:
            self._container.close()
            raise
        self._pending: av.VideoFrame | None = first
        super().__init__(
            p,
            width=first.width,
            height=first.height,
            fps=fps,
            format=self._importer.format,
            full_range=self._importer.full_range,
            frame_count=frame_count,
        )
        self.colorspace = self._importer.colorspace

    def _open(self, p: Path) -> None:
        try:
            container = av.open(str(p), mode="r")
        except (av.error.FFmpegError, OSError, ValueError) as e:
            raise av_error(p, e) from None
        if not container.streams.video:
            container.close()
            raise MediaError(f"{p} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        self._container = container
        self._decoder = container.decode(stream)

    def _next_av_frame(self, p: Path) -> av.VideoFrame | None:
        try:
            return next(self._decoder)
        except StopIteration:
            return None
        except (av.error.FFmpegError, OSError, ValueError) as e:
            raise av_error(p, e) from None

    def _read_planes(self) -> tuple[np.ndarray, ...] | None:
        if self._pending is not None:
            frame, self._pending = self._pending, None
        else:
            next_frame = self._next_av_frame(self.path)
            if next_frame is None:
                return None
            frame = next_frame
        return self._importer.planes(frame, self.path)

    def _seek(self, index: int) -> None:
        self._container.close()
        self._pending = None
        self._open(self.path)
        for i in range(index):
            if self._next_av_frame(self.path) is None:
                raise MediaError(f"cannot seek to frame {index} of {self.path}: it has {i}")

    def _close(self) -> None:
        self._pending = None
        self._container.close()


class PyAVWriter(VideoWriter):
    """Writes a lossless .mp4 / .mov / .mkv (see the module docstring for the codecs)."""

    formats = ("yuv420p", "yuv420p10le", "yuv444p", "yuv444p10le", "rgb24", "rgb48le")
    streams = True  # through a device (/dev/null); through a FIFO for .mkv only

    def _storage_format(self, format: str) -> str:
        format = super()._storage_format(format)
        muxer = MUXERS.get(self.path.suffix.lower())
        if muxer is None:
            raise MediaError(f"cannot write {self.path.suffix or 'a file without extension'}")
        if format == "rgb48le" and muxer != "matroska":
            raise MediaError(
                f"{self.path.suffix} cannot hold rgb48le losslessly; write .mkv or PNG frames"
            )
        fmt = pixel_format(format)
        odd = self.width % 2 or self.height % 2
        if fmt.family == "yuv" and fmt.chroma_shift_x and odd:
            raise MediaError(
                f"{format} in {self.path.suffix} needs an even size, got "
                f"{self.width}x{self.height}; write .y4m or use yuv444p"
            )
        return format

    def _codec(self) -> tuple[str, dict[str, object]]:
        if self.format == "rgb48le":
            return "ffv1", {}
        lossless: dict[str, object] = {"qp": "0", "preset": "veryfast"}
        if self.format == "rgb24":
            return "libx264rgb", lossless
        return "libx264", lossless

    def _open(self) -> None:
        muxer = MUXERS[self.path.suffix.lower()]
        if self.pipe and muxer != "matroska":
            raise MediaError(
                f"cannot write {self.path}: {self.path.suffix} needs a seekable output, "
                "not a pipe; write .mkv or .y4m to a pipe"
            )
        codec, options = self._codec()
        try:
            self._container = av.open(str(self._target), mode="w", format=muxer)
            stream = self._container.add_stream(codec, rate=self.fps)
            if not isinstance(stream, VideoStream):
                raise MediaError(f"{codec} is not a video encoder")
            stream.width = self.width
            stream.height = self.height
            stream.pix_fmt = self.format
            stream.options = dict(options)
            ctx = stream.codec_context
            colour = self.colorspace
            if pixel_format(self.format).family == "yuv":
                ctx.color_range = _FULL_RANGE if self.full_range else _LIMITED_RANGE
                ctx.colorspace = colour.matrix
            else:
                ctx.colorspace = _RGB_MATRIX
            ctx.color_primaries = colour.primaries
            ctx.color_trc = colour.transfer
            self._stream = stream
        except (av.error.FFmpegError, OSError, ValueError) as e:
            if getattr(self, "_container", None) is not None:
                self._container.close()
            raise av_error(self.path, e, "write") from None

    def _mux(self, frame: av.VideoFrame | None) -> None:
        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except (av.error.FFmpegError, OSError, ValueError) as e:
            raise av_error(self.path, e, "write") from None

    def _write(self, frame: Frame) -> None:
        out = av_frame_from(frame)
        out.pts = self.frames_written
        self._mux(out)

    def _finish(self) -> None:
        self._mux(None)
        try:
            self._container.close()
        except (av.error.FFmpegError, OSError, ValueError) as e:
            raise av_error(self.path, e, "write") from None

    def _discard(self) -> None:
        with contextlib.suppress(Exception):  # the output is being thrown away anyway
            self._container.close()

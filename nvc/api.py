"""The public Python API, mirroring the command line.

nvc.encode_file("in.mp4", "out.nvc", codec="lossless")
nvc.decode_file("out.nvc", "out.y4m")

with nvc.open("out.nvc") as f:                      # read: decoded frames, lazily
    print(f.header.width, f.codec, f.fps)
    f.seek(2.0)                                     # to the random-access point <= 2 s
    for frame in f: ...

with nvc.open("new.nvc", "w", width=640, height=360, fps=25) as f:   # write
    f.encode(frame)                                 # nvc Frame or av.VideoFrame -> units

nvc.encode_frames(frames, None, "out.nvc", fps=30)  # frames: nvc or PyAV frames
for frame in nvc.decode_frames("out.nvc"): ...

PyAV frames (`av.VideoFrame`) are accepted wherever frames go in: they are converted with
`Frame.from_av` to the stream's pixel format and range and numbered 0, 1, 2, ... in the
order given (nvc counts frames; a PyAV frame's pts is in its stream's time base).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from fractions import Fraction
from types import TracebackType
from typing import Any, BinaryIO

import av

from nvc.bitstream import Reader, SequenceHeader, Unit, Writer
from nvc.codec import pipeline, registry
from nvc.codec.base import Encoder, StreamInfo
from nvc.codec.pipeline import (
    DecodeReport,
    EncodeReport,
    ProgressFn,
    decode_file,
    decode_frames,
    decode_reader,
    encode_file,
)
from nvc.errors import NvcError
from nvc.media import Frame, convert
from nvc.media.base import as_fps
from nvc.media.colorspace import BT709, ColorSpace

__all__ = [
    "DecodeReport",
    "EncodeReport",
    "NvcReader",
    "NvcWriter",
    "decode_file",
    "decode_frames",
    "encode_file",
    "encode_frames",
    "open",
]

InputFrame = Frame | av.VideoFrame  # what the encode paths accept


def _to_stream(frame: InputFrame, stream: StreamInfo, index: int) -> Frame:
    """`frame` as the encoder of `stream` expects it: converted to its pixel format, range
    and colour space when they differ; a PyAV frame also gets pts `index`, time 1 / fps."""
    if isinstance(frame, av.VideoFrame):
        frame = dataclasses.replace(
            Frame.from_av(frame), pts=index, time_base=Fraction(1) / stream.fps
        )
    elif not isinstance(frame, Frame):
        raise TypeError(f"expected an nvc.media.Frame or av.VideoFrame, got {type(frame).__name__}")
    if (frame.width, frame.height) != (stream.width, stream.height):
        raise NvcError(
            f"frame {index} is {frame.width}x{frame.height}, the stream "
            f"{stream.width}x{stream.height}"
        )
    return convert(frame, stream.format, full_range=stream.full_range, colorspace=stream.colorspace)


class NvcReader:
    """An open .nvc file or stream; iterating it decodes frames in presentation order.

    Like a PyAV container, a reader is consumed as it is iterated; `seek(t)` moves it to
    the random-access point at or before `t` seconds, from where iteration continues.
    """

    def __init__(
        self, source: str | os.PathLike[str] | bytes | BinaryIO, *, max_pixels: int | None = None
    ) -> None:
        self._reader = Reader(source)
        self._max_pixels = max_pixels  # frame size limit (None: nvc.codec.limits' default)
        self.header: SequenceHeader = self._reader.header
        self.codec: str = registry.name_of(self.header.codec_id) or f"#{self.header.codec_id}"
        stream = StreamInfo.from_header(self.header)
        self.fps: Fraction = stream.fps  # frames per second
        self.colorspace: ColorSpace = stream.colorspace  # the stream's colour metadata
        self._frames: Iterator[Frame] | None = None

    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        if self._frames is None:
            self._frames = decode_reader(self._reader, max_pixels=self._max_pixels)
        return next(self._frames)

    def seek(self, time: float | Fraction) -> float:
        """Continue from the random-access point at or before `time` (seconds): the next
        frame decoded is that point's first frame. Returns its time in seconds.

        A BitstreamError when the source cannot seek (a pipe) or holds no such point.
        """
        if isinstance(time, bool) or not isinstance(time, int | float | Fraction):
            raise TypeError("seek time must be a number of seconds")
        if not (time >= 0 and math.isfinite(time)):
            raise ValueError(f"seek time must be >= 0 seconds, got {time}")
        # the frame shown at `time`; a hair of slack so that 1/3 s at 3 fps is frame 1
        index = math.floor(Fraction(time) * self.fps + Fraction(1, 10**6))
        point = self._reader.seek(index)
        self._frames = None  # a fresh decoder starts at the point
        return float(point.pts / self.fps)

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> NvcReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NvcWriter:
    """Encodes frames (nvc Frames or av.VideoFrames) into a .nvc file, written atomically
    when closed."""

    def __init__(
        self,
        target: str | os.PathLike[str] | BinaryIO,
        *,
        width: int,
        height: int,
        fps: Fraction | int | float | str,
        format: str = "yuv420p",
        codec: str = "lossless",
        full_range: bool = False,
        colorspace: ColorSpace = BT709,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        spec = registry.get(codec)
        self.stream = StreamInfo(
            width, height, as_fps(fps), format, full_range, colorspace=colorspace
        )
        self._encoder: Encoder = spec.create_encoder(self.stream, options)
        header = self.stream.to_header(spec.id, self._encoder.codec_params)
        self._writer = Writer(target, header)
        self.frames = 0

    def encode(self, frame: InputFrame | None) -> list[Unit]:
        """Encode one frame (None flushes) and write its units; returns them. A frame in
        another pixel format, range or colour space is converted to the stream's."""
        if frame is None:
            units = self._encoder.encode(None)
        else:
            units = self._encoder.encode(_to_stream(frame, self.stream, self.frames))
        for unit in units:
            self._writer.write(unit)
        if frame is not None:
            self.frames += 1
        return units

    def close(self) -> None:
        """Flush the encoder and commit the file."""
        self.encode(None)
        if self.frames == 0:
            self._writer.abort()
            raise NvcError("no frames were encoded; nothing was written")
        self._writer.close()

    def abort(self) -> None:
        """Discard everything: no file is left behind."""
        self._writer.abort()

    def __enter__(self) -> NvcWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def encode_frames(
    frames: Iterable[InputFrame],
    stream: StreamInfo | None,
    output: str | os.PathLike[str] | BinaryIO,
    *,
    fps: Fraction | int | float | str | None = None,
    codec: str = "lossless",
    options: Mapping[str, Any] | None = None,
    progress: ProgressFn | None = None,
    expected_frames: int | None = None,
    psnr: bool = False,
) -> EncodeReport:
    """Encode nvc Frames or av.VideoFrames into a .nvc file or binary stream.

    With `stream` None the stream is the first frame's: its size, pixel format, range and
    colour space, at `fps` (needed for PyAV frames; for nvc Frames it defaults to
    1 / time_base). Frames that differ from the stream are converted (see NvcWriter).
    `psnr` puts the PSNR of the codec's reconstruction in the report (where it gives one).
    """
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise NvcError("no frames to encode")
    if stream is None:
        if fps is None and isinstance(first, av.VideoFrame):
            raise NvcError("encoding av.VideoFrames needs fps= (their pts count time_base ticks)")
        head = Frame.from_av(first) if isinstance(first, av.VideoFrame) else first
        if not isinstance(head, Frame):
            raise TypeError(
                f"expected an nvc.media.Frame or av.VideoFrame, got {type(head).__name__}"
            )
        rate = as_fps(fps if fps is not None else Fraction(1) / head.time_base)
        stream = StreamInfo(
            head.width, head.height, rate, head.format, head.full_range, colorspace=head.colorspace
        )
    elif fps is not None:
        raise TypeError("give fps in the StreamInfo, not as fps=, when passing a stream")
    info = stream

    def converted() -> Iterator[Frame]:
        yield _to_stream(first, info, 0)
        for index, frame in enumerate(it, start=1):
            yield _to_stream(frame, info, index)

    return pipeline.encode_frames(
        converted(),
        stream,
        output,
        codec=codec,
        options=options,
        progress=progress,
        expected_frames=expected_frames,
        psnr=psnr,
    )


def open(  # mirrors av.open
    path: str | os.PathLike[str] | bytes | BinaryIO, mode: str = "r", **kwargs: Any
) -> NvcReader | NvcWriter:
    """Open a .nvc file: mode "r" to decode frames (option: max_pixels, the frame size
    limit), "w" to encode (see NvcWriter)."""
    if mode == "r":
        unknown = sorted(set(kwargs) - {"max_pixels"})
        if unknown:
            raise TypeError(f"nvc.open(mode='r') takes only max_pixels, got {unknown}")
        return NvcReader(path, max_pixels=kwargs.get("max_pixels"))
    if mode == "w":
        if isinstance(path, bytes):
            raise TypeError("nvc.open(mode='w') writes to a path or a binary file, not bytes")
        return NvcWriter(path, **kwargs)
    raise ValueError(f"mode must be 'r' or 'w', not {mode!r}")

"""Pipelines that connect media, a codec and the container.

    encode: frames -> Encoder -> Units -> bitstream.Writer -> file.nvc
    decode: bitstream.Reader -> Units -> Decoder -> frames -> media writer

Outputs are written atomically: a failure leaves no output file behind.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from nvc.bitstream import Reader, UnitType, Writer
from nvc.codec import registry
from nvc.codec.base import StreamInfo
from nvc.errors import MediaError, NvcError
from nvc.media import Frame, open_video, open_writer
from nvc.media.pyav_io import PyAVReader

# Called after each frame with (frames done, total frames or None).
ProgressFn = Callable[[int, int | None], None]

_KNOWN_TYPES = frozenset(int(t) for t in UnitType)


@dataclass(frozen=True)
class EncodeReport:
    codec: str  # codec name
    frames: int  # frames encoded
    width: int  # luma width
    height: int  # luma height
    bytes: int  # size of the .nvc output, container overhead included
    bpp: float  # bits per pixel: 8 * bytes / (frames * width * height)
    seconds: float  # wall time of reading, encoding and writing

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


@dataclass(frozen=True)
class DecodeReport:
    codec: str  # codec name from the stream's header
    frames: int  # frames decoded and written
    width: int
    height: int
    seconds: float  # wall time of reading, decoding and writing

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


def _same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def encode_frames(
    frames: Iterable[Frame],
    stream: StreamInfo,
    output: str | os.PathLike[str] | BinaryIO,
    *,
    codec: str = "lossless",
    options: Mapping[str, Any] | None = None,
    progress: ProgressFn | None = None,
    expected_frames: int | None = None,
) -> EncodeReport:
    """Encode frames of `stream` with `codec` into a .nvc file or binary stream.

    `expected_frames` is only shown in progress, where `stream.frame_count` is unknown.
    """
    expected = stream.frame_count if stream.frame_count is not None else expected_frames
    start = time.perf_counter()
    spec = registry.get(codec)
    encoder = spec.create_encoder(stream, options)
    header = stream.to_header(spec.id, encoder.codec_params)
    count = 0
    with Writer(output, header) as writer:
        for frame in frames:
            for unit in encoder.encode(frame):
                writer.write(unit)
            count += 1
            if progress:
                progress(count, expected)
        if count == 0:
            raise MediaError("the input has no frames")
        if stream.frame_count is not None and count != stream.frame_count:
            raise MediaError(f"the input announced {stream.frame_count} frames but held {count}")
        for unit in encoder.encode(None):
            writer.write(unit)
        writer.close()
        size = writer.bytes_written
    seconds = time.perf_counter() - start
    bpp = 8 * size / (count * stream.width * stream.height)
    return EncodeReport(spec.name, count, stream.width, stream.height, size, bpp, seconds)


def _limited(frames: Iterable[Frame], limit: int | None) -> Iterator[Frame]:
    for i, frame in enumerate(frames):
        if limit is not None and i >= limit:
            return
        yield frame


def encode_file(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    codec: str = "lossless",
    frames: int | None = None,
    size: tuple[int, int] | None = None,
    fps: Any = None,
    pix_fmt: str | None = None,
    options: Mapping[str, Any] | None = None,
    progress: ProgressFn | None = None,
) -> EncodeReport:
    """Encode a video file (mp4, mkv, y4m, raw yuv, ...) into a .nvc file.

    `frames` limits how many frames are read; `size`, `fps` and `pix_fmt` describe raw
    .yuv input. `options` are the codec's configuration fields.
    """
    if frames is not None and frames < 1:
        raise NvcError(f"--frames must be at least 1, got {frames}")
    if _same_file(input, output):
        raise NvcError("the output would overwrite the input")
    registry.get(codec)  # fail on an unknown codec before touching the input
    with open_video(input, size=size, fps=fps, pix_fmt=pix_fmt) as reader:
        total = reader.frame_count
        if frames is not None:
            total = frames if total is None else min(total, frames)
        # A container's frame count is metadata, not a promise: show it, don't announce it.
        announced = None if isinstance(reader, PyAVReader) else total
        stream = StreamInfo(
            width=reader.width,
            height=reader.height,
            fps=reader.fps,
            format=reader.format,
            full_range=reader.full_range,
            frame_count=announced,
        )
        return encode_frames(
            _limited(reader, frames),
            stream,
            output,
            codec=codec,
            options=options,
            progress=progress,
            expected_frames=total,
        )


def decode_reader(reader: Reader) -> Iterator[Frame]:
    """Frames of an open reader's stream; unit types this nvc does not know are skipped."""
    decoder = registry.get(reader.header.codec_id).create_decoder(reader.header)
    for unit in reader:
        if unit.type in _KNOWN_TYPES:
            yield from decoder.decode(unit)
    yield from decoder.decode(None)


def decode_frames(source: str | os.PathLike[str] | bytes | BinaryIO) -> Iterator[Frame]:
    """Decode a .nvc file or stream lazily, frame by frame, in presentation order."""
    with Reader(source) as reader:
        yield from decode_reader(reader)


def decode_file(
    input: str | os.PathLike[str] | bytes | BinaryIO,
    output: str | os.PathLike[str],
    *,
    progress: ProgressFn | None = None,
) -> DecodeReport:
    """Decode a .nvc file into a video file (.y4m, .yuv, .mp4, .mkv) or a PNG directory."""
    start = time.perf_counter()
    if isinstance(input, str | os.PathLike) and _same_file(input, output):
        raise NvcError("the output would overwrite the input")
    with Reader(input) as reader:
        header = reader.header
        name = registry.get(header.codec_id).name
        count = 0
        with open_writer(
            output,
            width=header.width,
            height=header.height,
            fps=header.fps,
            format=header.pix_fmt,
            full_range=header.full_range,
        ) as writer:
            for frame in decode_reader(reader):
                writer.write(frame)
                count += 1
                if progress:
                    progress(count, header.frame_count)
            if count == 0:
                raise NvcError("the stream holds no frames")
            if header.frame_count is not None and count != header.frame_count:
                raise NvcError(
                    f"the stream announces {header.frame_count} frames but holds {count}"
                )
    seconds = time.perf_counter() - start
    return DecodeReport(name, count, header.width, header.height, seconds)

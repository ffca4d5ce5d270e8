"""Pipelines that connect media, a codec and the container.

    encode: frames -> Encoder -> Units -> bitstream.Writer -> file.nvc
    decode: bitstream.Reader -> Units -> Decoder -> frames -> media writer

Outputs are written atomically: a failure leaves no output file behind.
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

from nvc.bitstream import Reader, UnitType, Writer
from nvc.codec import registry
from nvc.codec.base import StreamInfo, torch_threads
from nvc.codec.limits import check_picture
from nvc.errors import MediaError, NvcError
from nvc.fileio import is_stdio
from nvc.media import Frame, open_video, open_writer, psnr_rgb, psnr_yuv
from nvc.media.colorspace import ColorSpace
from nvc.media.multiview import is_scene
from nvc.media.pyav_io import PyAVReader

# Called after each frame with (frames done, total frames or None).
ProgressFn = Callable[[int, int | None], None]

_KNOWN_TYPES = frozenset(int(t) for t in UnitType)

# Frames whose time is this close below --start still count as at the start (float input).
_TIME_SLACK = 1e-9


@dataclass(frozen=True)
class EncodeReport:
    codec: str  # codec name
    frames: int  # frames encoded
    width: int  # luma width
    height: int  # luma height
    bytes: int  # size of the .nvc output, container overhead included
    bpp: float  # bits per pixel: 8 * bytes / (frames * width * height)
    seconds: float  # wall time of reading, encoding and writing (PSNR measurement excluded)
    frame_rate: Fraction | None = None  # the stream's frames per second (for kbit/s)
    # Mean per-frame PSNR (dB) of the encoder's reconstruction against its input: YUV 6:1:1
    # for YUV input, RGB for RGB; exact frames count as 100 dB unless all are exact (inf).
    # None when the codec does not expose its reconstruction or it was not measured.
    psnr: float | None = None
    psnr_metric: str | None = None  # "yuv" (6:1:1 weighted) or "rgb"
    format: str | None = None  # pixel format of the coded frames

    @property
    def fps(self) -> float:
        """Encoding speed in frames per second."""
        return self.frames / self.seconds if self.seconds > 0 else float("inf")

    @property
    def kbps(self) -> float | None:
        """Bitrate of the .nvc file in kbit/s at the stream's frame rate."""
        if self.frame_rate is None or self.frames == 0:
            return None
        return 8 * self.bytes * float(self.frame_rate) / self.frames / 1000

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values (`nvc encode --json`); exact: PSNR null."""
        exact = self.psnr is not None and math.isinf(self.psnr)
        return {
            "codec": self.codec,
            "frames": self.frames,
            "width": self.width,
            "height": self.height,
            "fps": None if self.frame_rate is None else str(self.frame_rate),
            "bytes": self.bytes,
            "bpp": self.bpp,
            "kbps": self.kbps,
            "psnr": None if self.psnr is None or exact else self.psnr,
            "psnr_metric": self.psnr_metric,
            "exact": exact if self.psnr is not None else None,
            "seconds": self.seconds,
            "encode_fps": self.fps,
        }


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
    """True when a and b name one file; standard input and output (`-`) are two streams."""
    if is_stdio(a) or is_stdio(b):
        return False
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


class _Quality:
    """Running per-frame PSNR of an encoder's reconstructions against its input frames."""

    def __init__(self) -> None:
        self.scores: list[float] = []
        self.metric: str | None = None
        self.seconds = 0.0  # time spent measuring, kept out of the encode time

    def add(self, source: Frame, recon: Frame) -> None:
        start = time.perf_counter()
        if source.pixel_format.family == "rgb":
            self.metric = "rgb"
            self.scores.append(psnr_rgb(source, recon))
        else:
            self.metric = "yuv"
            self.scores.append(psnr_yuv(source, recon).weighted)
        self.seconds += time.perf_counter() - start

    def mean(self, frames: int) -> float | None:
        """Mean PSNR, or None unless every frame was measured."""
        if not self.scores or len(self.scores) != frames:
            return None
        if all(math.isinf(v) for v in self.scores):
            return math.inf
        return statistics.fmean(min(v, 100.0) for v in self.scores)


def encode_frames(
    frames: Iterable[Frame],
    stream: StreamInfo,
    output: str | os.PathLike[str] | BinaryIO,
    *,
    codec: str = "lossless",
    options: Mapping[str, Any] | None = None,
    progress: ProgressFn | None = None,
    expected_frames: int | None = None,
    psnr: bool = False,
) -> EncodeReport:
    """Encode frames of `stream` with `codec` into a .nvc file or binary stream.

    `expected_frames` is only shown in progress, where `stream.frame_count` is unknown.
    With `psnr`, the report carries the PSNR of the encoder's reconstruction (codecs that
    expose `last_reconstruction`, see nvc.codec.base.Encoder); its cost is not timed.
    """
    expected = stream.frame_count if stream.frame_count is not None else expected_frames
    start = time.perf_counter()
    spec = registry.get(codec)
    encoder = spec.create_encoder(stream, options)
    header = stream.to_header(spec.id, encoder.codec_params)
    quality = _Quality()
    count = 0
    with Writer(output, header) as writer:
        for frame in frames:
            for unit in encoder.encode(frame):
                writer.write(unit)
            recon = getattr(encoder, "last_reconstruction", None) if psnr else None
            if isinstance(recon, Frame) and recon.pts == frame.pts:
                quality.add(frame, recon)
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
    seconds = time.perf_counter() - start - quality.seconds
    bpp = 8 * size / (count * stream.width * stream.height)
    return EncodeReport(
        spec.name,
        count,
        stream.width,
        stream.height,
        size,
        bpp,
        seconds,
        frame_rate=Fraction(stream.fps),
        psnr=quality.mean(count),
        psnr_metric=quality.metric,
        format=stream.format,
    )


def first_index(start: float | None, fps: Fraction) -> int:
    """The index of the first frame at or after `start` seconds in a stream at `fps`."""
    if not start:
        return 0
    return max(0, math.ceil((start - _TIME_SLACK) * float(fps)))


def _window(frames: Iterable[Frame], start: float | None, limit: int | None) -> Iterator[Frame]:
    """The frames from `start` seconds on (renumbered from pts 0), at most `limit` of them."""
    first: int | None = None
    taken = 0
    for frame in frames:
        if limit is not None and taken >= limit:
            return
        if start and frame.time < start - _TIME_SLACK:
            continue
        if first is None:
            first = frame.pts
        yield dataclasses.replace(frame, pts=frame.pts - first) if first else frame
        taken += 1


def is_scene_input(path: str | os.PathLike[str] | BinaryIO) -> bool:
    """True when `nvc encode` reads `path` as a multi-view scene: a folder laid out as one,
    or any folder without PNG frames (so that it gets the scene reader's one-line error);
    a folder of PNG frames is an ordinary video."""
    if not isinstance(path, str | os.PathLike) or not Path(path).is_dir():
        return False
    return is_scene(path) or not any(Path(path).glob("*.png"))


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
    start: float | None = None,
    psnr: bool = True,
) -> EncodeReport:
    """Encode a video file (mp4, mkv, y4m, raw yuv, ...) into a .nvc file.

    `start` skips the input's frames before that time in seconds (they are read and
    dropped; the stream starts at pts 0), `frames` limits how many frames are coded;
    `size`, `fps` and `pix_fmt` describe raw .yuv input. `options` are the codec's
    configuration fields. The report has the reconstruction's PSNR where the codec gives it.
    """
    if frames is not None and frames < 1:
        raise NvcError(f"--frames must be at least 1, got {frames}")
    if start is not None and not 0 <= start < math.inf:
        raise NvcError(f"--start must be a time >= 0, got {start}")
    if _same_file(input, output):
        raise NvcError("the output would overwrite the input")
    registry.get(codec)  # fail on an unknown codec before touching the input
    if is_scene_input(input):  # a multi-view scene folder: the gaussian codec's 3D mode
        from nvc.codec.gaussian.scene3d import encode_scene

        return encode_scene(
            input,
            output,
            codec=codec,
            frames=frames,
            options=options,
            progress=progress,
            psnr=psnr,
            start=start,
        )
    with open_video(input, size=size, fps=fps, pix_fmt=pix_fmt) as reader:
        total = reader.frame_count
        if total is not None and start:
            skip = first_index(start, reader.fps)
            if skip >= total:
                raise MediaError(
                    f"--start {start:g} s is at or after the end of the input "
                    f"({total} frames at {reader.fps} fps)"
                )
            total -= skip
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
            colorspace=reader.colorspace,
            frame_count=announced,
        )
        return encode_frames(
            _window(reader, start, frames),
            stream,
            output,
            codec=codec,
            options=options,
            progress=progress,
            expected_frames=total,
            psnr=psnr,
        )


def decode_reader(reader: Reader, *, max_pixels: int | None = None) -> Iterator[Frame]:
    """Frames of an open reader's stream; unit types this nvc does not know are skipped.

    Frames above `max_pixels` luma pixels (None: nvc.codec.limits.DEFAULT_MAX_PIXELS) are
    refused before anything is decoded."""
    spec = registry.get(reader.header.codec_id)
    decoder = spec.create_decoder(reader.header, max_pixels=max_pixels)
    colour = StreamInfo.from_header(reader.header).colorspace
    for unit in reader:
        if unit.type in _KNOWN_TYPES:
            yield from _with_colour(decoder.decode(unit), colour)
    yield from _with_colour(decoder.decode(None), colour)


def _with_colour(frames: list[Frame], colour: ColorSpace) -> Iterator[Frame]:
    """The frames with the stream's colour metadata (decoders leave it at the default)."""
    for frame in frames:
        yield frame if frame.colorspace == colour else dataclasses.replace(frame, colorspace=colour)


def decode_frames(
    source: str | os.PathLike[str] | bytes | BinaryIO, *, max_pixels: int | None = None
) -> Iterator[Frame]:
    """Decode a .nvc file or stream lazily, frame by frame, in presentation order."""
    with Reader(source) as reader:
        yield from decode_reader(reader, max_pixels=max_pixels)


def decode_window(
    reader: Reader,
    start: float | None = None,
    frames: int | None = None,
    *,
    max_pixels: int | None = None,
) -> Iterator[Frame]:
    """Frames of an open reader from `start` seconds on, at most `frames` of them.

    Decoding starts at the random-access point at or before the start (seeking when the
    source is seekable, else reading from the beginning) and drops the frames before it.
    """
    if start:
        target = first_index(start, reader.header.fps)
        if target > 0 and reader.seekable:
            reader.seek(target)
    taken = 0
    for frame in decode_reader(reader, max_pixels=max_pixels):
        if frames is not None and taken >= frames:
            return
        if start and frame.time < start - _TIME_SLACK:
            continue
        yield frame
        taken += 1


def decode_file(
    input: str | os.PathLike[str] | bytes | BinaryIO,
    output: str | os.PathLike[str],
    *,
    progress: ProgressFn | None = None,
    start: float | None = None,
    frames: int | None = None,
    threads: int | None = None,
    max_pixels: int | None = None,
) -> DecodeReport:
    """Decode a .nvc file into a video file (.y4m, .yuv, .mp4, .mkv) or a PNG directory.

    `start` (seconds) begins at the random-access point before it and drops the frames
    before it; `frames` stops after that many; `threads` is the number of torch threads
    for decoders that use torch's setting (inr; fm's exact decoder always uses one);
    `max_pixels` raises the limit on the frame size (nvc.codec.limits).
    """
    t0 = time.perf_counter()
    if isinstance(input, str | os.PathLike) and _same_file(input, output):
        raise NvcError("the output would overwrite the input")
    if frames is not None and frames < 1:
        raise NvcError(f"--frames must be at least 1, got {frames}")
    if start is not None and not 0 <= start < math.inf:
        raise NvcError(f"--start must be a time >= 0, got {start}")
    if threads is not None and threads < 1:
        raise NvcError(f"--threads must be at least 1, got {threads}")
    whole = not start and frames is None
    with Reader(input) as reader:
        header = reader.header
        check_picture(header, max_pixels)  # before the codec is loaded or the output created
        name = registry.get(header.codec_id).name
        expected = header.frame_count
        if expected is not None and not whole:
            expected = max(0, expected - first_index(start, header.fps))
            if frames is not None:
                expected = min(expected, frames)
            if expected == 0:
                raise NvcError(
                    f"--start {start:g} s is at or after the end of the stream "
                    f"({header.frame_count} frames at {header.fps} fps)"
                )
        count = 0
        with open_writer(
            output,
            width=header.width,
            height=header.height,
            fps=header.fps,
            format=header.pix_fmt,
            full_range=header.full_range,
            colorspace=StreamInfo.from_header(header).colorspace,
        ) as writer:
            with torch_threads(threads):
                for frame in decode_window(reader, start, frames, max_pixels=max_pixels):
                    writer.write(frame)
                    count += 1
                    if progress:
                        progress(count, expected)
            if count == 0:
                if not whole:
                    raise NvcError(f"no frames at or after --start {start or 0:g} s")
                raise NvcError("the stream holds no frames")
            if expected is not None and count != expected:
                raise NvcError(
                    f"the stream announces {header.frame_count} frames but holds {count}"
                    if whole
                    else f"expected {expected} frames, got {count}"
                )
    seconds = time.perf_counter() - t0
    return DecodeReport(name, count, header.width, header.height, seconds)

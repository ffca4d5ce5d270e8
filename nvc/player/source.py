"""Unit sources: where a stream's units come from, and when each one is due.

A source is started once per *run* of a broadcast (a run begins when viewers arrive and
ends at the end of the stream or when the last viewer leaves). A run has the stream's
sequence header and yields `TimedUnit`s in stream order:

- `FileSource`: the units of a `.nvc` file, each due at its presentation time
  (pts / fps from the start of the run). With `loop=True` the file is played again and
  again and **pts keep increasing across loops**: loop k adds k times the file's span
  (its last pts + 1 - first pts) to every pts, so the stream clock never goes back and
  a player needs no notion of discontinuity. Payloads are untouched; codecs see pts only
  relative to their random-access points (the lossless and inr decoders do).
- `LiveSource`: frames captured in real time (the built-in `testsrc` pattern, a video
  file played at its own frame rate, or a capture device PyAV can open), encoded as they
  come by any registered codec whose encoder is causal; units are due at once and carry
  the wall-clock capture time of their frame. Capture and encoding run in a worker
  thread; when the encoder falls more than a frame interval behind, frames are dropped
  at capture and counted. The encoder is created anew for every run, so a run starts
  with a random-access point.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Generator, Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

from nvc.bitstream import Reader, SequenceHeader, Unit, UnitType
from nvc.codec import registry
from nvc.codec.base import StreamInfo
from nvc.errors import BitstreamError, CodecError, MediaError, NvcError
from nvc.media import Frame, convert, open_video
from nvc.player.pattern import TestPattern

TESTSRC = "testsrc"  # name of the built-in pattern
DEFAULT_LIVE_SIZE = (640, 360)  # testsrc size unless told
DEFAULT_LIVE_FPS = Fraction(30)  # testsrc rate unless told


@dataclass(frozen=True)
class TimedUnit:
    """A unit and when to release it."""

    unit: Unit
    due: float | None  # seconds from the start of the run; None: release at once (live)
    capture: float | None = None  # wall-clock time (time.time()) its frame was captured


class SourceRun(Protocol):
    """One playing of a source."""

    header: SequenceHeader  # the stream's sequence header

    def __aiter__(self) -> AsyncIterator[TimedUnit]: ...

    async def aclose(self) -> None: ...


class UnitSource(Protocol):
    """Something a broadcast can play."""

    live: bool  # units are produced as they are captured (not read from a file)

    async def start(self) -> SourceRun: ...

    def describe(self) -> dict[str, Any]: ...


# ---- files -------------------------------------------------------------------------


def _file_units(path: Path, header: SequenceHeader, loop: bool) -> Generator[TimedUnit, None, None]:
    """The units of `path`, timed by pts, looping with increasing pts when asked."""
    fps = header.fps
    offset = 0  # added to every pts in this loop
    first: int | None = None  # pts of the first unit of the file
    while True:
        end = None  # 1 + the largest pts yielded in this loop
        with Reader(path) as reader:
            if reader.header != header:
                raise BitstreamError(f"{path} changed while being served")
            for unit in reader:
                if first is None:
                    first = unit.pts
                pts = unit.pts + offset
                if offset and unit.type not in (UnitType.SEQUENCE_HEADER, UnitType.END):
                    unit = Unit(unit.type, unit.payload, pts, unit.rap)
                end = pts + 1 if end is None else max(end, pts + 1)
                yield TimedUnit(unit, float((pts - first) / fps))
        if not loop or end is None or first is None:
            return
        offset = end - first


class _FileRun:
    def __init__(self, path: Path, header: SequenceHeader, loop: bool) -> None:
        self.header = header
        self._units = _file_units(path, header, loop)
        self._lock = threading.Lock()  # the generator runs in worker threads, one at a time

    def _next(self) -> TimedUnit | None:
        with self._lock:
            return next(self._units, None)

    def _close(self) -> None:
        with self._lock:
            self._units.close()

    async def __aiter__(self) -> AsyncIterator[TimedUnit]:
        while True:
            item = await asyncio.to_thread(self._next)
            if item is None:
                return
            yield item

    async def aclose(self) -> None:
        await asyncio.to_thread(self._close)


class FileSource:
    """A `.nvc` file, paced by presentation time (see the module docstring)."""

    live = False

    def __init__(self, path: str | os.PathLike[str], *, loop: bool = False) -> None:
        self.path = Path(path)
        self.loop = loop
        if not self.path.is_file():
            raise NvcError(f"no such file: {self.path}")
        with Reader(self.path) as reader:
            self.header = reader.header
            has_units = next(iter(reader), None) is not None
        if not has_units:
            raise NvcError(f"{self.path} holds no units to stream")
        if registry.name_of(self.header.codec_id) is None:
            raise CodecError(f"{self.path} uses codec id {self.header.codec_id}, unknown here")

    async def start(self) -> SourceRun:
        return _FileRun(self.path, self.header, self.loop)

    def describe(self) -> dict[str, Any]:
        return {"kind": "file", "path": str(self.path), "loop": self.loop}


# ---- live --------------------------------------------------------------------------


class _Capture(Protocol):
    width: int
    height: int
    fps: Fraction
    format: str
    full_range: bool

    def read(self, index: int) -> Frame | None: ...

    def close(self) -> None: ...


class _PatternCapture:
    def __init__(self, size: tuple[int, int], fps: Fraction, format: str) -> None:
        self.width, self.height = size
        self.fps, self.format, self.full_range = fps, format, False
        self._pattern = TestPattern(self.width, self.height, fps, format)

    def read(self, index: int) -> Frame | None:
        return self._pattern.frame(index)

    def close(self) -> None:
        pass


class _FileCapture:
    """A video file read at its own frame rate (optionally looping)."""

    def __init__(self, path: str, fps: Fraction | None, format: str | None, loop: bool) -> None:
        self._reader = open_video(path, fps=fps)
        self.width, self.height = self._reader.width, self._reader.height
        self.fps = self._reader.fps
        self.format = format or self._reader.format
        self.full_range = self._reader.full_range
        self._loop = loop

    def read(self, index: int) -> Frame | None:
        frame = self._reader.read()
        if frame is None and self._loop and self._reader.position > 0:
            self._reader.seek_frame(0)
            frame = self._reader.read()
        if frame is None:
            return None
        frame = replace(frame, pts=index, time_base=1 / self.fps)
        return frame if frame.format == self.format else convert(frame, self.format)

    def close(self) -> None:
        self._reader.close()


class _DeviceCapture:
    """A capture device (or any live input) PyAV opens: 'FORMAT:URL' or a /dev path."""

    def __init__(
        self, spec: str, size: tuple[int, int] | None, fps: Fraction | None, format: str | None
    ) -> None:
        import av
        import av.error

        from nvc.media.pyav_io import FrameImporter

        demuxer, url = _split_device(spec)
        options: dict[str, str] = {}
        if size:
            options["video_size"] = f"{size[0]}x{size[1]}"
        if fps:
            options["framerate"] = str(fps)
        try:
            self._container: Any = av.open(url, format=demuxer, options=options)
        except (av.error.FFmpegError, OSError, ValueError) as e:
            raise MediaError(f"cannot open capture device {spec!r}: {e}") from None
        try:
            if not self._container.streams.video:
                raise MediaError(f"capture device {spec!r} has no video")
            stream = self._container.streams.video[0]
            self._frames = self._container.decode(stream)
            first = next(self._frames, None)
            if first is None:
                raise MediaError(f"capture device {spec!r} gave no frame")
            self._importer = FrameImporter(first)
            rate = fps or stream.average_rate or stream.guessed_rate or DEFAULT_LIVE_FPS
            self.fps = Fraction(rate).limit_denominator(1001)
        except BaseException:
            self._container.close()
            raise
        self._pending: Any = first
        self._spec = spec
        self.width, self.height = first.width, first.height
        self.format = format or self._importer.format
        self.full_range = self._importer.full_range

    def read(self, index: int) -> Frame | None:
        image, self._pending = self._pending, None
        if image is None:
            image = next(self._frames, None)
            if image is None:
                return None
        planes = self._importer.planes(image, self._spec)
        frame = Frame(planes, self._importer.format, index, 1 / self.fps, self.full_range)
        return frame if frame.format == self.format else convert(frame, self.format)

    def close(self) -> None:
        self._container.close()


def _split_device(spec: str) -> tuple[str | None, str]:
    """'v4l2:/dev/video0' -> ('v4l2', '/dev/video0'); '/dev/video0' -> ('v4l2', ...).

    The part before the first colon counts as a format only when FFmpeg has a demuxer of
    that name (v4l2, lavfi, avfoundation, dshow, x11grab, ...).
    """
    import av

    head, sep, rest = spec.partition(":")
    if sep and head in av.formats_available:
        return head, rest
    if spec.startswith("/dev/video"):
        return "v4l2", spec
    return None, spec


def is_device(spec: str) -> bool:
    """Whether a live SOURCE names a capture device rather than a file or testsrc."""
    if spec == TESTSRC or Path(spec).is_file():
        return False
    return _split_device(spec)[0] is not None or spec.startswith("/dev/")


@dataclass
class LiveStats:
    """What the live encoder has done (updated by its worker thread)."""

    frames_captured: int = 0  # frames taken from the source
    frames_encoded: int = 0  # frames given to the encoder
    frames_dropped: int = 0  # frames skipped because encoding fell behind real time
    units: int = 0  # units produced
    bytes: int = 0  # payload bytes produced
    encode_ms: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))  # per frame

    def summary(self) -> dict[str, Any]:
        times = sorted(self.encode_ms)
        return {
            "frames_captured": self.frames_captured,
            "frames_encoded": self.frames_encoded,
            "frames_dropped": self.frames_dropped,
            "units": self.units,
            "bytes": self.bytes,
            "encode_ms_median": statistics.median(times) if times else None,
            "encode_ms_p95": percentile(times, 95) if times else None,
            "encode_ms_max": times[-1] if times else None,
        }


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-th percentile (0..100) of sorted values, by linear interpolation."""
    if not sorted_values:
        raise ValueError("no values")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass(frozen=True)
class LiveConfig:
    """What `nvc live` captures and how it encodes it."""

    source: str  # "testsrc", a video file, or a capture device ("v4l2:/dev/video0")
    codec: str = "lossless"  # a registered codec with a causal encoder
    options: Mapping[str, Any] = field(default_factory=dict)  # the codec's options
    size: tuple[int, int] | None = None  # testsrc / device frame size
    fps: Fraction | None = None  # testsrc / device rate; a file's own rate if None
    pix_fmt: str | None = None  # convert frames to this format (testsrc: yuv420p)
    loop: bool = False  # a file source starts again at its end
    frames: int | None = None  # stop after this many frames (tests, benchmarks)
    max_delay_frames: int | None = None  # frames an encoder may hold back (None: 2 s worth)


class _LiveRun:
    def __init__(self, config: LiveConfig, stats: LiveStats) -> None:
        self._config = config
        self._stats = stats
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[TimedUnit | BaseException | None] = asyncio.Queue()
        self._header: asyncio.Future[SequenceHeader] = self._loop.create_future()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="nvc-live", daemon=True)
        self.header: SequenceHeader

    async def begin(self) -> None:
        self._thread.start()
        try:
            self.header = await self._header
        except BaseException:
            await self.aclose()
            raise

    def _post(self, item: TimedUnit | BaseException | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def _set_header(self, header: SequenceHeader | BaseException) -> None:
        def set_it() -> None:
            if self._header.done():
                return
            if isinstance(header, BaseException):
                self._header.set_exception(header)
            else:
                self._header.set_result(header)

        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(set_it)

    def _open_capture(self) -> _Capture:
        c = self._config
        if c.source == TESTSRC:
            return _PatternCapture(
                c.size or DEFAULT_LIVE_SIZE, c.fps or DEFAULT_LIVE_FPS, c.pix_fmt or "yuv420p"
            )
        if Path(c.source).is_file():
            return _FileCapture(c.source, c.fps, c.pix_fmt, c.loop)
        if is_device(c.source):
            return _DeviceCapture(c.source, c.size, c.fps, c.pix_fmt)
        raise MediaError(
            f"live source {c.source!r} is not {TESTSRC!r}, a video file or a capture device "
            "(FORMAT:DEVICE, e.g. v4l2:/dev/video0)"
        )

    def _work(self) -> None:
        capture: _Capture | None = None
        try:
            capture = self._open_capture()
            spec = registry.get(self._config.codec)
            stream = StreamInfo(
                capture.width, capture.height, capture.fps, capture.format, capture.full_range
            )
            encoder = spec.create_encoder(stream, self._config.options)
            header = SequenceHeader(
                codec_id=spec.id,
                codec_params=encoder.codec_params,
                width=stream.width,
                height=stream.height,
                fps=stream.fps,
                pix_fmt=stream.format,
                full_range=stream.full_range,
            )
        except BaseException as e:
            if capture is not None:
                capture.close()
            self._set_header(e)
            return
        self._set_header(header)
        try:
            self._capture_loop(capture, encoder, spec.name)
            self._post(None)
        except BaseException as e:  # reported to the broadcast, which ends the run
            self._post(e)
        finally:
            capture.close()

    def _capture_loop(self, capture: _Capture, encoder: Any, codec: str) -> None:
        stats, config = self._stats, self._config
        interval = 1.0 / float(capture.fps)
        max_held = config.max_delay_frames
        if max_held is None:
            max_held = max(8, round(2 * float(capture.fps)))
        held = 0  # frames encoded since the encoder last produced a unit
        start = time.monotonic()
        index = 0
        last_capture = time.time()
        while not self._stop.is_set():
            if config.frames is not None and index >= config.frames:
                break
            due = start + index * interval
            wait = due - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                break
            frame = capture.read(index)
            if frame is None:
                break
            stats.frames_captured += 1
            if time.monotonic() - due > interval:  # behind real time: drop this frame
                stats.frames_dropped += 1
                index += 1
                continue
            last_capture = time.time()
            t0 = time.perf_counter()
            units = encoder.encode(frame)
            stats.encode_ms.append(1000 * (time.perf_counter() - t0))
            stats.frames_encoded += 1
            held = 0 if units else held + 1
            if held > max_held:
                raise CodecError(
                    f"codec {codec!r} held back {held} frames without output: live streaming "
                    "needs a causal codec that outputs each frame's units as it is encoded"
                )
            self._emit(units, last_capture)
            index += 1
        self._emit(encoder.encode(None), last_capture)

    def _emit(self, units: list[Unit], capture: float) -> None:
        for unit in units:
            self._stats.units += 1
            self._stats.bytes += len(unit.payload)
            self._post(TimedUnit(unit, None, capture))

    async def __aiter__(self) -> AsyncIterator[TimedUnit]:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    async def aclose(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join, 10.0)


class LiveSource:
    """Frames captured and encoded in real time (see the module docstring)."""

    live = True

    def __init__(self, config: LiveConfig) -> None:
        registry.get(config.codec).config(config.options)  # unknown codec/options fail here
        if config.frames is not None and config.frames < 1:
            raise NvcError("--frames must be at least 1")
        if (
            config.source != TESTSRC
            and not Path(config.source).is_file()
            and not is_device(config.source)
        ):
            raise MediaError(
                f"live source {config.source!r} is not {TESTSRC!r}, an existing video file "
                "or a capture device (FORMAT:DEVICE, e.g. v4l2:/dev/video0)"
            )
        self.config = config
        self.stats = LiveStats()

    async def start(self) -> SourceRun:
        run = _LiveRun(self.config, self.stats)
        await run.begin()
        return run

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "live",
            "source": self.config.source,
            "codec": self.config.codec,
            "encoder": self.stats.summary(),
        }

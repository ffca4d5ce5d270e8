"""The player behind `nvc play`: receive units, reassemble, decode in a worker thread,
present on the stream's clock, record, and count what happened.

    stats = asyncio.run(Player(PlayerConfig("http://127.0.0.1:8080", output="out.y4m")).run())

Pipeline (everything but decoding and file writing runs on the event loop):

    data channel -> Reassembler(resync=True) -> decode queue -> Decoder (worker thread)
        -> presenter (waits for each frame's time) -> recorder (-o), view page, stats

Clock: frame `t` (seconds, pts * time_base) is due at `anchor + t + delay`. The first
decoded frame sets `anchor` to `ready - t` (so decoder start-up delays playback rather
than dropping frames); afterwards a frame that was decoded as soon as its unit arrived
and is ready earlier than that pulls it earlier, by at most a tenth of a frame interval
per frame (playback runs at most 10% fast while it catches up): the clock follows the
fastest path from the sender, and `delay` absorbs the jitter above it. Frames from a
backlog never move it (that would fast-forward through them or drop them). On a live
stream (or with `catch_up`), a frame that comes through fresh while the clock is over
`catch_up_after` behind it makes the clock jump to the live edge, dropping the frames
still waiting: after a stall, latency returns to normal instead of staying high.

A frame due more than one frame interval ago is dropped (unless `drop_late` is off:
recordings that must hold every frame); one more than half an interval late is shown
and counted late. A frame over `resync_after` late (a decoder slower than real time, a
stall) or 5 s early sets the clock again (`clock_resets`).

Loss: the reassembler reports lost units; the decoder is then replaced by a fresh one at
the next random-access point (the reassembler withholds the units in between and the
player counts them as skipped), so a frame is only ever decoded from complete units on a
clean decoder state. Damage is handled the same way: a unit the decoder refuses (any
exception, counted in `decode_errors`), a decoded frame that does not match the stream's
size and format, or a mid-stream sequence header that does not parse or names a codec
that cannot be built (`header_errors`; the last good header stays in force). Nothing is
presented for the units skipped, so the last good frame stays on screen.

Latency bound: when the unit next in line for the decoder has waited over `max_latency`
(a decoder slower than real time), the backlog is dropped up to the newest random-access
point waiting (or up to the next one to arrive) and the clock is set again at it
(`units_dropped_late`, `latency_drops`).

Recording: a new sequence header with another size, pixel format or frame rate starts a
new segment file (`out.y4m`, then `out-2.y4m`, ...; `stats.recordings` lists them), so
what was recorded is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TextIO

from nvc.bitstream import Lost, Reassembler, SequenceHeader, Unit, UnitType
from nvc.codec import registry
from nvc.codec.base import Decoder
from nvc.errors import BitstreamError, CodecError, NvcError
from nvc.media import Frame, VideoWriter, open_writer
from nvc.player import wire
from nvc.player.source import percentile

log = logging.getLogger("nvc.player")

_KNOWN_TYPES = frozenset(int(t) for t in UnitType)
MAX_ORIGINS = 4096  # timing entries kept for frames not yet presented
MAX_LATENCIES = 100_000  # latency samples kept (the most recent)
SLEW = 0.1  # the clock moves earlier by at most this fraction of a frame interval per frame


@dataclass(frozen=True)
class PlayerConfig:
    """What `nvc play` does."""

    url: str  # the server's base URL (http://127.0.0.1:8080), or its /offer URL
    output: str | None = None  # record the presented frames here (.y4m, .yuv, .mkv, DIR/)
    delay: float = 0.05  # playout delay, seconds added to the clock for jitter
    drop_late: bool = True  # drop frames over a frame interval late (off: show every frame)
    max_frames: int | None = None  # stop after presenting this many frames
    duration: float | None = None  # stop after this many seconds of playback
    connect_timeout: float = 15.0  # seconds to get an answer and the server's hello
    idle_timeout: float = 10.0  # the stream is over when nothing arrives for this long
    resync_after: float = 1.0  # set the clock again when a frame is this late (seconds)
    window: int | None = None  # reassembly window, units (None: 1 on ordered channels, else 32)
    stats_every: float | None = None  # print a stats line this often (seconds)
    decode_threads: int | None = None  # torch compute threads for decoding (None: torch's)
    catch_up: bool | None = None  # jump back to the live edge when behind (None: live streams)
    catch_up_after: float = 0.2  # ... when the clock is this many seconds behind the fastest path
    # drop to the next random-access point when the unit next in line for the decoder has
    # waited this long (seconds; None: never; not with drop_late off, which keeps every frame)
    max_latency: float | None = 1.0
    # payload bytes waiting for the decoder past which the backlog is dropped to a RAP
    # whatever the options (a memory bound: a flood, or --no-drop behind a slow decoder)
    max_backlog_bytes: int = 256 << 20
    max_pixels: int | None = None  # refuse frames above this many luma pixels (None: the default)


@dataclass
class PlayerStats:
    """What the player saw. Times are seconds unless named _ms."""

    frames_decoded: int = 0  # frames out of the decoder
    frames_presented: int = 0  # frames shown (and recorded)
    frames_late: int = 0  # shown more than half a frame interval after their time
    frames_dropped: int = 0  # decoded but not shown: over a frame interval late
    units_received: int = 0  # units reassembled whole
    units_lost: int = 0  # units that did not arrive whole (missing or corrupt)
    units_skipped: int = 0  # units withheld until the next random-access point
    units_skipped_by_server: int = 0  # units the server left out (this viewer was slow)
    loss_events: int = 0  # times the player had to resume at a random-access point
    decode_errors: int = 0  # units the decoder refused (or that decoded to a wrong-sized frame)
    header_errors: int = 0  # sequence headers that did not parse or whose decoder failed
    units_dropped_late: int = 0  # units not decoded to keep within max_latency
    latency_drops: int = 0  # times the player dropped its backlog to keep within max_latency
    control_rejected: int = 0  # text messages refused (malformed, hostile)
    clock_resets: int = 0  # times the presentation clock was set again
    messages: int = 0  # binary messages received
    messages_rejected: int = 0  # binary messages refused by the reassembler (malformed)
    bytes_received: int = 0  # bytes of binary messages
    decode_seconds: float = 0.0  # time spent in the decoder (worker thread)
    first_message: float | None = None  # monotonic time of the first binary message
    last_message: float | None = None  # monotonic time of the last binary message
    first_rap_pts: int | None = None  # pts of the first unit decoded (a random-access point)
    first_pts: int | None = None  # pts of the first frame presented
    last_pts: int | None = None  # pts of the last frame presented
    end_reason: str = ""  # why playback ended
    recordings: list[str] = field(default_factory=list)  # files recorded (one per segment)
    # origin -> presentation per frame (the latest MAX_LATENCIES)
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=MAX_LATENCIES))

    @property
    def decode_fps(self) -> float | None:
        if self.decode_seconds <= 0:
            return None
        return self.frames_decoded / self.decode_seconds

    @property
    def bitrate_kbps(self) -> float | None:
        if self.first_message is None or self.last_message is None:
            return None
        span = self.last_message - self.first_message
        return 8 * self.bytes_received / span / 1000 if span > 0 else None

    def summary(self) -> dict[str, Any]:
        """The numbers, JSON-ready."""
        lat = sorted(self.latencies_ms)
        out: dict[str, Any] = {
            k: v
            for k, v in self.__dict__.items()
            if k not in ("latencies_ms", "first_message", "last_message")
        }
        out["decode_fps"] = self.decode_fps
        out["bitrate_kbps"] = self.bitrate_kbps
        out["latency_ms_median"] = statistics.median(lat) if lat else None
        out["latency_ms_p95"] = percentile(lat, 95) if lat else None
        out["latency_frames"] = len(lat)
        return out


def format_stats(stats: PlayerStats) -> str:
    """One line for humans."""
    s = stats.summary()

    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    return (
        f"frames {s['frames_presented']} shown, {s['frames_late']} late, "
        f"{s['frames_dropped']} dropped | units {s['units_received']} received, "
        f"{s['units_lost']} lost, {s['units_skipped']} skipped, "
        f"{s['units_skipped_by_server']} skipped by server, "
        f"{s['units_dropped_late']} dropped late | errors {s['decode_errors']} decode, "
        f"{s['header_errors']} header | "
        f"decode {num(s['decode_fps'], '.1f')} fps | latency median "
        f"{num(s['latency_ms_median'], '.0f')} ms, p95 {num(s['latency_ms_p95'], '.0f')} ms | "
        f"{num(s['bitrate_kbps'], '.0f')} kb/s"
    )


def _limit_threads(threads: int | None) -> None:
    """Set torch's compute threads for this process's decoding (the player's own process).

    Neural decoders run torch ops whose thread pool defaults to every core; on a busy
    machine a pool that competes with other work can be far slower than one thread."""
    if threads is None:
        return
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(threads)


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_LOSS = _Marker("LOSS")  # decode queue: units were lost before the next one
_EOS = _Marker("EOS")  # decode / present queue: the stream is over
_RESYNC = _Marker("RESYNC")  # present queue: the backlog was dropped; set the clock again


@dataclass(frozen=True)
class _Segment:
    """Present queue: the frames after this one belong to a stream with this header."""

    header: SequenceHeader


def _writer_shape(header: SequenceHeader) -> tuple[int, int, str, Any, bool]:
    """What a recording file is fixed to."""
    return (header.width, header.height, header.pix_fmt, header.fps, header.full_range)


def segment_path(output: str, number: int) -> str:
    """Where segment `number` (1, 2, ...) of a recording to `output` goes: `output` itself,
    then `NAME-2.EXT`, `NAME-3.EXT` (`DIR-2/` for a directory of PNG frames)."""
    if number == 1:
        return output
    base = output.rstrip("/" + os.sep)
    head, name = os.path.split(base)
    stem, ext = os.path.splitext(name)
    if base != output or os.path.isdir(base) or not ext:  # a directory of PNG frames
        return os.path.join(head, f"{name}-{number}") + os.sep
    return os.path.join(head, f"{stem}-{number}{ext}")


def _can_segment(output: str) -> bool:
    """A path a new segment can be put next to (not stdout, a device or a FIFO)."""
    if output == "-":
        return False
    return not os.path.exists(output) or os.path.isfile(output) or os.path.isdir(output)


def offer_url(url: str) -> str:
    """The signaling URL for a server URL (its base URL, or already .../offer)."""
    url = url.strip()
    if not url.startswith(("http://", "https://")):
        raise NvcError(f"the stream URL must start with http:// or https://, not {url!r}")
    return url if url.rstrip("/").endswith("/offer") else url.rstrip("/") + "/offer"


class Player:
    """One playback of a stream (see the module docstring). Use run() once."""

    def __init__(
        self,
        config: PlayerConfig,
        *,
        on_frame: Callable[[Frame], None] | None = None,
        out: TextIO | None = None,
    ) -> None:
        if config.delay < 0 or config.idle_timeout <= 0 or config.connect_timeout <= 0:
            raise NvcError("delay must be >= 0 and timeouts positive")
        if config.max_frames is not None and config.max_frames < 1:
            raise NvcError("--frames must be at least 1")
        self.config = config
        self.on_frame = on_frame
        self.out = out or sys.stderr
        self.stats = PlayerStats()
        self.hello: wire.Hello | None = None
        self.header: SequenceHeader | None = None
        self._url = offer_url(config.url)
        self._reassembler = Reassembler(start_seq=0, resync=True)
        self._units: deque[tuple[Unit, float] | _Marker] = deque()  # (unit, arrived at)
        self._units_bytes = 0  # payload bytes in self._units
        self._cut = False  # the backlog was cut on arrival: flush and set the clock again
        self._units_ready = asyncio.Event()
        # (frame, ready at, decoded without waiting in the queue)
        self._frames: asyncio.Queue[tuple[Frame, float, bool] | _Marker | _Segment] = (
            asyncio.Queue()
        )
        self._frames_waiting = 0  # decoded frames in self._frames
        self._origins: dict[int, float] = {}  # pts -> wall-clock origin (capture or release)
        self._finished = asyncio.Event()
        self._ending = False
        self._anchor: float | None = None  # loop time of t = 0 on the stream clock
        self._interval = 1 / 25
        self._decoder: Decoder | None = None
        self._decoder_dirty = False  # units were lost: replace the decoder at the next RAP
        self._need_rap = False  # a decoder error: skip units until the next RAP
        self._behind = False  # the backlog was dropped: drop units until the next RAP
        self._lag_from = 0.0  # loop time the decoder became ready (start-up is not lag)
        self._warming_up = False  # the decoder has not decoded its first unit yet
        self._rejected_header: bytes | None = None  # payload of the last header refused
        self._writer: VideoWriter | None = None
        self._recording: tuple[int, int, str, Any, bool] | None = None  # the writer's shape
        self._writes: list[Future[None]] = []
        if config.decode_threads is not None and config.decode_threads < 1:
            raise NvcError("--decode-threads must be at least 1")
        self._decode_pool = ThreadPoolExecutor(
            1,
            thread_name_prefix="nvc-decode",
            initializer=_limit_threads,
            initargs=(config.decode_threads,),
        )
        self._io_pool = ThreadPoolExecutor(1, thread_name_prefix="nvc-record")
        self._last_delivery: float | None = None
        self._ordered = True  # the channel delivers in order (from the answer)
        self._started = 0.0
        self._error: BaseException | None = None

    # ---- public ---------------------------------------------------------------------

    async def run(self) -> PlayerStats:
        """Connect, play until the stream ends (or a limit is reached), return the stats."""
        from aiortc import RTCSessionDescription

        from nvc.player import rtc

        loop = asyncio.get_running_loop()
        self._started = loop.time()
        pc = rtc.new_peer()
        tasks: list[asyncio.Task[None]] = []
        try:
            channel = pc.createDataChannel(rtc.CHANNEL_LABEL, negotiated=True, id=rtc.CHANNEL_ID)
            channel.on("message", self._on_message)
            channel.on("close", lambda: self._end_stream("the channel closed"))

            @pc.on("connectionstatechange")
            def on_state() -> None:
                if pc.connectionState in ("failed", "closed"):
                    self._end_stream(f"connection {pc.connectionState}")

            await pc.setLocalDescription(await pc.createOffer())
            answer = await self._signal(pc.localDescription.sdp)
            self._configure(answer)
            try:
                await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
            except (ValueError, TypeError) as e:  # aiortc's complaints about the SDP
                text = " ".join(str(e).split()) or type(e).__name__
                raise NvcError(f"the server's answer is unusable: {text}") from None
            self._refuse_bad_text(pc)
            tasks = [
                asyncio.create_task(self._decode_loop(), name="nvc-play-decode"),
                asyncio.create_task(self._present_loop(), name="nvc-play-present"),
                asyncio.create_task(self._watchdog(), name="nvc-play-watchdog"),
            ]
            await self._finished.wait()
            if self._error is not None:
                raise self._error
            await self._finish_recording()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await pc.close()
            if self._writer is not None:  # not committed: an error or an interruption
                writer, self._writer = self._writer, None
                await loop.run_in_executor(self._io_pool, writer.abort)
            self._decode_pool.shutdown(wait=False, cancel_futures=True)
            self._io_pool.shutdown(wait=True)
            # a finished player keeps its stats, not its decoder (a network) or backlog
            self._decoder = None
            self._units.clear()
            self._units_bytes = 0
        return self.stats

    def stop(self, reason: str = "stopped") -> None:
        """End playback now; run() then returns (the recording is kept)."""
        self._stop(reason)

    @property
    def decoder(self) -> Decoder | None:
        """The decoder in use (None before the stream, between decoders and after it);
        touch its state only through in_decoder_thread."""
        return self._decoder

    async def in_decoder_thread(self, fn: Callable[[], Any]) -> Any:
        """fn() on the decoder's worker thread, between units (the --view orbit renders
        the decoded scene this way); RuntimeError once the player has finished."""
        return await self._in_worker(fn)

    # ---- signaling --------------------------------------------------------------------

    async def _signal(self, sdp: str) -> dict[str, Any]:
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=self.config.connect_timeout)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                http.post(self._url, json={"type": "offer", "sdp": sdp}) as response,
            ):
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = None
                if response.status != 200:
                    error = body.get("error") if isinstance(body, dict) else None
                    raise NvcError(
                        f"the server refused the offer: HTTP {response.status}"
                        + (f": {error}" if error else "")
                    )
        except (aiohttp.ClientError, TimeoutError) as e:
            text = " ".join(str(e).split()) or type(e).__name__
            raise NvcError(f"cannot reach {self._url}: {text}") from None
        if not isinstance(body, dict) or body.get("type") != "answer" or "sdp" not in body:
            raise NvcError(f"{self._url} did not answer with an SDP answer")
        return body

    def _configure(self, answer: dict[str, Any]) -> None:
        channel = answer.get("channel")
        ordered = not isinstance(channel, dict) or bool(channel.get("ordered", True))
        self._ordered = ordered
        window = self.config.window or (1 if ordered else 32)
        self._reassembler = Reassembler(window=window, start_seq=0, resync=True)

    # ---- receiving (event loop) ---------------------------------------------------------

    def _on_message(self, message: bytes | str) -> None:
        if self._ending:
            return
        if isinstance(message, str):
            try:
                self._on_control(message)
            except Exception as e:  # never let a peer's message break the channel's handler
                self.stats.control_rejected += 1
                log.info("control message refused: %s", type(e).__name__)
            return
        now = time.monotonic()
        stats = self.stats
        stats.messages += 1
        stats.bytes_received += len(message)
        if stats.first_message is None:
            stats.first_message = now
        stats.last_message = now
        try:
            out = self._reassembler.push(message)
        except Exception:  # BitstreamError; anything else must not break the handler either
            stats.messages_rejected += 1
            return
        self._take(out)

    def _refuse_bad_text(self, pc: Any) -> None:
        """Drop text messages that are not UTF-8 before aiortc decodes them: its decoding
        error would end the association (the channel closes). Counted as control_rejected."""
        from aiortc import rtcsctptransport

        sctp = getattr(pc, "sctp", None)
        receive = getattr(sctp, "_data_channel_receive", None)
        string = getattr(rtcsctptransport, "WEBRTC_STRING", None)
        if sctp is None or receive is None or string is None:
            return

        async def checked(stream_id: int, pp_id: int, data: bytes) -> None:
            if pp_id == string:
                try:
                    data.decode("utf8")
                except UnicodeDecodeError:
                    self.stats.control_rejected += 1
                    return
            await receive(stream_id, pp_id, data)

        sctp._data_channel_receive = checked

    def _on_control(self, text: str) -> None:
        try:
            message = wire.decode(text)
        except ValueError:
            self.stats.control_rejected += 1
            return
        if isinstance(message, wire.Hello):
            self.hello = message
        elif isinstance(message, wire.Timing):
            origin = message.capture if message.capture is not None else message.at
            if len(self._origins) >= MAX_ORIGINS:  # frames that never came: forget the oldest
                del self._origins[min(self._origins)]
            self._origins[message.pts] = max(origin, self._origins.get(message.pts, origin))
        elif isinstance(message, wire.Skip):
            self.stats.units_skipped_by_server += message.units

    def _take(self, out: list[Unit | Lost]) -> None:
        for item in out:
            if isinstance(item, Unit):
                self.stats.units_received += 1
                self._last_delivery = time.monotonic()
                self._units.append((item, asyncio.get_running_loop().time()))
                self._units_bytes += len(item.payload)
                if self._units_bytes > self.config.max_backlog_bytes:
                    self._cut_backlog(0)
                    self._cut = True
                if item.type == UnitType.END:
                    self._end_stream("end of stream")
            elif item.reason == "skipped":
                self.stats.units_skipped += item.count
            else:
                self.stats.units_lost += item.count
                self._units.append(_LOSS)
        self._units_ready.set()

    def _end_stream(self, reason: str) -> None:
        """No more units will come: decode and show what is there, then finish."""
        if self._ending:
            return
        self._ending = True
        self.stats.end_reason = self.stats.end_reason or reason
        with contextlib.suppress(BitstreamError):
            self._take(self._reassembler.flush())
        self._units.append(_EOS)
        self._units_ready.set()

    def _stop(self, reason: str) -> None:
        """Stop now (a limit was reached)."""
        self.stats.end_reason = self.stats.end_reason or reason
        self._ending = True
        self._finished.set()

    def _fail(self, error: BaseException) -> None:
        self._error = error
        self._stop(f"error: {error}")

    # ---- decoding -----------------------------------------------------------------------

    async def _next_unit(self) -> tuple[Unit, float] | _Marker:
        while not self._units:
            self._units_ready.clear()
            await self._units_ready.wait()
        item = self._units.popleft()
        if isinstance(item, tuple):
            self._units_bytes -= len(item[0].payload)
        return item

    async def _in_worker(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._decode_pool, fn, *args)

    @staticmethod
    def _timed_decode(decoder: Decoder, unit: Unit | None) -> tuple[list[Frame], float]:
        start = time.perf_counter()
        frames = decoder.decode(unit)
        return frames, time.perf_counter() - start

    def _damaged(self, what: str, error: BaseException) -> None:
        """A unit did not decode: count it, resume with a fresh decoder at the next RAP."""
        text = " ".join(str(error).split()) or type(error).__name__
        log.info("%s does not decode (%s): %s", what, type(error).__name__, text)
        self.stats.decode_errors += 1
        self._need_rap = True
        self._decoder_dirty = True

    async def _new_decoder(self, header: SequenceHeader) -> Decoder:
        spec = registry.get(header.codec_id)
        decoder: Decoder = await self._in_worker(
            functools.partial(spec.create_decoder, max_pixels=self.config.max_pixels), header
        )
        self._lag_from = asyncio.get_running_loop().time()
        self._warming_up = True
        return decoder

    async def _flush_decoder(self) -> None:
        if self._decoder is None:
            return
        decoder, self._decoder = self._decoder, None
        try:
            frames, seconds = await self._in_worker(self._timed_decode, decoder, None)
        except Exception as e:
            self._damaged("the end of a decoder's units", e)
            return
        await self._decoded(frames, seconds, fresh=False)

    async def _decoded(self, frames: list[Frame], seconds: float, *, fresh: bool) -> None:
        self.stats.decode_seconds += seconds
        self.stats.frames_decoded += len(frames)
        now = asyncio.get_running_loop().time()
        header = self.header
        for frame in frames:
            if header is not None and (frame.width, frame.height, frame.format) != (
                header.width,
                header.height,
                header.pix_fmt,
            ):
                self._damaged(
                    f"frame {frame.pts}",
                    CodecError(f"decoded a {frame.width}x{frame.height} {frame.format} frame"),
                )
                return
            self._frames_waiting += 1
            await self._frames.put((frame, now, fresh))

    def _refuse_header(self, unit: Unit, error: BaseException) -> None:
        """A sequence header that cannot be used: keep the last good one, resume at a RAP."""
        if unit.payload != self._rejected_header:  # not a repeat of the same bad header
            text = " ".join(str(error).split()) or type(error).__name__
            log.warning("a sequence header was refused: %s", text)
            self.stats.header_errors += 1
            self.stats.loss_events += 1
        self._rejected_header = unit.payload
        self._need_rap = True
        self._decoder_dirty = True

    async def _on_header(self, unit: Unit) -> None:
        try:
            header = SequenceHeader.from_unit(unit)
            if header != self.header:
                registry.get(header.codec_id)  # a codec this player has
        except Exception as e:  # BitstreamError, CodecError, ... : treated as loss
            self._refuse_header(unit, e)
            return
        if header == self.header:
            return  # a repeat (sent before random-access points on lossy channels)
        await self._flush_decoder()
        try:
            decoder = await self._new_decoder(header)
        except Exception as e:  # the codec refuses its parameters
            self._refuse_header(unit, e)
            return
        self._rejected_header = None
        self.header, self._decoder = header, decoder
        self._interval = float(1 / header.fps)
        self._decoder_dirty = False
        self._need_rap = False
        if self.config.output and _writer_shape(header) != self._recording:
            self._recording = _writer_shape(header)
            await self._frames.put(_Segment(header))

    async def _decode_loop(self) -> None:
        try:
            while True:
                item = await self._next_unit()
                if item is _EOS:
                    await self._flush_decoder()
                    await self._frames.put(_EOS)
                    return
                if item is _LOSS:
                    self.stats.loss_events += 1
                    self._decoder_dirty = True
                    continue
                if not isinstance(item, tuple):
                    raise NvcError(f"player: unexpected queue item {item!r}")
                if self._is_frame_unit(item) and self._too_late(item[1]):
                    self._cut_backlog(1)  # this unit and those waiting up to a RAP
                    await self._after_cut()
                    continue
                if self._cut:  # cut on arrival: this unit is one that was kept
                    await self._after_cut()
                await self._decode_unit(*item)
        except asyncio.CancelledError:
            raise
        except BaseException as e:
            self._fail(e)

    def _too_late(self, arrived: float) -> bool:
        """Whether the unit that arrived at `arrived` waited too long for the decoder."""
        bound = self.config.max_latency
        if bound is None or not self.config.drop_late or self._decoder is None:
            return False
        return asyncio.get_running_loop().time() - max(arrived, self._lag_from) > bound

    @staticmethod
    def _is_frame_unit(item: tuple[Unit, float] | _Marker) -> bool:
        return isinstance(item, tuple) and item[0].type not in (
            UnitType.SEQUENCE_HEADER,
            UnitType.END,
        )

    def _cut_backlog(self, dropped: int) -> None:
        """The decoder is behind: drop the units waiting up to the newest RAP among them
        (without one, every unit up to the next RAP to arrive); `dropped` units were left
        out already. Sequence headers and the end of the stream stay in the queue. The
        decoder is flushed and the clock set again before the next unit (self._cut)."""
        queue = self._units
        newest = None  # index in the queue of the newest RAP waiting
        for i in range(len(queue) - 1, -1, -1):
            item = queue[i]
            if isinstance(item, tuple) and self._is_frame_unit(item) and item[0].rap:
                newest = i
                break
        kept: deque[tuple[Unit, float] | _Marker] = deque()
        for i, item in enumerate(queue):
            if newest is not None and i >= newest:
                kept.append(item)
            elif self._is_frame_unit(item):
                dropped += 1
            elif item is _LOSS:
                self.stats.loss_events += 1
            else:
                kept.append(item)
        self._units = kept
        self._units_bytes = sum(len(item[0].payload) for item in kept if isinstance(item, tuple))
        self.stats.units_dropped_late += dropped
        self.stats.latency_drops += 1
        self._behind = newest is None
        self._decoder_dirty = True
        log.info("decoding fell behind: dropped %d units to a random-access point", dropped)

    async def _after_cut(self) -> None:
        """After a cut: the old decoder's frames out, the clock set again at the RAP."""
        self._cut = False
        await self._flush_decoder()
        await self._frames.put(_RESYNC)

    async def _decode_unit(self, unit: Unit, arrived: float) -> None:
        if unit.type == UnitType.SEQUENCE_HEADER:
            await self._on_header(unit)
            return
        if unit.type == UnitType.END or unit.type not in _KNOWN_TYPES:
            return
        if self.header is None:
            self.stats.units_skipped += 1  # nothing can be decoded before the header
            return
        if not unit.rap and self._behind:
            self.stats.units_dropped_late += 1
            return
        if (self._need_rap or self._decoder_dirty) and not unit.rap:
            self.stats.units_skipped += 1
            return
        if unit.rap and (self._decoder_dirty or self._decoder is None):
            await self._flush_decoder()
            try:
                self._decoder = await self._new_decoder(self.header)
            except Exception as e:
                self._damaged(f"the decoder for the unit at pts {unit.pts}", e)
                return
            self._decoder_dirty = False
        self._need_rap = self._behind = False
        if self._decoder is None:
            return
        if self.stats.first_rap_pts is None:
            self.stats.first_rap_pts = unit.pts
        loop = asyncio.get_running_loop()
        # decoded as soon as it arrived (not after waiting behind other units)?
        fresh = loop.time() - arrived < max(0.005, self._interval / 4)
        try:
            frames, seconds = await self._in_worker(self._timed_decode, self._decoder, unit)
        except Exception as e:  # NvcError for damage it detects; anything else too
            self._damaged(f"the unit at pts {unit.pts}", e)
            return
        if self._warming_up:  # a fresh decoder's first unit: its warm-up is not lag either
            self._warming_up = False
            self._lag_from = loop.time()
        await self._decoded(frames, seconds, fresh=fresh)

    # ---- presenting ---------------------------------------------------------------------

    async def _present_loop(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self.config.delay
        catch_up_after = self.config.catch_up_after
        try:
            while True:
                item = await self._frames.get()
                if isinstance(item, _Segment):
                    await self._start_segment(item.header)
                    continue
                if item is _RESYNC:  # the backlog was dropped: the next frame sets the clock
                    if self._anchor is not None:
                        self._anchor = None
                        self.stats.clock_resets += 1
                    continue
                if isinstance(item, _Marker):
                    self._stop(self.stats.end_reason or "end of stream")
                    return
                frame, ready, fresh = item
                self._frames_waiting -= 1
                t = frame.time
                # The first frame starts the clock. The clock then follows the fastest path
                # seen: a frame decoded as soon as its unit arrived that is ready earlier
                # than the clock expected pulls it earlier, by at most SLEW of a frame
                # interval per frame (playback runs up to 10% fast while it catches up).
                # Frames from a backlog say nothing about the path and never move it.
                if self._anchor is None:
                    self._anchor = ready - t
                elif fresh and ready - t < self._anchor:
                    behind = self._anchor - (ready - t)
                    if self._catching_up() and behind > catch_up_after:
                        # Far behind the live edge (after a stall): jump to it; the frames
                        # still waiting are now late and are dropped.
                        self._anchor = ready - t
                        self.stats.clock_resets += 1
                    else:
                        self._anchor -= min(behind, SLEW * self._interval)
                due = self._anchor + t + delay
                wait = due - loop.time()
                if wait > max(5.0, 4 * delay):  # far ahead of the clock: set it again
                    self.stats.clock_resets += 1
                    self._anchor = loop.time() - t
                    due = self._anchor + t + delay
                    wait = delay
                if wait > 0:
                    await asyncio.sleep(wait)
                late = loop.time() - due
                if late > self.config.resync_after:  # far behind: set the clock again
                    self.stats.clock_resets += 1
                    self._anchor = loop.time() - t - delay
                    late = 0.0
                # Over a frame interval late: dropped if a later frame is already waiting
                # (showing this one would only make that one later too); without one (a
                # decoder slower than real time) it is shown late: max_latency bounds that.
                if late > self._interval and self.config.drop_late and self._superseded():
                    self.stats.frames_dropped += 1
                    continue
                if late > self._interval / 2:
                    self.stats.frames_late += 1
                self._show(frame)
                if self.config.max_frames and self.stats.frames_presented >= self.config.max_frames:
                    self._stop("frame limit")
                    return
        except asyncio.CancelledError:
            raise
        except BaseException as e:
            self._fail(e)

    def _superseded(self) -> bool:
        """Whether a decoded frame is waiting behind the one being presented."""
        return self._frames_waiting > 0

    def _catching_up(self) -> bool:
        if self.config.catch_up is not None:
            return self.config.catch_up
        return self.hello is not None and self.hello.live

    def _show(self, frame: Frame) -> None:
        stats = self.stats
        origin = self._origins.get(frame.pts)
        if origin is not None:
            stats.latencies_ms.append(1000 * (time.time() - origin))
        for pts in [p for p in self._origins if p <= frame.pts]:
            del self._origins[pts]
        stats.frames_presented += 1
        if stats.first_pts is None:
            stats.first_pts = frame.pts
        stats.last_pts = frame.pts
        if self._writer is not None:
            self._writes = [w for w in self._writes if not w.done() or w.exception()]
            self._writes.append(self._io_pool.submit(self._writer.write, frame))
        if self.on_frame is not None:
            self.on_frame(frame)

    async def _finish_recording(self) -> None:
        if self._writer is None:
            return
        loop = asyncio.get_running_loop()
        for write in self._writes:
            await asyncio.wrap_future(write)  # raises what the writer raised
        self._writes = []
        writer, self._writer = self._writer, None
        await loop.run_in_executor(self._io_pool, writer.close)

    async def _start_segment(self, header: SequenceHeader) -> None:
        """Record what follows to a file of its own: the first one, or (the stream changed
        its size, pixel format or frame rate) the next segment; the last one is kept."""
        output = self.config.output
        if output is None:
            return
        number = len(self.stats.recordings) + 1
        if number > 1 and not _can_segment(output):
            if self._writer is not None:
                log.warning("the stream changed its size: recording stops (%s)", output)
                await self._finish_recording()
            return
        await self._finish_recording()
        path = segment_path(output, number)
        if number > 1:
            log.warning("the stream changed its size: recording goes on in %s", path)
        self._writer = await asyncio.get_running_loop().run_in_executor(
            self._io_pool,
            lambda: open_writer(
                path,
                width=header.width,
                height=header.height,
                fps=header.fps,
                format=header.pix_fmt,
                full_range=header.full_range,
            ),
        )
        self.stats.recordings.append(path)

    # ---- housekeeping -------------------------------------------------------------------

    def _give_up(self, now: float, last: float) -> bool:
        """Whether to give up the units pending reassembly. On an ordered channel a unit
        still pending while later messages arrive is still arriving (a lost fragment shows
        as soon as the next unit starts), so only a quiet channel counts; on an unordered
        one, also a long time without delivering anything."""
        quiet = now - last > max(1.0, 10 * self._interval)
        if self._ordered:
            return quiet
        stuck = now - (self._last_delivery or last) > max(0.5, 10 * self._interval)
        return quiet or stuck or now - last > max(0.2, 3 * self._interval)

    async def _watchdog(self) -> None:
        loop = asyncio.get_running_loop()
        config = self.config
        next_stats = loop.time() + (config.stats_every or 0)
        tick = 0.05
        expected = time.monotonic() + tick
        grace_until = 0.0  # after the event loop was held up, let the backlog be read first
        while not self._finished.is_set():
            await asyncio.sleep(tick)
            now = time.monotonic()
            if now - expected > 0.1:  # this loop was blocked: messages may be waiting unread
                grace_until = now + 0.5
            expected = now + tick
            last = self.stats.last_message
            if not self._ending and now >= grace_until:
                if last is None:  # waiting: for the connection, then for the stream to start
                    if self.hello is None and loop.time() - self._started > config.connect_timeout:
                        self._fail(NvcError(f"no stream from {self._url} (timed out)"))
                elif now - last > config.idle_timeout:
                    self._end_stream("the stream went quiet")
                elif self._reassembler.pending and self._give_up(now, last):
                    with contextlib.suppress(BitstreamError):
                        self._take(self._reassembler.flush())
            if config.duration is not None and loop.time() - self._started > config.duration:
                self._stop("duration reached")
            if config.stats_every and loop.time() >= next_stats:
                next_stats = loop.time() + config.stats_every
                print(format_stats(self.stats), file=self.out, flush=True)

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
clean decoder state. A decoder error is handled the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
from nvc.errors import BitstreamError, NvcError
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
    decode_errors: int = 0  # units the decoder refused
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
        f"{s['units_skipped_by_server']} skipped by server | "
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
        self._units_ready = asyncio.Event()
        # (frame, ready at, decoded without waiting in the queue)
        self._frames: asyncio.Queue[tuple[Frame, float, bool] | _Marker] = asyncio.Queue()
        self._origins: dict[int, float] = {}  # pts -> wall-clock origin (capture or release)
        self._finished = asyncio.Event()
        self._ending = False
        self._anchor: float | None = None  # loop time of t = 0 on the stream clock
        self._interval = 1 / 25
        self._decoder: Decoder | None = None
        self._decoder_dirty = False  # units were lost: replace the decoder at the next RAP
        self._need_rap = False  # a decoder error: skip units until the next RAP
        self._writer: VideoWriter | None = None
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
        return self.stats

    def stop(self, reason: str = "stopped") -> None:
        """End playback now; run() then returns (the recording is kept)."""
        self._stop(reason)

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
            self._on_control(message)
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
        except BitstreamError:
            stats.messages_rejected += 1
            return
        self._take(out)

    def _on_control(self, text: str) -> None:
        try:
            message = wire.decode(text)
        except ValueError:
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
        return self._units.popleft()

    async def _in_worker(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._decode_pool, fn, *args)

    @staticmethod
    def _timed_decode(decoder: Decoder, unit: Unit | None) -> tuple[list[Frame], float]:
        start = time.perf_counter()
        frames = decoder.decode(unit)
        return frames, time.perf_counter() - start

    async def _flush_decoder(self) -> None:
        if self._decoder is None:
            return
        decoder, self._decoder = self._decoder, None
        try:
            frames, seconds = await self._in_worker(self._timed_decode, decoder, None)
        except (NvcError, ValueError):
            self.stats.decode_errors += 1
            return
        await self._decoded(frames, seconds, fresh=False)

    async def _decoded(self, frames: list[Frame], seconds: float, *, fresh: bool) -> None:
        self.stats.decode_seconds += seconds
        self.stats.frames_decoded += len(frames)
        now = asyncio.get_running_loop().time()
        for frame in frames:
            await self._frames.put((frame, now, fresh))

    async def _on_header(self, unit: Unit) -> None:
        header = SequenceHeader.from_unit(unit)
        if header == self.header:
            return  # a repeat (sent before random-access points on lossy channels)
        await self._flush_decoder()
        old, self.header = self.header, header
        self._interval = float(1 / header.fps)
        spec = registry.get(header.codec_id)
        self._decoder = await self._in_worker(spec.create_decoder, header)
        self._decoder_dirty = False
        shape = (header.width, header.height, header.pix_fmt)
        if old is not None and shape != (old.width, old.height, old.pix_fmt) and self._writer:
            raise NvcError("the stream changed its size or pixel format: cannot record it")
        if self.config.output and self._writer is None and old is None:
            output = self.config.output
            self._writer = await asyncio.get_running_loop().run_in_executor(
                self._io_pool,
                lambda: open_writer(
                    output,
                    width=header.width,
                    height=header.height,
                    fps=header.fps,
                    format=header.pix_fmt,
                    full_range=header.full_range,
                ),
            )

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
                await self._decode_unit(*item)
        except asyncio.CancelledError:
            raise
        except BaseException as e:
            self._fail(e)

    async def _decode_unit(self, unit: Unit, arrived: float) -> None:
        if unit.type == UnitType.SEQUENCE_HEADER:
            await self._on_header(unit)
            return
        if unit.type == UnitType.END or unit.type not in _KNOWN_TYPES:
            return
        if self.header is None:
            self.stats.units_skipped += 1  # nothing can be decoded before the header
            return
        if (self._need_rap or self._decoder_dirty) and not unit.rap:
            self.stats.units_skipped += 1
            return
        if unit.rap and (self._decoder_dirty or self._decoder is None):
            await self._flush_decoder()
            spec = registry.get(self.header.codec_id)
            self._decoder = await self._in_worker(spec.create_decoder, self.header)
            self._decoder_dirty = False
        self._need_rap = False
        if self._decoder is None:
            return
        if self.stats.first_rap_pts is None:
            self.stats.first_rap_pts = unit.pts
        # decoded as soon as it arrived (not after waiting behind other units)?
        fresh = asyncio.get_running_loop().time() - arrived < max(0.005, self._interval / 4)
        try:
            frames, seconds = await self._in_worker(self._timed_decode, self._decoder, unit)
        except (NvcError, ValueError) as e:
            log.info("unit at pts %d does not decode: %s", unit.pts, e)
            self.stats.decode_errors += 1
            self._need_rap = True
            self._decoder_dirty = True
            return
        await self._decoded(frames, seconds, fresh=fresh)

    # ---- presenting ---------------------------------------------------------------------

    async def _present_loop(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self.config.delay
        catch_up_after = self.config.catch_up_after
        try:
            while True:
                item = await self._frames.get()
                if isinstance(item, _Marker):
                    self._stop(self.stats.end_reason or "end of stream")
                    return
                frame, ready, fresh = item
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
                if late > self._interval and self.config.drop_late:
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
        writer, self._writer = self._writer, None
        await loop.run_in_executor(self._io_pool, writer.close)

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

"""One stream, many viewers: a shared clock, per-viewer send queues, slow-viewer skipping.

    broadcast = Broadcast(source, ViewerConfig())
    viewer = broadcast.add(channel)        # an open RTCDataChannel (or anything alike)
    ...
    broadcast.remove(viewer)
    await broadcast.close()

The broadcast runs its source (`nvc.player.source`) while viewers are connected: a run
starts when `wait_for` viewers are there and stops when the last one leaves (a later
viewer starts a new run, from the beginning of a file). Units are released on the run's
clock (a file's units at their presentation time) and handed to every viewer without
waiting for any of them.

Each viewer gets the sequence header first, then the units from the latest random-access
point (RAP) on: a viewer joining mid-stream gets the units since the latest RAP at once
and then follows the live stream. A viewer's units wait in its own queue while its data
channel holds more than `high_water` bytes (`bufferedAmount`); when a queued unit has
waited longer than `max_lag` (or the queue grows past `max_queue_bytes`), the viewer is
skipped to the next RAP: its queue is emptied, units up to the next RAP are left out, and
a "skip" control message tells the player how many. Units are never cut short: every
unit handed to the channel is handed over whole.

This module does not import aiortc: a channel is anything with `send()`,
`bufferedAmount` and `readyState`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from nvc.bitstream import Packetizer, SequenceHeader, Unit, UnitType
from nvc.errors import NvcError
from nvc.player import wire
from nvc.player.source import UnitSource

log = logging.getLogger("nvc.player")

END_PAYLOAD = bytes(8)  # an END unit's payload: index_offset 0 (no index on a network stream)


class Channel(Protocol):
    """What a viewer needs of an RTCDataChannel."""

    @property
    def bufferedAmount(self) -> int: ...

    @property
    def readyState(self) -> str: ...

    def send(self, data: bytes | str) -> None: ...


@dataclass(frozen=True)
class Released:
    """A unit as the broadcast released it."""

    unit: Unit
    at: float  # wall-clock time (time.time()) of the release
    capture: float | None  # wall-clock capture time of its frame (live sources)


@dataclass(frozen=True)
class ViewerConfig:
    """How units are sent to each viewer."""

    max_message: int = 16384  # largest data channel message (bitstream packetizer)
    high_water: int = 1 << 20  # wait while the channel buffers more than this many bytes
    low_water: int = 256 << 10  # ... until it buffers no more than this
    max_lag: float = 1.0  # seconds a unit may wait in a viewer's queue before it is skipped
    max_queue_bytes: int = 64 << 20  # queued payload bytes that also make a viewer skip
    stall_timeout: float = 20.0  # a channel that stays above high_water this long is dropped
    ordered: bool = True  # the channel delivers in order (reported to the player)
    max_retransmits: int | None = None  # None: reliable channel (reported to the player)
    live: bool = False  # the source is live (reported to the player)
    drop_rate: float = 0.0  # TESTING: drop this fraction of unit messages before sending
    seed: int = 0  # TESTING: seed of the drop pattern (mixed with the viewer number)
    header_every: float | None = None  # repeat the header before a RAP this often (seconds)


@dataclass
class ViewerStats:
    units_sent: int = 0  # units handed to the channel (sequence headers included)
    bytes_sent: int = 0  # bytes of binary messages handed to the channel
    messages_sent: int = 0  # binary messages handed to the channel
    messages_dropped: int = 0  # binary messages dropped on purpose (drop_rate)
    units_skipped: int = 0  # units left out to bring the viewer back to real time
    skips: int = 0  # times the viewer was skipped to a RAP


_END = object()  # queue marker: the run ended


class Viewer:
    """One viewer: its queue, packetizer and sender task."""

    def __init__(self, channel: Channel, config: ViewerConfig, number: int) -> None:
        self.channel = channel
        self.config = config
        self.number = number
        self.stats = ViewerStats()
        self.done = asyncio.Event()  # END was sent, or the viewer was closed or dropped
        self.closed = False
        self._packetizer = Packetizer(config.max_message)
        self._queue: deque[tuple[Released | object, float]] = deque()  # (item, enqueued at)
        self._queued_bytes = 0
        self._wake = asyncio.Event()
        self._header: Unit | None = None  # the run's header unit
        self._header_due = False  # the header must go before the next unit
        self._last_header = -1e9  # monotonic time the header was last sent
        self._waiting_for_rap = True
        self._pending_skip = 0  # units left out, not yet reported
        self._rng = random.Random(config.seed * 1_000_003 + number) if config.drop_rate else None
        self._room = asyncio.Event()
        self._hello_sent = False
        on = getattr(channel, "on", None)
        if callable(on):  # an RTCDataChannel: be told when its buffer drains
            with contextlib.suppress(Exception):
                setattr(channel, "bufferedAmountLowThreshold", config.low_water)  # noqa: B010
                on("bufferedamountlow", self._room.set)
        self.task: asyncio.Task[None] | None = None

    # ---- called by the broadcast (synchronously, on the event loop) -------------------

    def start_run(self, header: SequenceHeader) -> None:
        """A run begins: the header goes first, then units from a RAP on."""
        self._header = header.to_unit()
        self._header_due = True
        self._waiting_for_rap = True
        self._wake.set()

    def offer(self, item: Released) -> None:
        """Queue a released unit (or leave it out: see the module docstring)."""
        if self.closed:
            return
        if self._lagging():
            self._skip_queue()
        if self._waiting_for_rap and item.unit.type not in (
            UnitType.SEQUENCE_HEADER,
            UnitType.END,
        ):
            if not item.unit.rap:
                if self.stats.units_sent > 0 or self._pending_skip:
                    self._pending_skip += 1
                    self.stats.units_skipped += 1
                return
            self._waiting_for_rap = False
        self._queue.append((item, time.monotonic()))
        self._queued_bytes += len(item.unit.payload)
        self._wake.set()

    def finish(self) -> None:
        """The run ended: send END after the queued units."""
        if not self.closed:
            self._queue.append((_END, time.monotonic()))
            self._wake.set()

    def close(self) -> None:
        self.closed = True
        self._queue.clear()
        self._queued_bytes = 0
        self._wake.set()
        self.done.set()
        if self.task is not None and not self.task.done():
            self.task.cancel()

    @property
    def queued(self) -> int:
        """Units waiting to be sent."""
        return len(self._queue)

    def _lagging(self) -> bool:
        """Whether the queued units waited too long (END alone never lags: a skip keeps it)."""
        if not self._queue or not isinstance(self._queue[0][0], Released):
            return False
        waited = time.monotonic() - self._queue[0][1]
        return waited > self.config.max_lag or self._queued_bytes > self.config.max_queue_bytes

    def _skip_queue(self) -> None:
        """Leave out the queued units; the viewer resumes at the next RAP."""
        left_out = 0
        keep: deque[tuple[Released | object, float]] = deque()
        for item, at in self._queue:
            if isinstance(item, Released):
                left_out += 1
            else:
                keep.append((item, at))  # END stays
        self._queue = keep
        self._queued_bytes = 0
        if left_out:
            self.stats.skips += 1
            self.stats.units_skipped += left_out
            self._pending_skip += left_out
            self._waiting_for_rap = True
            log.info("viewer %d is slow: skipped %d units to the next RAP", self.number, left_out)

    # ---- the sender task ------------------------------------------------------------

    async def run(self) -> None:
        try:
            self._send_hello()
            while not self.closed:
                if not self._queue and not self._header_due:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                if not await self._wait_for_room():
                    log.info("viewer %d stalled: dropping it", self.number)
                    break
                if self._header_due and self._header is not None:
                    self._send_unit(self._header, None)
                    self._header_due = False
                    continue
                if self._lagging():
                    self._skip_queue()
                    continue
                if not self._queue:  # emptied by a skip while waiting for room
                    continue
                item, _ = self._queue.popleft()
                if not isinstance(item, Released):
                    self._send_skip()  # units left out just before the end count too
                    self._send_unit(Unit(UnitType.END, END_PAYLOAD), None)
                    break
                self._queued_bytes -= len(item.unit.payload)
                self._send_item(item)
        except Exception as e:  # the channel closed under us (InvalidStateError, ...)
            if not self.closed:
                log.info("viewer %d: sending stopped: %s", self.number, e)
        finally:
            self.done.set()

    async def _wait_for_room(self) -> bool:
        """Wait until the channel buffers at most high_water bytes; False when stalled."""
        if self.channel.bufferedAmount <= self.config.high_water:
            return True
        since = time.monotonic()
        while self.channel.bufferedAmount > self.config.low_water and not self.closed:
            if time.monotonic() - since > self.config.stall_timeout:
                return False
            self._room.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._room.wait(), 0.05)
        return not self.closed

    def _send_item(self, item: Released) -> None:
        unit = item.unit
        if (
            unit.rap
            and self._header is not None
            and self.config.header_every is not None
            and time.monotonic() - self._last_header >= self.config.header_every
        ):
            self._send_unit(self._header, None)
        self._send_skip()
        self._send_unit(unit, item)

    def _send_skip(self) -> None:
        """Tell the player about the units left out since the last unit sent."""
        if self._pending_skip:
            self.channel.send(wire.encode(wire.Skip(self._pending_skip, "slow")))
            self._pending_skip = 0

    def _send_hello(self) -> None:
        if not self._hello_sent:
            hello = wire.Hello(self.config.live, self.config.ordered, self.config.max_retransmits)
            self.channel.send(wire.encode(hello))
            self._hello_sent = True

    def _send_unit(self, unit: Unit, item: Released | None) -> None:
        self._send_hello()
        seq = self._packetizer.next_seq
        messages = self._packetizer.packetize(unit)
        if item is not None:
            self.channel.send(wire.encode(wire.Timing(seq, unit.pts, item.at, item.capture)))
        for message in messages:
            if self._rng is not None and self._rng.random() < self.config.drop_rate:
                self.stats.messages_dropped += 1
                continue
            self.channel.send(message)
            self.stats.messages_sent += 1
            self.stats.bytes_sent += len(message)
        self.stats.units_sent += 1
        if unit.type == UnitType.SEQUENCE_HEADER:
            self._last_header = time.monotonic()

    def summary(self) -> dict[str, Any]:
        s = self.stats
        return {
            "viewer": self.number,
            "units_sent": s.units_sent,
            "bytes_sent": s.bytes_sent,
            "messages_dropped": s.messages_dropped,
            "units_skipped": s.units_skipped,
            "skips": s.skips,
            "queued": self.queued,
            "buffered": self.channel.bufferedAmount,
        }


@dataclass
class BroadcastStats:
    runs: int = 0  # runs started
    units_released: int = 0  # units released on the clock, all runs
    viewers_total: int = 0  # viewers ever added
    errors: list[str] = field(default_factory=list)  # source failures, one line each


class Broadcast:
    """Plays one source to many viewers on one clock (see the module docstring)."""

    def __init__(
        self,
        source: UnitSource,
        config: ViewerConfig | None = None,
        *,
        wait_for: int = 1,
        max_cache_bytes: int = 64 << 20,
    ) -> None:
        if wait_for < 1:
            raise ValueError("wait_for must be at least 1")
        self.source = source
        self.config = config or ViewerConfig()
        self.wait_for = wait_for
        self.max_cache_bytes = max_cache_bytes
        self.viewers: set[Viewer] = set()
        self.header: SequenceHeader | None = None  # the current run's header
        self.stats = BroadcastStats()
        self.failed = asyncio.Event()  # the source failed (stats.errors says why)
        self._cache: list[Released] = []  # the current run's units from its latest RAP on
        self._cache_bytes = 0
        self._cache_valid = False
        self._task: asyncio.Task[None] | None = None
        self._numbers = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def add(self, channel: Channel) -> Viewer:
        """A new viewer on an open channel; its sender task starts at once."""
        self._numbers += 1
        self.stats.viewers_total += 1
        viewer = Viewer(channel, self.config, self._numbers)
        self.viewers.add(viewer)
        viewer.task = asyncio.create_task(viewer.run(), name=f"nvc-viewer-{viewer.number}")
        if self.running and self.header is not None:
            viewer.start_run(self.header)
            if self._cache_valid:
                for item in self._cache:
                    viewer.offer(item)
        elif not self.running and len(self.viewers) >= self.wait_for:
            self._task = asyncio.create_task(self._run(), name="nvc-broadcast")
            self._task.add_done_callback(self._run_done)
        return viewer

    def _run_done(self, task: asyncio.Task[None]) -> None:
        # Forget the finished run: its frames (and the viewers they name) can go.
        if self._task is task:
            self._task = None

    def remove(self, viewer: Viewer) -> None:
        """Forget a viewer; the run stops when no viewer is left."""
        viewer.close()
        self.viewers.discard(viewer)
        if not self.viewers and self._task is not None:
            self._task.cancel()

    async def close(self) -> None:
        """Stop the run and every viewer."""
        tasks = [v.task for v in self.viewers if v.task is not None]
        for viewer in list(self.viewers):
            self.remove(viewer)
        if self._task is not None:
            self._task.cancel()
            tasks.append(self._task)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _remember(self, item: Released) -> None:
        """Keep the units since the latest RAP for viewers that join mid-stream."""
        if item.unit.rap:
            self._cache = []
            self._cache_bytes = 0
            self._cache_valid = True
        if not self._cache_valid:
            return
        self._cache.append(item)
        self._cache_bytes += len(item.unit.payload)
        if self._cache_bytes > self.max_cache_bytes:  # joiners wait for the next RAP instead
            self._cache = []
            self._cache_bytes = 0
            self._cache_valid = False

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        run = None
        self.stats.runs += 1
        try:
            run = await self.source.start()
            self.header = run.header
            for viewer in self.viewers:
                viewer.start_run(run.header)
            start = loop.time()
            async for timed in run:
                if timed.due is not None:
                    wait = start + timed.due - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                item = Released(timed.unit, time.time(), timed.capture)
                self.stats.units_released += 1
                self._remember(item)
                for viewer in list(self.viewers):
                    viewer.offer(item)
            for viewer in self.viewers:
                viewer.finish()
        except asyncio.CancelledError:
            raise
        except (NvcError, OSError, ValueError) as e:
            text = " ".join(str(e).split()) or type(e).__name__
            log.error("stream source failed: %s", text)
            self.stats.errors.append(text)
            self.failed.set()
            for viewer in self.viewers:
                viewer.finish()
        finally:
            self.header = None
            self._cache = []
            self._cache_bytes = 0
            self._cache_valid = False
            if run is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(run.aclose())

    def summary(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "runs": self.stats.runs,
            "units_released": self.stats.units_released,
            "viewers": len(self.viewers),
            "viewers_total": self.stats.viewers_total,
            "errors": list(self.stats.errors),
            "per_viewer": [v.summary() for v in sorted(self.viewers, key=lambda v: v.number)],
        }

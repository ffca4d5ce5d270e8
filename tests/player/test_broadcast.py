"""The broadcast with fake channels: clock, late joiners, slow viewers, drops, runs."""

from __future__ import annotations

import asyncio
from fractions import Fraction

from nvc.bitstream import Lost, Reassembler, SequenceHeader, Unit, UnitType
from nvc.player import wire
from nvc.player.broadcast import Broadcast, ViewerConfig
from nvc.player.source import TimedUnit
from tests.player.helpers import run

HEADER = SequenceHeader(
    codec_id=9001, codec_params=b"", width=16, height=16, fps=Fraction(100), pix_fmt="yuv420p"
)


class FakeChannel:
    """Records what is sent; `stuck` makes it buffer everything (a viewer that stops reading)."""

    def __init__(self) -> None:
        self.sent: list[bytes | str] = []
        self.bufferedAmount = 0
        self.readyState = "open"
        self.stuck = False

    def send(self, data: bytes | str) -> None:
        self.sent.append(data)
        if self.stuck:
            self.bufferedAmount += len(data)

    def drain(self) -> None:
        self.stuck = False
        self.bufferedAmount = 0

    def received(self) -> tuple[list[Unit | Lost], list[wire.Control | None]]:
        r = Reassembler(start_seq=0, resync=True)
        out: list[Unit | Lost] = []
        controls = []
        for m in self.sent:
            if isinstance(m, str):
                controls.append(wire.decode(m))
            else:
                out += r.push(m)
        return out + r.flush(), controls


class ListSource:
    live = False

    def __init__(self, units: list[Unit], fps: int = 100) -> None:
        self.units, self.fps = units, fps
        self.starts = 0

    async def start(self):
        self.starts += 1
        units, fps = self.units, self.fps

        class Run:
            header = HEADER

            async def __aiter__(self):
                for u in units:
                    yield TimedUnit(u, u.pts / fps)

            async def aclose(self):
                pass

        return Run()

    def describe(self):
        return {"kind": "list"}


def gop_units(n: int, gop: int = 5, size: int = 100) -> list[Unit]:
    return [Unit(UnitType.FRAME, bytes([i % 256]) * size, i, i % gop == 0) for i in range(n)]


def frames(out: list[Unit | Lost]) -> list[Unit]:
    return [u for u in out if isinstance(u, Unit) and u.type == UnitType.FRAME]


async def until(condition, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.005)


def test_every_viewer_gets_header_then_the_whole_stream_then_end():
    async def go():
        source = ListSource(gop_units(20))
        b = Broadcast(source, wait_for=2)
        a_ch, b_ch = FakeChannel(), FakeChannel()
        va = b.add(a_ch)
        await asyncio.sleep(0.05)
        assert not b.running  # waits for the second viewer
        vb = b.add(b_ch)
        await until(lambda: va.done.is_set() and vb.done.is_set())
        await b.close()
        return a_ch, b_ch

    a_ch, b_ch = run(go(), 10)
    for ch in (a_ch, b_ch):
        out, controls = ch.received()
        assert out[0].type == UnitType.SEQUENCE_HEADER
        assert SequenceHeader.from_unit(out[0]) == HEADER
        assert [u.pts for u in frames(out)] == list(range(20))
        assert out[-1].type == UnitType.END
        assert isinstance(controls[0], wire.Hello)
        timings = [c for c in controls if isinstance(c, wire.Timing)]
        assert [t.pts for t in timings] == list(range(20))
        assert not any(isinstance(c, wire.Skip) for c in controls)


def test_a_late_viewer_starts_at_the_latest_rap():
    async def go():
        b = Broadcast(ListSource(gop_units(40)))
        first, late = FakeChannel(), FakeChannel()
        v1 = b.add(first)
        await until(lambda: b.stats.units_released >= 13)
        released = b.stats.units_released
        v2 = b.add(late)
        await until(lambda: v1.done.is_set() and v2.done.is_set())
        await b.close()
        return first, late, released

    first, late, released = run(go(), 10)
    assert [u.pts for u in frames(first.received()[0])] == list(range(40))
    out, _ = late.received()
    assert out[0].type == UnitType.SEQUENCE_HEADER
    got = [u.pts for u in frames(out)]
    latest_rap = (released - 1) // 5 * 5
    assert got == list(range(latest_rap, 40)) and got[0] > 0
    assert not any(isinstance(u, Lost) for u in out)


def test_a_slow_viewer_is_skipped_to_the_next_rap_without_holding_back_the_others():
    async def go():
        config = ViewerConfig(high_water=2000, low_water=500, max_lag=0.05)
        b = Broadcast(ListSource(gop_units(60, size=300)), config)
        fast, slow = FakeChannel(), FakeChannel()
        vf = b.add(fast)
        vs = b.add(slow)
        await until(lambda: b.stats.units_released >= 5)
        slow.stuck = True  # stops reading
        await until(lambda: b.stats.units_released >= 30)
        slow.drain()
        await until(lambda: vf.done.is_set() and vs.done.is_set())
        await b.close()
        return fast, slow, vs.stats

    fast, slow, stats = run(go(), 10)
    assert [u.pts for u in frames(fast.received()[0])] == list(range(60))
    out, controls = slow.received()
    assert not any(isinstance(u, Lost) for u in out)  # seqs stay contiguous
    skips = [c for c in controls if isinstance(c, wire.Skip)]
    assert stats.skips >= 1 and stats.units_skipped > 0
    assert sum(s.units for s in skips) == stats.units_skipped
    got = frames(out)
    assert len(got) + stats.units_skipped == 60
    # after every gap the viewer resumes at a random-access point
    for prev, unit in zip(got, got[1:], strict=False):
        if unit.pts != prev.pts + 1:
            assert unit.rap
    assert got[-1].pts == 59


def test_dropping_messages_and_repeating_the_header_for_lossy_channels():
    async def go():
        config = ViewerConfig(drop_rate=0.3, seed=1, header_every=0.0)
        b = Broadcast(ListSource(gop_units(30)), config)
        ch = FakeChannel()
        v = b.add(ch)
        await until(lambda: v.done.is_set())
        await b.close()
        return ch, v.stats

    ch, stats = run(go(), 10)
    assert stats.messages_dropped > 0
    out, _ = ch.received()
    headers = [u for u in out if isinstance(u, Unit) and u.type == UnitType.SEQUENCE_HEADER]
    assert len(headers) >= 2  # repeated before random-access points
    assert any(isinstance(u, Lost) for u in out)


def test_the_run_stops_with_the_last_viewer_and_a_new_viewer_starts_again():
    async def go():
        source = ListSource(gop_units(500))
        b = Broadcast(source)
        v = b.add(FakeChannel())
        await until(lambda: b.stats.units_released >= 3)
        b.remove(v)
        await until(lambda: not b.running)
        ch = FakeChannel()
        v2 = b.add(ch)
        await until(lambda: b.stats.units_released >= 8)
        assert b.running and source.starts == 2
        b.remove(v2)
        await b.close()
        assert not b.viewers and not b.running
        return ch

    ch = run(go(), 10)
    assert frames(ch.received()[0])[0].pts == 0  # the new run starts from the beginning


def test_a_skip_while_the_sender_waits_for_room_does_not_stop_the_viewer():
    async def go():
        config = ViewerConfig(high_water=1000, low_water=500, max_lag=0.02)
        b = Broadcast(ListSource(gop_units(60, gop=1000, size=300)), config)  # one RAP
        ch = FakeChannel()
        v = b.add(ch)
        await until(lambda: b.stats.units_released >= 3)
        ch.stuck = True  # the sender now waits for room while offer() skips its queue
        await until(lambda: v.stats.skips >= 1)
        await asyncio.sleep(0.1)
        ch.drain()  # the queue is empty (no RAP came since): the sender must not choke
        await until(lambda: v.done.is_set())
        await b.close()
        return ch, v

    ch, v = run(go(), 10)
    out, _ = ch.received()
    assert out[-1].type == UnitType.END  # the sender lived on to the end of the stream
    assert v.stats.units_skipped > 0


def run_bounded(coro, timeout: float):
    """Run `coro` in a thread of its own: a busy-looping event loop (which asyncio's own
    timeouts cannot interrupt) fails the test instead of hanging it."""
    import threading

    result: list = []
    thread = threading.Thread(target=lambda: result.append(run(coro, timeout)), daemon=True)
    thread.start()
    thread.join(timeout + 5)
    assert not thread.is_alive(), "the event loop hung"
    return result[0]


def test_a_viewer_skipped_just_before_the_end_gets_the_skip_count_and_the_end():
    """Skipped while the sender waited for room, with only END left in its queue: the
    sender must send END (it once spun forever) and report the units it left out."""

    async def go():
        config = ViewerConfig(high_water=1000, low_water=500, max_lag=0.05)
        b = Broadcast(ListSource(gop_units(30, size=300)), config)
        ch = FakeChannel()
        v = b.add(ch)
        await until(lambda: b.stats.units_released >= 24)
        ch.stuck = True
        await until(lambda: not b.running)  # the source ended; END waits in the queue
        await asyncio.sleep(0.2)  # longer than max_lag
        ch.drain()
        await until(lambda: v.done.is_set())
        await b.close()
        return ch, v.stats

    ch, stats = run_bounded(go(), 10)
    out, controls = ch.received()
    assert out[-1].type == UnitType.END
    assert stats.units_skipped > 0
    assert sum(c.units for c in controls if isinstance(c, wire.Skip)) == stats.units_skipped
    assert len(frames(out)) + stats.units_skipped == 30


def test_a_channel_that_stays_full_past_the_stall_timeout_is_dropped():
    async def go():
        config = ViewerConfig(high_water=1000, low_water=500, stall_timeout=0.3)
        b = Broadcast(ListSource(gop_units(1000)), config)  # 10 s of units
        stuck, fine = FakeChannel(), FakeChannel()
        v_stuck, v_fine = b.add(stuck), b.add(fine)
        await until(lambda: b.stats.units_released >= 5)
        stuck.stuck = True
        loop = asyncio.get_running_loop()
        since = loop.time()
        await until(lambda: v_stuck.done.is_set(), timeout=5)
        took = loop.time() - since
        state = (v_stuck.task.done(), v_fine.done.is_set(), b.running)
        await b.close()
        return took, state

    took, (stuck_task_done, fine_done, running) = run_bounded(go(), 10)
    assert 0.3 <= took < 2.0
    assert stuck_task_done and not fine_done and running  # the other viewer plays on


def test_joiners_wait_for_the_next_rap_when_the_cache_is_over_its_cap():
    async def go(cap: int):
        b = Broadcast(ListSource(gop_units(40, size=100)), max_cache_bytes=cap)
        first, late = FakeChannel(), FakeChannel()
        v1 = b.add(first)
        await until(lambda: b.stats.units_released >= 13)
        released = b.stats.units_released
        v2 = b.add(late)
        await until(lambda: v1.done.is_set() and v2.done.is_set())
        await b.close()
        return released, [u.pts for u in frames(late.received()[0])]

    released, got = run(go(250), 10)  # 3 units since a RAP exceed 250 bytes
    assert got[0] == ((released - 1) // 5 + 1) * 5 and got == list(range(got[0], 40))
    released, got = run(go(1000), 10)  # under the cap: the latest RAP at once
    assert got[0] == (released - 1) // 5 * 5 and got == list(range(got[0], 40))

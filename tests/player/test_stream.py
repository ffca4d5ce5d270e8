"""Real aiortc peers on loopback: a server, players, files and live sources."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import weakref
from fractions import Fraction

import pytest

from nvc.media import open_video
from nvc.player.broadcast import ViewerConfig
from nvc.player.pattern import read_counter
from nvc.player.player import Player, PlayerConfig
from nvc.player.source import FileSource, LiveConfig, LiveSource
from tests.player.helpers import Serving, digest, reference, run


class Collect:
    """Keeps the digest of every presented frame by pts."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, str]] = []

    def __call__(self, frame) -> None:
        self.frames.append((frame.pts, digest(frame)))


def test_a_served_file_plays_bit_exact_like_nvc_decode(lossless_file, tmp_path):
    out = tmp_path / "played.y4m"

    async def go():
        async with Serving(FileSource(lossless_file)) as (server, url):
            player = Player(PlayerConfig(url, output=str(out), drop_late=False))
            stats = await player.run()
            info = server.info()
        return stats, info

    stats, info = run(go())
    expected = reference(lossless_file)
    with open_video(out) as reader:
        got = list(reader)
    assert len(got) == len(expected) == 25
    assert all(a.equal(b) for a, b in zip(got, expected, strict=True))
    assert stats.frames_presented == 25 and stats.units_lost == 0 and stats.units_skipped == 0
    assert stats.end_reason == "end of stream"
    assert stats.decode_fps and stats.bitrate_kbps and len(stats.latencies_ms) == 25
    assert info["stream"]["codec"] == "lossless" and info["stream"]["width"] == 64


def test_four_players_get_the_whole_stream_and_a_late_one_starts_at_a_rap(gop_file):
    expected = [digest(f) for f in reference(gop_file)]

    async def go():
        async with Serving(FileSource(gop_file), wait_for=4) as (server, url):
            collectors = [Collect() for _ in range(5)]
            players = [Player(PlayerConfig(url, drop_late=False), on_frame=c) for c in collectors]
            tasks = [asyncio.create_task(p.run()) for p in players[:4]]
            while server.broadcast.stats.units_released < 12:
                await asyncio.sleep(0.02)
            late = asyncio.create_task(players[4].run())
            await asyncio.gather(*tasks, late)
        return players, collectors

    players, collectors = run(go(), 40)
    for player, c in zip(players[:4], collectors[:4], strict=False):
        assert [pts for pts, _ in c.frames] == list(range(40))
        assert [d for _, d in c.frames] == expected
        assert player.stats.units_lost == 0
    late, c = players[4], collectors[4]
    first = late.stats.first_rap_pts
    assert first is not None and first > 0 and first % 5 == 0  # a random-access point
    assert [pts for pts, _ in c.frames] == list(range(first, 40))
    assert [d for _, d in c.frames] == expected[first:]


@pytest.mark.parametrize("ordered", [True, False])
def test_a_lossy_channel_resumes_at_the_next_rap_and_never_shows_a_bad_frame(gop_file, ordered):
    expected = [digest(f) for f in reference(gop_file)]
    config = ViewerConfig(
        ordered=ordered, max_retransmits=0, drop_rate=0.15, seed=3, header_every=0.5
    )

    async def go():
        async with Serving(FileSource(gop_file), config) as (server, url):
            collect = Collect()
            player = Player(PlayerConfig(url, drop_late=False, idle_timeout=1.0), on_frame=collect)
            stats = await player.run()
        return stats, collect

    stats, collect = run(go(), 30)
    assert stats.units_lost > 0 and stats.loss_events > 0
    assert stats.units_skipped > 0  # withheld until the next random-access point
    assert stats.frames_presented > 5
    for pts, d in collect.frames:
        assert d == expected[pts], f"frame {pts} is not the decoded frame"
    shown = [pts for pts, _ in collect.frames]
    assert shown == sorted(shown)
    assert len(shown) + stats.units_skipped + stats.units_lost >= 40 - 1  # all accounted for


class _Sink:
    """A channel that keeps what a viewer sends (for replaying a seeded drop pattern)."""

    bufferedAmount = 0
    readyState = "open"

    def __init__(self) -> None:
        self.sent: list[bytes | str] = []

    def send(self, data: bytes | str) -> None:
        self.sent.append(data)


def expected_playback(path, config: ViewerConfig) -> list[tuple[int, str]]:
    """What a player must show of `path` served with `config`: the server's first viewer
    replayed offline (its seeded drops included) into a reassembler, then decoded like
    the player does: a fresh decoder at the first RAP after a loss, nothing in between."""
    from nvc.bitstream import Lost, Reassembler, SequenceHeader, UnitType
    from nvc.codec import registry
    from nvc.player.broadcast import Released, Viewer
    from tests.player.helpers import file_units

    header, units = file_units(path)

    async def replay() -> list[bytes | str]:
        sink = _Sink()
        viewer = Viewer(sink, config, 1)
        viewer.start_run(header)
        for unit in units:
            viewer.offer(Released(unit, 0.0, None))
        viewer.finish()
        await viewer.run()
        return sink.sent

    reassembler = Reassembler(window=1, start_seq=0, resync=True)
    items = []
    for message in run(replay()):
        if isinstance(message, bytes):
            items += reassembler.push(message)
    items += reassembler.flush()
    shown: list[tuple[int, str]] = []
    decoder, dirty, known = None, False, None
    for item in items:
        if isinstance(item, Lost):
            dirty = dirty or item.reason != "skipped"  # "skipped": withheld until a RAP
            continue
        if item.type == UnitType.SEQUENCE_HEADER:
            known = SequenceHeader.from_unit(item)
            if decoder is None:
                decoder = registry.get(known.codec_id).create_decoder(known)
            continue
        if item.type == UnitType.END or known is None or (dirty and not item.rap):
            continue
        if item.rap and (dirty or decoder is None):
            if decoder is not None:
                shown += [(f.pts, digest(f)) for f in decoder.decode(None)]
            decoder, dirty = registry.get(known.codec_id).create_decoder(known), False
        shown += [(f.pts, digest(f)) for f in decoder.decode(item)]
    if decoder is not None:
        shown += [(f.pts, digest(f)) for f in decoder.decode(None)]
    return shown


@pytest.mark.parametrize("codec", ["testgop", "fm", "inr"])
def test_a_lossy_channel_shows_exactly_the_frames_that_decode_from_whole_units(
    neural_files, gop_file, codec
):
    """Seeded drops on the real codecs: the frames shown are exactly those a decoder makes
    from the units that arrived whole (from each RAP after a loss), bit for bit."""
    path = gop_file if codec == "testgop" else neural_files[codec]
    config = ViewerConfig(drop_rate=0.2, seed=5, header_every=0.0)
    expected = expected_playback(path, config)
    collect = Collect()

    async def go():
        async with Serving(FileSource(path), config) as (server, url):
            player = Player(PlayerConfig(url, drop_late=False, idle_timeout=1.0), on_frame=collect)
            return await player.run()

    stats = run(go(), 60)
    assert stats.units_lost > 0 and stats.units_skipped > 0, stats.summary()
    assert stats.units_skipped_by_server == 0
    assert collect.frames == expected
    reference_frames = [(f.pts, digest(f)) for f in reference(path)]
    assert 0 < len(expected) < len(reference_frames)
    assert set(expected) <= set(reference_frames)  # each is the frame `nvc decode` makes


def test_live_testsrc_is_encoded_served_and_played_with_latency_measured():
    config = LiveConfig("testsrc", "lossless", size=(96, 64), fps=Fraction(30), frames=45)
    source = LiveSource(config)
    seen: list[tuple[int, int]] = []

    async def go():
        async with Serving(source) as (server, url):
            player = Player(
                PlayerConfig(url),
                on_frame=lambda f: seen.append((f.pts, read_counter(f.planes[0]))),
            )
            return await player.run()

    stats = run(go(), 30)
    assert stats.frames_presented >= 30
    assert all(pts == counter for pts, counter in seen)  # the right picture for each pts
    assert stats.latencies_ms and 0 < stats.summary()["latency_ms_median"] < 1000
    summary = source.stats.summary()
    assert summary["frames_encoded"] >= 30 and summary["encode_ms_median"] > 0


def test_viewers_come_and_go_without_leaking_peers_or_tasks(lossless_file):
    async def go():
        async with Serving(FileSource(lossless_file, loop=True)) as (server, url):
            await asyncio.sleep(0)
            baseline = len(asyncio.all_tasks())
            refs = []
            for _ in range(3):
                player = Player(PlayerConfig(url, max_frames=4))
                stats = await player.run()
                assert stats.frames_presented == 4
                refs += [weakref.ref(p.pc) for p in server.peers]
                for _ in range(200):  # the server notices the hang-up
                    if not server.peers:
                        break
                    await asyncio.sleep(0.02)
            assert not server.peers and not server.broadcast.viewers
            assert not server.broadcast.running
            for _ in range(100):
                gc.collect()
                if len(asyncio.all_tasks()) <= baseline and all(r() is None for r in refs):
                    break
                await asyncio.sleep(0.05)
            return baseline, len(asyncio.all_tasks()), [r() for r in refs]

    baseline, tasks, alive = run(go(), 40)
    assert tasks <= baseline
    assert alive and all(pc is None for pc in alive)


def test_a_stalled_player_is_skipped_to_a_rap_while_the_other_plays_on(tmp_path):
    from tests.player.helpers import make_file

    path = make_file(tmp_path / "slow.nvc", frames=100, size=(160, 96), codec="testgop")
    expected = [digest(f) for f in reference(path)]
    slow_result: list = []

    def slow_player(url: str) -> None:
        async def go():
            collect = Collect()
            player = Player(PlayerConfig(url, drop_late=False), on_frame=collect)

            async def stall():
                await asyncio.sleep(0.6)
                time.sleep(1.5)  # this player's event loop stops: nothing read or acknowledged

            stalling = asyncio.create_task(stall())
            stats = await player.run()
            await stalling
            slow_result.append((stats, collect))

        asyncio.run(asyncio.wait_for(go(), 40))

    async def go():
        # max_lag leaves the other player room on a busy machine
        config = ViewerConfig(max_lag=0.6, high_water=128 << 10, low_water=32 << 10)
        async with Serving(FileSource(path), config, wait_for=2) as (server, url):
            thread = threading.Thread(target=slow_player, args=(url,))
            thread.start()
            collect = Collect()
            stats = await Player(PlayerConfig(url, drop_late=False), on_frame=collect).run()
            await asyncio.to_thread(thread.join, 45)
            return stats, collect

    fast, fast_frames = run(go(), 50)
    assert [pts for pts, _ in fast_frames.frames] == list(range(100)), str(fast.summary())
    assert fast.units_skipped_by_server == 0 and fast.frames_dropped == 0
    slow, slow_frames = slow_result[0]
    assert slow.units_skipped_by_server > 0, slow.end_reason
    shown = [pts for pts, _ in slow_frames.frames]
    assert all(d == expected[pts] for pts, d in slow_frames.frames)
    gaps = [b for a, b in zip(shown, shown[1:], strict=False) if b != a + 1]
    assert gaps and all(pts % 5 == 0 for pts in gaps)  # resumed at random-access points
    assert len(shown) + slow.units_skipped_by_server == 100


def test_a_slow_starting_decoder_delays_playback_instead_of_fast_forwarding(tmp_path):
    """The units pile up while the decoder starts; then they are shown at the stream's
    rate, all of them (the clock starts at the first decoded frame)."""
    from dataclasses import dataclass

    from nvc.codec import registry
    from nvc.codec.base import CodecSpec
    from tests.player.helpers import GopDecoder, GopEncoder, make_file

    @dataclass(frozen=True)
    class Cfg:
        gop: int = 5

    def slow_decoder(header):
        time.sleep(0.8)  # like importing torch and building a network
        return GopDecoder(header)

    spec = CodecSpec(9003, "testslow", "test", Cfg, GopEncoder, slow_decoder)
    registry.register(spec)
    try:
        path = make_file(tmp_path / "slow.nvc", frames=25, codec="testslow")
        shown: list[tuple[int, float]] = []

        async def go():
            loop = asyncio.get_running_loop()
            async with Serving(FileSource(path)) as (server, url):
                player = Player(
                    PlayerConfig(url), on_frame=lambda f: shown.append((f.pts, loop.time()))
                )
                return await player.run()

        stats = run(go(), 30)
    finally:
        registry.unregister(spec)
    assert [pts for pts, _ in shown] == list(range(25)), stats.summary()
    assert stats.frames_dropped == 0
    span = shown[-1][1] - shown[0][1]
    assert span == pytest.approx(24 / 25, abs=0.15)  # real time, not the decoder's speed


def test_after_a_stall_a_live_player_returns_to_the_live_edge():
    config = LiveConfig("testsrc", "lossless", size=(96, 64), fps=Fraction(30), frames=150)
    result: list = []

    def stalling_player(url: str) -> None:
        async def go():
            player = Player(PlayerConfig(url))

            async def stall():
                await asyncio.sleep(0.8)
                time.sleep(1.2)  # the player's event loop stops

            stalling = asyncio.create_task(stall())
            stats = await player.run()
            await stalling
            result.append(stats)

        asyncio.run(asyncio.wait_for(go(), 30))

    async def go():
        async with Serving(LiveSource(config)) as (server, url):
            thread = threading.Thread(target=stalling_player, args=(url,))
            thread.start()
            await asyncio.to_thread(thread.join, 35)

    run(go(), 40)
    stats = result[0]
    latencies = list(stats.latencies_ms)
    assert max(latencies) > 1000  # the stall
    assert stats.clock_resets >= 1 and stats.frames_dropped > 0
    assert max(latencies[-20:]) < 400  # back near the live edge at the end

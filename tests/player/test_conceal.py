"""Damage, hostile messages, mid-stream changes and slow decoders, on real loopback peers:
the player counts and conceals them and plays on (never a wrong frame)."""

from __future__ import annotations

import asyncio
import time
import zlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest

from nvc.bitstream import SequenceHeader, Unit, UnitType, Writer
from nvc.codec import registry
from nvc.codec.base import CodecSpec
from nvc.media import open_video
from nvc.player.player import Player, PlayerConfig, segment_path
from nvc.player.source import FileSource
from tests.player.helpers import (
    GopDecoder,
    GopEncoder,
    ScriptedSource,
    Serving,
    digest,
    file_units,
    make_file,
    reference,
    run,
)


class Collect:
    def __init__(self) -> None:
        self.frames: list[tuple[int, str]] = []

    def __call__(self, frame) -> None:
        self.frames.append((frame.pts, digest(frame)))

    @property
    def pts(self) -> list[int]:
        return [p for p, _ in self.frames]


@dataclass(frozen=True)
class Cfg:
    gop: int = 5


def play(source, config_kw=None, timeout: float = 30.0):
    """Serve `source`, play it with one player; (stats, collected frames)."""
    collect = Collect()

    async def go():
        async with Serving(source) as (_, url):
            player = Player(PlayerConfig(url, **(config_kw or {})), on_frame=collect)
            return await player.run()

    return run(go(), timeout), collect


def rewrite(src: Path, dst: Path, damage: dict[int, bytes]) -> Path:
    """`src` with the payloads of the units at the given pts replaced, written by the
    container writer: the container's CRCs are right, only the codec can tell."""
    header, units = file_units(src)
    with Writer(dst, header) as w:
        for u in units:
            w.write(Unit(u.type, damage.get(u.pts, u.payload), u.pts, u.rap))
    return dst


def test_hostile_control_messages_are_dropped_and_counted_and_playback_goes_on(gop_file):
    hostile = [
        "[" * 1100,  # nested too deeply for json
        "{" * 3000,
        '{"a":' * 900 + "1" + "}" * 900,
        "x" * 10_000,  # too long
        "1" * 4000,  # too many digits for int()
        "null",
        '{"type": "unit", "seq": -1, "pts": 0, "at": 1}',
        '{"type": "unit", "seq": 1, "pts": 1e999, "at": 1}',
        '{"type": "skip", "units": "many"}',
    ]
    expected = [digest(f) for f in reference(gop_file)]
    collect = Collect()

    async def go():
        async with Serving(FileSource(gop_file)) as (server, url):
            add = server.broadcast.add

            def not_utf8(channel) -> None:
                # a text message (PPID 51) that is not UTF-8: aiortc's send cannot make one
                from aiortc.rtcsctptransport import WEBRTC_STRING

                sctp = channel.transport
                sctp._data_channel_queue.append((channel, WEBRTC_STRING, b"\xff\xfe{"))
                asyncio.ensure_future(sctp._data_channel_flush())

            def hostile_add(channel):
                for text in hostile:  # before the hello, and again mid-stream
                    channel.send(text)
                loop = asyncio.get_running_loop()
                loop.call_later(0.5, lambda: [channel.send(t) for t in hostile])
                loop.call_later(0.7, not_utf8, channel)
                return add(channel)

            server.broadcast.add = hostile_add
            player = Player(PlayerConfig(url, drop_late=False), on_frame=collect)
            return await player.run()

    stats = run(go(), 30)
    assert stats.control_rejected == 2 * len(hostile) + 1
    assert stats.end_reason == "end of stream"
    assert collect.pts == list(range(40))
    assert [d for _, d in collect.frames] == expected
    assert len(stats.latencies_ms) == 40  # the timing messages after the junk still count


def flip(payload: bytes, at: float = 0.5) -> bytes:
    """The payload with one byte changed."""
    damaged = bytearray(payload)
    damaged[int(len(damaged) * at)] ^= 0x55
    return bytes(damaged)


def test_payloads_damaged_under_a_valid_container_crc_are_counted_and_concealed(tmp_path):
    """Lossless (FFV1 with enforced slice CRCs and a frame checksum) refuses changed and
    truncated frames: those are not shown, the others are, each exactly the decoder's."""
    src = make_file(tmp_path / "ll.nvc", frames=20)
    _, units = file_units(src)
    damage = {3: flip(units[3].payload), 7: units[7].payload[:-600], 11: flip(units[11].payload)}
    damaged = rewrite(src, tmp_path / "damaged.nvc", damage)
    expected = [digest(f) for f in reference(src)]
    stats, collect = play(FileSource(damaged), {"drop_late": False})
    assert stats.decode_errors == 3
    assert collect.pts == [p for p in range(20) if p not in damage]
    assert all(d == expected[p] for p, d in collect.frames)
    assert stats.end_reason == "end of stream"


def test_a_damaged_fm_payload_is_concealed_to_the_next_rap(neural_files, tmp_path):
    """fm's frame checksum catches a changed intra frame: its group is skipped, no wrong
    frame is shown (the issue saw two wrong fm frames with decode_errors 0)."""
    src = neural_files["fm"]  # 16 frames, a RAP every 4
    _, units = file_units(src)
    damaged = rewrite(src, tmp_path / "fm.nvc", {4: flip(units[4].payload)})
    expected = [digest(f) for f in reference(src)]
    stats, collect = play(FileSource(damaged), {"drop_late": False}, timeout=60)
    assert stats.decode_errors == 1 and stats.units_skipped == 3
    assert collect.pts == [0, 1, 2, 3] + list(range(8, 16))
    assert all(d == expected[p] for p, d in collect.frames)


def test_any_decoder_exception_skips_to_the_next_rap(gop_file, tmp_path):
    """The test codec's decoder raises zlib.error (not an NvcError) on a damaged delta."""
    _, units = file_units(gop_file)
    bad = bytearray(units[12].payload)
    bad[len(bad) // 2] ^= 0x55
    damaged = rewrite(gop_file, tmp_path / "damaged.nvc", {12: bytes(bad)})
    with pytest.raises(zlib.error):
        zlib.decompress(bytes(bad))
    expected = [digest(f) for f in reference(gop_file)]
    stats, collect = play(FileSource(damaged), {"drop_late": False})
    assert stats.decode_errors == 1 and stats.units_skipped == 2  # 13 and 14
    assert collect.pts == list(range(12)) + list(range(15, 40))
    assert all(d == expected[p] for p, d in collect.frames)


def test_bad_mid_stream_headers_are_loss_and_playback_resumes_at_a_rap(tmp_path):
    def broken_decoder(header):
        raise RuntimeError("this codec cannot be built")

    broken = CodecSpec(9005, "testbroken", "test", Cfg, GopEncoder, broken_decoder)
    registry.register(broken)
    try:
        path = make_file(tmp_path / "g.nvc", frames=50, codec="testgop")
        header, units = file_units(path)
        unknown = SequenceHeader(4242, b"", 64, 48, Fraction(25), "yuv420p").to_unit()
        malformed = Unit(UnitType.SEQUENCE_HEADER, b"\x01\x02garbage")
        unbuildable = SequenceHeader(9005, b"", 64, 48, Fraction(25), "yuv420p").to_unit()
        script = units[:22] + [unknown] + units[22:32] + [malformed]
        script += units[32:42] + [unbuildable] + units[42:]
        expected = [digest(f) for f in reference(path)]
        stats, collect = play(ScriptedSource(header, script), {"drop_late": False})
    finally:
        registry.unregister(broken)
    assert stats.header_errors == 3 and stats.end_reason == "end of stream"
    shown = list(range(22)) + list(range(25, 32)) + list(range(35, 42)) + list(range(45, 50))
    assert collect.pts == shown
    assert all(d == expected[p] for p, d in collect.frames)
    assert stats.units_skipped == 9


def test_a_size_change_while_recording_starts_a_new_segment(tmp_path):
    a = make_file(tmp_path / "a.nvc", frames=10, size=(64, 48), codec="testgop")
    b = make_file(tmp_path / "b.nvc", frames=10, size=(32, 32), codec="testgop", seed=1)
    header_a, units_a = file_units(a)
    header_b, units_b = file_units(b, pts_offset=10)
    out = tmp_path / "rec.y4m"
    source = ScriptedSource(header_a, units_a + [header_b.to_unit()] + units_b)
    stats, collect = play(source, {"drop_late": False, "output": str(out)})
    second = tmp_path / "rec-2.y4m"
    assert stats.recordings == [str(out), str(second)]
    for path, ref in ((out, reference(a)), (second, reference(b))):
        with open_video(path) as reader:
            got = list(reader)
        assert len(got) == 10 and all(x.equal(y) for x, y in zip(got, ref, strict=True))
    assert collect.pts == list(range(20))


def test_segment_names():
    assert segment_path("out.y4m", 1) == "out.y4m"
    assert segment_path("dir/out.y4m", 2) == "dir/out-2.y4m"
    assert segment_path("frames/", 3) == "frames-3/"
    assert segment_path("rec.mkv", 2) == "rec-2.mkv"


@pytest.mark.parametrize(
    "bound",
    [
        {"max_latency": 0.3},
        # --no-drop never drops for lateness, but the memory bound still holds (about 8
        # units of ~2.3 KB waiting)
        {"drop_late": False, "max_latency": None, "max_backlog_bytes": 20_000},
    ],
    ids=["max_latency", "max_backlog_bytes"],
)
def test_a_decoder_slower_than_real_time_stays_within_the_latency_bound(tmp_path, bound):
    """Decoding takes 1.75 frame intervals a frame: without dropping, latency would grow by
    about 1.8 s over the 2.4 s stream; with max_latency 0.3 (or a small backlog in bytes)
    the player drops to RAPs."""

    class SlowDecoder(GopDecoder):
        def decode(self, unit):
            time.sleep(0.07)
            return super().decode(unit)

    spec = CodecSpec(9006, "testsleepy", "test", Cfg, GopEncoder, SlowDecoder)
    registry.register(spec)
    try:
        path = make_file(tmp_path / "slow.nvc", frames=60, codec="testsleepy")
        # the same units under the fast decoder: what each frame must be
        fast = make_file(tmp_path / "fast.nvc", frames=60, codec="testgop")
        expected = [digest(f) for f in reference(fast)]
        stats, collect = play(FileSource(path), bound, timeout=40)
    finally:
        registry.unregister(spec)
    assert stats.latency_drops > 0 and stats.units_dropped_late > 0, stats.summary()
    assert all(d == expected[p] for p, d in collect.frames)
    shown = collect.pts
    assert len(shown) >= 10
    gaps = [b for a, b in zip(shown, shown[1:], strict=False) if b != a + 1]
    assert gaps and all(p % 5 == 0 for p in gaps)  # resumed at random-access points
    latencies = list(stats.latencies_ms)
    # bounded: max_latency + a decode + the playout delay, with room for a busy machine
    # (without dropping: growing to about 1900 ms, median about 1000 ms)
    assert sorted(latencies)[len(latencies) // 2] < 700, latencies
    assert max(latencies) < 1200, latencies


def test_a_size_change_while_recording_to_a_fifo_stops_the_recording_and_keeps_it(tmp_path):
    import os
    import threading

    a = make_file(tmp_path / "a.nvc", frames=6, size=(64, 48), codec="testgop")
    b = make_file(tmp_path / "b.nvc", frames=6, size=(32, 32), codec="testgop", seed=1)
    header_a, units_a = file_units(a)
    header_b, units_b = file_units(b, pts_offset=6)
    fifo = tmp_path / "rec.y4m"
    os.mkfifo(fifo)
    received = bytearray()

    def drain() -> None:
        with open(fifo, "rb") as f:
            while chunk := f.read(65536):
                received.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    source = ScriptedSource(header_a, units_a + [header_b.to_unit()] + units_b)
    stats, collect = play(source, {"drop_late": False, "output": str(fifo)})
    reader.join(10)
    assert stats.recordings == [str(fifo)]
    assert collect.pts == list(range(12))  # playback goes on after the recording stopped
    copy = tmp_path / "copy.y4m"
    copy.write_bytes(bytes(received))
    with open_video(copy) as r:
        got = list(r)
    assert len(got) == 6 and all(x.equal(y) for x, y in zip(got, reference(a), strict=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nvc", "b.nvc", "copy.y4m", "rec.y4m"]

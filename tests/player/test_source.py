"""Unit sources: file pacing and looping, the test pattern, live capture and encoding."""

from __future__ import annotations

from fractions import Fraction

import pytest

from nvc.bitstream import Reader
from nvc.codec import registry
from nvc.errors import CodecError, MediaError, NvcError
from nvc.player.pattern import TestPattern, read_counter
from nvc.player.source import FileSource, LiveConfig, LiveSource, is_device
from tests.player.helpers import run


async def _collect(source, limit):
    run_ = await source.start()
    items = []
    try:
        async for item in run_:
            items.append(item)
            if len(items) >= limit:
                break
    finally:
        await run_.aclose()
    return run_.header, items


def test_file_source_times_units_by_pts_and_loops_with_growing_pts(gop_file):
    with Reader(gop_file) as r:
        units = list(r)
        header = r.header
    source = FileSource(gop_file, loop=True)
    got_header, items = run(_collect(source, 2 * len(units) + 3))
    assert got_header == header
    assert [i.unit.payload for i in items[: len(units)]] == [u.payload for u in units]
    assert [i.due for i in items[:3]] == [0.0, 0.04, 0.08]
    pts = [i.unit.pts for i in items]
    assert pts == list(range(len(pts)))  # the second loop goes on from 40
    assert items[len(units)].unit.rap and items[len(units)].due == pytest.approx(1.6)
    assert all(i.capture is None for i in items)


def test_file_source_without_loop_ends(lossless_file):
    _, items = run(_collect(FileSource(lossless_file), 1000))
    assert len(items) == 25 and items[-1].unit.pts == 24


def test_file_source_rejects_missing_files(tmp_path):
    with pytest.raises(NvcError, match="no such file"):
        FileSource(tmp_path / "nope.nvc")


def test_pattern_moves_and_carries_its_frame_number():
    pattern = TestPattern(160, 96, Fraction(30))
    a, b = pattern.frame(0), pattern.frame(45)
    assert a.format == "yuv420p" and a.pts == 0 and b.pts == 45
    assert not a.equal(b)
    assert read_counter(a.planes[0]) == 0 and read_counter(b.planes[0]) == 45
    assert TestPattern(64, 48, Fraction(25), "rgb24").frame(3).format == "rgb24"


def test_live_source_encodes_testsrc_in_real_time():
    config = LiveConfig("testsrc", "lossless", size=(64, 48), fps=Fraction(50), frames=10)
    source = LiveSource(config)
    header, items = run(_collect(source, 100))
    assert header.width == 64 and header.codec_id == registry.get("lossless").id
    assert [i.unit.pts for i in items] == list(range(10))
    assert all(i.due is None and i.capture is not None for i in items)
    captures = [i.capture for i in items]
    assert captures[-1] - captures[0] == pytest.approx(9 / 50, abs=0.05)  # paced at 50 fps
    summary = source.stats.summary()
    assert summary["frames_encoded"] == 10 and summary["encode_ms_median"] > 0


def test_live_source_opens_devices_through_pyav():
    assert is_device("lavfi:testsrc2=size=64x48:rate=25")
    assert not is_device("testsrc") and not is_device("missing.mp4")
    config = LiveConfig("lavfi:testsrc2=size=64x48:rate=25", "lossless", frames=3)
    header, items = run(_collect(LiveSource(config), 10))
    assert (header.width, header.height, header.fps) == (64, 48, 25)
    assert len(items) == 3


def test_live_source_plays_a_file_at_its_rate(lossless_file, tmp_path):
    from nvc.codec.pipeline import decode_file

    y4m = tmp_path / "clip.y4m"
    decode_file(lossless_file, y4m)
    header, items = run(_collect(LiveSource(LiveConfig(str(y4m), frames=5)), 10))
    assert header.fps == 25 and [i.unit.pts for i in items] == [0, 1, 2, 3, 4]


def test_live_source_errors_are_clear():
    with pytest.raises(CodecError):
        LiveSource(LiveConfig("testsrc", "no-such-codec"))
    with pytest.raises(MediaError, match="not 'testsrc'"):
        LiveSource(LiveConfig("nothing-here.mp4"))
    with pytest.raises(MediaError, match="capture device"):
        run(LiveSource(LiveConfig("lavfi:no_such_filter_xyz")).start())


def test_live_source_refuses_a_codec_that_holds_frames_back():
    from dataclasses import dataclass

    from nvc.codec.base import CodecSpec

    @dataclass(frozen=True)
    class Cfg:
        pass

    class Holder:
        codec_params = b""

        def __init__(self, stream, config):
            pass

        def encode(self, frame):
            return []

    spec = CodecSpec(9002, "holder", "test", Cfg, Holder, lambda h: None)  # type: ignore[arg-type,return-value]
    registry.register(spec)
    try:
        config = LiveConfig(
            "testsrc", "holder", size=(32, 32), fps=Fraction(100), max_delay_frames=3
        )

        async def go():
            run_ = await LiveSource(config).start()
            try:
                async for _ in run_:
                    pass
            finally:
                await run_.aclose()

        with pytest.raises(CodecError, match="causal"):
            run(go())
    finally:
        registry.unregister(spec)

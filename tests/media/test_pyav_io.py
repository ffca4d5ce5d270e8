"""Container files through PyAV: reading what FFmpeg writes, lossless writing, errors."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from nvc.errors import MediaError
from nvc.media import (
    Frame,
    convert,
    open_video,
    open_writer,
    psnr_yuv,
    synthetic_clip,
)
from nvc.media.pyav_io import PyAVReader, av_frame_from, target_format

from .conftest import leftovers, random_clip


def make_file(
    path: Path,
    codec: str,
    pix_fmt: str,
    frames: list[Frame],
    *,
    rate: Fraction = Fraction(25),
    options: dict[str, str] | None = None,
) -> None:
    """Encode nvc frames with PyAV directly (FFmpeg converts to `pix_fmt` if needed)."""
    container = av.open(str(path), "w")
    stream = container.add_stream(codec, rate=rate)
    stream.width, stream.height = frames[0].width, frames[0].height
    stream.pix_fmt = pix_fmt
    stream.options = options or {}
    for i, frame in enumerate(frames):
        image = av_frame_from(frame)
        if image.format.name != pix_fmt:
            image = image.reformat(format=pix_fmt)
        image.pts = i
        for packet in stream.encode(image):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()


@pytest.fixture(scope="module")
def natural() -> list[Frame]:
    return synthetic_clip(64, 48, 6, seed=3)


def test_read_mp4_libx264(tmp_path: Path, natural: list[Frame]) -> None:
    path = tmp_path / "x264.mp4"
    make_file(
        path,
        "libx264",
        "yuv420p",
        natural,
        rate=Fraction(30000, 1001),
        options={"qp": "0", "preset": "ultrafast"},
    )
    with open_video(path) as r:
        assert isinstance(r, PyAVReader)
        assert (r.width, r.height, r.format, r.full_range) == (64, 48, "yuv420p", False)
        assert r.fps == Fraction(30000, 1001) and r.frame_count == 6
        back = list(r)
    assert [f.pts for f in back] == list(range(6))
    assert all(f.time_base == Fraction(1001, 30000) for f in back)
    assert all(a.equal(b) for a, b in zip(natural, back, strict=True))  # qp=0 is lossless


def test_read_mkv_ffv1_keeps_10bit_444(tmp_path: Path) -> None:
    clip = random_clip("yuv444p10le", 33, 17, frames=3)
    path = tmp_path / "ffv1.mkv"
    make_file(path, "ffv1", "yuv444p10le", clip, rate=Fraction(50))
    with open_video(path) as r:
        assert (r.format, r.fps, r.frame_count) == ("yuv444p10le", 50, None)
        assert all(a.equal(b) for a, b in zip(clip, r, strict=True))


def test_read_webm_vp9(tmp_path: Path, natural: list[Frame]) -> None:
    path = tmp_path / "vp9.webm"
    make_file(
        path,
        "libvpx-vp9",
        "yuv420p",
        natural,
        options={"crf": "20", "deadline": "realtime", "cpu-used": "8"},
    )
    with open_video(path) as r:
        assert (r.format, r.fps) == ("yuv420p", 25)
        back = list(r)
    assert len(back) == 6
    assert psnr_yuv(natural[2], back[2]).y > 30


@pytest.mark.parametrize(
    ("codec", "av_format", "expected", "tolerance"),
    [
        ("ffv1", "yuv422p", "yuv420p", 2),  # chroma subsampled vertically by FFmpeg's scaler
        ("ffv1", "yuv420p12le", "yuv420p10le", 1),
        ("ffv1", "gray", "yuv420p", 1),
        ("ffv1", "bgr0", "rgb24", 0),
        ("ffv1", "gbrp16le", "rgb48le", 0),
        ("libx264rgb", "rgb24", "rgb24", 0),  # decodes as gbrp
    ],
)
def test_foreign_formats_become_ours(
    tmp_path: Path, codec: str, av_format: str, expected: str, tolerance: int
) -> None:
    source = "rgb48le" if expected == "rgb48le" else "rgb24" if expected == "rgb24" else "yuv444p"
    frames = [convert(f, source) for f in synthetic_clip(32, 16, 2, seed=1)]
    path = tmp_path / ("f.mkv")
    options = {"qp": "0"} if codec.startswith("libx264") else {}
    make_file(path, codec, av_format, frames, options=options)
    with open_video(path) as r:
        assert r.format == expected
        back = list(r)
    assert len(back) == 2
    if av_format != "gray":
        ref = convert(frames[1], expected)
        # luma / RGB within `tolerance`; FFmpeg's chroma filters differ from nvc's
        assert np.abs(ref.planes[0].astype(int) - back[1].planes[0]).max() <= tolerance
        if len(ref.planes) == 3:
            assert psnr_yuv(ref, back[1]).weighted > 35


def test_target_format_table() -> None:
    assert target_format("yuvj420p", 8, 8) == ("yuv420p", True)
    assert target_format("yuvj444p", 8, 8) == ("yuv444p", True)
    assert target_format("yuvj422p", 8, 8) == ("yuv420p", True)
    assert target_format("nv12", 8, 8) == ("yuv420p", False)
    assert target_format("p010le", 8, 8) == ("yuv420p10le", False)
    assert target_format("yuv444p12le", 8, 8) == ("yuv444p10le", False)
    assert target_format("bgr24", 8, 8) == ("rgb24", False)
    assert target_format("rgba64be", 8, 8) == ("rgb48le", False)
    assert target_format("pal8", 8, 8) == ("rgb24", False)
    with pytest.raises(MediaError):
        target_format("not_a_format", 8, 8)


WRITE_CASES = [
    ("yuv420p", ".mp4", (64, 48)),
    ("yuv420p10le", ".mp4", (64, 48)),
    ("yuv444p", ".mkv", (33, 17)),
    ("yuv444p10le", ".mov", (32, 16)),
    ("rgb24", ".mp4", (33, 17)),
    ("rgb48le", ".mkv", (33, 17)),
]


@pytest.mark.parametrize(("format", "ext", "size"), WRITE_CASES)
def test_lossless_write_read(tmp_path: Path, format: str, ext: str, size: tuple[int, int]) -> None:
    clip = [convert(f, format) for f in synthetic_clip(*size, 3, seed=2)]
    path = tmp_path / f"out{ext}"
    with open_writer(
        path, width=size[0], height=size[1], fps=Fraction(24000, 1001), format=format
    ) as w:
        for f in clip:
            w.write(f)
    assert leftovers(tmp_path) == [path.name]
    with open_video(path) as r:
        assert r.format == format and r.fps == Fraction(24000, 1001)
        back = list(r)
    assert len(back) == 3
    assert all(a.equal(b) for a, b in zip(clip, back, strict=True))


def test_full_range_mp4_round_trip(tmp_path: Path) -> None:
    clip = [convert(f, "yuv420p", full_range=True) for f in synthetic_clip(32, 16, 2)]
    path = tmp_path / "full.mp4"
    with open_writer(path, width=32, height=16, fps=25, format="yuv420p", full_range=True) as w:
        for f in clip:
            w.write(f)
    with open_video(path) as r:
        assert r.full_range and r.format == "yuv420p"  # yuvj420p from the decoder
        assert all(a.equal(b) for a, b in zip(clip, r, strict=True))


def test_overrides_on_open(tmp_path: Path, natural: list[Frame]) -> None:
    path = tmp_path / "o.mkv"
    with open_writer(path, width=64, height=48, fps=25, format="yuv420p") as w:
        for f in natural:
            w.write(f)
    with open_video(path, pix_fmt="rgb24", fps=10) as r:
        assert (r.format, r.fps) == ("rgb24", 10)
        frame = next(r)
        assert frame.format == "rgb24" and frame.time_base == Fraction(1, 10)
        assert convert(natural[0], "rgb24").equal(frame)
        r.seek_frame(4)
        frame = next(r)
        assert frame.pts == 4 and convert(natural[4], "rgb24").equal(frame)
    with pytest.raises(MediaError, match="64x48, not the 32x32"):
        open_video(path, size=(32, 32))


def test_odd_420_mp4_is_refused_cleanly(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="even size"):
        open_writer(tmp_path / "odd.mp4", width=33, height=17, fps=25, format="yuv420p")
    with pytest.raises(MediaError, match="rgb48le"):
        open_writer(tmp_path / "deep.mp4", width=32, height=16, fps=25, format="rgb48le")
    assert leftovers(tmp_path) == []


def test_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 10)
    with pytest.raises(MediaError, match="notes.mp4") as info:
        open_video(path)
    assert "\n" not in str(info.value)


def test_audio_only_file(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    container = av.open(str(path), "w")
    stream = container.add_stream("pcm_s16le", rate=8000)
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
    frame.sample_rate = 8000
    for packet in stream.encode(frame):
        container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    with pytest.raises(MediaError, match="no video stream"):
        open_video(path)


def test_video_stream_without_frames(tmp_path: Path) -> None:
    path = tmp_path / "empty.mkv"
    container = av.open(str(path), "w")
    stream = container.add_stream("ffv1", rate=25)
    stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
    container.close()
    with pytest.raises(MediaError):
        open_video(path)

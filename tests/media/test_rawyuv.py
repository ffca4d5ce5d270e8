"""Raw .yuv files: explicit and name-derived parameters, seeking, bad sizes."""

from __future__ import annotations

import os
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from nvc.errors import MediaError
from nvc.media import open_video, open_writer, parse_raw_name
from nvc.media.rawyuv import RawYuvReader

from .conftest import frame_payload, leftovers, random_clip

FORMATS = ["yuv420p", "yuv420p10le", "yuv444p", "yuv444p10le"]


@pytest.mark.parametrize("format", FORMATS)
def test_write_read_identical(tmp_path: Path, format: str) -> None:
    clip = random_clip(format, 21, 11, frames=3)
    path = tmp_path / "plain.yuv"
    with open_writer(path, width=21, height=11, fps=50, format=format) as w:
        for f in clip:
            w.write(f)
    assert path.stat().st_size == 3 * len(frame_payload(clip[0]))
    with open_video(path, size=(21, 11), fps=50, pix_fmt=format) as r:
        assert isinstance(r, RawYuvReader)
        assert (r.format, r.fps, r.frame_count) == (format, 50, 3)
        back = list(r)
    assert all(a.equal(b) for a, b in zip(clip, back, strict=True))
    assert [f.pts for f in back] == [0, 1, 2]


@pytest.mark.parametrize(
    ("name", "size", "fps", "pix_fmt"),
    [
        ("Beauty_1920x1080_120fps_420_8bit_YUV.yuv", (1920, 1080), 120, "yuv420p"),
        ("ShakeNDry_1920x1080_120fps_420_10bit_YUV.yuv", (1920, 1080), 120, "yuv420p10le"),
        ("Jockey_3840x2160_50fps_444_10bit.yuv", (3840, 2160), 50, "yuv444p10le"),
        ("BasketballDrive_1920x1080_50.yuv", (1920, 1080), 50, None),
        ("Kimono1_1920x1080_24_10bit.yuv", (1920, 1080), 24, "yuv420p10le"),
        ("foo_640x360_29.97fps.yuv", (640, 360), Fraction(30000, 1001), None),
        ("foo_352x288_420_8bit.yuv", (352, 288), None, "yuv420p"),
        ("no_hints.yuv", None, None, None),
    ],
)
def test_parse_raw_name(
    name: str, size: tuple[int, int] | None, fps: Fraction | None, pix_fmt: str | None
) -> None:
    guess = parse_raw_name(name)
    assert guess.size == size
    assert guess.fps == fps
    assert guess.pix_fmt == pix_fmt


@pytest.mark.parametrize(
    ("name", "format"),
    [
        ("Beauty_32x16_120fps_420_8bit_YUV.yuv", "yuv420p"),
        ("ShakeNDry_32x16_120fps_420_10bit_YUV.yuv", "yuv420p10le"),
        ("Kimono_32x16_24.yuv", "yuv420p"),
    ],
)
def test_read_by_uvg_name(tmp_path: Path, name: str, format: str) -> None:
    clip = random_clip(format, 32, 16, frames=2)
    path = tmp_path / name
    path.write_bytes(b"".join(frame_payload(f) for f in clip))
    with open_video(path) as r:
        assert (r.width, r.height, r.format, r.frame_count) == (32, 16, format, 2)
        assert r.fps in (120, 24)
        assert all(a.equal(b) for a, b in zip(clip, r, strict=True))


def test_explicit_options_override_name(tmp_path: Path) -> None:
    clip = random_clip("yuv444p", 16, 8, frames=1)
    path = tmp_path / "Beauty_32x16_120fps_420_8bit_YUV.yuv"
    path.write_bytes(frame_payload(clip[0]))
    with open_video(path, size=(16, 8), fps=29.97, pix_fmt="yuv444p") as r:
        assert (r.width, r.height, r.format) == (16, 8, "yuv444p")
        assert r.fps == Fraction(30000, 1001)
        assert next(r).equal(clip[0])


def test_seek_is_direct(tmp_path: Path) -> None:
    clip = random_clip("yuv420p10le", 8, 6, frames=5)
    path = tmp_path / "s_8x6_25fps_420_10bit.yuv"
    path.write_bytes(b"".join(frame_payload(f) for f in clip))
    with open_video(path) as r:
        r.seek_frame(3)
        frame = next(r)
        assert frame.pts == 3 and frame.equal(clip[3])
        r.seek_frame(5)
        assert r.read() is None
        r.seek_frame(0)
        assert next(r).equal(clip[0])


def test_size_mismatch_names_both_numbers(tmp_path: Path) -> None:
    path = tmp_path / "odd_16x8_25fps.yuv"
    path.write_bytes(b"\x00" * 200)  # a 16x8 yuv420p frame is 192 bytes
    with pytest.raises(MediaError, match="200 bytes.*192-byte") as info:
        open_video(path)
    assert "\n" not in str(info.value)


def test_missing_options_are_named(tmp_path: Path) -> None:
    path = tmp_path / "mystery.yuv"
    path.write_bytes(b"\x00" * 96)
    with pytest.raises(MediaError, match="needs size and fps"):
        open_video(path)
    with pytest.raises(MediaError, match="needs fps"):
        open_video(path, size=(8, 8))
    with open_video(path, size=(8, 8), fps=25) as r:  # 8x8 yuv420p = 96 bytes
        assert r.frame_count == 1


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("empty_8x8_25fps.yuv", {}, "empty"),
        ("x_8x8_25fps_422.yuv", {}, "unsupported pixel format 'yuv422p'"),
        ("x_8x8_25fps_420_12bit.yuv", {}, "unsupported pixel format"),
        ("x.yuv", {"size": (8, 8), "fps": 25, "pix_fmt": "rgb24"}, "not rgb24"),
        ("x.yuv", {"size": (0, 8), "fps": 25}, "out of range"),
        ("x.yuv", {"size": (8, 20000), "fps": 25}, "out of range"),
        ("x.yuv", {"size": (8, 8), "fps": 0}, "frame rate"),
        ("x.yuv", {"size": (8, 8), "fps": -5}, "frame rate"),
        ("x.yuv", {"size": (16384, 16384), "fps": 25}, "too large: at most 67108864 pixels"),
        ("Huge_12000x9000_25fps.yuv", {}, "too large"),
        ("x.yuv", {"size": (8, 8), "fps": Fraction(2**31, 3)}, "out of range"),
        ("x.yuv", {"size": (8, 8), "fps": Fraction(2**32 + 1, 2**32)}, "term above"),
    ],
)
def test_bad_raw_inputs(tmp_path: Path, name: str, kwargs: dict, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"" if name.startswith("empty") else b"\x00" * 96)
    with pytest.raises(MediaError, match=message) as info:
        open_video(path, **kwargs)
    assert "\n" not in str(info.value)


def test_raw_writer_rejects_rgb(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="rgb48le"):
        open_writer(tmp_path / "x.yuv", width=4, height=4, fps=25, format="rgb48le")
    assert leftovers(tmp_path) == []


def test_ten_bit_layout_is_little_endian(tmp_path: Path) -> None:
    path = tmp_path / "le_2x2_25fps_444_10bit.yuv"
    samples = np.array([1, 2, 3, 1023] * 3, dtype="<u2")
    path.write_bytes(samples.tobytes())
    with open_video(path) as r:
        frame = next(r)
    assert frame.planes[0].tolist() == [[1, 2], [3, 1023]]


def test_ten_bit_samples_above_1023_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad_2x2_25fps_444_10bit.yuv"
    samples = np.array([1, 2, 3, 1023] * 3 + [1, 2, 3, 4] * 2 + [0, 0, 0xFFFF, 0], dtype="<u2")
    path.write_bytes(samples.tobytes())
    with open_video(path) as r:
        assert r.read() is not None  # frame 0 is in range
        with pytest.raises(MediaError, match="frame 1: sample value 65535 does not fit 10 bits"):
            r.read()


def test_fifo_is_read_as_a_stream(tmp_path: Path) -> None:
    clip = random_clip("yuv420p", 8, 4, frames=3)
    fifo = tmp_path / "live_8x4_25fps.yuv"
    os.mkfifo(fifo)
    data = b"".join(frame_payload(f) for f in clip)
    thread = threading.Thread(target=fifo.write_bytes, args=(data,), daemon=True)
    thread.start()
    with open_video(fifo) as r:
        assert r.frame_count is None
        with pytest.raises(MediaError, match="it is a stream"):
            r.seek_frame(2)
        assert [f.equal(g) for f, g in zip(clip, r, strict=True)] == [True] * 3
    thread.join(5)

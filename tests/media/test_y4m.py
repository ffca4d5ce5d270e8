"""y4m: nvc's parser and writer, interoperability with FFmpeg, bad files."""

from __future__ import annotations

import os
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from nvc.errors import MediaError
from nvc.media import open_video, open_writer
from nvc.media.pyav_io import PyAVReader
from nvc.media.y4m import Y4MReader, parse_header

from .conftest import frame_payload, leftovers, random_clip, random_frame

FORMATS = ["yuv420p", "yuv420p10le", "yuv444p", "yuv444p10le"]


@pytest.mark.parametrize("format", FORMATS)
@pytest.mark.parametrize("size", [(32, 16), (33, 17), (1, 1)])
def test_write_read_identical(tmp_path: Path, format: str, size: tuple[int, int]) -> None:
    clip = random_clip(format, *size, frames=3)
    path = tmp_path / "clip.y4m"
    fps = Fraction(30000, 1001)
    with open_writer(path, width=size[0], height=size[1], fps=fps, format=format) as w:
        for frame in clip:
            w.write(frame)
    with open_video(path) as r:
        assert isinstance(r, Y4MReader)
        assert (r.width, r.height, r.fps, r.format, r.frame_count) == (*size, fps, format, 3)
        assert not r.full_range
        back = list(r)
    assert len(back) == 3
    for i, (a, b) in enumerate(zip(clip, back, strict=True)):
        assert a.equal(b)
        assert b.pts == i and b.time_base == 1 / fps
        assert all(p.flags.c_contiguous for p in b.planes)
    assert leftovers(tmp_path) == ["clip.y4m"]


def test_full_range_tag_round_trip(tmp_path: Path) -> None:
    frame = random_frame("yuv420p", 8, 8, full_range=True)
    path = tmp_path / "full.y4m"
    with open_writer(path, width=8, height=8, fps=25, format="yuv420p", full_range=True) as w:
        w.write(frame)
    assert b"XCOLORRANGE=FULL" in path.read_bytes().split(b"\n")[0]
    with open_video(path) as r:
        assert r.full_range
        assert next(r).equal(frame)


def test_hand_written_file_with_frame_params(tmp_path: Path) -> None:
    frames = random_clip("yuv420p", 6, 4, frames=3)
    header = b"YUV4MPEG2 W6 H4 F24:1 I? A1:1 C420mpeg2 XYSCSS=420MPEG2 Zfuture\n"
    body = b"".join(
        (b"FRAME Ixyz\n" if i == 1 else b"FRAME\n") + frame_payload(f) for i, f in enumerate(frames)
    )
    path = tmp_path / "hand.y4m"
    path.write_bytes(header + body)
    with open_video(path) as r:
        assert r.format == "yuv420p" and r.fps == 24
        assert r.frame_count is None  # FRAME lines of different lengths: unknown without a scan
        back = list(r)
        assert [f.equal(g) for f, g in zip(frames, back, strict=True)] == [True] * 3
        r.seek_frame(2)
        assert next(r).equal(frames[2])
        with pytest.raises(StopIteration):
            next(r)


def test_default_colourspace_and_10bit_tags(tmp_path: Path) -> None:
    assert parse_header(b"YUV4MPEG2 W2 H2 F25:1").format == "yuv420p"
    assert parse_header(b"YUV4MPEG2 W2 H2 F25:1 C444p10\n").format == "yuv444p10le"
    assert parse_header(b"YUV4MPEG2 W2 H2 F25:1 C420paldv").format == "yuv420p"
    assert parse_header(b"YUV4MPEG2 W2 H2 F25:1 C420").format == "yuv420p"
    h = parse_header(b"YUV4MPEG2 W2 H2 F30000:1001 A10:11 I? XCOLORRANGE=FULL")
    assert h.fps == Fraction(30000, 1001) and h.aspect == Fraction(10, 11)
    assert h.interlacing == "p" and h.full_range  # I? (unknown) is read as progressive


def test_iteration_is_file_like_and_seek(tmp_path: Path) -> None:
    clip = random_clip("yuv444p", 5, 3, frames=4)
    path = tmp_path / "s.y4m"
    with open_writer(path, width=5, height=3, fps=25, format="yuv444p") as w:
        for f in clip:
            w.write(f)
    with open_video(path) as r:
        assert len(list(r)) == 4
        assert list(r) == []  # exhausted, like a file
        r.seek_frame(1)
        assert r.position == 1
        again = list(r)
        assert [f.pts for f in again] == [1, 2, 3]
        assert again[0].equal(clip[1])
        with pytest.raises(MediaError):
            r.seek_frame(9)
    assert r.closed
    with pytest.raises(MediaError, match="closed"):
        r.read()


def test_ffmpeg_reads_ours_and_we_read_ffmpegs(tmp_path: Path) -> None:
    clip = random_clip("yuv420p10le", 33, 17, frames=2)
    ours = tmp_path / "ours.y4m"
    with open_writer(ours, width=33, height=17, fps=Fraction(50), format="yuv420p10le") as w:
        for f in clip:
            w.write(f)
    with PyAVReader(ours) as r:
        assert r.fps == 50
        assert all(a.equal(b) for a, b in zip(clip, r, strict=True))

    theirs = tmp_path / "theirs.y4m"
    container = av.open(str(theirs), "w", format="yuv4mpegpipe")
    stream = container.add_stream("wrapped_avframe", rate=Fraction(30000, 1001))
    stream.width, stream.height, stream.pix_fmt = 33, 17, "yuvj420p"
    for i in range(3):
        frame = av.VideoFrame(33, 17, "yuvj420p")
        frame.pts = i
        for plane in frame.planes:
            np.frombuffer(memoryview(plane), np.uint8)[:] = i * 40
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    with open_video(theirs) as r:
        assert (r.format, r.full_range, r.fps, r.frame_count) == (
            "yuv420p",
            True,
            Fraction(30000, 1001),
            3,
        )
        assert [int(f.planes[0][0, 0]) for f in r] == [0, 40, 80]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"RIFF1234WAVE\n", "not a y4m file"),
        (b"YUV4MPEG2 H4 F25:1\nFRAME\n", "width"),
        (b"YUV4MPEG2 W0 H4 F25:1\nFRAME\n", "out of range"),
        (b"YUV4MPEG2 W99999 H4 F25:1\nFRAME\n", "out of range"),
        (b"YUV4MPEG2 W-4 H4 F25:1\nFRAME\n", "not a number"),
        (b"YUV4MPEG2 W4 H4\nFRAME\n", "frame rate"),
        (b"YUV4MPEG2 W4 H4 F0:0\nFRAME\n", "frame rate"),
        (b"YUV4MPEG2 W4 H4 F25\nFRAME\n", "n:d"),
        (b"YUV4MPEG2 W4 H4 F25:1 Cmono\nFRAME\n", "unsupported y4m colour space"),
        (b"YUV4MPEG2 W4 H4 F25:1 C422\nFRAME\n", "unsupported"),
        (b"YUV4MPEG2 W4 H4 F25:1 Ix\nFRAME\n", "interlacing"),
        (b"YUV4MPEG2 W4 H4 F25:1 It\nFRAME\n", "interlaced y4m .It: top field first"),
        (b"YUV4MPEG2 W4 H4 F25:1 Ib\nFRAME\n", "interlaced y4m .Ib: bottom field first"),
        (b"YUV4MPEG2 W4 H4 F25:1 Im\nFRAME\n", "interlaced y4m .Im: mixed modes"),
        (b"YUV4MPEG2 W4 H4 F2147483648:1\nFRAME\n", "out of range"),
        (b"YUV4MPEG2 W4 H4 F4294967296:4294967297\nFRAME\n", "term above 2147483647"),
        (b"YUV4MPEG2 W4 H4 F100001:10\nFRAME\n", "out of range"),
        (b"YUV4MPEG2 W16384 H16384 F25:1\nFRAME\n", "too large"),
        (b"YUV4MPEG2 W8192 H8192 F25:1 C444p10\nFRAME\n" + b"\0" * 100, "frame 0 is cut off"),
        (b"YUV4MPEG2 W4 H4 F25:1", "cut off"),
        (b"YUV4MPEG2 W4 H4 F25:1 " + b"X" * 5000 + b"\n", "longer than"),
        (b"YUV4MPEG2 W4 H4 F25:1\n", "no frames"),
        (b"YUV4MPEG2 W4 H4 F25:1\nFRAMEX\n", "no FRAME line"),
        (b"YUV4MPEG2 W4 H4 F25:1\xff\n", "ASCII"),
    ],
)
def test_bad_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.y4m"
    path.write_bytes(content)
    with pytest.raises(MediaError, match=message) as info:
        open_video(path)
    assert "\n" not in str(info.value)


def test_truncated_frame_and_garbage_between_frames(tmp_path: Path) -> None:
    frame = random_frame("yuv420p", 4, 4)
    header = b"YUV4MPEG2 W4 H4 F25:1\n"
    path = tmp_path / "cut.y4m"
    path.write_bytes(header + b"FRAME\n" + frame_payload(frame) + b"FRAME\n" + b"\x00" * 10)
    with open_video(path) as r:
        assert r.frame_count is None
        assert next(r).equal(frame)
        with pytest.raises(MediaError, match="frame 1.*truncated"):
            next(r)
    path.write_bytes(header + b"FRAME\n" + frame_payload(frame) + b"JUNK\n")
    with open_video(path) as r:
        next(r)
        with pytest.raises(MediaError, match="frame 1 has no FRAME line"):
            next(r)


def test_writer_rejects_rgb(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="cannot hold rgb24"):
        open_writer(tmp_path / "x.y4m", width=4, height=4, fps=25, format="rgb24")
    assert leftovers(tmp_path) == []


def test_writer_converts_other_formats(tmp_path: Path) -> None:
    frame = random_frame("yuv444p", 6, 4)
    path = tmp_path / "c.y4m"
    with open_writer(path, width=6, height=4, fps=25, format="yuv420p10le") as w:
        w.write(frame)
    with open_video(path) as r:
        assert r.format == "yuv420p10le"
        assert next(r).planes[1].shape == (2, 3)


def test_ten_bit_samples_above_1023_are_refused(tmp_path: Path) -> None:
    good = random_frame("yuv420p10le", 4, 4)
    payload = bytearray(frame_payload(good))
    payload[6:8] = (1024).to_bytes(2, "little")  # luma sample 3 of frame 1
    path = tmp_path / "bad10.y4m"
    header = b"YUV4MPEG2 W4 H4 F25:1 C420p10\n"
    path.write_bytes(header + b"FRAME\n" + frame_payload(good) + b"FRAME\n" + payload)
    with open_video(path) as r:
        assert next(r).equal(good)
        with pytest.raises(MediaError, match="frame 1: sample value 1024 does not fit 10 bits"):
            next(r)


def _pipe_reader(chunks: list[bytes], gate: threading.Event) -> tuple[int, threading.Thread]:
    """The read end of an OS pipe; a thread writes chunks[0], waits for `gate`, then the
    rest, then closes the pipe."""
    rfd, wfd = os.pipe()

    def feed() -> None:
        with os.fdopen(wfd, "wb") as w:
            w.write(chunks[0])
            w.flush()
            gate.wait(20)
            for chunk in chunks[1:]:
                w.write(chunk)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    return rfd, thread


def test_stream_is_read_lazily_without_seeking(tmp_path: Path) -> None:
    clip = random_clip("yuv420p10le", 6, 4, frames=3)
    header = b"YUV4MPEG2 W6 H4 F30000:1001 C420p10\n"
    frames = [b"FRAME\n" + frame_payload(f) for f in clip]
    gate = threading.Event()
    rfd, thread = _pipe_reader([header + frames[0], *frames[1:]], gate)
    with Y4MReader(os.fdopen(rfd, "rb"), name="pipe") as r:
        assert (r.width, r.height, r.format, r.full_range) == (6, 4, "yuv420p10le", False)
        assert r.frame_count is None and r.fps == Fraction(30000, 1001)
        assert r.read().equal(clip[0])  # only frame 0 has been written so far
        r.seek_frame(1)  # the current position: allowed
        with pytest.raises(MediaError, match="cannot seek in pipe: it is a stream"):
            r.seek_frame(0)
        gate.set()
        rest = list(r)
    thread.join(5)
    assert [f.equal(g) for f, g in zip(clip[1:], rest, strict=True)] == [True, True]
    assert [f.pts for f in rest] == [1, 2]


def test_named_fifo_and_stdin_open_as_y4m(tmp_path: Path) -> None:
    clip = random_clip("yuv420p", 4, 2, frames=2)
    data = b"YUV4MPEG2 W4 H2 F25:1\n" + b"".join(b"FRAME\n" + frame_payload(f) for f in clip)
    fifo = tmp_path / "input"  # no extension, not sniffed: a pipe is y4m
    os.mkfifo(fifo)
    thread = threading.Thread(target=fifo.write_bytes, args=(data,), daemon=True)
    thread.start()
    with open_video(fifo) as r:
        assert isinstance(r, Y4MReader) and r.frame_count is None
        assert [f.equal(g) for f, g in zip(clip, r, strict=True)] == [True, True]
    thread.join(5)

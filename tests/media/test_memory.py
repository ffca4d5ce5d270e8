"""Readers are lazy: reading frame by frame costs about one frame of memory."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import pytest

from nvc.media import open_video, open_writer, pixel_format

from .conftest import random_frame

FULL_HD = (1920, 1080)


def _peak_while_reading(path: Path, **kwargs: object) -> tuple[int, int]:
    """(frames read, tracemalloc peak in bytes) for a full pass over `path`."""
    with open_video(path, **kwargs) as reader:  # type: ignore[arg-type]
        tracemalloc.start()
        try:
            count = 0
            checksum = 0
            for frame in reader:
                checksum += int(frame.planes[0][0, 0])
                count += 1
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return count, peak


@pytest.mark.parametrize("ext", [".yuv", ".y4m"])
def test_reading_does_not_accumulate(tmp_path: Path, ext: str) -> None:
    w, h, fmt, frames = 320, 180, "yuv420p10le", 24
    path = tmp_path / f"clip_{w}x{h}_25fps_420_10bit{ext}"
    with open_writer(path, width=w, height=h, fps=25, format=fmt) as writer:
        for i in range(frames):
            writer.write(random_frame(fmt, w, h, seed=i % 3))
    count, peak = _peak_while_reading(path)
    assert count == frames
    # the loop variable still holds frame i while frame i + 1 is read: two frames at most
    assert peak < 2.5 * pixel_format(fmt).frame_bytes(w, h)


def test_seek_into_a_large_sparse_file(tmp_path: Path) -> None:
    # 600 frames of 1080p yuv420p: 1.8 GB on paper, sparse on disk
    w, h = FULL_HD
    frame_bytes = pixel_format("yuv420p").frame_bytes(w, h)
    path = tmp_path / "Beauty_1920x1080_120fps_420_8bit_YUV.yuv"
    with open(path, "wb") as f:
        f.truncate(600 * frame_bytes)
    with open_video(path) as reader:
        assert reader.frame_count == 600
        tracemalloc.start()
        try:
            reader.seek_frame(598)
            pts = [frame.pts for frame in reader]
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert pts == [598, 599]
    assert peak < 2.5 * frame_bytes


_CHILD = textwrap.dedent(
    """
    import resource, sys
    from nvc.media import open_video
    path = sys.argv[1]
    reader = open_video(path)
    first = next(reader)  # imports, first buffers
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    count, total = 1, int(first.planes[0].sum(dtype="uint64"))
    for frame in reader:
        total += int(frame.planes[0][::64, ::64].sum())
        count += 1
    reader.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(count, (peak - base) * 1024)  # ru_maxrss is in KiB on Linux
    """
)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss units differ off Linux")
def test_full_hd_300_frames_peak_rss(tmp_path: Path) -> None:
    w, h = FULL_HD
    path = tmp_path / "Big_1920x1080_50fps_420_8bit.yuv"
    frames = [random_frame("yuv420p", w, h, seed=s) for s in range(3)]
    with open_writer(path, width=w, height=h, fps=50, format="yuv420p") as writer:
        for i in range(300):
            writer.write(frames[i % 3])
    assert path.stat().st_size == 300 * pixel_format("yuv420p").frame_bytes(w, h)  # ~933 MB
    del frames
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=300,
    )
    count, growth = (int(v) for v in result.stdout.split())
    assert count == 300
    assert growth < 200 * 2**20

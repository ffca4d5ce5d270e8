"""PNG sequences: RGB round trips, YUV sources, foreign PNG folders, replacement rules."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from nvc.errors import MediaError
from nvc.media import Frame, convert, open_video, open_writer, synthetic_clip
from nvc.media.pngseq import PngSequenceReader, PngSequenceWriter

from .conftest import leftovers, random_clip


def write_all(path: Path | str, frames: list[Frame], format: str | None = None) -> None:
    f0 = frames[0]
    with open_writer(
        path, width=f0.width, height=f0.height, fps=25, format=format or f0.format
    ) as w:
        for f in frames:
            w.write(f)


def save_png(path: Path, array: np.ndarray, av_format: str) -> None:
    image = av.VideoFrame.from_ndarray(array, format=av_format)
    ctx = av.CodecContext.create("png", "w")
    ctx.width, ctx.height, ctx.pix_fmt = image.width, image.height, av_format
    path.write_bytes(b"".join(bytes(p) for p in ctx.encode(image)))


@pytest.mark.parametrize("format", ["rgb24", "rgb48le"])
def test_rgb_round_trip(tmp_path: Path, format: str) -> None:
    clip = random_clip(format, 17, 9, frames=3)
    out = tmp_path / "frames"
    write_all(str(out) + "/", clip)
    assert leftovers(tmp_path) == ["frames"]
    assert leftovers(out) == [f"frame_{i:06d}.png" for i in range(3)]
    with open_video(out) as r:
        assert isinstance(r, PngSequenceReader)
        assert (r.format, r.frame_count, r.fps) == (format, 3, 25)
        back = list(r)
    assert all(a.equal(b) for a, b in zip(clip, back, strict=True))
    assert [f.pts for f in back] == [0, 1, 2]


@pytest.mark.parametrize(("source", "stored"), [("yuv420p", "rgb24"), ("yuv444p10le", "rgb48le")])
def test_yuv_frames_become_rgb(tmp_path: Path, source: str, stored: str) -> None:
    clip = synthetic_clip(20, 10, 2, format=source)
    out = tmp_path / "noext"  # no extension: a PNG sequence
    with open_writer(out, width=20, height=10, fps=25, format=source) as w:
        assert isinstance(w, PngSequenceWriter) and w.format == stored
        for f in clip:
            w.write(f)
    with open_video(out, fps=50) as r:
        assert r.format == stored and r.fps == 50
        assert all(convert(a, stored).equal(b) for a, b in zip(clip, r, strict=True))


def test_foreign_folder_natural_order_and_formats(tmp_path: Path) -> None:
    folder = tmp_path / "shots"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (6, 5, 4), dtype=np.uint8)
    gray = rng.integers(0, 256, (6, 5), dtype=np.uint8)
    save_png(folder / "img_10.png", gray, "gray")
    save_png(folder / "img_2.png", rgba, "rgba")
    (folder / "notes.txt").write_text("ignored")
    with open_video(folder) as r:
        assert r.format == "rgb24" and r.frame_count == 2
        first, second = list(r)
    assert np.array_equal(first.planes[0], rgba[..., :3])  # img_2 before img_10
    assert np.array_equal(second.planes[0], np.repeat(gray[..., None], 3, axis=2))


def test_mismatched_sizes(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    save_png(folder / "a1.png", np.zeros((4, 4, 3), np.uint8), "rgb24")
    save_png(folder / "a2.png", np.zeros((4, 6, 3), np.uint8), "rgb24")
    with open_video(folder) as r:
        next(r)
        with pytest.raises(MediaError, match="frame size changes"):
            next(r)


def test_folder_without_pngs(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(MediaError, match="no .png files"):
        open_video(tmp_path)


def test_bad_png(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "frame_000000.png").write_bytes(b"\x89PNG\r\n\x1a\nrubbish")
    with pytest.raises(MediaError) as info:
        open_video(folder)
    assert "\n" not in str(info.value)


def test_existing_sequence_is_replaced_atomically(tmp_path: Path) -> None:
    out = tmp_path / "seq"
    write_all(out, random_clip("rgb24", 4, 4, frames=5))
    new = random_clip("rgb24", 4, 4, frames=2, seed=9)
    write_all(out, new)
    assert leftovers(out) == ["frame_000000.png", "frame_000001.png"]
    assert leftovers(tmp_path) == ["seq"]
    with open_video(out) as r:
        assert all(a.equal(b) for a, b in zip(new, r, strict=True))


def test_existing_folder_with_other_files_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(MediaError, match="already holds other files"):
        write_all(out, random_clip("rgb24", 4, 4, frames=1))
    assert leftovers(out) == ["holiday.jpg"]
    assert leftovers(tmp_path) == ["photos"]


def test_abort_keeps_old_sequence(tmp_path: Path) -> None:
    out = tmp_path / "keep"
    old = random_clip("rgb24", 4, 4, frames=1)
    write_all(out, old)
    with (
        pytest.raises(RuntimeError),
        open_writer(out, width=4, height=4, fps=25, format="rgb24") as w,
    ):
        w.write(random_clip("rgb24", 4, 4, frames=1, seed=5)[0])
        raise RuntimeError("boom")
    assert leftovers(tmp_path) == ["keep"]
    with open_video(out) as r:
        assert next(r).equal(old[0])

"""Datasets: UVG discovery by official names, user files, quick-mode crop / scale."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from nvc.bench import datasets
from nvc.errors import NvcError
from nvc.media import Frame, convert, open_writer, synthetic_clip


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_finds_uvg_by_official_names_in_standard_order(tmp_path: Path) -> None:
    for name in reversed(list(datasets.UVG_SEQUENCES)):
        _touch(tmp_path / f"{name}_1920x1080_120fps_420_8bit_YUV.yuv")
    _touch(tmp_path / "notes.txt")
    _touch(tmp_path / "Kimono_1920x1080_24.yuv")
    seqs = datasets.find_uvg(tmp_path, require_all=True)
    assert [s.name for s in seqs] == list(datasets.UVG_SEQUENCES)
    assert all(s.kind == "uvg" and s.source.endswith("_8bit_YUV.yuv") for s in seqs)


def test_prefers_8_bit_accepts_10_bit_subfolders_and_aliases(tmp_path: Path) -> None:
    _touch(tmp_path / "Beauty_1920x1080_120fps_420_10bit_YUV.yuv")
    _touch(tmp_path / "Beauty_1920x1080_120fps_420_8bit_YUV.yuv")
    _touch(tmp_path / "jockey" / "Jockey_1920x1080_120fps_420_10bit_YUV.yuv")
    _touch(tmp_path / "ReadySetGo_1920x1080_120fps_420_8bit_YUV.yuv")
    _touch(tmp_path / "HoneyBee_3840x2160_120fps_420_8bit_YUV.yuv")  # the 4K version: not ours
    seqs = {s.name: s for s in datasets.find_uvg(tmp_path)}
    assert sorted(seqs) == ["Beauty", "Jockey", "ReadySteadyGo"]
    assert "8bit" in seqs["Beauty"].source
    assert "10bit" in seqs["Jockey"].source


def test_missing_uvg_says_where_to_get_it_and_how_to_lay_it_out(tmp_path: Path) -> None:
    with pytest.raises(NvcError) as info:
        datasets.find_uvg(tmp_path / "nowhere")
    message = str(info.value)
    assert "https://ultravideo.fi/dataset.html" in message
    assert "Beauty_1920x1080_120fps_420_8bit_YUV.yuv" in message
    assert "YachtRide" in message
    _touch(tmp_path / "Beauty_1920x1080_120fps_420_8bit_YUV.yuv")
    assert len(datasets.find_uvg(tmp_path)) == 1
    with pytest.raises(NvcError, match="missing Bosphorus"):
        datasets.find_uvg(tmp_path, require_all=True)


def test_loads_a_10_bit_raw_uvg_style_file(tmp_path: Path) -> None:
    clip = synthetic_clip(64, 48, 5, format="yuv420p10le", seed=2)
    path = tmp_path / "Beauty_64x48_120fps_420_10bit_YUV.yuv"
    with path.open("wb") as f:
        for frame in clip:
            for plane in frame.planes:
                f.write(plane.astype("<u2").tobytes())
    seq = datasets.user_sequences([str(path)])[0]
    loaded = datasets.load(seq, datasets.Protocol(frames=3))
    assert len(loaded.frames) == 3
    assert loaded.fps == Fraction(120)
    assert loaded.frames[0].format == "yuv420p"
    assert loaded.source_format == "yuv420p10le"
    assert any("converted yuv420p10le" in n for n in loaded.notes)
    want = convert(clip[0], "yuv420p")
    assert all(
        np.array_equal(a, b) for a, b in zip(want.planes, loaded.frames[0].planes, strict=True)
    )


def _y4m(tmp_path: Path, frames: list[Frame], name: str = "clip.y4m") -> Path:
    path = tmp_path / name
    first = frames[0]
    with open_writer(
        path, width=first.width, height=first.height, fps=25, format=first.format
    ) as w:
        for f in frames:
            w.write(f)
    return path


def test_quick_mode_crop_scale_and_fit(tmp_path: Path) -> None:
    path = _y4m(tmp_path, synthetic_clip(160, 96, 4, seed=4))
    seq = datasets.user_sequences([str(path)])[0]
    assert seq.name == "clip" and seq.kind == "file"
    whole = datasets.load(seq, datasets.Protocol())
    assert (whole.width, whole.height, len(whole.frames)) == (160, 96, 4)
    cropped = datasets.load(seq, datasets.Protocol(frames=2, crop=(64, 32)))
    assert (cropped.width, cropped.height, len(cropped.frames)) == (64, 32, 2)
    # The centre crop takes the middle samples.
    assert np.array_equal(cropped.frames[0].planes[0], whole.frames[0].planes[0][32:64, 48:112])
    scaled = datasets.load(seq, datasets.Protocol(scale=(80, 48)))
    assert (scaled.width, scaled.height) == (80, 48)
    fitted = datasets.load(seq, datasets.Protocol(fit=(64, 64)))
    assert (fitted.width, fitted.height) == (64, 38)
    assert datasets.Protocol().quick is False
    proto = datasets.Protocol(frames=30, scale=(640, 360))
    assert proto.quick and proto.describe() == "first 30 frames, scaled to 640x360"


def test_odd_sizes_become_even_and_names_are_unique(tmp_path: Path) -> None:
    a = _y4m(tmp_path, synthetic_clip(67, 39, 2, format="yuv420p", seed=1), "a.y4m")
    (tmp_path / "sub").mkdir()
    b = _y4m(tmp_path / "sub", synthetic_clip(32, 32, 2, seed=1), "a.y4m")
    seqs = datasets.user_sequences([str(a), str(b)])
    assert [s.name for s in seqs] == ["a", "a-2"]
    loaded = datasets.load(seqs[0], datasets.Protocol())
    assert (loaded.width, loaded.height) == (66, 38)
    assert any("even" in n for n in loaded.notes)


def test_missing_user_file(tmp_path: Path) -> None:
    with pytest.raises(NvcError, match="no such file"):
        datasets.user_sequences([str(tmp_path / "nope.mp4")])


def test_synthetic_sequence_is_deterministic() -> None:
    seq = datasets.synthetic_sequence(64, 36, seed=7)
    a = datasets.load(seq, datasets.Protocol(frames=2))
    b = datasets.load(seq, datasets.Protocol(frames=2))
    assert (a.width, a.height, len(a.frames)) == (64, 36, 2)
    assert all(x.equal(y) for x, y in zip(a.frames, b.frames, strict=True))


def test_fit_size_keeps_aspect_and_never_enlarges() -> None:
    assert datasets.fit_size(1920, 1080, (640, 360)) == (640, 360)
    assert datasets.fit_size(1280, 720, (640, 640)) == (640, 360)
    assert datasets.fit_size(320, 240, (640, 360)) == (320, 240)

"""x264, x265 and SVT-AV1 through PyAV: decodable streams, sane bpp and PSNR."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from nvc.bench import anchors
from nvc.errors import CodecError
from nvc.media import Frame, bpp, mean_psnr, psnr_rgb, synthetic_clip

FPS = Fraction(25)


@pytest.fixture(scope="module")
def tiny() -> list[Frame]:
    return synthetic_clip(96, 64, 8, format="yuv420p", seed=3)


@pytest.mark.parametrize("name", sorted(anchors.ANCHORS))
@pytest.mark.parametrize("gop", anchors.GOP_MODES)
def test_round_trip_gives_sane_rate_and_quality(
    tiny: list[Frame], tmp_path: Path, name: str, gop: str
) -> None:
    config = anchors.ANCHORS[name]
    path = tmp_path / f"clip.{config.extension}"
    middle = config.crf_points[len(config.crf_points) // 2]
    size = anchors.encode(tiny, config, middle, path, fps=FPS, gop=gop, threads=1)
    assert size == path.stat().st_size > 0
    decoded = anchors.decode(path, config, fps=FPS)
    assert len(decoded) == len(tiny)
    assert all(d.format == "yuv420p" and (d.width, d.height) == (96, 64) for d in decoded)
    assert [d.pts for d in decoded] == list(range(len(tiny)))
    rate = bpp(size, len(tiny), 96, 64)
    quality = mean_psnr(psnr_rgb(a, b) for a, b in zip(tiny, decoded, strict=True))
    assert 0.005 < rate < 3.0
    assert 25.0 < quality < 60.0


@pytest.mark.parametrize("name", sorted(anchors.ANCHORS))
def test_lower_crf_costs_more_bits_and_gives_more_quality(
    tiny: list[Frame], tmp_path: Path, name: str
) -> None:
    config = anchors.ANCHORS[name]
    results = []
    for crf in (config.crf_points[0], config.crf_points[-1]):
        path = tmp_path / f"{crf}.{config.extension}"
        size = anchors.encode(tiny, config, crf, path, fps=FPS, threads=1)
        decoded = anchors.decode(path, config, fps=FPS)
        results.append(
            (size, mean_psnr(psnr_rgb(a, b) for a, b in zip(tiny, decoded, strict=True)))
        )
    (big, good), (small, poor) = results
    assert big > small
    assert good > poor


def test_encoding_is_deterministic(tiny: list[Frame], tmp_path: Path) -> None:
    config = anchors.ANCHORS["x265"]
    a, b = tmp_path / "a.hevc", tmp_path / "b.hevc"
    anchors.encode(tiny, config, 30, a, fps=FPS, threads=1)
    anchors.encode(tiny, config, 30, b, fps=FPS, threads=1)
    assert a.read_bytes() == b.read_bytes()


def test_the_stream_is_raw_with_no_container(tiny: list[Frame], tmp_path: Path) -> None:
    h264 = tmp_path / "c.h264"
    anchors.encode(tiny, anchors.ANCHORS["x264"], 30, h264, fps=FPS, threads=1)
    assert h264.read_bytes()[:4] in (b"\x00\x00\x00\x01", b"\x00\x00\x01\x09")  # Annex B
    assert anchors.encoder_version(h264) is None  # its settings SEI is not counted
    obu = tmp_path / "c.obu"
    anchors.encode(tiny, anchors.ANCHORS["svtav1"], 40, obu, fps=FPS, threads=1)
    assert obu.read_bytes()[:2] == b"\x12\x00"  # a temporal delimiter OBU, no IVF header


def test_documented_configurations() -> None:
    x264 = anchors.ANCHORS["x264"].params("ra", 128, 2)
    assert x264 == "keyint=128:min-keyint=128:scenecut=0:open-gop=0:threads=2"
    assert "bframes=0" in anchors.ANCHORS["x265"].params("ld", 128, 2)
    assert "pred-struct=1" in anchors.ANCHORS["svtav1"].params("ld", 64, 1)
    options = anchors.ANCHORS["x265"].options(27, "ra", 128, 1)
    assert options["preset"] == "medium" and options["crf"] == "27"
    assert anchors.anchor("SVT-AV1") is anchors.ANCHORS["svtav1"]
    assert anchors.anchor("hevc") is anchors.ANCHORS["x265"]
    assert anchors.anchor("inr") is None
    with pytest.raises(CodecError):
        anchors.ANCHORS["x264"].params("xx", 128, 1)


def test_rejects_frames_it_cannot_code(tmp_path: Path) -> None:
    rgb = synthetic_clip(32, 32, 2, format="rgb24")
    with pytest.raises(CodecError, match="4:2:0"):
        anchors.encode(rgb, anchors.ANCHORS["x264"], 30, tmp_path / "x.h264", fps=FPS)
    with pytest.raises(CodecError, match="at least 64x16"):
        narrow = synthetic_clip(48, 32, 2)
        anchors.encode(narrow, anchors.ANCHORS["x265"], 30, tmp_path / "x.hevc", fps=FPS)
    with pytest.raises(CodecError, match="no frames"):
        anchors.encode([], anchors.ANCHORS["x264"], 30, tmp_path / "x.h264", fps=FPS)


def test_undecodable_file_is_a_codec_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.hevc"
    junk.write_bytes(b"not a video at all" * 10)
    with pytest.raises(CodecError):
        anchors.decode(junk, anchors.ANCHORS["x265"], fps=FPS)

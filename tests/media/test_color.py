"""Colour conversion: BT.709 matrices, ranges, chroma resampling, bit depth."""

from __future__ import annotations

import numpy as np
import pytest

from nvc.errors import MediaError
from nvc.media import Frame, convert, rgb_to_yuv, synthetic_clip, to_rgb_float, yuv_to_rgb
from nvc.media.color import downsample_chroma, upsample_chroma

from .conftest import random_frame


def _max_abs(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max())


def test_reference_colours_limited_8bit() -> None:
    rgb = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 0, 255]]], dtype=np.uint8)
    y, u, v = rgb_to_yuv(rgb, "yuv444p")
    assert y.tolist() == [[16, 235, 63, 32]]  # BT.709: 16 + 219 * 0.2126 = 62.56 -> 63
    assert u.tolist()[0][:2] == [128, 128]
    assert v.tolist()[0][:2] == [128, 128]
    assert v[0, 2] == 240 and u[0, 3] == 240  # saturated primaries reach the chroma extremes


def test_reference_colours_full_and_10bit() -> None:
    rgb = np.array([[[0, 0, 0], [255, 255, 255]]], dtype=np.uint8)
    y, u, _ = rgb_to_yuv(rgb, "yuv444p", full_range=True)
    assert y.tolist() == [[0, 255]] and u.tolist() == [[128, 128]]
    y, u, _ = rgb_to_yuv(rgb, "yuv444p10le")
    assert y.tolist() == [[64, 940]] and u.tolist() == [[512, 512]]
    assert y.dtype == np.dtype("<u2")


@pytest.mark.parametrize("full_range", [False, True])
def test_rgb_yuv444_rgb_8bit(full_range: bool) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (257, 129, 3), dtype=np.uint8)
    back = yuv_to_rgb(rgb_to_yuv(rgb, "yuv444p", full_range), "yuv444p", full_range)
    err = np.abs(back.astype(int) - rgb)
    if full_range:
        assert err.max() <= 1
    else:
        # limited range has only 219 luma / 224 chroma levels: a rare 2 is unavoidable
        assert err.max() <= 2
        assert (err <= 1).mean() > 0.99
        assert err.mean() < 0.5


@pytest.mark.parametrize("full_range", [False, True])
def test_rgb_yuv444p10_rgb_is_exact_for_8bit_rgb(full_range: bool) -> None:
    rgb = np.random.default_rng(2).integers(0, 256, (64, 65, 3), dtype=np.uint8)
    planes = rgb_to_yuv(rgb, "yuv444p10le", full_range)
    assert np.array_equal(yuv_to_rgb(planes, "yuv444p10le", full_range), rgb)


@pytest.mark.parametrize("format", ["yuv444p", "yuv444p10le"])
@pytest.mark.parametrize("out_dtype", [np.uint16, np.float32])
def test_yuv444_rgb_yuv_near_identity(format: str, out_dtype: type) -> None:
    rgb = np.random.default_rng(3).integers(0, 256, (33, 47, 3), dtype=np.uint8)
    planes = rgb_to_yuv(rgb, format)  # in-gamut YUV
    again = rgb_to_yuv(yuv_to_rgb(planes, format, out_dtype=out_dtype), format)
    for a, b in zip(planes, again, strict=True):
        assert _max_abs(a, b) <= 1


@pytest.mark.parametrize("size", [(16, 16), (17, 9), (1, 1), (3, 2)])
def test_chroma_down_up_down_is_identity(size: tuple[int, int]) -> None:
    w, h = size
    c = np.random.default_rng(4).uniform(-0.5, 0.5, ((h + 1) // 2, (w + 1) // 2))
    c = c.astype(np.float32)
    up = upsample_chroma(c, 1, 1, w, h)
    assert up.shape == (h, w)
    assert np.allclose(downsample_chroma(up, 1, 1), c, atol=1e-6)


def test_downsample_is_block_mean_with_edge_replication() -> None:
    c = np.arange(15, dtype=np.float32).reshape(3, 5)
    d = downsample_chroma(c, 1, 1)
    assert d.shape == (2, 3)
    assert d[0, 0] == pytest.approx((0 + 1 + 5 + 6) / 4)
    assert d[0, 2] == pytest.approx((4 + 4 + 9 + 9) / 4)  # odd width: last column replicated
    assert d[1, 2] == pytest.approx(14)  # last row and column replicated


def test_upsample_of_constant_is_constant() -> None:
    c = np.full((4, 5), 0.25, dtype=np.float32)
    assert np.allclose(upsample_chroma(c, 1, 1, 9, 7), 0.25)


@pytest.mark.parametrize("format", ["yuv420p", "yuv420p10le"])
@pytest.mark.parametrize("size", [(64, 48), (37, 21)])
def test_natural_420_through_rgb_and_back(format: str, size: tuple[int, int]) -> None:
    frame = synthetic_clip(*size, 1, format=format, seed=5)[0]
    for rgb in ("rgb24", "rgb48le"):
        back = convert(convert(frame, rgb), format)
        for a, b in zip(frame.planes, back.planes, strict=True):
            diff = np.abs(a.astype(int) - b)
            # 10-bit through 8-bit RGB loses two bits; otherwise only rare rounding remains
            assert diff.mean() < (1.5 if rgb == "rgb24" and format.endswith("10le") else 0.1)


def test_convert_420_444_420_identity_and_depth_shift() -> None:
    frame = synthetic_clip(33, 19, 1, seed=6)[0]
    assert convert(convert(frame, "yuv444p10le"), "yuv420p").equal(frame)
    back = convert(convert(frame, "yuv444p"), "yuv420p")  # chroma rounded at 4:4:4
    for a, b in zip(frame.planes, back.planes, strict=True):
        assert _max_abs(a, b) <= 1
    ten = convert(frame, "yuv420p10le")
    for a, b in zip(frame.planes, ten.planes, strict=True):
        assert np.array_equal(a.astype(np.uint16) * 4, b)  # limited range: an exact shift
    assert convert(ten, "yuv420p").equal(frame)


def test_convert_keeps_time_and_range() -> None:
    frame = random_frame("yuv444p", 8, 6, pts=7, full_range=True)
    out = convert(frame, "yuv420p")
    assert out.pts == 7 and out.time_base == frame.time_base and out.full_range
    assert convert(frame, "yuv444p") is frame
    limited = convert(frame, "yuv444p", full_range=False)
    assert not limited.full_range and limited.planes[0].max() <= 235
    rgb = convert(frame, "rgb24")
    assert not rgb.full_range and rgb.planes[0].shape == (6, 8, 3)


def test_full_range_conversion_preserves_colour() -> None:
    frame = synthetic_clip(24, 16, 1, format="yuv444p10le", seed=7)[0]
    full = convert(frame, "yuv444p10le", full_range=True)
    assert np.abs(to_rgb_float(full) - to_rgb_float(frame)).max() < 2 / 1023


def test_rgb24_rgb48_round_trip() -> None:
    frame = random_frame("rgb24", 9, 5)
    wide = convert(frame, "rgb48le")
    assert np.array_equal(wide.planes[0], frame.planes[0].astype(np.uint16) * 257)
    assert convert(wide, "rgb24").equal(frame)


def test_to_rgb_float_range_and_dtype() -> None:
    rgb = to_rgb_float(random_frame("yuv420p", 7, 5))
    assert rgb.dtype == np.float32 and rgb.shape == (5, 7, 3)
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0
    frame = random_frame("rgb24", 3, 2)
    assert np.allclose(to_rgb_float(frame) * 255, frame.planes[0], atol=1e-3)


def test_float_rgb_input_is_clipped() -> None:
    rgb = np.array([[[-0.5, 1.5, 0.5]]], dtype=np.float64)
    y, _, _ = rgb_to_yuv(rgb, "yuv444p", full_range=True)
    expected = rgb_to_yuv(np.array([[[0.0, 1.0, 0.5]]]), "yuv444p", full_range=True)[0]
    assert np.array_equal(y, expected)


def test_bad_inputs() -> None:
    with pytest.raises(MediaError):
        rgb_to_yuv(np.zeros((4, 4), np.uint8), "yuv420p")
    with pytest.raises(MediaError):
        rgb_to_yuv(np.zeros((4, 4, 3), np.int32), "yuv420p")
    with pytest.raises(MediaError, match="not a YUV format"):
        rgb_to_yuv(np.zeros((4, 4, 3), np.uint8), "rgb24")
    with pytest.raises(MediaError, match="unsupported pixel format"):
        convert(random_frame("yuv420p", 4, 4), "nv12")
    with pytest.raises(MediaError):
        yuv_to_rgb(random_frame("yuv420p", 4, 4).planes, "yuv420p", out_dtype=np.int8)


def test_frame_shapes_for_odd_sizes() -> None:
    rgb = np.zeros((5, 7, 3), np.uint8)
    y, u, v = rgb_to_yuv(rgb, "yuv420p")
    assert y.shape == (5, 7) and u.shape == (3, 4) and v.shape == (3, 4)
    Frame((y, u, v), "yuv420p")  # validates
    assert yuv_to_rgb((y, u, v), "yuv420p").shape == (5, 7, 3)

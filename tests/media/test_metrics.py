"""PSNR, YUV 6:1:1 PSNR, RGB PSNR, MS-SSIM and bpp."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nvc.errors import MediaError
from nvc.media import (
    Frame,
    YuvPsnr,
    bpp,
    convert,
    mean_psnr,
    ms_ssim,
    pixel_format,
    psnr,
    psnr_rgb,
    psnr_yuv,
    synthetic_clip,
)
from nvc.media.metrics import MS_SSIM_WEIGHTS, ms_ssim_scales

from .conftest import random_frame


def _offset(frame: Frame, deltas: tuple[int, ...]) -> Frame:
    top = frame.pixel_format.max_value
    planes = tuple(
        np.clip(p.astype(np.int64) + d, 0, top).astype(p.dtype)
        for p, d in zip(frame.planes, deltas, strict=True)
    )
    return Frame(planes, frame.format, full_range=frame.full_range)


def _flat(format: str, w: int, h: int, value: int) -> Frame:
    pf = pixel_format(format)
    planes = tuple(np.full(s, value, dtype=pf.dtype) for s in pf.plane_shapes(w, h))
    return Frame(planes, format)


def test_psnr_constant_offset() -> None:
    a = np.full((10, 10), 100, np.uint8)
    assert psnr(a, a + 5, 255) == pytest.approx(20 * math.log10(255 / 5))
    assert psnr(a, a, 255) == math.inf
    ten = np.full((4, 4), 500, np.uint16)
    assert psnr(ten, ten - 4, 1023) == pytest.approx(20 * math.log10(1023 / 4))


def test_psnr_no_wraparound_on_unsigned() -> None:
    a = np.zeros((2, 2), np.uint8)
    b = np.full((2, 2), 255, np.uint8)
    assert psnr(a, b, 255) == pytest.approx(0.0)


def test_psnr_shape_mismatch() -> None:
    with pytest.raises(MediaError, match="shapes"):
        psnr(np.zeros((2, 2)), np.zeros((2, 3)), 1.0)


def test_psnr_yuv_weighting_8_and_10_bit() -> None:
    for format, peak in (("yuv420p", 255), ("yuv420p10le", 1023)):
        ref = _flat(format, 16, 8, 200)
        result = psnr_yuv(ref, _offset(ref, (1, 2, 4)))
        y, u, v = (20 * math.log10(peak / d) for d in (1, 2, 4))
        assert result.y == pytest.approx(y)
        assert result.u == pytest.approx(u)
        assert result.v == pytest.approx(v)
        assert result.weighted == pytest.approx((6 * y + u + v) / 8)
    same = psnr_yuv(ref, ref)
    assert same == YuvPsnr(math.inf, math.inf, math.inf, math.inf)


def test_psnr_yuv_converts_distorted_to_reference_format() -> None:
    ref = synthetic_clip(32, 16, 1)[0]
    assert psnr_yuv(ref, convert(ref, "yuv420p10le")).y == math.inf
    assert psnr_yuv(convert(ref, "rgb24"), convert(ref, "rgb24")).weighted == math.inf


def test_psnr_rgb_conventions() -> None:
    ref = random_frame("rgb24", 8, 8)
    dist = _offset(_flat("rgb24", 8, 8, 100), (3,))
    flat = _flat("rgb24", 8, 8, 100)
    assert psnr_rgb(flat, dist) == pytest.approx(20 * math.log10(255 / 3))
    assert psnr_rgb(ref, ref) == math.inf
    yuv = synthetic_clip(16, 8, 2)
    expected = psnr(convert(yuv[0], "rgb24").planes[0], convert(yuv[1], "rgb24").planes[0], 255)
    assert psnr_rgb(yuv[0], yuv[1]) == pytest.approx(expected)
    deep = [convert(f, "yuv420p10le") for f in yuv]
    assert abs(psnr_rgb(deep[0], deep[1]) - expected) < 0.5  # float RGB, peak 1
    with pytest.raises(MediaError, match="16x8 frame with a 8x8"):
        psnr_rgb(yuv[0], ref)


def test_means() -> None:
    assert mean_psnr([30.0, 40.0]) == 35.0
    assert mean_psnr([30.0, math.inf]) == math.inf
    with pytest.raises(MediaError):
        mean_psnr([])
    m = YuvPsnr.mean([YuvPsnr(30, 40, 50, 35), YuvPsnr(32, 42, 52, 37)])
    assert m == YuvPsnr(31, 41, 51, 36)


def test_bpp() -> None:
    assert bpp(1000, 10, 100, 10) == pytest.approx(0.8)
    assert bpp(0, 1, 1, 1) == 0.0
    for args in ((1, 0, 4, 4), (-1, 1, 4, 4), (1, 1, 0, 4)):
        with pytest.raises(MediaError):
            bpp(*args)


def test_ms_ssim_identical_is_one() -> None:
    frame = synthetic_clip(176, 144, 1)[0]
    assert ms_ssim(frame, frame) == pytest.approx(1.0)
    img = np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    assert ms_ssim(img, img) == pytest.approx(1.0)


def test_ms_ssim_monotone_in_noise() -> None:
    ref = convert(synthetic_clip(192, 176, 1, seed=4)[0], "rgb24").planes[0]
    rng = np.random.default_rng(1)
    noise = rng.standard_normal(ref.shape)
    values = []
    for sigma in (1, 3, 8, 20, 50):
        noisy = np.clip(ref + sigma * noise, 0, 255).astype(np.uint8)
        values.append(ms_ssim(ref, noisy))
    assert all(1.0 > a > b > 0.0 for a, b in zip(values, values[1:], strict=False))


def test_ms_ssim_of_flat_images_is_analytic() -> None:
    # sigma = 0 everywhere: every cs is 1 and only the coarsest luminance term remains
    a = np.full((200, 200), 0.4)
    b = np.full((200, 200), 0.6)
    c1 = 0.01**2
    lum = (2 * 0.4 * 0.6 + c1) / (0.4**2 + 0.6**2 + c1)
    expected = lum ** (MS_SSIM_WEIGHTS[-1] / sum(MS_SSIM_WEIGHTS))
    assert ms_ssim(a, b) == pytest.approx(expected, rel=1e-9)


def test_ms_ssim_scales_and_small_images() -> None:
    assert ms_ssim_scales(1920, 1080) == 5
    assert ms_ssim_scales(161, 161) == 5
    assert ms_ssim_scales(160, 300) == 4
    assert ms_ssim_scales(11, 11) == 1
    small = np.random.default_rng(2).random((24, 30))
    assert 0.0 < ms_ssim(small, np.clip(small + 0.05, 0, 1)) < 1.0
    with pytest.raises(MediaError, match="at least 11x11"):
        ms_ssim(np.zeros((10, 40)), np.zeros((10, 40)))


def test_ms_ssim_inputs() -> None:
    frame = synthetic_clip(64, 48, 2)
    luma = ms_ssim(frame[0], frame[1], channels="y")
    assert 0.0 < luma < 1.0
    y0 = frame[0].planes[0]
    assert luma == pytest.approx(ms_ssim(y0, frame[1].planes[0]))
    assert ms_ssim(y0, frame[1].planes[0]) == pytest.approx(
        ms_ssim(y0 / 255.0, frame[1].planes[0] / 255.0)
    )
    with pytest.raises(MediaError, match="shapes"):
        ms_ssim(y0, y0[:-1])
    with pytest.raises(MediaError, match="channels"):
        ms_ssim(frame[0], frame[1], channels="u")
    with pytest.raises(MediaError, match="data_range"):
        ms_ssim(y0.astype(np.int32), y0.astype(np.int32))

"""The synthetic clip: deterministic, every format, natural-ish statistics, fast."""

from __future__ import annotations

import time
from fractions import Fraction

import numpy as np
import pytest

from nvc.errors import MediaError
from nvc.media import FORMATS, iter_synthetic_clip, psnr, synthetic_clip


def test_deterministic_per_seed() -> None:
    a = synthetic_clip(48, 32, 3, seed=7)
    b = synthetic_clip(48, 32, 3, seed=7)
    c = synthetic_clip(48, 32, 3, seed=8)
    assert all(x.equal(y) for x, y in zip(a, b, strict=True))
    assert not a[0].equal(c[0])


@pytest.mark.parametrize("format", list(FORMATS))
def test_every_format_and_odd_sizes(format: str) -> None:
    clip = synthetic_clip(37, 23, 2, fps=Fraction(30000, 1001), format=format)
    assert [f.format for f in clip] == [format] * 2
    assert [f.pts for f in clip] == [0, 1]
    assert clip[1].time_base == Fraction(1001, 30000)
    assert (clip[0].width, clip[0].height) == (37, 23)


def test_lazy_iterator() -> None:
    frames = iter_synthetic_clip(32, 16, 1000)
    first = next(frames)
    assert first.pts == 0 and next(frames).pts == 1


def test_spatial_detail_at_several_scales() -> None:
    y = synthetic_clip(256, 144, 1, seed=1)[0].planes[0].astype(np.float64)
    assert y.std() > 15  # real contrast
    # neighbouring pixels are strongly but not perfectly correlated, as in natural images
    corr = np.corrcoef(y[:, :-1].ravel(), y[:, 1:].ravel())[0, 1]
    assert 0.8 < corr < 0.995
    # energy at fine, middle and coarse scales
    spectrum = np.abs(np.fft.rfft2(y - y.mean())) ** 2
    fy = np.abs(np.fft.fftfreq(y.shape[0]))[:, None]
    fx = np.fft.rfftfreq(y.shape[1])[None, :]
    radius = np.maximum(fy, fx)
    bands = [
        spectrum[(radius >= lo) & (radius < hi)].sum()
        for lo, hi in ((0.005, 0.05), (0.05, 0.2), (0.2, 0.5))
    ]
    total = sum(bands)
    assert all(b / total > 0.005 for b in bands)
    assert bands[0] > bands[1] > bands[2]  # falling spectrum


def test_motion_between_frames() -> None:
    clip = synthetic_clip(160, 96, 12, seed=2)
    consecutive = [
        psnr(a.planes[0], b.planes[0], 255) for a, b in zip(clip, clip[1:], strict=False)
    ]
    assert all(15 < p < 45 for p in consecutive)  # things move, but frames stay related
    assert psnr(clip[0].planes[0], clip[11].planes[0], 255) < min(consecutive)


def test_fast_enough() -> None:
    start = time.perf_counter()
    clip = synthetic_clip(640, 360, 60)
    elapsed = time.perf_counter() - start
    assert len(clip) == 60
    assert elapsed < 5.0


def test_bad_arguments() -> None:
    with pytest.raises(MediaError):
        synthetic_clip(0, 16, 1)
    with pytest.raises(MediaError):
        synthetic_clip(16, 16, 0)
    with pytest.raises(MediaError):
        synthetic_clip(16, 16, 1, format="nv12")

"""BD-rate / BD-PSNR: hand-computed cases, and an independent implementation when installed."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from nvc.bench import bdrate

RATES = [0.01, 0.02, 0.05, 0.1, 0.2]
PSNR = [30.1, 32.6, 35.2, 36.9, 38.3]


@pytest.mark.parametrize("method", bdrate.METHODS)
@pytest.mark.parametrize("factor", [0.5, 0.8, 1.0, 1.25, 2.0])
def test_constant_rate_factor_is_the_bd_rate(method: str, factor: float) -> None:
    # The test codec needs `factor` times the anchor's bits for every quality.
    test_rates = [r * factor for r in RATES]
    got = bdrate.bd_rate(RATES, PSNR, test_rates, PSNR, method)
    assert got == pytest.approx((factor - 1.0) * 100.0, abs=1e-9)


@pytest.mark.parametrize("method", bdrate.METHODS)
@pytest.mark.parametrize("offset", [-1.5, -0.25, 0.0, 0.4, 2.0])
def test_constant_quality_offset_is_the_bd_psnr(method: str, offset: float) -> None:
    got = bdrate.bd_psnr(RATES, PSNR, RATES, [p + offset for p in PSNR], method)
    assert got == pytest.approx(offset, abs=1e-9)


@pytest.mark.parametrize("method", bdrate.METHODS)
def test_parallel_lines_in_log_rate(method: str) -> None:
    # PSNR = a + b log10(R): every interpolant reproduces a straight line exactly, so
    # a 1 dB gain with slope b = 10 dB/decade saves 1 - 10**(-1/10) of the rate.
    rates = [0.01, 0.03, 0.08, 0.2, 0.5]
    anchor = [40.0 + 10.0 * math.log10(r) for r in rates]
    test = [q + 1.0 for q in anchor]
    expected = (10.0 ** (-1.0 / 10.0) - 1.0) * 100.0
    assert bdrate.bd_rate(rates, anchor, rates, test, method) == pytest.approx(expected, abs=1e-9)
    assert bdrate.bd_psnr(rates, anchor, rates, test, method) == pytest.approx(1.0, abs=1e-9)


def test_pchip_derivatives_and_integral_by_hand() -> None:
    # x = 0, 1, 2; y = 0, 1, 4: secants 1 and 3.
    # Interior: weighted harmonic mean with w1 = w2 = 3: 6 / (3/1 + 3/3) = 1.5.
    # Left end: ((2h0 + h1) m0 - h0 m1) / (h0 + h1) = (3 - 3) / 2 = 0.
    # Right end: ((2h1 + h0) m1 - h1 m0) / (h0 + h1) = (9 - 1) / 2 = 4.
    x = np.array([0.0, 1.0, 2.0])
    y = np.array([0.0, 1.0, 4.0])
    assert bdrate.pchip_slopes(x, y).tolist() == pytest.approx([0.0, 1.5, 4.0])
    # A cubic Hermite piece integrates to h (y0 + y1) / 2 + h^2 (d0 - d1) / 12:
    # [0, 1]: 0.5 - 1.5 / 12 = 0.375; [1, 2]: 2.5 - 2.5 / 12 = 2.291666...
    assert bdrate.integral(x, y, 0.0, 1.0, "pchip") == pytest.approx(0.375)
    assert bdrate.integral(x, y, 1.0, 2.0, "pchip") == pytest.approx(2.5 - 2.5 / 12.0)
    assert bdrate.integral(x, y, 0.0, 2.0, "pchip") == pytest.approx(0.375 + 2.5 - 2.5 / 12.0)
    # A partial interval: on [0, 1] the piece is s^2 (3 - 1.5) + s^3 (1.5 - 2) ... integrate
    # 1.5 s^2 - 0.5 s^3 from 0 to 0.5: 1.5/3 * 0.125 - 0.5/4 * 0.0625 = 0.0546875.
    assert bdrate.integral(x, y, 0.0, 0.5, "pchip") == pytest.approx(0.0546875)


def test_pchip_keeps_monotone_data_monotone() -> None:
    x = np.array([30.0, 31.0, 35.0, 35.5, 40.0])
    y = np.array([-2.0, -1.9, -1.0, -0.2, 0.0])
    d = bdrate.pchip_slopes(x, y)
    assert np.all(d >= 0)


def test_hand_computed_bd_rate_of_two_point_curves() -> None:
    # Two points per curve: all interpolants are the straight line. Anchor: log10 R goes
    # from -2 to -1 over 30..40 dB; test: from -2.1 to -1.1. Difference -0.1 everywhere.
    got = bdrate.bd_rate([0.01, 0.1], [30.0, 40.0], [10**-2.1, 10**-1.1], [30.0, 40.0], "pchip")
    assert got == pytest.approx((10**-0.1 - 1) * 100)


def test_only_the_common_range_counts() -> None:
    # The test curve covers 32..36 dB only; below and above it the anchor is ignored.
    anchor_r = [0.01, 0.02, 0.04, 0.08, 0.16]
    anchor_q = [30.0, 32.0, 34.0, 36.0, 38.0]
    test_r = [0.02 * 0.9, 0.04 * 0.9, 0.08 * 0.9]
    test_q = [32.0, 34.0, 36.0]
    assert bdrate.bd_rate(anchor_r, anchor_q, test_r, test_q) == pytest.approx(-10.0)


def test_errors() -> None:
    with pytest.raises(ValueError, match="overlap"):
        bdrate.bd_rate([0.1, 0.2], [30.0, 31.0], [0.1, 0.2], [35.0, 36.0])
    with pytest.raises(ValueError, match="two rate points"):
        bdrate.bd_rate([0.1], [30.0], [0.1, 0.2], [30.0, 31.0])
    with pytest.raises(ValueError, match="monotone"):
        bdrate.bd_rate([0.1, 0.2, 0.3], [30.0, 30.0, 31.0], [0.1, 0.2], [30.0, 31.0])
    with pytest.raises(ValueError, match="positive"):
        bdrate.bd_rate([0.0, 0.2], [30.0, 31.0], [0.1, 0.2], [30.0, 31.0])
    with pytest.raises(ValueError, match="4 points"):
        bdrate.bd_rate(RATES[:3], PSNR[:3], RATES[:3], PSNR[:3], "cubic")
    with pytest.raises(ValueError, match="unknown"):
        bdrate.bd_rate(RATES, PSNR, RATES, PSNR, "spline")


def test_unsorted_points_are_sorted() -> None:
    order = [3, 0, 4, 1, 2]
    r = [RATES[i] for i in order]
    q = [PSNR[i] for i in order]
    assert bdrate.bd_rate(r, q, RATES, PSNR) == pytest.approx(0.0, abs=1e-9)


def test_pareto_front_drops_points_that_do_not_improve() -> None:
    pts = [(0.2, 36.0), (0.1, 35.0), (0.3, 35.5), (0.4, 37.0), (0.1, 34.0), (0.5, math.nan)]
    assert bdrate.pareto_front(pts) == [(0.1, 35.0), (0.2, 36.0), (0.4, 37.0)]


def test_overlap_fraction() -> None:
    assert bdrate.overlap([30.0, 40.0], [35.0, 45.0]) == pytest.approx(5.0 / 15.0)
    assert bdrate.overlap([30.0, 31.0], [32.0, 33.0]) == 0.0


def _realistic_curves(rng: np.random.Generator) -> tuple[list[float], ...]:
    """Two RD curves shaped like codecs' (concave in log-rate), with measurement noise."""

    def curve(n: int, base: float, slope: float, bend: float, lo: float) -> tuple[list, list]:
        logr = np.sort(rng.uniform(lo, lo + 1.6, n))
        logr += np.arange(n) * 1e-3  # strictly increasing
        q = base + slope * logr - bend * logr**2 + rng.normal(0.0, 0.05, n)
        q = np.maximum.accumulate(q) + np.arange(n) * 1e-3
        return list(10**logr), list(q)

    ra, qa = curve(int(rng.integers(4, 8)), 44.0, 6.0, 0.4, -2.2)
    rt, qt = curve(
        int(rng.integers(4, 8)),
        44.0 + rng.uniform(-2.0, 2.0),
        rng.uniform(4.0, 8.0),
        rng.uniform(0.0, 0.8),
        rng.uniform(-2.5, -1.9),
    )
    return ra, qa, rt, qt


@pytest.mark.parametrize("method", bdrate.METHODS)
def test_agrees_with_the_bjontegaard_package(method: str) -> None:
    import bjontegaard as bj  # the test extra installs it

    rng = np.random.default_rng(5)
    checked = 0
    for _ in range(200):
        ra, qa, rt, qt = _realistic_curves(rng)
        if bdrate.overlap(qa, qt) < 0.3 or bdrate.overlap(np.log10(ra), np.log10(rt)) < 0.3:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want_rate = bj.bd_rate(ra, qa, rt, qt, method, require_matching_points=False)
            want_psnr = bj.bd_psnr(ra, qa, rt, qt, method, require_matching_points=False)
        assert bdrate.bd_rate(ra, qa, rt, qt, method) == pytest.approx(want_rate, abs=0.1)
        assert bdrate.bd_psnr(ra, qa, rt, qt, method) == pytest.approx(want_psnr, abs=0.005)
        checked += 1
    assert checked > 50

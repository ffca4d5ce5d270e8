"""Bjontegaard deltas: BD-rate and BD-PSNR between two rate-distortion curves.

The Bjontegaard method (VCEG-M33, 2001) compares a test curve with an anchor curve
over the range of quality (for BD-rate) or of rate (for BD-PSNR) that both cover:

    BD-rate = 10 ** (mean over the common PSNR range of
                     [log10 R_test(D) - log10 R_anchor(D)]) - 1        (as a percentage)
    BD-PSNR = mean over the common log10-rate range of [D_test(r) - D_anchor(r)]

Each curve is known only at its measured points, so it is interpolated. Three
interpolants are offered, all implemented here in numpy and integrated exactly:

- "pchip" (the default): monotone piecewise cubic Hermite interpolation, with the
  derivatives of Fritsch and Carlson (1980) in the weighted-harmonic-mean form of
  Fritsch and Butland (1984), and the shape-preserving three-point end conditions
  described by Moler, "Numerical Computing with MATLAB", section 3.6. This is the
  piecewise-cubic variant the field now reports (JVET/VCEG spreadsheets use a
  piecewise cubic; MATLAB's and SciPy's `pchip` use these same formulas).
- "akima": Akima's (1970) piecewise cubic, with his end extrapolation of slopes.
- "cubic": the original VCEG-M33 method, one least-squares cubic polynomial through
  all points (needs at least four points per curve).

Curves are given as sequences of (rate, quality) points in any order. Rates must be
positive. Within one curve the abscissa of each integral (quality for BD-rate, log-rate
for BD-PSNR) must be strictly increasing once sorted: callers with non-monotone
measurements should first keep only the points on the curve's upper envelope
(`pareto_front`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

METHODS = ("pchip", "akima", "cubic")

# Rates or qualities: any sequence of numbers, numpy arrays included.
Values = Sequence[float] | np.ndarray


class _Piecewise:
    """A piecewise cubic in local coordinates: on [x_k, x_{k+1}] the value is
    c0[k] + c1[k] s + c2[k] s^2 + c3[k] s^3 with s = x - x_k."""

    def __init__(self, x: np.ndarray, y: np.ndarray, d: np.ndarray) -> None:
        h = np.diff(x)
        m = np.diff(y) / h
        self.x = x
        self.c0 = y[:-1]
        self.c1 = d[:-1]
        self.c2 = (3.0 * m - 2.0 * d[:-1] - d[1:]) / h
        self.c3 = (d[:-1] + d[1:] - 2.0 * m) / (h * h)

    def _antiderivative_piece(self, k: int, s: float) -> float:
        return float(
            self.c0[k] * s
            + self.c1[k] * s**2 / 2.0
            + self.c2[k] * s**3 / 3.0
            + self.c3[k] * s**4 / 4.0
        )

    def __call__(self, xq: float) -> float:
        k = int(np.clip(np.searchsorted(self.x, xq, side="right") - 1, 0, len(self.x) - 2))
        s = xq - self.x[k]
        return float(self.c0[k] + self.c1[k] * s + self.c2[k] * s**2 + self.c3[k] * s**3)

    def integrate(self, lo: float, hi: float) -> float:
        """Exact integral over [lo, hi], a sub-interval of [x_0, x_n]."""
        total = 0.0
        for k in range(len(self.x) - 1):
            a = max(lo, float(self.x[k]))
            b = min(hi, float(self.x[k + 1]))
            if b > a:
                base = float(self.x[k])
                total += self._antiderivative_piece(k, b - base) - self._antiderivative_piece(
                    k, a - base
                )
        return total


def pchip_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Derivatives at the nodes of the monotone piecewise cubic Hermite interpolant."""
    n = len(x)
    h = np.diff(x)
    m = np.diff(y) / h
    if n == 2:
        return np.array([m[0], m[0]])
    d = np.zeros(n)
    for k in range(1, n - 1):
        a, b = m[k - 1], m[k]
        if a == 0.0 or b == 0.0 or math.copysign(1.0, a) != math.copysign(1.0, b):
            d[k] = 0.0  # local extremum or flat piece: keep the interpolant monotone
        else:
            w1 = 2.0 * h[k] + h[k - 1]
            w2 = h[k] + 2.0 * h[k - 1]
            d[k] = (w1 + w2) / (w1 / a + w2 / b)
    d[0] = _pchip_end(h[0], h[1], m[0], m[1])
    d[-1] = _pchip_end(h[-1], h[-2], m[-1], m[-2])
    return d


def _pchip_end(h0: float, h1: float, m0: float, m1: float) -> float:
    """Shape-preserving three-point derivative at an end of the interval."""
    d = ((2.0 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
    if np.sign(d) != np.sign(m0):
        return 0.0
    if np.sign(m0) != np.sign(m1) and abs(d) > abs(3.0 * m0):
        return 3.0 * m0
    return float(d)


def akima_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Derivatives at the nodes of Akima's interpolant (linear through two points)."""
    n = len(x)
    m = np.diff(y) / np.diff(x)
    if n == 2:
        return np.array([m[0], m[0]])
    # Two slopes are extrapolated beyond each end, as in Akima (1970): ext[k + 2] = m_k.
    ext = np.empty(n + 3)
    ext[2:-2] = m
    ext[1] = 2.0 * ext[2] - ext[3]
    ext[0] = 2.0 * ext[1] - ext[2]
    ext[-2] = 2.0 * ext[-3] - ext[-4]
    ext[-1] = 2.0 * ext[-2] - ext[-3]
    d = np.empty(n)
    for i in range(n):
        m_im2, m_im1, m_i, m_ip1 = ext[i], ext[i + 1], ext[i + 2], ext[i + 3]
        w1 = abs(m_ip1 - m_i)
        w2 = abs(m_im1 - m_im2)
        if w1 + w2 > 1e-12 * max(abs(m_ip1), abs(m_i), abs(m_im1), abs(m_im2), 1e-300):
            d[i] = (w1 * m_im1 + w2 * m_i) / (w1 + w2)
        else:
            d[i] = 0.5 * (m_im1 + m_i)
    return d


def _prepare(x: Values, y: Values, what: str) -> tuple[np.ndarray, np.ndarray]:
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    if xa.ndim != 1 or xa.shape != ya.shape:
        raise ValueError(f"{what}: rates and qualities must be equal-length sequences")
    if len(xa) < 2:
        raise ValueError(f"{what}: needs at least two rate points, got {len(xa)}")
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(ya))):
        raise ValueError(f"{what}: rates and qualities must be finite")
    order = np.argsort(xa, kind="stable")
    xa, ya = xa[order], ya[order]
    if np.any(np.diff(xa) <= 0):
        raise ValueError(f"{what}: the points are not strictly monotone (repeated values)")
    return xa, ya


def integral(x: Values, y: Values, lo: float, hi: float, method: str) -> float:
    """Exact integral over [lo, hi] of the `method` interpolant through (x, y)."""
    xa, ya = _prepare(x, y, "curve")
    if method == "pchip":
        return _Piecewise(xa, ya, pchip_slopes(xa, ya)).integrate(lo, hi)
    if method == "akima":
        return _Piecewise(xa, ya, akima_slopes(xa, ya)).integrate(lo, hi)
    if method == "cubic":
        if len(xa) < 4:
            raise ValueError(f"method 'cubic' needs at least 4 points per curve, got {len(xa)}")
        p = np.polyint(np.polyfit(xa, ya, 3))
        return float(np.polyval(p, hi) - np.polyval(p, lo))
    raise ValueError(f"unknown BD interpolation {method!r} (choose from {', '.join(METHODS)})")


def _delta(
    xa: Values,
    ya: Values,
    xt: Values,
    yt: Values,
    method: str,
) -> float:
    """Mean of (test - anchor) over the overlap of the two abscissa ranges."""
    _prepare(xa, ya, "anchor")
    _prepare(xt, yt, "test")
    lo = max(min(xa), min(xt))
    hi = min(max(xa), max(xt))
    if not hi > lo:
        raise ValueError("the two curves do not overlap")
    ia = integral(xa, ya, lo, hi, method)
    it = integral(xt, yt, lo, hi, method)
    return (it - ia) / (hi - lo)


def _log_rates(rates: Values, what: str) -> list[float]:
    if any(not (r > 0 and math.isfinite(r)) for r in rates):
        raise ValueError(f"{what}: rates must be positive and finite")
    return [math.log10(r) for r in rates]


def bd_rate(
    anchor_rate: Values,
    anchor_quality: Values,
    test_rate: Values,
    test_quality: Values,
    method: str = "pchip",
) -> float:
    """Average rate difference of test against anchor at equal quality, in percent.

    Negative means the test codec needs fewer bits for the same quality.
    """
    la = _log_rates(anchor_rate, "anchor")
    lt = _log_rates(test_rate, "test")
    avg = _delta(list(anchor_quality), la, list(test_quality), lt, method)
    return (10.0**avg - 1.0) * 100.0


def bd_psnr(
    anchor_rate: Values,
    anchor_quality: Values,
    test_rate: Values,
    test_quality: Values,
    method: str = "pchip",
) -> float:
    """Average quality difference of test against anchor at equal rate (dB for PSNR)."""
    la = _log_rates(anchor_rate, "anchor")
    lt = _log_rates(test_rate, "test")
    return _delta(la, list(anchor_quality), lt, list(test_quality), method)


def overlap(anchor_quality: Values, test_quality: Values) -> float:
    """Fraction of the union of the two ranges that both cover (0 when disjoint)."""
    a, t = list(anchor_quality), list(test_quality)
    lo, hi = max(min(a), min(t)), min(max(a), max(t))
    span = max(max(a), max(t)) - min(min(a), min(t))
    return max(hi - lo, 0.0) / span if span > 0 else 0.0


def pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (rate, quality) points on the upper envelope, by increasing rate.

    A point is dropped when a point of lower or equal rate has equal or higher quality
    (a codec asked for more bits that did not deliver more quality); what remains has
    strictly increasing rate and quality, as the Bjontegaard integrals need.
    """
    best: list[tuple[float, float]] = []
    for rate, quality in sorted(points, key=lambda p: (p[0], -p[1])):
        if not (math.isfinite(rate) and math.isfinite(quality)):
            continue
        if best and rate == best[-1][0]:
            continue
        if best and quality <= best[-1][1]:
            continue
        best.append((rate, quality))
    return best

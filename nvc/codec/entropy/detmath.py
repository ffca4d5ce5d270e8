"""Reproducible float64 math: the same bits on every IEEE-754 machine.

Every integer table the entropy coder uses is computed from functions in this module.
They are built only from the operations IEEE-754 requires to be correctly rounded
(+, -, *, /, comparisons, floor/rint, frexp/ldexp), applied elementwise by numpy ufuncs
in a fixed order. No libm transcendental (exp, log, erf), no BLAS, no reduction whose
summation order numpy may change (`np.sum` is pairwise and SIMD-dependent; we use
explicit loops or `np.cumsum`). Two processes, two thread counts or two different CPUs
therefore produce bit-identical tables, and so the encoder and the decoder agree.

Accuracy is about 1e-15 relative, which is far below what the 24-bit tables resolve;
what matters here is reproducibility, not the last ulp.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

# ln(2) split so that k * _LN2_HI is exact for |k| < 2**11 (the classic fdlibm constants).
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
_SQRT_HALF = 0.70710678118654752440
_TWO_OVER_SQRT_PI = 1.12837916709551257390
_INV_SQRT2 = 0.70710678118654752440

# Taylor coefficients 1/n! (exactly rounded quotients of exact integers).
_EXP_COEFFS = tuple(1.0 / math.factorial(n) for n in range(14))
# atanh series coefficients 1/(2n+1).
_ATANH_COEFFS = tuple(1.0 / (2 * n + 1) for n in range(12))
# Factors of the erf series: 1/(2n+1) for the recurrence t_n = t_{n-1} * 2x^2 / (2n+1).
_ERF_TERMS = 100
_ERF_FACTORS = tuple(1.0 / (2 * n + 1) for n in range(1, _ERF_TERMS + 1))
_ERF_CLIP = 5.0  # erf(5) = 1 - 1.5e-12; beyond it erf is taken as exactly +-1


def _f64(x: npt.ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def exp(x: npt.ArrayLike) -> FloatArray:
    """e**x, reproducible. Range reduction by ln 2, then a degree-13 Taylor polynomial."""
    x = np.clip(_f64(x), -745.0, 709.0)
    k = np.rint(x * _INV_LN2)
    r = (x - k * _LN2_HI) - k * _LN2_LO  # |r| <= 0.35
    p = np.full_like(r, _EXP_COEFFS[-1])
    for c in reversed(_EXP_COEFFS[:-1]):
        p = p * r + c
    return np.ldexp(p, k.astype(np.int32))


def log(x: npt.ArrayLike) -> FloatArray:
    """Natural log of x > 0, reproducible (non-positive input gives -inf / nan)."""
    x = _f64(x)
    bad = ~(x > 0)
    safe = np.where(bad, 1.0, x)
    m, e = np.frexp(safe)  # safe = m * 2**e, m in [0.5, 1)
    small = m < _SQRT_HALF
    m = np.where(small, m * 2.0, m)
    ef = (e - small).astype(np.float64)
    u = (m - 1.0) / (m + 1.0)  # |u| <= 0.172
    u2 = u * u
    s = np.full_like(u, _ATANH_COEFFS[-1])
    for c in reversed(_ATANH_COEFFS[:-1]):
        s = s * u2 + c
    out = ef * _LN2_HI + (2.0 * u * s + ef * _LN2_LO)
    if np.any(bad):
        out = np.where(x == 0, -np.inf, np.where(bad, np.nan, out))
    return out


def log1p(x: npt.ArrayLike) -> FloatArray:
    """log(1 + x) for x > -1, accurate for tiny x (Goldberg's trick), reproducible."""
    x = _f64(x)
    w = 1.0 + x
    d = w - 1.0
    safe_d = np.where(d == 0, 1.0, d)
    return np.where(d == 0, x, log(w) * (x / safe_d))


def erf(x: npt.ArrayLike) -> FloatArray:
    """Error function, reproducible.

    Uses the all-positive series erf(x) = 2x/sqrt(pi) e^{-x^2} sum_n (2x^2)^n / (2n+1)!!,
    which has no cancellation; |x| >= 5 gives +-1.
    """
    x = _f64(x)
    a = np.minimum(np.abs(x), _ERF_CLIP)
    two_a2 = 2.0 * (a * a)
    term = np.ones_like(a)
    total = np.ones_like(a)
    for f in _ERF_FACTORS:
        term = (term * two_a2) * f
        total = total + term
    val = (_TWO_OVER_SQRT_PI * a) * exp(-(a * a)) * total
    val = np.where(np.abs(x) >= _ERF_CLIP, 1.0, np.minimum(val, 1.0))
    return np.where(x < 0, -val, val)


def normal_cdf(x: npt.ArrayLike) -> FloatArray:
    """Standard normal CDF Phi(x), reproducible."""
    return 0.5 + 0.5 * erf(_f64(x) * _INV_SQRT2)


def laplace_cdf(x: npt.ArrayLike) -> FloatArray:
    """CDF of the standard Laplace distribution (unit diversity b = 1), reproducible."""
    x = _f64(x)
    half_tail = 0.5 * exp(-np.abs(x))
    return np.where(x < 0, half_tail, 1.0 - half_tail)


def sigmoid(x: npt.ArrayLike) -> FloatArray:
    """Logistic function, reproducible and stable for large |x|."""
    x = _f64(x)
    e = exp(-np.abs(x))
    pos = 1.0 / (1.0 + e)
    return np.where(x >= 0, pos, e / (1.0 + e))


def softplus(x: npt.ArrayLike) -> FloatArray:
    """log(1 + e**x), reproducible and stable."""
    x = _f64(x)
    return np.maximum(x, 0.0) + log1p(exp(-np.abs(x)))


def tanh(x: npt.ArrayLike) -> FloatArray:
    """Hyperbolic tangent, reproducible."""
    x = _f64(x)
    e = exp(-2.0 * np.abs(x))
    t = (1.0 - e) / (1.0 + e)
    return np.where(x < 0, -t, t)


def ordered_sum(x: FloatArray, axis: int = -1) -> FloatArray:
    """Sum along `axis` strictly left to right (np.sum's order is not specified)."""
    return np.asarray(np.cumsum(x, axis=axis).take(-1, axis=axis), dtype=np.float64)

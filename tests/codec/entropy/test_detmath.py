"""detmath: accurate enough, and built only from reproducible operations."""

from __future__ import annotations

import math

import numpy as np

from nvc.codec.entropy import detmath


def test_exp_and_log_match_libm() -> None:
    x = np.linspace(-700, 700, 20001)
    assert np.max(np.abs(detmath.exp(x) / np.exp(x) - 1)) < 1e-15
    y = np.exp(np.linspace(-600, 600, 20001))
    assert np.max(np.abs(detmath.log(y) - np.log(y))) < 1e-13


def test_log1p_is_accurate_near_zero() -> None:
    x = np.concatenate([np.exp(np.linspace(-700, 0, 5001)), np.linspace(-0.9, 10, 5001)])
    np.testing.assert_allclose(detmath.log1p(x), np.log1p(x), rtol=1e-15)


def test_log_of_non_positive() -> None:
    out = detmath.log(np.array([0.0, -1.0, 1.0]))
    assert out[0] == -np.inf and np.isnan(out[1]) and out[2] == 0.0


def test_erf_and_normal_cdf_match_math() -> None:
    x = np.linspace(-8, 8, 4001)
    ref = np.array([math.erf(v) for v in x])
    assert np.max(np.abs(detmath.erf(x) - ref)) < 2e-12
    tails = detmath.normal_cdf(np.array([-6.0, -3.0, 0.0, 3.0]))
    want = [0.5 * math.erfc(v / math.sqrt(2)) for v in (6.0, 3.0, 0.0, -3.0)]
    np.testing.assert_allclose(tails, want, rtol=1e-6)


def test_smooth_functions_match_numpy() -> None:
    x = np.linspace(-40, 40, 8001)
    np.testing.assert_allclose(detmath.sigmoid(x), 1 / (1 + np.exp(-x)), rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(detmath.softplus(x), np.logaddexp(0, x), rtol=1e-14)
    np.testing.assert_allclose(detmath.tanh(x), np.tanh(x), atol=1e-15)
    np.testing.assert_allclose(
        detmath.laplace_cdf(np.array([-1.0, 0.0, 2.0])),
        [0.5 * math.exp(-1), 0.5, 1 - 0.5 * math.exp(-2)],
        rtol=1e-15,
    )


def test_ordered_sum_is_left_to_right() -> None:
    x = np.array([[1e16, 1.0, -1e16, 1.0]])
    # left to right: (1e16 + 1) - 1e16 + 1 = 1 (the first 1 is absorbed)
    assert detmath.ordered_sum(x)[0] == 1.0

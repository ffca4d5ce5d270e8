"""Quantization helpers: exact steps, rounding, the rate proxy, the exactness bound."""

from __future__ import annotations

import numpy as np
import torch

from nvc.codec.inr.quant import (
    EXACT_LIMIT,
    code_steps,
    dequantize,
    empirical_bits,
    exactness_violations,
    laplace_bits,
    quantize_weight,
    steps_from_code,
)


def test_steps_are_exact_powers_of_two_fractions() -> None:
    k = np.arange(-96, 1)
    steps = steps_from_code(np.float32(0.5), k)
    assert steps.dtype == np.float32
    ref = 0.5 * 2.0 ** (k / 32.0)
    assert np.all(np.abs(steps / ref - 1) < 1e-7)
    assert steps_from_code(np.float32(0.5), np.array([0]))[0] == np.float32(0.5)


def test_code_steps_round_trip_within_a_64th_octave() -> None:
    steps = np.array([1e-3, 3e-3, 7.7e-4, 2e-2])
    base, k = code_steps(steps)
    back = steps_from_code(base, k)
    assert np.all(np.abs(np.log2(back / steps)) <= 1 / 64 + 1e-6)
    assert k.max() == 0


def test_quantize_and_dequantize_per_channel() -> None:
    w = np.random.default_rng(0).normal(size=(4, 3, 3, 3)).astype(np.float32)
    steps = np.array([0.1, 0.2, 0.05, 1.0], dtype=np.float32)
    q = quantize_weight(w, steps)
    assert q.dtype == np.int64
    back = dequantize(q, steps)
    assert np.all(np.abs(back - w) <= steps.reshape(-1, 1, 1, 1) / 2 + 1e-6)


def test_laplace_proxy_is_close_to_the_empirical_entropy() -> None:
    rng = np.random.default_rng(1)
    q = np.rint(rng.laplace(scale=3.0, size=20000))
    proxy = float(laplace_bits(torch.from_numpy(q)))
    emp = empirical_bits(q.astype(np.int64))
    assert emp <= proxy * 1.01
    assert proxy < emp * 1.1


def test_exactness_violations_flag_large_channels() -> None:
    ints = np.zeros((3, 10), dtype=np.int64)
    ints[1, :] = EXACT_LIMIT // (10 * 512) + 1
    assert list(exactness_violations(ints, 512)) == [1]
    assert exactness_violations(ints, 1).size == 0

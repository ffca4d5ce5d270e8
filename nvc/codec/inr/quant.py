"""Quantization: straight-through rounding for training, exact steps for coding.

Training (quantization-aware): every weight tensor, bias and layer input is rounded to a
multiple of its step in the forward pass, and the rounding is skipped in the backward pass
(straight-through estimator). Steps are learned in the log domain (LSQ's gradient falls out
of the straight-through formulation). A rate proxy, the code length of the integers under a
discretized Laplace of maximum-likelihood scale, is added to the loss (the "consistent
entropy minimization" of Boosting-NeRV: the coder then codes the same integers with their
empirical histogram, which never costs more than this proxy plus the table).

Coding: per-channel steps are sent as one float32 base per tensor plus small integer
exponents, step_c = base * 2^(k_c / 32), evaluated with exact float operations (a table of
the eight fractional powers, then a power-of-two scaling), so encoder and decoder get the
same float32 steps on any machine.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

# float32(2 ** (j / 32)) for j = 0..31, written exactly so no libm pow is involved.
_POW2_FRACTIONS = np.array(
    [
        float.fromhex(v)
        for v in (
            "0x1.000000p+0",
            "0x1.059b0ep+0",
            "0x1.0b5586p+0",
            "0x1.11301ep+0",
            "0x1.172b84p+0",
            "0x1.1d4874p+0",
            "0x1.2387a6p+0",
            "0x1.29e9e0p+0",
            "0x1.306fe0p+0",
            "0x1.371a74p+0",
            "0x1.3dea64p+0",
            "0x1.44e086p+0",
            "0x1.4bfdaep+0",
            "0x1.5342b6p+0",
            "0x1.5ab07ep+0",
            "0x1.6247ecp+0",
            "0x1.6a09e6p+0",
            "0x1.71f75ep+0",
            "0x1.7a1148p+0",
            "0x1.82589ap+0",
            "0x1.8ace54p+0",
            "0x1.93737cp+0",
            "0x1.9c4918p+0",
            "0x1.a5503cp+0",
            "0x1.ae89fap+0",
            "0x1.b7f770p+0",
            "0x1.c199bep+0",
            "0x1.cb720ep+0",
            "0x1.d5818ep+0",
            "0x1.dfc974p+0",
            "0x1.ea4afap+0",
            "0x1.f50766p+0",
        )
    ],
    dtype=np.float32,
)
STEP_FRACTION = 32  # steps are base * 2^(k / 32)
STEP_K_MAX = 511  # |k_c| bound of the per-channel step exponents (16 octaves)
INT_MAX = 32767  # weights and biases are coded as integers in [-INT_MAX, INT_MAX]
EXACT_LIMIT = 1 << 24  # float32 holds every integer below this exactly
_LN2 = math.log(2.0)


def ste_round(x: Tensor) -> Tensor:
    """round(x) forward, identity backward."""
    return x + (torch.round(x) - x).detach()


def fake_quant(
    x: Tensor, step: Tensor, lo: float | None = None, hi: float | None = None
) -> tuple[Tensor, Tensor]:
    """(dequantized x, integer-valued q) with q = round(x / step), optionally clamped."""
    q = ste_round(x / step)
    if lo is not None:
        q = torch.clamp(q, lo, hi)
    return q * step, q


def ste_input(x: Tensor, step: Tensor, lo: float, hi: float) -> Tensor:
    """A layer input rounded to clamp(round(x / step), lo, hi) * step, gradient identity.

    The rounding is computed in place without autograd (the input step is a running
    statistic, not learned), so training pays one differentiable add per layer input.
    """
    with torch.no_grad():
        d = torch.round(x / step).clamp_(lo, hi).mul_(step).sub_(x)
    return x + d


def laplace_bits(q: Tensor) -> Tensor:
    """Code length (bits) of integer-valued q under a zero-mean discretized Laplace.

    The scale is the maximum-likelihood one (mean |q|, not differentiated), so the
    gradient is an L1 pull of every nonzero integer towards zero, weighted by 1 / scale.
    """
    a = q.abs()
    b = a.detach().mean().clamp(min=0.05)
    zero_bits = -torch.log2(1.0 - torch.exp(-0.5 / b))
    tail_bits = (a - 0.5) / (b * _LN2) - torch.log2(0.5 * (1.0 - torch.exp(-1.0 / b)))
    return torch.where(a < 0.5, zero_bits, tail_bits).sum()


def empirical_bits(values: np.ndarray) -> float:
    """Order-0 empirical entropy of an integer array, in bits (what a histogram coder costs)."""
    if values.size == 0:
        return 0.0
    _, counts = np.unique(values, return_counts=True)
    p = counts / values.size
    return float(-(counts * np.log2(p)).sum())


def steps_from_code(base: np.float32, k: np.ndarray) -> np.ndarray:
    """float32 steps base * 2^(k / 32), computed with exact operations only."""
    k = np.asarray(k, dtype=np.int64)
    frac = _POW2_FRACTIONS[np.mod(k, STEP_FRACTION)]
    scaled = (np.float32(base) * frac).astype(np.float32)
    return np.ldexp(scaled, np.floor_divide(k, STEP_FRACTION).astype(np.int32)).astype(np.float32)


def code_steps(steps: np.ndarray) -> tuple[np.float32, np.ndarray]:
    """Nearest (base, k) representation of positive steps: base = the largest step."""
    steps = np.asarray(steps, dtype=np.float64).reshape(-1)
    base = np.float32(steps.max())
    k = np.rint(STEP_FRACTION * np.log2(steps / float(base)))
    return base, np.clip(k, -STEP_K_MAX, STEP_K_MAX).astype(np.int64)


def f32_step(value: float) -> np.float32:
    """A positive, finite float32 step (tiny or broken values become 2^-40)."""
    v = np.float32(value)
    if not np.isfinite(v) or v < np.float32(2.0**-40):
        return np.float32(2.0**-40)
    return v


def quantize_weight(w: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Integers round(w / step_c) (step broadcast over the trailing axes), clamped."""
    shape = (-1,) + (1,) * (w.ndim - 1)
    q = np.rint(w.astype(np.float64) / steps.astype(np.float64).reshape(shape))
    return np.clip(q, -INT_MAX, INT_MAX).astype(np.int64)


def dequantize(ints: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """float32 ints * step_c: one exactly rounded product per value."""
    shape = (-1,) + (1,) * (ints.ndim - 1)
    return ints.astype(np.float32) * steps.astype(np.float32).reshape(shape)


def exactness_violations(ints: np.ndarray, act_max: int) -> np.ndarray:
    """Output channels whose accumulation could leave float32's exact integers.

    A layer sums w_int * a_int with |a_int| <= act_max; if sum |w_int| * act_max stays below
    2^24, every partial sum in any order is an exactly representable integer, so the
    convolution gives the same bits whatever algorithm, thread count or memory layout.
    """
    l1 = np.abs(ints).reshape(ints.shape[0], -1).sum(axis=1)
    return np.flatnonzero(l1 * act_max >= EXACT_LIMIT)

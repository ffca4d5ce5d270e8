"""Training-time pieces in torch: quantization proxies and discretized likelihoods.

The likelihood of an integer-centred value v under a continuous density f is the mass
of the bin [v - 0.5, v + 0.5]; the coder uses the same bins (in 24-bit integer form),
so the rate these functions report is the rate the coder achieves, up to the table
quantization (tested to agree within 2%).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import Tensor

from nvc.errors import CodecError

Quantize = Literal["noise", "ste", "round"]
QUANTIZE_MODES = ("noise", "ste", "round")


class _LowerBound(torch.autograd.Function):
    """max(x, bound) whose gradient still flows when it would push x up (Ballé et al.)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, bound: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.bound = bound
        return x.clamp_min(bound)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        (x,) = ctx.saved_tensors
        passes = (x >= ctx.bound) | (grad < 0)
        return grad * passes.to(grad.dtype), None


def lower_bound(x: Tensor, bound: float) -> Tensor:
    """Clamp from below without killing the gradient that would raise x."""
    out: Tensor = _LowerBound.apply(x, bound)
    return out


def quantize(x: Tensor, mode: Quantize, offset: Tensor | None = None) -> Tensor:
    """Quantization proxy around `offset` (default 0).

    noise: x + U(-0.5, 0.5) (the additive-noise relaxation; differentiable);
    ste:   round(x - offset) + offset, gradient of the identity (straight-through);
    round: the same values without gradient (evaluation, coding).
    """
    if mode == "noise":
        return x + torch.empty_like(x).uniform_(-0.5, 0.5)
    centred = x if offset is None else x - offset
    rounded = torch.round(centred)
    if mode == "ste":
        rounded = centred + (rounded - centred).detach()
    elif mode == "round":
        rounded = rounded.detach()
    else:
        raise CodecError(f"unknown quantization mode {mode!r}; use one of {QUANTIZE_MODES}")
    return rounded if offset is None else rounded + offset


def _std_normal_cdf(x: Tensor) -> Tensor:
    return 0.5 * torch.erfc(x * (-1.0 / math.sqrt(2.0)))


def gaussian_bin_mass(values: Tensor, scales: Tensor) -> Tensor:
    """P(bin [v - .5, v + .5]) under N(0, scale^2), computed on the stable side (|v|)."""
    v = values.abs()
    upper = _std_normal_cdf((0.5 - v) / scales)
    lower = _std_normal_cdf((-0.5 - v) / scales)
    return upper - lower


def laplace_bin_mass(values: Tensor, scales: Tensor) -> Tensor:
    """P(bin [v - .5, v + .5]) under Laplace(0, b = scale), computed on the stable side."""
    v = values.abs()
    a = (v - 0.5) / scales
    c = (v + 0.5) / scales
    far = 0.5 * torch.exp(-a) * (-torch.expm1(-1.0 / scales))  # both edges right of 0
    near = 1.0 - 0.5 * torch.exp(-c) - 0.5 * torch.exp(a.clamp_max(0.0))  # bin holds 0
    return torch.where(v >= 0.5, far, near)


def bits(likelihoods: Tensor) -> Tensor:
    """Total -log2 of the likelihoods (the rate a training loss uses)."""
    return -torch.log2(likelihoods).sum()

"""Conditional mean-scale Gaussian and Laplace models (scale and mean per symbol).

Symbols are q = round(y - mean) and the reconstruction is q + mean (the mean-scale
hyperprior convention, Minnen et al. 2018). q is coded with the zero-mean table of its
scale level: the scale is quantized to a fixed log-spaced `ScaleTable`, and one integer
table per level is built once per process by `tables.mean_scale_tables` (detmath, so
the same bits everywhere). The decoder therefore needs only the same scale *levels* as
the encoder; `ScaleTable.index` maps equal float scales to equal levels, and the
hyperprior goes further by computing its levels in exact fixed point (hyperprior.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from nvc.codec.entropy import coder
from nvc.codec.entropy.likelihood import (
    Quantize,
    gaussian_bin_mass,
    laplace_bin_mass,
    lower_bound,
    quantize,
)
from nvc.codec.entropy.tables import CodingTables, Distribution, ScaleTable, mean_scale_tables
from nvc.errors import CodecError

ArrayOrTensor = Tensor | npt.NDArray[np.floating] | npt.NDArray[np.integer]


@dataclass(frozen=True)
class ConditionalConfig:
    """Configuration of a mean-scale conditional model."""

    distribution: Distribution = "gaussian"  # "gaussian" (std = scale) or "laplace" (b = scale)
    scale_table: ScaleTable = field(default_factory=ScaleTable)  # levels scales snap to
    tail_mass: float = 1e-9  # probability outside each table, coded as escapes
    likelihood_bound: float = 1e-9  # smallest likelihood reported in training

    def __post_init__(self) -> None:
        if self.distribution not in ("gaussian", "laplace"):
            raise CodecError(f"unknown distribution {self.distribution!r}")
        if not 0 < self.tail_mass < 0.1:
            raise CodecError(f"tail_mass must be in (0, 0.1), got {self.tail_mass}")


@dataclass
class ConditionalOutput:
    """What `MeanScaleConditional.forward` returns."""

    y_hat: Tensor  # (...) quantized (or noisy) values, same shape as y
    likelihoods: Tensor  # (...) probability of each value's bin


def to_numpy(x: ArrayOrTensor) -> np.ndarray:
    """Flat numpy view of a tensor or array (float32 stays float32)."""
    if isinstance(x, Tensor):
        return x.detach().to("cpu").reshape(-1).numpy()
    return np.asarray(x).reshape(-1)


def round_symbols(values: np.ndarray) -> npt.NDArray[np.int64]:
    """rint of finite values within int32; NaN, inf or overflow is a CodecError."""
    r = np.rint(values)
    if not np.all(np.abs(r) <= coder.INT32_MAX):
        if not np.all(np.isfinite(values)):
            raise CodecError("value to code is NaN or inf")
        raise CodecError("value to code is outside the int32 range")
    return r.astype(np.int64)


def rd_round(
    values: np.ndarray, indices: npt.ArrayLike, tables: CodingTables, weights: np.ndarray
) -> npt.NDArray[np.int64]:
    """Rate-distortion rounding (an encoder decision; the decoder is unchanged): each value
    v is rounded to the nearest integer k, then moved one step towards zero, to k - sign(k),
    where that lowers  weights * (error**2)  +  bits  under its table (`indices`), i.e.
    where the bits saved outweigh the added squared error, `weights` being the bits one
    unit of squared error is worth for that symbol (HEVC's RDOQ decides the same way per
    coefficient). Symbols whose move would leave their table stay rounded."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    k = round_symbols(v)
    at = np.flatnonzero(k)  # zeros stay: they have nowhere to move
    if at.size == 0:
        return k
    idx = np.asarray(indices).reshape(-1)[at].astype(np.int64)
    w = np.broadcast_to(np.asarray(weights, dtype=np.float64).reshape(-1), v.shape)[at]
    lo, size, start = tables.lo[idx], tables.size[idx], tables.offsets[idx]
    ka, va = k[at], v[at]
    k2 = ka - np.sign(ka)
    rel, rel2 = ka - lo, k2 - lo
    ok = (rel >= 0) & (rel < size) & (rel2 >= 0) & (rel2 < size)
    nl = tables.neg_log2
    saved = nl[start + np.where(ok, rel, 0)] - nl[start + np.where(ok, rel2, 0)]
    added = (k2 - va) ** 2 - (ka - va) ** 2
    move = ok & (w * added < saved)
    k[at[move]] = k2[move]
    return k


class MeanScaleConditional(nn.Module):
    """Gaussian or Laplace conditional entropy model with per-symbol mean and scale."""

    def __init__(self, config: ConditionalConfig | None = None) -> None:
        super().__init__()
        self.config = config or ConditionalConfig()

    @property
    def tables(self) -> CodingTables:
        c = self.config
        return mean_scale_tables(c.distribution, c.scale_table, c.tail_mass)

    # ------------------------------------------------------------------ training

    def likelihood(self, y_hat: Tensor, scales: Tensor, means: Tensor | None = None) -> Tensor:
        """Probability of the unit bin around each y_hat; scales bounded below by the
        table minimum. All tensors share one shape (or broadcast)."""
        values = y_hat if means is None else y_hat - means
        s = lower_bound(scales, self.config.scale_table.minimum)
        if self.config.distribution == "gaussian":
            lik = gaussian_bin_mass(values, s)
        else:
            lik = laplace_bin_mass(values, s)
        return lower_bound(lik, self.config.likelihood_bound)

    def forward(
        self,
        y: Tensor,
        scales: Tensor,
        means: Tensor | None = None,
        quantize_mode: Quantize | None = None,
    ) -> ConditionalOutput:
        """y, scales, means: (...). Noise in training mode, rounding otherwise."""
        mode = quantize_mode or ("noise" if self.training else "round")
        y_hat = quantize(y, mode, means)  # (...)
        return ConditionalOutput(y_hat=y_hat, likelihoods=self.likelihood(y_hat, scales, means))

    # ------------------------------------------------------------------ coding

    def scale_indices(self, scales: ArrayOrTensor) -> npt.NDArray[np.uint16]:
        """Scale level of each symbol (flat). Clamped to the table; NaN is a CodecError."""
        return self.config.scale_table.index(to_numpy(scales))

    def symbols(self, y: ArrayOrTensor, means: ArrayOrTensor | None = None) -> np.ndarray:
        """q = round(y - means), flat int64, validated."""
        yn = to_numpy(y)
        if means is not None:
            mn = to_numpy(means)
            if mn.shape != yn.shape:
                raise CodecError(f"means have {mn.size} values, y has {yn.size}")
            yn = yn - mn
        return round_symbols(yn)

    def compress(
        self, y: ArrayOrTensor, scales: ArrayOrTensor, means: ArrayOrTensor | None = None
    ) -> bytes:
        """Code round(y - means) with the tables of the scales' levels."""
        q = self.symbols(y, means)
        idx = self.scale_indices(scales)
        if idx.size != q.size:
            raise CodecError(f"scales have {idx.size} values, y has {q.size}")
        return coder.encode_indexed(q, idx, self.tables, trusted=True)

    def decompress(self, data: bytes, scales: Tensor, means: Tensor | None = None) -> Tensor:
        """Inverse of `compress`: y_hat = q + means, float32, shaped like scales."""
        q = coder.decode_indexed(data, self.scale_indices(scales), self.tables, trusted=True)
        return dequantize(q, scales.shape, means, scales.device)

    def compress_symbols(self, symbols: npt.ArrayLike, indices: npt.ArrayLike) -> bytes:
        """Low level: integer symbols with given scale levels (flat, equal lengths)."""
        return coder.encode_indexed(symbols, indices, self.tables)

    def decompress_symbols(self, data: bytes, indices: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Inverse of `compress_symbols`."""
        return coder.decode_indexed(data, indices, self.tables)

    def cost_bits(self, symbols: npt.ArrayLike, indices: npt.ArrayLike) -> float:
        """Exact model cost (sum of -log2 p under the integer tables, escapes included)."""
        return coder.indexed_cost_bits(symbols, indices, self.tables)


def dequantize(
    q: npt.NDArray[np.int64],
    shape: torch.Size | tuple[int, ...],
    means: Tensor | None,
    device: torch.device | str = "cpu",
) -> Tensor:
    """q + means as float32 of `shape`: the one reconstruction rule for both sides."""
    out = torch.from_numpy(q.astype(np.float32)).reshape(tuple(shape)).to(device)
    if means is not None:
        out = out + means.to(device=device, dtype=torch.float32)
    return out


class GaussianConditional(MeanScaleConditional):
    """Mean-scale Gaussian (scale = standard deviation)."""

    def __init__(self, config: ConditionalConfig | None = None) -> None:
        config = config or ConditionalConfig()
        if config.distribution != "gaussian":
            raise CodecError("GaussianConditional needs distribution='gaussian'")
        super().__init__(config)


class LaplaceConditional(MeanScaleConditional):
    """Mean-scale Laplace (scale = diversity b; variance 2 b^2)."""

    def __init__(self, config: ConditionalConfig | None = None) -> None:
        config = config or ConditionalConfig(distribution="laplace")
        if config.distribution != "laplace":
            raise CodecError("LaplaceConditional needs distribution='laplace'")
        super().__init__(config)

"""Gaussian mixture conditional model: K components with per-symbol weights, means, scales.

This is the univariate mixture behind "Unified Multivariate Gaussian Mixture for
Efficient Neural Image Compression" (and Cheng et al. 2020): p(y) = sum_k w_k N(mu_k,
sigma_k^2), discretized to integer bins. Symbols are round(y).

Coding builds one integer table per symbol, deterministically:
  1. parameters are quantized: scale -> level of a `ScaleTable`, mean -> multiple of
     1/mean_bins (integer part a_k + bin f_k), weight -> integer w_k with sum 2**weight_bits;
  2. each component's pmf comes from a precomputed integer CDF table for its (level, bin)
     with total 2**(24 - weight_bits) (detmath, built once per process);
  3. the mixture row is the exact integer sum w_k * pmf_k over a window covering every
     component's support, so it sums to exactly 2**24; mass outside the window goes to
     the escape slot;
  4. every entry gets +1 (so each value stays codable) and the largest entry gives back
     the W + 1 units this adds.
All steps after (1) are integer arithmetic, so equal quantized parameters give equal
tables everywhere. Rows of one width are coded with constriction's batched categorical.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from nvc.codec.entropy import coder, detmath
from nvc.codec.entropy.conditional import ArrayOrTensor, round_symbols, to_numpy
from nvc.codec.entropy.likelihood import Quantize, gaussian_bin_mass, lower_bound, quantize
from nvc.codec.entropy.tables import TOTAL, ScaleTable, tail_radius
from nvc.errors import CodecError

_MAX_MEAN = float(1 << 30)
_CHUNK_ELEMENTS = 1 << 21  # rows are built in chunks of about this many entries

IntArray = npt.NDArray[np.int64]
Rows = npt.NDArray[np.float32]


@dataclass(frozen=True)
class MixtureConfig:
    """Configuration of a Gaussian mixture conditional model."""

    components: int = 3  # K, number of mixture components
    scale_table: ScaleTable = field(default_factory=ScaleTable)  # levels scales snap to
    mean_bins: int = 16  # means snap to multiples of 1 / mean_bins
    weight_bits: int = 8  # weights snap to multiples of 2**-weight_bits (4..12); components
    # then have 24 - weight_bits bits of probability resolution
    tail_mass: float = 1e-9  # probability outside each component's table
    likelihood_bound: float = 1e-9  # smallest likelihood reported in training
    max_window: int = 1024  # widest per-symbol table (a power of two); beyond it, escapes

    def __post_init__(self) -> None:
        if not 1 <= self.components <= 64:
            raise CodecError(f"components must be in 1..64, got {self.components}")
        if not 1 <= self.mean_bins <= 256:
            raise CodecError(f"mean_bins must be in 1..256, got {self.mean_bins}")
        if not 4 <= self.weight_bits <= 12:
            raise CodecError(f"weight_bits must be in 4..12, got {self.weight_bits}")
        if not 0 < self.tail_mass < 0.1:
            raise CodecError(f"tail_mass must be in (0, 0.1), got {self.tail_mass}")
        mw = self.max_window
        if mw < 8 or mw > 1 << 12 or mw & (mw - 1):
            raise CodecError(f"max_window must be a power of two in 8..4096, got {mw}")


@dataclass(frozen=True)
class QuantizedMixture:
    """Mixture parameters as the coder uses them: N symbols x K components, integers."""

    weights: IntArray  # (N, K) integer weights, each row sums to 2**weight_bits
    mean_int: IntArray  # (N, K) floor of the quantized mean
    mean_bin: IntArray  # (N, K) fractional part of the mean, in 1/mean_bins
    level: IntArray  # (N, K) scale level


@dataclass
class MixtureOutput:
    """What `GaussianMixtureConditional.forward` returns."""

    y_hat: Tensor  # (...) quantized (or noisy) values
    likelihoods: Tensor  # (...) probability of each value's bin under the mixture


@dataclass(frozen=True)
class _ComponentTables:
    pmf: npt.NDArray[np.uint32]  # (levels * mean_bins, cols) zero-padded integer pmfs
    radius: IntArray  # (levels,) R of each level; support is a + [-R, R + 1]
    center: int  # column of j = 0 (j = x - a)
    pad: int  # zero columns on each side (>= the widest window)


@functools.lru_cache(maxsize=8)
def _component_tables(
    scale_table: ScaleTable, mean_bins: int, tail_mass: float, max_window: int, bits: int
) -> _ComponentTables:
    scales = scale_table.values
    radius = tail_radius("gaussian", scales, tail_mass)
    rmax = int(radius.max())
    center = max_window + rmax
    cols = 2 * (max_window + rmax) + 2
    pmf = np.zeros((scales.size * mean_bins, cols), dtype=np.uint32)
    full = float(1 << bits)
    for t, (scale, r) in enumerate(zip(scales, radius, strict=True)):
        r = int(r)
        k = np.arange(2 * r + 3, dtype=np.float64)  # CDF edges at j - 0.5, j = -r .. r + 2
        for f in range(mean_bins):
            edges = (k - r - 0.5 - f / mean_bins) / scale
            cdf = np.rint(detmath.normal_cdf(edges) * full).astype(np.int64)
            cdf[0], cdf[-1] = 0, 1 << bits  # tails fold into the edge bins
            cdf = np.maximum.accumulate(cdf)
            pmf[t * mean_bins + f, center - r : center + r + 2] = np.diff(cdf)
    return _ComponentTables(pmf=pmf, radius=radius, center=center, pad=max_window)


class GaussianMixtureConditional(nn.Module):
    """Mixture of K Gaussians per symbol. Parameter tensors have shape y.shape + (K,)."""

    def __init__(self, config: MixtureConfig | None = None) -> None:
        super().__init__()
        self.config = config or MixtureConfig()

    # ------------------------------------------------------------------ training

    def likelihood(self, y_hat: Tensor, weights: Tensor, means: Tensor, scales: Tensor) -> Tensor:
        """Mixture probability of the unit bin at each y_hat. weights >= 0 (normalized here)."""
        self._check_shapes(tuple(y_hat.shape), weights, means, scales)
        s = lower_bound(scales, self.config.scale_table.minimum)
        w = weights / weights.sum(dim=-1, keepdim=True).clamp_min(1e-12)
        mass = gaussian_bin_mass(y_hat.unsqueeze(-1) - means, s)  # (..., K)
        return lower_bound((w * mass).sum(dim=-1), self.config.likelihood_bound)

    def forward(
        self,
        y: Tensor,
        weights: Tensor,
        means: Tensor,
        scales: Tensor,
        quantize_mode: Quantize | None = None,
    ) -> MixtureOutput:
        """y: (...); weights, means, scales: (..., K)."""
        mode = quantize_mode or ("noise" if self.training else "round")
        y_hat = quantize(y, mode)
        return MixtureOutput(
            y_hat=y_hat, likelihoods=self.likelihood(y_hat, weights, means, scales)
        )

    def _check_shapes(self, shape: tuple[int, ...], *params: ArrayOrTensor) -> None:
        want = (*shape, self.config.components)
        for p in params:
            if tuple(p.shape) != want:
                raise CodecError(f"mixture parameters must have shape {want}, got {tuple(p.shape)}")

    # ------------------------------------------------------------------ quantization

    def quantize_params(
        self, weights: ArrayOrTensor, means: ArrayOrTensor, scales: ArrayOrTensor
    ) -> QuantizedMixture:
        """Integer parameters from float ones; equal floats give equal integers anywhere.

        Weights must be finite and >= 0 (an all-zero row becomes uniform); means finite
        with |mean| <= 2**30; scales are clamped to the scale table (NaN is an error).
        """
        k = self.config.components
        w = to_numpy(weights).astype(np.float64).reshape(-1, k)
        mu = to_numpy(means).astype(np.float64).reshape(-1, k)
        lev = self.config.scale_table.index(to_numpy(scales)).astype(np.int64).reshape(-1, k)
        if not (w.shape == mu.shape == lev.shape):
            raise CodecError("weights, means and scales must have the same shape")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise CodecError("mixture weights must be finite and >= 0")
        if not np.all(np.abs(mu) <= _MAX_MEAN):
            raise CodecError("mixture means must be finite with |mean| <= 2**30")
        total = w[:, 0].copy()
        for j in range(1, k):  # fixed summation order
            total = total + w[:, j]
        zero = total <= 0
        w = np.where(zero[:, None], 1.0, w)
        total = np.where(zero, float(k), total)
        one = 1 << self.config.weight_bits
        wq = np.floor(w * (one / total)[:, None]).astype(np.int64)
        np.minimum(wq, one, out=wq)
        deficit = one - wq.sum(axis=1)
        top = np.argmax(w, axis=1)
        wq[np.arange(wq.shape[0]), top] += deficit
        bins = self.config.mean_bins
        mq = np.rint(mu * bins).astype(np.int64)
        mean_int = np.floor_divide(mq, bins)
        return QuantizedMixture(wq, mean_int, mq - mean_int * bins, lev)

    # ------------------------------------------------------------------ rows

    def _row_batches(self, qp: QuantizedMixture) -> Iterator[tuple[IntArray, IntArray, Rows]]:
        """(positions, lo, weight rows) batches covering every symbol, in coding order."""
        cfg = self.config
        tabs = _component_tables(
            cfg.scale_table, cfg.mean_bins, cfg.tail_mass, cfg.max_window, 24 - cfg.weight_bits
        )
        n = qp.weights.shape[0]
        if n == 0:
            return
        active = qp.weights > 0
        rad = tabs.radius[qp.level]
        big = np.int64(1) << 40
        lo = np.where(active, qp.mean_int - rad, big).min(axis=1)
        hi = np.where(active, qp.mean_int + rad + 1, -big).max(axis=1)
        need = hi - lo + 1
        width = np.full(n, 8, dtype=np.int64)  # next power of two >= need, integers only
        while True:
            short = (width < need) & (width <= cfg.max_window)
            if not np.any(short):
                break
            width[short] *= 2
        wide = width > cfg.max_window
        if np.any(wide):
            heavy = np.argmax(qp.weights, axis=1)
            centre = qp.mean_int[np.arange(n), heavy]
            lo = np.where(wide, centre - cfg.max_window // 2, lo)
            width = np.minimum(width, cfg.max_window)
        for w in np.unique(width):
            w = int(w)
            positions = np.flatnonzero(width == w)
            step = max(1, _CHUNK_ELEMENTS // w)
            for start in range(0, positions.size, step):
                pos = positions[start : start + step]
                yield pos, lo[pos], _mixture_rows(tabs, qp, pos, lo[pos], w, cfg.mean_bins)

    # ------------------------------------------------------------------ coding

    def compress(
        self, y: ArrayOrTensor, weights: ArrayOrTensor, means: ArrayOrTensor, scales: ArrayOrTensor
    ) -> bytes:
        """Code round(y) under the per-symbol mixtures."""
        sym = round_symbols(to_numpy(y))
        return self.compress_symbols(sym, self.quantize_params(weights, means, scales))

    def decompress(self, data: bytes, weights: Tensor, means: Tensor, scales: Tensor) -> Tensor:
        """Inverse of `compress`: float32 integers of shape weights.shape[:-1]."""
        sym = self.decompress_symbols(data, self.quantize_params(weights, means, scales))
        out = torch.from_numpy(sym.astype(np.float32)).reshape(tuple(weights.shape[:-1]))
        return out.to(weights.device)

    def compress_symbols(self, symbols: npt.ArrayLike, qp: QuantizedMixture) -> bytes:
        sym = coder.as_symbols(symbols)
        if sym.size != qp.weights.shape[0]:
            raise CodecError(f"{sym.size} symbols but {qp.weights.shape[0]} parameter rows")
        writer = coder.SymbolWriter()
        for pos, lo, counts in self._row_batches(qp):
            writer.put_weight_rows(sym[pos], lo, counts)
        return writer.finish()

    def decompress_symbols(self, data: bytes, qp: QuantizedMixture) -> IntArray:
        out = np.zeros(qp.weights.shape[0], dtype=np.int64)
        reader = coder.SymbolReader(data)
        for pos, lo, counts in self._row_batches(qp):
            out[pos] = reader.get_weight_rows(lo, counts)
        return out

    def cost_bits(self, symbols: npt.ArrayLike, qp: QuantizedMixture) -> float:
        """Exact model cost of `compress_symbols` (sum of -log2 p of the integer rows)."""
        sym = coder.as_symbols(symbols)
        if sym.size != qp.weights.shape[0]:
            raise CodecError(f"{sym.size} symbols but {qp.weights.shape[0]} parameter rows")
        total = 0.0
        for pos, lo, rows in self._row_batches(qp):
            total += coder.weight_rows_cost_bits(sym[pos], lo, rows)
        return total


def _mixture_rows(
    tabs: _ComponentTables,
    qp: QuantizedMixture,
    pos: IntArray,
    lo: IntArray,
    width: int,
    mean_bins: int,
) -> Rows:
    """Rows (len(pos), width + 1) as float32 weights = counts - 1 (escape slot last).

    Each component adds w_k times a contiguous slice of its padded pmf row; the zero
    padding (>= max_window) makes a clamped slice start read only zeros, exactly like
    the true (zero) pmf outside the component's support. Integer arithmetic throughout;
    float32 holds the integers <= 2**24 exactly.
    """
    cols = tabs.pmf.shape[1]
    windows = np.lib.stride_tricks.sliding_window_view(tabs.pmf.reshape(-1), width)
    acc = np.zeros((pos.size, width), dtype=np.uint32)  # sums <= 2**24
    for k in range(qp.weights.shape[1]):
        wk = qp.weights[pos, k].astype(np.uint32)
        row = qp.level[pos, k] * mean_bins + qp.mean_bin[pos, k]
        first = np.clip(lo - qp.mean_int[pos, k] + tabs.center, 0, cols - width)
        acc += wk[:, None] * windows[row * cols + first]
    rows = np.empty((pos.size, width + 1), dtype=np.float32)
    rows[:, :width] = acc
    rows[:, width] = TOTAL - acc.sum(axis=1, dtype=np.int64)  # mass outside the window
    top = np.argmax(rows, axis=1)
    rows[np.arange(pos.size), top] -= width + 1  # the +1 of every count comes from here
    return rows

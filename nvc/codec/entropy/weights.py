"""Per-tensor models for quantized network weights (the INR codecs' entropy models).

Two families, both with parameters that are either transmitted or need no transmission:

- `ParametricWeightModel`: a discrete Gaussian or Laplace with a per-tensor mean and
  scale. `fit` estimates them; they travel as 9 bytes (fixed point), and the coding
  table is built from those integers (detmath), so the decoder's table is the encoder's.
  `likelihood` is the differentiable training-time rate of the same model.
- `CategoricalWeightModel`: an empirical histogram. In "empirical" mode the quantized
  histogram is transmitted (varints); in "adaptive" mode only the value range is sent
  and both sides learn the histogram block by block (block i is coded with the counts of
  everything before it, blocks double in size), so no table travels at all.

Values are integers (already-quantized weights), any shape; coding is flat, in C order.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from nvc.codec.entropy import coder
from nvc.codec.entropy.likelihood import gaussian_bin_mass, laplace_bin_mass, lower_bound
from nvc.codec.entropy.tables import (
    CodingTables,
    Distribution,
    counts_from_probabilities,
    discretized_probabilities,
    tail_radius,
)
from nvc.errors import CodecError

IntArray = npt.NDArray[np.int64]

FIXED_POINT_BITS = 8  # mean and scale travel as value * 2**8
MIN_SCALE_FP = 16  # smallest scale 16 / 256 = 0.0625
MAX_RADIUS = 1 << 16  # parametric tables never extend beyond +-65536 around the mean
MAX_ALPHABET = 1 << 16  # categorical models cover at most this many values
_FIRST_BLOCK = 256  # adaptive mode: size of the first block (coded with a flat model)
_KINDS: dict[str, int] = {"gaussian": 0, "laplace": 1}


class WeightParams(Protocol):
    """Parameters a weight model transmits."""

    def to_bytes(self) -> bytes: ...


def _flat_values(values: npt.ArrayLike | Tensor) -> IntArray:
    if isinstance(values, Tensor):
        values = values.detach().cpu().numpy()
    return coder.as_symbols(values)


# ------------------------------------------------------------------------ parametric


@dataclass(frozen=True)
class ParametricWeightParams:
    """Transmitted parameters of a discrete Gaussian / Laplace weight model."""

    distribution: Distribution  # "gaussian" (scale = std) or "laplace" (scale = b)
    mean_fp: int  # mean * 2**8, int32
    scale_fp: int  # scale * 2**8, in [16, 2**32)

    def __post_init__(self) -> None:
        if self.distribution not in _KINDS:
            raise CodecError(f"unknown distribution {self.distribution!r}")
        if not -(1 << 31) <= self.mean_fp < 1 << 31:
            raise CodecError("weight model mean out of range")
        if not MIN_SCALE_FP <= self.scale_fp < 1 << 32:
            raise CodecError("weight model scale out of range")

    @property
    def mean(self) -> float:
        return self.mean_fp / (1 << FIXED_POINT_BITS)

    @property
    def scale(self) -> float:
        return self.scale_fp / (1 << FIXED_POINT_BITS)

    def to_bytes(self) -> bytes:
        return struct.pack("<BiI", _KINDS[self.distribution], self.mean_fp, self.scale_fp)

    @classmethod
    def from_bytes(cls, data: bytes) -> ParametricWeightParams:
        if len(data) != 9:
            raise CodecError(f"parametric weight params are 9 bytes, got {len(data)}")
        kind, mean_fp, scale_fp = struct.unpack("<BiI", data)
        names = {v: k for k, v in _KINDS.items()}
        if kind not in names:
            raise CodecError(f"unknown weight distribution code {kind}")
        return cls(names[kind], mean_fp, scale_fp)  # type: ignore[arg-type]

    @classmethod
    def from_float(
        cls, distribution: Distribution, mean: float, scale: float
    ) -> ParametricWeightParams:
        if not (np.isfinite(mean) and np.isfinite(scale)):
            raise CodecError("weight model mean and scale must be finite")
        one = 1 << FIXED_POINT_BITS
        mean_fp = int(np.clip(np.rint(mean * one), -(1 << 31), (1 << 31) - 1))
        scale_fp = int(np.clip(np.rint(scale * one), MIN_SCALE_FP, (1 << 32) - 1))
        return cls(distribution, mean_fp, scale_fp)


@functools.lru_cache(maxsize=64)
def _parametric_table(params: ParametricWeightParams, tail_mass: float) -> CodingTables:
    scale = params.scale
    radius = int(min(tail_radius(params.distribution, np.array([scale]), tail_mass)[0], MAX_RADIUS))
    centre = int(np.rint(params.mean))
    lo = centre - radius
    probs = discretized_probabilities(params.distribution, params.mean, scale, lo, 2 * radius + 1)
    return CodingTables([lo], [counts_from_probabilities(probs)[0]])


class ParametricWeightModel:
    """Discrete Gaussian or Laplace over integers with transmitted mean and scale.

    distribution: "gaussian" or "laplace".
    tail_mass: probability outside the table (coded as escapes).
    likelihood_bound: smallest likelihood `likelihood` reports.
    """

    def __init__(
        self,
        distribution: Distribution = "gaussian",
        tail_mass: float = 1e-9,
        likelihood_bound: float = 1e-9,
    ) -> None:
        if distribution not in _KINDS:
            raise CodecError(f"unknown distribution {distribution!r}")
        if not 0 < tail_mass < 0.1:
            raise CodecError(f"tail_mass must be in (0, 0.1), got {tail_mass}")
        self.distribution: Distribution = distribution
        self.tail_mass = tail_mass
        self.likelihood_bound = likelihood_bound

    def fit(self, values: npt.ArrayLike | Tensor) -> ParametricWeightParams:
        """Moment estimate of mean and scale, then the scale (of a small grid around it)
        that codes these values in the fewest bits."""
        v = _flat_values(values).astype(np.float64)
        if v.size == 0:
            return ParametricWeightParams.from_float(self.distribution, 0.0, 1.0)
        mean = float(v.mean())
        if self.distribution == "gaussian":  # integer data: remove the rounding variance
            scale = float(np.sqrt(max(v.var() - 1.0 / 12.0, 1e-4)))
        else:
            scale = max(float(np.abs(v - mean).mean()), 1e-2)
        uniq, counts = np.unique(v.astype(np.int64), return_counts=True)
        best: tuple[float, ParametricWeightParams] | None = None
        for step in range(-6, 7):
            cand = ParametricWeightParams.from_float(
                self.distribution, mean, scale * 2 ** (step / 8)
            )
            cost = self._hist_cost(uniq, counts, cand)
            if best is None or cost < best[0]:
                best = (cost, cand)
        return (
            best[1]
            if best is not None
            else ParametricWeightParams.from_float(self.distribution, mean, scale)
        )

    def _hist_cost(self, uniq: IntArray, counts: IntArray, params: ParametricWeightParams) -> float:
        tables = _parametric_table(params, self.tail_mass)
        rel = uniq - tables.lo[0]
        inside = (rel >= 0) & (rel < tables.size[0])
        bits = float((tables.neg_log2[rel[inside]] * counts[inside]).sum())
        out = ~inside
        if np.any(out):
            esc = tables.neg_log2[tables.size[0]] + 40.0  # escape symbol + payload (bound)
            bits += float(esc * counts[out].sum())
        return bits

    def table(self, params: ParametricWeightParams) -> CodingTables:
        """The integer table both sides build from the transmitted parameters."""
        return _parametric_table(params, self.tail_mass)

    def compress(self, values: npt.ArrayLike | Tensor, params: ParametricWeightParams) -> bytes:
        v = _flat_values(values)
        return coder.encode_indexed(v, np.zeros(v.size, np.uint8), self.table(params))

    def decompress(self, data: bytes, params: ParametricWeightParams, count: int) -> IntArray:
        if count < 0:
            raise CodecError(f"count must be >= 0, got {count}")
        return coder.decode_indexed(data, np.zeros(count, np.uint8), self.table(params))

    def cost_bits(self, values: npt.ArrayLike | Tensor, params: ParametricWeightParams) -> float:
        v = _flat_values(values)
        return coder.indexed_cost_bits(v, np.zeros(v.size, np.uint8), self.table(params))

    def params_from_bytes(self, data: bytes) -> ParametricWeightParams:
        return ParametricWeightParams.from_bytes(data)

    def likelihood(self, w_hat: Tensor, mean: Tensor | float, scale: Tensor | float) -> Tensor:
        """Training-time probability of each (integer or noisy) weight; differentiable in
        w_hat, mean and scale."""
        scale_t = torch.as_tensor(scale, dtype=w_hat.dtype, device=w_hat.device)
        scale_t = lower_bound(scale_t, MIN_SCALE_FP / (1 << FIXED_POINT_BITS))
        values = w_hat - mean
        if self.distribution == "gaussian":
            lik = gaussian_bin_mass(values, scale_t)
        else:
            lik = laplace_bin_mass(values, scale_t)
        return lower_bound(lik, self.likelihood_bound)


# ------------------------------------------------------------------------ categorical


@dataclass(frozen=True, eq=False)
class CategoricalWeightParams:
    """Transmitted parameters of a categorical weight model.

    lo, size: the value range lo .. lo + size - 1 (anything else escapes).
    counts: (size + 1,) integer table (escape last) in empirical mode; None in adaptive
    mode, where both sides learn the histogram while coding.
    """

    lo: int  # smallest value of the range
    size: int  # number of values in the range
    counts: IntArray | None = None  # the transmitted table, empirical mode only

    def __post_init__(self) -> None:
        if not 1 <= self.size <= MAX_ALPHABET:
            raise CodecError(f"categorical range must have 1..{MAX_ALPHABET} values")
        if self.lo < coder.INT32_MIN or self.lo + self.size - 1 > coder.INT32_MAX:
            raise CodecError("categorical range outside int32")
        if self.counts is not None:
            c = np.asarray(self.counts)
            if c.shape != (self.size + 1,) or c.min() < 1 or int(c.sum()) != 1 << 24:
                raise CodecError(
                    "categorical table must have size + 1 counts >= 1 summing to 2**24"
                )

    def to_bytes(self) -> bytes:
        head = struct.pack("<iIB", self.lo, self.size, 0 if self.counts is None else 1)
        if self.counts is None:
            return head
        return head + _varints(np.asarray(self.counts[:-1]) - 1)

    @classmethod
    def from_bytes(cls, data: bytes) -> CategoricalWeightParams:
        if len(data) < 9:
            raise CodecError("categorical weight params are truncated")
        lo, size, has_table = struct.unpack_from("<iIB", data)
        if has_table not in (0, 1) or not 1 <= size <= MAX_ALPHABET:
            raise CodecError("malformed categorical weight params")
        if not has_table:
            if len(data) != 9:
                raise CodecError("trailing bytes after categorical weight params")
            return cls(lo, size)
        head = _read_varints(data[9:], size) + 1
        last = (1 << 24) - int(head.sum())
        if last < 1:
            raise CodecError("malformed categorical weight table")
        return cls(lo, size, np.concatenate([head, [last]]).astype(np.int64))


def _varints(values: IntArray) -> bytes:
    """LEB128 of non-negative integers, vectorized over up to 4 bytes each (< 2**28)."""
    v = np.asarray(values, dtype=np.int64)
    groups = [(v >> (7 * i)) & 0x7F for i in range(4)]
    nbytes = np.ones_like(v)
    for i in range(1, 4):
        nbytes += v >= (1 << (7 * i))
    out = np.zeros((v.size, 4), dtype=np.uint8)
    for i in range(4):
        more = (nbytes > i + 1).astype(np.int64) << 7
        out[:, i] = groups[i] | more
    keep = np.arange(4)[None, :] < nbytes[:, None]
    return out[keep].tobytes()


def _read_varints(data: bytes, count: int) -> IntArray:
    raw = np.frombuffer(data, dtype=np.uint8).astype(np.int64)
    ends = np.flatnonzero(raw < 0x80)
    if ends.size != count or (count and ends[-1] != raw.size - 1):
        raise CodecError("malformed categorical weight table")
    starts = np.concatenate([[0], ends[:-1] + 1])
    if np.any(ends - starts >= 4):
        raise CodecError("malformed categorical weight table")
    values = np.zeros(count, dtype=np.int64)
    for i in range(4):
        pos = starts + i
        has = pos <= ends
        values[has] |= (raw[pos[has]] & 0x7F) << (7 * i)
    return values


class CategoricalWeightModel:
    """Histogram model over a range of integers: transmitted ("empirical") or learned on
    both sides while coding ("adaptive")."""

    def __init__(self, mode: Literal["empirical", "adaptive"] = "empirical") -> None:
        if mode not in ("empirical", "adaptive"):
            raise CodecError(f"unknown categorical mode {mode!r}")
        self.mode = mode

    def fit(self, values: npt.ArrayLike | Tensor) -> CategoricalWeightParams:
        v = _flat_values(values)
        if v.size == 0:
            return CategoricalWeightParams(
                0, 1, _quantized_hist(np.zeros(1)) if self._emp else None
            )
        lo, hi = int(v.min()), int(v.max())
        size = hi - lo + 1
        if size > MAX_ALPHABET:
            raise CodecError(
                f"values span {size} integers, more than {MAX_ALPHABET}; "
                "use ParametricWeightModel for wide ranges"
            )
        if not self._emp:
            return CategoricalWeightParams(lo, size)
        hist = np.bincount(v - lo, minlength=size).astype(np.float64)
        return CategoricalWeightParams(lo, size, _quantized_hist(hist))

    @property
    def _emp(self) -> bool:
        return self.mode == "empirical"

    def _blocks(self, params: CategoricalWeightParams, count: int) -> list[tuple[int, int]]:
        if self._emp:
            return [(0, count)]
        bounds = [0]
        while bounds[-1] < count:
            bounds.append(min(count, max(_FIRST_BLOCK, 2 * bounds[-1])))
        return list(zip(bounds[:-1], bounds[1:], strict=True))

    def _check(self, params: CategoricalWeightParams) -> None:
        if self._emp != (params.counts is not None):
            raise CodecError(f"params do not match the {self.mode} categorical model")

    def _block_table(self, params: CategoricalWeightParams, seen: IntArray) -> CodingTables:
        if params.counts is not None:
            return CodingTables([params.lo], [params.counts])
        return CodingTables([params.lo], [_quantized_hist(seen.astype(np.float64) + 0.5)])

    def compress(self, values: npt.ArrayLike | Tensor, params: CategoricalWeightParams) -> bytes:
        self._check(params)
        v = _flat_values(values)
        writer = coder.SymbolWriter()
        seen = np.zeros(params.size, dtype=np.int64)
        for start, stop in self._blocks(params, v.size):
            block = v[start:stop]
            tables = self._block_table(params, seen)
            writer.put_indexed(block, np.zeros(block.size, np.uint8), tables)
            seen += _in_range_hist(block, params)
        return writer.finish()

    def decompress(self, data: bytes, params: CategoricalWeightParams, count: int) -> IntArray:
        self._check(params)
        if count < 0:
            raise CodecError(f"count must be >= 0, got {count}")
        reader = coder.SymbolReader(data)
        out = np.zeros(count, dtype=np.int64)
        seen = np.zeros(params.size, dtype=np.int64)
        for start, stop in self._blocks(params, count):
            tables = self._block_table(params, seen)
            block = reader.get_indexed(np.zeros(stop - start, np.uint8), tables)
            out[start:stop] = block
            seen += _in_range_hist(block, params)
        return out

    def cost_bits(self, values: npt.ArrayLike | Tensor, params: CategoricalWeightParams) -> float:
        self._check(params)
        v = _flat_values(values)
        seen = np.zeros(params.size, dtype=np.int64)
        bits = 0.0
        for start, stop in self._blocks(params, v.size):
            block = v[start:stop]
            tables = self._block_table(params, seen)
            bits += coder.indexed_cost_bits(block, np.zeros(block.size, np.uint8), tables)
            seen += _in_range_hist(block, params)
        return bits

    def params_from_bytes(self, data: bytes) -> CategoricalWeightParams:
        params = CategoricalWeightParams.from_bytes(data)
        self._check(params)
        return params


def _quantized_hist(hist: npt.NDArray[np.float64]) -> IntArray:
    """Counts for the values of a histogram plus an escape slot of (near) zero mass."""
    return counts_from_probabilities(np.concatenate([hist, [0.0]]))[0]


def _in_range_hist(block: IntArray, params: CategoricalWeightParams) -> IntArray:
    rel = block - params.lo
    rel = rel[(rel >= 0) & (rel < params.size)]
    return np.bincount(rel, minlength=params.size).astype(np.int64)

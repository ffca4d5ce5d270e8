"""Integer probability tables: how every model reaches the coder.

A `CodingTables` holds T tables. Table t gives a probability to each symbol value in
[lo[t], lo[t] + size[t]) and to one escape slot (index size[t]) that stands for every
value outside that range. Probabilities are integer counts with a total of exactly
2**PRECISION, every count at least 1, so each value can always be coded.

`counts_from_probabilities` turns float64 probabilities into such counts with a
deterministic integer apportionment; the float64 input comes from `detmath`, so the
tables are the same bits on every machine.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import constriction
import numpy as np
import numpy.typing as npt

from nvc.codec.entropy import detmath
from nvc.errors import CodecError

PRECISION = 24  # bits of probability resolution of constriction's categorical models
TOTAL = 1 << PRECISION  # every table's counts sum to this

Distribution = Literal["gaussian", "laplace"]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def counts_from_probabilities(probs: npt.ArrayLike) -> IntArray:
    """Quantize rows of nonnegative probabilities to integer counts summing to TOTAL.

    Each count is 1 + an apportioned share of TOTAL - n (largest remainders win the
    leftover units, ties to the lower index), so every slot stays codable. The rows
    need not be normalized. A row of zeros becomes uniform.
    """
    p = np.array(probs, dtype=np.float64, ndmin=2)
    n = p.shape[-1]
    if n < 2 or n > TOTAL // 2:
        raise CodecError(f"a probability table needs 2..{TOTAL // 2} entries, got {n}")
    if not np.all(np.isfinite(p)):
        raise CodecError("probability table contains NaN or inf")
    p = np.maximum(p, 0.0)
    peak = p.max(axis=1, keepdims=True)  # scale rows to max 1 first: no overflow below
    p = np.where(peak > 0, p / np.where(peak > 0, peak, 1.0), 1.0)  # zero rows: uniform
    norm = detmath.ordered_sum(p)
    free = float(TOTAL - n)
    share = p * (free / norm)[:, None]
    base = np.floor(share)
    counts = base.astype(np.int64) + 1
    leftover = (TOTAL - counts.sum(axis=1)).astype(np.int64)
    remainder = share - base
    for row in range(p.shape[0]):
        d = int(leftover[row])
        if d > 0:
            order = np.argsort(-remainder[row], kind="stable")
            counts[row, order[:d]] += 1
        elif d < 0:  # cannot happen for sane rows; keep the invariant anyway
            order = np.argsort(-counts[row], kind="stable")
            for j in order:
                take = min(-d, int(counts[row, j]) - 1)
                counts[row, j] -= take
                d += take
                if d == 0:
                    break
    return counts


class CodingTables:
    """A set of integer tables plus the constriction models built from them.

    counts: flat concatenation; table t occupies counts[offsets[t]:offsets[t+1]] and has
    size[t] + 1 entries (the last is the escape slot).
    """

    def __init__(self, lo: npt.ArrayLike, rows: Sequence[npt.ArrayLike]) -> None:
        lo_arr = np.asarray(lo, dtype=np.int64).reshape(-1)
        arrays = [np.asarray(r, dtype=np.int64).reshape(-1) for r in rows]
        if len(arrays) != lo_arr.size or not arrays:
            raise CodecError("CodingTables needs one lo value per table and at least one table")
        sizes = np.array([r.size - 1 for r in arrays], dtype=np.int64)
        if np.any(sizes < 1):
            raise CodecError("every table needs at least one symbol and the escape slot")
        flat = np.concatenate(arrays)
        offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
        np.cumsum(sizes + 1, out=offsets[1:])
        if np.any(flat < 1) or np.any(np.add.reduceat(flat, offsets[:-1]) != TOTAL):
            raise CodecError(f"every table count must be >= 1 and each table must sum to {TOTAL}")
        self.lo = lo_arr  # first symbol value of each table
        self.size = sizes  # number of in-range symbols of each table (escape slot = size)
        self.offsets = offsets  # start of each table in `counts`, plus the end
        self.counts = flat  # all counts, flat
        # -log2 of each count's probability, for exact cost accounting
        self.neg_log2 = PRECISION - np.log2(flat.astype(np.float64))
        self._models: list[Any | None] = [None] * len(arrays)

    @property
    def num_tables(self) -> int:
        return int(self.size.size)

    def row(self, t: int) -> IntArray:
        return self.counts[self.offsets[t] : self.offsets[t + 1]]

    def model(self, t: int) -> Any:
        """constriction model for table t; uses the counts verbatim (see coder.py)."""
        m = self._models[t]
        if m is None:
            weights = (self.row(t) - 1).astype(np.float32)
            m = constriction.stream.model.Categorical(weights, perfect=False)
            self._models[t] = m
        return m


@dataclass(frozen=True)
class ScaleTable:
    """Log-spaced scale levels that conditional models quantize their scales to."""

    minimum: float = 0.11  # smallest scale (also the lower bound used in training)
    maximum: float = 256.0  # largest scale; larger scales are clamped to it
    levels: int = 64  # number of levels (<= 65535)

    def __post_init__(self) -> None:
        if not (0 < self.minimum < self.maximum < 1e6) or not (2 <= self.levels <= 65535):
            raise CodecError(f"invalid scale table {self}")

    @functools.cached_property
    def _values(self) -> tuple[FloatArray, FloatArray]:
        lmin = detmath.log(self.minimum)
        lmax = detmath.log(self.maximum)
        steps = np.arange(self.levels, dtype=np.float64)
        logs = lmin + steps * ((lmax - lmin) / (self.levels - 1))
        values = detmath.exp(logs)
        bounds = detmath.exp(0.5 * (logs[:-1] + logs[1:]))  # geometric midpoints
        return values, bounds

    @property
    def values(self) -> FloatArray:
        """The scale of each level, ascending."""
        return self._values[0]

    @property
    def boundaries(self) -> FloatArray:
        """levels - 1 thresholds; a scale s gets the number of thresholds <= s."""
        return self._values[1]

    def index(self, scales: npt.ArrayLike) -> npt.NDArray[np.unsignedinteger]:
        """Level index of each scale: nearest level in log space, clamped at both ends.

        The rule is exact: the number of `boundaries` <= s. NaN is a CodecError; anything
        below the minimum (including <= 0 and -inf) gets level 0, anything above the
        maximum (including +inf) the last level. Float32 input is compared in float32
        against thresholds rounded up to float32 (the same rule, exactly).

        Fast path: the top 16 bits of a float's bit pattern order it, and for the default
        table each such bucket holds at most one boundary, so a 65536-entry lookup of the
        top bits plus one comparison gives the index (no log, no binary search).
        Result dtype: uint8 for <= 256 levels, else uint16.
        """
        s = np.asarray(scales)
        if s.dtype != np.float32:
            s = s.astype(np.float64)
        s = np.ascontiguousarray(s).reshape(-1)
        if np.isnan(s).any():
            raise CodecError("scale is NaN")
        look = self._lookup(s.dtype)
        if look is None:  # a table too dense for the lookup: binary search
            k = np.searchsorted(self.boundaries, s.astype(np.float64), side="right")
            return k.astype(self._index_dtype)
        lut, thresholds, uint, shift = look
        cand = lut[s.view(uint) >> shift]
        return cand + (s >= thresholds[cand])

    @property
    def _index_dtype(self) -> type[np.unsignedinteger]:
        return np.uint8 if self.levels <= 256 else np.uint16

    def _lookup(self, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, type, int] | None:
        return self._lookups[0 if dtype == np.float32 else 1]

    @functools.cached_property
    def _lookups(self) -> tuple[tuple[np.ndarray, np.ndarray, type, int] | None, ...]:
        return (self._build_lookup(np.float32), self._build_lookup(np.float64))

    def _build_lookup(self, dtype: type) -> tuple[np.ndarray, np.ndarray, type, int] | None:
        bits = np.dtype(dtype).itemsize * 8
        uint = np.uint32 if bits == 32 else np.uint64
        prefix = np.arange(1 << 16, dtype=np.uint64)
        with np.errstate(invalid="ignore"):
            lowest = (prefix << np.uint64(bits - 16)).astype(uint).view(dtype).astype(np.float64)
            cand = np.searchsorted(self.boundaries, lowest, side="right")
        cand[(prefix >= 0x8000) | np.isnan(lowest)] = 0  # negatives; NaN is rejected earlier
        finite_pos = np.flatnonzero((prefix < 0x8000) & np.isfinite(lowest))
        if np.any(np.diff(cand[finite_pos]) > 1):  # a bucket with two boundaries
            return None
        thr: np.ndarray = self.boundaries.astype(dtype)
        low = thr.astype(np.float64) < self.boundaries
        thr[low] = np.nextafter(thr[low], np.asarray(np.inf, dtype))  # smallest value >= b
        thresholds = np.concatenate([thr, np.array([np.nan], dtype)])  # never >= (last level)
        return cand.astype(self._index_dtype), thresholds, uint, bits - 16

    def fixed_point_boundaries(self, fraction_bits: int) -> IntArray:
        """Thresholds in fixed point (value * 2**fraction_bits, rounded up).

        A fixed-point scale v gets index searchsorted(..., v, 'right'), which equals the
        float rule applied to v / 2**fraction_bits.
        """
        return np.ceil(np.ldexp(self.boundaries, fraction_bits)).astype(np.int64)


def tail_radius(distribution: Distribution, scale: FloatArray, tail_mass: float) -> IntArray:
    """Half-width R of a table so that |x| > R has at most about `tail_mass` probability."""
    if distribution == "gaussian":
        z = _normal_quantile_upper(tail_mass / 2)
    else:
        z = -float(detmath.log(tail_mass))
    return np.maximum(np.ceil(scale * z), 1).astype(np.int64)


@functools.lru_cache(maxsize=16)
def _normal_quantile_upper(tail: float) -> float:
    """z with 1 - Phi(z) = tail, by deterministic bisection."""
    lo, hi = 0.0, 40.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if 1.0 - float(detmath.normal_cdf(mid)) > tail:
            lo = mid
        else:
            hi = mid
    return hi


def standard_cdf(distribution: Distribution, x: FloatArray) -> FloatArray:
    """CDF of the unit-scale distribution (std 1 for gaussian, diversity 1 for laplace)."""
    if distribution == "gaussian":
        return detmath.normal_cdf(x)
    if distribution == "laplace":
        return detmath.laplace_cdf(x)
    raise CodecError(f"unknown distribution {distribution!r}")


def discretized_probabilities(
    distribution: Distribution, mean: float, scale: float, lo: int, size: int
) -> FloatArray:
    """Probabilities of the integers lo..lo+size-1 and of everything else (last slot)."""
    x = np.arange(lo, lo + size + 1, dtype=np.float64) - 0.5
    cdf = standard_cdf(distribution, (x - mean) / scale)
    inner = np.diff(cdf)
    outside = cdf[0] + (1.0 - cdf[-1])
    return np.concatenate([inner, [outside]])


@functools.lru_cache(maxsize=32)
def mean_scale_tables(
    distribution: Distribution, scale_table: ScaleTable, tail_mass: float
) -> CodingTables:
    """One zero-mean table per scale level, over [-R, R] with R from `tail_mass`."""
    if not 0 < tail_mass < 0.1:
        raise CodecError(f"tail_mass must be in (0, 0.1), got {tail_mass}")
    radius = tail_radius(distribution, scale_table.values, tail_mass)
    rows = []
    for scale, r in zip(scale_table.values, radius, strict=True):
        probs = discretized_probabilities(distribution, 0.0, float(scale), -int(r), 2 * int(r) + 1)
        rows.append(counts_from_probabilities(probs)[0])
    return CodingTables(-radius, rows)

"""Integer tables: invariants, scale bucketing, and a golden digest of the wire tables."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nvc.codec.entropy.tables import (
    TOTAL,
    CodingTables,
    ScaleTable,
    counts_from_probabilities,
    mean_scale_tables,
)
from nvc.errors import CodecError


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=2, max_size=300))
@settings(max_examples=60, deadline=None)
def test_counts_sum_exactly_and_stay_positive(probs: list[float]) -> None:
    counts = counts_from_probabilities(np.array(probs))[0]
    assert counts.sum() == TOTAL
    assert counts.min() >= 1
    p = np.array(probs)
    if p.sum() > 0:  # proportional up to the +1 floor and one unit of rounding
        ideal = p / p.sum() * (TOTAL - p.size)
        assert np.all(np.abs(counts - 1 - ideal) <= 1.0 + 1e-6 * TOTAL)


def test_counts_zero_row_is_uniform_and_bad_rows_raise() -> None:
    assert np.all(counts_from_probabilities(np.zeros(4))[0] == TOTAL // 4)
    with pytest.raises(CodecError):
        counts_from_probabilities(np.array([0.5, np.nan]))
    with pytest.raises(CodecError):
        counts_from_probabilities(np.array([1.0]))


def test_coding_tables_reject_bad_counts() -> None:
    with pytest.raises(CodecError):
        CodingTables([0], [np.array([TOTAL - 1, 0, 1])])
    with pytest.raises(CodecError):
        CodingTables([0], [np.array([5, 5])])


def test_scale_index_matches_exact_rule() -> None:
    table = ScaleTable()
    b = table.boundaries
    rng = np.random.default_rng(0)
    s = np.concatenate(
        [
            np.exp(rng.uniform(-6, 8, 100_000)),
            b,
            np.nextafter(b, 0),
            np.nextafter(b, np.inf),
            [0.0, -3.0, -np.inf, np.inf, 1e-320, 1e300],
        ]
    )
    want = np.searchsorted(b, s, side="right")
    assert np.array_equal(table.index(s), want)
    assert table.index(np.array([0.0]))[0] == 0
    assert table.index(np.array([np.inf]))[0] == table.levels - 1


@pytest.mark.parametrize("levels", [3, 64, 300, 4000])
def test_scale_index_float32_and_dense_tables(levels: int) -> None:
    """float32 input follows the same exact rule; dense tables fall back to bisection."""
    table = ScaleTable(0.11, 256.0, levels)
    b32 = table.boundaries.astype(np.float32)
    rng = np.random.default_rng(levels)
    s = np.concatenate(
        [
            np.exp(rng.uniform(-6, 8, 50_000)).astype(np.float32),
            b32,
            np.nextafter(b32, np.float32(0)),
            np.nextafter(b32, np.float32(np.inf)),
            np.array([0, -1, np.inf, -np.inf], np.float32),
        ]
    )
    want = np.searchsorted(table.boundaries, s.astype(np.float64), side="right")
    got = table.index(s)
    assert np.array_equal(got, want)
    assert got.dtype == (np.uint8 if levels <= 256 else np.uint16)
    assert np.array_equal(table.index(s.astype(np.float64)), want)


def test_scale_index_nan_raises() -> None:
    with pytest.raises(CodecError):
        ScaleTable().index(np.array([1.0, np.nan]))


def test_scale_levels_are_geometric() -> None:
    t = ScaleTable(0.5, 8.0, 5)
    np.testing.assert_allclose(t.values, [0.5, 1.0, 2.0, 4.0, 8.0], rtol=1e-15)
    np.testing.assert_allclose(t.boundaries, np.sqrt(t.values[:-1] * t.values[1:]), rtol=1e-15)
    with pytest.raises(CodecError):
        ScaleTable(1.0, 0.5, 4)


def test_fixed_point_boundaries_agree_with_float_rule() -> None:
    t = ScaleTable()
    fb = 12
    ints = np.arange(0, 300 * 2**fb, 7, dtype=np.int64)
    fixed = np.searchsorted(t.fixed_point_boundaries(fb), ints, side="right")
    floats = t.index(ints / 2.0**fb)
    assert np.array_equal(fixed, floats)


def _digest(tables: CodingTables) -> str:
    h = hashlib.sha256()
    for arr in (tables.lo, tables.size, tables.counts):
        h.update(np.ascontiguousarray(arr, dtype="<i8").tobytes())
    return h.hexdigest()[:16]


def test_default_tables_are_the_golden_ones() -> None:
    """The integer tables are part of the bitstream: any change here breaks old streams.

    If this fails after an intended change, bump the bitstream version and update the digest.
    """
    g = mean_scale_tables("gaussian", ScaleTable(), 1e-9)
    lap = mean_scale_tables("laplace", ScaleTable(), 1e-9)
    assert (g.num_tables, int(g.counts.size)) == (64, 27192)
    assert (_digest(g), _digest(lap)) == GOLDEN


GOLDEN = ("3ed5e11da6091679", "39e6dd03ea007475")

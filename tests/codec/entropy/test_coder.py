"""The low-level coder: exact costs, escapes, sections, and hostile input."""

from __future__ import annotations

import math

import constriction
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nvc.codec.entropy import coder
from nvc.codec.entropy.tables import TOTAL, CodingTables, counts_from_probabilities
from nvc.errors import CodecError


def _tables() -> CodingTables:
    rows = [
        counts_from_probabilities(np.array([1, 2, 4, 2, 1, 1e-9]))[0],  # values -2..2
        counts_from_probabilities(np.array([5, 1, 1e-9]))[0],  # values 0..1
        counts_from_probabilities(np.exp(-0.5 * (np.arange(-20, 21) / 6.0) ** 2).tolist() + [1e-9])[
            0
        ],
    ]
    return CodingTables([-2, 0, -20], rows)


def test_constriction_uses_counts_verbatim() -> None:
    """Weights count - 1 must give each symbol exactly count / 2**24 inside constriction.

    Coding n copies of one symbol costs n * -log2(p) bits up to the final word; a table
    quantized even one count differently would be off by thousands of bits here.
    """
    counts = np.array([1, 101, TOTAL - 1 - 101 - 3 - 2**20, 3, 2**20], dtype=np.int64)
    tables = CodingTables([0], [counts[:-1].tolist() + [counts[-1]]])
    n = 200_000
    for s in range(4):
        data = coder.encode_indexed(np.full(n, s), np.zeros(n, np.uint8), tables)
        ideal = n * -math.log2(counts[s] / TOTAL)
        assert 0 <= len(data) * 8 - ideal <= 64, s


def test_roundtrip_with_escapes_and_extremes() -> None:
    tables = _tables()
    rng = np.random.default_rng(1)
    n = 50_000
    idx = rng.integers(0, 3, n)
    sym = rng.integers(-3, 4, n)
    extremes = [coder.INT32_MAX, coder.INT32_MIN, 3, -3, 2**20, -(2**20), 40, -40]
    sym[: len(extremes)] = extremes
    data = coder.encode_indexed(sym, idx, tables)
    assert np.array_equal(coder.decode_indexed(data, idx, tables), sym)
    ideal = coder.indexed_cost_bits(sym, idx, tables)
    assert abs(len(data) * 8 - ideal) <= 0.01 * ideal + 64


@given(
    st.lists(st.integers(-(2**31), 2**31 - 1), min_size=0, max_size=200),
    st.integers(0, 2**32 - 1),
)
@settings(max_examples=60, deadline=None)
def test_roundtrip_property(values: list[int], seed: int) -> None:
    tables = _tables()
    sym = np.array(values, dtype=np.int64)
    idx = np.random.default_rng(seed).integers(0, 3, sym.size)
    data = coder.encode_indexed(sym, idx, tables)
    assert np.array_equal(coder.decode_indexed(data, idx, tables), sym)


def test_empty_input() -> None:
    tables = _tables()
    assert coder.encode_indexed(np.zeros(0, np.int64), np.zeros(0, np.int64), tables) == b""
    assert coder.decode_indexed(b"", np.zeros(0, np.int64), tables).size == 0
    assert coder.indexed_cost_bits([], [], tables) == 0.0


def test_invalid_input_raises_codec_error() -> None:
    tables = _tables()
    with pytest.raises(CodecError):
        coder.encode_indexed([2**31], [0], tables)  # outside int32
    with pytest.raises(CodecError):
        coder.encode_indexed([1.5], [0], tables)  # not an integer
    with pytest.raises(CodecError):
        coder.encode_indexed([np.nan], [0], tables)
    with pytest.raises(CodecError):
        coder.encode_indexed([1, 2], [0], tables)  # length mismatch
    with pytest.raises(CodecError):
        coder.encode_indexed([1], [3], tables)  # no such table
    with pytest.raises(CodecError):
        coder.encode_indexed(["a"], [0], tables)
    with pytest.raises(CodecError):
        coder.decode_indexed(b"abc", [0], tables)  # not whole words
    with pytest.raises(CodecError):
        coder.decode_indexed("abcd", [0], tables)  # type: ignore[arg-type]


def test_garbage_never_crashes() -> None:
    tables = _tables()
    rng = np.random.default_rng(2)
    for trial in range(50):
        data = rng.integers(0, 256, 4 * int(rng.integers(0, 20)), dtype=np.uint8).tobytes()
        idx = rng.integers(0, 3, int(rng.integers(0, 500)))
        try:
            out = coder.decode_indexed(data, idx, tables)
        except CodecError:
            continue
        assert out.shape == idx.shape, trial


def test_sections_share_one_stream() -> None:
    tables = _tables()
    w = coder.SymbolWriter()
    w.put_indexed([0, 1, -2, 99], [0, 0, 0, 0], tables)
    counts = np.tile(counts_from_probabilities(np.array([1.0, 3.0, 1.0, 1e-9])), (3, 1))
    w.put_rows([5, 6, 100], [5, 5, 5], counts)
    w.put_indexed([1], [1], tables)
    r = coder.SymbolReader(w.finish())
    assert r.get_indexed([0, 0, 0, 0], tables).tolist() == [0, 1, -2, 99]
    assert r.get_rows([5, 5, 5], counts).tolist() == [5, 6, 100]
    assert r.get_indexed([1], tables).tolist() == [1]


def test_rows_roundtrip_cost_and_validation() -> None:
    rng = np.random.default_rng(3)
    n, width = 20_000, 12
    probs = rng.random((n, width + 1)) ** 4
    probs[:, -1] = 1e-6
    counts = counts_from_probabilities(probs)
    lo = rng.integers(-50, 50, n)
    sym = lo + rng.integers(-2, width + 2, n)
    w = coder.SymbolWriter()
    w.put_rows(sym, lo, counts)
    data = w.finish()
    assert np.array_equal(coder.SymbolReader(data).get_rows(lo, counts), sym)
    ideal = coder.rows_cost_bits(sym, lo, counts)
    assert abs(len(data) * 8 - ideal) <= 0.01 * ideal + 64
    bad = counts.copy()
    bad[0, 0] += 1
    with pytest.raises(CodecError):
        coder.SymbolWriter().put_rows(sym, lo, bad)
    with pytest.raises(CodecError):
        coder.SymbolWriter().put_rows(sym[:-1], lo, counts)


def test_bytes_are_little_endian_words() -> None:
    enc = constriction.stream.queue.RangeEncoder()
    enc.encode(np.array([1, 0, 1], np.int32), constriction.stream.model.Uniform(2))
    words = enc.get_compressed()
    data = coder.words_to_bytes(words)
    assert data == np.asarray(words, "<u4").tobytes()
    assert np.array_equal(coder.bytes_to_words(data), words)

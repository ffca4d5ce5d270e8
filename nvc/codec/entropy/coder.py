"""The one place where integers become bits: constriction's range coder plus escapes.

Two ways to give each symbol its probability table, both without a Python loop over
symbols:

- indexed: `CodingTables` plus a table index per symbol. Symbols are coded grouped by
  table (a stable sort by index, then one i.i.d. call per table), which both sides can
  reproduce from the indices alone.
- rows: one integer count row per symbol (for models whose table is built per symbol,
  such as the Gaussian mixture); coded with constriction's batched categorical family.

Counts reach constriction verbatim. Its fast quantizer (`Categorical(perfect=False)`)
puts the left cumulative of symbol i at floor(C_i * s) + i, where C_i is the float prefix
sum of the weights and s = (2**24 - n) / sum(weights). Weights `count - 1` are integers
(exact in float32) summing to 2**24 - n, so s is exactly 1 and symbol i gets exactly
`count_i / 2**24`. A test checks this (tests/codec/entropy/test_coder.py).

A symbol outside its table's range is coded as the escape slot; after the section (in
the order the section coded them) come the escaped values' distances to the range: one
uniform symbol for side and bit length, then the remaining bits in uniform chunks of at
most 16 bits.

Symbols must fit in int32. A compressed section is a whole number of little-endian
32-bit words; the empty section is b"".
"""

from __future__ import annotations

import math
from typing import Any

import constriction
import numpy as np
import numpy.typing as npt

from nvc.codec.entropy.tables import PRECISION, TOTAL, CodingTables
from nvc.errors import CodecError

IntArray = npt.NDArray[np.int64]
FloatRows = npt.NDArray[np.float32]

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
_MAX_EXCESS_BITS = 33  # excess + 1 < 2**33 for int32 symbols and int32 table bounds
_HEADER_SIZE = 2 * _MAX_EXCESS_BITS  # (side, bit length) pairs
_CHUNK_BITS = 16


def as_symbols(symbols: npt.ArrayLike) -> IntArray:
    """Validate integer symbols (any int dtype, or integral floats) as a flat int64 array."""
    arr = np.asarray(symbols)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise CodecError("symbols contain NaN or inf")
        if np.any(arr < INT32_MIN) or np.any(arr > INT32_MAX):
            raise CodecError("symbol outside the int32 range")
        if np.any(np.floor(arr) != arr):
            raise CodecError("symbols must be integers")
    elif arr.dtype.kind not in "iub":
        raise CodecError(f"symbols must be integers, got dtype {arr.dtype}")
    flat = arr.reshape(-1)
    out = flat.astype(np.int64)
    if arr.dtype.kind == "u" and out.size and (flat.max() > INT32_MAX):
        raise CodecError("symbol outside the int32 range")
    if out.size and (out.min() < INT32_MIN or out.max() > INT32_MAX):
        raise CodecError("symbol outside the int32 range")
    return out


def _as_indices(
    indices: npt.ArrayLike, count: int, num_tables: int
) -> npt.NDArray[np.unsignedinteger]:
    idx = np.asarray(indices).reshape(-1)
    if idx.size != count:
        raise CodecError(f"expected {count} table indices, got {idx.size}")
    if idx.dtype.kind not in "iu":
        raise CodecError(f"table indices must be integers, got dtype {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= num_tables):
        raise CodecError(f"table index outside 0..{num_tables - 1}")
    # small unsigned types make numpy's stable argsort a radix sort
    return idx.astype(np.uint8 if num_tables <= 256 else np.uint16, copy=False)


def words_to_bytes(words: npt.NDArray[np.uint32]) -> bytes:
    return np.asarray(words, dtype="<u4").tobytes()


def bytes_to_words(data: bytes) -> npt.NDArray[np.uint32]:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CodecError(f"compressed data must be bytes, got {type(data).__name__}")
    if len(data) % 4:
        raise CodecError(f"compressed data length {len(data)} is not a multiple of 4")
    return np.frombuffer(data, dtype="<u4").astype(np.uint32)


# ---------------------------------------------------------------------------- escapes


def _escape_excess(rel: IntArray, size: IntArray | np.int64) -> tuple[IntArray, IntArray]:
    """Side (0 above, 1 below) and distance >= 0 of escaped relative symbols."""
    below = rel < 0
    excess = np.where(below, -1 - rel, rel - size)
    return below.astype(np.int64), excess


def _escape_plan(nbits: IntArray) -> tuple[IntArray, IntArray]:
    """Bits of the low chunk and of the high chunk below the implicit leading one."""
    low = np.minimum(nbits - 1, _CHUNK_BITS)
    return low, nbits - 1 - low


def _encode_escapes(enc: Any, side: IntArray, excess: IntArray) -> None:
    value = excess + 1  # >= 1, < 2**33
    if value.max() >= 1 << _MAX_EXCESS_BITS:
        raise CodecError("escaped value too far outside its table")
    nbits = np.zeros_like(value)
    v = value.copy()
    for _ in range(_MAX_EXCESS_BITS + 1):  # bit length, vectorized
        nz = v > 0
        nbits += nz
        v >>= 1
    header = (side * _MAX_EXCESS_BITS + nbits - 1).astype(np.int32)
    enc.encode(header, constriction.stream.model.Uniform(_HEADER_SIZE))
    low_bits, high_bits = _escape_plan(nbits)
    low = value & ((np.int64(1) << low_bits) - 1)
    high = (value >> low_bits) & ((np.int64(1) << high_bits) - 1)
    for bits, vals in ((low_bits, low), (high_bits, high)):
        use = bits > 0
        if np.any(use):
            sizes = (np.int64(1) << bits[use]).astype(np.int32)
            enc.encode(vals[use].astype(np.int32), constriction.stream.model.Uniform(), sizes)


def _decode_escapes(dec: Any, count: int) -> tuple[IntArray, IntArray]:
    model = constriction.stream.model.Uniform(_HEADER_SIZE)
    header = np.asarray(dec.decode(model, count), dtype=np.int64)
    side = header // _MAX_EXCESS_BITS
    nbits = header % _MAX_EXCESS_BITS + 1
    low_bits, high_bits = _escape_plan(nbits)
    parts = []
    for bits in (low_bits, high_bits):
        vals = np.zeros(count, dtype=np.int64)
        use = bits > 0
        if np.any(use):
            sizes = (np.int64(1) << bits[use]).astype(np.int32)
            vals[use] = dec.decode(constriction.stream.model.Uniform(), sizes)
        parts.append(vals)
    value = (np.int64(1) << (nbits - 1)) | (parts[1] << low_bits) | parts[0]
    return side, value - 1


def escape_cost_bits(excess: IntArray) -> float:
    """Exact payload cost of escapes with the given distances (header + raw bits)."""
    if excess.size == 0:
        return 0.0
    nbits = np.floor(np.log2((excess + 1).astype(np.float64))).astype(np.int64) + 1
    return float(excess.size * math.log2(_HEADER_SIZE) + (nbits - 1).sum())


# ---------------------------------------------------------------------- writer/reader


class SymbolWriter:
    """Accumulates coded sections in one range-coder stream; `finish()` gives the bytes."""

    def __init__(self) -> None:
        self._enc = constriction.stream.queue.RangeEncoder()

    def put_indexed(
        self,
        symbols: npt.ArrayLike,
        indices: npt.ArrayLike,
        tables: CodingTables,
        trusted: bool = False,
    ) -> None:
        """Code symbols[i] with table indices[i] (flat arrays of equal length).

        Symbols are coded grouped by table (stable order within a table); escapes
        follow the section, in that grouped order. `trusted=True` skips validation for
        callers that pass int64 symbols and in-range unsigned indices by construction.
        """
        if trusted:
            sym = np.asarray(symbols).reshape(-1)
            idx = np.asarray(indices).reshape(-1)
        else:
            sym = as_symbols(symbols)
            idx = _as_indices(indices, sym.size, tables.num_tables)
        if sym.size == 0:
            return
        order = np.argsort(idx, kind="stable")
        grouped_idx = idx[order]
        # every symbol's slot relative to its table at once; negative values become huge
        # as uint64: one test for both ends
        rel = sym[order] - tables.lo[grouped_idx]
        size = tables.size[grouped_idx]
        rel_u = rel.view(np.uint64)
        slot = np.minimum(rel_u, size.view(np.uint64)).astype(np.int32)
        counts = np.bincount(idx, minlength=tables.num_tables)
        start = 0
        for t in np.flatnonzero(counts):  # one i.i.d. call per table, in table order
            stop = start + int(counts[t])
            self._enc.encode(slot[start:stop], tables.model(int(t)))
            start = stop
        esc = rel_u >= size.view(np.uint64)
        if esc.any():  # escapes follow the section, in the grouped order
            _encode_escapes(self._enc, *_escape_excess(rel[esc], size[esc]))

    def put_rows(self, symbols: npt.ArrayLike, lo: npt.ArrayLike, counts: IntArray) -> None:
        """Code symbols[i] with the table counts[i] over lo[i] .. lo[i] + W - 1 plus escape.

        counts: (N, W + 1) integers >= 1, each row summing to 2**24 (checked: a wrong row
        would make the stream undecodable).
        """
        sym = as_symbols(symbols)
        if sym.size == 0:
            return
        lo_arr, c = _check_rows(sym.size, lo, counts)
        self.put_weight_rows(sym, lo_arr, (c - 1).astype(np.float32))

    def put_weight_rows(self, symbols: IntArray, lo: IntArray, weights: FloatRows) -> None:
        """`put_rows` with rows given as float32 weights = counts - 1, unchecked.

        For callers that build rows by construction: integer-valued float32, each row
        summing to 2**24 - (W + 1). symbols and lo: int64 (N,), weights: (N, W + 1).
        """
        if symbols.size == 0:
            return
        width = weights.shape[1] - 1
        rel = symbols - lo
        rel_u = rel.view(np.uint64)
        slot = np.minimum(rel_u, np.uint64(width)).astype(np.int32)
        family = constriction.stream.model.Categorical(perfect=False)
        self._enc.encode(slot, family, weights)
        esc = rel_u >= np.uint64(width)
        if esc.any():
            _encode_escapes(self._enc, *_escape_excess(rel[esc], np.int64(width)))

    def finish(self) -> bytes:
        return words_to_bytes(self._enc.get_compressed())


class SymbolReader:
    """Reads sections back in the order a `SymbolWriter` wrote them."""

    def __init__(self, data: bytes) -> None:
        words = bytes_to_words(data)
        self._dec = constriction.stream.queue.RangeDecoder(words)

    def get_indexed(
        self, indices: npt.ArrayLike, tables: CodingTables, trusted: bool = False
    ) -> IntArray:
        """Decode one `put_indexed` section; the count is the number of indices."""
        idx = np.asarray(indices).reshape(-1)
        if not trusted:
            idx = _as_indices(idx, idx.size, tables.num_tables)
        n = idx.size
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        order = np.argsort(idx, kind="stable")
        counts = np.bincount(idx, minlength=tables.num_tables)
        slots = np.empty(n, dtype=np.int64)
        start = 0
        try:
            for t in np.flatnonzero(counts):  # one i.i.d. call per table, in table order
                stop = start + int(counts[t])
                slots[start:stop] = self._dec.decode(tables.model(int(t)), stop - start)
                start = stop
            grouped_idx = idx[order]
            lo, size = tables.lo[grouped_idx], tables.size[grouped_idx]
            grouped = slots + lo
            pos = np.flatnonzero(slots == size)  # escapes, in the grouped order
            if pos.size:
                side, excess = _decode_escapes(self._dec, pos.size)
                lo_e, size_e = lo[pos], size[pos]
                grouped[pos] = np.where(side == 1, lo_e - 1 - excess, lo_e + size_e + excess)
        except (ValueError, RuntimeError, AssertionError) as exc:
            raise CodecError(f"corrupt entropy-coded data ({exc})") from exc
        out = np.empty(n, dtype=np.int64)
        out[order] = grouped
        return _check_decoded(out)

    def get_rows(self, lo: npt.ArrayLike, counts: IntArray) -> IntArray:
        """Decode one `put_rows` section."""
        c = np.asarray(counts)
        n = c.shape[0] if c.ndim == 2 else 0
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        lo_arr, c = _check_rows(n, lo, c)
        return self.get_weight_rows(lo_arr, (c - 1).astype(np.float32))

    def get_weight_rows(self, lo: IntArray, weights: FloatRows) -> IntArray:
        """Decode one `put_weight_rows` section (same unchecked contract)."""
        if weights.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        width = weights.shape[1] - 1
        family = constriction.stream.model.Categorical(perfect=False)
        try:
            slot = np.asarray(self._dec.decode(family, weights), dtype=np.int64)
            sym = slot + lo
            esc = np.flatnonzero(slot == width)
            if esc.size:
                side, excess = _decode_escapes(self._dec, esc.size)
                lo_e = lo[esc]
                sym[esc] = np.where(side == 1, lo_e - 1 - excess, lo_e + width + excess)
        except (ValueError, RuntimeError, AssertionError) as exc:
            raise CodecError(f"corrupt entropy-coded data ({exc})") from exc
        return _check_decoded(sym)


def _check_rows(n: int, lo: npt.ArrayLike, counts: npt.ArrayLike) -> tuple[IntArray, IntArray]:
    lo_arr = np.asarray(lo, dtype=np.int64).reshape(-1)
    c = np.asarray(counts, dtype=np.int64)
    if c.ndim != 2 or c.shape[0] != n or lo_arr.size != n or c.shape[1] < 2:
        raise CodecError("rows need shape (N, W + 1) with W >= 1 and one lo per symbol")
    if c.min() < 1 or np.any(c.sum(axis=1) != TOTAL):
        raise CodecError(f"row counts must be >= 1 and sum to 2**{PRECISION}")
    return lo_arr, c


def _check_decoded(sym: IntArray) -> IntArray:
    if sym.size and (sym.min() < INT32_MIN or sym.max() > INT32_MAX):
        raise CodecError("corrupt entropy-coded data (symbol outside int32)")
    return sym


# ------------------------------------------------------------------ one-call helpers


def encode_indexed(
    symbols: npt.ArrayLike, indices: npt.ArrayLike, tables: CodingTables, trusted: bool = False
) -> bytes:
    """Code symbols with per-symbol table indices in one call; returns the bytes."""
    w = SymbolWriter()
    w.put_indexed(symbols, indices, tables, trusted)
    return w.finish()


def decode_indexed(
    data: bytes, indices: npt.ArrayLike, tables: CodingTables, trusted: bool = False
) -> IntArray:
    """Inverse of `encode_indexed`; the number of symbols is the number of indices."""
    return SymbolReader(data).get_indexed(indices, tables, trusted)


def indexed_cost_bits(
    symbols: npt.ArrayLike, indices: npt.ArrayLike, tables: CodingTables
) -> float:
    """Ideal code length (sum of -log2 p under the integer tables, escapes included)."""
    sym = as_symbols(symbols)
    if sym.size == 0:
        return 0.0
    idx = _as_indices(indices, sym.size, tables.num_tables).astype(np.int64)
    rel = sym - tables.lo[idx]
    size = tables.size[idx]
    esc = (rel < 0) | (rel >= size)
    slot = np.where(esc, size, rel)
    bits = float(tables.neg_log2[tables.offsets[idx] + slot].sum())
    return bits + escape_cost_bits(_escape_excess(rel[esc], size[esc])[1])


def rows_cost_bits(symbols: npt.ArrayLike, lo: npt.ArrayLike, counts: IntArray) -> float:
    """Ideal code length of `put_rows` with the same arguments."""
    sym = as_symbols(symbols)
    if sym.size == 0:
        return 0.0
    lo_arr, c = _check_rows(sym.size, lo, counts)
    return weight_rows_cost_bits(sym, lo_arr, (c - 1).astype(np.float32))


def weight_rows_cost_bits(symbols: IntArray, lo: IntArray, weights: FloatRows) -> float:
    """Ideal code length of `put_weight_rows` with the same arguments."""
    if symbols.size == 0:
        return 0.0
    width = weights.shape[1] - 1
    rel = symbols - lo
    rel_u = rel.view(np.uint64)
    slot = np.minimum(rel_u, np.uint64(width)).astype(np.int64)
    picked = weights[np.arange(symbols.size), slot].astype(np.float64) + 1.0
    bits = float((PRECISION - np.log2(picked)).sum())
    esc = rel_u >= np.uint64(width)
    return bits + escape_cost_bits(_escape_excess(rel[esc], np.int64(width))[1])

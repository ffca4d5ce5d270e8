"""Coding of the feature grids (grid.py) in the MODEL unit, with a context model.

A MODEL unit of a network with grids is `uleb n | n bytes grid section | weights payload`
(weights.py). The grid section:

    uleb   slices S (1 .. the group size's slices; must match the group's frame count)
    per grid (coarse to fine):
      f32  step
      u8   flags: bit 0 temporal prediction (slice j > 0 carries its integers minus
           slice j - 1's)
      u8   table mask: bit k set = context k has a table; then per set bit, its 9-byte
           discrete Laplace (nvc.codec.entropy ParametricWeightParams: mean, scale)
    uleb n | n bytes: one range-coded stream (nvc.codec.entropy SymbolWriter), one section
           per grid and slice, in that order, values in (channel, row, column) order

Context model: every value is coded with the table of its context, the magnitude class
(0, 1, 2-3, 4+) of a value the decoder already holds: for slice j > 0 the same position in
slice j - 1, for slice 0 the largest magnitude over channels at the co-located position
of the next coarser grid's slice 0 (the first grid's slice 0: context 0). Contexts
depend only on earlier sections, so each section is one vectorized coder call on both
sides. The tables are built from transmitted integers (exact), so the decoder's tables
are the encoder's.
"""

from __future__ import annotations

import struct

import numpy as np

from nvc.bitstream import decode_uleb128, encode_uleb128
from nvc.bitstream.leb128 import Truncated
from nvc.codec.entropy import ParametricWeightModel
from nvc.codec.entropy.coder import SymbolReader, SymbolWriter
from nvc.codec.entropy.tables import CodingTables
from nvc.codec.entropy.weights import ParametricWeightParams
from nvc.codec.inr.grid import GridLevel
from nvc.codec.inr.quant import INT_MAX
from nvc.codec.inr.weights import Cursor
from nvc.errors import BitstreamError, CodecError, NvcError

CONTEXTS = 4  # magnitude classes 0, 1, 2-3, 4+
_F32 = struct.Struct("<f")
_LAPLACE = ParametricWeightModel("laplace")
GridCodes = list[tuple[np.float32, np.ndarray]]  # per grid: (step, ints (S, C, rows, cols))


def _classes(ref: np.ndarray) -> np.ndarray:
    """Magnitude classes of reference integers: 0, 1, 2-3, 4+ -> 0..3 (uint8)."""
    a = np.abs(ref)
    return np.minimum(np.where(a >= 2, 2 + (a >= 4), a), CONTEXTS - 1).astype(np.uint8)


def _coarse_context(coarse: np.ndarray | None, level: GridLevel) -> np.ndarray:
    """Context classes of a grid's slice 0 (C, rows, cols) from the coarser grid's slice 0."""
    shape = (level.channels, level.rows, level.cols)
    if coarse is None:
        return np.zeros(shape, np.uint8)
    m = np.abs(coarse).max(axis=0)  # (rows', cols')
    ys = np.minimum(np.arange(level.rows) // 2, m.shape[0] - 1)
    xs = np.minimum(np.arange(level.cols) // 2, m.shape[1] - 1)
    ctx = _classes(m[ys][:, xs])
    return np.broadcast_to(ctx, shape)


def _contexts(ints: np.ndarray, coarse: np.ndarray | None, level: GridLevel) -> np.ndarray:
    """Context class of every value of a grid (S, C, rows, cols), from what precedes it."""
    ctx = np.empty(ints.shape, np.uint8)
    ctx[0] = _coarse_context(coarse, level)
    if ints.shape[0] > 1:
        ctx[1:] = _classes(ints[:-1])
    return ctx


def _symbols(ints: np.ndarray, temporal: bool) -> np.ndarray:
    if not temporal:
        return ints
    out = ints.copy()
    out[1:] -= ints[:-1]
    return out


def _fit(symbols: np.ndarray, ctx: np.ndarray) -> tuple[list[ParametricWeightParams | None], float]:
    """A Laplace per context (None: unused) and the total cost in bits, tables included."""
    params: list[ParametricWeightParams | None] = []
    bits = 8.0
    for k in range(CONTEXTS):
        values = symbols[ctx == k]
        if not values.size:
            params.append(None)
            continue
        p = _LAPLACE.fit(values)
        params.append(p)
        bits += _LAPLACE.cost_bits(values, p) + 72.0
    return params, bits


def _tables(params: list[ParametricWeightParams | None]) -> tuple[CodingTables, np.ndarray]:
    """The coding tables of the used contexts and the context -> table index map."""
    used = [p for p in params if p is not None]
    tables = [_LAPLACE.table(p) for p in used]
    index = np.zeros(CONTEXTS, np.uint8)
    index[[k for k, p in enumerate(params) if p is not None]] = np.arange(len(used))
    return CodingTables([t.lo[0] for t in tables], [t.row(0) for t in tables]), index


def encode_grids(codes: GridCodes, levels: list[GridLevel]) -> bytes:
    """The grid section of a MODEL unit."""
    if len(codes) != len(levels) or not codes:
        raise CodecError("one coded grid per grid level is needed")
    slices = codes[0][1].shape[0]
    out = bytearray(encode_uleb128(slices))
    writer = SymbolWriter()
    coarse: np.ndarray | None = None
    for (step, ints), level in zip(codes, levels, strict=True):
        if ints.shape != (slices, level.channels, level.rows, level.cols):
            raise CodecError(f"grid integers of shape {ints.shape} do not match the network")
        ctx = _contexts(ints, coarse, level)
        # each slice alone, or (temporal) its difference from the previous: the cheaper
        choices = [(False, ints)] + ([(True, _symbols(ints, True))] if slices > 1 else [])
        fits = [(_fit(sym, ctx), temporal, sym) for temporal, sym in choices]
        (params, _), temporal, sym = min(fits, key=lambda f: f[0][1])
        out += _F32.pack(step)
        out.append(int(temporal))
        out.append(sum(1 << k for k, p in enumerate(params) if p is not None))
        for p in params:
            if p is not None:
                out += p.to_bytes()
        tables, index = _tables(params)
        for j in range(slices):
            writer.put_indexed(sym[j].reshape(-1), index[ctx[j].reshape(-1)], tables)
        coarse = ints[0]
    data = writer.finish()
    out += encode_uleb128(len(data)) + data
    return bytes(out)


def decode_grids(data: bytes, levels: list[GridLevel], max_slices: int) -> GridCodes:
    """Inverse of encode_grids; anything malformed is a BitstreamError."""
    try:
        return _decode_grids(data, levels, max_slices)
    except NvcError as e:
        if isinstance(e, BitstreamError):
            raise
        raise BitstreamError(f"inr grid section does not decode: {e}") from None


def _decode_grids(data: bytes, levels: list[GridLevel], max_slices: int) -> GridCodes:
    cur = Cursor(data, "inr grid section", "inr grid")
    slices = cur.uleb()
    if not 1 <= slices <= max_slices:
        raise BitstreamError(f"inr grid section has {slices} slices (at most {max_slices})")
    heads = []
    for _ in levels:
        step = np.float32(_F32.unpack(cur.take(4))[0])
        if not np.isfinite(step) or step <= 0:
            raise BitstreamError("inr grid section has an invalid step")
        flags, mask = cur.take(2)
        if flags & ~1 or mask >> CONTEXTS:
            raise BitstreamError("inr grid section has unknown flags")
        params = [
            ParametricWeightParams.from_bytes(cur.take(9)) if mask >> k & 1 else None
            for k in range(CONTEXTS)
        ]
        heads.append((step, bool(flags & 1), params))
    stream = cur.take(cur.uleb())
    if cur.pos != len(data):
        raise BitstreamError("inr grid section has trailing bytes")
    reader = SymbolReader(stream)
    codes: GridCodes = []
    coarse: np.ndarray | None = None
    for (step, temporal, params), level in zip(heads, levels, strict=True):
        if not any(p is not None for p in params):
            raise BitstreamError("inr grid section has a grid without tables")
        tables, index = _tables(params)
        has = np.array([p is not None for p in params])
        shape = (level.channels, level.rows, level.cols)
        ints = np.empty((slices, *shape), np.int64)
        for j in range(slices):
            ctx = _coarse_context(coarse, level) if j == 0 else _classes(ints[j - 1])
            if not has[ctx].all():
                raise BitstreamError("inr grid section lacks a table its values need")
            sym = reader.get_indexed(index[ctx.reshape(-1)], tables).reshape(shape)
            ints[j] = sym + ints[j - 1] if temporal and j > 0 else sym
            if np.abs(ints[j]).max() > INT_MAX:
                raise BitstreamError("inr grid value out of range")
        codes.append((step, ints))
        coarse = ints[0]
    return codes


def join_payload(grids: bytes, weights: bytes) -> bytes:
    """The MODEL payload of a network with grids."""
    return encode_uleb128(len(grids)) + grids + weights


def split_payload(payload: bytes) -> tuple[bytes, bytes]:
    """(grid section, weights payload) of a MODEL payload of a network with grids."""
    try:
        n, pos = decode_uleb128(payload, 0, limit=1 << 31, what="inr grid section")
    except Truncated:
        raise BitstreamError("inr MODEL unit is truncated") from None
    if pos + n > len(payload):
        raise BitstreamError("inr MODEL unit is truncated")
    return payload[pos : pos + n], payload[pos + n :]

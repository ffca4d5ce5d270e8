"""Block motion vectors of fm inter frames, coded losslessly (FLAG_BLOCK_MOTION frames).

A block-motion frame predicts the picture from the reference with one vector per 8 x 8
luma block (a cell of the codec's 1/8-resolution grid), in quarter luma pixels, by the
exact integer interpolation of subpel.py (quarter-pel luma, eighth-pel chroma; bit-exact
on any machine or thread count).
Cells are grouped in 16 x 16 macroblocks (2 x 2 cells); each macroblock has one vector
(merged) or is split into its four cells' vectors.

Coding, in one section of the frame's range-coder stream (nvc.codec.entropy):

    4 parameter symbols (uniform over 256): the split table index (0..SPLIT_LEVELS-1), the
      dx and dy table indices (0..MVD_TABLES-1), the interpolation filter (subpel.FILTERS),
      chosen per frame by the encoder
    | one split flag per macroblock, raster order, with the split table
    | the dx of every vector difference, then every dy, with their tables

Vectors are coded in macroblock raster order, the four cells of a split macroblock in
raster order inside it. Each is sent as its difference to a median predictor of the
vectors already decoded: the componentwise median of the left (A), top (B) and top-right
(C; the top-left where the top-right is not yet decoded) neighbours of the unit's top-left
cell, a missing neighbour counting as a zero vector; in the first row the predictor is A.
A difference of 0 costs little (the tables have a spike at 0: a merge with the predicted
motion). Tables: a discrete two-sided geometric distribution with a separate mass at 0
over -MVD_RANGE..MVD_RANGE plus an escape slot (any other value, coded by the entropy
package's escape), built from constants with detmath (the same integers on every machine).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nvc.codec.entropy import SymbolReader, SymbolWriter, detmath
from nvc.codec.entropy.tables import CodingTables, counts_from_probabilities
from nvc.errors import BitstreamError

MVD_RANGE = 48  # table range of a vector difference component, quarter pixels
ZERO_LEVELS = 16  # levels of the mass at 0
DECAY_LEVELS = 16  # levels of the geometric decay
MVD_TABLES = ZERO_LEVELS * DECAY_LEVELS
SPLIT_LEVELS = 16  # levels of P(split)
PARAM_SYMBOLS = 256  # the parameter symbols are uniform over 0..255
PARAMS = 4  # parameter symbols per frame
FILTERS = 2  # interpolation filters (subpel.FILTERS)
MAX_VECTOR = 1 << 14  # |component| limit of a decoded vector (quarter pixels: 4096 pixels)
QPEL_PER_CELL = 32  # quarter pixels per grid unit (8 luma pixels)

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class BlockMotion:
    """One frame's block motion: vectors per cell, split flags per macroblock."""

    vectors: IntArray  # (gh, gw, 2) quarter-pixel (dx, dy) of every 8 x 8 cell
    split: npt.NDArray[np.bool_]  # (gh / 2, gw / 2): macroblock coded as four vectors
    filter: int = 0  # subpel's interpolation filter: 0 sharp, 1 smooth


@functools.lru_cache(maxsize=1)
def mvd_tables() -> CodingTables:
    """MVD_TABLES tables over -MVD_RANGE..MVD_RANGE; table i = zero level * DECAY_LEVELS
    + decay level. Mass at 0: sigmoid(0.6 (k - 5)); the rest decays by exp(-a) per
    quarter pixel, a = 0.04 * 1.33**j; an escape slot with 1/1000 of the nonzero mass."""
    k = np.arange(ZERO_LEVELS, dtype=np.float64)
    p0 = detmath.sigmoid(0.6 * (k - 5.0))
    j = np.arange(DECAY_LEVELS, dtype=np.float64)
    rate = 0.04 * detmath.exp(j * detmath.log(np.array([1.33]))[0])
    mag = np.abs(np.arange(-MVD_RANGE, MVD_RANGE + 1, dtype=np.float64))
    rows = []
    for zi in range(ZERO_LEVELS):
        for di in range(DECAY_LEVELS):
            tail = detmath.exp(-(mag - 1.0) * rate[di])
            tail[MVD_RANGE] = 0.0
            norm = detmath.ordered_sum(tail[None])[0]
            p = tail * ((1.0 - p0[zi]) / norm)
            p[MVD_RANGE] = p0[zi]
            esc = (1.0 - p0[zi]) / 1000.0
            rows.append(counts_from_probabilities(np.append(p, esc)[None])[0])
    return CodingTables(np.full(len(rows), -MVD_RANGE), rows)


@functools.lru_cache(maxsize=1)
def split_tables() -> CodingTables:
    """SPLIT_LEVELS tables over {0, 1}: P(split) = sigmoid(0.7 (k - 7.5))."""
    k = np.arange(SPLIT_LEVELS, dtype=np.float64)
    ps = detmath.sigmoid(0.7 * (k - 7.5))
    rows = [counts_from_probabilities(np.array([[1.0 - p, p, 1e-6]]))[0] for p in ps]
    return CodingTables(np.zeros(SPLIT_LEVELS, dtype=np.int64), rows)


@functools.lru_cache(maxsize=1)
def param_table() -> CodingTables:
    """One table, uniform over 0..PARAM_SYMBOLS - 1 (plus the escape slot)."""
    row = counts_from_probabilities(np.ones((1, PARAM_SYMBOLS + 1)))[0]
    return CodingTables(np.zeros(1, dtype=np.int64), [row])


def _unit_array(split: npt.NDArray[np.bool_]) -> IntArray:
    """Coding units (N, 3) as (row, column, size in cells) in coding order: macroblocks in
    raster order, a split one as its four cells in raster order."""
    mh, mw = split.shape
    r = 2 * np.arange(mh).reshape(mh, 1, 1)
    c = 2 * np.arange(mw).reshape(1, mw, 1)
    dr, dc = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    flags = split[:, :, None]
    size = np.where(flags, 1, np.array([2, 0, 0, 0]))  # 0: no such unit
    cand = np.stack(np.broadcast_arrays(r + dr, c + dc, size), axis=-1)  # (mh, mw, 4, 3)
    return cand[size > 0].astype(np.int64).reshape(-1, 3)


def units(split: npt.NDArray[np.bool_]) -> list[tuple[int, int, int]]:
    """Coding units (row, column, size in cells) in coding order."""
    return [(r, c, s) for r, c, s in _unit_array(split).tolist()]


def _rebuild(
    order: IntArray, dx: IntArray, dy: IntArray, grid: tuple[int, int], what: str
) -> IntArray:
    """The decoder's vectors (gh, gw, 2): each unit's median predictor (left, above, above
    right where coded already, else above left; the left one alone in the first row) plus
    its difference, in coding order. Plain lists with a zero border (one loop, no calls)."""
    gh, gw = grid
    row = gw + 2  # the padded field: a zero row on top, a zero column either side
    fx = [0] * ((gh + 1) * row)
    fy = [0] * ((gh + 1) * row)
    for (r, c, s), ex, ey in zip(order.tolist(), dx.tolist(), dy.tolist(), strict=True):
        at = (r + 1) * row + c + 1
        ax, ay = fx[at - 1], fy[at - 1]
        if r == 0:
            x, y = ax + ex, ay + ey
        else:
            up = at - row
            bx, by = fx[up], fy[up]
            # above right is coded unless beyond the picture or for a bottom-right cell
            k = up + s if c + s < gw and not (s == 1 and r & c & 1) else up - 1
            cx, cy = fx[k], fy[k]
            x = max(min(ax, bx), min(max(ax, bx), cx)) + ex
            y = max(min(ay, by), min(max(ay, by), cy)) + ey
        if abs(x) > MAX_VECTOR or abs(y) > MAX_VECTOR:
            raise BitstreamError(f"{what} has a motion vector out of range")
        fx[at], fy[at] = x, y
        if s == 2:
            fx[at + 1], fy[at + 1] = x, y
            fx[at + row], fy[at + row] = x, y
            fx[at + row + 1], fy[at + row + 1] = x, y
    out = np.stack([np.array(fx), np.array(fy)], axis=-1).astype(np.int64)
    return out.reshape(gh + 1, row, 2)[1:, 1:-1]


def differences(motion: BlockMotion) -> IntArray:
    """(N, 2) vector differences of the coding units, in coding order (the encoder's): the
    predictors of _rebuild, all at once, since the encoder knows the whole field."""
    v = motion.vectors.astype(np.int64)
    gh, gw, _ = v.shape
    order = _unit_array(motion.split)
    r, c, s = order[:, 0], order[:, 1], order[:, 2]
    # the field as coded: a whole macroblock takes its top-left cell's vector
    whole = np.repeat(np.repeat(~motion.split, 2, axis=0), 2, axis=1)
    filled = np.where(whole[..., None], np.repeat(np.repeat(v[::2, ::2], 2, 0), 2, 1), v)
    # zero-padded on the top and left (and one column on the right): index + 1
    padded = np.zeros((gh + 1, gw + 2, 2), dtype=np.int64)
    padded[1:, 1:-1] = filled
    a = padded[r + 1, c]  # left (0 in the first column)
    b = padded[r, c + 1]  # above
    # above right where it is coded already (not for a bottom-right cell), else above left
    right_done = (c + s < gw) & ~((s == 1) & (r % 2 == 1) & (c % 2 == 1))
    cc = np.where(right_done[:, None], padded[r, np.minimum(c + s, gw) + 1], padded[r, c])
    median = np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), cc))
    pred = np.where((r == 0)[:, None], a, median)
    return (v[r, c] - pred).reshape(-1, 2)


def _table_bits(values: IntArray, tables: CodingTables) -> IntArray:
    """Bits (x 1, float) of `values` under each table: (num_tables,) (escapes ~ 24 bits)."""
    width = 2 * MVD_RANGE + 1
    slot = np.clip(values - tables.lo[0], -1, width)
    slot = np.where((slot < 0) | (slot >= width), width, slot)
    hist = np.bincount(slot, minlength=width + 1).astype(np.float64)
    cost = tables.neg_log2.reshape(tables.num_tables, width + 1)
    extra = 24.0 * hist[width]
    return cost @ hist + extra


def mvd_bits_matrix() -> npt.NDArray[np.float64]:
    """-log2 p of each difference value -MVD_RANGE..MVD_RANGE (+ escape) per table:
    (MVD_TABLES, 2 MVD_RANGE + 2), for the encoder's search."""
    t = mvd_tables()
    return t.neg_log2.reshape(t.num_tables, 2 * MVD_RANGE + 2)


def split_bits() -> npt.NDArray[np.float64]:
    """-log2 p of (no split, split) per split table: (SPLIT_LEVELS, 2)."""
    t = split_tables()
    return t.neg_log2.reshape(SPLIT_LEVELS, 3)[:, :2]


def encode(motion: BlockMotion, writer: SymbolWriter) -> None:
    """Code one frame's block motion (the section described in the module docstring)."""
    d = differences(motion)
    flags = motion.split.reshape(-1).astype(np.int64)
    ns = int(flags.sum())
    sb = split_bits()
    split_idx = int(np.argmin(sb[:, 0] * (flags.size - ns) + sb[:, 1] * ns))
    tx = int(np.argmin(_table_bits(d[:, 0], mvd_tables())))
    ty = int(np.argmin(_table_bits(d[:, 1], mvd_tables())))
    params = np.array([split_idx, tx, ty, motion.filter], dtype=np.int64)
    writer.put_indexed(params, np.zeros(PARAMS, dtype=np.uint8), param_table())
    writer.put_indexed(flags, np.full(flags.size, split_idx, dtype=np.uint8), split_tables())
    n = d.shape[0]
    writer.put_indexed(d[:, 0], np.full(n, tx, dtype=np.uint8), mvd_tables())
    writer.put_indexed(d[:, 1], np.full(n, ty, dtype=np.uint8), mvd_tables())


def decode(reader: SymbolReader, grid: tuple[int, int], what: str) -> BlockMotion:
    """Read one frame's block motion for a (gh, gw) grid (both even); `what` names the
    frame in errors. Corrupt data: a BitstreamError, never an unbounded vector."""
    gh, gw = grid
    params = reader.get_indexed(np.zeros(PARAMS, dtype=np.uint8), param_table())
    split_idx, tx, ty, filt = (int(p) for p in params)
    tables_ok = 0 <= tx < MVD_TABLES and 0 <= ty < MVD_TABLES
    if not (0 <= split_idx < SPLIT_LEVELS and tables_ok and 0 <= filt < FILTERS):
        raise BitstreamError(f"{what} has bad motion parameters")
    count = (gh // 2) * (gw // 2)
    flags = reader.get_indexed(np.full(count, split_idx, dtype=np.uint8), split_tables())
    if np.any((flags < 0) | (flags > 1)):
        raise BitstreamError(f"{what} has a bad split flag")
    split = flags.astype(bool).reshape(gh // 2, gw // 2)
    order = _unit_array(split)
    n = order.shape[0]
    dx = reader.get_indexed(np.full(n, tx, dtype=np.uint8), mvd_tables())
    dy = reader.get_indexed(np.full(n, ty, dtype=np.uint8), mvd_tables())
    vectors = np.ascontiguousarray(_rebuild(order, dx, dy, grid, what))
    return BlockMotion(vectors, split, filt)


__all__ = [
    "MAX_VECTOR",
    "MVD_RANGE",
    "QPEL_PER_CELL",
    "BlockMotion",
    "decode",
    "differences",
    "encode",
    "mvd_bits_matrix",
    "mvd_tables",
    "split_bits",
    "units",
]

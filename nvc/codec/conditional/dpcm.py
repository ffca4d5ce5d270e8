"""DPCM coding of a latent's DC planes (fm parameters version 4): the integer symbols of one
channel, K = round(y), predicted from their decoded left / upper neighbours and the
prediction error coded with one Laplace table per plane.

Why: the v2 image codec's channels 0, 64 and 80 are the DC coefficients of each 8x8 block
(luma, Cb, Cr; image.py starts them as the block DCT). On smooth pictures their values
vary slowly from block to block, which the hyperprior (at 1/32) cannot follow: on the
held-out cup.mp4 the luma DC took 70% of an intra frame at q = 0 (2474 of 3539 bytes,
about 4 bits per block) although x264's intra prediction makes such pictures cheap. A
planar prediction of the same integers costs 901 bytes there.

Each DPCM-capable channel carries a mode: 0 (coded by the context model, as before) or
1 + 2 * level + predictor, where predictor 0 is the left neighbour (the first column: the
one above) and 1 the plane through the left, upper and upper-left neighbours (the first
row: left; the first column: above); level is the Laplace table's scale level. Both
predictors are linear with unit coefficients, so the encoder's prediction errors are
differences of K and the decoder inverts them with cumulative sums: exact integers, no
loop over positions. The encoder picks, per plane, the mode of fewest bits.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

from nvc.codec.entropy import LaplaceConditional, SymbolReader, SymbolWriter
from nvc.codec.entropy.tables import CodingTables, counts_from_probabilities
from nvc.errors import CodecError

IntArray = npt.NDArray[np.int64]
PREDICTORS = 2  # 0: left, 1: planar
CONTEXT = 0  # the mode of a plane coded by the context model
ESCAPE_BITS = 32.0  # what level_bits counts for an escape beyond its slot


@functools.lru_cache(maxsize=1)
def error_tables() -> CodingTables:
    """The zero-mean Laplace tables, one per scale level, that prediction errors use."""
    return LaplaceConditional().tables


def _uniform(n: int) -> CodingTables:
    """One table over 0 .. n - 1, equally likely (the escape slot has the least count)."""
    return CodingTables([0], [counts_from_probabilities(np.r_[np.ones(n), 0.0])[0]])


@functools.lru_cache(maxsize=1)
def mode_table() -> CodingTables:
    """The modes 0 .. 2 * levels, equally likely."""
    return _uniform(1 + PREDICTORS * error_tables().num_tables)


MODE_BITS = 7.0  # about what a mode costs (log2 of 129)


@functools.lru_cache(maxsize=1)
def flag_table() -> CodingTables:
    return _uniform(2)


def put_flags(writer: SymbolWriter, flags: list[bool]) -> None:
    n = len(flags)
    writer.put_indexed(np.asarray(flags, dtype=np.int64), np.zeros(n, np.uint8), flag_table())


def get_flags(reader: SymbolReader, n: int) -> list[bool]:
    flags = reader.get_indexed(np.zeros(n, np.uint8), flag_table())
    if np.any((flags < 0) | (flags > 1)):
        raise CodecError("a DPCM flag is out of range")
    return [bool(f) for f in flags]


def errors(k: IntArray, predictor: int) -> IntArray:
    """(h, w) integers -> their prediction errors under `predictor`."""
    r = k.copy()
    if predictor == 0:
        r[:, 1:] -= k[:, :-1]
        r[1:, 0] -= k[:-1, 0]
        return r
    r[1:, :] -= k[:-1, :]  # the planar error is the mixed second difference
    r[:, 1:] -= r[:, :-1].copy()
    return r


def integers(r: IntArray, predictor: int) -> IntArray:
    """The inverse of `errors`."""
    if predictor == 0:
        k = r.copy()
        k[:, 0] = np.cumsum(r[:, 0])
        return np.cumsum(k, axis=1)
    return np.cumsum(np.cumsum(r, axis=0), axis=1)


def level_bits(r: IntArray) -> npt.NDArray[np.float64]:
    """(levels,) bits of the integers r under each Laplace table; an escape is counted as
    its slot plus ESCAPE_BITS (an estimate: a table that escapes is rarely the best)."""
    tables = error_tables()
    values, counts = np.unique(r.reshape(-1), return_counts=True)
    rel = values[None, :] - tables.lo[:, None]  # (levels, distinct values)
    size = tables.size[:, None]
    inside = (rel >= 0) & (rel < size)
    slot = np.where(inside, rel, size)
    bits = tables.neg_log2[tables.offsets[:-1, None] + slot] + np.where(inside, 0.0, ESCAPE_BITS)
    return bits @ counts.astype(np.float64)


def best_mode(k: IntArray) -> tuple[int, float]:
    """(mode, bits) of the cheapest DPCM coding of the (h, w) integers k."""
    best = (CONTEXT, float("inf"))
    for predictor in range(PREDICTORS):
        bits = level_bits(errors(k, predictor))
        level = int(np.argmin(bits))
        if bits[level] < best[1]:
            best = (1 + PREDICTORS * level + predictor, float(bits[level]))
    return best


def put_modes(writer: SymbolWriter, modes: list[int]) -> None:
    writer.put_indexed(
        np.asarray(modes, dtype=np.int64), np.zeros(len(modes), np.uint8), mode_table()
    )


def get_modes(reader: SymbolReader, n: int) -> list[int]:
    modes = reader.get_indexed(np.zeros(n, np.uint8), mode_table())
    top = PREDICTORS * error_tables().num_tables
    if np.any(modes < 0) or np.any(modes > top):
        raise CodecError("a DC plane mode is out of range")
    return [int(m) for m in modes]


def put_plane(writer: SymbolWriter, k: IntArray, mode: int) -> None:
    """Code the (h, w) integers k in DPCM mode `mode` (not CONTEXT)."""
    level, predictor = divmod(mode - 1, PREDICTORS)
    r = errors(k, predictor).reshape(-1)
    writer.put_indexed(r, np.full(r.size, level, dtype=np.uint8), error_tables(), trusted=True)


def get_plane(reader: SymbolReader, shape: tuple[int, int], mode: int) -> IntArray:
    level, predictor = divmod(mode - 1, PREDICTORS)
    n = shape[0] * shape[1]
    r = reader.get_indexed(np.full(n, level, dtype=np.uint8), error_tables(), trusted=True)
    return integers(r.reshape(shape), predictor)

"""Payloads of GAUSSIAN_BASE and GAUSSIAN_RESIDUAL units (2D mode), coded through
nvc.codec.entropy's exact integer tables.

A *section* codes n integers (n known from context): one kind byte, then
- kind 0: all values equal; the value as zigzag LEB128;
- kind 1: adaptive categorical (`CategoricalWeightModel("adaptive")`): lo (zigzag LEB128),
  size (LEB128), then the coded bytes (LEB128 length first);
- kind 2: discrete Laplace (`ParametricWeightModel("laplace")`): its 9 parameter bytes,
  then the coded bytes (LEB128 length first).
The encoder writes the cheapest kind. Index sets (gates, removals) are coded as sections
of the gaps between sorted indices.

Base payload: count (LEB128), steps (4 bytes), the background (3 zigzag LEB128, >> the
colour step), then the sections of the Gaussians sorted by (16-pixel band of y, x, y):
the bands as gaps, x as gaps within its band (the band's first from 0), y within its
band, then s1, s2 - s1, a, c0, c1, c2, all in units of their steps;
last the CRC-32 of the decoded state (u32le).

Residual payload: the previous state's count (LEB128), steps (4 bytes), the change of
the background (3 zigzag LEB128, >> the colour step), removals
(count, gaps), geometry gates (count, gaps: x, y, s1, s2, a), colour gates (count, gaps:
c0, c1, c2), the residual sections of the gated Gaussians (value >> step), births
(count, then a base payload's sections), the CRC-32 of the decoded state (u32le).
Applying it: remove, add residuals << step to the gated survivors, append the births,
clamp every attribute to its range (angles wrap).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nvc.bitstream.leb128 import decode_uleb128, encode_uleb128
from nvc.codec.entropy import CategoricalWeightModel, ParametricWeightModel
from nvc.codec.entropy.weights import (
    MAX_ALPHABET,
    CategoricalWeightParams,
    ParametricWeightParams,
)
from nvc.codec.gaussian.config import Steps
from nvc.codec.gaussian.state import Bounds, Gaussians2D
from nvc.errors import BitstreamError, CodecError

IntArray = npt.NDArray[np.int64]

_CATEGORICAL = CategoricalWeightModel("adaptive")
_LAPLACE = ParametricWeightModel("laplace")
_INT32 = 1 << 31
GEOMETRY = slice(0, 5)  # x, y, s1, s2, a
COLOUR = slice(5, 8)  # c0, c1, c2


def _zigzag(v: int) -> bytes:
    return encode_uleb128(2 * v if v >= 0 else -2 * v - 1)


def _unzigzag(u: int) -> int:
    return u // 2 if u % 2 == 0 else -(u + 1) // 2


class Reader:
    """Reads a payload front to back; every problem is a BitstreamError."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def uleb(self, limit: int, field: str) -> int:
        value, self.pos = decode_uleb128(self.data, self.pos, limit=limit, what=field)
        return value

    def sleb(self, field: str) -> int:
        return _unzigzag(self.uleb((1 << 33) - 1, field))

    def take(self, n: int, field: str) -> bytes:
        if self.pos + n > len(self.data):
            raise BitstreamError(f"{self.what} is truncated ({field})")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def steps(self) -> Steps:
        steps, self.pos = Steps.read(self.data, self.pos)
        return steps

    def ints(self, count: int, field: str) -> IntArray:
        """A section of `count` integers."""
        if count == 0:
            return np.zeros(0, np.int64)
        kind = self.take(1, field)[0]
        try:
            if kind == 0:
                value = self.sleb(field)
                if not -_INT32 <= value < _INT32:
                    raise BitstreamError(f"{self.what}: {field} out of range")
                return np.full(count, value, np.int64)
            if kind == 1:
                lo = self.sleb(field)
                size = self.uleb(MAX_ALPHABET, field)
                if size < 1 or lo < -_INT32 or lo + size > _INT32:
                    raise BitstreamError(f"{self.what}: {field} has a bad range")
                data = self.take(self.uleb(len(self.data), field), field)
                return _CATEGORICAL.decompress(data, CategoricalWeightParams(lo, size), count)
            if kind == 2:
                laplace = ParametricWeightParams.from_bytes(self.take(9, field))
                data = self.take(self.uleb(len(self.data), field), field)
                return _LAPLACE.decompress(data, laplace, count)
        except CodecError as e:
            raise BitstreamError(f"{self.what}: {field} does not decode ({e})") from None
        raise BitstreamError(f"{self.what}: {field} has unknown section kind {kind}")

    def index_set(self, universe: int, field: str) -> IntArray:
        """Sorted distinct indices below `universe`: count, then gaps."""
        n = self.uleb(universe, field)
        gaps = self.ints(n, field)
        if n and (gaps.min() < 0 or (n > 1 and gaps[1:].min() < 1)):
            raise BitstreamError(f"{self.what}: {field} are not increasing")
        index = np.cumsum(gaps)
        if n and index[-1] >= universe:
            raise BitstreamError(f"{self.what}: {field} point past the Gaussians")
        return index

    def end(self) -> int:
        crc = int.from_bytes(self.take(4, "state checksum"), "little")
        if self.pos != len(self.data):
            raise BitstreamError(f"{self.what} has {len(self.data) - self.pos} trailing bytes")
        return crc


def put_ints(out: bytearray, values: IntArray) -> None:
    """Append a section for `values` (the cheapest kind)."""
    v = np.asarray(values, dtype=np.int64)
    if v.size == 0:
        return
    lo, hi = int(v.min()), int(v.max())
    if lo == hi:
        out += b"\x00" + _zigzag(lo)
        return
    options = []
    if hi - lo + 1 <= MAX_ALPHABET:
        params = _CATEGORICAL.fit(v)
        data = _CATEGORICAL.compress(v, params)
        head = b"\x01" + _zigzag(params.lo) + encode_uleb128(params.size)
        options.append(head + encode_uleb128(len(data)) + data)
    lap = _LAPLACE.fit(v)
    data = _LAPLACE.compress(v, lap)
    options.append(b"\x02" + lap.to_bytes() + encode_uleb128(len(data)) + data)
    out += min(options, key=len)


def put_index_set(out: bytearray, index: IntArray) -> None:
    index = np.asarray(index, dtype=np.int64)
    out += encode_uleb128(int(index.size))
    if index.size:
        put_ints(out, np.diff(index, prepend=0))


def _put_background(out: bytearray, values: tuple[int, ...]) -> None:
    for v in values:
        out += _zigzag(int(v))


def _read_background(r: Reader, shift: int) -> tuple[int, int, int]:
    values = [r.sleb("background") for _ in range(3)]
    if any(abs(v) > _INT32 >> 12 for v in values):
        raise BitstreamError(f"{r.what}: the background is out of range")
    return (values[0] << shift, values[1] << shift, values[2] << shift)


BAND_SHIFT = 8  # positions are coded in horizontal bands of 2**8 / 16 = 16 pixels


def _put_gaussians(out: bytearray, g: Gaussians2D, steps: Steps) -> None:
    """The sections of a set sorted by sort_key whose values are multiples of the steps:
    band gaps, x gaps within the band (from 0 at a band's first Gaussian), y within the
    band, then s1, s2 - s1, a, c0, c1, c2."""
    cols = [c >> k for c, k in zip(g.columns(), steps.exponents(), strict=True)]
    band = g.y >> BAND_SHIFT
    height = (1 << BAND_SHIFT) >> steps.position  # band height in position steps
    x = cols[0]
    first = np.ones(g.count, bool)
    first[1:] = band[1:] != band[:-1]
    x_gaps = x - np.where(first, 0, np.concatenate([[0], x[:-1]]))
    put_ints(out, np.diff(band, prepend=0))
    put_ints(out, x_gaps)
    put_ints(out, cols[1] - band * height)
    put_ints(out, cols[2])
    put_ints(out, cols[3] - cols[2])  # s2 - s1: <= 0 for canonical sets
    for c in cols[4:]:
        put_ints(out, c)


def _read_gaussians(r: Reader, count: int, steps: Steps) -> Gaussians2D:
    band = np.cumsum(r.ints(count, "position bands"))
    x_gaps = r.ints(count, "x positions")
    y_in_band = r.ints(count, "y positions")
    first = np.ones(count, bool)
    first[1:] = band[1:] != band[:-1]
    total = np.cumsum(x_gaps)
    starts = np.flatnonzero(first)
    before = (total[starts] - x_gaps[starts])[np.cumsum(first) - 1] if count else total
    cols: list[IntArray] = [
        total - before,
        y_in_band + band * ((1 << BAND_SHIFT) >> steps.position),
    ]
    s1 = r.ints(count, "s1")
    cols += [s1, s1 + r.ints(count, "s2")]
    for name in ("a", "c0", "c1", "c2"):
        cols.append(r.ints(count, name))
    return Gaussians2D.from_columns([c << k for c, k in zip(cols, steps.exponents(), strict=True)])


def sort_key(g: Gaussians2D) -> IntArray:
    """The coding order of a base set: by 16-pixel band of y, then x, then y."""
    return np.lexsort((g.y, g.x, g.y >> BAND_SHIFT))


def encode_base(g: Gaussians2D, steps: Steps) -> bytes:
    """The base payload of `g` (sorted by sort_key, on the steps' lattice)."""
    out = bytearray(encode_uleb128(g.count)) + steps.to_bytes()
    _put_background(out, tuple(b >> steps.colour for b in g.background))
    _put_gaussians(out, g, steps)
    out += g.crc().to_bytes(4, "little")
    return bytes(out)


@dataclass(frozen=True)
class Residual:
    """What a P-frame changes (all symbols already divided by the steps)."""

    removed: IntArray  # sorted indices into the previous state
    geometry: IntArray  # sorted indices into the survivors with a geometry residual
    colour: IntArray  # sorted indices into the survivors with a colour residual
    deltas: list[IntArray]  # 8 arrays: x, y, s1, s2, a for `geometry`; c0..c2 for `colour`
    births: Gaussians2D  # new Gaussians (sorted by sort_key, on the steps' lattice)
    background: tuple[int, int, int]  # change of the background (divided by the step)


def no_change() -> Residual:
    """The residual that keeps the previous state as it is."""
    empty = np.zeros(0, np.int64)
    return Residual(empty, empty, empty, [empty] * 8, Gaussians2D.empty(), (0, 0, 0))


def encode_residual(prev_count: int, res: Residual, steps: Steps, state_crc: int) -> bytes:
    out = bytearray(encode_uleb128(prev_count)) + steps.to_bytes()
    _put_background(out, res.background)
    put_index_set(out, res.removed)
    put_index_set(out, res.geometry)
    put_index_set(out, res.colour)
    for d in res.deltas:
        put_ints(out, d)
    out += encode_uleb128(res.births.count)
    _put_gaussians(out, res.births, steps)
    out += state_crc.to_bytes(4, "little")
    return bytes(out)


def apply_residual(prev: Gaussians2D, res: Residual, steps: Steps, bounds: Bounds) -> Gaussians2D:
    """The decoder's rule: remove, add the residuals, append the births, clamp."""
    keep = np.ones(prev.count, bool)
    keep[res.removed] = False
    cols = [c[keep].copy() for c in prev.columns()]
    k = steps.exponents()
    for i in range(8):
        rows = res.geometry if i < 5 else res.colour
        cols[i][rows] += res.deltas[i] << k[i]
    bg = tuple(
        b + (d << steps.colour) for b, d in zip(prev.background, res.background, strict=True)
    )
    survivors = Gaussians2D.from_columns(cols, bg)  # type: ignore[arg-type]
    return bounds.clamp(survivors.concat(res.births))


def check_crc(g: Gaussians2D, crc: int, what: str) -> None:
    if g.crc() != crc:
        raise BitstreamError(
            f"{what}: the decoded Gaussians do not match the encoder's (state checksum); "
            "the stream is damaged or a unit it depends on is missing"
        )


def decode_base(data: bytes, bounds: Bounds, limit: int, pts: int) -> Gaussians2D:
    """The state of a base payload; BitstreamError on anything malformed."""
    what = f"gaussian base {pts}"
    r = Reader(data, what)
    count = r.uleb(limit, "Gaussian count")
    steps = r.steps()
    background = _read_background(r, steps.colour)
    g = _read_gaussians(r, count, steps).with_background(background)
    crc = r.end()
    _check_range(g, bounds, what)
    check_crc(g, crc, what)
    return g


def decode_residual(
    data: bytes, prev: Gaussians2D, bounds: Bounds, limit: int, pts: int
) -> Gaussians2D:
    """The state after a residual payload applied to `prev`."""
    what = f"gaussian residual {pts}"
    r = Reader(data, what)
    count = r.uleb(limit, "previous Gaussian count")
    if count != prev.count:
        raise BitstreamError(
            f"{what} follows a state of {count} Gaussians, the decoder holds {prev.count} "
            "(a unit is missing)"
        )
    steps = r.steps()
    background = _read_background(r, 0)
    removed = r.index_set(count, "removals")
    survivors = count - removed.size
    geometry = r.index_set(survivors, "geometry gates")
    colour = r.index_set(survivors, "colour gates")
    deltas = [r.ints((geometry if i < 5 else colour).size, "residuals") for i in range(8)]
    births_n = r.uleb(limit - survivors, "births")
    births = _read_gaussians(r, births_n, steps)
    crc = r.end()
    for d in deltas:
        if d.size and (d.min() < -_INT32 // 256 or d.max() > _INT32 // 256):
            raise BitstreamError(f"{what}: a residual is out of range")
    _check_range(births, bounds, what)
    res = Residual(removed, geometry, colour, deltas, births, background)
    g = apply_residual(prev, res, steps, bounds)
    check_crc(g, crc, what)
    return g


def _check_range(g: Gaussians2D, bounds: Bounds, what: str) -> None:
    if g.count and not bounds.clamp(g).equal(g):
        raise BitstreamError(f"{what}: a Gaussian's parameters are out of range")

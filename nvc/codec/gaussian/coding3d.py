"""Payloads of the 3D mode's units, through nvc.codec.entropy's exact integer tables.

Sections, index sets and the payload reader are the 2D mode's (coding.py: each section
is the cheapest of a constant, the adaptive categorical model and the discrete Laplace
model).

Base payload (`encode_base`): count (LEB128), steps (5 bytes: Steps3D), then (for a
non-empty set) the 14 columns of the Gaussians in Morton order of their positions, each
in units of its step and preceded by one byte saying how it is coded, whichever is
shortest: 0 the values, 1 their differences along the order, 2 (s1, s2, c1, c2 only) the
difference to s0 or c0 (`REFERENCE`).

QUEEN-style residual payload (`QueenResidualEncoder`): the previous count (LEB128), the
position gates (index set: the Gaussians whose position changes), their x, y, z
residuals, the attribute set (index set: the Gaussians with any other change), their 11
residual columns (scales, rotation, opacity, colour); all in units of the steps. Applying
it: add residual << step, clamp to the ranges.

`residual_coder(pack)` gives the (new_encoder, new_decoder) pair of a residual coder:
"queen" (this module) or "video" (nvc.codec.gaussian.pack, V^3-style, imported lazily).
The interface is in /work/notes/gaussian3d-api.md: a coder is made per group, at its base.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from nvc.bitstream.leb128 import encode_uleb128
from nvc.codec.entropy import ParametricWeightModel
from nvc.codec.gaussian.coding import IntArray, Reader, put_index_set, put_ints
from nvc.codec.gaussian.params3d import PACKS as PACKS  # residual coders, by their header id
from nvc.codec.gaussian.state3d import MAX_GAUSSIANS3D, State3D, Steps3D
from nvc.errors import BitstreamError, CodecError

MORTON_BITS = 10  # bits per axis of the Morton order
MAX_RESIDUAL = 1 << 26  # largest |residual| in a payload, in steps
# base columns that may be coded as the difference to an earlier one: s1, s2 from s0 and
# c1, c2 from c0 (isotropic sizes and greyish colours make these small)
REFERENCE = {4: 3, 5: 3, 12: 11, 13: 11}
WIDE = 4096  # sections of values spanning more symbols use the Laplace model only
_LAPLACE = ParametricWeightModel("laplace")


def morton_order(state: State3D) -> IntArray:
    """Indices of the Gaussians in Morton (Z-curve) order of their positions, on a grid of
    2**MORTON_BITS cells per axis over their bounding box; ties by index."""
    if state.count == 0:
        return np.zeros(0, np.int64)
    p = state.means - state.means.min(axis=0)
    top = max(int(p.max()), 1)
    shift = max(0, top.bit_length() - MORTON_BITS)
    cell = p >> shift
    code = np.zeros(state.count, np.int64)
    for bit in range(MORTON_BITS):
        for axis in range(3):
            code |= ((cell[:, axis] >> bit) & 1) << (3 * bit + axis)
    return np.argsort(code, kind="stable")


def _put(out: bytearray, values: IntArray) -> None:
    """coding.put_ints, but a wide range (> WIDE symbols, where fitting the categorical
    table is slow and its table costly) is coded with the Laplace model only."""
    v = np.asarray(values, np.int64)
    if v.size and int(v.max()) - int(v.min()) + 1 > WIDE:
        params = _LAPLACE.fit(v)
        data = _LAPLACE.compress(v, params)
        out += b"\x02" + params.to_bytes() + encode_uleb128(len(data)) + data
        return
    put_ints(out, v)


def _put_columns(out: bytearray, m: IntArray) -> None:
    for i in range(m.shape[1]):
        _put(out, m[:, i])


def encode_base(state: State3D, steps: Steps3D) -> bytes:
    """The base payload of `state` (in coding order, on the steps' lattice)."""
    m = state.matrix() >> steps.exponents()
    if not np.array_equal(m << steps.exponents(), state.matrix()):
        raise CodecError("gaussian 3D: a base is not on its quantization lattice (a bug)")
    out = bytearray(encode_uleb128(state.count)) + steps.to_bytes()
    if not state.count:
        return bytes(out)
    for i in range(14):
        col = m[:, i]
        options = [(0, col), (1, np.diff(col, prepend=0))]
        if i in REFERENCE:
            options.append((2, col - m[:, REFERENCE[i]]))
        coded = []
        for kind, values in options:
            section = bytearray([kind])
            _put(section, values)
            coded.append(section)
        out += min(coded, key=len)
    return bytes(out)


def decode_base(data: bytes, limit: int, what: str) -> tuple[State3D, Steps3D]:
    """The state and steps of a base payload; BitstreamError on anything malformed."""
    r = Reader(data, what)
    count = r.uleb(limit, "Gaussian count")
    steps, r.pos = Steps3D.read(data, r.pos)
    cols: list[IntArray] = []
    for i in range(14 if count else 0):
        kind = r.take(1, "column coding")[0]
        if kind > 2 or (kind == 2 and i not in REFERENCE):
            raise BitstreamError(f"{what}: unknown column coding {kind}")
        col = r.ints(count, "attributes")
        if kind == 1:
            col = np.cumsum(col)
        elif kind == 2:
            col = col + cols[REFERENCE[i]]
        cols.append(col)
    _end(r)
    m = np.stack(cols, axis=1) if count else np.zeros((0, 14), np.int64)
    if count and np.abs(m).max() > MAX_RESIDUAL:
        raise BitstreamError(f"{what}: a Gaussian's parameters are out of range")
    state = State3D.from_matrix(m << steps.exponents())
    if not state.in_range():
        raise BitstreamError(f"{what}: a Gaussian's parameters are out of range")
    return state, steps


def _end(r: Reader) -> None:
    if r.pos != len(r.data):
        raise BitstreamError(f"{r.what} has {len(r.data) - r.pos} trailing bytes")


class ResidualEncoder(Protocol):
    def encode_residuals(self, prev: State3D, cur: State3D) -> tuple[bytes, State3D]: ...


class ResidualDecoder(Protocol):
    def decode_residuals(self, data: bytes, prev: State3D) -> State3D: ...


class QueenResidualEncoder:
    """Gated, quantized attribute residuals, entropy coded (lossless given the lattice)."""

    def __init__(self, base: State3D, steps: Steps3D) -> None:
        self.steps = steps

    def encode_residuals(self, prev: State3D, cur: State3D) -> tuple[bytes, State3D]:
        if cur.count != prev.count:
            raise CodecError("gaussian 3D: a residual changes the Gaussian count (a bug)")
        k = self.steps.exponents()
        diff = cur.matrix() - prev.matrix()
        d = diff >> k
        if not np.array_equal(d << k, diff):
            raise CodecError("gaussian 3D: a residual is not on its quantization lattice (a bug)")
        out = bytearray(encode_uleb128(prev.count))
        gates = np.flatnonzero(np.any(d[:, 0:3] != 0, axis=1))
        changed = np.flatnonzero(np.any(d[:, 3:] != 0, axis=1))
        put_index_set(out, gates)
        _put_columns(out, d[gates, 0:3])
        put_index_set(out, changed)
        _put_columns(out, d[changed, 3:])
        return bytes(out), cur


class QueenResidualDecoder:
    """Applies QueenResidualEncoder's payloads."""

    def __init__(self, base: State3D, steps: Steps3D) -> None:
        self.steps = steps

    def decode_residuals(self, data: bytes, prev: State3D) -> State3D:
        r = Reader(data, "gaussian 3D residual")
        count = r.uleb(MAX_GAUSSIANS3D, "previous Gaussian count")
        if count != prev.count:
            raise BitstreamError(
                f"gaussian 3D residual follows a state of {count} Gaussians, the decoder "
                f"holds {prev.count} (a unit is missing)"
            )
        d = np.zeros((count, 14), np.int64)
        gates = r.index_set(count, "position gates")
        for i in range(3):
            d[gates, i] = r.ints(gates.size, "position residuals")
        changed = r.index_set(count, "attribute set")
        for i in range(3, 14):
            d[changed, i] = r.ints(changed.size, "attribute residuals")
        _end(r)
        if count and np.abs(d).max() > MAX_RESIDUAL:
            raise BitstreamError("gaussian 3D residual: a residual is out of range")
        return State3D.from_matrix(prev.matrix() + (d << self.steps.exponents())).clamp()


CoderPair = tuple[Callable[[State3D, Steps3D], Any], Callable[[State3D, Steps3D], Any]]


def residual_coder(pack: str) -> CoderPair:
    """(new_encoder, new_decoder) of residual coder `pack` (PACKS)."""
    if pack == "queen":
        return QueenResidualEncoder, QueenResidualDecoder
    if pack == "video":
        try:
            module = importlib.import_module("nvc.codec.gaussian.pack")
        except ImportError as e:
            raise CodecError(f"the video residual coder is not available ({e})") from None
        return module.new_encoder, module.new_decoder
    raise CodecError(f"unknown residual coder {pack!r} (choose from {', '.join(PACKS)})")

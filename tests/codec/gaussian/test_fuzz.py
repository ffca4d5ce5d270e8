"""Hostile and damaged gaussian units: typed errors, never a crash or a wrong picture."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from nvc.bitstream import Unit, UnitType
from nvc.bitstream.leb128 import encode_uleb128
from nvc.codec import integrity, registry
from nvc.codec.gaussian import coding
from nvc.codec.gaussian.config import Steps
from nvc.codec.gaussian.state import Bounds, Gaussians2D
from nvc.errors import BitstreamError


def fresh(coded, upto: int):
    dec = registry.get("gaussian").create_decoder(coded.header)
    for u in coded.units[:upto]:
        dec.decode(u)
    return dec


def outcome(dec, unit, want) -> None:
    """A damaged unit is refused with a BitstreamError, or decodes to the right picture."""
    try:
        got = dec.decode(unit)
    except BitstreamError:
        return
    assert len(got) == 1 and got[0].equal(want)


@pytest.mark.parametrize("index", [0, 1])
def test_every_truncation_is_refused(coded, index):
    unit = coded.units[index]
    for n in range(len(unit.payload)):
        dec = fresh(coded, index)
        with pytest.raises(BitstreamError):
            dec.decode(dataclasses.replace(unit, payload=unit.payload[:n]))


@pytest.mark.parametrize("index", [0, 1])
def test_random_damage_is_refused_or_harmless(coded, index):
    rng = np.random.default_rng(index)
    unit = coded.units[index]
    for _ in range(60):
        data = bytearray(unit.payload)
        for _ in range(int(rng.integers(1, 4))):
            data[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
        outcome(
            fresh(coded, index), dataclasses.replace(unit, payload=bytes(data)), coded.recon[index]
        )


def _sealed(coded, payload: bytes, kind=UnitType.GAUSSIAN_BASE) -> Unit:
    return Unit(kind, integrity.seal(payload, coded.recon[0]), pts=0, rap=True)


def test_counts_above_the_limits_are_refused_before_decoding(coded):
    dec = fresh(coded, 0)
    huge = encode_uleb128(1 << 40) + bytes(4)
    with pytest.raises(BitstreamError, match="Gaussian count"):
        dec.decode(_sealed(coded, huge))
    too_many = encode_uleb128(coded.stream.width * coded.stream.height + 1) + bytes(4)
    with pytest.raises(BitstreamError, match="Gaussian count"):
        dec.decode(_sealed(coded, too_many))
    with pytest.raises(BitstreamError, match="step"):
        dec.decode(_sealed(coded, encode_uleb128(1) + bytes([9, 0, 0, 0])))


def test_out_of_range_parameters_are_refused(coded):
    bounds = Bounds(coded.stream.width, coded.stream.height)
    cols = [np.array([v]) for v in (16, 16, 57, 10, 0, 100, 0, 0)]  # s1 above SCALE_MAX
    g = Gaussians2D.from_columns(cols)
    payload = coding.encode_base(g, Steps(0, 0, 0, 0))
    with pytest.raises(BitstreamError, match="out of range"):
        coding.decode_base(payload, bounds, 100, 0)


def test_a_valid_unit_of_too_much_work_is_refused(coded):
    from nvc.codec.gaussian import tables as T

    n = coded.stream.width * coded.stream.height
    big = [np.full(n, v) for v in (16 * 24, 16 * 16, T.SCALE_MAX, T.SCALE_MAX, 0, 16, 0, 0)]
    g = Gaussians2D.from_columns(big)
    payload = coding.encode_base(g, Steps(0, 0, 0, 0))
    dec = fresh(coded, 0)
    with pytest.raises(BitstreamError, match="pixel evaluations"):
        dec.decode(_sealed(coded, payload))

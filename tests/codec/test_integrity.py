"""Decoded-frame checksums (nvc.codec.integrity) in the fm and inr codecs: damaged payloads
are refused, not passed on as pictures; streams from before the checksums still decode."""

from __future__ import annotations

import dataclasses
import random
import zlib
from fractions import Fraction

import numpy as np
import pytest

from nvc.bitstream import SequenceHeader, Unit, UnitType
from nvc.codec import registry
from nvc.codec.base import StreamInfo
from nvc.codec.integrity import CHECK_SIZE, decode_checked, frame_checksum, seal
from nvc.errors import BitstreamError
from nvc.media import Frame, synthetic_clip

OPTIONS = {
    "fm": {"intra_period": 3, "threads": 1},
    "inr": {"preset": "realtime", "epochs": 2, "group_size": 2, "threads": 1},
}


def test_checksum_is_crc32_of_little_endian_planes() -> None:
    y = np.arange(12, dtype=np.uint16).reshape(3, 4) * 300
    c = np.full((2, 2), 513, dtype=np.uint16)
    frame = Frame((y, c, c), "yuv420p10le", 0, Fraction(1, 25))
    raw = b"".join(p.astype("<u2").tobytes() for p in (y, c, c))
    assert frame_checksum(frame) == zlib.crc32(raw)
    sealed = seal(b"abc", frame)
    assert sealed[:3] == b"abc" and int.from_bytes(sealed[3:], "little") == zlib.crc32(raw)


def test_decode_checked_compares_and_strips() -> None:
    frame = Frame((np.zeros((2, 2, 3), np.uint8),), "rgb24", 7, Fraction(1, 25))
    seen: list[bytes] = []

    def decode(unit: Unit) -> list[Frame]:
        seen.append(unit.payload)
        return [frame]

    unit = Unit(UnitType.FRAME, seal(b"xy", frame), pts=7)
    assert decode_checked(unit, decode, what="t") == [frame] and seen == [b"xy"]
    bad = Unit(UnitType.FRAME, b"xy" + bytes(CHECK_SIZE), pts=7)
    with pytest.raises(BitstreamError, match="t frame 7 .*checksum"):
        decode_checked(bad, decode, what="t")
    with pytest.raises(BitstreamError, match="too short"):
        decode_checked(Unit(UnitType.FRAME, b"x", pts=7), decode, what="t")
    assert decode_checked(Unit(UnitType.FRAME, b"raw"), decode, what="t", checked=False)
    assert seen[-1] == b"raw"


def _stream(codec: str) -> tuple[SequenceHeader, list[Unit], list[Frame]]:
    frames = list(synthetic_clip(32, 24, 4, format="yuv420p", seed=11))
    stream = StreamInfo(32, 24, Fraction(25), "yuv420p", False, len(frames))
    spec = registry.get(codec)
    enc = spec.create_encoder(stream, OPTIONS[codec])
    units = [u for f in frames for u in enc.encode(f)] + enc.encode(None)
    header = stream.to_header(spec.id, enc.codec_params)
    return header, units, _decode(header, units)


def _decode(header: SequenceHeader, units: list[Unit]) -> list[Frame]:
    dec = registry.get(header.codec_id).create_decoder(header)
    return [f for u in units for f in dec.decode(u)] + dec.decode(None)


@pytest.fixture(scope="module", params=["fm", "inr"])
def coded(request: pytest.FixtureRequest) -> tuple[SequenceHeader, list[Unit], list[Frame]]:
    return _stream(request.param)


def _same(a: list[Frame], b: list[Frame]) -> bool:
    return len(a) == len(b) and all(
        x.pts == y.pts
        and all(np.array_equal(p, q) for p, q in zip(x.planes, y.planes, strict=True))
        for x, y in zip(a, b, strict=True)
    )


def test_damaged_payloads_never_decode_to_other_pictures(coded) -> None:
    """Bit flips in any unit's payload (the container CRC re-forged): every one is refused
    or decodes to exactly the undamaged pictures."""
    header, units, reference = coded
    rng = random.Random(5)
    refused = 0
    tries = 0
    for i, unit in enumerate(units):
        if not unit.payload:
            continue
        for _ in range(6):
            damaged = bytearray(unit.payload)
            damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
            changed = list(units)
            changed[i] = dataclasses.replace(unit, payload=bytes(damaged))
            tries += 1
            try:
                out = _decode(header, changed)
            except BitstreamError:
                refused += 1
                continue
            assert _same(out, reference), f"unit {i} ({unit.type_name}) damage went unnoticed"
    assert refused >= tries // 2  # the rest hit bits the decoder never reads


Old = tuple[SequenceHeader, SequenceHeader, list[Unit], list[Frame]]


def _written_as_version_1(codec: str) -> Old:
    """A stream in version 1's layout with the checksums today's encoder appends still on
    (fm: its encoder set to version 1, so no version 4 plane modes; inr: the same layout
    under an older version byte): its version 1 header, a header of a checked version for
    the same layout, the units and the pictures the encoder reconstructed."""
    if codec == "inr":
        header, units, reference = _stream(codec)
        v1 = dataclasses.replace(header, codec_params=b"\x01" + header.codec_params[1:])
        return v1, header, units, reference
    frames = list(synthetic_clip(32, 24, 4, format="yuv420p", seed=11))
    stream = StreamInfo(32, 24, Fraction(25), "yuv420p", False, len(frames))
    enc = registry.get(codec).create_encoder(stream, OPTIONS[codec])
    enc.params = dataclasses.replace(enc.params, version=1)
    units, reference = [], []
    for f in frames:
        units += enc.encode(f)
        reference.append(enc.last_reconstruction)
    v1 = stream.to_header(registry.get(codec).id, enc.codec_params)
    checked = dataclasses.replace(v1, codec_params=b"\x02" + v1.codec_params[1:])
    assert _same(_decode(checked, units), reference)
    return v1, checked, units, reference


@pytest.mark.parametrize("codec", ["fm", "inr"])
def test_streams_written_before_the_checksums_still_decode(codec: str) -> None:
    v1, header, units, reference = _written_as_version_1(codec)
    old = [
        dataclasses.replace(u, payload=u.payload[:-CHECK_SIZE]) if u.type == UnitType.FRAME else u
        for u in units
    ]
    assert _same(_decode(v1, old), reference)
    with pytest.raises(BitstreamError):  # and a new decoder does not take them for checked
        _decode(header, old)

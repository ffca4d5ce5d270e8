"""Units: encoding, decoding, CRC, validation."""

from __future__ import annotations

import zlib

import pytest

from nvc.bitstream import MAX_UNIT_SIZE, Unit, UnitType, decode_unit, encode_unit
from nvc.bitstream.leb128 import Truncated, encode_uleb128
from nvc.bitstream.units import MAX_UNIT_HEADER, decode_unit_head
from nvc.errors import BitstreamError


def test_round_trip() -> None:
    unit = Unit(UnitType.FRAME, b"hello", pts=300, rap=True)
    data = encode_unit(unit)
    assert data[:4] == b"\x03\x01\xac\x02"  # type, flags, pts 300
    assert data[4] == 5  # payload size
    assert int.from_bytes(data[-4:], "little") == zlib.crc32(data[:-4])
    assert decode_unit(data) == unit


def test_known_type_becomes_enum_and_unknown_stays_int() -> None:
    assert Unit(3, b"").type is UnitType.FRAME
    unknown = decode_unit(encode_unit(Unit(4242, b"x")))
    assert unknown.type == 4242
    assert not isinstance(unknown.type, UnitType)
    assert unknown.type_name == "UNKNOWN(4242)"


def test_crc_failure_names_the_unit_offset() -> None:
    data = bytearray(encode_unit(Unit(UnitType.MODEL, b"weights", pts=1)))
    data[6] ^= 0x10
    with pytest.raises(BitstreamError, match="CRC mismatch") as info:
        decode_unit(bytes(data), base=1000)
    assert info.value.offset == 1000


def test_reserved_flag_bits_are_ignored() -> None:
    head = b"\x03\xfe\x00\x01"  # flags 0xfe: reserved bits set, RAP clear
    data = head + b"z"
    data += zlib.crc32(data).to_bytes(4, "little")
    unit = decode_unit(data)
    assert unit == Unit(UnitType.FRAME, b"z", pts=0, rap=False)


def test_type_zero_is_invalid() -> None:
    data = b"\x00\x00\x00\x00"
    data += zlib.crc32(data).to_bytes(4, "little")
    with pytest.raises(BitstreamError, match="type 0"):
        decode_unit(data)


def test_truncated_and_trailing_bytes() -> None:
    data = encode_unit(Unit(UnitType.FRAME, b"abcdef"))
    for cut in range(len(data)):
        with pytest.raises(BitstreamError):
            decode_unit(data[:cut])
    with pytest.raises(BitstreamError, match="unexpected bytes"):
        decode_unit(data + b"\x00")


def test_huge_size_field_is_rejected_before_reading() -> None:
    head = b"\x03\x00\x00" + encode_uleb128(MAX_UNIT_SIZE + 1)
    with pytest.raises(BitstreamError, match="exceeds the maximum"):
        decode_unit_head(head)
    # a lower limit chosen by the reader applies too
    with pytest.raises(BitstreamError, match="exceeds the maximum 10"):
        decode_unit_head(b"\x03\x00\x00\x0b", max_payload=10)


def test_header_is_at_most_max_unit_header() -> None:
    unit = Unit((1 << 32) - 1, b"", pts=(1 << 63) - 1)
    head = decode_unit_head(encode_unit(unit))
    assert head.header_size == 5 + 1 + 9 + 1
    assert MAX_UNIT_HEADER == 20
    with pytest.raises(Truncated):
        decode_unit_head(encode_unit(unit)[:7])


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"type": 0}, BitstreamError),
        ({"type": 1 << 32}, BitstreamError),
        ({"pts": -1}, BitstreamError),
        ({"pts": 1 << 63}, BitstreamError),
        ({"type": "FRAME"}, TypeError),
        ({"payload": "text"}, TypeError),
    ],
)
def test_unit_validation(kwargs: dict[str, object], error: type[Exception]) -> None:
    fields: dict[str, object] = {"type": 3, "payload": b"", "pts": 0}
    fields.update(kwargs)
    with pytest.raises(error):
        Unit(**fields)  # type: ignore[arg-type]


def test_payload_bytes_like_is_copied_to_bytes_and_repr_is_short() -> None:
    unit = Unit(UnitType.FRAME, bytearray(b"x" * 5000), rap=1)  # type: ignore[arg-type]
    assert isinstance(unit.payload, bytes)
    assert unit.rap is True
    assert len(repr(unit)) < 100
    assert "5000 bytes" in repr(unit)

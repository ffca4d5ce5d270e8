"""The file header and the sequence header."""

from __future__ import annotations

from fractions import Fraction

import pytest

from nvc.bitstream import (
    FORMAT_VERSION,
    MAGIC,
    SequenceHeader,
    Unit,
    UnitType,
    decode_file_header,
    encode_file_header,
)
from nvc.bitstream.leb128 import encode_uleb128
from nvc.errors import BitstreamError
from tests.bitstream.helpers import make_header


def test_file_header_is_eight_bytes() -> None:
    data = encode_file_header()
    assert len(data) == 8
    assert data.startswith(MAGIC)
    assert decode_file_header(data) == FORMAT_VERSION == 2
    assert decode_file_header(encode_file_header(1)) == 1  # version 1 files stay readable


def test_file_header_errors() -> None:
    with pytest.raises(BitstreamError, match="magic") as info:
        decode_file_header(b"RIFF\x00\x00\x00\x00")
    assert info.value.offset == 0
    with pytest.raises(BitstreamError, match="version 3") as info:
        decode_file_header(MAGIC + b"\x03\x00")
    assert info.value.offset == 6
    with pytest.raises(BitstreamError, match="shorter"):
        decode_file_header(MAGIC[:4])
    with pytest.raises(BitstreamError, match="shorter"):
        decode_file_header(b"")


@pytest.mark.parametrize(
    "header",
    [
        make_header(),
        make_header(frame_count=None, full_range=True, codec_params=b""),
        make_header(frame_count=0, fps=Fraction(25), pix_fmt="gray"),
        make_header(width=65536, height=1, codec_id=(1 << 32) - 1, frame_count=(1 << 63) - 1),
        make_header(codec_params=bytes(range(256)) * 40),
        make_header(matrix=5, primaries=5, transfer=6, frame_count=None),
        make_header(matrix=0, primaries=1, transfer=13, pix_fmt="rgb24"),
    ],
)
def test_sequence_header_round_trip(header: SequenceHeader) -> None:
    unit = header.to_unit()
    assert unit.type == UnitType.SEQUENCE_HEADER
    assert SequenceHeader.from_unit(unit) == header


def test_fps_is_normalized_and_accepts_ints() -> None:
    assert make_header(fps=60).fps == Fraction(60)
    assert make_header(fps=Fraction(60, 2)).fps == Fraction(30)
    assert make_header(fps="30000/1001").fps == Fraction(30000, 1001)


@pytest.mark.parametrize(
    "changes",
    [
        {"width": 0},
        {"height": 65537},
        {"fps": 0},
        {"fps": Fraction(-25)},
        {"fps": Fraction(1, 1 << 32)},
        {"fps": 29.97},  # float: huge denominator
        {"fps": "fast"},
        {"pix_fmt": ""},
        {"pix_fmt": "yuv 420"},
        {"pix_fmt": "yuv420p\u00e9"},
        {"pix_fmt": "x" * 33},
        {"codec_id": -1},
        {"frame_count": -1},
    ],
)
def test_invalid_parameters_raise_bitstream_error(changes: dict[str, object]) -> None:
    with pytest.raises(BitstreamError):
        make_header(**changes)


def test_wrong_python_types_raise_type_error() -> None:
    with pytest.raises(TypeError):
        make_header(width=64.0)
    with pytest.raises(TypeError):
        make_header(codec_params="text")


def test_from_unit_rejects_other_types() -> None:
    with pytest.raises(BitstreamError, match="SEQUENCE_HEADER"):
        SequenceHeader.from_unit(Unit(UnitType.FRAME, make_header().to_unit().payload))


def test_every_truncation_and_trailing_bytes_raise_with_offset() -> None:
    payload = make_header().to_unit().payload
    for cut in range(len(payload)):
        with pytest.raises(BitstreamError) as info:
            SequenceHeader.from_unit(
                Unit(UnitType.SEQUENCE_HEADER, payload[:cut]), payload_offset=100
            )
        assert info.value.offset is not None and info.value.offset >= 100
    with pytest.raises(BitstreamError, match="unexpected bytes"):
        SequenceHeader.from_unit(Unit(UnitType.SEQUENCE_HEADER, payload + b"\x00"))


def _payload(*fields: int, tail: bytes = b"\x00\x04gray\x00") -> bytes:
    """codec_id, width, height, fps_num, fps_den, then flags etc. from `tail`."""
    return b"".join(encode_uleb128(f) for f in fields) + tail


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (_payload(1, 0, 10, 25, 1), "width 0 is below"),
        (_payload(1, 10, 65537, 25, 1), "height 65537 exceeds"),
        (_payload(1, 10, 10, 0, 1), "numerator 0 is below"),
        (_payload(1, 10, 10, 25, 0), "denominator 0 is below"),
        (_payload(1, 10, 10, 25, 1, tail=b"\x00\x04gr\x00y\x00"), "not printable"),
        (_payload(1, 10, 10, 25, 1, tail=b"\x00\x00\x00"), "below the minimum 1"),
        (
            _payload(1, 10, 10, 25, 1, tail=b"\x00\x21" + b"a" * 33 + b"\x00"),
            "exceeds the maximum 32",
        ),
        (_payload(1, 10, 10, 25, 1, tail=b"\x00\x04gray\x05ab"), "exceeds the 2 bytes left"),
    ],
)
def test_malformed_fields(payload: bytes, message: str) -> None:
    with pytest.raises(BitstreamError, match=message):
        SequenceHeader.from_unit(Unit(UnitType.SEQUENCE_HEADER, payload))


def test_reserved_header_flags_are_ignored() -> None:
    payload = _payload(1, 10, 10, 25, 1, tail=b"\xf8\x04gray\x00")
    header = SequenceHeader.from_unit(Unit(UnitType.SEQUENCE_HEADER, payload))
    assert header.full_range is False and header.frame_count is None
    assert (header.matrix, header.primaries, header.transfer) == (1, 1, 1)


def test_version_1_header_bytes_read_as_bt709_limited() -> None:
    # a sequence header exactly as nvc wrote it before colour metadata (format version 1)
    payload = _payload(3, 64, 48, 25, 1, tail=b"\x02\x05\x07yuv420p\x02ab")
    header = SequenceHeader.from_unit(Unit(UnitType.SEQUENCE_HEADER, payload))
    assert (header.width, header.frame_count, header.pix_fmt, header.codec_params) == (
        64,
        5,
        "yuv420p",
        b"ab",
    )
    assert header.full_range is False
    assert (header.matrix, header.primaries, header.transfer) == (1, 1, 1)
    assert not header.has_colour_description
    assert header.to_unit().payload == payload  # BT.709 headers keep their version 1 bytes


def test_colour_description_is_three_bytes_after_the_codec_params() -> None:
    header = make_header(codec_params=b"xyz", matrix=6, primaries=6, transfer=6, full_range=True)
    payload = header.to_unit().payload
    assert payload[-6:] == b"xyz\x06\x06\x06"
    assert SequenceHeader.from_unit(Unit(UnitType.SEQUENCE_HEADER, payload)) == header
    bt2020 = make_header(matrix=9, primaries=9, transfer=16)
    parsed = SequenceHeader.from_unit(bt2020.to_unit())
    assert (parsed.matrix, parsed.primaries, parsed.transfer) == (9, 9, 16)
    with pytest.raises(BitstreamError, match="truncated"):
        SequenceHeader.from_unit(Unit(UnitType.SEQUENCE_HEADER, payload[:-1]))
    with pytest.raises(BitstreamError, match="outside 0 .. 255"):
        make_header(matrix=256)
    with pytest.raises(TypeError):
        make_header(transfer=1.0)

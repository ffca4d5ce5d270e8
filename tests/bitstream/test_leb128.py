"""LEB128: known encodings, round trips and strict decoding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nvc.bitstream.leb128 import (
    U32_MAX,
    U64_MAX,
    Truncated,
    decode_uleb128,
    encode_uleb128,
)
from nvc.errors import BitstreamError

KNOWN = [
    (0, b"\x00"),
    (1, b"\x01"),
    (127, b"\x7f"),
    (128, b"\x80\x01"),
    (300, b"\xac\x02"),
    (16384, b"\x80\x80\x01"),
    (U32_MAX, b"\xff\xff\xff\xff\x0f"),
    (U64_MAX, b"\xff" * 9 + b"\x01"),
]


@pytest.mark.parametrize(("value", "encoded"), KNOWN)
def test_known_encodings(value: int, encoded: bytes) -> None:
    assert encode_uleb128(value) == encoded
    assert decode_uleb128(encoded, 0) == (value, len(encoded))


@given(st.integers(min_value=0, max_value=U64_MAX), st.binary(max_size=4))
def test_round_trip_with_prefix_and_suffix(value: int, extra: bytes) -> None:
    data = extra + encode_uleb128(value) + extra
    decoded, end = decode_uleb128(data, len(extra))
    assert decoded == value
    assert end == len(data) - len(extra)


def test_encode_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        encode_uleb128(-1)
    with pytest.raises(ValueError):
        encode_uleb128(U64_MAX + 1)


def test_over_long_encoding_is_rejected() -> None:
    with pytest.raises(BitstreamError, match="over-long"):
        decode_uleb128(b"\x80\x00", 0)
    with pytest.raises(BitstreamError, match="over-long"):
        decode_uleb128(b"\x81\x80\x00", 0)


def test_more_than_ten_bytes_is_rejected_without_reading_on() -> None:
    with pytest.raises(BitstreamError, match="longer than 10") as info:
        decode_uleb128(b"\xff" * 1000, 0, base=100)
    assert info.value.offset == 100
    assert not isinstance(info.value, Truncated)


def test_length_is_limited_by_the_field_maximum() -> None:
    with pytest.raises(BitstreamError, match="longer than 5"):
        decode_uleb128(b"\x80\x80\x80\x80\x80\x01", 0, limit=U32_MAX)


def test_value_above_limit_is_rejected_with_offset() -> None:
    with pytest.raises(BitstreamError, match="exceeds the maximum 10") as info:
        decode_uleb128(b"\x00\x0b", 1, limit=10, base=50, what="width")
    assert info.value.offset == 51
    assert "(at byte offset 51)" in str(info.value)


def test_truncation_raises_truncated_at_the_end_offset() -> None:
    with pytest.raises(Truncated) as info:
        decode_uleb128(b"\x80\x80", 0, base=10)
    assert info.value.offset == 12
    with pytest.raises(Truncated):
        decode_uleb128(b"", 0)

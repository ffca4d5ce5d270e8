"""Unsigned LEB128 integers (SPEC.md section 2).

Decoding is strict: the encoding must be canonical (no trailing zero groups), no longer
than the field's maximum value needs (and never longer than 10 bytes), and the value must
not exceed that maximum. Running out of data raises `Truncated`, which an incremental
parser catches to wait for more bytes; every other problem is a plain `BitstreamError`.
"""

from __future__ import annotations

from nvc.errors import BitstreamError

MAX_LEB128_BYTES = 10  # enough for any 64-bit value
U32_MAX = (1 << 32) - 1
U63_MAX = (1 << 63) - 1
U64_MAX = (1 << 64) - 1

Buffer = bytes | bytearray | memoryview


class Truncated(BitstreamError):
    """The data ended inside a field: more bytes are needed (or the input is truncated)."""


def encode_uleb128(value: int) -> bytes:
    """Encode a non-negative integer below 2**64 as canonical unsigned LEB128."""
    if value < 0 or value > U64_MAX:
        raise ValueError(f"LEB128 value {value} is outside 0 .. 2**64 - 1")
    out = bytearray()
    while True:
        group = value & 0x7F
        value >>= 7
        if value:
            out.append(group | 0x80)
        else:
            out.append(group)
            return bytes(out)


def max_encoded_length(limit: int) -> int:
    """The number of bytes the canonical encoding of `limit` takes."""
    return max(1, (limit.bit_length() + 6) // 7)


def decode_uleb128(
    data: Buffer, pos: int, *, limit: int = U64_MAX, base: int = 0, what: str = "integer"
) -> tuple[int, int]:
    """Decode one LEB128 integer from `data` at `pos`; return (value, position after it).

    `limit` is the field's maximum value, `base` the absolute byte offset of `data[0]`
    (used in error messages) and `what` names the field in error messages.
    """
    max_len = min(MAX_LEB128_BYTES, max_encoded_length(limit))
    start = pos
    value = 0
    for i in range(max_len):
        if pos >= len(data):
            raise Truncated(f"data ends inside the {what}", base + pos)
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if byte == 0 and i > 0:
                raise BitstreamError(f"over-long LEB128 encoding of the {what}", base + start)
            if value > limit:
                raise BitstreamError(f"{what} {value} exceeds the maximum {limit}", base + start)
            return value, pos
    raise BitstreamError(f"{what} is longer than {max_len} LEB128 bytes", base + start)

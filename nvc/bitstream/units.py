"""Units: the typed, length-prefixed, checksummed records of a stream (SPEC.md section 3).

type (uleb) | flags (u8) | pts (uleb) | size (uleb) | payload | crc32 (u32le)
"""

from __future__ import annotations

import enum
import zlib
from dataclasses import dataclass

from nvc.bitstream.leb128 import (
    U32_MAX,
    U63_MAX,
    Buffer,
    Truncated,
    decode_uleb128,
    encode_uleb128,
    max_encoded_length,
)
from nvc.errors import BitstreamError

MAX_UNIT_SIZE = 1 << 30  # largest payload a unit may carry (1 GiB)
MAX_TYPE = U32_MAX  # largest unit type value
MAX_PTS = U63_MAX  # largest pts
FLAG_RAP = 0x01  # flags bit 0: random-access point; bits 1-7 are reserved
CRC_SIZE = 4
# type + flags + pts + size, each at its longest
MAX_UNIT_HEADER = (
    max_encoded_length(MAX_TYPE)
    + 1
    + max_encoded_length(MAX_PTS)
    + max_encoded_length(MAX_UNIT_SIZE)
)


class UnitType(enum.IntEnum):
    """The unit types of format version 1. Readers also meet other (unknown) values."""

    SEQUENCE_HEADER = 1  # stream parameters; always the first unit
    MODEL = 2  # network weights (for example the weights of a group of frames)
    FRAME = 3  # one coded frame
    GAUSSIAN_BASE = 4  # a keyframe set of Gaussians
    GAUSSIAN_RESIDUAL = 5  # per-frame Gaussian attribute residuals
    INDEX = 6  # the random-access index (optional, before END)
    END = 7  # end of stream; carries the index offset


_KNOWN_TYPES = frozenset(int(t) for t in UnitType)
# Types the container itself writes; Writer.write() refuses them.
CONTAINER_TYPES = frozenset({UnitType.SEQUENCE_HEADER, UnitType.INDEX, UnitType.END})


@dataclass(frozen=True, repr=False)
class Unit:
    """One unit. `type` is a UnitType member when known, else the plain integer read."""

    type: int  # a UnitType value; unknown ints are allowed when read
    payload: bytes  # the type-specific content
    pts: int = 0  # presentation index in frames (first frame covered)
    rap: bool = False  # random-access point: decoding can start here

    def __post_init__(self) -> None:
        if isinstance(self.type, bool) or not isinstance(self.type, int):
            raise TypeError(f"unit type must be an int, not {type(self.type).__name__}")
        if not 1 <= self.type <= MAX_TYPE:
            raise BitstreamError(f"unit type {self.type} is outside 1 .. {MAX_TYPE}")
        if self.type in _KNOWN_TYPES and not isinstance(self.type, UnitType):
            object.__setattr__(self, "type", UnitType(self.type))
        if isinstance(self.payload, bytearray | memoryview):
            object.__setattr__(self, "payload", bytes(self.payload))
        if not isinstance(self.payload, bytes):
            raise TypeError(f"unit payload must be bytes, not {type(self.payload).__name__}")
        if len(self.payload) > MAX_UNIT_SIZE:
            raise BitstreamError(
                f"unit payload of {len(self.payload)} bytes exceeds the maximum {MAX_UNIT_SIZE}"
            )
        if isinstance(self.pts, bool) or not isinstance(self.pts, int):
            raise TypeError(f"unit pts must be an int, not {type(self.pts).__name__}")
        if not 0 <= self.pts <= MAX_PTS:
            raise BitstreamError(f"unit pts {self.pts} is outside 0 .. {MAX_PTS}")
        object.__setattr__(self, "rap", bool(self.rap))

    @property
    def type_name(self) -> str:
        """The type's name, or 'UNKNOWN(n)'."""
        return self.type.name if isinstance(self.type, UnitType) else f"UNKNOWN({self.type})"

    def __repr__(self) -> str:
        return (
            f"Unit(type={self.type_name}, pts={self.pts}, rap={self.rap}, "
            f"payload=<{len(self.payload)} bytes>)"
        )


@dataclass(frozen=True)
class UnitEntry:
    """A unit together with where it lies in the file."""

    offset: int  # byte offset of the unit's first byte (from the magic)
    size: int  # size of the whole encoded unit: header + payload + crc
    unit: Unit


@dataclass(frozen=True)
class UnitHead:
    """The decoded header of a unit (what precedes its payload)."""

    type: int  # unit type (1 .. 2**32 - 1)
    rap: bool  # flags bit 0
    pts: int  # presentation index
    payload_size: int  # payload bytes that follow the header
    header_size: int  # bytes taken by type, flags, pts and size

    @property
    def total_size(self) -> int:
        """Size of the whole encoded unit."""
        return self.header_size + self.payload_size + CRC_SIZE


def encode_unit(unit: Unit) -> bytes:
    """Encode a unit as it appears in a file or in a reassembled network message."""
    head = b"".join(
        (
            encode_uleb128(unit.type),
            bytes((FLAG_RAP if unit.rap else 0,)),
            encode_uleb128(unit.pts),
            encode_uleb128(len(unit.payload)),
        )
    )
    crc = zlib.crc32(unit.payload, zlib.crc32(head))
    return b"".join((head, unit.payload, crc.to_bytes(CRC_SIZE, "little")))


def decode_unit_head(
    data: Buffer, pos: int = 0, *, base: int = 0, max_payload: int = MAX_UNIT_SIZE
) -> UnitHead:
    """Decode the header of the unit that starts at `data[pos]`.

    `base` is the absolute offset of `data[0]`. Raises `Truncated` when `data` ends inside
    the header, `BitstreamError` when the header is invalid or the payload is too large.
    """
    start = pos
    utype, pos = decode_uleb128(data, pos, limit=MAX_TYPE, base=base, what="unit type")
    if utype == 0:
        raise BitstreamError("unit type 0 is invalid", base + start)
    if pos >= len(data):
        raise Truncated("data ends inside a unit header", base + pos)
    flags = data[pos]
    pos += 1
    pts, pos = decode_uleb128(data, pos, limit=MAX_PTS, base=base, what="unit pts")
    size, pos = decode_uleb128(
        data, pos, limit=min(max_payload, MAX_UNIT_SIZE), base=base, what="unit payload size"
    )
    return UnitHead(utype, bool(flags & FLAG_RAP), pts, size, pos - start)


def decode_unit(data: Buffer, *, base: int = 0, max_payload: int = MAX_UNIT_SIZE) -> Unit:
    """Decode `data`, which must hold exactly one unit, checking its CRC.

    `base` is the absolute offset of `data[0]`, used in error messages.
    """
    head = decode_unit_head(data, 0, base=base, max_payload=max_payload)
    if len(data) < head.total_size:
        raise Truncated(f"unit of {head.total_size} bytes is truncated to {len(data)} bytes", base)
    if len(data) > head.total_size:
        raise BitstreamError(f"{len(data) - head.total_size} unexpected bytes after a unit", base)
    view = memoryview(data)
    body_end = head.header_size + head.payload_size
    stored = int.from_bytes(view[body_end : body_end + CRC_SIZE], "little")
    if zlib.crc32(view[:body_end]) != stored:
        raise BitstreamError(f"CRC mismatch in a unit of type {head.type}", base)
    payload = bytes(view[head.header_size : body_end])
    return Unit(head.type, payload, pts=head.pts, rap=head.rap)

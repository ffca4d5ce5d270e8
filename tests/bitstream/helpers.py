"""Shared helpers for the bitstream tests: sample headers, units, files and sources."""

from __future__ import annotations

import io
import random
from collections.abc import Iterable
from fractions import Fraction

from nvc.bitstream import SequenceHeader, Unit, UnitType, Writer, encode_file_header, encode_unit
from nvc.bitstream.index import encode_end


def make_header(**changes: object) -> SequenceHeader:
    """A small valid sequence header; keyword arguments override fields."""
    fields: dict[str, object] = {
        "codec_id": 3,
        "codec_params": b"\x01\x02params",
        "width": 96,
        "height": 64,
        "fps": Fraction(30000, 1001),
        "pix_fmt": "yuv420p10le",
        "full_range": False,
        "frame_count": 12,
    }
    fields.update(changes)
    return SequenceHeader(**fields)  # type: ignore[arg-type]


def sample_units(count: int = 12, group: int = 4, seed: int = 0) -> list[Unit]:
    """An INR-like stream: a RAP MODEL unit every `group` frames, FRAME units, and one
    unit of an unknown type."""
    rng = random.Random(seed)
    units = []
    for pts in range(count):
        if pts % group == 0:
            units.append(Unit(UnitType.MODEL, rng.randbytes(rng.randrange(20, 200)), pts, True))
        units.append(Unit(UnitType.FRAME, rng.randbytes(rng.randrange(0, 60)), pts, False))
    units.insert(3, Unit(200, b"future", pts=1))
    return units


def write_bytes(
    units: Iterable[Unit], header: SequenceHeader | None = None, *, index: bool = True
) -> bytes:
    """The bytes of a file holding `units`, written by Writer to a BytesIO."""
    buf = io.BytesIO()
    with Writer(buf, header or make_header(), index=index) as writer:
        for unit in units:
            writer.write(unit)
    return buf.getvalue()


def raw_file(
    *parts: bytes | Unit, header: SequenceHeader | None = None, end: int | None = 0
) -> bytes:
    """Assemble a file by hand (bypassing Writer's checks): file header, sequence header,
    the given units or raw bytes, then an END unit with index offset `end` (None: no END)."""
    data = encode_file_header() + encode_unit((header or make_header()).to_unit())
    for part in parts:
        data += encode_unit(part) if isinstance(part, Unit) else part
    if end is not None:
        data += encode_end(end)
    return data


class NonSeekable(io.RawIOBase):
    """A pipe-like binary source: reads in small pieces and cannot seek."""

    def __init__(self, data: bytes, piece: int = 7) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._piece = piece

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._piece, len(self._data) - self._pos)
        buffer[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


def make_message(
    fragment: bytes,
    *,
    seq: int = 0,
    utype: int = 3,
    pts: int = 0,
    rap: bool = False,
    unit_size: int | None = None,
    index: int = 0,
    count: int = 1,
    version: int = 1,
    flags: int | None = None,
) -> bytes:
    """A network message with arbitrary header fields and a correct CRC."""
    import struct
    import zlib

    fields = struct.pack(
        "<BBIQQIII",
        version,
        (1 if rap else 0) if flags is None else flags,
        utype,
        seq,
        pts,
        len(fragment) if unit_size is None else unit_size,
        index,
        count,
    )
    crc = zlib.crc32(fragment, zlib.crc32(fields))
    return fields + crc.to_bytes(4, "little") + fragment

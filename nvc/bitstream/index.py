"""The INDEX and END units (SPEC.md sections 5 and 6) and the choice of a seek point."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from nvc.bitstream.leb128 import U63_MAX, Truncated, decode_uleb128, encode_uleb128
from nvc.bitstream.units import Unit, UnitType, encode_unit
from nvc.errors import BitstreamError

END_UNIT_SIZE = 16  # the END unit always takes exactly 16 bytes
END_PAYLOAD_SIZE = 8  # u64le index offset


@dataclass(frozen=True)
class IndexEntry:
    """A random-access point: its pts and the byte offset of its unit."""

    pts: int  # presentation index of the RAP unit
    offset: int  # byte offset of the RAP unit from the magic


def encode_index(entries: Iterable[IndexEntry]) -> Unit:
    """The INDEX unit listing `entries`, which must be in file order (pts not decreasing,
    offsets increasing)."""
    items = list(entries)
    parts = [encode_uleb128(len(items))]
    pts = offset = 0
    for entry in items:
        if entry.pts < pts or entry.offset <= offset:
            raise ValueError("index entries must have non-decreasing pts and increasing offsets")
        parts += [encode_uleb128(entry.pts - pts), encode_uleb128(entry.offset - offset)]
        pts, offset = entry.pts, entry.offset
    return Unit(UnitType.INDEX, b"".join(parts))


def decode_index(payload: bytes, payload_offset: int = 0) -> list[IndexEntry]:
    """Parse an INDEX payload. `payload_offset` is its absolute offset (for messages)."""
    base = payload_offset
    try:
        count, pos = decode_uleb128(
            payload, 0, limit=len(payload) // 2, base=base, what="index count"
        )
        entries = []
        pts = offset = 0
        for _ in range(count):
            start = pos
            delta, pos = decode_uleb128(payload, pos, limit=U63_MAX, base=base, what="index pts")
            pts += delta
            delta, pos = decode_uleb128(payload, pos, limit=U63_MAX, base=base, what="index offset")
            if delta == 0:
                raise BitstreamError("index offsets do not increase", base + start)
            offset += delta
            if pts > U63_MAX or offset > U63_MAX:
                raise BitstreamError("index entry out of range", base + start)
            entries.append(IndexEntry(pts, offset))
    except Truncated as exc:
        raise BitstreamError("INDEX payload is truncated", exc.offset) from None
    if pos != len(payload):
        raise BitstreamError(f"{len(payload) - pos} unexpected bytes after the index", base + pos)
    return entries


def encode_end(index_offset: int) -> bytes:
    """The 16-byte END unit; `index_offset` is 0 when there is no INDEX unit."""
    data = encode_unit(Unit(UnitType.END, index_offset.to_bytes(END_PAYLOAD_SIZE, "little")))
    if len(data) != END_UNIT_SIZE:  # cannot happen: type, pts and size take one byte each
        raise RuntimeError("END unit has the wrong size")
    return data


def decode_end(unit: Unit, offset: int = 0) -> int:
    """The index offset carried by an END unit found at `offset`."""
    if unit.type != UnitType.END or unit.pts != 0 or len(unit.payload) != END_PAYLOAD_SIZE:
        raise BitstreamError("malformed END unit (it must be exactly 16 bytes with pts 0)", offset)
    index_offset = int.from_bytes(unit.payload, "little")
    if index_offset > U63_MAX:
        raise BitstreamError("END unit carries an impossible index offset", offset)
    return index_offset


def choose_rap(entries: Iterable[IndexEntry], pts: int) -> IndexEntry | None:
    """The RAP to start at for frame `pts`: the greatest pts <= `pts`, and among those
    the earliest in the file. None when every RAP comes after `pts`."""
    best: IndexEntry | None = None
    for entry in entries:
        if entry.pts > pts:
            continue
        if (
            best is None
            or entry.pts > best.pts
            or (entry.pts == best.pts and entry.offset < best.offset)
        ):
            best = entry
    return best

"""Decoded-frame checksums: a FRAME payload that ends with the CRC-32 of its decoded frame.

The container's CRC (SPEC.md 3.1) catches damage to the bytes of a unit; it cannot catch a
payload that was replaced, or damaged and re-checksummed, by whatever re-packed it. A
codec whose payloads carry no checks of their own (inr, fm) therefore appends to every
FRAME payload the CRC-32 of the frame the encoder reconstructed, which is exactly what
the decoder outputs; the decoder recomputes it over its output and refuses a mismatch
with a BitstreamError, so a damaged frame (or a damaged network or reference state that
it was rendered from) is never passed on as good.

The check covers the frame's planes in order, each plane's samples row by row as
little-endian integers of the format's width (1 byte, or 2 for more than 8 bits):
`zlib.crc32` over those bytes, stored as u32le in the last 4 bytes of the payload.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable

import numpy as np

from nvc.bitstream import Unit
from nvc.errors import BitstreamError
from nvc.media import Frame

CHECK_SIZE = 4  # bytes of the checksum at the end of a FRAME payload


def frame_checksum(frame: Frame) -> int:
    """CRC-32 of a frame's planes (see the module docstring)."""
    crc = 0
    for plane in frame.planes:
        data = np.ascontiguousarray(plane)
        if data.dtype.itemsize > 1:
            data = data.astype(data.dtype.newbyteorder("<"), copy=False)
        crc = zlib.crc32(data.reshape(-1).view(np.uint8).data, crc)
    return crc


def seal(payload: bytes, frame: Frame) -> bytes:
    """`payload` followed by the checksum of `frame`, its exact decoded picture."""
    return payload + frame_checksum(frame).to_bytes(CHECK_SIZE, "little")


def decode_checked(
    unit: Unit, decode: Callable[[Unit], list[Frame]], *, what: str, checked: bool = True
) -> list[Frame]:
    """Decode a sealed FRAME unit with `decode` (given the unit without its checksum) and
    verify every frame it yields; `checked=False` (streams written before checksums) just
    decodes. `what` names the codec in errors."""
    if not checked:
        return decode(unit)
    if len(unit.payload) < CHECK_SIZE:
        raise BitstreamError(f"{what} frame {unit.pts} is too short for its checksum")
    expected = int.from_bytes(unit.payload[-CHECK_SIZE:], "little")
    frames = decode(dataclasses.replace(unit, payload=unit.payload[:-CHECK_SIZE]))
    for frame in frames:
        if frame_checksum(frame) != expected:
            raise BitstreamError(
                f"{what} frame {unit.pts} decodes to a picture whose checksum does not match "
                "(the payload or the state it depends on is damaged)"
            )
    return frames

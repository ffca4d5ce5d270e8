"""The .nvc container: units, headers, reader/writer, index, packetizer.

The format is specified in SPEC.md next to this file. This package is at the bottom of
the layering: it imports nothing of nvc but nvc.errors, and never torch.

    with Writer("clip.nvc", header) as w:      # atomic: the file appears on success
        w.write(Unit(UnitType.FRAME, payload, pts=0, rap=True))
    with Reader("clip.nvc") as r:          # also bytes, or a (non-seekable) file object
        print(r.header)
        r.seek(100)                           # nearest random-access point <= frame 100
        for unit in r: ...

Network: Packetizer(16384).packetize(unit) -> messages; Reassembler().push(message) ->
[Unit | Lost, ...] in order.
"""

from __future__ import annotations

from nvc.bitstream.header import (
    FILE_HEADER_SIZE,
    FORMAT_VERSION,
    MAGIC,
    SequenceHeader,
    decode_file_header,
    encode_file_header,
)
from nvc.bitstream.index import END_UNIT_SIZE, IndexEntry
from nvc.bitstream.leb128 import decode_uleb128, encode_uleb128
from nvc.bitstream.packetizer import (
    DEFAULT_MAX_MESSAGE,
    MESSAGE_HEADER_SIZE,
    Lost,
    Packetizer,
    Reassembler,
)
from nvc.bitstream.parser import UnitParser
from nvc.bitstream.reader import Reader
from nvc.bitstream.units import (
    MAX_UNIT_SIZE,
    Unit,
    UnitEntry,
    UnitType,
    decode_unit,
    encode_unit,
)
from nvc.bitstream.writer import Writer

__all__ = [
    "DEFAULT_MAX_MESSAGE",
    "END_UNIT_SIZE",
    "FILE_HEADER_SIZE",
    "FORMAT_VERSION",
    "MAGIC",
    "MAX_UNIT_SIZE",
    "MESSAGE_HEADER_SIZE",
    "IndexEntry",
    "Lost",
    "Packetizer",
    "Reader",
    "Reassembler",
    "SequenceHeader",
    "Unit",
    "UnitEntry",
    "UnitParser",
    "UnitType",
    "Writer",
    "decode_file_header",
    "decode_uleb128",
    "decode_unit",
    "encode_file_header",
    "encode_uleb128",
    "encode_unit",
]

"""Reading .nvc files and streams: sequentially, by seeking, or unit by unit."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO

from nvc.bitstream.header import FILE_HEADER_SIZE, SequenceHeader, decode_file_header
from nvc.bitstream.index import (
    END_UNIT_SIZE,
    IndexEntry,
    choose_rap,
    decode_end,
    decode_index,
)
from nvc.bitstream.leb128 import Truncated
from nvc.bitstream.parser import UnitParser
from nvc.bitstream.units import (
    CONTAINER_TYPES,
    CRC_SIZE,
    MAX_UNIT_HEADER,
    MAX_UNIT_SIZE,
    Unit,
    UnitEntry,
    UnitHead,
    UnitType,
    decode_unit,
    decode_unit_head,
)
from nvc.errors import BitstreamError

_CHUNK = 1 << 16  # bytes read at a time from a non-seekable source

BinaryFile = BinaryIO | io.RawIOBase | io.BufferedIOBase  # anything with read(); seek optional
Source = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryFile


@dataclass
class _Cursor:
    """A position in the stream and what came just before it (for order checks)."""

    pos: int  # offset of the next unit
    prev: UnitEntry | None = None  # the unit just read, if any
    done: bool = False  # the END unit has been read


def _payload_offset(entry: UnitEntry) -> int:
    return entry.offset + entry.size - CRC_SIZE - len(entry.unit.payload)


def _is_seekable(file: BinaryFile) -> bool:
    try:
        if not file.seekable():
            return False
        file.tell()
    except (AttributeError, OSError, ValueError):
        return False
    return True


class Reader:
    """Reads a stream from a path, a bytes object or a binary file object.

    A file object is read from its current position (which counts as offset 0) and may be
    non-seekable: a blocking pipe or socket file, read with read1() where available so that
    a live stream is not held back. Then units can be read only once, in order, `index` is
    None and `seek()` raises. A path or bytes source is owned and closed by `close()`; a
    file object is left open.

    Iterating yields the units after the sequence header in file order, skipping INDEX and
    END units and repeats of the sequence header; units of unknown types are yielded (as
    `Unit`s whose `type` is a plain int) and consumers ignore them. Malformed input raises
    `BitstreamError` naming the byte offset, when it is reached: the units before a damaged
    or truncated part are yielded first. A stream that ends without END is truncated.
    """

    def __init__(self, source: Source, *, max_unit_size: int = MAX_UNIT_SIZE) -> None:
        self._max = max_unit_size
        self._owned = False
        self._closed = False
        if isinstance(source, str | os.PathLike):
            self._file: BinaryFile = open(source, "rb")  # noqa: SIM115
            self._owned = True
        elif isinstance(source, bytes | bytearray | memoryview):
            self._file = io.BytesIO(bytes(source))
            self._owned = True
        else:
            self._file = source
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        self._seekable = _is_seekable(self._file)
        self._length: int | None = None
        if self._seekable:
            self._base = self._file.tell()
            self._length = max(0, self._file.seek(0, io.SEEK_END) - self._base)
            start = self._pread(0, FILE_HEADER_SIZE)
        else:
            self._base = 0
            reader = getattr(self._file, "read1", None)
            self._read_some = reader if callable(reader) else self._file.read
            self._parser = UnitParser(FILE_HEADER_SIZE, max_unit_size=self._max)
            start = self._read_stream_exact(FILE_HEADER_SIZE)
        decode_file_header(start)
        first = self._read_at(FILE_HEADER_SIZE) if self._seekable else self._stream_next()
        if first is None:
            raise BitstreamError("the stream ends before its sequence header", FILE_HEADER_SIZE)
        if first.unit.type != UnitType.SEQUENCE_HEADER:
            raise BitstreamError(
                f"the first unit is {first.unit.type_name}, not a SEQUENCE_HEADER", first.offset
            )
        self.header: SequenceHeader = SequenceHeader.from_unit(
            first.unit, payload_offset=_payload_offset(first)
        )
        self._header_entry = first
        self._header_end = first.offset + first.size
        self._cursor = _Cursor(self._header_end, prev=first)
        self._index_loaded = False
        self._index: list[IndexEntry] | None = None
        self._scanned: list[IndexEntry] | None = None

    # ---- properties -------------------------------------------------------------

    @property
    def seekable(self) -> bool:
        """Whether the source allows seek(), index and a second pass with entries()."""
        return self._seekable

    @property
    def length(self) -> int | None:
        """The stream's length in bytes, when known (seekable sources)."""
        return self._length

    # ---- low-level reading ------------------------------------------------------

    def _pread(self, pos: int, size: int) -> bytes:
        """Up to `size` bytes at offset `pos` of a seekable source."""
        self._file.seek(self._base + pos)
        chunks = []
        while size > 0:
            chunk = self._file.read(size)
            if not chunk:
                break
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def _read_stream_exact(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            chunk = self._file.read(size - len(data))
            if not chunk:
                break
            data += chunk
        return bytes(data)

    def _read_head(self, pos: int) -> UnitHead:
        """Decode the header of the unit at `pos` of a seekable source and check that the
        whole unit lies inside the file."""
        if self._length is None:  # never true: only called for seekable sources
            raise BitstreamError("source is not seekable", pos)
        try:
            head = decode_unit_head(
                self._pread(pos, MAX_UNIT_HEADER), base=pos, max_payload=self._max
            )
        except Truncated:
            raise BitstreamError("the file ends inside a unit header (truncated)", pos) from None
        if pos + head.total_size > self._length:
            raise BitstreamError(
                f"a unit of {head.total_size} bytes extends past the end of the file "
                f"({self._length} bytes; truncated?)",
                pos,
            )
        return head

    def _read_at(self, pos: int) -> UnitEntry | None:
        """The unit at `pos` of a seekable source, or None at the end of the file."""
        if self._length is not None and pos >= self._length:
            return None
        head = self._read_head(pos)
        data = self._pread(pos, head.total_size)
        if len(data) != head.total_size:
            raise BitstreamError("the file got shorter while being read", pos)
        return UnitEntry(pos, head.total_size, decode_unit(data, base=pos, max_payload=self._max))

    def _stream_next(self) -> UnitEntry | None:
        """The next unit of a non-seekable source, or None at its end."""
        while (entry := self._parser.pop()) is None:
            chunk = self._read_some(_CHUNK)
            if not chunk:
                self._parser.finish()
                return None
            self._parser.add(chunk)
        return entry

    # ---- sequential reading with order checks ----------------------------------

    def _advance(self, cursor: _Cursor) -> UnitEntry | None:
        if cursor.done:
            return None
        entry = self._read_at(cursor.pos) if self._seekable else self._stream_next()
        if entry is None:
            raise BitstreamError("the stream ends without an END unit (truncated)", cursor.pos)
        self._check_order(entry, cursor.prev)
        cursor.pos = entry.offset + entry.size
        cursor.prev = entry
        if entry.unit.type == UnitType.END:
            cursor.done = True
            self._check_nothing_after(cursor.pos)
        return entry

    def _check_order(self, entry: UnitEntry, prev: UnitEntry | None) -> None:
        utype = entry.unit.type
        after_index = prev is not None and prev.unit.type == UnitType.INDEX
        if after_index and utype != UnitType.END:
            raise BitstreamError("an INDEX unit is not followed by the END unit", entry.offset)
        if entry.offset == FILE_HEADER_SIZE:
            if utype != UnitType.SEQUENCE_HEADER:
                raise BitstreamError("the first unit is not a SEQUENCE_HEADER", entry.offset)
        elif utype == UnitType.SEQUENCE_HEADER:
            if entry.unit.payload != self._header_entry.unit.payload:
                raise BitstreamError(
                    "a repeated sequence header differs from the first one (parameter "
                    "changes are not supported in format version 1)",
                    entry.offset,
                )
        elif utype == UnitType.INDEX:
            decode_index(entry.unit.payload, _payload_offset(entry))
        elif utype == UnitType.END:
            index_offset = decode_end(entry.unit, entry.offset)
            if index_offset == 0 and after_index:
                raise BitstreamError(
                    "the END unit does not refer to the INDEX unit before it", entry.offset
                )
            if index_offset and not (
                after_index and prev is not None and prev.offset == index_offset
            ):
                raise BitstreamError(
                    f"the END unit's index offset {index_offset} is not the INDEX unit before it",
                    entry.offset,
                )

    def _check_nothing_after(self, pos: int) -> None:
        if self._seekable:
            extra = (self._length or 0) - pos
        else:
            extra = self._parser.buffered or len(self._read_some(_CHUNK) or b"")
        if extra:
            raise BitstreamError("data follows the END unit", pos)

    def __iter__(self) -> Iterator[Unit]:
        """The units from the current position (after the sequence header, or where
        seek() put it) to the end, skipping INDEX, END and repeated sequence headers."""
        while (entry := self._advance(self._cursor)) is not None:
            if entry.unit.type not in CONTAINER_TYPES:
                yield entry.unit

    def entries(self) -> Iterator[UnitEntry]:
        """Every unit with its offset and size, the sequence header, INDEX and END included.

        On a seekable source this is an independent pass from the start of the file; on a
        non-seekable one it yields the sequence header, then continues the single pass that
        iteration also uses.
        """
        if self._seekable:
            cursor = _Cursor(FILE_HEADER_SIZE)
        else:
            yield self._header_entry
            cursor = self._cursor
        while (entry := self._advance(cursor)) is not None:
            yield entry

    # ---- index and seeking ------------------------------------------------------

    @property
    def index(self) -> list[IndexEntry] | None:
        """The random-access points listed by the file's INDEX unit; None when the file has
        no index (or no valid END unit at its end) or the source is not seekable."""
        if not self._index_loaded:
            self._index = self._load_index()
            self._index_loaded = True
        return None if self._index is None else list(self._index)

    def _load_index(self) -> list[IndexEntry] | None:
        length = self._length
        if length is None or length < self._header_end + END_UNIT_SIZE:
            return None
        end_offset = length - END_UNIT_SIZE
        try:
            end = decode_unit(self._pread(end_offset, END_UNIT_SIZE), base=end_offset)
            index_offset = decode_end(end, end_offset)
        except BitstreamError:
            return None  # no valid END at the end: truncated or unfinished; scan instead
        if index_offset == 0:
            return None
        if not self._header_end <= index_offset < end_offset:
            raise BitstreamError(
                f"the END unit's index offset {index_offset} is impossible", end_offset
            )
        entry = self._read_at(index_offset)
        if (
            entry is None
            or entry.unit.type != UnitType.INDEX
            or index_offset + entry.size != end_offset
        ):
            raise BitstreamError(
                f"the END unit's index offset {index_offset} is not an INDEX unit just before it",
                end_offset,
            )
        entries = decode_index(entry.unit.payload, _payload_offset(entry))
        for item in entries:
            if not self._header_end <= item.offset < index_offset:
                raise BitstreamError(
                    f"index entry offset {item.offset} lies outside the units", index_offset
                )
        return entries

    def _scan(self) -> list[IndexEntry]:
        """Find the random-access points by reading unit headers up to END."""
        length = self._length or 0
        pos = self._header_end
        raps: list[IndexEntry] = []
        while True:
            if pos >= length:
                raise BitstreamError(
                    "the file ends without an END unit (truncated); cannot scan it for seeking", pos
                )
            head = self._read_head(pos)
            if head.type == UnitType.END:
                return raps
            if head.rap and head.type not in CONTAINER_TYPES:
                raps.append(IndexEntry(head.pts, pos))
            pos += head.total_size

    def seek(self, pts: int) -> IndexEntry:
        """Make the next iteration start at the random-access point for frame `pts`: the
        one with the greatest pts <= `pts` (the first of them in the file). Uses the index
        when there is one, else scans the file once. Returns the chosen point.

        Raises BitstreamError when the source is not seekable or there is no such point.
        """
        if isinstance(pts, bool) or not isinstance(pts, int):
            raise TypeError("pts must be an int")
        if pts < 0:
            raise ValueError(f"cannot seek to a negative pts ({pts})")
        if not self._seekable:
            raise BitstreamError("cannot seek: the source is not seekable")
        points = self.index
        if points is None:
            if self._scanned is None:
                self._scanned = self._scan()
            points = self._scanned
        choice = choose_rap(points, pts)
        if choice is None:
            raise BitstreamError(f"no random-access point at or before frame {pts}")
        head = self._read_head(choice.offset)
        if not head.rap or head.pts != choice.pts or head.type in CONTAINER_TYPES:
            raise BitstreamError(
                f"the index lists a random-access point at pts {choice.pts} that is not there",
                choice.offset,
            )
        self._cursor = _Cursor(choice.offset)
        return choice

    # ---- lifetime ---------------------------------------------------------------

    def close(self) -> None:
        """Close the source if the Reader opened it. Idempotent."""
        if not self._closed:
            self._closed = True
            if self._owned:
                self._file.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

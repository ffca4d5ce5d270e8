"""An incremental unit parser: feed it bytes as they arrive, get complete units back."""

from __future__ import annotations

from nvc.bitstream.leb128 import Buffer, Truncated
from nvc.bitstream.units import (
    MAX_UNIT_HEADER,
    MAX_UNIT_SIZE,
    UnitEntry,
    decode_unit,
    decode_unit_head,
)
from nvc.errors import BitstreamError


class UnitParser:
    """Splits a byte stream of units (no file header) into `UnitEntry`s.

    `offset` is the absolute byte offset of the first byte fed (8 when the file header was
    read separately); entries carry absolute offsets. The parser holds at most the bytes
    fed and not yet returned; a size field alone never makes it allocate anything.
    Once it meets malformed data it stays failed: every later call raises the same error.
    """

    def __init__(self, offset: int = 0, *, max_unit_size: int = MAX_UNIT_SIZE) -> None:
        self._buf = bytearray()
        self._start = 0  # bytes of _buf already returned
        self._offset = offset  # absolute offset of _buf[_start]
        self._max = max_unit_size
        self._error: BitstreamError | None = None

    @property
    def offset(self) -> int:
        """Absolute offset of the next unit (the first byte not yet returned)."""
        return self._offset

    @property
    def buffered(self) -> int:
        """Bytes fed but not yet returned as units."""
        return len(self._buf) - self._start

    def add(self, data: Buffer) -> None:
        """Append bytes without parsing them."""
        if self._start and self._start * 2 >= len(self._buf):
            del self._buf[: self._start]
            self._start = 0
        self._buf += data

    def pop(self) -> UnitEntry | None:
        """The next complete unit, or None if more bytes are needed.

        Raises `BitstreamError` if the buffered bytes are not a valid unit.
        """
        if self._error is not None:
            raise self._error
        try:
            return self._pop()
        except BitstreamError as exc:
            self._error = exc
            raise

    def _pop(self) -> UnitEntry | None:
        available = self.buffered
        if available == 0:
            return None
        head_bytes = bytes(self._buf[self._start : self._start + MAX_UNIT_HEADER])
        try:
            head = decode_unit_head(head_bytes, base=self._offset, max_payload=self._max)
        except Truncated:
            if available >= MAX_UNIT_HEADER:  # cannot happen: a header fits in that
                raise
            return None
        size = head.total_size
        if available < size:
            return None
        data = bytes(self._buf[self._start : self._start + size])
        unit = decode_unit(data, base=self._offset, max_payload=self._max)
        entry = UnitEntry(self._offset, size, unit)
        self._start += size
        self._offset += size
        if self._start == len(self._buf):
            self._buf.clear()
            self._start = 0
        return entry

    def feed(self, data: Buffer) -> list[UnitEntry]:
        """Append bytes and return every unit they complete.

        If malformed bytes follow complete units, the complete units are returned and the
        error is raised by the next call.
        """
        self.add(data)
        entries: list[UnitEntry] = []
        try:
            while (entry := self.pop()) is not None:
                entries.append(entry)
        except BitstreamError:
            if not entries:
                raise
        return entries

    def finish(self) -> None:
        """Declare the end of the stream: raises if it ends inside a unit (or had failed)."""
        if self._error is not None:
            raise self._error
        if self.buffered:
            self._error = BitstreamError(
                f"stream ends inside a unit ({self.buffered} bytes left over; truncated)",
                self._offset,
            )
            raise self._error

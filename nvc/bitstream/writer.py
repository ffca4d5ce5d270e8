"""Writing .nvc files and streams."""

from __future__ import annotations

import contextlib
import os
import weakref
from types import TracebackType
from typing import BinaryIO

from nvc.bitstream.header import SequenceHeader, encode_file_header
from nvc.bitstream.index import IndexEntry, encode_end, encode_index
from nvc.bitstream.units import CONTAINER_TYPES, Unit, encode_unit
from nvc.fileio import OutputTarget


def _discard(file: BinaryIO, output: OutputTarget) -> None:
    """Close and discard an unfinished output (also run if a Writer is forgotten)."""
    with contextlib.suppress(OSError):
        file.close()
    output.discard()


class Writer:
    """Writes a stream: file header, sequence header, the units given, then INDEX and END.

    `target` is a path or a binary file object. Given a path, the output follows
    nvc.fileio's rule: a regular file (or a new one) is written to a temporary file in
    the same directory and renamed over `path` only when `close()` succeeds; `abort()`,
    or an exception inside `with`, deletes it and leaves `path` untouched. A symlink is
    followed (its target is replaced, the link kept); a character device (/dev/null) or
    FIFO is written through, and `-` is standard output. A path that cannot be written
    (a directory, a missing directory) is an NvcError. Given a file object (a pipe, a
    socket file), or when streaming to a device, FIFO or stdout, units are written and
    flushed as they come, there is no atomicity, and a given object is not closed.

    Misuse raises ValueError: writing after close, writing a SEQUENCE_HEADER, INDEX or END
    unit (the writer writes those itself), or a RAP unit whose pts is below the previous
    RAP's. With `index=False` no INDEX unit is written (END then carries offset 0).
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | BinaryIO,
        header: SequenceHeader,
        *,
        index: bool = True,
    ) -> None:
        if not isinstance(header, SequenceHeader):
            raise TypeError("header must be a SequenceHeader")
        self.header = header
        self._index_enabled = index
        self._index: list[IndexEntry] = []
        self._last_rap_pts: int | None = None  # pts of the previous RAP unit
        self._bytes_written = 0
        self._closed = False
        self._output: OutputTarget | None = None
        self._finalizer: weakref.finalize | None = None
        if isinstance(target, str | os.PathLike):
            self._output = OutputTarget(target, allow_stdout=True)
            self._file = self._output.open()
            self._finalizer = weakref.finalize(self, _discard, self._file, self._output)
        else:
            self._file = target
        try:
            self._put(encode_file_header())
            self._put(encode_unit(header.to_unit()))
            self._flush_stream()
        except BaseException:
            self.abort()
            raise

    @property
    def bytes_written(self) -> int:
        """Bytes written so far, file header included."""
        return self._bytes_written

    @property
    def closed(self) -> bool:
        """True after close() or abort()."""
        return self._closed

    def _put(self, data: bytes) -> None:
        view = memoryview(data)
        while view:  # a raw file object may take only part of the data
            written = self._file.write(view)
            if written is None or written >= len(view):  # None: a file-like that wrote it all
                break
            if written <= 0:
                raise OSError("the output accepted no data")
            view = view[written:]
        self._bytes_written += len(data)

    def _flush_stream(self) -> None:
        if self._output is None or self._output.streaming:
            self._file.flush()

    def write(self, unit: Unit) -> None:
        """Append one unit."""
        if self._closed:
            raise ValueError("write to a closed nvc Writer")
        if unit.type in CONTAINER_TYPES:
            raise ValueError(f"the Writer writes {unit.type_name} units itself")
        if unit.rap:
            if self._last_rap_pts is not None and unit.pts < self._last_rap_pts:
                raise ValueError(
                    f"random-access point at pts {unit.pts} comes after one at pts "
                    f"{self._last_rap_pts}; RAP pts must not decrease"
                )
            self._index.append(IndexEntry(unit.pts, self._bytes_written))
            self._last_rap_pts = unit.pts
        data = encode_unit(unit)
        try:
            self._put(data)
            self._flush_stream()
        except BaseException:
            self.abort()
            raise

    def close(self) -> None:
        """Write INDEX and END, and (for a path) move the file into place. Idempotent."""
        if self._closed:
            return
        try:
            index_offset = 0
            if self._index_enabled:
                index_offset = self._bytes_written
                self._put(encode_unit(encode_index(self._index)))
            self._put(encode_end(index_offset))
            self._file.flush()
            if self._output is not None:
                if not self._output.streaming:
                    os.fsync(self._file.fileno())
                self._file.close()
                self._output.commit()
                if self._finalizer is not None:
                    self._finalizer.detach()
        except BaseException:
            self.abort()
            raise
        self._closed = True

    def abort(self) -> None:
        """Stop writing. For a path, delete the temporary file: nothing appears at the
        path. For a file object or a stream, nothing more is written (the stream lacks
        END, so readers see it as truncated). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._finalizer is not None:
            self._finalizer()  # closes and deletes the temporary file, once

    def __enter__(self) -> Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

"""Writing .nvc files and streams."""

from __future__ import annotations

import contextlib
import os
import secrets
import weakref
from types import TracebackType
from typing import BinaryIO

from nvc.bitstream.header import SequenceHeader, encode_file_header
from nvc.bitstream.index import IndexEntry, encode_end, encode_index
from nvc.bitstream.units import CONTAINER_TYPES, Unit, encode_unit


def _discard(file: BinaryIO, temp_path: str) -> None:
    """Close and delete an unfinished temporary file (also run if a Writer is forgotten)."""
    with contextlib.suppress(OSError):
        file.close()
    with contextlib.suppress(OSError):
        os.unlink(temp_path)


def _create_temp(path: str) -> tuple[BinaryIO, str]:
    """Create an exclusive temporary file next to `path` (same directory, so that
    os.replace is atomic); its permissions follow the umask like any new file."""
    directory, name = os.path.split(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temp_path = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(temp_path, flags, 0o666)
        except FileExistsError:
            continue
        return os.fdopen(fd, "wb"), temp_path
    raise FileExistsError(f"cannot create a temporary file next to {path}")


class Writer:
    """Writes a stream: file header, sequence header, the units given, then INDEX and END.

    `target` is a path or a binary file object. Given a path, the file is written to a
    temporary file in the same directory and renamed over `path` only when `close()`
    succeeds; `abort()`, or an exception inside `with`, deletes it and leaves `path`
    untouched. Given a file object (a pipe, a socket file), units are written and flushed
    as they come, there is no atomicity, and the object is not closed.

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
        self._path: str | None = None
        self._temp_path: str | None = None
        self._finalizer: weakref.finalize | None = None
        if isinstance(target, str | os.PathLike):
            self._path = os.fspath(target)
            self._file, self._temp_path = _create_temp(self._path)
            self._finalizer = weakref.finalize(self, _discard, self._file, self._temp_path)
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
        if self._path is None:
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
            if self._path is not None and self._temp_path is not None:
                os.fsync(self._file.fileno())
                self._file.close()
                os.replace(self._temp_path, self._path)
                if self._finalizer is not None:
                    self._finalizer.detach()
        except BaseException:
            self.abort()
            raise
        self._closed = True

    def abort(self) -> None:
        """Stop writing. For a path, delete the temporary file: nothing appears at the
        path. For a file object, nothing more is written (the stream lacks END, so readers
        see it as truncated). Idempotent."""
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

"""What every reader and writer shares: VideoReader, VideoWriter, and their checks.

A VideoReader is an iterator of Frames that behaves like a file: iterating continues
from the current position (frame 0 after opening) and a second loop over an exhausted
reader yields nothing; `seek_frame(i)` moves the position, so `seek_frame(0)` rewinds.
Frames get pts = frame index and time_base = 1 / fps.

A VideoWriter writes to a temporary file (or directory) beside the destination and
renames it onto the destination only when `close()` succeeds, so a failed or aborted
write leaves neither a partial output nor a temporary behind.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import ClassVar

import numpy as np

from nvc.errors import MediaError
from nvc.media.color import convert
from nvc.media.formats import pixel_format
from nvc.media.frame import Frame

MAX_DIMENSION = 16384  # largest width or height nvc accepts


def check_size(width: int, height: int) -> None:
    """MediaError unless 1 <= width, height <= MAX_DIMENSION."""
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, int | np.integer) or not 0 < value <= MAX_DIMENSION:
            raise MediaError(f"{name} {value!r} is out of range (1..{MAX_DIMENSION})")


def as_fps(value: Fraction | float | int | str) -> Fraction:
    """A positive frame rate as a Fraction; 29.97, 59.94, 23.976 become 30000/1001 etc."""
    exact = isinstance(value, Fraction | int)
    try:
        fps = Fraction(value.replace(":", "/")) if isinstance(value, str) else Fraction(value)
    except (ValueError, ZeroDivisionError, TypeError, OverflowError):
        raise MediaError(f"bad frame rate {value!r}") from None
    if fps <= 0 or fps > 10000:
        raise MediaError(f"frame rate {value!r} is out of range (0..10000]")
    if fps.denominator != 1 and not exact:
        ntsc = fps * Fraction(1001, 1000)
        if abs(ntsc - round(ntsc)) < Fraction(1, 1000):
            return Fraction(round(ntsc) * 1000, 1001)
        fps = fps.limit_denominator(1001)
    return fps


class VideoReader:
    """Lazy frames of a video; see the module docstring for the position semantics."""

    path: Path  # the file or directory read
    width: int  # frame width in pixels
    height: int  # frame height in pixels
    fps: Fraction  # frames per second; time_base of the frames is 1 / fps
    format: str  # pixel format of the frames returned
    full_range: bool  # yuv: full-range levels
    frame_count: int | None  # number of frames when known without decoding them all

    def __init__(
        self,
        path: Path,
        *,
        width: int,
        height: int,
        fps: Fraction,
        format: str,
        full_range: bool,
        frame_count: int | None,
    ) -> None:
        check_size(width, height)
        self.path = path
        self.width = width
        self.height = height
        self.fps = fps
        self.format = format
        self.full_range = full_range
        self.frame_count = frame_count
        self._source_format = format
        self._source_full_range = full_range
        self._index = 0
        self._closed = False

    # -- what subclasses provide -------------------------------------------------------
    def _read_planes(self) -> tuple[np.ndarray, ...] | None:
        """The planes of the next frame in the source format, or None at the end."""
        raise NotImplementedError

    def _seek(self, index: int) -> None:
        """Position the source so that _read_planes returns frame `index` next."""
        raise MediaError(f"{type(self).__name__} cannot seek")

    def _close(self) -> None:
        """Release the source."""

    # -- the public interface ------------------------------------------------------------
    def set_output(self, *, format: str | None = None, fps: Fraction | None = None) -> None:
        """Convert the frames to `format` and/or stamp them with `fps` instead of the file's."""
        if format is not None:
            yuv_to_yuv = (
                pixel_format(format).family == "yuv"
                and pixel_format(self._source_format).family == "yuv"
            )
            self.format = format
            self.full_range = yuv_to_yuv and self._source_full_range
        if fps is not None:
            self.fps = fps

    def read(self) -> Frame | None:
        """The next frame, or None at the end of the video."""
        if self._closed:
            raise MediaError(f"{self.path} is closed")
        planes = self._read_planes()
        if planes is None:
            return None
        frame = Frame(
            planes,
            self._source_format,
            pts=self._index,
            time_base=1 / self.fps,
            full_range=self._source_full_range,
        )
        self._index += 1
        if self.format != self._source_format or self.full_range != self._source_full_range:
            frame = convert(frame, self.format, full_range=self.full_range)
        return frame

    def seek_frame(self, index: int) -> None:
        """Make frame `index` (0-based) the next one read."""
        if self._closed:
            raise MediaError(f"{self.path} is closed")
        if index < 0 or (self.frame_count is not None and index > self.frame_count):
            raise MediaError(f"frame {index} is out of range (video has {self.frame_count})")
        self._seek(index)
        self._index = index

    @property
    def position(self) -> int:
        """Index of the frame that the next read returns."""
        return self._index

    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        frame = self.read()
        if frame is None:
            raise StopIteration
        return frame

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {str(self.path)!r} {self.width}x{self.height} "
            f"{self.format} {self.fps} fps frames={self.frame_count}>"
        )


def read_exactly(f: io.BufferedIOBase, nbytes: int) -> np.ndarray | None:
    """Read exactly nbytes from binary file `f` into a fresh uint8 array.

    None at a clean end of file; MediaError when the file ends inside the block.
    """
    buf = np.empty(nbytes, dtype=np.uint8)
    view = buf.data
    got = 0
    while got < nbytes:
        n = f.readinto(view[got:])
        if not n:
            break
        got += n
    if got == 0:
        return None
    if got < nbytes:
        raise MediaError(f"truncated frame: got {got} of {nbytes} bytes")
    return buf


def split_planes(buf: np.ndarray, format: str, width: int, height: int) -> tuple[np.ndarray, ...]:
    """Views of a raw planar frame buffer (uint8) as the planes of `format`."""
    fmt = pixel_format(format)
    planes = []
    offset = 0
    for shape in fmt.plane_shapes(width, height):
        n = int(np.prod(shape)) * fmt.dtype.itemsize
        planes.append(buf[offset : offset + n].view(fmt.dtype).reshape(shape))
        offset += n
    return tuple(planes)


def plane_bytes(plane: np.ndarray, dtype: np.dtype) -> memoryview:
    """A C-contiguous byte view of a plane in `dtype` (copying only when needed)."""
    return np.ascontiguousarray(plane, dtype=dtype).data.cast("B")


class VideoWriter:
    """Writes frames atomically to `path`; see the module docstring.

    `write()` converts a frame whose pixel format or range differs from the writer's
    (with nvc.media.convert); a frame of another size is a MediaError. Closing a writer
    that received no frame is a MediaError and leaves nothing behind.
    """

    kind: ClassVar[str] = "file"  # "file" or "directory": what the temporary is
    formats: ClassVar[tuple[str, ...]] = ()  # pixel formats this writer stores

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        width: int,
        height: int,
        fps: Fraction | float | int,
        format: str,
        full_range: bool = False,
    ) -> None:
        check_size(width, height)
        self.path = Path(path)
        self.width = width
        self.height = height
        self.fps = as_fps(fps)
        self.format = self._storage_format(format)
        self.full_range = bool(full_range) and pixel_format(self.format).family == "yuv"
        self.frames_written = 0
        self._closed = False
        parent = self.path.parent
        if not parent.is_dir():
            raise MediaError(f"cannot write {self.path}: directory {parent} does not exist")
        if self.kind == "file" and self.path.is_dir():
            raise MediaError(f"cannot write {self.path}: it is a directory")
        if self.kind == "directory" and self.path.exists() and not self.path.is_dir():
            raise MediaError(f"cannot write frames to {self.path}: it is a file")
        self._tmp = self._make_temp()
        try:
            self._open()
        except BaseException:
            self._remove_temp()
            self._closed = True
            raise

    # -- what subclasses provide -------------------------------------------------------
    def _storage_format(self, format: str) -> str:
        """The pixel format stored for a requested `format` (MediaError if impossible)."""
        pixel_format(format)
        if format not in self.formats:
            raise MediaError(f"{self.path.suffix or 'this output'} cannot hold {format} frames")
        return format

    def _open(self) -> None:
        """Start writing into self._tmp."""

    def _write(self, frame: Frame) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        """Flush and close self._tmp (it is renamed afterwards)."""

    def _discard(self) -> None:
        """Close self._tmp without finishing it (it is deleted afterwards)."""

    # -- the public interface ------------------------------------------------------------
    def write(self, frame: Frame) -> None:
        """Append one frame (converted to the writer's format when it differs)."""
        if self._closed:
            raise MediaError(f"writer for {self.path} is closed")
        if (frame.width, frame.height) != (self.width, self.height):
            raise MediaError(
                f"frame is {frame.width}x{frame.height} but {self.path} is "
                f"{self.width}x{self.height}"
            )
        if frame.format != self.format or frame.full_range != self.full_range:
            frame = convert(frame, self.format, full_range=self.full_range)
        self._write(frame)
        self.frames_written += 1

    def close(self) -> None:
        """Finish the output and move it onto the destination."""
        if self._closed:
            return
        if self.frames_written == 0:
            self.abort()
            raise MediaError(f"no frames were written to {self.path}; nothing saved")
        try:
            self._finish()
            self._commit()
        except BaseException:
            self.abort()
            raise
        self._closed = True

    def abort(self) -> None:
        """Drop everything written so far; the destination is left untouched."""
        if self._closed:
            return
        self._closed = True
        try:
            self._discard()
        finally:
            self._remove_temp()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> VideoWriter:
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

    def __del__(self) -> None:
        # A writer dropped without close() must not leave its temporary behind.
        try:
            if not getattr(self, "_closed", True):
                self.abort()
        except Exception:  # noqa: S110 - nothing sensible to do during garbage collection
            pass

    # -- temporaries -------------------------------------------------------------------
    def _make_temp(self) -> Path:
        name = f".{self.path.name}.{secrets.token_hex(6)}.tmp"
        tmp = self.path.parent / name
        try:
            if self.kind == "directory":
                tmp.mkdir()
            else:
                tmp.open("xb").close()
        except OSError as e:
            raise MediaError(f"cannot write {self.path}: {e.strerror or e}") from None
        return tmp

    def _remove_temp(self) -> None:
        tmp = self._tmp
        try:
            if self.kind == "directory":
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
        except OSError:
            pass

    def _commit(self) -> None:
        try:
            os.replace(self._tmp, self.path)
        except OSError as e:
            raise MediaError(f"cannot write {self.path}: {e.strerror or e}") from None

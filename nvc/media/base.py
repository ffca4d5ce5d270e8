"""What every reader and writer shares: VideoReader, VideoWriter, and their checks.

A VideoReader is an iterator of Frames that behaves like a file: iterating continues
from the current position (frame 0 after opening) and a second loop over an exhausted
reader yields nothing; `seek_frame(i)` moves the position, so `seek_frame(0)` rewinds.
Frames get pts = frame index and time_base = 1 / fps.

A VideoWriter follows nvc.fileio's rule: it writes to a temporary file (or directory)
beside the destination and renames it onto the destination only when `close()`
succeeds, so a failed or aborted write leaves neither a partial output nor a temporary
behind; a symlink is followed (its target is replaced, the link kept), a character
device or FIFO is written through (y4m and raw yuv only; they also write `-`, stdout).
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, ClassVar

import numpy as np

from nvc.errors import MediaError
from nvc.fileio import Kind, OutputTarget
from nvc.media.color import convert
from nvc.media.colorspace import BT709, ColorSpace
from nvc.media.formats import pixel_format
from nvc.media.frame import Frame

MAX_DIMENSION = 16384  # largest width or height nvc accepts
MAX_PIXELS = 8192 * 8192  # largest frame nvc accepts (8K UHD is 7680 x 4320), in pixels
MAX_RATE_TERM = 2**31 - 1  # largest numerator or denominator of a frame rate (int32)


def check_size(width: int, height: int) -> None:
    """MediaError unless 1 <= width, height <= MAX_DIMENSION and the frame has at most
    MAX_PIXELS pixels: checked before any frame buffer is allocated."""
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, int | np.integer) or not 0 < value <= MAX_DIMENSION:
            raise MediaError(f"{name} {value!r} is out of range (1..{MAX_DIMENSION})")
    if int(width) * int(height) > MAX_PIXELS:
        raise MediaError(
            f"frame size {width}x{height} is too large: at most {MAX_PIXELS} pixels per frame"
        )


def as_fps(value: Fraction | float | int | str) -> Fraction:
    """A positive frame rate as a Fraction; 29.97, 59.94, 23.976 become 30000/1001 etc.

    The rate must lie in (0, 10000] and, as a reduced fraction, have a numerator and
    denominator that fit a signed 32-bit integer (what FFmpeg's rationals hold)."""
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
    if fps.numerator > MAX_RATE_TERM or fps.denominator > MAX_RATE_TERM:
        raise MediaError(
            f"frame rate {fps.numerator}/{fps.denominator} has a term above {MAX_RATE_TERM}"
        )
    return fps


def check_samples(planes: tuple[np.ndarray, ...], format: str, where: str) -> None:
    """MediaError when a plane of a 10-bit format holds a sample above 1023 (a file of
    16-bit words that are not 10-bit samples): such data would not round-trip."""
    fmt = pixel_format(format)
    if fmt.dtype.itemsize == 1 or fmt.bit_depth >= 16:
        return
    for plane in planes:
        top = int(plane.max())
        if top > fmt.max_value:
            raise MediaError(
                f"{where}: sample value {top} does not fit {fmt.bit_depth} bits ({format}); "
                f"the file is not {format}"
            )


class VideoReader:
    """Lazy frames of a video; see the module docstring for the position semantics."""

    path: Path  # the file or directory read
    width: int  # frame width in pixels
    height: int  # frame height in pixels
    fps: Fraction  # frames per second; time_base of the frames is 1 / fps
    format: str  # pixel format of the frames returned
    full_range: bool  # yuv: full-range levels
    colorspace: ColorSpace = BT709  # colour metadata of the frames (subclasses set it)
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
            colorspace=self.colorspace,
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
    """Writes frames to `path` by the rule of nvc.fileio; see the module docstring.

    `write()` converts a frame whose pixel format or range differs from the writer's
    (with nvc.media.convert); a frame of another size is a MediaError. Closing a writer
    that received no frame is a MediaError and leaves nothing behind (a device or pipe
    written through keeps what it was sent).
    """

    kind: ClassVar[Kind] = "file"  # "file" or "directory": what the output is
    formats: ClassVar[tuple[str, ...]] = ()  # pixel formats this writer stores
    streams: ClassVar[bool] = False  # True: can write through a device or FIFO as it goes
    to_stdout: ClassVar[bool] = False  # True: "-" means standard output

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        width: int,
        height: int,
        fps: Fraction | float | int,
        format: str,
        full_range: bool = False,
        colorspace: ColorSpace = BT709,  # tags written where the output can hold them
    ) -> None:
        check_size(width, height)
        self.colorspace = colorspace
        self.path = Path(path)
        self.width = width
        self.height = height
        self.fps = as_fps(fps)
        self.format = self._storage_format(format)
        self.full_range = bool(full_range) and pixel_format(self.format).family == "yuv"
        self.frames_written = 0
        self._closed = False
        self._output = OutputTarget(
            path, kind=self.kind, allow_stdout=self.to_stdout, error=MediaError
        )
        if self._output.streaming and not self.streams:
            self._output.discard()
            self._closed = True
            raise MediaError(
                f"cannot write {self.path}: it is a device or pipe, and this output "
                "needs a regular file; write .y4m or .yuv to stream"
            )
        self._target = self._output.write_path  # where the bytes go now
        try:
            self._open()
        except BaseException:
            self._output.discard()
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
        """Start writing into self._target (self._output.open() gives a binary file)."""

    def _write(self, frame: Frame) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        """Flush and close the output (it is committed afterwards)."""

    def _discard(self) -> None:
        """Close the output without finishing it (it is discarded afterwards)."""

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
        try:
            self._write(frame)
        except OSError as e:  # a full disk, a closed pipe
            raise MediaError(f"cannot write {self._where}: {e.strerror or e}") from None
        self.frames_written += 1

    def close(self) -> None:
        """Finish the output and move it onto the destination."""
        if self._closed:
            return
        if self.frames_written == 0:
            self.abort()
            raise MediaError(f"no frames were written to {self.path}; nothing saved")
        try:
            try:
                self._finish()
            except OSError as e:
                raise MediaError(f"cannot write {self._where}: {e.strerror or e}") from None
            self._output.commit()
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
            self._output.discard()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def _where(self) -> str:
        """The output in messages: its path, or "standard output" for `-`."""
        return "standard output" if self._output.stdout else str(self.path)

    @property
    def streaming(self) -> bool:
        """True when frames go straight into a device, a pipe or stdout (no temporary)."""
        return self._output.streaming

    @property
    def pipe(self) -> bool:
        """True when the output cannot seek (a FIFO, or stdout on a pipe)."""
        return self._output.pipe

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


class BinaryFileWriter(VideoWriter):
    """A writer whose output is one binary file written in order (y4m, raw yuv): it can
    stream into a pipe, a device or stdout."""

    streams = True
    to_stdout = True

    def _open(self) -> None:
        self._file: BinaryIO = self._output.open()
        self._dtype = pixel_format(self.format).dtype
        try:
            self._start()
        except BaseException:
            self._file.close()
            raise

    def _start(self) -> None:
        """Write what comes before the first frame (a header)."""

    def _finish(self) -> None:
        self._file.close()

    def _discard(self) -> None:
        with contextlib.suppress(OSError):  # a broken pipe cannot be flushed
            self._file.close()

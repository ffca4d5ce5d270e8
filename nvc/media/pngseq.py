"""PNG sequences: a directory of frame_000000.png, frame_000001.png, ... (through PyAV).

PNG holds RGB, so a writer stores rgb24 (8-bit sources) or 16-bit RGB (rgb48le, for
sources above 8 bits); YUV frames are converted with nvc.media.convert (BT.709). The
frames are written into a temporary directory beside the destination, which replaces
the destination on close (a symlink to a directory is followed; see nvc.fileio). An
existing destination directory may only hold frame_*.png files (an earlier sequence,
which is replaced); anything else there is an error.

Reading takes the *.png files of a directory in natural order (frame_2 before frame_10);
a directory states no frame rate, so it is 25 fps unless given.
"""

from __future__ import annotations

import os
import re
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np

from nvc.errors import MediaError
from nvc.media.base import VideoReader, VideoWriter
from nvc.media.formats import pixel_format
from nvc.media.frame import Frame
from nvc.media.pyav_io import DEFAULT_FPS, FrameImporter, av_error, av_frame_from

FRAME_NAME = "frame_{:06d}.png"
_OWN_FILE = re.compile(r"frame_[0-9]+\.png")


def _natural_key(path: Path) -> list[object]:
    return [int(t) if t.isdigit() else t for t in re.split(r"([0-9]+)", path.name)]


def png_files(directory: Path) -> list[Path]:
    """The *.png files of `directory` in natural order."""
    files = [p for p in directory.iterdir() if p.suffix.lower() == ".png" and p.is_file()]
    return sorted(files, key=_natural_key)


def _decode_png(path: Path) -> av.VideoFrame:
    try:
        with av.open(str(path), mode="r") as container:
            if not container.streams.video:
                raise MediaError(f"{path} is not an image")
            for frame in container.decode(container.streams.video[0]):
                return frame
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise av_error(path, e) from None
    raise MediaError(f"{path} holds no image")


class PngSequenceReader(VideoReader):
    """Frames of a directory of PNG images (rgb24, or rgb48le for 16-bit images)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        p = Path(path)
        self._files = png_files(p)
        if not self._files:
            raise MediaError(f"{p} holds no .png files")
        self._importer = FrameImporter(_decode_png(self._files[0]))
        super().__init__(
            p,
            width=self._importer.width,
            height=self._importer.height,
            fps=DEFAULT_FPS,
            format=self._importer.format,
            full_range=False,
            frame_count=len(self._files),
        )

    def _read_planes(self) -> tuple[np.ndarray, ...] | None:
        if self._index >= len(self._files):
            return None
        path = self._files[self._index]
        return self._importer.planes(_decode_png(path), path)

    def _seek(self, index: int) -> None:
        pass  # the position is the file index


class PngSequenceWriter(VideoWriter):
    """Writes frame_NNNNNN.png files into a directory (see the module docstring)."""

    kind = "directory"
    formats = ("rgb24", "rgb48le")

    def _storage_format(self, format: str) -> str:
        fmt = pixel_format(format)
        return "rgb24" if fmt.bit_depth <= 8 else "rgb48le"

    def _open(self) -> None:
        destination = self._output.destination  # symlinks followed
        if destination.is_dir():
            others = [p.name for p in destination.iterdir() if not _OWN_FILE.fullmatch(p.name)]
            if others:
                raise MediaError(
                    f"{self.path} already holds other files ({others[0]}, ...); "
                    "write the frames to a new or empty directory"
                )
        self._av_format = "rgb48be" if self.format == "rgb48le" else "rgb24"
        try:
            ctx = av.CodecContext.create("png", "w")
            ctx.width = self.width
            ctx.height = self.height
            ctx.pix_fmt = self._av_format
            ctx.time_base = Fraction(1) / self.fps
            self._ctx = ctx
        except (av.error.FFmpegError, ValueError) as e:
            raise av_error(self.path, e, "write") from None

    def _write(self, frame: Frame) -> None:
        image = av_frame_from(frame, self._av_format)
        image.pts = self.frames_written
        try:
            packets = self._ctx.encode(image)
        except (av.error.FFmpegError, ValueError) as e:
            raise av_error(self.path, e, "write") from None
        target = self._target / FRAME_NAME.format(self.frames_written)
        try:
            with open(target, "wb") as f:
                for packet in packets:
                    f.write(bytes(packet))
        except OSError as e:
            raise MediaError(f"cannot write {target}: {e.strerror or e}") from None

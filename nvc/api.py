"""The public Python API, mirroring the command line.

nvc.encode_file("in.mp4", "out.nvc", codec="lossless")
nvc.decode_file("out.nvc", "out.y4m")

with nvc.open("out.nvc") as f:                      # read: decoded frames, lazily
    print(f.header.width, f.codec)
    for frame in f: ...

with nvc.open("new.nvc", "w", width=640, height=360, fps=25) as f:   # write
    f.encode(frame)                                 # -> the units written
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from fractions import Fraction
from types import TracebackType
from typing import Any, BinaryIO

from nvc.bitstream import Reader, SequenceHeader, Unit, Writer
from nvc.codec import registry
from nvc.codec.base import Encoder, StreamInfo
from nvc.codec.pipeline import (
    DecodeReport,
    EncodeReport,
    decode_file,
    decode_frames,
    decode_reader,
    encode_file,
    encode_frames,
)
from nvc.errors import NvcError
from nvc.media import Frame

__all__ = [
    "DecodeReport",
    "EncodeReport",
    "NvcReader",
    "NvcWriter",
    "decode_file",
    "decode_frames",
    "encode_file",
    "encode_frames",
    "open",
]


class NvcReader:
    """An open .nvc file or stream; iterating it decodes frames in presentation order.

    Like a PyAV container, a reader is consumed once: open it again to decode again.
    """

    def __init__(self, source: str | os.PathLike[str] | bytes | BinaryIO) -> None:
        self._reader = Reader(source)
        self.header: SequenceHeader = self._reader.header
        self.codec: str = registry.name_of(self.header.codec_id) or f"#{self.header.codec_id}"

    def __iter__(self) -> Iterator[Frame]:
        return decode_reader(self._reader)

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> NvcReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NvcWriter:
    """Encodes frames into a .nvc file, written atomically when closed."""

    def __init__(
        self,
        target: str | os.PathLike[str] | BinaryIO,
        *,
        width: int,
        height: int,
        fps: Fraction | int | float | str,
        format: str = "yuv420p",
        codec: str = "lossless",
        full_range: bool = False,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        spec = registry.get(codec)
        stream = StreamInfo(width, height, Fraction(fps), format, full_range)
        self._encoder: Encoder = spec.create_encoder(stream, options)
        header = stream.to_header(spec.id, self._encoder.codec_params)
        self._writer = Writer(target, header)
        self.frames = 0

    def encode(self, frame: Frame | None) -> list[Unit]:
        """Encode one frame (None flushes) and write its units; returns them."""
        units = self._encoder.encode(frame)
        for unit in units:
            self._writer.write(unit)
        if frame is not None:
            self.frames += 1
        return units

    def close(self) -> None:
        """Flush the encoder and commit the file."""
        self.encode(None)
        if self.frames == 0:
            self._writer.abort()
            raise NvcError("no frames were encoded; nothing was written")
        self._writer.close()

    def abort(self) -> None:
        """Discard everything: no file is left behind."""
        self._writer.abort()

    def __enter__(self) -> NvcWriter:
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


def open(  # mirrors av.open
    path: str | os.PathLike[str] | bytes | BinaryIO, mode: str = "r", **kwargs: Any
) -> NvcReader | NvcWriter:
    """Open a .nvc file: mode "r" to decode frames, "w" to encode (see NvcWriter)."""
    if mode == "r":
        if kwargs:
            raise TypeError(f"nvc.open(mode='r') takes no options, got {sorted(kwargs)}")
        return NvcReader(path)
    if mode == "w":
        return NvcWriter(path, **kwargs)  # type: ignore[arg-type]
    raise ValueError(f"mode must be 'r' or 'w', not {mode!r}")

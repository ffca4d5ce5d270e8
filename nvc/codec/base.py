"""The codec contract: what every nvc codec provides, in PyAV's shape.

    encoder = spec.create_encoder(stream, config)
    units = encoder.encode(frame)      # zero or more Units per frame
    units = encoder.encode(None)       # flush at the end
    frames = decoder.decode(unit)      # zero or more Frames per unit
    frames = decoder.decode(None)      # flush at the end

Codecs produce and consume Units; the container (nvc.bitstream) does all framing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

from nvc.bitstream import SequenceHeader, Unit
from nvc.errors import CodecError
from nvc.media import Frame


@dataclass(frozen=True)
class StreamInfo:
    """What an encoder is told about the video it will receive."""

    width: int  # luma width in pixels
    height: int  # luma height in pixels
    fps: Fraction  # frames per second
    format: str  # pixel format name of the frames (nvc.media.FORMATS)
    full_range: bool = False  # yuv only: full-range levels
    frame_count: int | None = None  # number of frames when known in advance

    @classmethod
    def from_header(cls, header: SequenceHeader) -> StreamInfo:
        return cls(
            width=header.width,
            height=header.height,
            fps=header.fps,
            format=header.pix_fmt,
            full_range=header.full_range,
            frame_count=header.frame_count,
        )

    def to_header(self, codec_id: int, codec_params: bytes) -> SequenceHeader:
        """The sequence header of this stream coded with `codec_id`."""
        return SequenceHeader(
            codec_id=codec_id,
            codec_params=codec_params,
            width=self.width,
            height=self.height,
            fps=self.fps,
            pix_fmt=self.format,
            full_range=self.full_range,
            frame_count=self.frame_count,
        )


class Encoder(Protocol):
    """Turns frames into units. `codec_params` go into the sequence header."""

    @property
    def codec_params(self) -> bytes: ...

    def encode(self, frame: Frame | None) -> list[Unit]: ...


class Decoder(Protocol):
    """Turns units back into frames, in presentation order."""

    def decode(self, unit: Unit | None) -> list[Frame]: ...


@dataclass(frozen=True)
class NoConfig:
    """Configuration of a codec that has no options."""


@dataclass(frozen=True)
class CodecSpec:
    """A codec as the registry knows it."""

    id: int  # fixed numeric id written into every bitstream; never reused
    name: str  # the name users type (--codec NAME)
    summary: str  # one line for `nvc encode --help` and `nvc info`
    config_type: type  # dataclass of the encoder's options
    make_encoder: Callable[[StreamInfo, Any], Encoder]  # (stream, config) -> Encoder
    make_decoder: Callable[[SequenceHeader], Decoder]  # (header) -> Decoder

    def config(self, options: Mapping[str, Any] | None = None) -> Any:
        """Build this codec's config dataclass from options; unknown names are a CodecError."""
        options = dict(options or {})
        known = {f.name for f in dataclasses.fields(self.config_type)}
        unknown = sorted(set(options) - known)
        if unknown:
            allowed = ", ".join(sorted(known)) or "none"
            raise CodecError(
                f"codec {self.name!r} has no option {unknown[0]!r} (its options: {allowed})"
            )
        try:
            return self.config_type(**options)
        except (TypeError, ValueError) as e:
            raise CodecError(f"bad option for codec {self.name!r}: {e}") from None

    def create_encoder(
        self, stream: StreamInfo, options: Mapping[str, Any] | None = None
    ) -> Encoder:
        return self.make_encoder(stream, self.config(options))

    def create_decoder(self, header: SequenceHeader) -> Decoder:
        if header.codec_id != self.id:
            raise CodecError(
                f"stream is coded with codec id {header.codec_id}, not {self.name!r} ({self.id})"
            )
        return self.make_decoder(header)

"""The codec contract: what every nvc codec provides, in PyAV's shape.

    encoder = spec.create_encoder(stream, config)
    units = encoder.encode(frame)      # zero or more Units per frame
    units = encoder.encode(None)       # flush at the end
    frames = decoder.decode(unit)      # zero or more Frames per unit
    frames = decoder.decode(None)      # flush at the end

Codecs produce and consume Units; the container (nvc.bitstream) does all framing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

from nvc.bitstream import SequenceHeader, Unit
from nvc.codec.limits import check_picture
from nvc.errors import CodecError
from nvc.media import Frame
from nvc.media.colorspace import BT709, ColorSpace


@dataclass(frozen=True)
class StreamInfo:
    """What an encoder is told about the video it will receive."""

    width: int  # luma width in pixels
    height: int  # luma height in pixels
    fps: Fraction  # frames per second
    format: str  # pixel format name of the frames (nvc.media.FORMATS)
    full_range: bool = False  # yuv only: full-range levels
    frame_count: int | None = None  # number of frames when known in advance
    colorspace: ColorSpace = BT709  # colour metadata, carried in the sequence header

    @classmethod
    def from_header(cls, header: SequenceHeader) -> StreamInfo:
        return cls(
            width=header.width,
            height=header.height,
            fps=header.fps,
            format=header.pix_fmt,
            full_range=header.full_range,
            frame_count=header.frame_count,
            colorspace=ColorSpace.from_codes(header.matrix, header.primaries, header.transfer),
        )

    def check_frame(self, frame: Frame) -> None:
        """CodecError unless the frame has the stream's size and pixel format."""
        if (frame.width, frame.height, frame.format) != (self.width, self.height, self.format):
            raise CodecError(
                f"frame is {frame.width}x{frame.height} {frame.format}, the stream is "
                f"{self.width}x{self.height} {self.format}"
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
            matrix=self.colorspace.matrix,
            primaries=self.colorspace.primaries,
            transfer=self.colorspace.transfer,
        )


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with n torch intra-op threads, then restore the count; a no-op for None
    or when no codec has imported torch (nothing to set)."""
    torch = sys.modules.get("torch")
    if n is None or torch is None or n == torch.get_num_threads():
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def check_device(name: str) -> str:
    """The device a codec is asked to run on, checked against what this torch can use.

    "cpu" (and "cpu:N") passes without importing torch; anything else must be a torch
    device string whose backend this torch has and sees (cuda[:N] with N below the device
    count, mps, xpu). Returns the name unchanged; a CodecError says what is missing.
    """
    text = str(name).strip()
    if text == "cpu" or text.startswith("cpu:"):
        return text
    import torch

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise CodecError(f"unknown device {text!r} (use cpu, cuda or cuda:N)") from None
    kind = device.type
    if kind == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else "a CUDA build"
            raise CodecError(
                f"--device {text} was asked for, but torch {torch.__version__} ({build}) "
                "sees no CUDA device; use --device cpu"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise CodecError(f"--device {text}: torch sees {count} CUDA device(s) (0..{count - 1})")
        return text
    backend = getattr(torch, kind, None) if kind in ("mps", "xpu") else None
    if backend is None or not backend.is_available():
        raise CodecError(f"--device {text} is not available to this torch; use --device cpu")
    return text


class Encoder(Protocol):
    """Turns frames into units. `codec_params` go into the sequence header.

    An encoder whose reconstruction is known as it codes (the decoder's output, exactly)
    may expose it as `last_reconstruction: Frame | None`, updated by every `encode(frame)`
    that returns units; the pipeline then reports the PSNR of what was coded.
    """

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
            config = self.config_type(**options)
        except (TypeError, ValueError) as e:
            raise CodecError(f"bad option for codec {self.name!r}: {e}") from None
        if "device" in known:  # one check for every codec, before any model moves there
            check_device(config.device)
        return config

    def create_encoder(
        self, stream: StreamInfo, options: Mapping[str, Any] | None = None
    ) -> Encoder:
        return self.make_encoder(stream, self.config(options))

    def create_decoder(self, header: SequenceHeader, *, max_pixels: int | None = None) -> Decoder:
        """A decoder for `header`'s stream; frames above `max_pixels` luma pixels (None:
        nvc.codec.limits.DEFAULT_MAX_PIXELS) are refused before anything is allocated."""
        if header.codec_id != self.id:
            raise CodecError(
                f"stream is coded with codec id {header.codec_id}, not {self.name!r} ({self.id})"
            )
        check_picture(header, max_pixels)
        return self.make_decoder(header)

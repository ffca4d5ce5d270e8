"""The `lossless` codec: every frame coded on its own with FFV1 (through PyAV).

It is exact for every pixel format nvc handles, odd sizes included, and every frame
is a random-access point. It proves the pipeline end to end and serves for archiving.
Codec parameters: one version byte, then FFV1's extradata (its global header).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import av

from nvc.bitstream import SequenceHeader, Unit, UnitType
from nvc.codec.base import CodecSpec, StreamInfo
from nvc.errors import BitstreamError, CodecError
from nvc.media import Frame
from nvc.media.pyav_io import av_frame_from, planes_from_av

_VERSION = 1

# nvc pixel format -> the FFV1 pixel format that stores it exactly.
_FFV1_FORMAT = {
    "yuv420p": "yuv420p",
    "yuv420p10le": "yuv420p10le",
    "yuv444p": "yuv444p",
    "yuv444p10le": "yuv444p10le",
    "rgb24": "bgr0",
    "rgb48le": "gbrp16le",
}


@dataclass(frozen=True)
class LosslessConfig:
    slices: int = 0  # FFV1 slices per frame (0: FFV1 chooses; 4, 6, 9, ... if the size allows)


class LosslessEncoder:
    def __init__(self, stream: StreamInfo, config: LosslessConfig) -> None:
        if stream.format not in _FFV1_FORMAT:
            raise CodecError(f"the lossless codec cannot code {stream.format!r}")
        self.stream = stream
        self._ctx = av.CodecContext.create("ffv1", "w")
        self._ctx.width, self._ctx.height = stream.width, stream.height
        self._ctx.pix_fmt = _FFV1_FORMAT[stream.format]
        self._ctx.time_base = Fraction(1, 1) / stream.fps
        # level 3 with per-slice CRCs; g=1 makes every frame a keyframe (no state carried).
        options = {"level": "3", "slicecrc": "1", "g": "1"}
        if config.slices:
            options["slices"] = str(config.slices)
        self._ctx.options = options
        try:
            self._ctx.open()
        except av.error.FFmpegError as e:
            raise CodecError(f"cannot open the FFV1 encoder: {e}") from None
        self._params = bytes([_VERSION]) + bytes(self._ctx.extradata or b"")

    @property
    def codec_params(self) -> bytes:
        return self._params

    def encode(self, frame: Frame | None) -> list[Unit]:
        if frame is None:
            return []
        if (frame.width, frame.height, frame.format) != (
            self.stream.width,
            self.stream.height,
            self.stream.format,
        ):
            raise CodecError(
                f"frame is {frame.width}x{frame.height} {frame.format}, the stream is "
                f"{self.stream.width}x{self.stream.height} {self.stream.format}"
            )
        image = av_frame_from(frame)
        if image.format.name != self._ctx.pix_fmt:
            image = image.reformat(format=self._ctx.pix_fmt)
        image.pts = frame.pts
        packets = self._ctx.encode(image)
        return [Unit(UnitType.FRAME, bytes(p), pts=frame.pts, rap=True) for p in packets]


class LosslessDecoder:
    def __init__(self, header: SequenceHeader) -> None:
        self.stream = StreamInfo.from_header(header)
        params = header.codec_params
        if not params or params[0] != _VERSION:
            raise BitstreamError("lossless stream has unsupported codec parameters")
        if self.stream.format not in _FFV1_FORMAT:
            raise BitstreamError(f"lossless stream has unsupported pixel format {header.pix_fmt!r}")
        self._ctx = av.CodecContext.create("ffv1", "r")
        self._ctx.width, self._ctx.height = header.width, header.height
        self._ctx.extradata = params[1:]
        self._ctx.options = {"threads": "1"}
        # rgb24 comes back as FFV1's bgr0 and rgb48le as gbrp16le: PyAV converts exactly.
        self._av_format = self.stream.format

    def decode(self, unit: Unit | None) -> list[Frame]:
        if unit is None or unit.type != UnitType.FRAME:
            return []
        try:
            images = self._ctx.decode(av.Packet(unit.payload))
        except av.error.FFmpegError as e:
            raise BitstreamError(f"lossless frame {unit.pts} does not decode: {e}") from None
        frames = []
        for image in images:
            if (image.width, image.height) != (self.stream.width, self.stream.height):
                raise BitstreamError(f"lossless frame {unit.pts} has the wrong size")
            if image.format.name != self._av_format:
                image = image.reformat(format=self._av_format)
            planes = planes_from_av(image, self.stream.format)
            frames.append(
                Frame(
                    planes,
                    self.stream.format,
                    unit.pts,
                    1 / self.stream.fps,
                    self.stream.full_range,
                )
            )
        return frames


SPEC = CodecSpec(
    id=1,
    name="lossless",
    summary="exact: every frame coded alone with FFV1 (testing, archiving)",
    config_type=LosslessConfig,
    make_encoder=LosslessEncoder,
    make_decoder=LosslessDecoder,
)

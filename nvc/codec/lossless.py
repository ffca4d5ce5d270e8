"""The `lossless` codec: every frame coded on its own with FFV1 (through PyAV).

It is exact for every pixel format nvc handles, odd sizes included, and every frame
is a random-access point. It proves the pipeline end to end and serves for archiving.
Codec parameters: one version byte, then FFV1's extradata (its global header).

Integrity: the encoder writes FFV1 level 3 with slice CRCs, and the extradata carries a
CRC too. FFmpeg's decoder only logs a slice CRC mismatch (and conceals the slice), so this
decoder verifies every CRC itself before decoding and refuses a mismatch. Slice CRCs
cannot see a payload cut at a slice boundary, so since codec parameters version 2 every
FRAME payload also ends with the CRC-32 of the decoded frame (nvc.codec.integrity);
version 1 streams (no frame checksum) still decode, with their slice CRCs checked.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from fractions import Fraction

import av

from nvc.bitstream import SequenceHeader, Unit, UnitType
from nvc.codec import integrity
from nvc.codec.base import CodecSpec, StreamInfo
from nvc.errors import BitstreamError, CodecError
from nvc.media import Frame
from nvc.media.pyav_io import av_frame_from, planes_from_av

_VERSION = 2  # codec parameters version written; 2: FRAME payloads end with a checksum
_READS = (1, 2)  # versions this decoder reads

# nvc pixel format -> the FFV1 pixel format that stores it exactly.
_FFV1_FORMAT = {
    "yuv420p": "yuv420p",
    "yuv420p10le": "yuv420p10le",
    "yuv444p": "yuv444p",
    "yuv444p10le": "yuv444p10le",
    "rgb24": "bgr0",
    "rgb48le": "gbrp16le",
}


# FFV1's CRCs are FFmpeg's AV_CRC_32_IEEE: the CRC-32 polynomial, most significant bit
# first, initial value 0, no final xor; a checked block (with its CRC) leaves 0. That is
# zlib's (reflected) CRC-32 of the bit-reversed bytes, without zlib's pre- and post-xor.
_BIT_REVERSED = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))
_SLICE_TRAILER = 8  # u24 slice size (big-endian), u8 error status, u32 CRC


def _ffv1_crc_ok(block: bytes) -> bool:
    """Whether a block that ends with its FFV1 CRC is intact."""
    return zlib.crc32(block.translate(_BIT_REVERSED), 0xFFFFFFFF) == 0xFFFFFFFF


def check_slices(packet: bytes, pts: int) -> None:
    """Verify every slice CRC of an FFV1 level-3 packet (slices are chained backwards from
    the end: each ends with its trailer); BitstreamError on a mismatch or a broken chain."""
    end = len(packet)
    if end == 0:
        raise BitstreamError(f"lossless frame {pts} is empty")
    while end > 0:
        if end < _SLICE_TRAILER:
            raise BitstreamError(f"lossless frame {pts} has a broken slice chain")
        size = int.from_bytes(packet[end - _SLICE_TRAILER : end - 5], "big") + _SLICE_TRAILER
        if size > end:
            raise BitstreamError(f"lossless frame {pts} has a broken slice chain")
        if not _ffv1_crc_ok(packet[end - size : end]):
            raise BitstreamError(f"lossless frame {pts} fails its slice CRC (damaged)")
        end -= size


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
        self.stream.check_frame(frame)
        image = av_frame_from(frame)
        if image.format.name != self._ctx.pix_fmt:
            image = image.reformat(format=self._ctx.pix_fmt)
        image.pts = frame.pts
        packets = self._ctx.encode(image)  # FFV1 is intra-only: this frame's packet
        return [
            Unit(UnitType.FRAME, integrity.seal(bytes(p), frame), pts=frame.pts, rap=True)
            for p in packets
        ]


class LosslessDecoder:
    def __init__(self, header: SequenceHeader) -> None:
        self.stream = StreamInfo.from_header(header)
        params = header.codec_params
        if not params or params[0] not in _READS:
            raise BitstreamError("lossless stream has unsupported codec parameters")
        self._checked = params[0] >= 2  # FRAME payloads end with the frame's checksum
        if self.stream.format not in _FFV1_FORMAT:
            raise BitstreamError(f"lossless stream has unsupported pixel format {header.pix_fmt!r}")
        if not _ffv1_crc_ok(params[1:]):
            raise BitstreamError("lossless stream's FFV1 parameters fail their CRC (damaged)")
        self._ctx = av.CodecContext.create("ffv1", "r")
        self._ctx.width, self._ctx.height = header.width, header.height
        self._ctx.extradata = params[1:]
        self._ctx.options = {"threads": "1"}
        # rgb24 comes back as FFV1's bgr0 and rgb48le as gbrp16le: PyAV converts exactly.
        self._av_format = self.stream.format

    def decode(self, unit: Unit | None) -> list[Frame]:
        if unit is None or unit.type != UnitType.FRAME:
            return []
        return integrity.decode_checked(
            unit, self._decode_packet, what="lossless", checked=self._checked
        )

    def _decode_packet(self, unit: Unit) -> list[Frame]:
        check_slices(unit.payload, unit.pts)
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

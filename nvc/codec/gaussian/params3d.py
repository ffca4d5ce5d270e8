"""The codec parameters of the gaussian codec's 3D mode, readable without torch.

`nvc info` and anything else that only looks at a stream's sequence header read the
camera rig through this module; codec3d (which needs torch) re-exports its names. The
layout is described in codec3d's docstring and README.md ("3D mode").
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from nvc.bitstream import SequenceHeader
from nvc.bitstream.leb128 import decode_uleb128, encode_uleb128
from nvc.codec.gaussian.config import MAX_GROUP, MODE_3D, PARAMS_VERSION
from nvc.errors import BitstreamError, MediaError, NvcError
from nvc.media.multiview import Camera

PACKS = ("queen", "video")  # residual coders, by their id in the sequence header
MAX_CAMERAS = 256  # most cameras in a rig
MAX_RIG_JSON = 1 << 20  # most bytes of the rig's JSON


@dataclass(frozen=True)
class SceneParams:
    """The codec parameters of a 3D stream (codec3d's module docstring)."""

    group: int  # frames per group
    pack: int  # residual coder: index into PACKS
    default_view: int  # rig camera decode() renders
    unit: int  # position unit exponent U
    rig: tuple[Camera, ...]  # the cameras

    def to_bytes(self) -> bytes:
        rig = json.dumps([c.to_json() for c in self.rig], separators=(",", ":")).encode()
        u = self.unit
        return (
            bytes([PARAMS_VERSION])
            + encode_uleb128(MODE_3D)
            + encode_uleb128(self.group)
            + encode_uleb128(self.pack)
            + encode_uleb128(self.default_view)
            + encode_uleb128(2 * u if u >= 0 else -2 * u - 1)
            + encode_uleb128(len(rig))
            + rig
        )

    @classmethod
    def from_bytes(cls, data: bytes, width: int, height: int) -> SceneParams:
        if not data or data[0] != PARAMS_VERSION:
            raise BitstreamError("gaussian stream has unsupported codec parameters")
        mode, pos = decode_uleb128(data, 1, limit=255, what="gaussian mode")
        if mode != MODE_3D:
            raise BitstreamError(f"gaussian stream mode {mode} is not the 3D mode")
        group, pos = decode_uleb128(data, pos, limit=MAX_GROUP, what="gaussian group length")
        pack, pos = decode_uleb128(data, pos, limit=len(PACKS) - 1, what="coder")
        view, pos = decode_uleb128(data, pos, limit=MAX_CAMERAS - 1, what="default view")
        z, pos = decode_uleb128(data, pos, limit=80, what="position unit")
        size, pos = decode_uleb128(data, pos, limit=MAX_RIG_JSON, what="rig length")
        if pos + size != len(data):
            raise BitstreamError("gaussian 3D codec parameters have a bad rig length")
        if group < 1:
            raise BitstreamError("gaussian group length must be at least 1")
        try:
            items = json.loads(data[pos:].decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise BitstreamError("gaussian 3D stream: the camera rig is not JSON") from None
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_CAMERAS:
            raise BitstreamError(f"gaussian 3D stream: the rig must hold 1..{MAX_CAMERAS} cameras")
        try:
            rig = tuple(Camera.from_json(c) for c in items)
        except (MediaError, OverflowError):
            raise BitstreamError("gaussian 3D stream: bad camera in the rig") from None
        if any((c.width, c.height) != (width, height) for c in rig):
            raise BitstreamError("gaussian 3D stream: a rig camera's size is not the stream's")
        if view >= len(rig):
            raise BitstreamError(f"gaussian 3D stream: default view {view} is not in the rig")
        unit = z // 2 if z % 2 == 0 else -(z + 1) // 2
        return cls(group, pack, view, unit, rig)


def stream_mode(codec_params: bytes) -> int:
    """The mode field of a gaussian stream's codec parameters (0 for anything unreadable,
    which the 2D decoder then refuses)."""
    try:
        if codec_params and codec_params[0] == PARAMS_VERSION:
            return decode_uleb128(codec_params, 1, limit=255, what="gaussian mode")[0]
    except (BitstreamError, NvcError):
        pass
    return 0


def is_scene_stream(header: SequenceHeader) -> bool:
    """True for a stream of the gaussian codec's 3D mode."""
    return header.codec_id == 4 and stream_mode(header.codec_params) == MODE_3D

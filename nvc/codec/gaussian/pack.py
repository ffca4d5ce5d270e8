"""V^3-style residual coding for the 3D mode (`--pack video`): attributes as H.264 video.

V^3 (Wang et al., "V^3: Viewing Volumetric Videos on Mobiles via Streamable 2D Dynamic
Gaussians", SIGGRAPH Asia 2024) keeps the Gaussian count fixed within a group of frames,
bakes every attribute of the Gaussians into 2D images and codes those images with an
ordinary video codec, so that the codec's temporal prediction codes the frame-to-frame
change. This module does that with libx264 through PyAV; it is written from the paper's
description (no code of theirs).

Layout (both sides derive it from the group's decoded base, nothing is sent):

- **Order**: the Gaussians are ranked by the 3D Morton (Z-order) code of their integer
  base positions (`morton_order`, 21 bits per axis over the bounding box; ties by index),
  so Gaussians near each other in the list are near each other in space.
- **Image**: rank i goes to a pixel of a plane of 16 x 16 blocks: block i // 256 in
  row-major order over a grid about as wide as high, and inside the block the position
  whose 2D Morton code is i % 256 (`pixel_index`). A run of 4^k consecutive ranks fills a
  square, so a macroblock holds 256 neighbours in space.
- **Values**: each of the 14 integer columns (State3D: x y z, s0 s1 s2, qw qx qy qz, o,
  c0 c1 c2) is coded as r = (cur - base) / step, the residual from the group's base in
  units of its quantization step. With P bytes per value (the fewest that hold the
  column's whole range of residuals) u = r + offset is split into P 8-bit planes,
  reflected like a Gray code (a byte is mirrored, 255 - b, when the value of the bytes
  above it is odd), so that u + 1 never changes a byte by more than 1. The offset puts
  r = 0 in the middle of a run of the lowest byte, so small residuals leave the upper
  bytes constant.
- **Videos**: per attribute group (position, scale, rotation, opacity, colour) a *fine*
  video holds the lowest plane of each of its columns (stacked vertically), coded with
  constant QP `qp` (+ an offset for position), the quality knob; a *coarse* video holds
  their upper planes, coded losslessly (QP 0), since an error of one in an upper byte
  would be an error of 256 steps. 8-bit monochrome (gray) frames,
  one per coded frame of the group, no B-frames and no lookahead (one packet per frame,
  so it streams frame by frame), one IDR at the group's first residual frame.

QP 0 is x264's lossless mode and the default: on the residuals the 3D encoder makes (a
few steps, sparse or moving together) it costs less than the lossy QPs that keep them
(4000 Gaussians, a random quarter changing attributes by +-1..2 steps each frame: lossless
2961 B/frame, QP 4 3906 B with a third of the change lost, QP >= 12 loses all of it; half
of them moving together: lossless 541 B, QP 8 551 B, QP 22 464 B with 0.1 steps of mean
error; QUEEN's coder 2601 and 606 B). Lossy QPs are for rates below that: they drop small
residuals first.

The decoder gets r from the decoded planes (clamped to the column's residual range) and
holds base + r x step, clamped to the state's ranges. H.264 decoding is bit-exact, so the
encoder decodes its own payload with the same code and reports that state as what the
decoder holds; at QP > 0 it is generally not `cur`, and the encoder's next frame starts
from it.

Payload of one frame: for each of the 10 videos in order (position coarse, position fine,
scale coarse, ...): the number of NAL units (LEB128, 0..8), then each NAL unit as its
length (LEB128) and its bytes without start code (emulation prevention kept). x264's
informational SEI (its version and settings) is not sent: only slices, SPS and PPS are.
Zero NAL units: the video's picture is unchanged (the encoder's input picture is the one
it coded last), so nothing is coded and the decoder reuses its last decoded picture; a
still frame costs 10 bytes.

Decoder checks (BitstreamError, one line): the framing; every NAL unit of an allowed type
(slice, IDR slice, SPS, PPS) with no start-code pattern inside; every SPS an 8-bit
monochrome one whose picture size is the size the count gives (parsed before FFmpeg sees
it, so a damaged stream cannot make it allocate for another size); exactly one decoded
picture of that size per video per frame. FFmpeg's decoder runs with `err_detect=explode`,
so an error it detects fails the frame instead of being concealed; a damaged slice that
still decodes gives other values, which the unit's state CRC (the 3D codec's framing)
catches. After an error the decoder refuses the rest of its group.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import av.error
import numpy as np
import numpy.typing as npt

from nvc.bitstream.leb128 import decode_uleb128, encode_uleb128
from nvc.codec.gaussian.state3d import (
    LIMITS,
    MAX_GAUSSIANS3D,
    WIDTHS,
    State3D,
    Steps3D,
)
from nvc.errors import BitstreamError, CodecError

IntArray = npt.NDArray[np.int64]

GROUPS = ("position", "scale", "rotation", "opacity", "colour")  # attribute groups (Steps3D)
BLOCK = 16  # side of the square blocks of the image (an H.264 macroblock)
MORTON_AXIS_BITS = 21  # bits per axis of the 3D Morton code (63 bits in all)
MAX_NALS = 8  # NAL units one video may send for one frame
MAX_QP = 51  # H.264's largest QP at 8 bits
NAL_SLICE, NAL_IDR, NAL_SPS, NAL_PPS, NAL_SEI = 1, 5, 7, 8, 6  # nal_unit_type values
_ALLOWED_NALS = (NAL_SLICE, NAL_IDR, NAL_SPS, NAL_PPS)
_X264_PARAMS = "keyint=infinite:scenecut=0"  # one IDR per group, never another


@dataclass(frozen=True)
class PackConfig:
    """How the videos are coded (the decoder needs none of it)."""

    qp: int = 0  # constant QP of the fine (lowest-byte) planes: 0 lossless .. 51 coarsest
    position_qp_offset: int = -4  # added to a lossy qp for the position group (most sensitive)
    preset: str = "medium"  # x264 preset (speed against size)

    def qp_of(self, group: str) -> int:
        """The fine planes' QP of an attribute group."""
        offset = self.position_qp_offset if group == "position" else 0
        return 0 if self.qp == 0 else min(MAX_QP, max(1, self.qp + offset))


# --- Morton order and the image layout ---


def _spread3(v: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """The 21 low bits of v moved to bit positions 0, 3, 6, ... (3 * 20)."""
    v = v & np.uint64(0x1FFFFF)
    for shift, mask in (
        (32, 0x1F00000000FFFF),
        (16, 0x1F0000FF0000FF),
        (8, 0x100F00F00F00F00F),
        (4, 0x10C30C30C30C30C3),
        (2, 0x1249249249249249),
    ):
        v = (v | (v << np.uint64(shift))) & np.uint64(mask)
    return v


def morton_codes(points: IntArray) -> npt.NDArray[np.uint64]:
    """3D Morton codes of integer points (N, 3): bit b of axis a goes to bit 3 b + a, after
    shifting the points to their bounding box's corner and dropping low bits until every
    coordinate fits in MORTON_AXIS_BITS bits."""
    p = np.asarray(points, np.int64).reshape(-1, 3)
    if p.shape[0] == 0:
        return np.zeros(0, np.uint64)
    p = p - p.min(axis=0)
    shift = max(0, int(p.max()).bit_length() - MORTON_AXIS_BITS)
    u = (p >> shift).astype(np.uint64)
    return (
        _spread3(u[:, 0])
        | (_spread3(u[:, 1]) << np.uint64(1))
        | (_spread3(u[:, 2]) << np.uint64(2))
    )


def morton_order(points: IntArray) -> IntArray:
    """Indices of the points (N, 3) in Morton order (ties by index)."""
    return np.argsort(morton_codes(points), kind="stable").astype(np.int64)


@dataclass(frozen=True)
class Layout:
    """Where the Gaussians' values go in a plane."""

    count: int  # Gaussians
    blocks_x: int  # blocks per row of a plane
    blocks_y: int  # rows of blocks

    @classmethod
    def of(cls, count: int) -> Layout:
        blocks = max(1, math.ceil(count / (BLOCK * BLOCK)))
        bx = math.ceil(math.sqrt(blocks))
        return cls(count, bx, math.ceil(blocks / bx))

    @property
    def width(self) -> int:
        return BLOCK * self.blocks_x

    @property
    def height(self) -> int:
        return BLOCK * self.blocks_y


def pixel_index(layout: Layout) -> IntArray:
    """Flat pixel index (row * width + column) in a plane of each rank 0 .. count - 1."""
    rank = np.arange(layout.count, dtype=np.int64)
    block, j = np.divmod(rank, BLOCK * BLOCK)
    x = np.zeros_like(j)
    y = np.zeros_like(j)
    for bit in range(4):  # 2D Morton inside the 16 x 16 block: x on even bits, y on odd
        x |= ((j >> (2 * bit)) & 1) << bit
        y |= ((j >> (2 * bit + 1)) & 1) << bit
    by, bx = np.divmod(block, layout.blocks_x)
    return (by * BLOCK + y) * layout.width + bx * BLOCK + x


# --- values <-> reflected byte planes ---


@dataclass(frozen=True)
class Column:
    """How one state column is coded."""

    group: int  # index into GROUPS
    step: int  # quantization step exponent
    span: int  # largest |residual| in steps
    planes: int  # bytes per value
    offset: int  # u = residual + offset


def columns_for(steps: Steps3D) -> list[Column]:
    """The coding of the 14 columns under `steps` (their residual ranges from the state's
    limits: cur - base lies in [-2 L, 2 L] for a column bounded by L)."""
    out = []
    exps = steps.exponents()
    groups = np.repeat(np.arange(len(GROUPS)), WIDTHS)
    limits = np.repeat(np.array(LIMITS, np.int64), WIDTHS)
    for i in range(14):
        span = int(2 * limits[i]) >> int(exps[i])
        planes = 1 if span <= 127 else 2
        while span > (1 << (8 * planes - 1)) - 129:
            planes += 1
        offset = 128 + ((1 << (8 * planes - 1)) if planes > 1 else 0)
        out.append(Column(int(groups[i]), int(exps[i]), span, planes, offset))
    return out


def to_planes(u: IntArray, planes: int) -> list[IntArray]:
    """Reflected bytes of u >= 0, lowest first: byte k is mirrored when u >> 8(k+1) is odd."""
    out = []
    for k in range(planes):
        b = (u >> (8 * k)) & 255
        out.append(np.where((u >> (8 * (k + 1))) & 1, 255 - b, b))
    return out


def from_planes(digits: Sequence[IntArray]) -> IntArray:
    """The inverse of to_planes."""
    t = np.asarray(digits[-1], np.int64)
    for b in reversed(digits[:-1]):
        b = np.asarray(b, np.int64)
        t = (t << 8) + np.where(t & 1, 255 - b, b)
    return t


# --- H.264 elementary-stream details ---


def split_annexb(data: bytes) -> list[bytes]:
    """The NAL units (without start codes and trailing zero bytes) of an Annex B stream."""
    starts = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        starts.append(i + 3)
        i = data.find(b"\x00\x00\x01", i + 3)
    units = []
    for n, s in enumerate(starts):
        end = starts[n + 1] - 3 if n + 1 < len(starts) else len(data)
        unit = data[s:end].rstrip(b"\x00")
        if unit:
            units.append(unit)
    return units


class _Bits:
    """An Exp-Golomb reader over an RBSP (H.264 7.2 / 9.1)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def bit(self) -> int:
        if self.pos >= 8 * len(self.data):
            raise BitstreamError("gaussian video residual: an SPS is truncated")
        b = (self.data[self.pos >> 3] >> (7 - (self.pos & 7))) & 1
        self.pos += 1
        return b

    def bits(self, n: int) -> int:
        v = 0
        for _ in range(n):
            v = (v << 1) | self.bit()
        return v

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise BitstreamError("gaussian video residual: a malformed SPS field")
        return (1 << zeros) - 1 + self.bits(zeros)


def _unescape(nal: bytes) -> bytes:
    return nal.replace(b"\x00\x00\x03", b"\x00\x00")


def sps_size(nal: bytes) -> tuple[int, int]:
    """(width, height) in pixels of an 8-bit monochrome frame-only SPS NAL unit without
    cropping; BitstreamError for anything else (H.264 7.3.2.1.1)."""
    r = _Bits(_unescape(nal[1:]))
    profile = r.bits(8)
    r.bits(16)  # constraint flags, level
    if r.ue() > 31:
        raise BitstreamError("gaussian video residual: SPS id out of range")
    if profile not in (100, 244):
        raise BitstreamError(f"gaussian video residual: unexpected H.264 profile {profile}")
    if r.ue() != 0:  # chroma_format_idc
        raise BitstreamError("gaussian video residual: the SPS is not monochrome")
    if r.ue() != 0 or r.ue() != 0:  # bit depths - 8
        raise BitstreamError("gaussian video residual: the SPS is not 8-bit")
    r.bit()  # qpprime_y_zero_transform_bypass_flag
    if r.bit():
        raise BitstreamError("gaussian video residual: the SPS has scaling matrices")
    if r.ue() > 12:  # log2_max_frame_num_minus4
        raise BitstreamError("gaussian video residual: a malformed SPS field")
    poc_type = r.ue()
    if poc_type == 0:
        if r.ue() > 12:
            raise BitstreamError("gaussian video residual: a malformed SPS field")
    elif poc_type != 2:
        raise BitstreamError(f"gaussian video residual: unexpected POC type {poc_type}")
    if r.ue() > 16:  # max_num_ref_frames
        raise BitstreamError("gaussian video residual: too many reference frames")
    r.bit()  # gaps_in_frame_num_value_allowed_flag
    width_mbs = r.ue() + 1
    height_mbs = r.ue() + 1
    if not r.bit():  # frame_mbs_only_flag
        raise BitstreamError("gaussian video residual: the SPS allows field coding")
    r.bit()  # direct_8x8_inference_flag
    if r.bit():  # frame_cropping_flag
        raise BitstreamError("gaussian video residual: the SPS crops")
    return 16 * width_mbs, 16 * height_mbs


def _check_nal(nal: bytes) -> int:
    """The type of a received NAL unit; BitstreamError if it is not one this coder sends."""
    if nal[0] & 0x80:
        raise BitstreamError("gaussian video residual: a NAL unit has its forbidden bit set")
    kind = nal[0] & 0x1F
    if kind not in _ALLOWED_NALS:
        raise BitstreamError(f"gaussian video residual: unexpected NAL unit type {kind}")
    if nal[-1] == 0 or any(p in nal for p in (b"\x00\x00\x00", b"\x00\x00\x01", b"\x00\x00\x02")):
        raise BitstreamError("gaussian video residual: a NAL unit holds a start-code pattern")
    return kind


# --- the videos ---


@dataclass(frozen=True)
class _Video:
    """One of the coded videos: which (column, byte) planes it stacks, at which QP."""

    group: int  # index into GROUPS
    planes: tuple[tuple[int, int], ...]  # (column, byte) of each plane, top to bottom
    lossless: bool  # the coarse video of its group (QP 0)


def _videos(columns: Sequence[Column]) -> list[_Video]:
    out = []
    for g in range(len(GROUPS)):
        cols = [i for i, c in enumerate(columns) if c.group == g]
        coarse = tuple((i, k) for i in cols for k in range(1, columns[i].planes))
        if coarse:
            out.append(_Video(g, coarse, True))
        out.append(_Video(g, tuple((i, 0) for i in cols), False))
    return out


class _Geometry:
    """What both sides derive from the base: columns, order, pixels, videos."""

    def __init__(self, base: State3D, steps: Steps3D) -> None:
        if not 0 < base.count <= MAX_GAUSSIANS3D:
            raise CodecError(f"gaussian video residual: bad Gaussian count {base.count}")
        self.base = base.matrix()
        self.steps = steps
        self.columns = columns_for(steps)
        self.layout = Layout.of(base.count)
        self.order = morton_order(base.means)
        self.pixels = pixel_index(self.layout)
        self.videos = _videos(self.columns)
        self.plane_size = self.layout.width * self.layout.height

    def frame_size(self, video: _Video) -> tuple[int, int]:
        return self.layout.width, self.layout.height * len(video.planes)


class PackDecoder:
    """Decodes one group's video residual payloads (new_decoder)."""

    def __init__(self, base: State3D, steps: Steps3D) -> None:
        self.geo = _Geometry(base, steps)
        self.frames = 0
        self.broken = False
        self._contexts: list[Any] = []
        self._last: list[IntArray | None] = [None] * len(self.geo.videos)  # decoded pictures
        for _ in self.geo.videos:
            ctx: Any = av.CodecContext.create("h264", "r")
            ctx.thread_count = 1
            ctx.options = {"err_detect": "explode"}  # refuse, not conceal, what it detects
            self._contexts.append(ctx)

    def _read_nals(self, data: bytes) -> list[list[bytes]]:
        pos = 0
        out = []
        for _ in self.geo.videos:
            n, pos = decode_uleb128(data, pos, limit=MAX_NALS, what="video residual NAL unit count")
            nals = []
            for _ in range(n):
                size, pos = decode_uleb128(
                    data, pos, limit=max(1, len(data) - pos), what="video residual NAL unit size"
                )
                if size == 0 or pos + size > len(data):
                    raise BitstreamError("gaussian video residual: truncated NAL unit")
                nals.append(bytes(data[pos : pos + size]))
                pos += size
            out.append(nals)
        if pos != len(data):
            raise BitstreamError(f"gaussian video residual has {len(data) - pos} trailing bytes")
        return out

    def _decode_video(self, index: int, nals: list[bytes]) -> IntArray:
        last = self._last[index]
        if not nals:  # the picture is the video's previous one
            if last is None:
                raise BitstreamError("gaussian video residual: a video repeats no picture")
            return last
        video = self.geo.videos[index]
        width, height = self.geo.frame_size(video)
        for nal in nals:
            if _check_nal(nal) == NAL_SPS and sps_size(nal) != (width, height):
                raise BitstreamError("gaussian video residual: an SPS has the wrong size")
        packet = av.Packet(b"".join(b"\x00\x00\x00\x01" + nal for nal in nals))
        try:
            frames = self._contexts[index].decode(packet)
        except (av.error.FFmpegError, ValueError) as e:
            raise BitstreamError(f"gaussian video residual: H.264 decoding failed ({e})") from None
        if len(frames) != 1:
            raise BitstreamError(
                f"gaussian video residual: a packet gave {len(frames)} pictures, not 1"
            )
        frame = frames[0]
        if (frame.width, frame.height) != (width, height):
            raise BitstreamError("gaussian video residual: a picture has the wrong size")
        plane = frame.planes[0]
        luma = np.frombuffer(bytes(plane), np.uint8).reshape(height, plane.line_size)
        picture = luma[:, :width].astype(np.int64)
        self._last[index] = picture
        return picture

    def decode_residuals(self, data: bytes, prev: State3D) -> State3D:
        """The state after `data` (see the module docstring); BitstreamError when malformed,
        and after any error every later frame of the group is refused too."""
        if self.broken:
            raise BitstreamError("gaussian video residual: the group's videos were damaged")
        if prev.count != self.geo.layout.count:
            raise BitstreamError(
                f"gaussian video residual follows a state of {prev.count} Gaussians, the "
                f"group has {self.geo.layout.count}"
            )
        self.broken = True
        nal_lists = self._read_nals(data)
        digits: dict[tuple[int, int], IntArray] = {}
        size = self.geo.plane_size
        for v, (video, nals) in enumerate(zip(self.geo.videos, nal_lists, strict=True)):
            picture = self._decode_video(v, nals).reshape(-1)
            for p, key in enumerate(video.planes):
                digits[key] = picture[p * size : (p + 1) * size][self.geo.pixels]
        res = np.zeros((self.geo.layout.count, 14), np.int64)
        for i, col in enumerate(self.geo.columns):
            u = from_planes([digits[(i, k)] for k in range(col.planes)])
            res[self.geo.order, i] = np.clip(u - col.offset, -col.span, col.span)
        exps = self.geo.steps.exponents()
        self.broken = False
        self.frames += 1
        return State3D.from_matrix(self.geo.base + (res << exps)).clamp()


class PackEncoder:
    """Codes one group's residual frames as H.264 videos (new_encoder)."""

    def __init__(self, base: State3D, steps: Steps3D, config: PackConfig | None = None) -> None:
        self.config = config or PackConfig()
        if not 0 <= self.config.qp <= MAX_QP:
            raise CodecError(f"gaussian video residual: qp must be in 0..{MAX_QP}")
        self.geo = _Geometry(base, steps)
        self._decoder = PackDecoder(base, steps)
        self._contexts: list[Any] = []
        self._sent: list[npt.NDArray[np.uint8] | None] = [None] * len(self.geo.videos)
        self._coded = [0] * len(self.geo.videos)  # pictures coded per video
        self.frames = 0
        for video in self.geo.videos:
            width, height = self.geo.frame_size(video)
            ctx: Any = av.CodecContext.create("libx264", "w")
            ctx.width, ctx.height, ctx.pix_fmt = width, height, "gray"
            ctx.time_base = Fraction(1, 25)
            ctx.thread_count = 1
            qp = 0 if video.lossless else self.config.qp_of(GROUPS[video.group])
            ctx.options = {
                "qp": str(qp),
                "preset": self.config.preset,
                "tune": "psnr,zerolatency",  # no psy/AQ; no B-frames, no lookahead
                "x264-params": _X264_PARAMS,
            }
            self._contexts.append(ctx)

    def _pictures(self, cur: State3D) -> list[npt.NDArray[np.uint8]]:
        geo = self.geo
        diff = cur.matrix() - geo.base
        exps = geo.steps.exponents()
        res = diff >> exps
        if not np.array_equal(res << exps, diff):
            raise CodecError("gaussian video residual: a state is off its lattice (a bug)")
        ranked = res[geo.order]
        digits: dict[tuple[int, int], IntArray] = {}
        for i, col in enumerate(geo.columns):
            r = np.clip(ranked[:, i], -col.span, col.span)
            for k, d in enumerate(to_planes(r + col.offset, col.planes)):
                digits[(i, k)] = d
        pictures = []
        for video in geo.videos:
            stack = []
            for i, k in video.planes:
                col = geo.columns[i]
                pad = to_planes(np.array([col.offset]), col.planes)[k][0]
                plane = np.full(geo.plane_size, pad, np.int64)
                plane[geo.pixels] = digits[(i, k)]
                stack.append(plane.reshape(geo.layout.height, geo.layout.width))
            pictures.append(np.concatenate(stack).astype(np.uint8))
        return pictures

    def encode_residuals(self, prev: State3D, cur: State3D) -> tuple[bytes, State3D]:
        """The payload of `cur` and the state the decoder will hold after it (module
        docstring: the residual from the base, so `prev` is only checked)."""
        if cur.count != self.geo.layout.count or prev.count != cur.count:
            raise CodecError("gaussian video residual: the Gaussian count changed (a bug)")
        out = bytearray()
        for v, picture in enumerate(self._pictures(cur)):
            sent = self._sent[v]
            if sent is not None and np.array_equal(sent, picture):
                out += encode_uleb128(0)  # unchanged: the decoder repeats its picture
                continue
            frame = av.VideoFrame.from_ndarray(picture, format="gray")
            frame.pts = self._coded[v]
            self._coded[v] += 1
            self._sent[v] = picture
            packets = self._contexts[v].encode(frame)
            if len(packets) != 1:
                raise CodecError(f"x264 gave {len(packets)} packets for a frame, not 1")
            nals = [n for n in split_annexb(bytes(packets[0])) if n[0] & 0x1F != NAL_SEI]
            out += encode_uleb128(len(nals))
            for nal in nals:
                out += encode_uleb128(len(nal)) + nal
        self.frames += 1
        data = bytes(out)
        return data, self._decoder.decode_residuals(data, prev)


def new_encoder(base: State3D, steps: Steps3D, config: PackConfig | None = None) -> PackEncoder:
    """The residual encoder of a group (the interface of coding3d.residual_coder); the
    default config is lossless (QP 0), see the module docstring."""
    return PackEncoder(base, steps, config)


def new_decoder(base: State3D, steps: Steps3D) -> PackDecoder:
    """The residual decoder of a group (the interface of coding3d.residual_coder)."""
    return PackDecoder(base, steps)

"""`nvc demo`: the main job on built-in defaults, end to end, in a few minutes at most.

Generates a natural-looking clip, encodes it with the best codec available, decodes it
from the file in a fresh decoder, and reports size, bpp, quality and timing, next to x264
at the same size: x264 medium in low delay (no B-frames, nvc's intra period), through
PyAV, its CRF searched until its raw H.264 stream (video payload only, no container)
(no informational SEI) brackets the .nvc file's size, its PSNR interpolated to that size.
"""

from __future__ import annotations

import math
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from nvc.bench import anchors
from nvc.codec import registry
from nvc.codec.base import StreamInfo
from nvc.codec.pipeline import decode_frames, encode_frames
from nvc.errors import CodecError, NvcError
from nvc.media import Frame, bpp, open_writer, psnr_rgb, psnr_yuv, synthetic_clip

# Best first: the demo uses the first of these that this nvc has. fm leads: it codes the
# demo's clip in about 35 CPU-seconds (its default model, realtime2; README "Use"), where
# inr trains for minutes (and inr's quality is what those minutes buy:
# benchmarks/results/inr_rd.md).
PREFERENCE = ("fm", "inr", "lossless")
X264_CRFS = (0, 51)  # the CRF range searched for x264 at the demo's size
X264_KEYINT = 128  # x264's intra period, as fm's default


@dataclass(frozen=True)
class AnchorPoint:
    """x264 at the demo's size: PSNR interpolated between the two CRFs that bracket it."""

    crfs: tuple[int, int]  # the bracketing CRFs (equal when the size is outside x264's range)
    bytes: tuple[int, int]  # their raw H.264 stream sizes
    bpp: float  # bits per pixel at the interpolated point (nvc's bpp unless out of range)
    psnr_rgb: float  # mean RGB PSNR at that point
    psnr_yuv: float  # mean 6:1:1 YUV PSNR at that point


@dataclass(frozen=True)
class DemoReport:
    codec: str  # codec used
    frames: int  # frames in the clip
    width: int
    height: int
    bytes: int  # size of the .nvc file
    bpp: float  # bits per pixel of the .nvc file
    psnr_rgb: float  # mean RGB PSNR of the decoded clip (inf when exact)
    psnr_yuv: float  # mean 6:1:1 YUV PSNR of the decoded clip
    exact: bool  # every decoded frame equals its source
    encode_seconds: float
    decode_seconds: float
    x264: AnchorPoint | None = None  # x264 at the same size (None: no libx264 in PyAV)


def best_codec() -> str:
    available = registry.names()
    return next(name for name in PREFERENCE if name in available)


def _mean(values: list[float]) -> float:
    """Mean per-frame PSNR; exact frames count as 100 dB unless all are exact (inf)."""
    if all(math.isinf(v) for v in values):
        return math.inf
    return statistics.fmean(min(v, 100.0) for v in values)


def _save(path: Path, frames: list[Frame], fps: Fraction) -> None:
    first = frames[0]
    with open_writer(
        path, width=first.width, height=first.height, fps=fps, format=first.format
    ) as w:
        for f in frames:
            w.write(f)


def x264_at_size(clip: list[Frame], fps: Fraction, target: int) -> AnchorPoint:
    """x264 at `target` bytes: a binary search over CRF for the two that bracket it, then
    PSNR linear in log(bytes) between them (x264's sizes fall as its CRF rises). The bytes
    are the raw H.264 stream without informational SEI (nvc.bench.anchors)."""
    config = anchors.ANCHORS["x264"]
    streams: dict[int, bytes] = {}

    def size_at(crf: int) -> int:
        if crf not in streams:
            coded = anchors.encode_stream(
                clip, config, crf=crf, fps=fps, gop="ld", keyint=X264_KEYINT
            )
            streams[crf] = coded.data
        return len(streams[crf])

    def point(crf: int) -> tuple[float, float]:
        decoded = anchors.decode_bytes(streams[crf], config, fps=fps)
        if len(decoded) != len(clip):
            raise NvcError(f"x264 decoded {len(decoded)} frames, expected {len(clip)}")
        pairs = list(zip(clip, decoded, strict=True))
        rgb = _mean([psnr_rgb(a, b) for a, b in pairs])
        return rgb, _mean([psnr_yuv(a, b).weighted for a, b in pairs])

    pixels = len(clip) * clip[0].width * clip[0].height

    def alone(crf: int) -> AnchorPoint:  # outside x264's range: its nearest point
        size = size_at(crf)
        return AnchorPoint((crf, crf), (size, size), 8 * size / pixels, *point(crf))

    lo, hi = X264_CRFS  # invariant: size_at(hi) <= target < size_at(lo)
    if size_at(hi) > target:
        return alone(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if size_at(mid) <= target else (mid, hi)
    if size_at(lo) <= target:
        return alone(lo)
    (rgb_lo, yuv_lo), (rgb_hi, yuv_hi) = point(lo), point(hi)
    b_lo, b_hi = size_at(lo), size_at(hi)
    w = (math.log(target) - math.log(b_hi)) / (math.log(b_lo) - math.log(b_hi))
    return AnchorPoint(
        (lo, hi),
        (b_lo, b_hi),
        8 * target / pixels,
        rgb_hi + w * (rgb_lo - rgb_hi),
        yuv_hi + w * (yuv_lo - yuv_hi),
    )


def run_demo(
    *,
    frames: int = 48,
    size: tuple[int, int] = (640, 360),
    codec: str | None = None,
    keep: str | None = None,
    out: Callable[[str], None] = print,
    anchor: bool = True,
) -> DemoReport:
    codec = codec or best_codec()
    registry.get(codec)
    width, height = size
    fps = Fraction(25)
    out(f"nvc demo: {frames} frames of a generated {width}x{height} clip, codec {codec}")
    clip: list[Frame] = list(synthetic_clip(width, height, frames, fps=fps, format="yuv420p"))
    stream = StreamInfo(width, height, fps, "yuv420p", frame_count=frames)

    workdir = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="nvc-demo-"))
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        nvc_path = workdir / "demo.nvc"
        if keep:
            _save(workdir / "source.y4m", clip, fps)
        enc = encode_frames(clip, stream, nvc_path, codec=codec)
        start = time.perf_counter()
        decoded = list(decode_frames(nvc_path))
        dec_seconds = time.perf_counter() - start
        if len(decoded) != len(clip):
            raise NvcError(f"decoded {len(decoded)} frames, expected {len(clip)}")
        if keep:
            _save(workdir / "decoded.y4m", decoded, fps)
        rgb = [psnr_rgb(a, b) for a, b in zip(clip, decoded, strict=True)]
        yuv = [psnr_yuv(a, b).weighted for a, b in zip(clip, decoded, strict=True)]
        exact = all(a.equal(b) for a, b in zip(clip, decoded, strict=True))
        x264 = None
        if anchor and not exact and width % 2 == 0 and height % 2 == 0:
            try:
                x264 = x264_at_size(clip, fps, enc.bytes)
            except CodecError as e:  # a PyAV without libx264: say so, report nvc alone
                out(f"  (no x264 comparison: {e})")
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)

    report = DemoReport(
        codec=codec,
        frames=frames,
        width=width,
        height=height,
        bytes=enc.bytes,
        bpp=bpp(enc.bytes, frames, width, height),
        psnr_rgb=_mean(rgb),
        psnr_yuv=_mean(yuv),
        exact=exact,
        encode_seconds=enc.seconds,
        decode_seconds=dec_seconds,
        x264=x264,
    )
    quality = (
        "exact (lossless)"
        if exact
        else f"PSNR {report.psnr_rgb:.2f} dB RGB, {report.psnr_yuv:.2f} dB YUV"
    )
    out(f"  size     {report.bytes} bytes, {report.bpp:.4f} bpp")
    out(f"  quality  {quality}")
    if x264 is not None:
        lo, hi = x264.crfs
        where = (
            f"crf {lo}..{hi} ({x264.bytes[0]}..{x264.bytes[1]} bytes) interpolated to "
            f"{report.bytes} bytes"
            if lo != hi
            else f"crf {lo}, {x264.bytes[0]} bytes: x264's nearest size"
        )
        gain = report.psnr_yuv - x264.psnr_yuv
        out(
            f"  x264     PSNR {x264.psnr_rgb:.2f} dB RGB, {x264.psnr_yuv:.2f} dB YUV at "
            f"{x264.bpp:.4f} bpp (medium, low delay; {where}); nvc {gain:+.2f} dB YUV"
        )
    out(f"  encode   {report.encode_seconds:.2f} s ({frames / report.encode_seconds:.1f} fps)")
    out(f"  decode   {report.decode_seconds:.2f} s ({frames / report.decode_seconds:.1f} fps)")
    if keep:
        out(f"  files    {workdir}/source.y4m, demo.nvc, decoded.y4m")
    return report

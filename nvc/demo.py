"""`nvc demo`: the main job on built-in defaults, end to end, in well under two minutes.

Generates a natural-looking clip, encodes it with the best codec available, decodes it
from the file in a fresh decoder, and reports size, bpp, quality and timing.
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

from nvc.codec import registry
from nvc.codec.base import StreamInfo
from nvc.codec.pipeline import decode_frames, encode_frames
from nvc.errors import NvcError
from nvc.media import Frame, bpp, open_writer, psnr_rgb, psnr_yuv, synthetic_clip

# Best first: the demo uses the first of these that this nvc has. fm leads: on the demo's
# clip it beats inr in rate-distortion (benchmarks/results/rd_natural.md) and encodes in
# seconds, where inr trains for minutes.
PREFERENCE = ("fm", "inr", "lossless")


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


def run_demo(
    *,
    frames: int = 48,
    size: tuple[int, int] = (640, 360),
    codec: str | None = None,
    keep: str | None = None,
    out: Callable[[str], None] = print,
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
    )
    quality = (
        "exact (lossless)"
        if exact
        else f"PSNR {report.psnr_rgb:.2f} dB RGB, {report.psnr_yuv:.2f} dB YUV"
    )
    out(f"  size     {report.bytes} bytes, {report.bpp:.4f} bpp")
    out(f"  quality  {quality}")
    out(f"  encode   {report.encode_seconds:.2f} s ({frames / report.encode_seconds:.1f} fps)")
    out(f"  decode   {report.decode_seconds:.2f} s ({frames / report.decode_seconds:.1f} fps)")
    if keep:
        out(f"  files    {workdir}/source.y4m, demo.nvc, decoded.y4m")
    return report

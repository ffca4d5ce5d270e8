"""Rate-distortion run of the inr codec against x264 and x265 (PyAV, preset medium).

    python benchmarks/inr_rd.py                  # 640x360, 100 frames, the default points
    python benchmarks/inr_rd.py --quick          # a one-minute smoke run
    python benchmarks/inr_rd.py --input clip.mp4 --frames 100 --point quality:0.05:600

Every codec codes the same frames (the generated natural-looking clip of nvc.media, or a
user file converted to 8-bit 4:2:0 and cropped to an even size). For each inr point the
script writes a real .nvc file and reports its actual size, the PSNR of the frames the
decoder produces (checked bit for bit against the encoder's own reconstruction), the
encoding time and the decoding speed; the anchors report the same quantities for their
raw elementary streams (nvc.bench.anchors). Results go to benchmarks/results/inr_rd.json.

PSNR is YUV 6:1:1 (nvc.media.psnr_yuv, mean over frames); RGB PSNR is recorded too.
Timings depend on the machine's load: the load average is recorded with the results.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nvc.bench import anchors
from nvc.bench.environment import machine_info, versions
from nvc.codec.base import StreamInfo
from nvc.codec.inr.codec import InrEncoder, frame_digest
from nvc.codec.pipeline import decode_frames, encode_frames
from nvc.media import Frame, convert, open_video, psnr_rgb, psnr_yuv, synthetic_clip

FPS = Fraction(25)
DEFAULT_POINTS = ["realtime:0.05:150", "realtime:0.1:150", "quality:0.05:200", "quality:0.1:200"]
QUICK_POINTS = ["realtime:0.3:20", "quality:0.3:20"]


def load_clip(args: argparse.Namespace) -> list[Frame]:
    if not args.input:
        w, h = args.size
        return synthetic_clip(w, h, args.frames, fps=FPS, format="yuv420p", seed=args.seed)
    frames = []
    with open_video(args.input) as reader:
        for i, frame in enumerate(reader):
            if i >= args.frames:
                break
            frame = convert(frame, "yuv420p")
            w, h = frame.width // 2 * 2, frame.height // 2 * 2  # the anchors need even sizes
            planes = (
                frame.planes[0][:h, :w],
                frame.planes[1][: h // 2, : w // 2],
                frame.planes[2][: h // 2, : w // 2],
            )
            frames.append(
                Frame(tuple(np.ascontiguousarray(p) for p in planes), "yuv420p", i, 1 / FPS)
            )
    return frames


def quality(ref: list[Frame], dist: list[Frame]) -> dict[str, float]:
    yuv = [psnr_yuv(a, b) for a, b in zip(ref, dist, strict=True)]
    return {
        "psnr_yuv": float(np.mean([p.weighted for p in yuv])),
        "psnr_y": float(np.mean([p.y for p in yuv])),
        "psnr_rgb": float(np.mean([psnr_rgb(a, b) for a, b in zip(ref, dist, strict=True)])),
    }


def run_inr(
    frames: list[Frame], preset: str, bpp: float, budget: float, epochs: int | None, workdir: Path
) -> dict[str, Any]:
    first = frames[0]
    stream = StreamInfo(first.width, first.height, FPS, "yuv420p", False, len(frames))
    path = workdir / f"inr_{preset}_{bpp}.nvc"
    encoders: list[InrEncoder] = []
    original = InrEncoder.__init__

    def keep(self: InrEncoder, *a: Any, **k: Any) -> None:  # to read the encoder's reports
        original(self, *a, **k)
        encoders.append(self)

    InrEncoder.__init__ = keep  # type: ignore[method-assign]
    options: dict[str, Any] = {"preset": preset, "bpp": bpp, "time_budget": budget}
    if epochs:
        options["epochs"] = epochs
    try:
        t = time.perf_counter()
        report = encode_frames(frames, stream, path, codec="inr", options=options)
        encode_s = time.perf_counter() - t
    finally:
        InrEncoder.__init__ = original  # type: ignore[method-assign]
    enc = encoders[0]
    timings = []
    threads = torch.get_num_threads()
    for n_threads in (threads, threads, 1):  # the second pass is warm (oneDNN kernels built)
        torch.set_num_threads(n_threads)
        t = time.perf_counter()
        decoded = list(decode_frames(path))
        timings.append(time.perf_counter() - t)
    torch.set_num_threads(threads)
    digests = [d for r in enc.reports for d in r.digests]
    exact = digests == [frame_digest(f) for f in decoded]
    q = quality(frames, decoded)
    reported = float(
        np.average([r.psnr for r in enc.reports], weights=[r.frames for r in enc.reports])
    )
    return {
        "codec": "inr",
        "preset": preset,
        "target_bpp": bpp,
        "time_budget_s": budget,
        "bytes": report.bytes,
        "bpp": report.bpp,
        **q,
        "encoder_reported_psnr_yuv": reported,
        "decode_matches_encoder_bit_exactly": exact,
        "encode_s": encode_s,
        "decode_fps": len(frames) / timings[1],
        "decode_fps_cold": len(frames) / timings[0],
        "decode_fps_1_thread": len(frames) / timings[2],
        "groups": len(enc.reports),
        "epochs": [r.epochs for r in enc.reports],
        "params": enc.plan.params,
        "width_multiplier": enc.plan.width,
        "macs_per_pixel": enc.plan.macs_per_pixel,
        "model": {k: v for k, v in vars(enc.model).items()},
    }


def run_anchor(
    frames: list[Frame], name: str, crf: int, threads: int, workdir: Path
) -> dict[str, Any]:
    cfg = anchors.anchor(name)
    assert cfg is not None
    path = workdir / f"{name}_{crf}.{cfg.extension}"
    t = time.perf_counter()
    size = anchors.encode(frames, cfg, crf, path, fps=FPS, threads=threads)
    encode_s = time.perf_counter() - t
    t = time.perf_counter()
    decoded = anchors.decode(path, cfg, fps=FPS, threads=threads)
    decode_s = time.perf_counter() - t
    n, w, h = len(frames), frames[0].width, frames[0].height
    return {
        "codec": name,
        "crf": crf,
        "config": cfg.describe("ra", anchors.DEFAULT_KEYINT, threads),
        "bytes": size,
        "bpp": 8 * size / (n * w * h),
        **quality(frames, decoded),
        "encode_s": encode_s,
        "decode_fps": n / decode_s,
    }


def psnr_at(curve: list[dict[str, Any]], bpp: float) -> float | None:
    """An anchor's PSNR at `bpp`, linear in log(bpp) between its points (None outside)."""
    pts = sorted((math.log(p["bpp"]), p["psnr_yuv"]) for p in curve)
    x = math.log(bpp)
    for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
        if x0 <= x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--input", help="a video file (default: nvc's generated natural-looking clip)")
    p.add_argument("--size", default="640x360", help="size of the generated clip (default 640x360)")
    p.add_argument("--frames", type=int, default=100, help="frames (default 100)")
    p.add_argument("--seed", type=int, default=1, help="seed of the generated clip")
    p.add_argument("--point", action="append", help="inr point PRESET:BPP:SECONDS (repeatable)")
    p.add_argument("--epochs", type=int, help="cap the epochs of every inr point")
    p.add_argument("--threads", type=int, default=2, help="torch and anchor threads (default 2)")
    p.add_argument("--quick", action="store_true", help="tiny smoke run: 160x96, 10 frames")
    p.add_argument("--out", default="benchmarks/results/inr_rd.json", help="output JSON")
    args = p.parse_args(argv)
    if args.quick:
        args.size, args.frames = "160x96", min(args.frames, 10)
    args.size = tuple(int(v) for v in args.size.lower().split("x"))
    points = args.point or (QUICK_POINTS if args.quick else DEFAULT_POINTS)
    torch.set_num_threads(args.threads)
    started = time.time()
    load_before = os.getloadavg()
    frames = load_clip(args)
    w, h, n = frames[0].width, frames[0].height, len(frames)
    print(f"clip {w}x{h}, {n} frames", flush=True)
    results: dict[str, Any] = {
        "command": " ".join(
            [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]
        ),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine_info(),
        "versions": versions(),
        "torch_threads": args.threads,
        "clip": {
            "source": args.input or f"nvc.media.synthetic_clip(seed={args.seed})",
            "width": w,
            "height": h,
            "frames": n,
            "fps": str(FPS),
        },
        "anchors": [],
        "inr": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in ("x264", "x265"):
            cfg = anchors.anchor(name)
            assert cfg is not None
            for crf in cfg.crf_points:
                row = run_anchor(frames, name, crf, args.threads, work)
                results["anchors"].append(row)
                print(
                    f"{name} crf {crf}: {row['bpp']:.4f} bpp {row['psnr_yuv']:.2f} dB", flush=True
                )
        for spec in points:
            preset, bpp, seconds = spec.split(":")
            row = run_inr(frames, preset, float(bpp), float(seconds), args.epochs, work)
            x265 = psnr_at([r for r in results["anchors"] if r["codec"] == "x265"], row["bpp"])
            row["x265_psnr_yuv_at_same_bpp"] = x265
            row["gap_to_x265_db"] = None if x265 is None else row["psnr_yuv"] - x265
            results["inr"].append(row)
            print(
                f"inr {preset} target {bpp}: {row['bpp']:.4f} bpp {row['psnr_yuv']:.2f} dB "
                f"(x265 at that rate: {x265 if x265 is None else round(x265, 2)}), encode "
                f"{row['encode_s']:.0f} s, decode {row['decode_fps']:.1f} fps "
                f"({row['decode_fps_1_thread']:.1f} on 1 thread), "
                f"exact {row['decode_matches_encoder_bit_exactly']}",
                flush=True,
            )
    results["wall_s"] = time.time() - started
    results["load_average"] = {"before": load_before, "after": os.getloadavg()}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"wrote {out} ({results['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

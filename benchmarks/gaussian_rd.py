"""Rate-distortion and decoding speed of the gaussian codec (2D mode) against x264 / x265.

    python benchmarks/gaussian_rd.py --quick        # a smoke run (tiny clip, seconds)
    nice -n 10 python benchmarks/gaussian_rd.py --input /work/data/video/cup.mp4 \\
        --size 640x360 --frames 10 --seconds-per-frame 10 --points 1800:32,3600:40,7200:48

Every codec codes the same frames (a user file converted to 8-bit 4:2:0 and centre-cropped
to --size, or nvc's generated clip). Each gaussian point (`gaussians:q`) is one encode
with a whole-encode time budget of --seconds-per-frame x frames (keyframes get 4x a
P-frame's share; group length --group), one torch thread; it writes a real .nvc file
(its size, container included, is the rate), decodes it with a fresh decoder, checks the
frames bit for bit against the encoder's reconstruction and times the whole decoder
(the best of three runs; it renders on one torch thread, see RENDER_THREADS). The
anchors are nvc.bench.anchors.encode_anchor (x264 / x265 preset medium, SEI-free streams,
one thread) at --crfs.

Outputs: benchmarks/results/gaussian_rd.json (everything) and .md (the table: bpp, PSNR,
decode fps, BD-rate against each anchor where the PSNR ranges overlap, and the bit ratio
at equal quality that GSVC's "over 10x HEVC" compares with). PSNR is YUV 6:1:1.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nvc.bench import anchors, bdrate
from nvc.bench.environment import machine_info, versions
from nvc.bitstream import Writer
from nvc.codec.base import StreamInfo
from nvc.codec.gaussian import GaussianConfig, GaussianEncoder
from nvc.codec.pipeline import decode_frames
from nvc.media import Frame, convert, open_video, psnr_yuv, synthetic_clip

FPS = Fraction(25)
ANCHORS = ("x264", "x265")
RESULTS = Path(__file__).resolve().parent / "results"


def load_clip(path: str | None, size: tuple[int, int], frames: int) -> list[Frame]:
    w0, h0 = size
    if not path:
        return synthetic_clip(w0, h0, frames, fps=FPS, format="yuv420p", seed=1)
    out = []
    with open_video(path) as reader:
        for i, frame in enumerate(reader):
            if i >= frames:
                break
            frame = convert(frame, "yuv420p")
            w, h = min(w0, frame.width) // 2 * 2, min(h0, frame.height) // 2 * 2
            x0, y0 = (frame.width - w) // 4 * 2, (frame.height - h) // 4 * 2
            planes = (
                frame.planes[0][y0 : y0 + h, x0 : x0 + w],
                frame.planes[1][y0 // 2 : (y0 + h) // 2, x0 // 2 : (x0 + w) // 2],
                frame.planes[2][y0 // 2 : (y0 + h) // 2, x0 // 2 : (x0 + w) // 2],
            )
            out.append(Frame(tuple(np.ascontiguousarray(p) for p in planes), "yuv420p", i, 1 / FPS))
    return out


def mean_psnr(ref: list[Frame], dist: list[Frame]) -> float:
    return float(np.mean([psnr_yuv(a, b).weighted for a, b in zip(ref, dist, strict=True)]))


def decode_fps(data: bytes, frames: int) -> float:
    """Frames per second of the whole decoder (it renders on RENDER_THREADS threads)."""
    best = float("inf")
    for _ in range(3):  # the best of three runs (the machine is shared)
        start = time.perf_counter()
        n = sum(1 for _ in decode_frames(data))
        best = min(best, time.perf_counter() - start)
    if n != frames:
        raise SystemExit(f"decoded {n} frames, expected {frames}")
    return frames / best


def run_gaussian(
    frames: list[Frame],
    count: int,
    q: int,
    seconds_per_frame: float,
    group: int,
    extra: dict[str, Any],
) -> dict[str, Any]:
    f0 = frames[0]
    stream = StreamInfo(f0.width, f0.height, FPS, "yuv420p", frame_count=len(frames))
    config = GaussianConfig(
        gaussians=count,
        q=q,
        time_budget=seconds_per_frame * len(frames),
        frame_budget=4 * seconds_per_frame,
        group=group,
        **extra,
    )
    start = time.perf_counter()
    cpu = time.process_time()
    encoder = GaussianEncoder(stream, config)
    buf = io.BytesIO()
    recon = []
    with Writer(buf, stream.to_header(4, encoder.codec_params)) as writer:
        for f in frames:
            for unit in encoder.encode(f):
                writer.write(unit)
            recon.append(encoder.last_reconstruction)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    data = buf.getvalue()
    decoded = list(decode_frames(data))
    exact = all(a.equal(b) for a, b in zip(decoded, recon, strict=True))
    n, w, h = len(frames), f0.width, f0.height
    reports = encoder.reports
    return {
        "codec": "gaussian",
        "gaussians": count,
        "q": q,
        "bytes": len(data),
        "bpp": 8 * len(data) / (n * w * h),
        "psnr_yuv": mean_psnr(frames, decoded),
        "decoded_equals_encoder": exact,
        "encode_wall_s": wall,
        "encode_cpu_s": cpu,
        "budget_s": config.time_budget,
        "decode_fps": decode_fps(data, n),
        "frames": [
            {
                "pts": r.pts,
                "base": r.base,
                "bytes": r.bytes,
                "psnr": r.psnr,
                "gated": r.gated,
                "births": r.births,
                "iterations": r.iterations,
                "seconds": r.seconds,
            }
            for r in reports
        ],
    }


def run_anchor(frames: list[Frame], name: str, crf: int) -> dict[str, Any]:
    start = time.perf_counter()
    coded = anchors.encode_anchor(frames, name, crf=crf, fps=FPS, threads=1)
    wall = time.perf_counter() - start
    n, w, h = len(frames), frames[0].width, frames[0].height
    return {
        "codec": name,
        "crf": crf,
        "bytes": len(coded.data),
        "bpp": 8 * len(coded.data) / (n * w * h),
        "psnr_yuv": mean_psnr(frames, coded.frames),
        "encode_and_decode_wall_s": wall,
    }


def bd(anchor: list[dict[str, Any]], test: list[dict[str, Any]]) -> float | None:
    """BD-rate (%) of test against anchor over their overlapping PSNR range, or None."""
    if len(test) < 2 or len(anchor) < 2:
        return None
    aq, tq = [p["psnr_yuv"] for p in anchor], [p["psnr_yuv"] for p in test]
    if bdrate.overlap(aq, tq) <= 0:
        return None
    try:
        return bdrate.bd_rate([p["bpp"] for p in anchor], aq, [p["bpp"] for p in test], tq)
    except Exception:  # noqa: BLE001 - not computable (too few or non-monotonic points)
        return None


def write_markdown(results: dict[str, Any], path: Path) -> None:
    clip = results["clip"]
    lines = [
        f"# gaussian (2D) rate-distortion: {clip['source']}, {clip['width']}x{clip['height']}, "
        f"{clip['frames']} frames",
        "",
        f"Command: `{results['command']}`",
        "",
        f"Machine: {results['machine'].get('cpu', '?')}, load average at start "
        f"{results['load_start']}, at end {results['load_end']} (shared with other jobs).",
        "",
        "| codec | point | bpp | PSNR-YUV dB | encode s | decode fps |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["gaussian"]:
        lines.append(
            f"| gaussian | {row['gaussians']} G, q {row['q']} | {row['bpp']:.4f} | "
            f"{row['psnr_yuv']:.2f} | {row['encode_wall_s']:.0f} | "
            f"{row['decode_fps']:.1f} |"
        )
    for row in results["anchors"]:
        lines.append(
            f"| {row['codec']} | crf {row['crf']} | {row['bpp']:.4f} | {row['psnr_yuv']:.2f} | "
            f"{row['encode_and_decode_wall_s']:.1f} (with decode) | |"
        )
    lines += ["", "| against | BD-rate of gaussian | bits at equal PSNR |", "|---|---|---|"]
    for name, value in results["bd_rate"].items():
        if value is None:
            lines.append(f"| {name} | no overlap of the PSNR ranges | |")
        else:
            lines.append(f"| {name} | {value:+.1f}% | {1 + value / 100:.2f}x |")
    lines += ["", results["note"], ""]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", help="video file (default: nvc's generated clip)")
    ap.add_argument("--size", default="640x360", help="centre crop WxH (default 640x360)")
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--seconds-per-frame", type=float, default=10.0)
    ap.add_argument("--group", type=int, default=20)
    ap.add_argument("--points", default="1800:32,3600:40,7200:48", help="gaussians:q,...")
    ap.add_argument("--crfs", default="22,27,32,37,42")
    ap.add_argument("--options", default="{}", help="other GaussianConfig fields as JSON")
    ap.add_argument("--out", default=str(RESULTS / "gaussian_rd"), help="output path stem")
    ap.add_argument("--quick", action="store_true", help="tiny smoke run (writes to /tmp)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.quick:
        args.size, args.frames, args.seconds_per_frame = "96x64", 3, 0.5
        args.points, args.out = "60:32,120:48", "/tmp/gaussian_rd_quick"
    w, h = (int(v) for v in args.size.lower().split("x"))
    frames = load_clip(args.input, (w, h), args.frames)
    load_start = os.getloadavg()
    rows = []
    for spec in args.points.split(","):
        count, q = (int(v) for v in spec.split(":"))
        extra = json.loads(args.options)
        rows.append(run_gaussian(frames, count, q, args.seconds_per_frame, args.group, extra))
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "frames"}), flush=True)
    anchor_rows = [run_anchor(frames, a, int(c)) for a in ANCHORS for c in args.crfs.split(",")]
    for row in anchor_rows:
        print(json.dumps(row), flush=True)
    results = {
        "command": " ".join(["python", "benchmarks/gaussian_rd.py", *(argv or sys.argv[1:])]),
        "clip": {
            "source": args.input or "nvc.media.synthetic_clip",
            "width": frames[0].width,
            "height": frames[0].height,
            "frames": len(frames),
        },
        "seconds_per_frame": args.seconds_per_frame,
        "group": args.group,
        "options": json.loads(args.options),
        "machine": machine_info(),
        "versions": versions(),
        "load_start": [round(v, 2) for v in load_start],
        "load_end": [round(v, 2) for v in os.getloadavg()],
        "gaussian": rows,
        "anchors": anchor_rows,
        "bd_rate": {a: bd([r for r in anchor_rows if r["codec"] == a], rows) for a in ANCHORS},
        "note": "Rates are whole .nvc files (container included) and SEI-free anchor streams. "
        "Decode fps is the whole decoder (entropy decoding, state update, exact rendering) "
        "on this shared 2-core machine, the best of three runs.",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    write_markdown(results, out.with_suffix(".md"))
    print(out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

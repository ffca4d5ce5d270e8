"""Rate-distortion of the inr codec at fixed CPU budgets, against x264 / x265 medium.

    python benchmarks/inr_rd.py --quick          # a one-minute smoke run
    python benchmarks/inr_rd.py --input /work/data/video/tree.avi --crop 176x144 \\
        --frames 30 --points 1:0.2,1:0.4,10:0.2,10:0.4,60:0.3@8 --baseline 347ead9 --jobs 3

Every codec codes the same frames (the generated natural-looking clip of nvc.media, or a
user file converted to 8-bit 4:2:0, centre-cropped to --crop or to an even size). Each inr
point is one encode with `--time-budget` = budget x frames counted in this process's CPU
seconds (`cpu_seconds`, so the points mean the same on a loaded machine), one torch
thread; the script writes a real .nvc file and reports its actual size, the PSNR of the
frames the decoder produces (checked bit for bit against the encoder's own
reconstruction), the CPU and wall time, the effective training speed (GMAC/s: three times
the decoder's multiply-accumulates per frame, forward and backward, times the frames
trained, per CPU second of the whole encode) and the decoding speed. The anchors
(nvc.bench.anchors.encode_anchor: x264 / x265 preset medium, SEI-free streams) report the
same quantities. `--baseline COMMIT` also encodes with the inr codec of an older commit
(exported with `git archive`, run in a subprocess whose clock is its CPU time, one
thread) at --baseline-points (CPU-s per frame and bpp, like --points). A point written
S:B@N codes only the clip's first N frames (long budgets on a small machine); the anchors
are then run on those N frames as well and its gaps are measured against them. `--jobs J`
runs J encodes at a time, each in its own process with one thread (the budgets are CPU
seconds of that process, so the points mean the same as when run one by one).

Outputs: benchmarks/results/inr_rd.json (everything), .md (one table: PSNR-YUV gap to
x264 / x265 at equal bpp, BD-rate where the curves overlap) and .png (the curves).
PSNR is YUV 6:1:1 (nvc.media.psnr_yuv, mean over frames). The load average is recorded.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nvc.bench import anchors, bdrate
from nvc.bench.environment import machine_info, versions
from nvc.codec.base import StreamInfo
from nvc.codec.inr.codec import InrEncoder, frame_digest
from nvc.codec.pipeline import decode_frames, encode_frames
from nvc.media import Frame, convert, open_video, psnr_rgb, psnr_yuv, synthetic_clip

FPS = Fraction(25)
ANCHORS = ("x264", "x265")

# Run in a subprocess with PYTHONPATH at an older commit's tree: encode the frames of an
# .npz file with that commit's inr codec, the budget counted in CPU seconds, and print
# its reports as JSON. (Older encoders time themselves with time.perf_counter.)
BASELINE_SNIPPET = r"""
import json, sys, time
time.perf_counter = time.process_time
import numpy as np, torch
torch.set_num_threads(1)
from fractions import Fraction
from nvc.codec.base import StreamInfo
from nvc.codec.inr.codec import InrEncoder
from nvc.codec.pipeline import encode_frames
from nvc.media import Frame
src, out, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
z = np.load(src)
n = z["y"].shape[0]
frames = [Frame((z["y"][i], z["u"][i], z["v"][i]), "yuv420p", i, Fraction(1, 25))
          for i in range(n)]
h, w = z["y"].shape[1:]
stream = StreamInfo(w, h, Fraction(25), "yuv420p", False, n)
keep = []
init = InrEncoder.__init__
def hold(self, *a, **k):
    init(self, *a, **k)
    keep.append(self)
InrEncoder.__init__ = hold
began = time.process_time()
report = encode_frames(frames, stream, out, codec="inr", options=options)
cpu = time.process_time() - began
enc = keep[0]
print(json.dumps({"bytes": report.bytes, "bpp": report.bpp, "cpu_s": cpu,
    "psnr_yuv": float(np.average([r.psnr for r in enc.reports],
                                 weights=[r.frames for r in enc.reports])),
    "epochs": [r.epochs for r in enc.reports], "params": enc.plan.params,
    "frames_trained": sum(r.epochs * r.frames for r in enc.reports),
    "macs_per_pixel": enc.plan.macs_per_pixel}))
"""


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
            w, h = args.crop or (frame.width, frame.height)
            w, h = min(w, frame.width) // 2 * 2, min(h, frame.height) // 2 * 2  # even sizes
            x0, y0 = (frame.width - w) // 4 * 2, (frame.height - h) // 4 * 2  # centred
            planes = (
                frame.planes[0][y0 : y0 + h, x0 : x0 + w],
                frame.planes[1][y0 // 2 : (y0 + h) // 2, x0 // 2 : (x0 + w) // 2],
                frame.planes[2][y0 // 2 : (y0 + h) // 2, x0 // 2 : (x0 + w) // 2],
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


def gmacs(macs_per_pixel: float, pixels: int, frames_trained: int, cpu_s: float) -> float:
    """Effective training speed: 3 x decoder MACs (forward + backward) of every frame
    trained (epochs x frames, all groups), per CPU second of the whole encode."""
    return 3.0 * macs_per_pixel * pixels * frames_trained / max(cpu_s, 1e-9) / 1e9


def run_inr(
    frames: list[Frame], preset: str, bpp: float, per_frame: float, workdir: Path
) -> dict[str, Any]:
    first = frames[0]
    n = len(frames)
    stream = StreamInfo(first.width, first.height, FPS, "yuv420p", False, n)
    path = workdir / f"inr_{preset}_{bpp}_{per_frame}_{n}.nvc"
    encoders: list[InrEncoder] = []
    original = InrEncoder.__init__

    def keep(self: InrEncoder, *a: Any, **k: Any) -> None:  # to read the encoder's reports
        original(self, *a, **k)
        encoders.append(self)

    InrEncoder.__init__ = keep  # type: ignore[method-assign]
    budget = per_frame * n
    options: dict[str, Any] = {
        "preset": preset,
        "bpp": bpp,
        "time_budget": budget,
        "cpu_seconds": True,
        "threads": 1,
    }
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        report = encode_frames(frames, stream, path, codec="inr", options=options)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        InrEncoder.__init__ = original  # type: ignore[method-assign]
    enc = encoders[0]
    torch.set_num_threads(1)
    timings = []
    for _ in range(2):  # the second pass is warm (oneDNN kernels built)
        t = time.perf_counter()
        decoded = list(decode_frames(path))
        timings.append(time.perf_counter() - t)
    digests = [d for r in enc.reports for d in r.digests]
    epochs = [r.epochs for r in enc.reports]
    pixels = n * first.width * first.height
    return {
        "codec": "inr",
        "preset": preset,
        "target_bpp": bpp,
        "budget_cpu_s_per_frame": per_frame,
        "frames": n,
        "bytes": report.bytes,
        "bpp": report.bpp,
        "bpp_error": report.bpp / bpp - 1.0,
        **quality(frames, decoded),
        "decode_matches_encoder_bit_exactly": digests == [frame_digest(f) for f in decoded],
        "encode_cpu_s": cpu,
        "encode_wall_s": wall,
        "cpu_within_budget": cpu <= 1.05 * budget,
        "gmac_per_s": gmacs(
            enc.plan.macs_per_pixel,
            pixels // n,
            sum(r.epochs * r.frames for r in enc.reports),
            cpu,
        ),
        "decode_fps_1_thread": n / timings[1],
        "groups": len(enc.reports),
        "epochs": epochs,
        "params": enc.plan.params,
        "macs_per_pixel": enc.plan.macs_per_pixel,
        "batch": enc.plan.batch,
        "lr": enc.plan.lr,
        "model": {k: v for k, v in vars(enc.model).items()},
    }


def prepare_baseline(frames: list[Frame], commit: str, workdir: Path) -> None:
    """The tree of `commit` (its nvc package) and the clip's frames, for run_baseline."""
    tree = workdir / f"base_{commit}"
    if not tree.exists():
        tree.mkdir()
        archive = subprocess.run(
            ["git", "archive", commit, "nvc"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    npz = workdir / f"clip_{len(frames)}.npz"
    if not npz.exists():
        np.savez(
            npz,
            y=np.stack([f.planes[0] for f in frames]),
            u=np.stack([f.planes[1] for f in frames]),
            v=np.stack([f.planes[2] for f in frames]),
        )


def run_baseline(
    frames: list[Frame], commit: str, bpp: float, per_frame: float, workdir: Path
) -> dict[str, Any]:
    """The inr codec of `commit`, in a subprocess, at the same CPU budget and bpp target
    (prepare_baseline first)."""
    tree = workdir / f"base_{commit}"
    n = len(frames)
    options = {"preset": "quality", "bpp": bpp, "time_budget": per_frame * n}
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    out = workdir / f"base_{bpp}_{per_frame}_{n}.nvc"
    wall = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", BASELINE_SNIPPET, str(workdir / f"clip_{n}.npz"), str(out)]
        + [json.dumps(options)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=workdir,
    )
    row = json.loads(done.stdout.strip().splitlines()[-1])
    cpu = row.pop("cpu_s")
    pixels = frames[0].width * frames[0].height
    return {
        "codec": f"inr@{commit}",
        "preset": "quality",
        "target_bpp": bpp,
        "budget_cpu_s_per_frame": per_frame,
        "frames": n,
        **row,
        "bpp_error": row["bpp"] / bpp - 1.0,
        "encode_cpu_s": cpu,
        "encode_wall_s": time.perf_counter() - wall,
        "cpu_within_budget": cpu <= 1.05 * per_frame * n,
        "gmac_per_s": gmacs(row["macs_per_pixel"], pixels, row["frames_trained"], cpu),
    }


def run_anchor(frames: list[Frame], name: str, crf: int) -> dict[str, Any]:
    t = time.process_time()
    coded = anchors.encode_anchor(frames, name, crf=crf, fps=FPS, threads=1)
    cpu = time.process_time() - t
    n, w, h = len(frames), frames[0].width, frames[0].height
    return {
        "codec": name,
        "crf": crf,
        "preset": "medium",
        "frames": n,
        "bytes": len(coded.data),
        "bpp": 8 * len(coded.data) / (n * w * h),
        **quality(frames, coded.frames),
        "encode_and_decode_cpu_s": cpu,
    }


def psnr_at(curve: list[dict[str, Any]], bpp: float) -> float | None:
    """An anchor's PSNR at `bpp`, linear in log(bpp) between its points (None outside)."""
    pts = sorted((math.log(p["bpp"]), p["psnr_yuv"]) for p in curve)
    x = math.log(bpp)
    for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
        if x0 <= x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return None


def bd_rate_or_none(anchor: list[dict[str, Any]], test: list[dict[str, Any]]) -> float | None:
    """BD-rate (%) of test against anchor where their PSNR ranges overlap (None if not)."""
    if len(test) < 2:
        return None
    aq, tq = [p["psnr_yuv"] for p in anchor], [p["psnr_yuv"] for p in test]
    lo, hi = max(min(aq), min(tq)), min(max(aq), max(tq))
    if hi <= lo:
        return None
    try:
        return bdrate.bd_rate([p["bpp"] for p in anchor], aq, [p["bpp"] for p in test], tq)
    except Exception:  # noqa: BLE001 - not computable (too few or non-monotonic points)
        return None


def _anchor_curves(results: dict[str, Any], frames: int) -> dict[str, list[dict[str, Any]]]:
    """Each anchor's points on the clip's first `frames` frames."""
    return {
        a: [r for r in results["anchors"] if r["codec"] == a and r["frames"] == frames]
        for a in ANCHORS
    }


def _baseline_of(results: dict[str, Any], row: dict[str, Any]) -> dict[str, Any] | None:
    """The baseline row at the same budget, target and frames as an inr row (or None)."""
    for b in results["inr"]:
        if (
            b["codec"] != "inr"
            and row["codec"] == "inr"
            and (b["budget_cpu_s_per_frame"], b["target_bpp"], b["frames"])
            == (row["budget_cpu_s_per_frame"], row["target_bpp"], row["frames"])
        ):
            return b
    return None


def write_report(results: dict[str, Any], out: Path) -> None:
    """The .md table and the .png plot next to the JSON."""
    curves: dict[str, list[dict[str, Any]]] = {}
    for row in results["inr"]:
        key = f"{row['codec']} {row['budget_cpu_s_per_frame']:g} CPU-s/frame, {row['frames']} f"
        curves.setdefault(key, []).append(row)
    lines = [
        f"# inr rate-distortion: {results['clip']['source']}, {results['clip']['width']}x"
        f"{results['clip']['height']}, {results['clip']['frames']} frames",
        "",
        f"Command: `{results['command']}`. {results['note']}",
        "",
        "| codec | budget | frames | target bpp | bpp | PSNR-YUV | x264 at that bpp | gap | "
        "x265 at that bpp | gap | vs baseline (its bpp) | CPU-s | GMAC/s | exact |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def fmt(v: float | None, digits: int = 2) -> str:
        return "-" if v is None else f"{v:.{digits}f}"

    for rows in curves.values():
        for r in sorted(rows, key=lambda r: r["bpp"]):
            anchor_curves = _anchor_curves(results, r["frames"])
            at = {a: psnr_at(anchor_curves[a], r["bpp"]) for a in ANCHORS}
            gap = {a: None if at[a] is None else r["psnr_yuv"] - at[a] for a in ANCHORS}
            base = _baseline_of(results, r)
            vs = (
                "-"
                if base is None
                else f"{r['psnr_yuv'] - base['psnr_yuv']:+.2f} dB ({base['bpp']:.3f})"
            )
            lines.append(
                f"| {r['codec']} {r['preset']} | {r['budget_cpu_s_per_frame']:g} CPU-s/f | "
                f"{r['frames']} | {r['target_bpp']:g} | {r['bpp']:.4f} | {r['psnr_yuv']:.2f} | "
                f"{fmt(at['x264'])} | {fmt(gap['x264'])} | "
                f"{fmt(at['x265'])} | {fmt(gap['x265'])} | {vs} | "
                f"{r['encode_cpu_s']:.0f} | {fmt(r.get('gmac_per_s'))} | "
                f"{r.get('decode_matches_encoder_bit_exactly', '-')} |"
            )
    lines += ["", "| curve | BD-rate vs x264 | BD-rate vs x265 |", "|---|---|---|"]
    for key, rows in curves.items():
        anchor_curves = _anchor_curves(results, rows[0]["frames"])
        bd = {a: bd_rate_or_none(anchor_curves[a], rows) for a in ANCHORS}
        lines.append(
            f"| {key} | {fmt(bd['x264'], 1)}{'%' if bd['x264'] is not None else ''} | "
            f"{fmt(bd['x265'], 1)}{'%' if bd['x265'] is not None else ''} |"
        )
    lines += ["", "| anchor | frames | crf | bpp | PSNR-YUV |", "|---|---|---|---|---|"]
    lines += [
        f"| {r['codec']} medium | {r['frames']} | {r['crf']} | {r['bpp']:.4f} | "
        f"{r['psnr_yuv']:.2f} |"
        for r in results["anchors"]
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(8, 5.5))
    counts = sorted({r["frames"] for r in results["anchors"]}, reverse=True)
    for n in counts:
        for name, rows in _anchor_curves(results, n).items():
            pts = sorted((r["bpp"], r["psnr_yuv"]) for r in rows)
            style = "o-" if n == results["clip"]["frames"] else "o--"
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=f"{name} medium, {n} f")
    for name, rows in curves.items():
        pts = sorted((r["bpp"], r["psnr_yuv"]) for r in rows)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "s-", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("bpp")
    ax.set_ylabel("PSNR-YUV (dB)")
    ax.set_title(
        f"{Path(results['clip']['source']).name} {results['clip']['width']}x"
        f"{results['clip']['height']}, {results['clip']['frames']} frames"
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=110)


def _points(text: str, frames: int) -> list[tuple[float, float, int]]:
    """CPU_S:BPP[@FRAMES], comma-separated -> (CPU-s per frame, bpp, frames)."""
    out = []
    for item in text.split(","):
        point, _, count = item.partition("@")
        a, b = point.split(":")
        out.append((float(a), float(b), min(int(count), frames) if count else frames))
    return out


def _job(
    who: str, preset: str, frames: list[Frame], bpp: float, per_frame: float, work: Path
) -> dict[str, Any]:
    """One encode (in a worker process when --jobs > 1): one torch thread."""
    torch.set_num_threads(1)
    if who == "new":
        return run_inr(frames, preset, bpp, per_frame, work)
    return run_baseline(frames, who, bpp, per_frame, work)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--input", help="a video file (default: nvc's generated natural-looking clip)")
    p.add_argument("--crop", help="centre crop WxH of --input (default: the whole picture)")
    p.add_argument("--size", default="176x144", help="size of the generated clip")
    p.add_argument("--frames", type=int, default=30, help="frames (default 30)")
    p.add_argument("--seed", type=int, default=1, help="seed of the generated clip")
    p.add_argument("--preset", default="quality", help="inr preset (default quality)")
    p.add_argument(
        "--points",
        default="1:0.2,1:0.4,1:0.8,10:0.2,10:0.4",
        help="inr points CPU_S_PER_FRAME:BPP[@FRAMES], comma-separated",
    )
    p.add_argument("--baseline", help="a commit whose inr (preset quality) is run as well")
    p.add_argument(
        "--baseline-points", default="1:0.2,10:0.2,10:0.4", help="its points, as --points"
    )
    p.add_argument("--jobs", type=int, default=1, help="encodes at a time (processes)")
    p.add_argument("--note", default="", help="a sentence on the machine's state for the report")
    p.add_argument("--quick", action="store_true", help="tiny smoke run: 64x48, 4 frames")
    p.add_argument("--out", default="benchmarks/results/inr_rd.json", help="output JSON")
    args = p.parse_args(argv)
    if args.quick:
        args.input, args.size, args.frames = None, "64x48", 4
        args.points, args.baseline_points = "0.5:4,0.5:8,0.5:8@2", "0.5:4"
    args.size = tuple(int(v) for v in args.size.lower().split("x"))
    args.crop = tuple(int(v) for v in args.crop.lower().split("x")) if args.crop else None

    torch.set_num_threads(1)
    started = time.time()
    load_before = os.getloadavg()
    frames = load_clip(args)
    w, h, n = frames[0].width, frames[0].height, len(frames)
    print(f"clip {w}x{h}, {n} frames", flush=True)
    results: dict[str, Any] = {
        "command": " ".join(
            [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]
        ),
        "note": args.note,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine_info(),
        "versions": versions(),
        "torch_threads": 1,
        "jobs": args.jobs,
        "clip": {
            "source": args.input or f"nvc.media.synthetic_clip(seed={args.seed})",
            "crop": args.crop,
            "width": w,
            "height": h,
            "frames": n,
            "fps": str(FPS),
        },
        "anchors": [],
        "inr": [],
    }
    out = Path(args.out)
    jobs = [("new", s, b, c) for s, b, c in _points(args.points, n)]
    if args.baseline:
        jobs += [(args.baseline, s, b, c) for s, b, c in _points(args.baseline_points, n)]
    # one at a time: the short budgets first, and at each budget the (capped, quick)
    # baseline first, for partial results early; in parallel: the longest first, so the
    # run ends soonest
    jobs.sort(key=lambda j: (j[1] * j[3], j[0] == "new"), reverse=args.jobs > 1)

    def save() -> None:
        results["wall_s"] = time.time() - started
        results["load_average"] = {"before": load_before, "after": os.getloadavg()}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2, default=str) + "\n")
        write_report(results, out)

    def record(row: dict[str, Any]) -> None:
        curves = {a: c for a, c in _anchor_curves(results, row["frames"]).items()}
        for a in ANCHORS:
            at = psnr_at(curves[a], row["bpp"])
            row[f"{a}_psnr_yuv_at_same_bpp"] = at
            row[f"gap_to_{a}_db"] = None if at is None else row["psnr_yuv"] - at
        results["inr"].append(row)
        print(
            f"{row['codec']} {row['budget_cpu_s_per_frame']:g} CPU-s/frame x {row['frames']}, "
            f"target {row['target_bpp']}: {row['bpp']:.4f} bpp {row['psnr_yuv']:.2f} dB "
            f"(gap to x264 {row['gap_to_x264_db']}), {row['encode_cpu_s']:.0f} CPU-s, "
            f"{row.get('gmac_per_s') or 0:.2f} GMAC/s",
            flush=True,
        )
        save()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for count in sorted({j[3] for j in jobs} | {n}, reverse=True):
            for name in ANCHORS:
                cfg = anchors.anchor(name)
                if cfg is None:
                    continue
                for crf in cfg.crf_points:
                    row = run_anchor(frames[:count], name, crf)
                    results["anchors"].append(row)
                    print(
                        f"{name} crf {crf} ({count} f): {row['bpp']:.4f} bpp "
                        f"{row['psnr_yuv']:.2f} dB",
                        flush=True,
                    )
            if args.baseline and any(j[0] != "new" and j[3] == count for j in jobs):
                prepare_baseline(frames[:count], args.baseline, work)
        calls = [(who, args.preset, frames[:c], b, s, work) for who, s, b, c in jobs]
        if args.jobs <= 1:
            for call in calls:
                record(_job(*call))
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
                for future in as_completed([pool.submit(_job, *call) for call in calls]):
                    record(future.result())
    print(f"wrote {out} ({results.get('wall_s', 0):.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

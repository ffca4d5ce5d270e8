"""Rate-distortion and speed of the fm codec against x264 and x265, in one run.

    python benchmarks/fm_rd.py --images /work/data/photos_test --size 640x360 --frames 16

Content: natural photographs the model never saw in training, animated into clips with
camera motion and moving layers (nvc.codec.conditional.data.ImageAnimator, fixed seeds), plus
optionally nvc.media.synthetic_clip. Every codec gets the same 8-bit 4:2:0 frames.

- fm: the shipped `realtime` weights (or --weights), one .nvc file per q through the real
  pipeline (container bytes counted), decoded from the file by a fresh decoder; the decoded
  frames are checked against the encoder's reconstructions.
- x264 / x265 through PyAV (nvc.bench.anchors): preset medium, CRF points, low delay
  (no B-frames) to match fm's causal structure, and random access (the presets' B-frames);
  keyint = the clip length, so one intra frame each, like fm here. Raw elementary streams.
- BD-rate of fm against each anchor (pchip, nvc.bench.bdrate) on PSNR-YUV (6:1:1) and
  PSNR-RGB; the PSNR range of fm between q = 0 and q = 63; encode/decode speed.

Results: benchmarks/results/fm_rd.json and fm_rd.md next to it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nvc.bench import anchors, bdrate
from nvc.bench.environment import git_info, machine_info, versions
from nvc.codec.base import StreamInfo
from nvc.codec.conditional import weights as wt
from nvc.codec.conditional.codec import FmConfig, FmEncoder
from nvc.codec.conditional.data import ImageAnimator
from nvc.codec.pipeline import decode_frames, encode_frames
from nvc.media import Frame, YuvPsnr, mean_psnr, psnr_rgb, psnr_yuv, rgb_to_yuv, synthetic_clip

FPS = Fraction(25)
# The anchors' CRF points, extended at the low end so that their curves reach down to
# the (lower) qualities of a small CPU-trained model and BD-rates have an overlap.
CRF_POINTS = {"x264": (18, 23, 28, 33, 38, 43, 48, 51), "x265": (17, 22, 27, 32, 37, 42, 47, 51)}


def _clips(args: argparse.Namespace) -> list[tuple[str, list[Frame]]]:
    w, h = args.size
    out: list[tuple[str, list[Frame]]] = []
    if args.images:
        animator = ImageAnimator([args.images], max_side=1600)
        for i in range(args.clips):
            rng = np.random.default_rng(1000 + i)
            pics = animator.animate(rng, args.frames, w, h)
            frames = [
                Frame(rgb_to_yuv(p, "yuv420p"), "yuv420p", t, 1 / FPS) for t, p in enumerate(pics)
            ]
            out.append((f"photo-{i}", frames))
    if args.synthetic:
        out.append(("synthetic", synthetic_clip(w, h, args.frames, seed=1)))
    return out


def _quality(ref: list[Frame], dec: list[Frame]) -> dict[str, float]:
    yuv = YuvPsnr.mean([psnr_yuv(a, b) for a, b in zip(ref, dec, strict=True)])
    rgb = mean_psnr(psnr_rgb(a, b) for a, b in zip(ref, dec, strict=True))
    return {"psnr_yuv": yuv.weighted, "psnr_y": yuv.y, "psnr_rgb": rgb}


def _bpp(nbytes: int, frames: list[Frame]) -> float:
    return 8.0 * nbytes / (len(frames) * frames[0].width * frames[0].height)


def run_fm(frames: list[Frame], q: int, weights: str | None, tmp: Path) -> dict[str, Any]:
    f0 = frames[0]
    stream = StreamInfo(f0.width, f0.height, FPS, f0.format, False, len(frames))
    options: dict[str, Any] = {"q": q}
    if weights:
        options["weights"] = weights
    path = tmp / f"fm-{q}.nvc"
    t0 = time.perf_counter()
    report = encode_frames(frames, stream, path, codec="fm", options=options)
    enc_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    decoded = list(decode_frames(path))
    dec_s = time.perf_counter() - t0
    # the encoder's reconstructions, from a second (deterministic) encoder
    enc = FmEncoder(stream, FmConfig(**options))
    exact = True
    for f, d in zip(frames, decoded, strict=True):
        enc.encode(f)
        assert enc.last_reconstruction is not None
        exact = exact and enc.last_reconstruction.equal(d)
    return {
        "point": f"q={q}",
        "q": q,
        "bytes": report.bytes,
        "bpp": _bpp(report.bytes, frames),
        **_quality(frames, decoded),
        "encode_fps": len(frames) / enc_s,
        "decode_fps": len(frames) / dec_s,
        "decoded_equals_reconstruction": exact,
    }


def run_anchor(
    frames: list[Frame], name: str, crf: int, gop: str, tmp: Path, threads: int
) -> dict[str, Any]:
    cfg = anchors.ANCHORS[name]
    path = tmp / f"{name}-{gop}-{crf}.{cfg.extension}"
    keyint = len(frames)
    t0 = time.perf_counter()
    size = anchors.encode(frames, cfg, crf, path, fps=FPS, gop=gop, keyint=keyint, threads=threads)
    enc_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    decoded = anchors.decode(path, cfg, fps=FPS, threads=threads)
    dec_s = time.perf_counter() - t0
    return {
        "point": f"crf={crf}",
        "crf": crf,
        "bytes": size,
        "bpp": _bpp(size, frames),
        **_quality(frames, decoded[: len(frames)]),
        "encode_fps": len(frames) / enc_s,
        "decode_fps": len(frames) / dec_s,
    }


def _bd(anchor: list[dict[str, Any]], test: list[dict[str, Any]], metric: str) -> float | None:
    try:
        return bdrate.bd_rate(
            [p["bpp"] for p in anchor],
            [p[metric] for p in anchor],
            [p["bpp"] for p in test],
            [p[metric] for p in test],
        )
    except Exception:  # no overlap of the quality ranges
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", help="folder of held-out photographs to animate")
    ap.add_argument("--clips", type=int, default=2, help="animated clips (default 2)")
    ap.add_argument("--synthetic", action="store_true", help="add nvc's synthetic clip")
    ap.add_argument("--size", default="640x360", help="WxH (default 640x360)")
    ap.add_argument("--frames", type=int, default=16, help="frames per clip (default 16)")
    ap.add_argument("--q", default="0,12,24,36,48,63", help="fm q points")
    ap.add_argument("--weights", help="fm weights file (default: the shipped ones)")
    ap.add_argument("--threads", type=int, default=1, help="torch and anchor threads")
    ap.add_argument("--out", default="benchmarks/results/fm_rd.json")
    args = ap.parse_args(argv)
    args.size = tuple(int(v) for v in args.size.lower().split("x"))
    torch.set_num_threads(args.threads)
    qs = [int(v) for v in args.q.split(",")]
    model = wt.load_weights(args.weights) if args.weights else wt.default_model("realtime")
    wt.register(model)  # the decoder finds the weights by their hash
    info = wt.load_info(args.weights or wt.shipped_path("realtime"))
    results: dict[str, Any] = {
        "command": " ".join(["python", "benchmarks/fm_rd.py", *(argv or sys.argv[1:])]),
        "finished": None,
        "machine": machine_info(),
        "versions": versions(),
        "git": git_info(),
        "model": {
            "variant": model.config.variant,
            "weights_sha256_16": wt.short_hash(model).hex(),
            "parameters": wt.parameter_count(model),
            "training": info,
        },
        "protocol": {
            "size": list(args.size),
            "frames": args.frames,
            "fps": str(FPS),
            "format": "yuv420p",
            "fm": "intra period 128 (one intra frame per clip), refresh 32, q points " + args.q,
            "anchors": f"preset medium, CRF points {CRF_POINTS}, keyint = clip length, "
            "ld: bframes=0, ra: preset B-frames; raw elementary streams",
            "threads": args.threads,
            "note": "quick CPU run on held-out natural photographs animated into clips; "
            "not a UVG result",
        },
        "sequences": {},
    }
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for name, frames in _clips(args):
            print(f"{name}: {len(frames)} frames {frames[0].width}x{frames[0].height}", flush=True)
            seq: dict[str, Any] = {
                "fm": [],
                "x264-ld": [],
                "x265-ld": [],
                "x264-ra": [],
                "x265-ra": [],
            }
            for q in qs:
                p = run_fm(frames, q, args.weights, tmp)
                print(
                    f"  fm {p['point']}: {p['bpp']:.4f} bpp {p['psnr_yuv']:.2f} dB "
                    f"enc {p['encode_fps']:.1f} fps dec {p['decode_fps']:.1f} fps",
                    flush=True,
                )
                seq["fm"].append(p)
            for anchor in ("x264", "x265"):
                for gop in ("ld", "ra"):
                    for crf in CRF_POINTS[anchor]:
                        p = run_anchor(frames, anchor, crf, gop, tmp, args.threads)
                        seq[f"{anchor}-{gop}"].append(p)
                    best = seq[f"{anchor}-{gop}"]
                    print(
                        f"  {anchor}-{gop}: "
                        + ", ".join(f"{p['bpp']:.3f}/{p['psnr_yuv']:.1f}" for p in best),
                        flush=True,
                    )
            fm_pts = sorted(seq["fm"], key=lambda p: p["bpp"])
            seq["bd_rate_percent"] = {
                f"fm vs {k}": {
                    m: _bd(sorted(seq[k], key=lambda p: p["bpp"]), fm_pts, m)
                    for m in ("psnr_yuv", "psnr_rgb")
                }
                for k in ("x264-ld", "x265-ld", "x264-ra", "x265-ra")
            }
            by_q = {p["q"]: p for p in seq["fm"]}
            if 0 in by_q and 63 in by_q:
                seq["fm_psnr_range_db"] = by_q[63]["psnr_yuv"] - by_q[0]["psnr_yuv"]
            results["sequences"][name] = seq
            print(f"  BD-rate: {json.dumps(seq['bd_rate_percent'])}", flush=True)
    seqs = results["sequences"].values()
    ranges = [s["fm_psnr_range_db"] for s in seqs if "fm_psnr_range_db" in s]
    summary: dict[str, Any] = {"fm_psnr_range_db_mean": float(np.mean(ranges)) if ranges else None}
    for k in ("x264-ld", "x265-ld", "x264-ra", "x265-ra"):
        vals = [s["bd_rate_percent"][f"fm vs {k}"]["psnr_yuv"] for s in seqs]
        vals = [v for v in vals if v is not None]
        summary[f"bd_rate_fm_vs_{k}_psnr_yuv_mean"] = float(np.mean(vals)) if vals else None
    fm_all = [p for s in seqs for p in s["fm"]]
    summary["fm_encode_fps_median"] = float(np.median([p["encode_fps"] for p in fm_all]))
    summary["fm_decode_fps_median"] = float(np.median([p["decode_fps"] for p in fm_all]))
    summary["fm_all_decodes_exact"] = all(p["decoded_equals_reconstruction"] for p in fm_all)
    results["summary"] = summary
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    out.with_suffix(".md").write_text(_markdown(results))
    print(json.dumps(summary, indent=2))
    return 0


def _fmt(v: float | None, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def _markdown(results: dict[str, Any]) -> str:
    """A short human-readable version of the results."""
    m = results["model"]
    lines = [
        "# fm rate-distortion and speed against x264 / x265",
        "",
        f"> {results['protocol']['note']}",
        "",
        f"- Command: `{results['command']}`",
        f"- Finished: {results['finished']}; machine: {results['machine'].get('cpu', '')}",
        f"- Model: fm-{m['variant']} {m['weights_sha256_16']}, {m['parameters']} parameters",
        f"- Protocol: {json.dumps(results['protocol'])}",
        "",
        "## Summary",
        "",
    ]
    for k, v in results["summary"].items():
        lines.append(f"- {k}: {v if not isinstance(v, float) else format(v, '.2f')}")
    for name, seq in results["sequences"].items():
        lines += ["", f"## {name}", "", "| codec | point | bpp | PSNR-YUV | PSNR-RGB | enc fps |"]
        lines.append("|---|---|---|---|---|---|")
        for codec in ("fm", "x264-ld", "x265-ld", "x264-ra", "x265-ra"):
            for p in seq[codec]:
                lines.append(
                    f"| {codec} | {p['point']} | {p['bpp']:.4f} | {p['psnr_yuv']:.2f} | "
                    f"{p['psnr_rgb']:.2f} | {p['encode_fps']:.1f} |"
                )
        lines.append("")
        for k, v in seq["bd_rate_percent"].items():
            lines.append(
                f"- BD-rate {k}: PSNR-YUV {_fmt(v['psnr_yuv'], '+.1f')}%, "
                f"PSNR-RGB {_fmt(v['psnr_rgb'], '+.1f')}%"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())

"""Rate-distortion and speed of the fm codec against x264 and x265 on real clips, in one run.

    python benchmarks/fm_rd.py --video /work/data/video/cup.mp4 \
        --video /work/data/video/vtest.avi@600- --video /work/data/video/tree.avi \
        --frames 8 --model fm-realtime=shipped:realtime --model fm-realtime2=shipped:realtime2

Content: real camera clips the models never trained on (FILE or FILE@FIRST-LAST, a frame
span; the fm training holds out cup.mp4, vtest.avi from frame 600 on and tree.avi, see
training/fm/README.md), the first `--frames` frames of each span, 8-bit 4:2:0; clips are
already compressed (their own artefacts are part of the source). Every codec gets the
same frames.

- fm: each `--model NAME=WEIGHTS` (a weights file, or shipped:VARIANT), one .nvc file per
  q through the real bitstream writer (container bytes counted), decoded from the file
  by a fresh decoder; the decoded frames are compared with the encoder's reconstructions.
- x264 / x265 through PyAV (nvc.bench.anchors): preset medium, CRF points, low delay
  (no B-frames) to match fm's causal structure, and random access (the presets'
  B-frames); keyint = the clip length, so one intra frame each, like fm here. Raw
  elementary streams without their informational SEI (anchors.py strips it).
- BD-rate of each fm model against each anchor (pchip, nvc.bench.bdrate) on PSNR-YUV
  (6:1:1) and PSNR-RGB; the PSNR-YUV at q = 63 and the range q = 0 .. 63; the capacity
  check (unquantized autoencoder PSNR-YUV, capacity.py) on the clips' first frames; speed
  of every model at 640x360 (a centre crop of the first clip): medians over the inter
  frames, with and without the encoder's search, and whole-pass fps.

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
from nvc.bitstream import Writer
from nvc.codec import registry
from nvc.codec.base import StreamInfo
from nvc.codec.conditional import weights as wt
from nvc.codec.conditional.capacity import capacity
from nvc.codec.conditional.data import parse_span
from nvc.codec.conditional.model import FMModel
from nvc.codec.pipeline import decode_frames
from nvc.media import Frame, YuvPsnr, convert, mean_psnr, open_video, psnr_rgb, psnr_yuv

FPS = Fraction(25)
# The anchors' CRF points, wide enough that their curves overlap fm's from q = 0 to 63.
CRF_POINTS = {"x264": (15, 19, 23, 28, 33, 38, 43, 48), "x265": (15, 19, 23, 28, 33, 38, 43, 48)}
SPEED_SIZE = (640, 360)
ANCHOR_KEYS = ("x264-ld", "x265-ld", "x264-ra", "x265-ra")


def read_clip(item: str, frames: int) -> list[Frame]:
    """The first `frames` frames of FILE[@FIRST-LAST] as 8-bit 4:2:0, pts from 0."""
    path, start, stop = parse_span(item)
    out: list[Frame] = []
    with open_video(path) as reader:
        for i, f in enumerate(reader):
            if (stop is not None and i >= stop) or len(out) == frames:
                break
            if i < start:
                continue
            f = f if f.format == "yuv420p" else convert(f, "yuv420p", full_range=False)
            out.append(Frame(f.planes, "yuv420p", len(out), 1 / FPS, f.full_range))
    if not out:
        raise SystemExit(f"{item}: no frames")
    return out


def speed_clip(frames: list[Frame]) -> list[Frame]:
    """640x360 frames from a clip: a centre crop (the clip must be at least that large)."""
    w, h = SPEED_SIZE
    out = []
    for f in frames:
        if f.width < w or f.height < h:
            raise SystemExit(f"the first clip is {f.width}x{f.height}, smaller than {w}x{h}")
        x0, y0 = (f.width - w) // 4 * 2, (f.height - h) // 4 * 2
        y, u, v = f.planes
        planes = (
            np.ascontiguousarray(y[y0 : y0 + h, x0 : x0 + w]),
            np.ascontiguousarray(u[y0 // 2 : (y0 + h) // 2, x0 // 2 : (x0 + w) // 2]),
            np.ascontiguousarray(v[y0 // 2 : (y0 + h) // 2, x0 // 2 : (x0 + w) // 2]),
        )
        out.append(Frame(planes, "yuv420p", f.pts, f.time_base, f.full_range))
    return out


def load_model(spec: str) -> tuple[FMModel, str, dict[str, Any]]:
    """WEIGHTS or shipped:VARIANT -> (model, weights path, its info)."""
    path = wt.shipped_path(spec.split(":", 1)[1]) if spec.startswith("shipped:") else Path(spec)
    model = wt.load_weights(path)
    wt.register(model)  # the decoder finds the weights by their hash
    return model, str(path), wt.load_info(path)


def _quality(ref: list[Frame], dec: list[Frame]) -> dict[str, float]:
    yuv = YuvPsnr.mean([psnr_yuv(a, b) for a, b in zip(ref, dec, strict=True)])
    rgb = mean_psnr(psnr_rgb(a, b) for a, b in zip(ref, dec, strict=True))
    return {"psnr_yuv": yuv.weighted, "psnr_y": yuv.y, "psnr_rgb": rgb}


def _bpp(nbytes: int, frames: list[Frame]) -> float:
    return 8.0 * nbytes / (len(frames) * frames[0].width * frames[0].height)


def run_fm(
    frames: list[Frame], q: int, weights: str, tmp: Path, search: bool = True
) -> dict[str, Any]:
    """Encode with fm at q into a .nvc file, decode it with a fresh decoder, compare."""
    f0 = frames[0]
    stream = StreamInfo(f0.width, f0.height, FPS, f0.format, False, len(frames))
    spec = registry.get("fm")
    path = tmp / f"fm-{q}.nvc"
    recon: list[Frame] = []
    t0 = time.perf_counter()
    encoder = spec.create_encoder(stream, {"q": q, "weights": weights, "search": search})
    with Writer(path, stream.to_header(spec.id, encoder.codec_params)) as writer:
        for f in frames:
            for unit in encoder.encode(f):
                writer.write(unit)
            recon.append(encoder.last_reconstruction)  # type: ignore[attr-defined]
    enc_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    decoded = list(decode_frames(path))
    dec_s = time.perf_counter() - t0
    exact = len(decoded) == len(recon) and all(
        a.equal(b) for a, b in zip(decoded, recon, strict=True)
    )
    size = path.stat().st_size
    return {
        "point": f"q={q}",
        "q": q,
        "bytes": size,
        "bpp": _bpp(size, frames),
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


def q_ladder(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each step between neighbouring q points: the bits it costs and the PSNR-YUV it buys
    (a saturated quality knob shows as steps whose dB per doubling of the bits collapses)."""
    by_q = sorted(points, key=lambda p: p["q"])
    steps = []
    for a, b in zip(by_q, by_q[1:], strict=False):
        ratio = b["bpp"] / a["bpp"]
        gain = b["psnr_yuv"] - a["psnr_yuv"]
        steps.append(
            {
                "q": [a["q"], b["q"]],
                "bits_ratio": ratio,
                "psnr_yuv_gain_db": gain,
                "db_per_bit_doubling": gain / np.log2(ratio) if ratio > 1 else None,
            }
        )
    return steps


def _frame_times(
    frames: list[Frame], q: int, weights: str, tmp: Path, search: bool
) -> tuple[list[float], list[float], float]:
    """Seconds of every frame's encode and decode (the decoder reads the .nvc file) and of
    creating the encoder (weights, tables)."""
    f0 = frames[0]
    stream = StreamInfo(f0.width, f0.height, FPS, f0.format, False, len(frames))
    spec = registry.get("fm")
    path = tmp / f"speed-{q}-{int(search)}.nvc"
    t0 = time.perf_counter()
    encoder = spec.create_encoder(stream, {"q": q, "weights": weights, "search": search})
    setup = time.perf_counter() - t0
    enc: list[float] = []
    with Writer(path, stream.to_header(spec.id, encoder.codec_params)) as writer:
        for f in frames:
            t0 = time.perf_counter()
            units = encoder.encode(f)
            enc.append(time.perf_counter() - t0)
            for unit in units:
                writer.write(unit)
    dec: list[float] = []
    decoded = iter(decode_frames(path))
    while True:
        t0 = time.perf_counter()
        if next(decoded, None) is None:
            break
        dec.append(time.perf_counter() - t0)
    return enc, dec, setup


def _speed(model_path: str, frames: list[Frame], tmp: Path) -> dict[str, float]:
    """Encode and decode fps at 640x360 (q = 40, the default), one thread, with the
    encoder's RD search (the file default) and without it (`--fast`, what `nvc live` does):
    the median over the inter frames (steady state: the first frame is intra, and the first
    decoded frame also pays for opening the file and the model), and frames / seconds of
    the whole pass including the encoder's setup."""
    out: dict[str, float] = {"frames": len(frames)}
    for search, tag in ((True, ""), (False, "_no_search")):
        enc, dec, setup = _frame_times(frames, 40, model_path, tmp, search)
        out[f"encode_fps{tag}"] = 1.0 / float(np.median(enc[1:]))
        out[f"decode_fps{tag}"] = 1.0 / float(np.median(dec[1:]))
        out[f"encode_fps_whole_pass{tag}"] = len(enc) / (setup + sum(enc))
        out[f"decode_fps_whole_pass{tag}"] = len(dec) / sum(dec)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--video", action="append", required=True, help="FILE or FILE@FIRST-LAST")
    ap.add_argument("--frames", type=int, default=12, help="frames per clip (default 12)")
    ap.add_argument("--q", default="0,12,24,36,48,63", help="fm q points")
    ap.add_argument(
        "--model",
        action="append",
        help="NAME=WEIGHTS or NAME=shipped:VARIANT (repeatable; default the shipped realtime)",
    )
    ap.add_argument(
        "--speed-frames", type=int, default=8, help="frames of the 640x360 speed run (0: none)"
    )
    ap.add_argument(
        "--speed-model",
        action="append",
        help="NAME of a --model to time at 640x360 (repeatable; default every model)",
    )
    ap.add_argument("--threads", type=int, default=1, help="torch and anchor threads")
    ap.add_argument("--note", default="", help="a line about the machine state for the report")
    ap.add_argument("--out", default="benchmarks/results/fm_rd.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    qs = [int(v) for v in args.q.split(",")]
    models: dict[str, tuple[FMModel, str, dict[str, Any]]] = {}
    for item in args.model or ["fm-realtime=shipped:realtime"]:
        name, _, spec = item.partition("=")
        models[name] = load_model(spec)
    unknown = set(args.speed_model or ()) - set(models)
    if unknown:
        raise SystemExit(f"--speed-model {', '.join(sorted(unknown))}: no such --model")
    clips = [
        (
            Path(parse_span(v)[0]).name + ("@" + v.rpartition("@")[2] if "@" in v else ""),
            read_clip(v, args.frames),
        )
        for v in args.video
    ]
    results: dict[str, Any] = {
        "command": " ".join(["python", "benchmarks/fm_rd.py", *(argv or sys.argv[1:])]),
        "finished": None,
        "machine": machine_info(),
        "versions": versions(),
        "git": git_info(),
        "models": {
            name: {
                "variant": m.config.variant,
                "image_codec": m.config.image,
                "weights": path,
                "weights_sha256_16": wt.short_hash(m).hex(),
                "parameters": wt.parameter_count(m),
                "training": info,
            }
            for name, (m, path, info) in models.items()
        },
        "protocol": {
            "clips": args.video,
            "frames": args.frames,
            "fps": str(FPS),
            "format": "yuv420p",
            "fm": "intra period 128 (one intra frame per clip), refresh 32, encoder search "
            "on (the default), q points " + args.q,
            "anchors": f"preset medium, CRF points {CRF_POINTS}, keyint = clip length, "
            "ld: bframes=0, ra: preset B-frames; raw elementary streams without "
            "informational SEI",
            "threads": args.threads,
            "note": "real clips held out of fm training (opencv-doc samples, already "
            "compressed); CPU shared with other jobs while measuring. " + args.note,
        },
        "sequences": {},
    }
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for clip_name, frames in clips:
            print(
                f"{clip_name}: {len(frames)} frames {frames[0].width}x{frames[0].height}",
                flush=True,
            )
            seq: dict[str, Any] = {k: [] for k in ANCHOR_KEYS}
            for anchor in ("x264", "x265"):
                for gop in ("ld", "ra"):
                    for crf in CRF_POINTS[anchor]:
                        seq[f"{anchor}-{gop}"].append(
                            run_anchor(frames, anchor, crf, gop, tmp, args.threads)
                        )
                    print(
                        f"  {anchor}-{gop}: "
                        + ", ".join(
                            f"{p['bpp']:.3f}/{p['psnr_yuv']:.1f}" for p in seq[f"{anchor}-{gop}"]
                        ),
                        flush=True,
                    )
            seq["fm"] = {}
            for name, (model, path, _) in models.items():
                points = []
                for q in qs:
                    pt = run_fm(frames, q, path, tmp)
                    print(
                        f"  {name} {pt['point']}: {pt['bpp']:.4f} bpp {pt['psnr_yuv']:.2f} dB "
                        f"enc {pt['encode_fps']:.2f} fps dec {pt['decode_fps']:.2f} fps "
                        f"exact {pt['decoded_equals_reconstruction']}",
                        flush=True,
                    )
                    points.append(pt)
                fm_pts = sorted(points, key=lambda p: p["bpp"])
                by_q = {p["q"]: p for p in points}
                entry: dict[str, Any] = {
                    "points": points,
                    "bd_rate_percent": {
                        f"vs {k}": {
                            m: _bd(sorted(seq[k], key=lambda p: p["bpp"]), fm_pts, m)
                            for m in ("psnr_yuv", "psnr_rgb")
                        }
                        for k in ANCHOR_KEYS
                    },
                    "capacity_psnr_yuv": capacity(model.intra, frames[:1]).weighted,
                    "q_ladder": q_ladder(points),
                }
                if qs:
                    top, low = by_q[max(qs)], by_q[min(qs)]
                    entry["psnr_yuv_at_top_q"] = top["psnr_yuv"]
                    entry["psnr_range_db"] = top["psnr_yuv"] - low["psnr_yuv"]
                seq["fm"][name] = entry
                print(f"  {name} BD-rate: {json.dumps(entry['bd_rate_percent'])}", flush=True)
            results["sequences"][clip_name] = seq
        speed_frames = speed_clip(clips[0][1][: args.speed_frames])
        timed = set(args.speed_model or models)
        results["speed_640x360"] = {
            name: _speed(path, speed_frames, tmp) if speed_frames and name in timed else {}
            for name, (_, path, _) in models.items()
        }
    summary: dict[str, Any] = {}
    seqs = list(results["sequences"].values())
    for name in models:
        entries = [s["fm"][name] for s in seqs]
        summ: dict[str, Any] = {
            "psnr_range_db": [e.get("psnr_range_db") for e in entries],
            "psnr_yuv_at_top_q": [e.get("psnr_yuv_at_top_q") for e in entries],
            "capacity_psnr_yuv": [e["capacity_psnr_yuv"] for e in entries],
        }
        for k in ANCHOR_KEYS:
            vals = [e["bd_rate_percent"][f"vs {k}"]["psnr_yuv"] for e in entries]
            ok = [v for v in vals if v is not None]
            summ[f"bd_rate_vs_{k}_psnr_yuv"] = vals
            summ[f"bd_rate_vs_{k}_psnr_yuv_mean"] = float(np.mean(ok)) if ok else None
        slopes = [s["db_per_bit_doubling"] for e in entries for s in e["q_ladder"]]
        summ["q_step_db_per_bit_doubling_min"] = min(
            (v for v in slopes if v is not None), default=None
        )
        summ["q_step_db_per_bit_doubling_top"] = [
            e["q_ladder"][-1]["db_per_bit_doubling"] if e["q_ladder"] else None for e in entries
        ]
        pts = [p for e in entries for p in e["points"]]
        summ["all_decodes_exact"] = all(p["decoded_equals_reconstruction"] for p in pts)
        summ.update({f"speed_640x360_{k}": v for k, v in results["speed_640x360"][name].items()})
        summary[name] = summ
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
    lines = [
        "# fm rate-distortion and speed against x264 / x265 on real clips",
        "",
        f"> {results['protocol']['note']}",
        "",
        f"- Command: `{results['command']}`",
        f"- Finished: {results['finished']}; machine: {results['machine'].get('cpu', '')}",
        f"- Protocol: {json.dumps(results['protocol'])}",
    ]
    for name, m in results["models"].items():
        lines.append(
            f"- Model {name}: fm-{m['variant']} (image codec {m['image_codec']}) "
            f"{m['weights_sha256_16']}, {m['parameters']} parameters"
        )
    lines += ["", "## Summary", ""]
    for name, summ in results["summary"].items():
        lines.append(f"### {name}")
        lines.append("")
        for k, v in summ.items():
            if isinstance(v, list):
                v = ", ".join(_fmt(x, ".2f") if isinstance(x, float) else str(x) for x in v)
            elif isinstance(v, float):
                v = format(v, ".2f")
            lines.append(f"- {k}: {v}")
        lines.append("")
    for clip, seq in results["sequences"].items():
        lines += [f"## {clip}", "", "| codec | point | bpp | PSNR-YUV | PSNR-RGB | enc fps |"]
        lines.append("|---|---|---|---|---|---|")
        rows = [(k, p) for k in ANCHOR_KEYS for p in seq[k]]
        rows += [(name, p) for name, e in seq["fm"].items() for p in e["points"]]
        for codec, p in rows:
            lines.append(
                f"| {codec} | {p['point']} | {p['bpp']:.4f} | {p['psnr_yuv']:.2f} | "
                f"{p['psnr_rgb']:.2f} | {p['encode_fps']:.1f} |"
            )
        lines.append("")
        for name, e in seq["fm"].items():
            ladder = ", ".join(
                f"{s['q'][0]}->{s['q'][1]}: {s['bits_ratio']:.2f}x bits "
                f"{s['psnr_yuv_gain_db']:+.1f} dB ({_fmt(s['db_per_bit_doubling'], '.1f')} "
                "dB/doubling)"
                for s in e.get("q_ladder", [])
            )
            lines.append(f"- {name} q ladder (PSNR-YUV): {ladder}")
        for name, e in seq["fm"].items():
            for k, v in e["bd_rate_percent"].items():
                lines.append(
                    f"- {name} BD-rate {k}: PSNR-YUV {_fmt(v['psnr_yuv'], '+.1f')}%, "
                    f"PSNR-RGB {_fmt(v['psnr_rgb'], '+.1f')}%"
                )
        lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())

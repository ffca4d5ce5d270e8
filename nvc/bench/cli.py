"""`nvc bench`: rate-distortion and speed of nvc's codecs against x264, x265 and SVT-AV1.

    nvc bench --input clip.mp4 --codecs inr,x264,x265 --frames 30
    nvc bench --uvg ~/data/UVG                      # the UVG protocol (all frames, 1080p)
    nvc bench --uvg ~/data/UVG --quick              # 30 frames of each, fitted to 640x360
    nvc bench --synthetic 640x360 --frames 30       # a generated clip, no files needed

The lead's `nvc` command adds this subcommand with `add_parser(subparsers)`; until then
`python -m nvc.bench.cli ...` (or benchmarks/rd.py) runs it standalone.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nvc.argtypes import even_size as _size
from nvc.argtypes import positive_int as _positive
from nvc.errors import NvcError

DEFAULT_ANCHORS = ("x264", "x265", "svtav1")


def configure(p: argparse.ArgumentParser) -> None:
    """Add the bench options to a parser."""
    src = p.add_argument_group("what to code")
    src.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="FILE",
        help="a video to code (mp4, mkv, y4m, raw .yuv with a UVG-style name, ...); repeatable",
    )
    src.add_argument(
        "--uvg",
        metavar="DIR",
        help="folder with the UVG 1080p raw .yuv files under their official names "
        "(Beauty_1920x1080_120fps_420_8bit_YUV.yuv, ...; from https://ultravideo.fi/dataset.html)",
    )
    src.add_argument(
        "--synthetic",
        action="append",
        default=[],
        type=_size,
        metavar="WxH",
        help="also code nvc's generated natural-looking clip at this size; repeatable",
    )
    src.add_argument("--seed", type=int, default=1, help="seed of --synthetic clips (default: 1)")
    quick = p.add_argument_group("quick mode (stated in every result: not a UVG result)")
    quick.add_argument("--frames", type=_positive, help="code only the first N frames")
    quick.add_argument("--crop", type=_size, metavar="WxH", help="centre-crop frames to WxH")
    quick.add_argument(
        "--scale", type=_size, metavar="WxH", help="resize frames to WxH (after --crop)"
    )
    quick.add_argument(
        "--quick",
        action="store_true",
        help="first 30 frames, fitted into 640x360 (unless --frames/--crop/--scale say otherwise)",
    )
    cod = p.add_argument_group("codecs")
    cod.add_argument(
        "--codecs",
        help="comma-separated codecs: anchors x264, x265, svtav1 and nvc codecs by name "
        "(default: the three anchors and every registered nvc codec but lossless)",
    )
    cod.add_argument(
        "--anchor",
        default="x265",
        help="codec that BD-rate and BD-PSNR are measured against (default: x265, medium preset)",
    )
    cod.add_argument(
        "--points",
        action="append",
        default=[],
        metavar="CODEC=JSON",
        help='rate points of a codec as a JSON list: \'inr=[{"bpp":0.05},{"bpp":0.1}]\' or '
        "'x265=[22,27,32,37]' (CRFs); repeatable",
    )
    cod.add_argument(
        "--gop",
        choices=["ra", "ld"],
        default="ra",
        help="anchors' GOP: ra = random access with B-frames (default), ld = low delay",
    )
    cod.add_argument(
        "--keyint",
        type=_positive,
        default=128,
        help="anchors' intra period in frames (default: 128)",
    )
    cod.add_argument(
        "--threads",
        type=_positive,
        default=os.cpu_count() or 1,
        help="anchors' encoder/decoder threads (default: all cores; recorded with the results)",
    )
    out = p.add_argument_group("measurement and output")
    out.add_argument(
        "--repeats",
        type=_positive,
        default=1,
        help="encode+decode cycles per rate point; timings are medians (default: 1)",
    )
    out.add_argument("--no-ms-ssim", action="store_true", help="skip MS-SSIM (the slowest metric)")
    out.add_argument(
        "--bd-method",
        choices=["pchip", "akima", "cubic"],
        default="pchip",
        help="Bjontegaard interpolation (default: pchip, monotone piecewise cubic)",
    )
    out.add_argument(
        "--out", default="bench-out", metavar="DIR", help="output folder (default: bench-out/)"
    )
    out.add_argument("--name", default="rd", help="prefix of the output files (default: rd)")
    out.add_argument(
        "--fresh",
        action="store_true",
        help="discard finished rows in the output folder and start over",
    )
    out.add_argument("--quiet", action="store_true", help="no progress on stderr")
    add_ray_argument(p)


def add_ray_argument(p: argparse.ArgumentParser) -> None:
    """--ray ADDRESS (shared by bench and batch)."""
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run the independent jobs as Ray tasks (pip install 'nvc[ray]'): 'local' starts "
        "Ray on this machine, 'auto' joins this machine's cluster, HOST:PORT or "
        "ray://HOST:10001 a remote one; same outputs, same resumable state as a local run",
    )


def add_parser(subparsers: Any) -> None:
    """Add `bench` to the `nvc` command's subparsers."""
    p = subparsers.add_parser(
        "bench",
        help="rate-distortion and speed against x264, x265 and SVT-AV1",
        description="Measure rate-distortion (bpp, PSNR-RGB, PSNR-YUV, MS-SSIM), speed and "
        "memory of nvc's codecs and of x264, x265 and SVT-AV1 on UVG, your clips or a "
        "generated clip; write JSON, CSV, Markdown and RD-curve PNGs. A killed run resumes "
        "where it stopped when run again with the same options.",
    )
    configure(p)
    p.set_defaults(run=run)


def _codec_names(args: argparse.Namespace) -> list[str]:
    if args.codecs:
        return [c.strip() for c in args.codecs.split(",") if c.strip()]
    from nvc.codec import registry

    return list(DEFAULT_ANCHORS) + [n for n in registry.names() if n != "lossless"]


def _protocol(args: argparse.Namespace) -> Any:
    from nvc.bench import datasets

    frames, fit = args.frames, None
    if args.quick:
        frames = frames or datasets.QUICK_FRAMES
        if args.crop is None and args.scale is None:
            fit = datasets.QUICK_FIT
    return datasets.Protocol(frames=frames, crop=args.crop, scale=args.scale, fit=fit)


def _statement(sequences: list[Any], protocol: Any) -> tuple[dict[str, Any], bool]:
    """The protocol block of the results, and whether published UVG curves apply."""
    from nvc.bench import datasets

    uvg = [s for s in sequences if s.kind == "uvg"]
    others = [s for s in sequences if s.kind != "uvg"]
    complete_uvg = len(uvg) == len(datasets.UVG_SEQUENCES) and not others
    what = []
    if uvg:
        what.append(f"UVG {len(uvg)} of {len(datasets.UVG_SEQUENCES)} sequences")
    if others:
        what.append(", ".join(s.name for s in others))
    sources = "; ".join(what)
    if protocol.quick:
        statement = (
            f"QUICK RUN: {protocol.describe()} of {sources}. Not a UVG result: do not compare "
            f"with published UVG figures."
        )
        kind = "quick"
        label = "Quick run"
    elif complete_uvg:
        statement = "UVG protocol: the 7 UVG 1080p sequences, all frames, 1920x1080, 8-bit 4:2:0."
        kind, label = "uvg", "UVG protocol"
    elif uvg and not others:
        missing = [n for n in datasets.UVG_SEQUENCES if n not in {s.name for s in uvg}]
        statement = (
            f"UVG, partial: {len(uvg)} of 7 sequences (missing {', '.join(missing)}), all "
            f"frames. Averages are not comparable with published UVG results."
        )
        kind, label = "uvg-partial", "Partial UVG"
    else:
        statement = f"User clips ({sources}), all frames at native size. Not a UVG result."
        kind, label = "clips", "User clips"
    block = {
        "kind": kind,
        "kind_label": label,
        "quick": protocol.quick,
        "statement": statement,
        **protocol.as_dict(),
    }
    return block, complete_uvg and not protocol.quick


def _command(args: argparse.Namespace) -> str:
    argv = getattr(args, "bench_argv", None)
    if argv is None:
        argv = sys.argv[1:]
        if "bench" in argv:
            argv = argv[argv.index("bench") + 1 :]
    return "nvc bench " + shlex.join(list(argv))


def run(args: argparse.Namespace) -> int:
    """Run the benchmark described by parsed `nvc bench` arguments; 0 on success."""
    from nvc.bench import codecs, datasets, environment, report, runner
    from nvc.bench.executor import RayTarget

    sequences: list[datasets.Sequence] = []
    if args.uvg:
        sequences += datasets.find_uvg(args.uvg)
    sequences += datasets.user_sequences(args.input)
    for w, h in args.synthetic:
        sequences.append(datasets.synthetic_sequence(w, h, args.seed))
    if not sequences:
        raise NvcError("nothing to code: give --input FILE, --uvg DIR or --synthetic WxH")
    names = [s.name for s in sequences]
    if len(set(names)) != len(names):
        raise NvcError(f"two sequences share a name: {', '.join(names)}")
    protocol = _protocol(args)

    names_requested = _codec_names(args)
    anchor_name = codecs.canonical(args.anchor)
    if anchor_name not in [codecs.canonical(n) for n in names_requested]:
        names_requested.append(anchor_name)
    contenders, skipped = codecs.resolve(
        names_requested,
        gop=args.gop,
        keyint=args.keyint,
        threads=args.threads,
        points=codecs.parse_points(args.points),
    )
    if not any(c.name == anchor_name for c in contenders):
        raise NvcError(f"the BD anchor {args.anchor!r} is not a codec this nvc can run")
    reporter = runner.Reporter(quiet=args.quiet)
    for message in skipped:
        reporter.line(f"nvc bench: {message}")

    config = runner.BenchConfig(
        sequences=sequences,
        contenders=contenders,
        protocol=protocol,
        out_dir=Path(args.out),
        name=args.name,
        repeats=args.repeats,
        ms_ssim=not args.no_ms_ssim,
        gop=args.gop,
        keyint=args.keyint,
        threads=args.threads,
        ray=RayTarget(args.ray, task_cpus=args.threads) if args.ray else None,
    )
    git = environment.git_info()
    config.stamp = {"git_revision": git["revision"], "git_dirty": git["dirty"]}
    block, published_ok = _statement(sequences, protocol)
    if protocol.quick:
        reporter.line(f"nvc bench: {block['statement']}")
    started = datetime.now(UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    outcome = runner.run(config, reporter=reporter, fresh=args.fresh)
    meta = {
        "command": _command(args),
        "started": started,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds_this_call": round(time.perf_counter() - t0, 1),
        "git": git,
        "machine": environment.machine_info(),
        "versions": environment.versions(),
        "protocol": block,
        "repeats": args.repeats,
        "gop": args.gop,
        "keyint": args.keyint,
        "threads": args.threads,
        "executor": f"ray {args.ray}" if args.ray else "local",
        "codecs": [
            {
                "name": c.name,
                "label": c.label,
                "kind": c.kind,
                "config": c.config,
                "points": c.points,
            }
            for c in contenders
        ],
        "metrics": {
            "bpp": "8 * file bytes / (frames * width * height)",
            "psnr": "mean of per-frame PSNR; an exact frame counts as 100 dB",
            "psnr_rgb": "8-bit RGB (BT.709 limited range), peak 255",
            "psnr_yuv": "(6 Y + U + V) / 8 of per-plane PSNRs in 4:2:0",
            "ms_ssim": "RGB, mean of per-frame values; ms_ssim_db = -10 log10(1 - MS-SSIM)",
            "timing": "median over repeats of wall time to encode to / decode from the file",
            "memory": "peak RSS of the process while encoding / decoding, sampled every 5 ms",
        },
    }
    rep = report.Report(
        name=args.name,
        meta=meta,
        rows=outcome.rows,
        sequences=outcome.sequences,
        anchor=anchor_name,
        bd_method=args.bd_method,
        published_ok=published_ok,
        skipped=skipped + outcome.skipped,
    )
    paths = report.write_all(rep, Path(args.out))
    reporter.line(
        f"nvc bench: {len(outcome.rows)} rows ({outcome.new_rows} new); wrote "
        + ", ".join(str(p) for p in paths.values())
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nvc bench",
        description="Rate-distortion and speed of nvc's codecs against x264, x265 and SVT-AV1.",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    configure(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point (python -m nvc.bench.cli, benchmarks/rd.py)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.bench_argv = argv
    try:
        return run(args)
    except KeyboardInterrupt:
        print("nvc bench: interrupted (run the same command again to resume)", file=sys.stderr)
        return 130
    except NvcError as e:
        if args.debug:
            raise
        print(f"nvc bench: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

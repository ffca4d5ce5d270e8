"""The `nvc` command: encode, decode, info, demo.

Exit codes: 0 success, 1 a user error (one line on stderr), 2 a usage error,
130 interrupted (SIGINT), 143 terminated (SIGTERM), 129 hung up (SIGHUP); a signal leaves
no partial output and no temporary file. `-` is stdin / stdout (y4m video, or the .nvc
stream of `encode -o -`). No traceback unless --debug.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from nvc import __version__
from nvc.argtypes import count as _count
from nvc.argtypes import fps as _fps
from nvc.argtypes import percent as _quality
from nvc.argtypes import positive_float as _positive_float
from nvc.argtypes import positive_int as _positive
from nvc.argtypes import size as _size
from nvc.argtypes import timestamp as _time
from nvc.errors import NvcError
from nvc.fileio import is_stdout
from nvc.progress import Progress
from nvc.signals import Terminated, exit_code, exit_on_signals


def _progress(label: str) -> tuple[Progress, Callable[[int, int | None], None]]:
    bar = Progress(label)
    return bar, bar.update


def _codec_options(args: argparse.Namespace) -> dict[str, object]:
    """Encode flags that become codec options, only those given (fm: q, bpp, refine,
    intra_period, refresh, residual, weights, device; inr: preset, bpp, quality, time_budget,
    device; --threads for codecs that have a `threads` option)."""
    fm = ("q", "refine", "intra_period", "refresh", "residual", "search", "variant", "weights")
    names = (*fm, "preset", "bpp", "quality", "time_budget", "device", "gaussians", "pack")
    options = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    if "weights" in options:
        options["weights"] = _weights_file(str(options["weights"]))
    if getattr(args, "threads", None) is not None and "threads" in _config_fields(args.codec):
        options["threads"] = args.threads
    return options


def _weights_file(path: str) -> str:
    """A --weights path, checked before any codec reads it: a readable torch.save archive."""
    import zipfile

    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        raise NvcError(f"--weights {path}: {e.strerror or e}") from None
    if not zipfile.is_zipfile(path):
        raise NvcError(f"--weights {path} is not a weights file (from 'nvc train fm --export')")
    return path


def _config_fields(codec: str) -> set[str]:
    """The option names of a codec's config (imports that codec)."""
    import dataclasses

    from nvc.codec.registry import get

    return {f.name for f in dataclasses.fields(get(codec).config_type)}


class _Training:
    """Shows a training codec's status (inr: group, epoch, PSNR, bpp) in the encode bar."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.done: int = 0
        self.total: int | None = None
        self.groups: list[Any] = []  # final status of each coded group

    def frames(self, done: int, total: int | None = None) -> None:
        self.done, self.total = done, total
        self.bar.update(done, total)

    def status(self, s: Any) -> None:
        where = f"group {s.group + 1}" + (f"/{s.groups}" if s.groups else "")
        if s.done:
            self.groups.append(s)
            self.bar.extra = f"{where} coded: PSNR {s.psnr:.2f} dB, {s.bpp:.4f} bpp"
        else:
            self.bar.extra = (
                f"{where} epoch {s.epoch}/{s.epochs}, PSNR ~{s.psnr:.2f} dB, ~{s.bpp:.4f} bpp"
            )
        self.bar.update(self.done, self.total)

    def hook(self, codec: str, options: dict[str, object]) -> dict[str, object]:
        """options plus `on_progress` when the codec's config has that field."""
        if "on_progress" in _config_fields(codec):
            return {**options, "on_progress": self.status}
        return options

    def psnr(self) -> float | None:
        """Mean PSNR of the coded groups as the training codec reported them (inr)."""
        if not self.groups:
            return None
        return sum(s.psnr for s in self.groups) / len(self.groups)


def _encode_summary(output: str, report: Any, training: _Training) -> dict[str, Any]:
    """The encode report as JSON-ready values, the training codec's PSNR filled in."""
    summary = {"output": output, **report.to_dict()}
    if summary["psnr"] is None and summary["exact"] is None and training.psnr() is not None:
        from nvc.media import pixel_format

        rgb = report.format is not None and pixel_format(report.format).family == "rgb"
        summary.update(psnr=training.psnr(), psnr_metric="rgb" if rgb else "yuv", exact=False)
    return summary


def _report_line(s: dict[str, Any]) -> str:
    """One line: frames, size, bpp, kbit/s, PSNR (or n/a), codec, time and speed."""
    if s["exact"]:
        quality = "exact (PSNR inf)"
    elif s["psnr"] is not None:
        quality = f"PSNR {s['psnr']:.2f} dB {s['psnr_metric'].upper()}"
    else:
        quality = "PSNR n/a"
    rate = f"{s['kbps']:.1f} kbit/s" if s["kbps"] is not None else "kbit/s n/a"
    return (
        f"{s['output']}: {s['frames']} frames {s['width']}x{s['height']}, {s['bytes']} bytes, "
        f"{s['bpp']:.4f} bpp, {rate}, {quality}, codec {s['codec']}, "
        f"{s['seconds']:.2f} s ({s['encode_fps']:.1f} fps)"
    )


def cmd_encode(args: argparse.Namespace) -> int:
    from nvc.codec.pipeline import encode_file

    bar, _ = _progress("encode")
    training = _Training(bar)
    try:
        report = encode_file(
            args.input,
            args.output,
            codec=args.codec,
            frames=args.frames,
            size=args.size,
            fps=args.fps,
            pix_fmt=args.pix_fmt,
            options=training.hook(args.codec, _codec_options(args)),
            progress=training.frames,
            start=args.start,
        )
    finally:
        bar.close()
    summary = _encode_summary(args.output, report, training)
    out = sys.stderr if is_stdout(args.output) else sys.stdout  # `-o -`: stdout has the stream
    if args.json:
        json.dump(summary, out, indent=2)
        out.write("\n")
    else:
        print(_report_line(summary), file=out)
        if training.groups:
            print(f"  {len(training.groups)} group(s) trained and coded", file=out)
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    from nvc.codec.pipeline import decode_file

    if args.weights:  # fm: make the stream's weights findable by their hash
        from nvc.codec.conditional.weights import load_weights, register

        register(load_weights(_weights_file(args.weights)))
    bar, update = _progress("decode")
    try:
        if args.camera is not None or args.orbit:
            from nvc.codec.gaussian.scene3d import decode_scene_file

            report = decode_scene_file(
                args.input,
                args.output,
                camera=args.camera,
                orbit=args.orbit,
                progress=update,
                max_pixels=args.max_pixels,
            )
        else:
            report = decode_file(
                sys.stdin.buffer if args.input == "-" else args.input,
                args.output,
                progress=update,
                start=args.start,
                frames=args.frames,
                threads=args.threads,
                max_pixels=args.max_pixels,
            )
    finally:
        bar.close()
    print(
        f"{args.output}: {report.frames} frames {report.width}x{report.height}, codec "
        f"{report.codec}, {report.seconds:.2f} s ({report.fps:.1f} fps)",
        file=sys.stderr if is_stdout(args.output) else sys.stdout,  # `-o -`: stdout has the video
    )
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from nvc.info import describe, format_text

    info = describe(args.input)
    if args.json:
        json.dump(info, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_text(info, units=not args.summary))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from nvc.demo import run_demo

    run_demo(frames=args.frames, size=args.size, codec=args.codec, keep=args.keep, out=print)
    return 0


# Subcommands defined in packages that import torch: (module, function, help). Their full
# parsers are built only when they run (or for the full parser), so `nvc --help`,
# `nvc --version`, `nvc info` and lossless work never import torch.
_HEAVY_COMMANDS = {
    "train": ("nvc.codec.conditional.cli", "add_parser", "train a learned codec's model (fm)"),
}


def _command_of(argv: Sequence[str]) -> str:
    """The subcommand named on a command line ("" when none): its first non-option word."""
    return next((a for a in argv if not a.startswith("-")), "")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `nvc` parser. `command`: the subcommand about to run; other subcommands of
    _HEAVY_COMMANDS get a stand-in that only lists them in the help. None: all in full."""
    from nvc.codec.registry import names

    codecs = ", ".join(names())
    parser = argparse.ArgumentParser(
        prog="nvc",
        description="nvc: neural video codec. Encode video to .nvc, decode it back, inspect it.",
        epilog="Run 'nvc COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"nvc {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "encode",
        help="encode a video file into a .nvc file",
        description="Encode a video (mp4, mkv, webm, mov, y4m, raw .yuv) into a .nvc file. "
        "Raw .yuv needs --size, --fps and --pix-fmt unless its name says them "
        "(UVG style: Name_1920x1080_120fps_420_8bit_YUV.yuv).",
    )
    p.add_argument(
        "input",
        help="input video file ('-': y4m on stdin), or a multi-view scene folder "
        "(N3DV/LLFF or COLMAP; --codec gaussian)",
    )
    p.add_argument("-o", "--output", required=True, help="output .nvc file ('-': stdout)")
    p.add_argument(
        "--codec", default="lossless", help=f"codec to use: {codecs} (default: lossless)"
    )
    p.add_argument("--frames", type=_positive, help="encode at most N frames")
    p.add_argument(
        "--start",
        type=_time,
        metavar="TIME",
        help="skip the input before TIME (seconds or HH:MM:SS.ms; the frames before it are "
        "read and dropped, the stream starts at 0)",
    )
    p.add_argument(
        "--threads",
        type=_positive,
        metavar="N",
        help="fm, inr: torch threads while coding (fm's output is the same for any N)",
    )
    p.add_argument("--json", action="store_true", help="print the encode report as JSON on stdout")
    p.add_argument("--size", type=_size, metavar="WxH", help="frame size of raw .yuv input")
    p.add_argument("--fps", type=_fps, help="frame rate of raw .yuv input (e.g. 30 or 30000/1001)")
    p.add_argument(
        "--pix-fmt",
        choices=["yuv420p", "yuv420p10le", "yuv444p", "yuv444p10le"],
        help="pixel format of raw .yuv input (default: yuv420p)",
    )
    p.add_argument(
        "--q",
        type=int,
        metavar="0-63",
        help="fm, gaussian: quality index, 0 smallest .. 63 best (def. 40)",
    )
    p.add_argument(
        "--refine", type=int, metavar="N", help="fm: encoder-side latent refinement steps per frame"
    )
    p.add_argument(
        "--intra-period",
        type=_count(0),
        metavar="N",
        help="fm: an intra frame (random-access point) every N frames, 0: only the first "
        "(default: 128)",
    )
    p.add_argument(
        "--refresh",
        type=_count(0),
        metavar="N",
        help="fm: re-derive the temporal feature from the picture every N frames, 0: never "
        "(default: 32)",
    )
    p.add_argument(
        "--no-residual",
        dest="residual",
        action="store_const",
        const=False,
        help="fm: never add coded residuals to inter frames (faster encoding; by "
        "default the encoder adds one where it lowers the rate-distortion cost)",
    )
    p.add_argument(
        "--fast",
        dest="search",
        action="store_const",
        const=False,
        help="fm: no encoder RD search (residual q, dropping an unused inter latent, "
        "skipped frames): about 2x faster encoding, larger files",
    )
    p.add_argument(
        "--preset",
        help="inr: realtime (decodes 640x360 in real time on 2 CPU cores), quality (best "
        "rate-distortion), nerv or hnerv (default: quality)",
    )
    p.add_argument(
        "--bpp",
        type=_positive_float,
        metavar="TARGET",
        help="inr: target bits per pixel, sets model size and quantization; fm: rate "
        "control over q (instead of --q)",
    )
    p.add_argument(
        "--quality",
        type=_quality,
        metavar="0-100",
        help="inr: instead of --bpp; 0.005 bpp at 0, doubling every 12.5 points",
    )
    p.add_argument(
        "--time-budget",
        type=_positive_float,
        metavar="SECONDS",
        help="inr: seconds for the whole encode (planning, training, coding, reconstructing), "
        "split across the groups of frames (when the input's length is unknown, each group "
        "but the last gets half of what is left)",
    )
    p.add_argument(
        "--device",
        help="inr, fm, gaussian: train/encode on cpu or cuda[:N] (default: cpu); decoding is "
        "on the CPU",
    )
    p.add_argument(
        "--gaussians",
        type=_positive,
        metavar="N",
        help="gaussian: Gaussians per frame (default: one per 64 pixels); with --q and "
        "--time-budget (seconds of fitting for the whole encode) it sets rate and quality",
    )
    p.add_argument(
        "--variant",
        choices=("realtime", "realtime2"),
        help="fm: the shipped model: realtime2 (default: no quality ceiling, every q step "
        "pays; about 1/4 of realtime's bits at equal quality on held-out real clips) or "
        "realtime (decodes ~2.5x faster but saturates above q~40; what `nvc live` uses); "
        "nvc/codec/conditional/weights/MODEL_CARD*.md",
    )
    p.add_argument(
        "--weights",
        metavar="FILE",
        help="fm: a weights file from 'nvc train fm --export' instead of the shipped model",
    )
    p.add_argument(
        "--pack",
        choices=("queen", "video"),
        help="gaussian, scene input: residual coder, queen (default: gated quantized "
        "residuals, entropy coded) or video (V^3: attributes as H.264 images)",
    )
    p.set_defaults(run=cmd_encode)

    p = sub.add_parser(
        "decode",
        help="decode a .nvc file into video",
        description="Decode a .nvc file. The output kind follows its name: .y4m, .yuv (raw), "
        ".mp4 or .mkv (lossless H.264), or a directory (name ending in /) of PNG frames.",
    )
    p.add_argument("input", help="input .nvc file ('-': stdin)")
    p.add_argument(
        "-o", "--output", required=True, help="output video file or DIR/ ('-': y4m on stdout)"
    )
    p.add_argument(
        "--start",
        type=_time,
        metavar="TIME",
        help="begin at TIME (seconds or HH:MM:SS.ms): decoding starts at the random-access "
        "point before it and drops the frames before TIME",
    )
    p.add_argument("--frames", type=_positive, help="decode at most N frames")
    p.add_argument(
        "--threads",
        type=_positive,
        metavar="N",
        help="inr: torch threads while decoding (fm's exact decoder always uses one)",
    )
    p.add_argument(
        "--max-pixels",
        type=_positive,
        metavar="N",
        help="refuse frames above N luma pixels (default: 3840x2160 = 8294400), "
        "a guard against files that ask for huge frames",
    )
    p.add_argument(
        "--weights",
        metavar="FILE",
        help="fm: the weights file the stream was coded with, when it is not the shipped one",
    )
    p.add_argument(
        "--camera",
        type=int,
        metavar="N",
        help="gaussian 3D streams: render rig camera N instead of the default view",
    )
    p.add_argument(
        "--orbit",
        action="store_true",
        help="gaussian 3D streams: render a smooth camera path around the rig",
    )
    p.set_defaults(run=cmd_decode)

    p = sub.add_parser(
        "info",
        help="show what a .nvc file holds",
        description="Show a .nvc file's header, codec, units, sizes, bitrate and "
        "random-access points.",
    )
    p.add_argument("input", help="input .nvc file")
    p.add_argument("--json", action="store_true", help="print JSON (every unit listed)")
    p.add_argument("--summary", action="store_true", help="text mode: omit the unit list")
    p.set_defaults(run=cmd_info)

    p = sub.add_parser(
        "demo",
        help="encode and decode a generated clip with the best codec available",
        description="Generate a natural-looking test clip, encode it with the best codec "
        "available, decode it, and report size, bpp, PSNR and timing.",
    )
    p.add_argument("--frames", type=_positive, default=48, help="clip length (default: 48)")
    p.add_argument(
        "--size", type=_size, default=(640, 360), metavar="WxH", help="clip size (default: 640x360)"
    )
    p.add_argument("--codec", help=f"codec to demonstrate: {codecs} (default: the best available)")
    p.add_argument(
        "--keep", metavar="DIR", help="keep the clip, the .nvc file and the decoded video in DIR"
    )
    p.set_defaults(run=cmd_demo)

    import importlib

    from nvc.bench.cli import add_parser as add_bench
    from nvc.player.cli import add_parsers as add_streaming

    add_streaming(sub)
    for name, (module, function, summary) in _HEAVY_COMMANDS.items():
        if command is None or command == name:
            getattr(importlib.import_module(module), function)(sub)
        else:
            sub.add_parser(name, help=summary)
    add_bench(sub)
    from nvc.bench.batch import add_parser as add_batch

    add_batch(sub)
    for each in sub.choices.values():  # --debug after the subcommand too
        with contextlib.suppress(argparse.ArgumentError):  # unless it has its own --debug
            each.add_argument(
                "--debug",
                action="store_true",
                default=argparse.SUPPRESS,
                help="show tracebacks on errors",
            )
    return parser


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _media_warnings() -> None:
    """Warnings of nvc.media (audio dropped, ...): one line each on the current stderr,
    `nvc: warning: ...`."""
    import logging

    class ToStderr(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            print(f"nvc: warning: {record.getMessage()}", file=sys.stderr)

    logger = logging.getLogger("nvc.media")
    if not any(type(h).__name__ == "ToStderr" for h in logger.handlers):
        logger.addHandler(ToStderr())


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_of(argv))
    args = parser.parse_args(argv)
    _media_warnings()
    try:
        with exit_on_signals():  # SIGTERM / SIGHUP unwind like Ctrl-C: no partial output
            return int(args.run(args))
    except KeyboardInterrupt as e:
        print(f"nvc: {e if isinstance(e, Terminated) else 'interrupted'}", file=sys.stderr)
        return exit_code(e)
    except NvcError as e:
        if args.debug:
            raise
        print(f"nvc: error: {_one_line(e)}", file=sys.stderr)
        return 1
    except OSError as e:
        if args.debug:
            raise
        where = f": {e.filename}" if e.filename else ""
        print(f"nvc: error: {e.strerror or _one_line(e)}{where}", file=sys.stderr)
        return 1
    except Exception as e:  # a bug: still one line, the traceback is behind --debug
        if args.debug:
            raise
        print(
            f"nvc: internal error: {type(e).__name__}: {_one_line(e)} (rerun with --debug)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())

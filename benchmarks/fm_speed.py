"""Encode and decode speed of the fm codec's realtime variants at 640x360, before and after.

    git worktree add /tmp/fm-base 8adc80b
    python benchmarks/fm_speed.py --base /tmp/fm-base

For every source tree (this checkout and, with --base, a worktree of an older commit),
variant (--variants, default realtime and realtime2) and torch thread count (--threads,
default 1 and 2), a fresh worker process with that tree's `nvc` first on its path:

- reads the clip: the first --frames frames of --video (default cup.mp4, real footage
  that fm does not train on), a 640x360 centre crop, 8-bit 4:2:0;
- encodes it --repeats times into a .nvc file with the settings of `nvc live` (q 40, the
  encoder's RD search off: --search adds runs with it on), through the real bitstream
  writer, timing each pass;
- decodes the file --repeats times with a fresh decoder each time (nvc.codec.pipeline),
  timing each pass; the thread count is the encoder's `threads` option and the decoder's
  `codec.DECODER_THREADS` (the count the decoder sets while it decodes);
- reports the fps of every pass (frames / wall seconds; the first frame is intra), the
  process's CPU milliseconds per frame (all its threads; on a busy machine closer to what
  an idle core would give than the wall time, though shared caches still slow it), the
  SHA-256 of the encoded file and of the decoded frames, and the base tree's file decoded
  by this tree.

Workers run one at a time, trees alternating, so that before and after see the same load
on a shared machine; the load average is recorded before and after every worker. Quoted
figures are medians over the passes. Exactness checks, in the results: every tree and
thread count writes the same bytes and decodes the same frames, and the current tree
decodes the base tree's files to the base tree's frames.

Results: benchmarks/results/fm_speed.json (with the command, commits and machine).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

SIZE = (640, 360)
FPS = Fraction(25)
Q = 40
RESULTS = Path(__file__).parent / "results" / "fm_speed.json"


# ------------------------------------------------------------------ worker (any tree)


def _clip(video: str, count: int) -> list[Any]:
    import numpy as np

    from nvc.media import Frame, convert, open_video

    w, h = SIZE
    out: list[Frame] = []
    with open_video(video) as reader:
        for f in reader:
            if len(out) == count:
                break
            f = f if f.format == "yuv420p" else convert(f, "yuv420p", full_range=False)
            if f.width < w or f.height < h:
                raise SystemExit(f"{video} is {f.width}x{f.height}, smaller than {w}x{h}")
            x0, y0 = (f.width - w) // 4 * 2, (f.height - h) // 4 * 2
            y, u, v = f.planes
            planes = (
                np.ascontiguousarray(y[y0 : y0 + h, x0 : x0 + w]),
                np.ascontiguousarray(u[y0 // 2 : (y0 + h) // 2, x0 // 2 : (x0 + w) // 2]),
                np.ascontiguousarray(v[y0 // 2 : (y0 + h) // 2, x0 // 2 : (x0 + w) // 2]),
            )
            out.append(Frame(planes, "yuv420p", len(out), 1 / FPS, False))
    return out


def _digest(frames: list[Any]) -> str:
    import numpy as np

    h = hashlib.sha256()
    for f in frames:
        for plane in f.planes:
            h.update(np.ascontiguousarray(plane).tobytes())
    return h.hexdigest()


def worker(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from nvc.bitstream import Writer
    from nvc.codec import registry
    from nvc.codec.base import StreamInfo
    from nvc.codec.conditional import codec as fm_codec
    from nvc.codec.pipeline import decode_frames

    torch.set_num_threads(args.threads)
    fm_codec.DECODER_THREADS = args.threads
    frames = _clip(args.video, args.frames)
    f0 = frames[0]
    stream = StreamInfo(f0.width, f0.height, FPS, f0.format, False, len(frames))
    spec = registry.get("fm")
    options = {"q": Q, "variant": args.variant, "search": args.search, "threads": args.threads}
    path = Path(args.out)
    enc_fps, dec_fps, enc_cpu, dec_cpu, digests = [], [], [], [], set()
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        encoder = spec.create_encoder(stream, options)
        with Writer(path, stream.to_header(spec.id, encoder.codec_params)) as writer:
            for f in frames:
                for unit in encoder.encode(f):
                    writer.write(unit)
        enc_fps.append(len(frames) / (time.perf_counter() - t0))
        enc_cpu.append(1000.0 * (time.process_time() - c0) / len(frames))
        digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
    decoded: list[Any] = []
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        decoded = list(decode_frames(path))
        dec_fps.append(len(frames) / (time.perf_counter() - t0))
        dec_cpu.append(1000.0 * (time.process_time() - c0) / len(frames))
    result: dict[str, Any] = {
        "encode_fps": enc_fps,
        "decode_fps": dec_fps,
        # CPU milliseconds per frame, all threads of the process together
        "encode_cpu_ms_per_frame": enc_cpu,
        "decode_cpu_ms_per_frame": dec_cpu,
        "file_sha256": sorted(digests),
        "decoded_sha256": _digest(decoded),
        "bytes": path.stat().st_size,
        "frames": len(frames),
    }
    if args.decode_also:
        from nvc.errors import NvcError

        try:
            result["other_decoded_sha256"] = _digest(list(decode_frames(args.decode_also)))
        except NvcError as e:
            result["other_decoded_error"] = str(e)
    return result


# ------------------------------------------------------------------ driver


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _git(tree: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(tree), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "unknown"


def _weights_list(tree: Path | None) -> str:
    """The shipped fm weights files of a tree, as NVC_FM_WEIGHTS lists them."""
    if tree is None:
        return ""
    files = sorted((tree / "nvc" / "codec" / "conditional" / "weights").glob("*.pt"))
    return os.pathsep.join(str(f) for f in files)


def _changed(tree: Path) -> list[str]:
    """The tree's files under nvc/ that differ from its commit (git status)."""
    done = subprocess.run(
        ["git", "-C", str(tree), "status", "--short", "--", "nvc"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.split("\n")[:-1] if done.stdout else []


def _run_worker(tree: Path, job: dict[str, Any], tmp: Path) -> dict[str, Any]:
    out = tmp / f"{job['tree']}-{job['variant']}-{job['threads']}-{job['search']}.nvc"
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        "--video",
        job["video"],
        "--variant",
        job["variant"],
        "--threads",
        str(job["threads"]),
        "--frames",
        str(job["frames"]),
        "--repeats",
        str(job["repeats"]),
        "--out",
        str(out),
    ]
    if job["search"]:
        cmd.append("--search")
    if job.get("decode_also"):
        cmd += ["--decode-also", job["decode_also"]]
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS=str(job["threads"]))
    if job["omp_passive"]:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    if job.get("decode_also") and job.get("base_weights"):
        # the base tree's shipped weights, for its files (a stream names its weights)
        env["NVC_FM_WEIGHTS"] = job["base_weights"]
    load_before = _load()
    done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"worker failed in {tree}:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result.update(path=str(out), load_before=load_before, load_after=_load())
    result["encode_fps_median"] = statistics.median(result["encode_fps"])
    result["decode_fps_median"] = statistics.median(result["decode_fps"])
    for key in ("encode_cpu_ms_per_frame", "decode_cpu_ms_per_frame"):
        result[key + "_median"] = statistics.median(result[key])
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--video", default="/work/data/video/cup.mp4")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--variants", default="realtime,realtime2")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--base", help="a worktree of the commit to compare with")
    ap.add_argument("--current", help="the tree measured as current (default: this checkout)")
    ap.add_argument("--search", action="store_true", help="also measure with the RD search on")
    ap.add_argument(
        "--omp-passive",
        action="store_true",
        help="workers run with OMP_WAIT_POLICY=PASSIVE (on a busy machine spinning threads "
        "wait for cores that others hold)",
    )
    ap.add_argument("--note", default="", help="a line recorded with the results")
    ap.add_argument("--output", default=str(RESULTS))
    # worker mode (internal)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--decode-also", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        args.threads = int(args.threads)
        print(json.dumps(worker(args)))
        return 0

    here = Path(args.current).resolve() if args.current else Path(__file__).resolve().parent.parent
    trees = {"current": here} | ({"base": Path(args.base).resolve()} if args.base else {})
    searches = (False, True) if args.search else (False,)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="fm-speed-") as tmpdir:
        tmp = Path(tmpdir)
        for variant in args.variants.split(","):
            for search in searches:
                for threads in (int(t) for t in args.threads.split(",")):
                    base_file: str | None = None
                    for name in sorted(trees, reverse=False):  # base first, then current
                        job = {
                            "tree": name,
                            "variant": variant,
                            "threads": threads,
                            "search": search,
                            "video": args.video,
                            "frames": args.frames,
                            "repeats": args.repeats,
                            "decode_also": base_file if name == "current" else None,
                            "omp_passive": args.omp_passive,
                            "base_weights": _weights_list(trees.get("base")),
                        }
                        res = _run_worker(trees[name], job, tmp)
                        if name == "base":
                            base_file = res["path"]
                        runs.append({**job, **res})
                        print(
                            f"{name:8s} {variant:10s} search={search!s:5s} threads={threads} "
                            f"enc {res['encode_fps_median']:.2f} fps "
                            f"dec {res['decode_fps_median']:.2f} fps "
                            f"(CPU ms/frame enc {res['encode_cpu_ms_per_frame_median']:.0f} "
                            f"dec {res['decode_cpu_ms_per_frame_median']:.0f}) "
                            f"(load {res['load_before'][0]} -> {res['load_after'][0]})",
                            flush=True,
                        )
    results = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "note": args.note,
        "trees": {
            name: {"path": str(p), "commit": _git(p), "changed": _changed(p)}
            for name, p in trees.items()
        },
        "settings": {
            "size": list(SIZE),
            "q": Q,
            "video": args.video,
            "frames": args.frames,
            "repeats": args.repeats,
            "fps": "frames / wall seconds of a whole pass, median over the passes",
        },
        "machine": {
            "cpus": os.cpu_count(),
            "niceness": os.nice(0),
            "load_at_end": _load(),
            "note": "a shared machine: other jobs ran at the same time (see each run's load)",
        },
        "runs": runs,
        "checks": _checks(runs),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["checks"], indent=2))
    return 0


def _checks(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per variant and search setting: one encoded file and one decoded picture sequence
    across trees and thread counts; the current tree decodes the base's file exactly."""
    out: dict[str, Any] = {}
    keys = sorted({(r["variant"], r["search"]) for r in runs})
    for variant, search in keys:
        group = [r for r in runs if (r["variant"], r["search"]) == (variant, search)]
        files = {h for r in group for h in r["file_sha256"]}
        decoded = {r["decoded_sha256"] for r in group}
        cross = [
            r.get("other_decoded_sha256") == b["decoded_sha256"]
            for r in group
            if r.get("other_decoded_sha256") or r.get("other_decoded_error")
            for b in group
            if b["tree"] == "base" and b["threads"] == r["threads"]
        ]
        out[f"{variant} search={search}"] = {
            "same_encoded_bytes_everywhere": len(files) == 1,
            "same_decoded_frames_everywhere": len(decoded) == 1,
            "current_decodes_base_files_exactly": all(cross) if cross else None,
        }
    return out


if __name__ == "__main__":
    sys.exit(main())

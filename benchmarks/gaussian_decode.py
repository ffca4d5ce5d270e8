"""Decoding speed of the gaussian codec (2D mode): a base commit against another (HEAD).

    nice -n 10 python benchmarks/gaussian_decode.py            # cup.mp4, 640x360, 4 frames
    python benchmarks/gaussian_decode.py --quick               # generated 160x96 clip, seconds

Encodes a short clip once with the code at --code (a real .nvc file: a base and gated
residuals), then, for the code at --base and at --code (each a `git worktree` in a
temporary folder; the working tree is neither used nor touched), decodes it in a fresh
process per thread count (torch threads and the renderer's bands) and reports the median
frames per second over --repeats whole decodes (entropy decoding, state update, exact
rendering, frame CRC). Every decode's frames are hashed; the digests of both codes at
every thread count must be the same (the renderer is exact integer arithmetic: speed
work must not move a bit).

Output: benchmarks/results/gaussian_decode.json (command, machine and load average,
per code and thread count: median and all fps, CPU ms per frame (all threads; what a
busy shared machine still measures), the frame digest). --stream times a given file
instead (no encode).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
FPS = Fraction(25)

# Run in a fresh process with the code under test first on sys.path: decode the file
# `repeats` times, print the fps of each decode and one digest of all decoded planes.
CHILD = r"""
import hashlib, json, sys, time
root, path, threads, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sys.path.insert(0, root)
import torch
torch.set_num_threads(threads)
import nvc.codec.gaussian.render as render
if hasattr(render, "BANDS"):
    render.BANDS = threads
from nvc.codec.pipeline import decode_frames
data = open(path, "rb").read()
fps, cpu_ms, digest = [], [], None
for _ in range(repeats):
    h = hashlib.sha256()
    start, cpu = time.perf_counter(), time.process_time()
    n = 0
    for frame in decode_frames(data):
        n += 1
        for p in frame.planes:
            h.update(p.tobytes())
    fps.append(n / (time.perf_counter() - start))
    cpu_ms.append((time.process_time() - cpu) * 1000 / n)
    if digest is not None and digest != h.hexdigest():
        raise SystemExit("decodes differ between repeats")
    digest = h.hexdigest()
print(json.dumps({"fps": fps, "cpu_ms_per_frame": cpu_ms, "digest": digest}))
"""


def load_clip(path: str, width: int, height: int, frames: int) -> list[Any]:
    """`frames` frames of `path` as 8-bit 4:2:0, scaled to cover width x height and
    centre-cropped to it."""
    import numpy as np

    from nvc.media import Frame, convert, open_video

    out = []
    with open_video(path) as reader:
        for i, frame in enumerate(reader):
            if i >= frames:
                break
            rgb = convert(frame, "rgb24").planes[0]
            h0, w0 = rgb.shape[:2]
            scale = max(width / w0, height / h0)
            # nearest-neighbour scaling (the clip only needs to be real footage)
            ys = np.minimum((np.arange(round(h0 * scale)) / scale).astype(int), h0 - 1)
            xs = np.minimum((np.arange(round(w0 * scale)) / scale).astype(int), w0 - 1)
            big = rgb[ys][:, xs]
            y0, x0 = (big.shape[0] - height) // 2, (big.shape[1] - width) // 2
            crop = np.ascontiguousarray(big[y0 : y0 + height, x0 : x0 + width])
            out.append(convert(Frame((crop,), "rgb24", i, 1 / FPS), "yuv420p"))
    return out


def encode(frames: list[Any], options: dict[str, Any], path: Path) -> dict[str, Any]:
    import torch

    from nvc.bitstream import Writer
    from nvc.codec.base import StreamInfo
    from nvc.codec.gaussian import GaussianConfig, GaussianEncoder

    torch.set_num_threads(1)
    f = frames[0]
    stream = StreamInfo(f.width, f.height, FPS, f.format, f.full_range, len(frames))
    enc = GaussianEncoder(stream, GaussianConfig(**options))
    start = time.perf_counter()
    with open(path, "wb") as fh, Writer(fh, stream.to_header(4, enc.codec_params)) as w:
        for frame in frames:
            for unit in enc.encode(frame):
                w.write(unit)
    return {
        "seconds": time.perf_counter() - start,
        "bytes": path.stat().st_size,
        "psnr": enc.psnr(),
        "gaussians": [r.gaussians for r in enc.reports],
    }


def decode_in(root: Path, path: Path, threads: int, repeats: int) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), str(path), str(threads), str(repeats)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"decoding with {root} failed:\n{out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    fps, cpu = sorted(result["fps"]), sorted(result["cpu_ms_per_frame"])
    result["median_fps"] = fps[len(fps) // 2]
    result["median_cpu_ms_per_frame"] = cpu[len(cpu) // 2]
    return result


def _commit(name: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", name],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--input", default="/work/data/video/cup.mp4")
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--gaussians", type=int, default=3600)
    ap.add_argument("--q", type=int, default=32)
    ap.add_argument("--iterations", type=int, default=60, help="optimizer steps per frame")
    ap.add_argument("--base", default="8adc80b", help="commit to compare with")
    ap.add_argument("--code", default="HEAD", help="commit measured against --base")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--quick", action="store_true", help="generated 160x96 clip, 2 repeats")
    ap.add_argument("--keep", help="also write the encoded .nvc here")
    ap.add_argument("--stream", help="time this .nvc instead of encoding one")
    ap.add_argument("--output", default=str(RESULTS / "gaussian_decode.json"))
    args = ap.parse_args()
    commits = {"base": _commit(args.base), "code": _commit(args.code)}
    with tempfile.TemporaryDirectory() as tmp:
        # both codes from git worktrees, so that edits in progress in the working tree
        # (of anyone sharing it) can neither break nor change the measurement
        trees = {f"base {args.base}": Path(tmp) / "base", f"code {args.code}": Path(tmp) / "code"}
        for commit, where in zip(commits.values(), trees.values(), strict=True):
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), commit],
                check=True,
                capture_output=True,
            )
        try:
            sys.path.insert(0, str(trees[f"code {args.code}"]))  # the encoder's code too
            result = measure(args, Path(tmp), trees)
        finally:
            for where in trees.values():
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(where)],
                    check=False,
                    capture_output=True,
                )
    result["commits"] = commits
    Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
    print(f"identical frames across codes and threads: {result['identical_frames']}")
    if not result["identical_frames"]:
        raise SystemExit("the decoded frames differ between the codes or thread counts")


def measure(args: argparse.Namespace, tmp: Path, trees: dict[str, Path]) -> dict[str, Any]:
    from nvc.bench.environment import machine_info

    width, height = (int(v) for v in args.size.split("x"))
    if args.stream:
        frames, source = [], args.stream
    elif args.quick:
        from nvc.media import synthetic_clip

        width, height, args.repeats, args.gaussians = 160, 96, 2, 240
        frames = synthetic_clip(width, height, args.frames, fps=FPS, format="yuv420p", seed=1)
        source = "synthetic_clip(160, 96, seed=1)"
    else:
        frames = load_clip(args.input, width, height, args.frames)
        source = args.input
    options = {
        "gaussians": args.gaussians,
        "q": args.q,
        "max_iterations": args.iterations,
        "frame_budget": 1000.0,
        "group": 20,
    }
    load_start = os.getloadavg()
    if args.stream:
        path, encoded = Path(args.stream), {"bytes": Path(args.stream).stat().st_size}
    else:
        path = Path(args.keep) if args.keep else tmp / "clip.nvc"
        encoded = encode(frames, options, path)
        print(f"encoded {len(frames)} frames: {encoded}", flush=True)
    runs: dict[str, Any] = {}
    for name, root in trees.items():
        for t in (int(t) for t in args.threads.split(",")):
            r = decode_in(root, path, t, args.repeats)
            runs[f"{name}, {t} thread(s)"] = r
            print(
                f"{name}, {t} thread(s): {r['median_fps']:.2f} fps, "
                f"{r['median_cpu_ms_per_frame']:.1f} CPU ms per frame",
                flush=True,
            )
    return {
        "command": "python " + " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": machine_info(),
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "clip": {"source": source, "size": [width, height], "frames": args.frames},
        "options": options,
        "encode": encoded,
        "identical_frames": len({r["digest"] for r in runs.values()}) == 1,
        "runs": runs,
    }


if __name__ == "__main__":
    main()

"""CPU render speed of render3d's no-gradient path against an earlier render3d, one run.

    nice -n 10 python benchmarks/render3d_speed.py       # 640x360 and 96x64, 1 and 2 threads

The state is what the 3D encoder starts its fit from (codec3d: fit3d.initial_gaussians at
opacity 0.5, on points back-projected from the procedural scene's training views through
its exact depth), optionally fitted for `--fit-seconds` (fit3d.fit_static) so that scales
and opacities are no longer uniform. It is rendered at the held-out camera, scaled to each
size, by this checkout's render3d and by render3d as of `--baseline` (loaded from git),
under torch.inference_mode; the two alternate, repeat by repeat, so both see the same
machine load. Reported per size and thread count: the median seconds and fps of each, the
speed-up, and the largest absolute difference between their pictures; the command, the
commits, the machine (CPU count, load average before and after, nice) go into the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nvc.codec.gaussian import render3d
from nvc.codec.gaussian.fit3d import (
    Fit3DConfig,
    camera_matrices,
    fit_static,
    initial_gaussians,
    surface_points,
)
from nvc.media.scene_synth import ProceduralScene, SceneConfig

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
BASELINE = "831da2a14c92475dcf1a51061ccbbe61a216a7cb"  # render3d before the cell-culled path


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", default=BASELINE, help="git commit of the render3d to beat")
    p.add_argument("--gaussians", type=int, default=4000, help="Gaussians in the state")
    p.add_argument("--fit-seconds", type=float, default=20.0, help="fit of the state (0: none)")
    p.add_argument("--sizes", default="640x360,96x64", help="render sizes, WxH, comma-separated")
    p.add_argument("--threads", default="1,2", help="torch thread counts, comma-separated")
    p.add_argument("--repeats", type=int, default=7, help="timed renders per implementation")
    p.add_argument("--out", type=Path, default=RESULTS / "render3d_speed.json")
    return p.parse_args()


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout


def baseline_module(commit: str) -> types.ModuleType:
    """render3d.py as of `commit`, as a module of its own."""
    module = types.ModuleType("render3d_baseline")
    source = git("show", f"{commit}:nvc/codec/gaussian/render3d.py")
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    exec(compile(source, f"render3d@{commit[:7]}", "exec"), module.__dict__)
    return module


def make_state(gaussians: int, fit_seconds: float) -> tuple[tuple[torch.Tensor, ...], Any]:
    scene = ProceduralScene(SceneConfig(width=320, height=180, cameras=9, frames=1))
    train = scene.train_cameras
    images = [scene.render(i, 0) for i in train]
    cams = [scene.cameras[i] for i in train]
    pts, rgb = surface_points(
        images, cams, [scene.depth(i, 0) for i in train], gaussians, np.random.default_rng(0)
    )
    state = initial_gaussians(pts, rgb, 0.5)
    if fit_seconds > 0:
        config = Fit3DConfig(gaussians=gaussians, time_budget=fit_seconds, steps=100000)
        state, _ = fit_static(images, cams, state, config, measure=False)
    return tuple(t.detach() for t in state.tensors()), scene.cameras[scene.held_out]


def time_both(
    modules: dict[str, types.ModuleType], args: tuple[Any, ...], repeats: int
) -> dict[str, Any]:
    times: dict[str, list[float]] = {name: [] for name in modules}
    images = {}
    with torch.inference_mode():
        for name, m in modules.items():  # warm-up, and the pictures compared
            images[name] = m.render(*args, sh_degree=0).image
        for _ in range(repeats):
            for name, m in modules.items():
                t0 = time.perf_counter()
                m.render(*args, sh_degree=0)
                times[name].append(time.perf_counter() - t0)
    row: dict[str, Any] = {}
    for name, ts in times.items():
        med = float(np.median(ts))
        row[name] = {"median_s": med, "fps": 1.0 / med, "times_s": ts}
    row["speedup"] = row["baseline"]["median_s"] / row["new"]["median_s"]
    row["max_abs_diff"] = float((images["new"] - images["baseline"]).abs().max())
    return row


def main() -> int:
    a = parse_args()
    load_before = os.getloadavg()
    start = time.perf_counter()
    torch.set_num_threads(1)
    tensors, camera = make_state(a.gaussians, a.fit_seconds)
    state_seconds = time.perf_counter() - start
    modules = {"baseline": baseline_module(a.baseline), "new": render3d}
    rows = []
    for size in a.sizes.split(","):
        width, height = (int(v) for v in size.lower().split("x"))
        viewmat, K = camera_matrices(camera.scaled(width, height))
        for threads in (int(t) for t in a.threads.split(",")):
            torch.set_num_threads(threads)
            row = time_both(modules, (*tensors, viewmat, K, width, height), a.repeats)
            row.update(size=f"{width}x{height}", threads=threads)
            rows.append(row)
            print(
                f"{width}x{height} {threads} thread(s): baseline {row['baseline']['fps']:.2f} "
                f"fps, new {row['new']['fps']:.2f} fps ({row['speedup']:.2f}x), "
                f"max |diff| {row['max_abs_diff']:.2e}",
                file=sys.stderr,
                flush=True,
            )
    report = {
        "what": "render3d CPU render speed, no gradients: this checkout vs the baseline commit",
        "command": "python " + " ".join(["benchmarks/render3d_speed.py", *sys.argv[1:]]),
        "commit": git("rev-parse", "HEAD").strip(),
        "baseline_commit": a.baseline,
        "state": {
            "gaussians": a.gaussians,
            "fit_seconds": a.fit_seconds,
            "scene": "scene_synth 320x180, 9 cameras, held-out camera rendered (scaled)",
            "seconds_to_make": state_seconds,
        },
        "repeats": a.repeats,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor(),
            "torch": torch.__version__,
            "nice": os.nice(0),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "results": rows,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

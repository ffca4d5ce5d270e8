"""Where the 3D mode's first base starts: random depths, a sparse plane sweep, exact points.

    nice -n 10 python benchmarks/gaussian3d_init.py      # -> results/gaussian3d_init.json

The procedural scene (nvc.media.scene_synth: 80x45 views, 6 cameras, frame 0), its middle
camera held out. 1500 Gaussians start from points on random pixels' rays of the 5
training views at (a) random depths within each view's bounds, (b) the depth
fit3d.photo_consistent_points picks (what the codec does for N3DV folders, which have no
SfM points), (c) the ray caster's exact depth (a stand-in for SfM points); the bounds are
0.9 x the nearest and 1.1 x the farthest depth, as scene_synth.write_n3dv writes them.
Each start is fitted for 60 steps (fit3d.fit_static) and scored at the held-out camera
(RGB PSNR against the ray-cast picture), before and after.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch

from nvc.codec.gaussian.fit3d import (
    Fit3DConfig,
    fit_static,
    initial_gaussians,
    photo_consistent_points,
    rgb_psnr,
    surface_points,
)
from nvc.media.scene_synth import ProceduralScene, SceneConfig

OUT = Path(__file__).parent / "results" / "gaussian3d_init.json"
COUNT, STEPS = 1500, 60


def main() -> int:
    torch.set_num_threads(1)
    scene = ProceduralScene(SceneConfig(width=80, height=45, cameras=6, frames=1))
    train = scene.train_cameras
    cams = [scene.cameras[i] for i in train]
    images = [scene.render(i, 0) for i in train]
    depths = [scene.depth(i, 0) for i in train]
    bounds = [(0.9 * float(d.min()), 1.1 * float(d.max())) for d in depths]
    held, truth = scene.cameras[scene.held_out], scene.render(scene.held_out, 0)
    rng = np.random.default_rng(0)

    def random_depths() -> tuple[np.ndarray, np.ndarray]:
        points, colours = [], []
        per = np.diff(np.linspace(0, COUNT, len(cams) + 1).round().astype(int))
        for image, cam, k, (near, far) in zip(images, cams, per, bounds, strict=True):
            uv = rng.uniform(0, 1, (k, 2)) * (cam.width, cam.height)
            d = cam.directions(uv)
            points.append(cam.center + (rng.uniform(near, far, k) / (d @ cam.R[2]))[:, None] * d)
            px = np.minimum(uv.astype(int), (cam.width - 1, cam.height - 1))
            colours.append(image[px[:, 1], px[:, 0]])
        return np.concatenate(points), np.concatenate(colours)

    starts = {
        "random_depths": random_depths(),
        "plane_sweep": photo_consistent_points(images, cams, COUNT, rng, bounds=bounds),
        "exact_depth": surface_points(images, cams, depths, COUNT, rng),
    }
    load = os.getloadavg()
    results = {}
    for name, (points, colours) in starts.items():
        init = initial_gaussians(points, colours, 0.5)
        fitted, _ = fit_static(images, cams, init, Fit3DConfig(steps=STEPS), measure=False)
        with torch.no_grad():
            results[name] = {
                "held_out_psnr_start": rgb_psnr(init.render(held), truth),
                "held_out_psnr_after": rgb_psnr(fitted.render(held), truth),
            }
        print(name, json.dumps(results[name]), flush=True)
    report = {
        "what": "held-out PSNR of the 3D base from three starts, before and after a fit",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", *sys.argv]),
        "gaussians": COUNT,
        "steps": STEPS,
        "bounds": bounds,
        "results": results,
        "machine": {
            "platform": platform.platform(),
            "torch_threads": torch.get_num_threads(),
            "load_average_before": load,
            "load_average_after": os.getloadavg(),
            "nice": os.nice(0),
        },
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

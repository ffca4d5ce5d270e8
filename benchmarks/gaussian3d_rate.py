"""The 3D mode's P-frame rate term and position gates: residual bytes and held-out PSNR.

    nice -n 10 python benchmarks/gaussian3d_rate.py                  # weights 0,0.3,2,10
    python benchmarks/gaussian3d_rate.py --weights 0,1 --frames 3    # a shorter run
    python benchmarks/gaussian3d_rate.py --weights 1 --gates learned,threshold

The procedural scene (nvc.media.scene_synth: 80x45 views, 6 cameras, the middle one held
out of the fit), coded by codec3d.SceneEncoder with QUEEN-style residuals at q 40 and 1500
Gaussians, once per `rate_weight` (GaussianConfig; the fit's weight is codec3d.RATE_3D
times it) and per kind of position gates (--gates: QUEEN's learned hard-concrete gates,
gates.py, or the plain threshold on the gradient signal). Fits run a fixed number of steps
(base 80, P-frames 10), not a time budget, so the result does not depend on the machine's
load; the base is fitted once and shared by every run. Each run's units are decoded by a
fresh SceneDecoder whose state must equal the encoder's; the decoded state is rendered at
the held-out camera and scored against the ray-cast picture. Writes
results/gaussian3d_rate.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nvc.codec.gaussian import GaussianConfig, codec3d
from nvc.codec.gaussian.fit3d import rgb_psnr, surface_points
from nvc.media.scene_synth import ProceduralScene, SceneConfig

RESULTS = Path(__file__).parent / "results"
BASE_STEPS, P_STEPS = 80, 10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default="0,0.3,2,10", help="rate_weight values")
    parser.add_argument("--frames", type=int, default=4, help="frames (one base)")
    parser.add_argument("--gate-threshold", type=float, default=1.0, help="GaussianConfig's")
    parser.add_argument(
        "--gates", default="threshold", help="position gates, comma-separated: learned, threshold"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "gaussian3d_rate.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    scene = ProceduralScene(SceneConfig(width=80, height=45, cameras=6, frames=args.frames))
    train = [scene.cameras[i] for i in scene.train_cameras]
    images = [scene.render(i, 0) for i in scene.train_cameras]
    depths = [scene.depth(i, 0) for i in scene.train_cameras]
    pts, rgb = surface_points(images, train, depths, 3000, np.random.default_rng(0))
    points = (pts, np.round(rgb * 255).astype(np.uint8))
    views = [[scene.render_uint8(i, t) for i in range(6)] for t in range(args.frames)]
    truth = [scene.render(scene.held_out, t) for t in range(args.frames)]
    base_fit: dict[str, Any] = {}
    fit_static = codec3d.fit_static

    def shared_base(images: Any, cameras: Any, init: Any, config: Any, **kw: Any) -> Any:
        if kw.get("move") is not None or kw.get("gates") is not None:  # a P-frame
            return fit_static(images, cameras, init, config, **kw)
        if "fit" not in base_fit:
            base_fit["fit"] = fit_static(images, cameras, init, config, **kw)
        return base_fit["fit"]

    codec3d.fit_static = shared_base
    load = os.getloadavg()
    runs = []
    cases = [(g, float(w)) for g in args.gates.split(",") for w in args.weights.split(",")]
    for gates, weight in cases:
        config = GaussianConfig(
            gaussians=1500,
            q=40,
            group=20,
            hold_out=scene.held_out,
            rate_weight=weight,
            gates=gates,
            gate_threshold=args.gate_threshold,
        )
        enc = codec3d.SceneEncoder(
            scene.cameras,
            Fraction(scene.config.fps),
            config,
            frame_count=args.frames,
            points=points,
        )

        def fixed_steps(key: bool, enc: codec3d.SceneEncoder = enc) -> codec3d.Fit3DConfig:
            return dataclasses.replace(
                codec3d.Fit3DConfig(gaussians=enc.count),
                steps=BASE_STEPS if key else P_STEPS,
                relocate_every=100 if key else 0,
                seed=enc.index,
            )

        enc._fit_config = fixed_steps  # type: ignore[method-assign]
        dec = codec3d.SceneDecoder(enc.header())
        frames = []
        for t in range(args.frames):
            (unit,) = enc.encode_views(views[t], t)
            dec.apply(unit)
            if dec.state is None or enc.state is None or not dec.state.equal(enc.state):
                raise SystemExit("the decoder's state is not the encoder's")
            held = codec3d.render_rgb(dec.gaussians(), scene.cameras[scene.held_out])
            r = enc.reports[-1]
            frames.append(
                {
                    "bytes": len(unit.payload),
                    "held_out_psnr": rgb_psnr(held, truth[t]),
                    "gated": r.gated,
                    "changed": r.changed,
                }
            )
        p = frames[1:]
        runs.append(
            {
                "gates": gates,
                "gate_threshold": args.gate_threshold,
                "rate_weight": weight,
                "frames": frames,
                "mean_residual_bytes": float(np.mean([f["bytes"] for f in p])) if p else None,
                "mean_residual_held_out_psnr": (
                    float(np.mean([f["held_out_psnr"] for f in p])) if p else None
                ),
            }
        )
        print(json.dumps(runs[-1]), flush=True)
    report = {
        "what": "3D P-frame rate term and position gates: residual bytes and held-out PSNR",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", *sys.argv]),
        "scene": dataclasses.asdict(scene.config),
        "held_out_camera": scene.held_out,
        "steps": {"base": BASE_STEPS, "p_frame": P_STEPS},
        "rate_3d": codec3d.RATE_3D,
        "runs": runs,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_average_before": load,
            "load_average_after": os.getloadavg(),
            "nice": os.nice(0),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

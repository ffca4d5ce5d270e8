"""Small multi-view scene folders for the 3D-mode tests (written by the tests, tiny)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nvc.codec.gaussian.fit3d import surface_points
from nvc.media import open_writer
from nvc.media.multiview import write_colmap_text, write_points3d_text
from nvc.media.scene_synth import ProceduralScene, SceneConfig

WIDTH, HEIGHT = 32, 18
CAMERAS, FRAMES = 3, 4
# encoder options that keep a test encode to a few seconds
FAST3D = {"gaussians": 120, "group": 3, "max_iterations": 3, "frame_budget": 5.0}


def procedural(frames: int = FRAMES, static: bool = False, cameras: int = CAMERAS):
    config = SceneConfig(
        width=WIDTH,
        height=HEIGHT,
        cameras=cameras,
        frames=frames,
        supersample=1,
        static=static,
        speed=4.0,
    )
    return ProceduralScene(config)


def write_colmap_scene(root: Path, scene: ProceduralScene, points: int = 300) -> Path:
    """A COLMAP folder: sparse/0 text files with SfM-like points (ray-cast surface points
    of frame 0) and one folder of PNG frames per camera."""
    write_colmap_text(root / "sparse" / "0", scene.cameras)
    c = scene.config
    for i, cam in enumerate(scene.cameras):
        with open_writer(
            root / cam.name / "", width=c.width, height=c.height, fps=c.fps, format="rgb24"
        ) as w:
            for f in range(c.frames):
                w.write(scene.frame(i, f))
    n = len(scene.cameras)
    images = [scene.render(i, 0) for i in range(n)]
    depths = [scene.depth(i, 0) for i in range(n)]
    p, rgb = surface_points(images, scene.cameras, depths, points, np.random.default_rng(0))
    write_points3d_text(root / "sparse" / "0", p, np.round(rgb * 255).astype(np.uint8))
    return root

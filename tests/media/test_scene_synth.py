"""The procedural multi-view scene: determinism, geometric consistency, N3DV output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nvc.errors import MediaError
from nvc.media.multiview import open_scene
from nvc.media.scene_synth import ProceduralScene, SceneConfig, write_n3dv

TINY = SceneConfig(width=48, height=27, cameras=8, frames=4, supersample=1)


def test_deterministic_by_seed() -> None:
    a, b = ProceduralScene(TINY), ProceduralScene(TINY)
    assert np.array_equal(a.render(3, 2), b.render(3, 2))
    other = ProceduralScene(SceneConfig(**{**TINY.__dict__, "seed": 1}))
    assert np.abs(other.render(3, 2) - a.render(3, 2)).mean() > 0.02


def test_pictures_have_detail_and_motion() -> None:
    scene = ProceduralScene(TINY)
    first, last = scene.render(0, 0), scene.render(0, 3)
    assert first.dtype == np.float32 and first.shape == (27, 48, 3)
    assert first.min() >= 0.0 and first.max() <= 1.0 and first.std() > 0.05
    assert np.abs(first - last).mean() > 0.005  # objects moved
    assert np.abs(scene.render(0, 0) - scene.render(7, 0)).mean() > 0.02  # another view


def test_static_variant_is_static() -> None:
    scene = ProceduralScene(SceneConfig(**{**TINY.__dict__, "static": True}))
    assert np.array_equal(scene.render(2, 0), scene.render(2, 3))


def test_held_out_camera_is_the_middle_of_the_arc() -> None:
    scene = ProceduralScene(SceneConfig(cameras=9))
    assert scene.held_out == 4 and scene.held_out not in scene.train_cameras
    assert len(scene.train_cameras) == 8
    xs = [c.center[0] for c in scene.cameras]
    assert xs == sorted(xs) and abs(xs[4]) < 1e-9


def test_a_point_projects_where_the_ray_caster_sees_it() -> None:
    # Cast a ray from camera 0, take the surface point it hits, project it into camera 7;
    # the ray of camera 7 through that pixel position hits the same point (where visible).
    scene = ProceduralScene(TINY)
    a, b = scene.cameras[0], scene.cameras[7]
    origin, dirs = a.rays()
    _, t = scene.ray_cast(origin, dirs, 1)
    points = origin + t[:, None] * dirs.reshape(-1, 3)
    uv, z = b.project(points)
    inside = (z > 0) & (uv[:, 0] > 0) & (uv[:, 0] < b.width) & (uv[:, 1] > 0)
    inside &= uv[:, 1] < b.height
    _, t_b = scene.ray_cast(b.center, b.directions(uv[inside]), 1)
    seen = b.center + t_b[:, None] * b.directions(uv[inside])
    err = np.linalg.norm(seen - points[inside], axis=1)
    distance = np.linalg.norm(points[inside] - b.center, axis=1)
    assert inside.sum() > 200
    assert np.mean(err < 1e-6) > 0.4
    # every other point is hidden from camera 7 by something nearer to it
    assert np.all((err < 1e-6) | (t_b < distance - 1e-6))
    # and depth() is the camera-space z of the points camera 0 sees
    depth = scene.depth(0, 1).reshape(-1)
    np.testing.assert_allclose(depth, (points @ a.R.T + a.t)[:, 2], rtol=1e-9)


def test_bad_configs() -> None:
    with pytest.raises(MediaError, match="at least 2 cameras"):
        ProceduralScene(SceneConfig(cameras=1))
    with pytest.raises(MediaError, match="no frame 4"):
        ProceduralScene(TINY).render(0, 4)


def test_written_as_n3dv_and_read_back(tmp_path: Path) -> None:
    scene = ProceduralScene(
        SceneConfig(**{**TINY.__dict__, "width": 32, "height": 18, "frames": 2})
    )
    root = write_n3dv(scene, tmp_path / "scene")
    assert sorted(p.name for p in root.iterdir())[:2] == ["cam00.mp4", "cam01.mp4"]
    read = open_scene(root)
    assert (len(read), read.width, read.height, read.frame_count) == (8, 32, 18, 2)
    for got, want in zip(read.cameras, scene.cameras, strict=True):
        np.testing.assert_allclose(got.R, want.R, atol=1e-12)
        np.testing.assert_allclose(got.t, want.t, atol=1e-12)
        assert got.fx == pytest.approx(want.fx) and got.near is not None and got.near > 0
    step = list(read.frames([5]))[1]
    assert np.array_equal(step[0].to_ndarray(), scene.render_uint8(5, 1))  # lossless
    with pytest.raises(MediaError, match="exists and is not an empty folder"):
        write_n3dv(scene, root)
    assert [p.name for p in tmp_path.iterdir()] == ["scene"]  # no temporary left behind

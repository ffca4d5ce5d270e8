"""Fitting static 3D Gaussians to the procedural scene's training views (CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nvc.codec.gaussian.fit3d import (
    Fit3DConfig,
    fit_static,
    initial_gaussians,
    render_fps,
    rgb_psnr,
    surface_points,
)
from nvc.errors import CodecError
from nvc.media.scene_synth import ProceduralScene, SceneConfig


@pytest.fixture(scope="module")
def views():
    scene = ProceduralScene(SceneConfig(width=40, height=24, cameras=6, frames=1))
    train = scene.train_cameras
    images = [scene.render(i, 0) for i in train]
    cameras = [scene.cameras[i] for i in train]
    depths = [scene.depth(i, 0) for i in train]
    return scene, images, cameras, depths


def test_fit_improves_the_held_out_view(views) -> None:
    scene, images, cameras, depths = views
    rng = np.random.default_rng(0)
    init = initial_gaussians(*surface_points(images, cameras, depths, 300, rng), 0.5)
    held = scene.cameras[scene.held_out]
    truth = scene.render(scene.held_out, 0)
    with torch.no_grad():
        before = rgb_psnr(init.render(held), truth)
    fitted, report = fit_static(images, cameras, init, Fit3DConfig(steps=60))
    with torch.no_grad():
        after = rgb_psnr(fitted.render(held), truth)
    assert report.steps == 60 and len(fitted) == 300
    assert after > before + 2.0, (before, after)
    assert report.train_psnr > after - 3.0  # training views fit at least about as well
    assert render_fps(fitted, held, repeats=1) > 0


def test_time_budget_and_relocation(views) -> None:
    _, images, cameras, depths = views
    rng = np.random.default_rng(1)
    init = initial_gaussians(*surface_points(images, cameras, depths, 50, rng), 0.5)
    _, report = fit_static(images, cameras, init, Fit3DConfig(steps=50, time_budget=0.0))
    assert report.steps == 0
    # every Gaussian counts as faded (opacity below 1): all are moved at step 2
    config = Fit3DConfig(steps=2, relocate_every=2, relocate_below=1.0)
    moved, report = fit_static(
        images,
        cameras,
        init,
        config,
        reseed=lambda n: surface_points(images, cameras, depths, n, rng),
    )
    assert report.relocated == 50
    assert not torch.allclose(moved.means, init.means)


def test_inputs_are_checked(views) -> None:
    _, images, cameras, depths = views
    init = initial_gaussians(
        *surface_points(images, cameras, depths, 20, np.random.default_rng(2)), 0.5
    )
    with pytest.raises(CodecError, match="does not match the camera"):
        fit_static([im[:-1] for im in images], cameras, init, Fit3DConfig(steps=1))
    with pytest.raises(CodecError, match="at least 4 points"):
        initial_gaussians(np.zeros((3, 3)), np.zeros((3, 3)), 0.5)

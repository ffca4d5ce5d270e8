"""QUEEN's learned hard-concrete position gates (gates.py) and their use in fit_static."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nvc.codec.gaussian import gates
from nvc.codec.gaussian.fit3d import Fit3DConfig, fit_static, initial_gaussians, surface_points
from nvc.errors import CodecError
from nvc.media.scene_synth import ProceduralScene, SceneConfig


def test_initial_logits_follow_the_score_around_the_threshold():
    scores = torch.tensor([0.0, 1.0, 2.0, 8.0, 1e9])
    logits = gates.initial_logits(scores, 2.0)
    assert logits[0] == -gates.INIT_LOGIT and logits[-1] == gates.INIT_LOGIT
    assert logits[2] == 0.0 and logits[3] == pytest.approx(gates.INIT_LOGIT)
    assert torch.all(torch.diff(logits[:4]) > 0)


def test_hard_concrete_draws_are_clipped_and_carry_gradient():
    logits = torch.zeros(20000, requires_grad=True)
    z = gates.sample(logits, torch.Generator().manual_seed(0))
    d = z.detach()
    assert float(d.min()) == 0.0 and float(d.max()) == 1.0  # exact zeros and ones occur
    inside = ((d > 0) & (d < 1)).float().mean()
    assert 0.5 < float(inside) < 0.95
    z.sum().backward()
    assert logits.grad is not None and float(logits.grad.abs().sum()) > 0
    det = gates.deterministic(torch.tensor([-10.0, 0.0, 10.0]))
    assert det.tolist() == [0.0, 0.5, 1.0]
    p = gates.open_probability(torch.tensor([-10.0, 10.0]))
    assert float(p[0]) < 1e-3 and float(p[1]) > 0.999


@pytest.fixture(scope="module")
def two_frames():
    scene = ProceduralScene(SceneConfig(width=40, height=24, cameras=6, frames=2))
    cams = [scene.cameras[i] for i in scene.train_cameras]
    first = [scene.render(i, 0) for i in scene.train_cameras]
    second = [scene.render(i, 1) for i in scene.train_cameras]
    depths = [scene.depth(i, 0) for i in scene.train_cameras]
    rng = np.random.default_rng(0)
    init = initial_gaussians(*surface_points(first, cams, depths, 200, rng), 0.5)
    return cams, second, init


def test_closed_gates_keep_their_means_exactly_and_open_ones_move(two_frames):
    cams, images, init = two_frames
    logits = torch.full((len(init),), -gates.INIT_LOGIT)
    logits[:20] = gates.INIT_LOGIT
    fitted, report = fit_static(
        images, cams, init, Fit3DConfig(steps=8), gates=logits, gate_cost=1e4, measure=False
    )
    assert report.moved is not None and report.moved.shape == (len(init),)
    closed = ~report.moved
    assert torch.equal(fitted.means[closed], init.means[closed])
    # the L0 cost closes gates; none opens that started all but closed
    assert int(report.moved[20:].sum()) == 0
    free, open_report = fit_static(
        images, cams, init, Fit3DConfig(steps=8), gates=torch.full((len(init),), 10.0)
    )
    assert open_report.moved is not None and bool(open_report.moved.all())
    assert not torch.equal(free.means, init.means)


def test_learned_gates_exclude_move_masks_and_relocation(two_frames):
    cams, images, init = two_frames
    with pytest.raises(CodecError, match="learned gates"):
        fit_static(
            images,
            cams,
            init,
            Fit3DConfig(steps=1),
            gates=torch.zeros(len(init)),
            move=torch.ones(len(init), dtype=torch.bool),
        )

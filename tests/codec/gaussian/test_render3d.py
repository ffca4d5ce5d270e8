"""The pure-PyTorch 3D Gaussian renderer: footprint, ordering, gradients, fitting."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nvc.codec.gaussian.render3d import (
    SH_C0,
    gsplat_render,
    quaternion_to_rotation,
    render,
)
from nvc.errors import CodecError
from nvc.media.scene_synth import ProceduralScene, SceneConfig

W, H = 64, 48
K = torch.tensor([[50.0, 0.0, 32.0], [0.0, 50.0, 24.0], [0.0, 0.0, 1.0]])
EYE = torch.eye(4)


def _one(mean, scales, quat=(1.0, 0.0, 0.0, 0.0), opacity=0.5, colour=(1.0, 1.0, 1.0)):
    logit = math.log(opacity / (1 - opacity))
    return (
        torch.tensor([mean], dtype=torch.float32),
        torch.log(torch.tensor([scales], dtype=torch.float32)),
        torch.tensor([quat], dtype=torch.float32),
        torch.tensor([logit], dtype=torch.float32),
        torch.tensor([colour], dtype=torch.float32),
    )


def _moments(alpha: torch.Tensor) -> tuple[float, float, float, float, float]:
    v, u = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
    total = alpha.sum()
    cu, cv = (alpha * u).sum() / total, (alpha * v).sum() / total
    var_u = (alpha * (u - cu) ** 2).sum() / total
    var_v = (alpha * (v - cv) ** 2).sum() / total
    return float(total), float(cu), float(cv), float(var_u), float(var_v)


def test_a_gaussian_renders_where_its_mean_projects_with_its_footprint() -> None:
    # isotropic, sigma 0.1 at depth 4: a 2D sigma of 50 * 0.1 / 4 = 1.25 px (+0.3 px^2)
    out = render(*_one((0.2, -0.1, 4.0), (0.1, 0.1, 0.1)), EYE, K, W, H)
    total, cu, cv, var_u, var_v = _moments(out.alpha)
    assert (cu, cv) == pytest.approx((32 + 50 * 0.2 / 4, 24 - 50 * 0.1 / 4), abs=0.01)
    np.testing.assert_allclose(out.means2d[0].numpy(), [34.5, 22.75], atol=1e-5)
    sigma2 = 1.25**2 + 0.3
    assert var_u == pytest.approx(sigma2, rel=0.05) and var_v == pytest.approx(sigma2, rel=0.05)
    assert total == pytest.approx(0.5 * 2 * math.pi * sigma2, rel=0.03)  # opacity x area
    assert int(out.radii[0]) == math.ceil(3 * math.sqrt(sigma2))
    assert out.image[..., 0].sum() == pytest.approx(total, rel=1e-5)  # white on black


def test_anisotropy_and_rotation() -> None:
    long_x = render(*_one((0.0, 0.0, 4.0), (0.3, 0.08, 0.08)), EYE, K, W, H)
    _, _, _, var_u, var_v = _moments(long_x.alpha)
    assert var_u == pytest.approx((50 * 0.3 / 4) ** 2 + 0.3, rel=0.06)
    assert var_v == pytest.approx(1.0**2 + 0.3, rel=0.06)
    turn = (math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4))  # 90 degrees about z
    long_y = render(*_one((0.0, 0.0, 4.0), (0.3, 0.08, 0.08), turn), EYE, K, W, H)
    _, _, _, var_u2, var_v2 = _moments(long_y.alpha)
    assert (var_u2, var_v2) == pytest.approx((var_v, var_u), rel=1e-3)


def test_camera_pose_moves_the_picture() -> None:
    # a camera translated by +0.4 in x sees the Gaussian 50 * 0.4 / 4 = 5 px further left
    view = torch.eye(4)
    view[0, 3] = -0.4  # t = -R c for a camera centred at x = 0.4
    out = render(*_one((0.0, 0.0, 4.0), (0.1, 0.1, 0.1)), view, K, W, H)
    _, cu, cv, _, _ = _moments(out.alpha)
    assert (cu, cv) == pytest.approx((27.0, 24.0), abs=0.01)


def _pair(red_depth: float, blue_depth: float):
    a = _one((0.0, 0.0, red_depth), (0.3, 0.3, 0.3), opacity=0.98, colour=(1, 0, 0))
    b = _one((0.0, 0.0, blue_depth), (0.3, 0.3, 0.3), opacity=0.98, colour=(0, 0, 1))
    return [torch.cat([x, y]) for x, y in zip(a, b, strict=True)]


def test_occlusion_follows_depth_not_input_order() -> None:
    red_front = render(*_pair(3.0, 5.0), EYE, K, W, H).image[24, 32]
    assert red_front[0] > 0.95 and red_front[2] < 0.05
    blue_front = render(*_pair(5.0, 3.0), EYE, K, W, H).image[24, 32]
    assert blue_front[2] > 0.95 and blue_front[0] < 0.05
    flipped = [x.flip(0) for x in _pair(3.0, 5.0)]
    assert torch.equal(render(*flipped, EYE, K, W, H).image[24, 32], red_front)
    behind = _one((0.0, 0.0, -3.0), (0.3, 0.3, 0.3))  # behind the camera: culled
    assert float(render(*behind, EYE, K, W, H).alpha.max()) == 0.0


def _random_gaussians(n: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(n, 3, generator=g) * torch.tensor([1.2, 0.8, 0.5]) + torch.tensor([0, 0, 4.0]),
        torch.log(torch.rand(n, 3, generator=g) * 0.15 + 0.03),
        torch.randn(n, 4, generator=g),
        torch.randn(n, generator=g),
        torch.rand(n, 3, generator=g),
    ]


def test_tiling_does_not_change_the_picture() -> None:
    params = _random_gaussians(300)
    bg = torch.tensor([0.2, 0.3, 0.4])
    a = render(*params, EYE, K, W, H, background=bg, tile=16).image
    b = render(*params, EYE, K, W, H, background=bg, tile=5).image
    c = render(*params, EYE, K, W, H, background=bg, tile=64).image
    assert a.shape == (H, W, 3)
    # a Gaussian is listed in every tile its 3-sigma square touches; only the
    # faint tails beyond that square may differ between tilings
    assert float((a - b).abs().max()) < 0.02 and float((a - c).abs().max()) < 0.02
    assert float((a - b).abs().mean()) < 1e-3


def test_sh_degree_zero_colours() -> None:
    params = _one((0.0, 0.0, 4.0), (0.2, 0.2, 0.2), opacity=0.9)
    sh = torch.tensor([[[0.5 / SH_C0, -0.25 / SH_C0, -1.0 / SH_C0]]])  # rgb 1, 0.25, 0
    out = render(*params[:4], sh, EYE, K, W, H, sh_degree=0).image[24, 32]
    np.testing.assert_allclose(out.numpy() / out[0].item(), [1.0, 0.25, 0.0], atol=1e-5)
    with pytest.raises(CodecError, match="SH degree 0 only"):
        render(*params[:4], sh, EYE, K, W, H, sh_degree=1)


def test_gradients_reach_every_parameter() -> None:
    params = [p.requires_grad_() for p in _random_gaussians(50)]
    out = render(*params, EYE, K, W, H, background=torch.tensor([0.5, 0.5, 0.5]))
    out.means2d.retain_grad()
    target = torch.rand(H, W, 3, generator=torch.Generator().manual_seed(1))
    ((out.image - target) ** 2).mean().backward()
    visible = out.radii > 0
    assert int(visible.sum()) > 20
    for name, p in zip(("means", "scales", "quats", "opacity", "colour"), params, strict=True):
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert float(p.grad[visible].abs().sum()) > 0, name
    assert out.means2d.grad is not None and float(out.means2d.grad[visible].abs().sum()) > 0


def test_quaternions_give_rotations() -> None:
    R = quaternion_to_rotation(torch.randn(10, 4, generator=torch.Generator().manual_seed(2)))
    eye = torch.eye(3).expand(10, 3, 3)
    assert torch.allclose(R @ R.transpose(1, 2), eye, atol=1e-5)
    assert torch.allclose(torch.linalg.det(R), torch.ones(10), atol=1e-5)


def test_bad_inputs_and_gsplat_off_cuda() -> None:
    params = _random_gaussians(4)
    with pytest.raises(CodecError, match=r"quats must have shape \(4, 4\)"):
        render(params[0], params[1], params[2][:, :3], *params[3:], EYE, K, W, H)
    with pytest.raises(CodecError, match="CUDA only"):
        gsplat_render(*params, EYE, K, W, H)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / ((a - b) ** 2).mean()))


def test_fitting_a_few_gaussians_to_a_ray_cast_view_improves_psnr() -> None:
    torch.manual_seed(0)
    scene = ProceduralScene(SceneConfig(width=48, height=27, cameras=8, frames=1))
    cam = scene.cameras[3]
    target = torch.from_numpy(scene.render(3, 0))
    # start from points on the surfaces (as SfM points would be), grey, small
    depth = scene.depth(3, 0).reshape(-1)
    origin, dirs = cam.rays()
    pick = np.random.default_rng(0).choice(depth.size, 200, replace=False)
    t = depth[pick] / (dirs.reshape(-1, 3)[pick] @ cam.R[2])
    points = origin + t[:, None] * dirs.reshape(-1, 3)[pick]
    means = torch.tensor(points, dtype=torch.float32).requires_grad_()
    log_scales = torch.full((200, 3), math.log(0.08)).requires_grad_()
    quats = torch.tensor([[1.0, 0, 0, 0]]).repeat(200, 1).requires_grad_()
    opacity = torch.full((200,), 1.0).requires_grad_()
    colour = torch.full((200, 3), 0.5).requires_grad_()
    viewmat = torch.tensor(cam.viewmat, dtype=torch.float32)
    k = torch.tensor(cam.K, dtype=torch.float32)
    params = [means, log_scales, quats, opacity, colour]
    opt = torch.optim.Adam(
        [
            {"params": [means], "lr": 0.005},
            {"params": [log_scales, quats], "lr": 0.02},
            {"params": [opacity], "lr": 0.05},
            {"params": [colour], "lr": 0.05},
        ]
    )
    before = _psnr(render(*params, viewmat, k, 48, 27).image.detach(), target)
    for _ in range(30):
        opt.zero_grad()
        loss = ((render(*params, viewmat, k, 48, 27).image - target) ** 2).mean()
        loss.backward()
        opt.step()
    after = _psnr(render(*params, viewmat, k, 48, 27).image.detach(), target)
    assert after > before + 8.0 and after > 21.0, (before, after)  # 11.5 -> 23.8 dB here


def test_the_fast_path_without_gradients_matches_the_differentiable_one() -> None:
    params = _random_gaussians(400, seed=3)
    params[3] = params[3] + 2.0  # mostly opaque: tiles saturate and leave the loop early
    bg = torch.tensor([0.1, 0.2, 0.3])
    with torch.no_grad():
        fast = render(*params, EYE, K, W, H, background=bg)
    params[0].requires_grad_()
    exact = render(*params, EYE, K, W, H, background=bg)
    exact.image, exact.alpha = exact.image.detach(), exact.alpha.detach()
    assert float((fast.image - exact.image).abs().max()) < 2e-5
    assert float((fast.alpha - exact.alpha).abs().max()) < 2e-5
    assert float(exact.alpha.max()) > 0.99

"""render3d's no-gradient path: same picture as the differentiable one, and its cull."""

from __future__ import annotations

import math

import pytest
import torch

from nvc.codec.gaussian import render3d
from nvc.codec.gaussian.render3d import render

# the largest |fast - differentiable| of a picture or alpha value: float32 rounding of
# the same sums in another order (block-local transmittance, cell-local coordinates)
TOLERANCE = 2e-5


def _scene(n: int, seed: int) -> list[torch.Tensor]:
    """Random Gaussians in front of the camera: anisotropic, rotated, opacities from
    nearly transparent to nearly opaque, some partly off screen."""
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(n, 3, generator=g) * torch.tensor([1.5, 1.0, 0.6]) + torch.tensor([0, 0, 4.0]),
        torch.log(torch.rand(n, 3, generator=g) * 0.25 + 0.01),
        torch.randn(n, 4, generator=g),
        torch.randn(n, generator=g) * 3.0,
        torch.rand(n, 3, generator=g),
    ]


@pytest.mark.parametrize(
    ("width", "height", "tile", "seed"),
    [(70, 45, 16, 0), (64, 48, 24, 1), (50, 37, 12, 2), (33, 20, 16, 3)],
)
def test_fast_path_agrees_with_the_differentiable_path(
    width: int, height: int, tile: int, seed: int
) -> None:
    params = _scene(500, seed)
    K = torch.tensor([[55.0, 0.0, width / 2 + 1.3], [0.0, 55.0, height / 2 - 0.7], [0, 0, 1.0]])
    view = torch.eye(4)
    view[:3, 3] = torch.tensor([0.1, -0.05, 0.2])
    bg = torch.tensor([0.3, 0.6, 0.1])
    with torch.inference_mode():
        fast = render(*params, view, K, width, height, background=bg, tile=tile)
    params[3].requires_grad_()
    exact = render(*params, view, K, width, height, background=bg, tile=tile)
    assert fast.image.shape == exact.image.shape == (height, width, 3)
    assert float((fast.image - exact.image.detach()).abs().max()) < TOLERANCE
    assert float((fast.alpha - exact.alpha.detach()).abs().max()) < TOLERANCE
    assert torch.equal(fast.radii, exact.radii)
    # some pixels saturate (the early exit is taken), others do not
    alpha = exact.alpha.detach()
    assert float(alpha.min()) < 0.95 and float(alpha.max()) > 1 - 2 * render3d.T_MIN
    # and the differentiable path still has its gradients
    exact.image.sum().backward()
    assert params[3].grad is not None and float(params[3].grad.abs().sum()) > 0


def test_minimum_of_a_quadratic_over_rectangles_matches_a_dense_search() -> None:
    g = torch.Generator().manual_seed(4)
    n = 300
    L = torch.randn(n, 2, 2, generator=g)
    S = L @ L.transpose(1, 2) + 0.05 * torch.eye(2)
    con = torch.stack([S[:, 0, 0], S[:, 0, 1], S[:, 1, 1]], -1).double()
    x0 = torch.randn(n, generator=g).double() * 6
    y0 = torch.randn(n, generator=g).double() * 6
    w = torch.rand(n, generator=g).double() * 7
    h = torch.rand(n, generator=g).double() * 7
    got = render3d._min_quadratic(con.unbind(-1), x0, x0 + w, y0, y0 + h)
    t = torch.linspace(0, 1, 401, dtype=torch.float64)
    dx = x0[:, None, None] + w[:, None, None] * t[None, :, None]
    dy = y0[:, None, None] + h[:, None, None] * t[None, None, :]
    a, b, c = (v[:, None, None] for v in con.unbind(-1))
    grid = (a * dx * dx + 2 * b * dx * dy + c * dy * dy).flatten(1).amin(1)
    assert bool((got <= grid + 1e-9).all())  # a lower bound of every sampled value
    assert float((grid - got).max()) < 1e-3 * float(grid.max())  # and the least one
    assert int((got == 0).sum()) > 5 and int((got > 1).sum()) > 100  # both cases seen


def test_cells_list_only_the_gaussians_they_can_see() -> None:
    # one round Gaussian at a tile corner: its 3-sigma square touches 4 tiles of 16 (16
    # cells of 8), but with opacity 0.05 its alpha reaches 1/255 only within
    # sigma sqrt(2 ln(0.05 * 255)) = 2.26 sigma = 4.6 px: the 4 cells at the corner
    K = torch.tensor([[50.0, 0.0, 0.0], [0.0, 50.0, 0.0], [0.0, 0.0, 1.0]])
    means = torch.tensor([[32.0 * 4 / 50, 32.0 * 4 / 50, 4.0]])
    sigma = math.sqrt(2.0**2 - 0.3) * 4 / 50  # a 2 px footprint with eps2d
    params = [
        means,
        torch.full((1, 3), math.log(sigma)),
        torch.tensor([[1.0, 0.0, 0.0, 0.0]]),
        torch.tensor([math.log(0.05 / 0.95)]),
        torch.ones(1, 3),
    ]
    with torch.inference_mode():
        proj, _ = render3d.project(*params[:3], torch.eye(4), K, 64, 64)
        tile_ids, gauss = render3d._pairs(proj, 4, 4, 16)
        mu = torch.cat([proj.means2d, proj.means2d.new_zeros(1, 2)])
        con = torch.cat([proj.conics, proj.conics.new_zeros(1, 3)])
        log_opa = torch.tensor([math.log(0.05), -100.0])
        cells, _ = render3d._cell_pairs(tile_ids, gauss, mu, con, log_opa, 4, 2, 8, (8, 8))
    assert sorted(tile_ids.tolist()) == [5, 6, 9, 10]
    # cells are numbered on the 8 x 8 grid of 8-pixel cells; (3, 3), (4, 3), (3, 4), (4, 4)
    assert cells.tolist() == [27, 28, 35, 36]

"""Fitting a static base set of 3D Gaussians to calibrated views, on the CPU.

The optimisation of 3D Gaussian Splatting (Kerbl et al., SIGGRAPH 2023): Gaussians start
at points on the scene's surfaces with the colour seen there and an isotropic size from
their three nearest neighbours; then Adam, one training view per step, minimises the L1
photometric error of the render (nvc.codec.gaussian.render3d) against the view. What is
left out: the D-SSIM term, higher spherical-harmonics degrees (colour is degree 0: enough
for the procedural scene's view-independent Lambertian shading), and densification by cloning and
splitting. The count is fixed instead, as V^3 (Wang et al., SIGGRAPH Asia 2024) keeps it
fixed within a group so that attributes line up frame to frame; Gaussians that fade out
(opacity under `relocate_below`) are moved to fresh surface points every
`relocate_every` steps, an MCMC-style relocation (Kheradmand et al., 2024) in its
simplest form. This is the base set of a random-access point; QUEEN's (Girish et al.,
NeurIPS 2024) per-frame residuals start from it.

Where the points come from: COLMAP scenes have SfM points
(nvc.media.multiview.read_points3d); `surface_points` back-projects pixels of the
training views through depth maps, which the procedural scene gives exactly (its ray
caster): a stand-in for SfM points, and said to be one wherever results are reported.
N3DV folders have neither (only near/far bounds): `photo_consistent_points` places
random pixels at the depth within those bounds where the other views agree best (a plane
sweep at sampled pixels). On the procedural scene (80x45, 5 training views, 1500
Gaussians, bounds from the depth range as write_n3dv writes them), the held-out PSNR after
60 steps was 21.5 dB from random depths, 25.5 dB from the sweep and 27.6 dB from the
exact surface points (benchmarks/gaussian3d_init.py, results/gaussian3d_init.json).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from nvc.codec.gaussian import gates as hc
from nvc.codec.gaussian.render3d import SH_C0, render
from nvc.errors import CodecError
from nvc.media.multiview import Camera

PATCH_RADIUS = 1  # photo_consistent_points compares 3 x 3 pixel patches


@dataclass(frozen=True)
class Fit3DConfig:
    """How a static set of 3D Gaussians is fitted."""

    gaussians: int = 3000  # number of Gaussians (fixed during the fit)
    steps: int = 300  # optimisation steps, one training view each
    lr_means: float = 1.6e-4  # Adam step of the means, times the scene extent (3DGS)
    lr_log_scales: float = 5e-3  # Adam step of the log-scales (3DGS)
    lr_quats: float = 1e-3  # Adam step of the quaternions (3DGS)
    lr_opacity: float = 5e-2  # Adam step of the opacity logits (3DGS)
    lr_colours: float = 2.5e-3 / SH_C0  # Adam step of the SH-0 colours (3DGS's, in RGB)
    init_opacity: float = 0.5  # initial opacity of every Gaussian
    relocate_every: int = 100  # steps between relocations of faded Gaussians (0: never)
    relocate_below: float = 0.01  # opacity under which a Gaussian counts as faded
    time_budget: float | None = None  # seconds: stop after this long (None: all steps)
    min_steps: int = 0  # steps taken whatever the time budget
    seed: int = 0  # seeds view order, point sampling and relocation


@dataclass
class Gaussians3D:
    """Float parameters of N 3D Gaussians (render3d's inputs; colours are SH degree 0)."""

    means: Tensor  # (N, 3) world positions
    log_scales: Tensor  # (N, 3) log of the per-axis standard deviations
    quats: Tensor  # (N, 4) rotations, w x y z, not necessarily unit
    opacity_logits: Tensor  # (N,) logit of the opacity
    sh0: Tensor  # (N, 3) degree-0 spherical-harmonics coefficients (RGB = 0.5 + C0 sh0)

    def __len__(self) -> int:
        return int(self.means.shape[0])

    def tensors(self) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """The parameters in render3d.render's order."""
        return (self.means, self.log_scales, self.quats, self.opacity_logits, self.sh0)

    def render(self, camera: Camera, background: Tensor | None = None) -> Tensor:
        """The (H, W, 3) picture of these Gaussians from `camera`."""
        viewmat, K = camera_matrices(camera)
        out = render(
            *self.tensors(),
            viewmat,
            K,
            camera.width,
            camera.height,
            background=background,
            sh_degree=0,
        )
        return out.image

    def detach(self) -> Gaussians3D:
        return Gaussians3D(*(t.detach().clone() for t in self.tensors()))


@dataclass
class FitReport:
    """What a fit did."""

    steps: int  # steps taken (fewer than asked when the time budget ran out)
    seconds: float  # wall time of the fit
    relocated: int  # Gaussians moved by relocation, in total
    train_psnr: float  # mean PSNR (RGB, dB) over the training views after the fit
    moved: Tensor | None = None  # (N,) bool: the learned position gates that ended open


def camera_matrices(camera: Camera) -> tuple[Tensor, Tensor]:
    """render3d's float32 (4, 4) world-to-camera matrix and (3, 3) intrinsics of a camera."""
    return (
        torch.tensor(camera.viewmat, dtype=torch.float32),
        torch.tensor(camera.K, dtype=torch.float32),
    )


def rgb_psnr(a: Tensor | np.ndarray, b: Tensor | np.ndarray) -> float:
    """PSNR in dB of two float RGB pictures in [0, 1] (peak 1)."""
    x = torch.as_tensor(a, dtype=torch.float64).clamp(0, 1)
    y = torch.as_tensor(b, dtype=torch.float64).clamp(0, 1)
    mse = float(((x - y) ** 2).mean())
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def surface_points(
    images: Sequence[np.ndarray],
    cameras: Sequence[Camera],
    depths: Sequence[np.ndarray],
    count: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """`count` world points (count, 3) and their colours (count, 3): random pixels of the
    views back-projected through their depth maps (camera-space z, inf where empty)."""
    points, colours = [], []
    per_view = np.diff(np.linspace(0, count, len(cameras) + 1).round().astype(int))
    for image, cam, depth, n in zip(images, cameras, depths, per_view, strict=True):
        valid = np.flatnonzero(np.isfinite(depth.reshape(-1)))
        if valid.size == 0:
            continue
        pick = rng.choice(valid, size=n, replace=valid.size < n)
        v, u = np.divmod(pick, cam.width)
        uv = np.stack([u + rng.uniform(0, 1, n), v + rng.uniform(0, 1, n)], axis=1)
        d = cam.directions(uv)
        t = depth.reshape(-1)[pick] / (d @ cam.R[2])
        points.append(cam.center + t[:, None] * d)
        colours.append(image.reshape(-1, 3)[pick])
    if not points:
        raise CodecError("no view has any depth to place Gaussians at")
    return np.concatenate(points), np.concatenate(colours)


def photo_consistent_points(
    images: Sequence[np.ndarray],
    cameras: Sequence[Camera],
    count: int,
    rng: np.random.Generator,
    *,
    bounds: Sequence[tuple[float, float]],
    candidates: int = 32,
) -> tuple[np.ndarray, np.ndarray]:
    """`count` world points and colours for scenes without SfM points or depth: random
    pixels of each view, each placed at the one of `candidates` depths (uniform in inverse
    depth within that view's (near, far) `bounds`) where the other views see the most
    similar colours (the mean squared difference of the 3 x 3 pixel patches around the
    pixel and around its projections, averaged over the views that see the point): a
    plane sweep at sampled pixels only (the patches are not warped)."""
    if len(cameras) < 2:
        raise CodecError("placing points without depth needs at least two views")
    per_view = np.diff(np.linspace(0, count, len(cameras) + 1).round().astype(int))
    points, colours = [], []
    for v, (image, cam, n, (near, far)) in enumerate(
        zip(images, cameras, per_view, bounds, strict=True)
    ):
        if n == 0:
            continue
        uv = rng.uniform(0, 1, (n, 2)) * (cam.width, cam.height)
        px = np.minimum(uv.astype(int), (cam.width - 1, cam.height - 1))
        own = image[px[:, 1], px[:, 0]]
        own_patch = _patch(image, px)  # (n, P, 3)
        d = cam.directions(uv)
        inv = np.linspace(1.0 / near, 1.0 / far, candidates)
        z = 1.0 / inv  # (K,) depths
        t = z[None, :] / (d @ cam.R[2])[:, None]  # (n, K) ray parameters
        world = cam.center + t[..., None] * d[:, None, :]  # (n, K, 3)
        cost = np.zeros((n, candidates))
        seen = np.zeros((n, candidates))
        for w, (other, oc) in enumerate(zip(images, cameras, strict=True)):
            if w == v:
                continue
            ouv, oz = oc.project(world.reshape(-1, 3))
            ok = (oz > 1e-6) & np.all(np.isfinite(ouv), axis=1)
            ok &= (ouv[:, 0] >= 0) & (ouv[:, 0] < oc.width)
            ok &= (ouv[:, 1] >= 0) & (ouv[:, 1] < oc.height)
            opx = np.where(ok[:, None], ouv, 0).astype(int)
            col = _patch(other, opx).reshape(n, candidates, -1, 3)
            diff = ((col - own_patch[:, None]) ** 2).sum(-1).mean(-1)
            ok = ok.reshape(n, candidates)
            cost += np.where(ok, diff, 0.0)
            seen += ok
        score = np.where(seen > 0, cost / np.maximum(seen, 1), np.inf)
        best = np.argmin(score, axis=1)
        points.append(world[np.arange(n), best])
        colours.append(own)
    return np.concatenate(points), np.concatenate(colours)


def _patch(image: np.ndarray, px: np.ndarray, radius: int = PATCH_RADIUS) -> np.ndarray:
    """(N, P, 3) colours of the (2 radius + 1)^2 pixels around integer pixels px (N, 2)
    (x, y), clamped at the borders."""
    h, w = image.shape[:2]
    r = np.arange(-radius, radius + 1)
    oy, ox = (a.reshape(-1) for a in np.meshgrid(r, r, indexing="ij"))
    x = np.clip(px[:, :1] + ox, 0, w - 1)
    y = np.clip(px[:, 1:2] + oy, 0, h - 1)
    return image[y, x]


def initial_gaussians(points: np.ndarray, colours: np.ndarray, opacity: float) -> Gaussians3D:
    """Gaussians at `points` with `colours`, isotropic with a standard deviation of the
    mean distance to their three nearest neighbours (3DGS's initialisation)."""
    p = torch.tensor(points, dtype=torch.float32)
    n = p.shape[0]
    if n < 4:
        raise CodecError(f"at least 4 points are needed to start from, got {n}")
    nearest = []
    for s in range(0, n, 1024):
        dist = torch.cdist(p[s : s + 1024], p)
        nearest.append(dist.topk(4, largest=False).values[:, 1:].mean(1))
    scale = torch.cat(nearest).clamp_min(1e-4)
    rgb = torch.tensor(colours, dtype=torch.float32).clamp(0, 1)
    return Gaussians3D(
        p,
        torch.log(scale)[:, None].repeat(1, 3),
        torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(n, 1),
        torch.full((n,), math.log(opacity / (1 - opacity))),
        (rgb - 0.5) / SH_C0,
    )


def fit_static(
    images: Sequence[np.ndarray],
    cameras: Sequence[Camera],
    init: Gaussians3D,
    config: Fit3DConfig,
    *,
    reseed: Callable[[int], tuple[np.ndarray, np.ndarray]] | None = None,
    progress: Callable[[int, float], None] | None = None,
    move: Tensor | None = None,
    update: Tensor | None = None,
    lr_scale: float | Sequence[float] = 1.0,
    measure: bool = True,
    anchor: Gaussians3D | None = None,
    rate: Sequence[float] | None = None,
    gates: Tensor | None = None,
    gate_cost: float = 0.0,
) -> tuple[Gaussians3D, FitReport]:
    """Fit `init` to float RGB views (H, W, 3) in [0, 1] taken by `cameras`.

    `reseed(n)` gives n fresh (points, colours) for relocation (none without it);
    `progress(step, loss)` is called after every step; `move` (N,) bool, when given, lets
    only those Gaussians' means move (QUEEN's position gates); `update` (N,) bool, when
    given, lets only those Gaussians' other attributes change; `lr_scale` scales every
    learning rate (one number, or one per tensor in Gaussians3D.tensors order);
    `measure=False` skips the training-view PSNR (reported as nan); with `anchor` and
    `rate` (one weight per tensor), the loss adds sum_t rate_t |tensor_t - anchor_t|
    summed over the elements and divided by the view's pixel count: an L1 rate term that
    keeps the attributes that do not pay for themselves at the anchor (the previous
    state), where rounding then gives a zero residual. With `gates` (N,) initial logits
    (instead of `move`), the means are init's plus hard-concrete-gated learned residuals
    (gates.py, QUEEN), with an L0 penalty of `gate_cost` per open gate (per view pixel, as
    the rate term); FitReport.moved says which gates ended open (the others' means are
    init's exactly)."""
    if len(images) != len(cameras) or not cameras:
        raise CodecError("fit_static needs one image per camera, and at least one")
    for image, cam in zip(images, cameras, strict=True):
        if image.shape != (cam.height, cam.width, 3):
            raise CodecError(f"{cam.name}: image {image.shape} does not match the camera")
    rng = np.random.default_rng(config.seed)
    targets = [torch.as_tensor(np.asarray(im, np.float32)) for im in images]
    mats = [camera_matrices(c) for c in cameras]
    g = Gaussians3D(*(t.detach().clone().requires_grad_() for t in init.tensors()))
    tensors = g.tensors()
    centres = np.array([c.center for c in cameras])
    extent = float(np.linalg.norm(centres - centres.mean(0), axis=1).max()) * 1.1 or 1.0
    if gates is not None and (move is not None or reseed is not None):
        raise CodecError("fit_static: learned gates replace `move` and exclude relocation")
    if move is not None:
        _mask_gradient(g.means, move)
    if update is not None:
        for t in tensors[1:]:
            _mask_gradient(t, update)
    scales = [lr_scale] * 5 if isinstance(lr_scale, int | float) else list(lr_scale)
    rates = [
        config.lr_means * extent,
        config.lr_log_scales,
        config.lr_quats,
        config.lr_opacity,
        config.lr_colours,
    ]
    groups = [
        {"params": [t], "lr": lr * k} for t, lr, k in zip(tensors, rates, scales, strict=True)
    ]
    if gates is not None:  # means = base + z delta: delta and the logits learn, not the means
        base = g.means.detach().clone()
        g.means.requires_grad_(False)
        delta = torch.zeros_like(base, requires_grad=True)
        logits = gates.detach().clone().float().requires_grad_()
        groups[0] = {"params": [delta], "lr": groups[0]["lr"]}
        groups.append({"params": [logits], "lr": hc.GATE_LR})
        noise = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.Adam(groups, eps=1e-15)
    start = time.perf_counter()
    steps = relocated = 0
    order: list[int] = []
    for step in range(config.steps):
        over = config.time_budget is not None and time.perf_counter() - start > config.time_budget
        if over and step >= config.min_steps:
            break
        if not order:
            order = list(rng.permutation(len(cameras)))
        view = order.pop()
        cam = cameras[view]
        viewmat, K = mats[view]
        means = tensors[0]
        if gates is not None:
            means = base + hc.sample(logits, noise)[:, None] * delta
        _, log_scales, quats, opacity, sh0 = tensors
        out = render(
            means, log_scales, quats, opacity, sh0, viewmat, K, cam.width, cam.height, sh_degree=0
        )
        loss = (out.image - targets[view]).abs().mean()
        pixels = float(cam.width * cam.height)
        if anchor is not None and rate is not None:
            for t, a, w in zip(tensors, anchor.tensors(), rate, strict=True):
                if w:
                    loss = loss + (w / pixels) * (t - a).abs().sum()
        if gates is not None and gate_cost:
            loss = loss + (gate_cost / pixels) * hc.open_probability(logits).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps = step + 1
        if reseed is not None and config.relocate_every and steps % config.relocate_every == 0:
            relocated += _relocate(g, opt, config, reseed)
        if progress is not None:
            progress(steps, loss.item())
    seconds = time.perf_counter() - start
    fitted = g.detach()
    moved = None
    if gates is not None:
        with torch.no_grad():
            moved = hc.deterministic(logits) >= 0.5  # open: the whole residual is sent
            fitted.means = torch.where(moved[:, None], base + delta, base)
    if not measure:
        return fitted, FitReport(steps, seconds, relocated, math.nan, moved)
    with torch.no_grad():
        psnrs = [rgb_psnr(fitted.render(c), t) for c, t in zip(cameras, targets, strict=True)]
    return fitted, FitReport(steps, seconds, relocated, float(np.mean(psnrs)), moved)


def gate_scores(
    g: Gaussians3D,
    cameras: Sequence[Camera],
    now: Sequence[np.ndarray],
    before: Sequence[np.ndarray],
) -> Tensor:
    """(N,) per Gaussian: the norm of the view-space positional gradient of the
    frame-to-frame loss difference L1(render, now) - L1(render, before), summed over the
    views (QUEEN's signal for which Gaussians move: it is zero where the two frames agree).
    By linearity it is the difference of the two frames' gradients, from one backward pass
    per view."""
    total = torch.zeros(len(g), dtype=torch.float64)
    tensors = [t.detach().clone() for t in g.tensors()]
    for cam, a, b in zip(cameras, now, before, strict=True):
        viewmat, K = camera_matrices(cam)
        means = tensors[0].clone().requires_grad_()
        _, log_scales, quats, opacity, sh0 = tensors
        out = render(
            means, log_scales, quats, opacity, sh0, viewmat, K, cam.width, cam.height, sh_degree=0
        )
        out.means2d.retain_grad()
        ta = torch.as_tensor(np.asarray(a, np.float32))
        tb = torch.as_tensor(np.asarray(b, np.float32))
        loss = (out.image - ta).abs().mean() - (out.image - tb).abs().mean()
        loss.backward()
        grad = out.means2d.grad
        if grad is not None:
            total += grad.double().norm(dim=-1)
    return total


def _mask_gradient(t: Tensor, rows: Tensor) -> None:
    """Zero the gradient of t's rows where `rows` (N,) is False."""
    mask = rows.to(t.dtype).reshape(-1, *([1] * (t.ndim - 1)))
    t.register_hook(lambda grad: grad * mask)


def _relocate(
    g: Gaussians3D,
    opt: torch.optim.Optimizer,
    config: Fit3DConfig,
    reseed: Callable[[int], tuple[np.ndarray, np.ndarray]],
) -> int:
    """Move faded Gaussians to fresh points (new size from the others, Adam state reset)."""
    with torch.no_grad():
        faded = torch.nonzero(torch.sigmoid(g.opacity_logits) < config.relocate_below)
        faded = faded.squeeze(1)
        n = int(faded.numel())
        if n == 0:
            return 0
        points, colours = reseed(n)
        fresh = initial_gaussians(
            np.concatenate([points, g.means.numpy()]),
            np.concatenate([colours, np.full((len(g), 3), 0.5)]),
            config.init_opacity,
        )
        for t, new in zip(g.tensors(), fresh.tensors(), strict=True):
            t[faded] = new[:n]
            state = opt.state.get(t, {})
            for key in ("exp_avg", "exp_avg_sq"):
                if key in state:
                    state[key][faded] = 0.0
    return n


def render_fps(gaussians: Gaussians3D, camera: Camera, repeats: int = 5) -> float:
    """Frames per second of rendering `camera`'s view (median of `repeats`, no gradients)."""
    times = []
    with torch.no_grad():
        gaussians.render(camera)  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            gaussians.render(camera)
            times.append(time.perf_counter() - t0)
    return 1.0 / float(np.median(times))

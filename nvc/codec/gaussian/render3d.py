"""A differentiable renderer of 3D Gaussians in pure PyTorch (CPU), and gsplat on CUDA.

Written from the description in Kerbl, Kopanas, Leimkühler and Drettakis, "3D Gaussian
Splatting for Real-Time Radiance Field Rendering" (SIGGRAPH 2023), whose projection is
the EWA splatting of Zwicker, Pfister, van Baar and Gross (2001):

- each Gaussian has a mean mu, a rotation q (quaternion, w x y z), per-axis scales
  s = exp(log_scales), an opacity o = sigmoid(opacity_logit) and a colour;
  its covariance is Sigma = R(q) diag(s)^2 R(q)^T;
- a camera with world-to-camera rotation W, translation t and intrinsics fx, fy, cx, cy
  sees the mean at p = W mu + t and the covariance, through the Jacobian J of the
  perspective projection at p (the local affine approximation), as the 2D covariance
  Sigma' = J W Sigma W^T J^T; a low-pass term `eps2d` (0.3 pixel^2, as in 3DGS) is added
  to its diagonal so no footprint is smaller than about a pixel. As 3DGS does, p's
  x/z and y/z are clamped to 1.3 times the field of view in the Jacobian so Gaussians at
  the border of the view do not blow up;
- the image is cut into `tile` x `tile` tiles; every Gaussian is listed in each tile its
  3-sigma bounding square touches, and the lists are sorted by depth (3DGS sorts by the
  key (tile, depth) once per frame; so does this);
- every pixel composites its tile's Gaussians front to back:
  alpha_i = min(0.99, o_i exp(-1/2 d_i^T Sigma'^-1 d_i)), skipped below 1/255;
  C = sum_i c_i alpha_i prod_{j<i} (1 - alpha_j) + T_final * background, and a pixel
  stops once its transmittance would drop below 1e-4 (3DGS's rules).

The compositing is written with tensors, not loops over pixels, so autograd
differentiates it: each Gaussian's exponent is a quadratic in the tile-local pixel
position, so a chunk of tiles gets all its exponents from one batched matrix product;
transmittance is a cumulative product along each tile's list. Tiles are processed in
chunks that bound memory, grouped by list length so that little padding is done.

Without gradients (decoding, the player) `render` takes a faster path to the same
picture (within float32 rounding, 2e-5 in the tests): each tile is split into 8 x 8
cells that inherit its list less the Gaussians whose alpha stays below 1/255 on every
pixel of the cell (the least of the exponent's quadratic form over the cell, in closed
form; such Gaussians add exactly nothing there), cells outside the image are dropped,
the exponent coefficients are computed once per (cell, Gaussian) pair, and the lists
are walked in blocks of BLOCK Gaussians, in place, in steps that fit a CPU's L2 cache; a
cell leaves once all its pixels have saturated (3DGS's early termination, per cell).

Pixel convention (nvc.media.multiview): the centre of pixel (row i, column j) is at
(j + 0.5, i + 0.5), and K's principal point is measured from the top-left corner, as in
gsplat.

`gsplat_render` has the same signature and calls gsplat's `rasterization` (imported
lazily, CUDA only). It was written against gsplat's documented API (1.x) and **has not
been run on CUDA**: no GPU was available when it was written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from nvc.errors import CodecError

SH_C0 = 0.28209479177387814  # the degree-0 spherical-harmonics basis value 1 / (2 sqrt(pi))
ALPHA_MAX = 0.99  # largest alpha of one Gaussian at one pixel (3DGS)
ALPHA_MIN = 1.0 / 255.0  # smaller alphas are skipped (3DGS)
T_MIN = 1e-4  # a pixel stops compositing when its transmittance would fall below this
FOV_CLAMP = 1.3  # Jacobian evaluated with x/z, y/z clamped to this times the field of view
CHUNK_ELEMENTS = 1 << 21  # tile-chunk size bound: tiles x pixels x Gaussians per chunk
BLOCK = 32  # Gaussians per step of the compositing loop when no gradient is needed
SUBTILE = 8  # side of the cells the no-gradient path composites (when it divides `tile`)
FAST_ELEMENTS = 1 << 17  # no-gradient step size: cells x pixels x BLOCK (fits in L2)
CULL_SLACK = 0.01  # log-alpha margin of the per-cell cull: borderline pairs are kept


@dataclass
class Projected:
    """Gaussians projected into one camera (only those in front of it and on screen)."""

    index: Tensor  # (M,) int64: which input Gaussians these are
    means2d: Tensor  # (M, 2) pixel positions (u, v) of the means
    conics: Tensor  # (M, 3) inverse 2D covariance (a, b, c): [[a, b], [b, c]]
    depths: Tensor  # (M,) camera-space z of the means
    radii: Tensor  # (M,) int64 3-sigma radius in pixels (bounding square half side)


@dataclass
class Render3D:
    """What a render returns."""

    image: Tensor  # (H, W, 3) composited colour
    alpha: Tensor  # (H, W) accumulated opacity (1 - final transmittance)
    means2d: Tensor  # (N, 2) projected means of all input Gaussians (0 where culled);
    # its gradient is the view-space positional gradient QUEEN and 3DGS densify with
    radii: Tensor  # (N,) int64 3-sigma radii in pixels (0 where culled)


def quaternion_to_rotation(quats: Tensor) -> Tensor:
    """(N, 3, 3) rotation matrices of (N, 4) quaternions (w, x, y, z), normalised first."""
    q = quats / quats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z),
            2 * (x * y - w * z),
            2 * (x * z + w * y),
            2 * (x * y + w * z),
            1 - 2 * (x * x + z * z),
            2 * (y * z - w * x),
            2 * (x * z - w * y),
            2 * (y * z + w * x),
            1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(-1, 3, 3)


def colours_of(colors: Tensor, sh_degree: int | None) -> Tensor:
    """(N, 3) RGB: `colors` as they are (sh_degree None), or from degree-0 spherical
    harmonics coefficients (N, 3) or (N, 1, 3) as 3DGS evaluates them: max(0, C0 sh + 0.5)."""
    if sh_degree is None:
        return colors
    if sh_degree != 0:
        raise CodecError(f"the CPU renderer supports SH degree 0 only, not {sh_degree}")
    return (SH_C0 * colors.reshape(colors.shape[0], 3) + 0.5).clamp_min(0.0)


def project(
    means: Tensor,
    log_scales: Tensor,
    quats: Tensor,
    viewmat: Tensor,
    K: Tensor,
    width: int,
    height: int,
    *,
    near: float = 0.01,
    eps2d: float = 0.3,
) -> tuple[Projected, Tensor]:
    """EWA projection (module docstring) of all Gaussians; also returns the (N, 2) means2d
    of every input Gaussian (the culled ones included)."""
    R, t = viewmat[:3, :3], viewmat[:3, 3]
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    p = means @ R.T + t
    x, y, z = p.unbind(-1)
    zc = z.clamp_min(near)
    u = fx * x / zc + cx
    v = fy * y / zc + cy
    means2d = torch.stack([u, v], dim=-1)
    lim_x = FOV_CLAMP * 0.5 * width / float(fx)
    lim_y = FOV_CLAMP * 0.5 * height / float(fy)
    tx = (x / zc).clamp(-lim_x, lim_x) * zc
    ty = (y / zc).clamp(-lim_y, lim_y) * zc
    zero = torch.zeros_like(zc)
    J = torch.stack(
        [fx / zc, zero, -fx * tx / (zc * zc), zero, fy / zc, -fy * ty / (zc * zc)], dim=-1
    ).reshape(-1, 2, 3)
    M = quaternion_to_rotation(quats) * torch.exp(log_scales)[:, None, :]
    sigma = M @ M.transpose(1, 2)
    T = J @ R
    cov = T @ sigma @ T.transpose(1, 2)
    a = cov[:, 0, 0] + eps2d
    b = cov[:, 0, 1]
    c = cov[:, 1, 1] + eps2d
    det = a * c - b * b
    with torch.no_grad():
        mid = 0.5 * (a + c)
        lam = mid + torch.sqrt((mid * mid - det).clamp_min(0.1))
        radii = torch.ceil(3.0 * torch.sqrt(lam)).to(torch.int64)
        keep = (z > near) & (det > 0)
        keep &= (u + radii > 0) & (u - radii < width) & (v + radii > 0) & (v - radii < height)
        index = torch.nonzero(keep).squeeze(1)
    d = det[index]
    conics = torch.stack([c[index] / d, -b[index] / d, a[index] / d], dim=-1)
    projected = Projected(index, means2d[index], conics, z[index], radii[index])
    return projected, means2d


def _pairs(proj: Projected, tiles_x: int, tiles_y: int, tile: int) -> tuple[Tensor, Tensor]:
    """Every (tile id, Gaussian) pair of a Gaussian listed in a tile its 3-sigma bounding
    square touches: tile ids ascending and, within a tile, Gaussians (indices into proj's)
    front to back (3DGS's single sort by the key (tile, depth))."""
    m = proj.index.numel()
    with torch.no_grad():
        order = torch.sort(proj.depths.detach(), stable=True).indices
        mu = proj.means2d.detach()[order]
        r = proj.radii[order]
        x0 = torch.div(mu[:, 0] - r, tile, rounding_mode="floor").clamp(0, tiles_x - 1).long()
        x1 = torch.div(mu[:, 0] + r, tile, rounding_mode="floor").clamp(0, tiles_x - 1).long()
        y0 = torch.div(mu[:, 1] - r, tile, rounding_mode="floor").clamp(0, tiles_y - 1).long()
        y1 = torch.div(mu[:, 1] + r, tile, rounding_mode="floor").clamp(0, tiles_y - 1).long()
        wx = x1 - x0 + 1
        counts = wx * (y1 - y0 + 1)
        owner = torch.repeat_interleave(torch.arange(m), counts)  # position in depth order
        starts = torch.cumsum(counts, 0) - counts
        k = torch.arange(int(counts.sum())) - starts[owner]
        tile_ids = (y0[owner] + k // wx[owner]) * tiles_x + x0[owner] + k % wx[owner]
        tile_ids, perm = torch.sort(tile_ids, stable=True)  # stable: depth order kept
    return tile_ids, order[owner[perm]]


def _padded_lists(
    ids: Tensor, gauss: Tensor, n_cells: int, m: int
) -> tuple[Tensor, Tensor, Tensor]:
    """(cells, K) lists of the sorted (cell id, Gaussian) pairs, padded with m (a
    transparent dummy), for the cells that hold any; their cell ids and list lengths,
    shortest lists first (so chunks of consecutive cells pad little)."""
    per_cell = torch.bincount(ids, minlength=n_cells)
    width = int(per_cell.max()) if per_cell.numel() and ids.numel() else 0
    lists = torch.full((n_cells, max(width, 1)), m, dtype=torch.int64)
    first = torch.cumsum(per_cell, 0) - per_cell
    slot = torch.arange(ids.numel()) - first[ids]
    lists[ids, slot] = gauss
    busy = torch.nonzero(per_cell).squeeze(1)
    busy = busy[torch.sort(per_cell[busy], stable=True).indices]  # fewest first
    return lists[busy], busy, per_cell[busy]


def _tile_lists(
    proj: Projected, tiles_x: int, tiles_y: int, tile: int
) -> tuple[Tensor, Tensor, Tensor]:
    """_padded_lists of the tiles' depth-sorted lists (_pairs)."""
    with torch.no_grad():
        tile_ids, gauss = _pairs(proj, tiles_x, tiles_y, tile)
        return _padded_lists(tile_ids, gauss, tiles_x * tiles_y, proj.index.numel())


def render(
    means: Tensor,
    log_scales: Tensor,
    quats: Tensor,
    opacity_logits: Tensor,
    colors: Tensor,
    viewmat: Tensor,
    K: Tensor,
    width: int,
    height: int,
    *,
    background: Tensor | None = None,
    sh_degree: int | None = None,
    near: float = 0.01,
    eps2d: float = 0.3,
    tile: int = 16,
) -> Render3D:
    """Render N Gaussians into one camera on the CPU (module docstring), differentiably.

    means (N, 3), log_scales (N, 3), quats (N, 4) w x y z (need not be unit),
    opacity_logits (N,), colors (N, 3) RGB, or SH degree-0 coefficients (N, 3) or
    (N, 1, 3) with sh_degree=0; viewmat (4, 4) world-to-camera, K (3, 3);
    background (3,) RGB (default black). All float tensors on one device.
    """
    n = means.shape[0]
    _check_inputs(means, log_scales, quats, opacity_logits, colors, width, height, tile)
    dtype, device = means.dtype, means.device
    bg = torch.zeros(3, dtype=dtype, device=device) if background is None else background
    rgb = colours_of(colors, sh_degree)
    proj, means2d = project(
        means,
        log_scales,
        quats,
        viewmat.to(dtype),
        K.to(dtype),
        width,
        height,
        near=near,
        eps2d=eps2d,
    )
    radii = torch.zeros(n, dtype=torch.int64, device=device)
    radii[proj.index] = proj.radii
    tiles_x, tiles_y = math.ceil(width / tile), math.ceil(height / tile)
    if proj.index.numel() == 0:
        image = bg.expand(height, width, 3).clone()
        return Render3D(image, image.new_zeros(height, width), means2d, radii)
    # the Gaussians' per-render attributes, with a transparent dummy appended
    mu = torch.cat([proj.means2d, proj.means2d.new_zeros(1, 2)])
    con = torch.cat([proj.conics, proj.conics.new_zeros(1, 3)])
    log_opa = torch.cat(
        [F.logsigmoid(opacity_logits[proj.index]), opacity_logits.new_full((1,), -100.0)]
    )
    col = torch.cat([rgb[proj.index], rgb.new_zeros(1, 3)])
    attrs = (mu, con, log_opa, col)
    if torch.is_grad_enabled() and any(x.requires_grad for x in attrs):
        image, alpha = _render_differentiable(proj, attrs, bg, tiles_x, tiles_y, tile)
    else:
        image, alpha = _render_fast(proj, attrs, bg, tiles_x, tiles_y, tile, width, height)
    return Render3D(image[:height, :width], alpha[:height, :width], means2d, radii)


def _pixel_features(side: int, dtype: torch.dtype) -> Tensor:
    """(side^2, 6) features (lx^2, ly^2, lx ly, lx, ly, 1) of a cell's pixel centres,
    row-major, in cell-local coordinates (_exponents)."""
    offs = torch.arange(side, dtype=dtype) + 0.5
    ly, lx = (t.reshape(-1) for t in torch.meshgrid(offs, offs, indexing="ij"))
    return torch.stack([lx * lx, ly * ly, lx * ly, lx, ly, torch.ones_like(lx)], -1)


def _render_differentiable(
    proj: Projected,
    attrs: tuple[Tensor, Tensor, Tensor, Tensor],
    bg: Tensor,
    tiles_x: int,
    tiles_y: int,
    tile: int,
) -> tuple[Tensor, Tensor]:
    """The (tiles_y tile, tiles_x tile, 3) picture and (.., ..) alpha, every tile's whole
    list composited at once so autograd sees one graph per chunk of tiles."""
    mu, con, log_opa, col = attrs
    lists, busy, lengths = _tile_lists(proj, tiles_x, tiles_y, tile)
    feats = _pixel_features(tile, mu.dtype)
    px = tile * tile
    colours, alphas = [], []
    for lo, hi, k in _chunks(lengths.tolist(), px):
        ids, g = busy[lo:hi], lists[lo:hi, :k]
        origin = torch.stack([ids % tiles_x, ids // tiles_x], -1).to(mu.dtype) * tile
        alpha = _alphas(_exponents(feats, origin, g, mu, con, log_opa))
        colour, a = _composite(alpha, col[g])
        colours.append(colour + (1 - a)[..., None] * bg)
        alphas.append(a)
    out = bg.expand(tiles_x * tiles_y, px, 3).index_put((busy,), torch.cat(colours))
    acc = mu.new_zeros(tiles_x * tiles_y, px).index_put((busy,), torch.cat(alphas))
    image = _untile(out, tiles_x, tiles_y, tile, 3)
    return image, _untile(acc[..., None], tiles_x, tiles_y, tile, 1)[..., 0]


def _render_fast(
    proj: Projected,
    attrs: tuple[Tensor, Tensor, Tensor, Tensor],
    bg: Tensor,
    tiles_x: int,
    tiles_y: int,
    tile: int,
    width: int,
    height: int,
) -> tuple[Tensor, Tensor]:
    """_render_differentiable's picture, for rendering without gradients.

    Each tile is split into SUBTILE x SUBTILE cells that inherit its depth-sorted list,
    less the Gaussians whose alpha is below ALPHA_MIN on every pixel of the cell (those
    add exactly nothing, so the picture is the tile's); cells wholly outside the image
    are dropped. The lists are walked in blocks of BLOCK Gaussians, in place, and a cell
    leaves the loop once all its pixels have saturated or its list has ended."""
    mu, con, log_opa, col = attrs
    side = SUBTILE if tile % SUBTILE == 0 else tile
    f = tile // side
    cells_x, cells_y = tiles_x * f, tiles_y * f
    tile_ids, gauss = _pairs(proj, tiles_x, tiles_y, tile)
    shown = (math.ceil(width / side), math.ceil(height / side))
    cell_ids, gauss = _cell_pairs(tile_ids, gauss, mu, con, log_opa, tiles_x, f, side, shown)
    # per pair: the exponent's coefficients in cell-local coordinates, colour and 1
    # (for the alpha sum); then a transparent dummy pair that pads the lists
    corner = torch.stack([cell_ids % cells_x, cell_ids // cells_x], -1).to(mu.dtype) * side
    pairs = cell_ids.numel()
    at = [x.index_select(0, gauss) for x in (mu, con, log_opa)]
    coeffs = mu.new_empty(pairs + 1, 6)
    torch.stack(_coefficients(at[0] - corner, at[1], at[2]), -1, out=coeffs[:pairs])
    coeffs[pairs] = coeffs.new_tensor([0, 0, 0, 0, 0, -100.0])
    col4 = mu.new_zeros(pairs + 1, 4)
    col4[:pairs, :3] = col.index_select(0, gauss)
    col4[:pairs, 3] = 1.0
    lists, busy, lengths = _padded_lists(cell_ids, torch.arange(pairs), cells_x * cells_y, pairs)
    feats_t = _pixel_features(side, mu.dtype).T.contiguous()  # (6, P)
    px = side * side
    out = bg.new_zeros(cells_x * cells_y, 4, px)
    step = max(1, FAST_ELEMENTS // (px * BLOCK))
    counts = lengths.tolist()
    for lo in range(0, len(counts), step):
        hi = min(lo + step, len(counts))
        g = lists[lo:hi, : counts[hi - 1]]
        out[busy[lo:hi]] = _composite_fast(feats_t, g, coeffs, col4, counts[lo:hi])
    out = out.transpose(1, 2)
    colour = out[..., :3] + (1 - out[..., 3:]) * bg
    image = _untile(colour, cells_x, cells_y, side, 3)
    return image, _untile(out[..., 3:], cells_x, cells_y, side, 1)[..., 0]


def _cell_pairs(
    tile_ids: Tensor,
    gauss: Tensor,
    mu: Tensor,
    con: Tensor,
    log_opa: Tensor,
    tiles_x: int,
    f: int,
    side: int,
    shown: tuple[int, int],
) -> tuple[Tensor, Tensor]:
    """The (cell id, Gaussian) pairs of the f x f cells (of `side` pixels) of each tile
    pair, cell ids ascending, depth order kept, without the cells at or beyond column,
    row `shown` (outside the image) and the pairs whose largest alpha over the cell's
    pixel centres is below ALPHA_MIN (by more than CULL_SLACK in log)."""
    j = torch.arange(f * f)
    cx = (tile_ids % tiles_x * f)[:, None] + j % f  # (pairs, f^2)
    cy = (tile_ids // tiles_x * f)[:, None] + j // f
    m = mu.index_select(0, gauss)
    a, b, c = con.index_select(0, gauss)[:, :, None].unbind(1)
    # the cell's pixel centres span [lo, lo + side - 1] in x and y, relative to the mean
    x0 = cx.to(mu.dtype) * side + (0.5 - m[:, :1])
    y0 = cy.to(mu.dtype) * side + (0.5 - m[:, 1:])
    q = _min_quadratic((a, b, c), x0, x0 + (side - 1), y0, y0 + (side - 1))
    floor = math.log(ALPHA_MIN) - CULL_SLACK
    keep = (log_opa.index_select(0, gauss)[:, None] - 0.5 * q >= floor) & (cx < shown[0])
    keep &= cy < shown[1]
    pair, slot = torch.nonzero(keep, as_tuple=True)  # pair-major: depth order kept
    cell = cy[pair, slot] * (tiles_x * f) + cx[pair, slot]
    cell, perm = torch.sort(cell, stable=True)  # a cell lies in one tile
    return cell, gauss[pair[perm]]


def _min_quadratic(
    con: tuple[Tensor, Tensor, Tensor], x0: Tensor, x1: Tensor, y0: Tensor, y1: Tensor
) -> Tensor:
    """min of a dx^2 + 2 b dx dy + c dy^2 (con = (a, b, c), positive definite, broadcast
    against the bounds) over the rectangles [x0, x1] x [y0, y1]: 0 when they hold the
    origin, else the least of the four edges' minima (each a clamped 1D quadratic)."""
    a, b, c = con

    def q(dx: Tensor, dy: Tensor) -> Tensor:
        return a * dx * dx + 2 * b * dx * dy + c * dy * dy

    edges = [q(x, torch.minimum(torch.maximum(-b * x / c, y0), y1)) for x in (x0, x1)] + [
        q(torch.minimum(torch.maximum(-b * y / a, x0), x1), y) for y in (y0, y1)
    ]
    least = torch.stack(edges).amin(0)
    inside = (x0 <= 0) & (x1 >= 0) & (y0 <= 0) & (y1 >= 0)
    return torch.where(inside, torch.zeros_like(least), least)


def _composite_fast(
    feats_t: Tensor, g: Tensor, coeffs: Tensor, col4: Tensor, lengths: list[int]
) -> Tensor:
    """(C, 4, P) colour (no background) and accumulated alpha of C cells whose lists g
    (C, K) index pairs with exponent coefficients `coeffs` (., 6) and colours `col4`
    (., 4: RGB and 1), composited front to back in blocks of BLOCK pairs, in place;
    feats_t (6, P) are the pixels' features (_exponents).

    Within a block, weights are computed from the block-local transmittance (a
    cumulative product starting at 1) and scaled by the carried-in transmittance only
    after the colour product, on (C, 4, P) rather than (C, BLOCK, P) values."""
    chunk, pixels = g.shape[0], feats_t.shape[1]
    out = feats_t.new_zeros(chunk, 4, pixels)
    carried = feats_t.new_ones(chunk, pixels)  # transmittance before the block
    active = torch.arange(chunk)  # cells with unsaturated pixels and Gaussians left
    whole = True  # active is every cell (no gathers needed)
    ends = torch.tensor(lengths)
    for k0 in range(0, g.shape[1], BLOCK):
        gb = g[:, k0 : k0 + BLOCK] if whole else g[active, k0 : k0 + BLOCK]
        carry = carried if whole else carried[active]
        n, k = gb.shape
        gb = gb.reshape(-1)
        alpha = torch.matmul(coeffs.index_select(0, gb).view(n, k, 6), feats_t)  # exponents
        alpha = alpha.exp_().clamp_max_(ALPHA_MAX)
        torch.threshold_(alpha, ALPHA_MIN, 0.0)  # zero below ALPHA_MIN
        trans = torch.cumprod(1.0 - alpha, dim=1)
        alpha[:, 1:].mul_(trans[:, :-1])  # block-local weights alpha_i prod_{j<i}
        end = trans[:, -1] * carry
        saturated = float(end.min()) < T_MIN
        if saturated:  # some pixel saturates: drop its later weights
            alpha.masked_fill_(trans.mul_(carry[:, None]) < T_MIN, 0.0)
        part = torch.bmm(col4.index_select(0, gb).view(n, k, 4).transpose(1, 2), alpha)
        part.mul_(carry[:, None])
        if whole:
            out += part
            carried = end
        else:
            out[active] += part
            carried[active] = end
        alive = ends[active] > k0 + BLOCK
        if saturated:
            alive &= (end >= T_MIN).any(-1)
        if not bool(alive.all()):
            active, whole = active[alive], False
            if active.numel() == 0:
                break
    return out


def _exponents(
    feats: Tensor, origin: Tensor, g: Tensor, mu: Tensor, con: Tensor, log_opa: Tensor
) -> Tensor:
    """(C, P, K) log-alpha log(o) - d^T conic d / 2 of the Gaussians of tile lists g (C, K)
    at the pixels of tiles whose corners are `origin` (C, 2).

    The exponent is a quadratic in the tile-local pixel position (lx, ly), so it is one
    batched matrix product of the pixels' features `feats` (P, 6) = (lx^2, ly^2, lx ly,
    lx, ly, 1) with per-Gaussian coefficients; tile-local coordinates (at most `tile`)
    keep float32 cancellation in the expansion negligible."""
    m = mu[g] - origin[:, None, :]  # (C, K, 2) means relative to the tile corner
    coeffs = torch.stack(_coefficients(m, con[g], log_opa[g]), dim=1)  # (C, 6, K)
    return torch.matmul(feats, coeffs)


def _coefficients(m: Tensor, conic: Tensor, log_opa: Tensor) -> list[Tensor]:
    """The six coefficients of the exponent log(o) - d^T conic d / 2 as a quadratic in
    the cell-local pixel position (lx, ly) (in the order of _pixel_features), for
    Gaussians at cell-local means m (..., 2) with conics (..., 3) and log-opacities."""
    a, b, c = conic.unbind(-1)
    mx, my = m.unbind(-1)
    return [
        -0.5 * a,
        -0.5 * c,
        -b,
        a * mx + b * my,
        c * my + b * mx,
        log_opa - 0.5 * (a * mx * mx + c * my * my) - b * mx * my,
    ]


def _alphas(exponents: Tensor) -> Tensor:
    """3DGS's alpha: min(0.99, o exp(-d^T conic d / 2)), zero below 1/255."""
    alpha = torch.exp(exponents.clamp_max(0.0)).clamp_max(ALPHA_MAX)
    return torch.where(alpha < ALPHA_MIN, torch.zeros_like(alpha), alpha)


def _composite(alpha: Tensor, col: Tensor) -> tuple[Tensor, Tensor]:
    """Front-to-back compositing of whole tile lists at once (differentiable): alphas
    (C, P, K) and colours (C, K, 3) give the (C, P, 3) colour without background and the
    (C, P) accumulated alpha."""
    trans = torch.cumprod(1.0 - alpha, dim=-1)
    before = torch.cat([torch.ones_like(trans[..., :1]), trans[..., :-1]], dim=-1)
    weight = alpha * before * (trans >= T_MIN)
    return torch.bmm(weight, col), weight.sum(-1)


def _chunks(lengths: list[int], pixels: int) -> list[tuple[int, int, int]]:
    """(start, end, K) runs of consecutive tiles (lengths ascending) whose padded work
    (tiles x pixels x K, K the run's longest list) stays within CHUNK_ELEMENTS."""
    out = []
    start = 0
    for i, k in enumerate(lengths):
        if i > start and (i + 1 - start) * pixels * k > CHUNK_ELEMENTS:
            out.append((start, i, lengths[i - 1]))
            start = i
    if lengths:
        out.append((start, len(lengths), lengths[-1]))
    return out


def _untile(x: Tensor, tiles_x: int, tiles_y: int, tile: int, ch: int) -> Tensor:
    x = x.reshape(tiles_y, tiles_x, tile, tile, ch).permute(0, 2, 1, 3, 4)
    return x.reshape(tiles_y * tile, tiles_x * tile, ch)


def _check_inputs(
    means: Tensor,
    log_scales: Tensor,
    quats: Tensor,
    opacity_logits: Tensor,
    colors: Tensor,
    width: int,
    height: int,
    tile: int,
) -> None:
    n = means.shape[0] if means.ndim == 2 else -1
    shapes = {
        "means": (means, (n, 3)),
        "log_scales": (log_scales, (n, 3)),
        "quats": (quats, (n, 4)),
        "opacity_logits": (opacity_logits, (n,)),
    }
    for name, (value, shape) in shapes.items():
        if n < 0 or tuple(value.shape) != shape:
            raise CodecError(f"{name} must have shape {shape}, got {tuple(value.shape)}")
    if colors.shape[0] != n or colors.numel() != 3 * n:
        raise CodecError(f"colors must have shape ({n}, 3) or ({n}, 1, 3)")
    if width < 1 or height < 1 or tile < 1:
        raise CodecError(f"bad render size {width}x{height} (tile {tile})")


def gsplat_render(
    means: Tensor,
    log_scales: Tensor,
    quats: Tensor,
    opacity_logits: Tensor,
    colors: Tensor,
    viewmat: Tensor,
    K: Tensor,
    width: int,
    height: int,
    *,
    background: Tensor | None = None,
    sh_degree: int | None = None,
    near: float = 0.01,
    eps2d: float = 0.3,
    tile: int = 16,
) -> Render3D:
    """`render` through gsplat's CUDA rasterizer (`gsplat.rasterization`, classic mode).

    gsplat takes linear scales and opacities in [0, 1], batched cameras, and SH
    coefficients as (N, K, 3) with sh_degree; this converts to that. Not run on CUDA yet
    (see the module docstring)."""
    if not means.is_cuda:
        raise CodecError("gsplat renders on CUDA only; use render() on the CPU")
    _check_inputs(means, log_scales, quats, opacity_logits, colors, width, height, tile)
    try:
        from gsplat import rasterization  # lazily: it compiles CUDA kernels on first use
    except ImportError:
        raise CodecError("gsplat is not installed (pip install gsplat)") from None
    n = means.shape[0]
    feats = colors.reshape(n, 1, 3) if sh_degree is not None else colors.reshape(n, 3)
    backgrounds = None if background is None else background.reshape(1, 3)
    image, alpha, meta = rasterization(
        means,
        quats,
        torch.exp(log_scales),
        torch.sigmoid(opacity_logits),
        feats,
        viewmat[None],
        K[None],
        width,
        height,
        near_plane=near,
        eps2d=eps2d,
        sh_degree=sh_degree,
        packed=False,
        tile_size=tile,
        backgrounds=backgrounds,
        render_mode="RGB",
        rasterize_mode="classic",
    )
    radii = meta["radii"][0]
    if radii.ndim == 2:  # gsplat >= 1.5 gives x and y radii
        radii = radii.amax(dim=-1)
    return Render3D(image[0], alpha[0, ..., 0], meta["means2d"][0], radii.to(torch.int64))

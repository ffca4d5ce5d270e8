"""Encoder-side motion estimation: hierarchical block matching on luma.

The decoder never runs this: it only receives the coded motion. So it needs neither
learning nor exactness, and a classical estimator is used where DCVC-FM uses a pretrained
optical-flow network (SpyNet), which nvc cannot download and could not train from scratch
on a CPU in useful time. The learned part is the motion *coder* (model.MotionCoder).

One vector per 8 x 8 luma block (one per position of the codec's 1/8-resolution feature
grid), in units of that grid. Coarse to fine: an exhaustive +-3 search at 1/16 luma
resolution (+-48 luma pixels), then +-1 refinements at 1/8, 1/4 and 1/2 resolution around
the doubled coarser vector, then a half-pixel refinement at 1/2 resolution (one luma
pixel: the estimate is in whole luma pixels; block-motion frames refine it to quarter
pixels in mvsearch.py). Cost: mean absolute difference over a block (with its neighbours
at the coarse levels) plus a small penalty on the vector's length, so flat areas keep
still vectors, plus a rate term from 1/8 on (the learned motion coder pays for every
irregularity): a second pass adds SMOOTHNESS times a vector's distance to the 3x3 median
of the first pass's field.
Measured with the shipped model on held-out real clips (5 inter frames, no residuals, q 16
/ 40): motion + inter bytes -18% / -14% on vtest.avi@600 (+0.06 / +0.02 dB), -30% / -31% on
cup.mp4 (+0.2 / +0.03 dB).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from nvc.codec.conditional.layers import upsample_nearest, warp

_PENALTY = 0.002  # cost per pixel of vector length (in units of the level's pixels), on [0, 1]
SMOOTHNESS = 0.015  # cost per pixel of a vector's distance to its neighbours' median (the rate)


# Devillard's median-of-9 network ("Fast median search", 1998): 19 compare-exchanges,
# then the middle of the 9 is in slot 4
_MEDIAN9 = (
    (1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8), (0, 3),
    (5, 8), (4, 7), (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4), (4, 2),
)  # fmt: skip


def _median3(v: Tensor) -> Tensor:
    """3x3 median of each component of a vector field (B, 2, H, W), borders replicated
    (elementwise min / max: the same values as a sort, far fewer calls on small fields)."""
    _, _, h, w = v.shape
    padded = F.pad(v, (1, 1, 1, 1), mode="replicate")
    p = [padded[:, :, i : i + h, j : j + w] for i in range(3) for j in range(3)]
    for a, b in _MEDIAN9:
        p[a], p[b] = torch.minimum(p[a], p[b]), torch.maximum(p[a], p[b])
    return p[4].contiguous()


def _candidates(radius: int, step: float, device: torch.device) -> Tensor:
    r = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32) * step
    gy, gx = torch.meshgrid(r, r, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)  # (K, 2) as (dx, dy)


def _search(
    cur: Tensor,
    ref: Tensor,
    base: Tensor,
    block: int,
    cands: Tensor,
    smooth: bool,
    rate: bool = True,
) -> Tensor:
    """Best vector per block among base + candidate, in pixels of this level. With `rate`
    (and SMOOTHNESS > 0), a second pass adds the rate term against the 3x3 median of the
    first pass's field: a vector pays for differing from its neighbours' consensus.

    cur, ref: (B, 1, H, W); base: (B, 2, H / block, W / block)."""
    integer = bool(torch.equal(cands, torch.round(cands))) and bool(
        torch.equal(base, torch.round(base))
    )
    vecs, costs = [], []
    # upsampling commutes with adding a constant vector: upsample the base once
    full_base = upsample_nearest(base, block)
    positions = _positions(ref, full_base) if integer else None
    for d, (dx, dy) in zip(cands, cands.tolist(), strict=True):
        step = d.view(1, 2, 1, 1)
        vec = base + step
        if positions is None:
            shifted = warp(ref, full_base + step)
        else:
            shifted = _shift(ref, positions, int(dx), int(dy))
        diff = (cur - shifted).abs()
        cost = F.avg_pool2d(diff, block) if block > 1 else diff
        if smooth:
            cost = F.avg_pool2d(cost, 3, stride=1, padding=1, count_include_pad=False)
        vecs.append(vec)
        costs.append(cost + _PENALTY * vec.abs().sum(dim=1, keepdim=True))
    best = _pick(vecs, costs)
    if rate and SMOOTHNESS > 0:
        anchor = _median3(best)
        weight = SMOOTHNESS / float(block)  # per level pixel, per block
        rated = [
            c + weight * (v - anchor).abs().sum(dim=1, keepdim=True)
            for v, c in zip(vecs, costs, strict=True)
        ]
        best = _pick(vecs, rated)
    return best


def _pick(vecs: list[Tensor], costs: list[Tensor]) -> Tensor:
    """Per block, the vector of the lowest cost (the first one on ties)."""
    best, best_cost = vecs[0], costs[0]
    for vec, cost in zip(vecs[1:], costs[1:], strict=True):
        better = cost < best_cost
        best_cost = torch.where(better, cost, best_cost)
        best = torch.where(better, vec, best)
    return best


def _positions(ref: Tensor, vec: Tensor) -> tuple[Tensor, Tensor]:
    """The rows and columns p + vec (B, H, W), unclamped, for integer vectors (B, 2, H, W)."""
    _, _, h, w = ref.shape
    gy = torch.arange(h, device=ref.device).view(1, h, 1)
    gx = torch.arange(w, device=ref.device).view(1, 1, w)
    return gy + vec[:, 1].long(), gx + vec[:, 0].long()


def _shift(ref: Tensor, positions: tuple[Tensor, Tensor], dx: int, dy: int) -> Tensor:
    """ref sampled at positions + (dx, dy) (one gather; borders clamped)."""
    b, _, h, w = ref.shape
    iy = (positions[0] + dy).clamp(0, h - 1)
    ix = (positions[1] + dx).clamp(0, w - 1)
    idx = (iy * w + ix).reshape(b, 1, -1)
    return torch.gather(ref.reshape(b, 1, h * w), 2, idx).reshape(b, 1, h, w)


@torch.no_grad()
def estimate_motion(cur: Tensor, ref: Tensor, half: bool = True) -> Tensor:
    """Block motion from `cur` to `ref` luma (B, 1, H, W), float in [0, 1], H and W multiples
    of 16. Returns (B, 2, H / 8, W / 8): (dx, dy) such that cur(p) ~ ref(p + 8 * v), in units
    of 8 luma pixels (the feature grid). `half`: end with a half-pixel (of the half-
    resolution level) refinement; without it the vectors are whole pixels of that level."""
    cur, ref = cur.float(), ref.float()
    pyr_c = [F.avg_pool2d(cur, s) for s in (2, 4, 8, 16)]
    pyr_r = [F.avg_pool2d(ref, s) for s in (2, 4, 8, 16)]
    b, _, h, w = pyr_c[3].shape
    dev = cur.device
    # level 1/16: per-pixel (3x3-smoothed) exhaustive search
    zero = cur.new_zeros(b, 2, h, w)
    vec = _search(pyr_c[3], pyr_r[3], zero, 1, _candidates(3, 1, dev), True, rate=False)
    # level 1/8: one vector per pixel of the feature grid
    vec = _search(pyr_c[2], pyr_r[2], upsample_nearest(vec * 2, 2), 1, _candidates(1, 1, dev), True)
    # level 1/4: 2x2 blocks; level 1/2: 4x4 blocks, then half pixels
    vec = _search(pyr_c[1], pyr_r[1], vec * 2, 2, _candidates(1, 1, dev), False)
    vec = _search(pyr_c[0], pyr_r[0], vec * 2, 4, _candidates(1, 1, dev), False)
    if half:
        vec = _search(pyr_c[0], pyr_r[0], vec, 4, _candidates(1, 0.5, dev), False)
    return vec / 4.0  # half-resolution pixels -> feature-grid units

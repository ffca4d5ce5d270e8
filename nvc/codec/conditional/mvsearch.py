"""The encoder's rate-distortion search for block motion (mvcoding.BlockMotion).

Encoder only: the decoder receives the vectors. Starting from the hierarchical
block-matching field (motion.estimate_motion, whole pixels), per 8 x 8 cell it chooses
among the estimate, the neighbours' median (a vector difference of 0: a merge), zero, and
half- then quarter-pixel refinements, by J = weight * lambda * SSE + bits, where SSE is
the luma error of the prediction (subpel's interpolation, as the decoder's) in [0, 1] units and
bits the vector difference's cost under the frame's table (re-chosen after each pass).
Then each 16 x 16 macroblock is merged to one vector (any of its four cells' vectors or
its predictor) where that costs less than its four vectors and the split flag.

`weight` (MOTION_WEIGHT) discounts the prediction error, part of which the residual codec
removes later at a price below lambda * SSE; it was chosen on training footage (box.mp4,
vtest.avi frames before 600), not on the held-out clips.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from nvc.codec.conditional import mvcoding as mvc
from nvc.codec.conditional import subpel
from nvc.codec.conditional.layers import ONE, upsample_nearest

MOTION_WEIGHT = 0.3  # share of lambda * prediction SSE in the search's cost (see above)
# the table the first pass assumes: a mass of ~0.77 at 0, decay ~0.2 per quarter pixel
START_TABLE = 7 * mvc.DECAY_LEVELS + 6
HALF_PEL = [(dx, dy) for dy in (-2, 0, 2) for dx in (-2, 0, 2) if dx or dy]
QUARTER_PEL = [(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dx or dy]
HALF_PEL_DIAMOND = [(-2, 0), (2, 0), (0, -2), (0, 2)]  # the cheap search's half pixels


@dataclass(frozen=True)
class SearchConfig:
    """How much the search tries (the live encoder uses the cheap one)."""

    passes: int = 2  # cell passes (each re-derives predictors and the table)
    quarter: bool = True  # quarter-pixel refinements after the half-pixel ones
    diamond: bool = False  # half pixels: the 4 axis neighbours only, not all 8
    merge: bool = True  # 16 x 16 merge decisions
    filters: bool = True  # the frame's interpolation filter chosen by its error (codec.py)


FULL = SearchConfig()
CHEAP = SearchConfig(passes=1, quarter=False, merge=True, filters=False, diamond=True)


class _Predictor:
    """Luma predictions of per-cell quarter-pixel fields, for the search: the reference's
    quarter-pixel phases (subpel's SHARP filter, float32; with step 2 the half-pixel ones
    only) computed once over the picture and a margin of MARGIN pixels, then one gather
    per field. Vectors are
    clamped per cell to stay within the margin; elsewhere this is, to within rounding,
    the decoder's prediction (subpel.predict)."""

    MARGIN = 16

    def __init__(self, cur_y: Tensor, ref_y: Tensor, step: int = 1) -> None:
        self.cur = (cur_y[0, 0] / ONE).float()
        h, w = self.cur.shape
        m = self.MARGIN
        self.planes = subpel.luma_phases(ref_y[0, 0] / ONE, m, step).reshape(-1)
        self.hp, self.wp = h + 2 * m, w + 2 * m
        gh, gw = h // 8, w // 8
        # per cell: the vector range that keeps its 8 x 8 pixels inside the margin
        r0 = torch.arange(gh, dtype=torch.float64).view(gh, 1) * 8
        c0 = torch.arange(gw, dtype=torch.float64).view(1, gw) * 8
        self.y_lo, self.y_hi = -m - r0, h - 1 + m - (r0 + 7)
        self.x_lo, self.x_hi = -m - c0, w - 1 + m - (c0 + 7)
        gy = torch.arange(h).view(h, 1) + m
        gx = torch.arange(w).view(1, w) + m
        self.base = gy * self.wp + gx  # (h, w) index of each pixel's own position
        self.gh, self.gw = gh, gw

    def sse(self, v: Tensor) -> Tensor:
        """Per-cell luma SSE in [0, 1] units of the field v (1, 2, gh, gw): (gh, gw)."""
        vx, vy = v[0, 0], v[0, 1]
        ix = torch.floor(vx / 4)
        iy = torch.floor(vy / 4)
        phase = (vy - 4 * iy) * 4 + (vx - 4 * ix)
        ix = torch.minimum(torch.maximum(ix, self.x_lo), self.x_hi)
        iy = torch.minimum(torch.maximum(iy, self.y_lo), self.y_hi)
        offset = ((phase * self.hp + iy) * self.wp + ix).long()
        gh, gw = self.gh, self.gw
        # each cell's offset broadcast over its 8 x 8 pixels' own positions (h = 8 gh)
        at = (offset.view(gh, 1, gw, 1) + self.base.view(gh, 8, gw, 8)).view(-1)
        # index_select: take's values, ~4x faster on the CPU
        err = self.cur - self.planes.reshape(-1).index_select(0, at).view(self.cur.shape)
        return (F.avg_pool2d((err * err)[None, None], 8) * 64.0)[0, 0].double()


def _predictor(v: Tensor) -> Tensor:
    """A vectorised stand-in for mvcoding's median predictor on a per-cell field."""
    left = F.pad(v, (1, 0, 0, 0))[:, :, :, :-1]
    top = F.pad(v, (0, 0, 1, 0))[:, :, :-1, :]
    topright = F.pad(v, (0, 1, 1, 0))[:, :, :-1, 1:]
    med = torch.maximum(torch.minimum(left, top), torch.minimum(torch.maximum(left, top), topright))
    med[:, :, 0, :] = left[:, :, 0, :]
    return med


class _Rate:
    """Bits of vector differences under one table of mvcoding."""

    def __init__(self, table: int) -> None:
        self.bits = torch.from_numpy(mvc.mvd_bits_matrix()[table].copy())
        self.bits[-1] += 24.0  # an escape's own bits

    def __call__(self, d: Tensor) -> Tensor:
        idx = (d + mvc.MVD_RANGE).long()
        width = 2 * mvc.MVD_RANGE + 1
        idx = torch.where((idx < 0) | (idx >= width), torch.full_like(idx, width), idx)
        return self.bits[idx].sum(dim=1)[0]  # (gh, gw)


def _best_table(v: Tensor) -> int:
    d = (v - _predictor(v)).reshape(2, -1).numpy().astype(np.int64)
    cost = mvc._table_bits(d[0], mvc.mvd_tables()) + mvc._table_bits(d[1], mvc.mvd_tables())
    return int(np.argmin(cost))


@torch.no_grad()
def search(
    cur_y: Tensor, ref_y: Tensor, init: Tensor, lam: float, config: SearchConfig = FULL
) -> mvc.BlockMotion:
    """cur_y, ref_y: (1, 1, H, W) luma in fixed point; init: (1, 2, gh, gw) flow in grid
    units (motion.estimate_motion); lam: the frame's lambda. Returns the chosen motion."""
    cur_y, ref_y = cur_y.double(), ref_y.double()
    est = torch.round(init.double() * mvc.QPEL_PER_CELL)
    weight = MOTION_WEIGHT * lam
    zero = torch.zeros_like(est)
    rate = _Rate(START_TABLE)
    sse = _Predictor(cur_y, ref_y, 1 if config.quarter else 2).sse

    v = est
    best_sse = sse(v)
    half = HALF_PEL_DIAMOND if config.diamond else HALF_PEL
    for p in range(config.passes):
        pred = _predictor(v)
        cands = [pred, zero] if p == 0 else [pred, zero, est]  # v is est on the first pass
        best, best_j = v, weight * best_sse + rate(v - pred)
        for c in cands:
            e = sse(c)
            j = weight * e + rate(c - pred)
            better = j < best_j
            best, best_j = torch.where(better[None, None], c, best), torch.minimum(j, best_j)
            best_sse = torch.where(better, e, best_sse)
        for offsets in (half, QUARTER_PEL) if config.quarter else (half,):
            centre = best
            for dx, dy in offsets:
                c = centre + torch.tensor([dx, dy], dtype=centre.dtype).view(1, 2, 1, 1)
                e = sse(c)
                j = weight * e + rate(c - pred)
                better = j < best_j
                best, best_j = torch.where(better[None, None], c, best), torch.minimum(j, best_j)
                best_sse = torch.where(better, e, best_sse)
        v = best
        rate = _Rate(_best_table(v))
    gh, gw = v.shape[2], v.shape[3]
    split = np.ones((gh // 2, gw // 2), dtype=bool)
    if config.merge:
        v, split = _merge(v, weight, rate, sse, best_sse)
    vectors = v[0].permute(1, 2, 0).numpy().astype(np.int64)
    return mvc.BlockMotion(np.ascontiguousarray(vectors), split)


def _merge(
    v: Tensor, weight: float, rate: _Rate, sse: Callable[[Tensor], Tensor], v_sse: Tensor
) -> tuple[Tensor, np.ndarray]:
    """Per macroblock: one vector (a cell's or the predictor) or four, by cost; v_sse is
    sse(v)."""
    sb = mvc.split_bits()
    pred = _predictor(v)
    # the four vectors' cost (each against its own predictor) and the split flag
    cell_j = weight * v_sse + rate(v - pred)
    split_j = F.avg_pool2d(cell_j[None, None], 2)[0, 0] * 4.0
    mb_pred = pred[:, :, 0::2, 0::2]
    options = [v[:, :, i::2, j::2] for i in (0, 1) for j in (0, 1)] + [mb_pred]
    ns = int(np.prod(split_j.shape))
    table = int(np.argmin(sb[:, 0] * 0.5 * ns + sb[:, 1] * 0.5 * ns))
    best_v = v
    best_j = split_j + float(sb[table, 1])
    split = torch.ones_like(split_j, dtype=torch.bool)
    for o in options:
        full = upsample_nearest(o, 2)
        j_cells = weight * sse(full)
        j = F.avg_pool2d(j_cells[None, None], 2)[0, 0] * 4.0 + rate(o - mb_pred)
        j = j + float(sb[table, 0])
        better = j < best_j
        best_j = torch.minimum(j, best_j)
        split = split & ~better
        best_v = torch.where(upsample_nearest(better[None, None], 2), full, best_v)
    return best_v, split.numpy()


__all__ = ["CHEAP", "FULL", "MOTION_WEIGHT", "SearchConfig", "search"]

"""Exact sub-pixel motion compensation of block-motion frames (FLAG_BLOCK_MOTION).

The prediction of a picture from its reference and one vector per 8 x 8 luma cell
(mvcoding.BlockMotion, quarter luma pixels): each plane is the reference, extended by
edge replication without end, sampled at p + v with separable integer interpolation
filters whose taps sum to 64, one of two sets chosen per frame (mvcoding's filter symbol):

- SHARP (0): the filter lengths and tap values of H.265/HEVC's motion compensation
  (ITU-T H.265 section 8.5.3.3.3): luma quarter pixels, 8 taps; chroma (4:2:0) eighth
  pixels, 4 taps;
- SMOOTH (1): bilinear (2 taps) at the same positions: it low-passes, which pays on noisy
  footage (measured: vtest.avi's predictions are ~0.1 dB better with it, cup.mp4's
  0.2-0.5 dB better with SHARP).

The vector is read in quarter luma pixels (cells of 8 x 8) and in eighth chroma pixels
(cells of 4 x 4).

Arithmetic: fixed-point integers (layers.FRAC_BITS) in float64; the horizontal pass sums
tap * sample, the vertical pass sums tap * that, then one rounding by 2**12 (half up):
every partial sum is an integer far below 2**53, so the result is exact whatever the
order, device or thread count. Only the phases a frame uses are computed.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor
from torch.nn import functional as F

from nvc.codec.conditional import frames as fr
from nvc.codec.conditional.layers import fixed_round_shift

LUMA_TAPS = (
    (0, 0, 0, 64, 0, 0, 0, 0),
    (-1, 4, -10, 58, 17, -5, 1, 0),
    (-1, 4, -11, 40, 40, -11, 4, -1),
    (0, 1, -5, 17, 58, -10, 4, -1),
)
CHROMA_TAPS = (
    (0, 64, 0, 0),
    (-2, 58, 10, -2),
    (-4, 54, 16, -2),
    (-6, 46, 28, -4),
    (-4, 36, 36, -4),
    (-4, 28, 46, -6),
    (-2, 16, 54, -4),
    (-2, 10, 58, -2),
)
LUMA_SMOOTH = tuple((0, 0, 0, 64 - 16 * f, 16 * f, 0, 0, 0) for f in range(4))
CHROMA_SMOOTH = tuple((0, 64 - 8 * f, 8 * f, 0) for f in range(8))
SHARP, SMOOTH = 0, 1
FILTERS = (SHARP, SMOOTH)
TAP_BITS = 6  # each pass's taps sum to 2**6


def _plane(
    ref: Tensor, vectors: npt.NDArray[np.int64], cell: int, taps: tuple[tuple[int, ...], ...]
) -> Tensor:
    """One plane (H, W) float64 fixed point, predicted with per-cell vectors (gh, gw, 2)
    in 1 / len(taps) pixels."""
    h, w = ref.shape
    phases = len(taps)
    n = len(taps[0])
    before = n // 2 - 1  # taps before the sample (3 of 8, 1 of 4)
    after = n - 1 - before
    v = torch.from_numpy(vectors)
    iv = torch.div(v, phases, rounding_mode="floor")
    ph = v - phases * iv
    gh, gw = vectors.shape[0], vectors.shape[1]
    # per-pixel values as broadcast views (gh, cell, gw, cell) of per-cell ones (h = gh * cell)
    cells = (gh, 1, gw, 1)
    within = torch.arange(cell)
    # sample positions, clamped to the margin beyond which the extended plane is constant
    m = after + 1
    row = (cell * torch.arange(gh)).view(gh, 1, 1, 1) + within.view(1, cell, 1, 1)
    col = (cell * torch.arange(gw)).view(1, 1, gw, 1) + within.view(1, 1, 1, cell)
    ys = (row + iv[..., 1].view(cells)).clamp(-m, h - 1 + m)  # (gh, cell, gw, 1)
    xs = (col + iv[..., 0].view(cells)).clamp(-m, w - 1 + m)  # (gh, 1, gw, cell)
    px, py = ph[..., 0].view(cells), ph[..., 1]
    pad = m + n
    ext = F.pad(ref[None, None], (pad, pad, pad, pad), mode="replicate")[0, 0]
    # horizontal passes: rows of ext, columns at positions -m .. w - 1 + m
    lo, cols = pad - m, w + 2 * m
    rows = ext.shape[0]
    # (phases a frame does not use stay unset: no pixel reads them)
    horizontal = torch.empty((phases, rows, cols), dtype=torch.float64)
    for fx in torch.unique(ph[..., 0]).tolist():  # px's values, from the cells (fewer)
        acc = horizontal[fx]
        acc.zero_()
        for k, tap in enumerate(taps[fx]):
            if tap:
                s = lo + k - before
                acc.add_(ext[:, s : s + cols], alpha=tap)
    stack = horizontal.reshape(-1)
    # vertical pass per pixel: its phase's taps over rows ys - before .. ys + after
    base = (px * rows + (ys + pad - before)) * cols + (xs + m)  # (gh, cell, gw, cell)
    base = base.reshape(-1)
    weights = torch.tensor(taps, dtype=torch.float64).t()[:, py].view(n, *cells)  # per cell
    # index_select: take's values, about 4x faster on the CPU
    out = stack.index_select(0, base).view(gh, cell, gw, cell) * weights[0]
    for k in range(1, n):
        base += cols
        out.addcmul_(stack.index_select(0, base).view(gh, cell, gw, cell), weights[k])
    out = out.view(h, w)
    return fixed_round_shift(out, 2 * TAP_BITS)


def predict(ref: Tensor, vectors: npt.NDArray[np.int64], filter: int = SHARP) -> Tensor:
    """The motion-compensated picture (1, 96, gh, gw) fixed point from the reference
    picture (1, 96, gh, gw) fixed point and quarter-pixel vectors (gh, gw, 2) per cell,
    with the SHARP or SMOOTH filters."""
    luma, chroma = (LUMA_TAPS, CHROMA_TAPS) if filter == SHARP else (LUMA_SMOOTH, CHROMA_SMOOTH)
    y, uv = fr.split_96(ref)
    py = _plane(y[0, 0], vectors, 8, luma)
    pu = _plane(uv[0, 0], vectors, 4, chroma)
    pv = _plane(uv[0, 1], vectors, 4, chroma)
    return fr.planes_to_96(py[None, None], torch.stack([pu, pv])[None])


def luma_phases(ref_y: Tensor, margin: int, step: int = 1) -> Tensor:
    """The 16 quarter-pixel phases of a luma plane (H, W) float (encoder's search), as
    (16, H + 2 M, W + 2 M) over positions -M .. size - 1 + M, M = margin; phase index
    4 * fy + fx; only phases that are multiples of `step` are computed (2: half pixels;
    the others are left unset). The same filter as `predict` (SHARP; float, without its
    final rounding)."""
    h, w = ref_y.shape
    n, before = 8, 3
    pad = margin + n
    ext = F.pad(ref_y[None, None].double(), (pad, pad, pad, pad), mode="replicate")[0, 0]
    lo, hi_y, hi_x = pad - margin, pad + h + margin, pad + w + margin
    out = torch.empty((16, hi_y - lo, hi_x - lo), dtype=torch.float32)
    horizontal = {}
    for fx in range(0, 4, step):
        acc = torch.zeros((ext.shape[0], hi_x - lo), dtype=torch.float64)
        for k, tap in enumerate(LUMA_TAPS[fx]):
            if tap:
                s = lo + k - before
                acc.add_(ext[:, s : s + hi_x - lo], alpha=tap)
        horizontal[fx] = acc
    for fy in range(0, 4, step):
        for fx in range(0, 4, step):
            acc = torch.zeros((hi_y - lo, hi_x - lo), dtype=torch.float64)
            for k, tap in enumerate(LUMA_TAPS[fy]):
                if tap:
                    s = lo + k - before
                    acc.add_(horizontal[fx][s : s + hi_y - lo], alpha=tap)
            out[4 * fy + fx] = acc / float(1 << (2 * TAP_BITS))
    return out


__all__ = ["FILTERS", "SHARP", "SMOOTH", "luma_phases", "predict"]

"""Learnable spatio-temporal feature grids feeding the INR blocks (HiNeRV / NVRC / C3 idea).

Each block i with `grid_channels[i] > 0` gets a grid of shape (S, C_i, r_i, c_i): S temporal
slices, one every `grid_every` frames of the group, at the block's input resolution divided
by 2^grid_down. For frame i of a group the grid is interpolated linearly between the two
nearest slices (slice j sits at frame j * grid_every + (grid_every - 1) / 2), upsampled
bilinearly (2x, grid_down times) to the block's input resolution, cropped, and concatenated
to the block's input channels before its upsampling conv. So detail can come from coded
values at the block's own resolution, not only from conv weights and the per-frame
embedding (HiNeRV: Kwan et al. 2023; NVRC: Kwan et al. 2024; C3: Kim et al. 2024).

Grids are parameters of the group: trained with the network (float, then additive noise
of one step, then straight-through rounding: the same phases as the weights), one
learned step per grid (log domain), coded as integers in the MODEL unit (gridcode.py).

Exact path (decoder): integers * step (float32), then `a * (1 - w) + b * w` with w a
float32 from integer arithmetic, then `blocks.up2`: only exactly rounded elementwise ops in
a fixed order, so the decoder reproduces the encoder's features bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nvc.codec.inr.blocks import up2
from nvc.codec.inr.config import ModelConfig, Preset
from nvc.codec.inr.quant import INT_MAX, empirical_bits, f32_step, laplace_bits, ste_round
from nvc.errors import CodecError

# Grid values are stored as raw * VALUE_SCALE: Adam's steps on raw are about the learning
# rate, so the grid's effective learning rate is VALUE_SCALE times the network's.
VALUE_SCALE = 4.0
INITIAL_STEP = 1.0 / 32.0  # the grid step before training adapts it
# Rate control: the grids may take this share of a group's bits (tree.avi 176x144, 30
# frames, 0.3 bpp, 1 CPU-s per frame: 8-channel grids at ~39% gave 30.2 dB, 2 and 4
# channels 28.2 and 28.8 dB, none 28.0 dB); larger or lower-rate pictures get fewer channels.
GRID_SHARE = 0.4


@dataclass(frozen=True)
class GridLevel:
    """One grid: which block it feeds and its shape."""

    block: int  # index of the block whose conv input it joins
    channels: int  # feature channels
    rows: int  # grid rows (the block's input rows / 2^down, rounded up)
    cols: int  # grid columns
    out_rows: int  # the block's input rows (the grid is upsampled and cropped to them)
    out_cols: int  # the block's input columns

    @property
    def slice_values(self) -> int:
        return self.channels * self.rows * self.cols


def grid_levels(cfg: ModelConfig, grid: tuple[int, int]) -> list[GridLevel]:
    """The grids of InrNet(cfg, grid), coarse to fine."""
    levels = []
    h, w = grid
    d = cfg.grid_down
    for i in range(cfg.blocks):
        c = cfg.grid_channels[i] if cfg.grid_channels else 0
        if c:
            levels.append(GridLevel(i, c, -(-h >> d), -(-w >> d), h, w))
        h, w = 2 * h, 2 * w
    return levels


def grid_slices(cfg: ModelConfig, frames: int) -> int:
    """Temporal slices of the grids of a group of `frames` frames."""
    return -(-frames // cfg.grid_every)


def grid_values(cfg: ModelConfig, grid: tuple[int, int], frames: int) -> int:
    """Coded grid values of a group of `frames` frames."""
    slices = grid_slices(cfg, frames)
    return slices * sum(level.slice_values for level in grid_levels(cfg, grid))


def slice_weights(index: int, every: int, slices: int) -> tuple[int, int, float]:
    """(j0, j1, w): frame `index` of its group is (1 - w) slice j0 + w slice j1.

    Slice j sits at frame j * every + (every - 1) / 2; integer arithmetic, then one
    correctly rounded division, so both sides get the same float32 weight."""
    num, den = 2 * index + 1 - every, 2 * every  # position in slice units = num / den
    if num <= 0 or slices == 1:
        return 0, 0, 0.0
    j0, rest = divmod(num, den)
    if j0 >= slices - 1:
        return slices - 1, slices - 1, 0.0
    if rest == 0:
        return j0, j0, 0.0
    return j0, j0 + 1, float(np.float32(rest / den))


def _frame_index(t: Tensor, group_size: int) -> Tensor:
    """Frame positions t = (i + 0.5) / group_size -> indices i (int64)."""
    return torch.floor(t.double() * group_size).long()


class FeatureGrids(nn.Module):
    """The grids of one network (see the module docstring)."""

    def __init__(self, cfg: ModelConfig, grid: tuple[int, int]) -> None:
        super().__init__()
        self.cfg = cfg
        self.levels = grid_levels(cfg, grid)
        self.max_slices = grid_slices(cfg, cfg.group_size)
        self.raw = nn.ParameterList(
            [
                nn.Parameter(torch.zeros(self.max_slices, lv.channels, lv.rows, lv.cols))
                for lv in self.levels
            ]
        )
        self.logstep = nn.Parameter(torch.full((len(self.levels),), math.log(INITIAL_STEP)))
        self.mode = "ste"  # training mode (blocks.QUANT_MODES)
        self.slices = self.max_slices  # slices in use (the current group's)
        self.exact: list[Tensor] | None = None  # dequantized float32 grids (exact mode)

    def use(self, frames: int) -> int:
        """Train and code the slices of a group of `frames` frames; returns their count."""
        self.slices = min(grid_slices(self.cfg, frames), self.max_slices)
        return self.slices

    def carry_over(self) -> None:
        """Warm start of the next group (NIRVANA): every slice starts from the last slice
        the previous group used, the one nearest in time."""
        with torch.no_grad():
            for p in self.raw:
                p.copy_(p[self.slices - 1 : self.slices].expand_as(p))

    def _values(self, i: int) -> Tensor:
        """Training: grid i's used slices as the blocks see them in the current mode."""
        v = self.raw[i][: self.slices] * VALUE_SCALE
        step = self.logstep[i].exp()
        if self.mode == "float":
            return v
        if self.mode == "noise":
            return v + step * (torch.rand_like(v) - 0.5)
        q = torch.clamp(ste_round(v / step), -INT_MAX, INT_MAX)
        return q * step

    def _ints(self, i: int) -> Tensor:
        """Straight-through integers of grid i's used slices (for the rate proxy)."""
        v = self.raw[i][: self.slices] * VALUE_SCALE
        return torch.clamp(ste_round(v / self.logstep[i].exp()), -INT_MAX, INT_MAX)

    def rate_bits(self) -> Tensor:
        """Laplace rate proxy of every grid's integers (used slices)."""
        total = self.logstep.new_zeros(())
        for i in range(len(self.levels)):
            total = total + laplace_bits(self._ints(i))
        return total

    def empirical_bits(self) -> float:
        """Order-0 entropy of the grids' integers (an estimate of their coded size)."""
        with torch.no_grad():
            return sum(
                empirical_bits(self._ints(i).cpu().numpy().astype(np.int64))
                for i in range(len(self.levels))
            )

    def features(self, t: Tensor, exact: bool) -> dict[int, Tensor]:
        """Per block: the grid features of frames t (B,) -> (B, C, out_rows, out_cols)."""
        idx = _frame_index(t, self.cfg.group_size).tolist()
        weights = [slice_weights(i, self.cfg.grid_every, self.slices) for i in idx]
        out = {}
        for n, level in enumerate(self.levels):
            if exact:
                g = self._exact_frame(n, weights)
            else:
                v = self._values(n)
                j0 = torch.tensor([w[0] for w in weights], device=v.device)
                j1 = torch.tensor([w[1] for w in weights], device=v.device)
                wt = torch.tensor([w[2] for w in weights], device=v.device).reshape(-1, 1, 1, 1)
                g = v[j0] * (1.0 - wt) + v[j1] * wt
                for _ in range(self.cfg.grid_down):
                    g = F.interpolate(g, scale_factor=2.0, mode="bilinear")
            g = g[:, :, : level.out_rows, : level.out_cols]
            out[level.block] = g.contiguous(memory_format=torch.channels_last)
        return out

    def _exact_frame(self, n: int, weights: list[tuple[int, int, float]]) -> Tensor:
        if self.exact is None:
            raise CodecError("exact inference before the grids were loaded")
        grid = self.exact[n]
        frames = []
        for j0, j1, w in weights:
            a = grid[j0 : j0 + 1]
            if w != 0.0:
                a = a * float(np.float32(1.0) - np.float32(w)) + grid[j1 : j1 + 1] * w
            frames.append(a)
        g = torch.cat(frames) if len(frames) > 1 else frames[0]
        for _ in range(self.cfg.grid_down):
            g = up2(g)
        return g

    def export(self) -> list[tuple[np.float32, np.ndarray]]:
        """(float32 step, int64 integers (slices, C, rows, cols)) of every grid."""
        codes = []
        with torch.no_grad():
            for i in range(len(self.levels)):
                step = f32_step(float(self.logstep[i].exp()))
                v = (self.raw[i][: self.slices] * VALUE_SCALE).double().cpu().numpy()
                ints = np.clip(np.rint(v / float(step)), -INT_MAX, INT_MAX).astype(np.int64)
                codes.append((step, ints))
        return codes

    def load_exact(self, codes: list[tuple[np.float32, np.ndarray]]) -> None:
        """Exact mode with coded grids: integers * step, float32."""
        self.slices = codes[0][1].shape[0] if codes else self.slices
        self.exact = [
            torch.from_numpy(ints.astype(np.float32) * np.float32(step)) for step, ints in codes
        ]


def grid_options(
    preset: Preset,
    enabled: bool | None,
    blocks: int,
    width: int,
    height: int,
    frames: int,
    budget: float,
) -> dict[str, object]:
    """ModelConfig fields of the preset's grids for a network of `blocks` blocks (none when
    `enabled` is False): the preset's channel counts, aligned to the last blocks, scaled
    down (all by one factor, rounded down) so that the grids' expected bits (the preset's
    bits per grid value) take at most GRID_SHARE of the group's `budget` bits."""
    if enabled is False or not preset.grid_channels:
        return {}
    full = ((0,) * blocks + tuple(preset.grid_channels))[-blocks:]
    stride = 1 << (blocks + int(preset.head_shuffle))
    h0, w0, d = -(-height // stride), -(-width // stride), preset.grid_down
    cells = [-(-(h0 << i) >> d) * -(-(w0 << i) >> d) for i in range(blocks)]
    slices = -(-frames // preset.grid_every)
    bits = slices * preset.bits_per_grid * sum(c * n for c, n in zip(full, cells, strict=True))
    scale = min(1.0, GRID_SHARE * max(budget, 0.0) / bits) if bits > 0 else 0.0
    return {
        "grid_channels": tuple(int(c * scale) for c in full),
        "grid_every": preset.grid_every,
        "grid_down": preset.grid_down,
    }

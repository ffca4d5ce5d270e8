"""The encoder's fitting: Gaussians optimized (Adam) to match a frame, then quantized.

Keyframes start from an initialisation built from the picture (half the Gaussians on a
jittered grid, half sampled where the picture has detail, colours from the picture
divided by the local coverage) and are fitted from scratch. P-frames start from the
*decoded* previous state (the integers every decoder holds) and fit only what changes:
the loss adds a rate proxy on the residuals (about 2 log2(1 + |r| / step) bits each, at
a Lagrange multiplier tied to the colour step), so that most residuals round to zero and
are gated off; births replace the Gaussians that carry the least energy at the places
where the previous state's error is largest (GSVC). The last 30% of every fit run on the
quantization lattice (straight-through rounding), so what is coded is what was fitted.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from nvc.codec.gaussian import tables as T
from nvc.codec.gaussian.coding import GEOMETRY, Residual, sort_key
from nvc.codec.gaussian.config import Steps
from nvc.codec.gaussian.render import (
    Canvas,
    FloatGaussians,
    Windows,
    extents,
    float_planes,
    render_exact,
    render_float,
    windows,
)
from nvc.codec.gaussian.state import ATTRIBUTES, Bounds, Gaussians2D
from nvc.media import Frame

QAT_FROM = 0.7  # fraction of a fit after which parameters are rounded (straight-through)
# Adam learning rates in the attributes' own units (x, y: 1/16 px; s1, s2: 1/8 octave;
# a: pi/256; colours and background: 2**-12). Chosen on a cup.mp4 frame at 320x240, 1200
# Gaussians, 60 steps: 40.6 dB against 38.7 dB with half these for x, y, s and a.
LEARNING_RATES = (4.0, 4.0, 0.5, 0.5, 3.0, 24.0, 24.0)
YUV_WEIGHTS = (6.0, 1.0, 1.0)  # per-plane weights of the loss for YUV (6:1:1)
P_FRAME_LR = 0.5  # P-frames fit with this fraction of the learning rates (small moves)
RESIDUAL_ROUNDING = 0.35  # residuals round as floor(|r| / step + this): a dead zone
BIRTH_CONTRAST = 4.0  # births go to 4x4 blocks whose error is this many times the mean
COLOUR_SOLVE_STEPS = 8  # conjugate-gradient steps on the colours of a keyframe's start


def target_planes(frame: Frame, device: str) -> list[Tensor]:
    """The frame's planes as full-scale float32 tensors (rgb: (3, H, W))."""
    top = float(frame.pixel_format.max_value)
    if frame.pixel_format.family == "rgb":
        rgb = torch.from_numpy(frame.planes[0].astype(np.float32) / top)
        return [rgb.permute(2, 0, 1).contiguous().to(device)]
    return [torch.from_numpy(p.astype(np.float32) / top).to(device) for p in frame.planes]


def sse(pred: list[Tensor], target: list[Tensor], canvas: Canvas) -> Tensor:
    """Weighted sum of squared errors (YUV 6:1:1 per pixel, normalised to luma pixels)."""
    if not canvas.yuv:
        return ((pred[0] - target[0]) ** 2).sum() / 3.0
    total = torch.zeros((), device=pred[0].device)
    luma = float(target[0].numel())
    for w, p, t in zip(YUV_WEIGHTS, pred, target, strict=True):
        total = total + w / 8.0 * ((p - t) ** 2).sum() * (luma / float(t.numel()))
    return total


def to_float(g: Gaussians2D, device: str) -> FloatGaussians:
    def f(v: np.ndarray) -> Tensor:
        return torch.tensor(v, dtype=torch.float32, device=device)

    colour = np.stack([g.c0, g.c1, g.c2], axis=1)
    bg = np.array(g.background, dtype=np.float64)
    return FloatGaussians(f(g.x), f(g.y), f(g.s1), f(g.s2), f(g.a), f(colour), f(bg))


def deadzone(x: Tensor) -> Tensor:
    """Residual rounding with a dead zone: |x| < 1 - RESIDUAL_ROUNDING rounds to 0."""
    return torch.sign(x) * torch.floor(x.abs() + RESIDUAL_ROUNDING)


def _snap(v: Tensor, anchor: Tensor | None, k: int) -> Tensor:
    """v rounded to the lattice anchor + m 2**k (plain rounding without an anchor, the
    residual dead zone with one)."""
    step = float(1 << k)
    if anchor is None:
        return torch.round(v / step) * step
    return anchor + deadzone((v - anchor) / step) * step


def quantize(
    p: FloatGaussians, steps: Steps, bounds: Bounds, anchor: FloatGaussians | None = None
) -> Gaussians2D:
    """The integer state of float parameters on the steps' lattice, clamped."""
    k = _tensor_steps(steps)
    with torch.no_grad():
        tens = p.tensors()
        refs = anchor.tensors() if anchor is not None else [None] * len(tens)
        ints = [
            _snap(t, r, kk).cpu().numpy().astype(np.int64)
            for t, r, kk in zip(tens, refs, k, strict=True)
        ]
    c, bg = ints[5], ints[6]
    g = Gaussians2D.from_columns([*ints[:5], c[:, 0], c[:, 1], c[:, 2]], tuple(bg.tolist()))
    g = bounds.clamp(g)
    return canonical(g) if anchor is None else g


def canonical(g: Gaussians2D) -> Gaussians2D:
    """The same Gaussians written the cheap way: the larger scale first (s1 >= s2; a
    swap turns the axes by pi/2, which the tables make exact: COS[a + 128] = -SIN[a],
    SIN[a + 128] = COS[a]), and round ones (s1 == s2) with angle 0 (it changes nothing).
    About 8% fewer base bits."""
    swap = g.s2 > g.s1
    s1 = np.where(swap, g.s2, g.s1)
    s2 = np.where(swap, g.s1, g.s2)
    a = np.where(swap, (g.a + T.ANGLES // 2) % T.ANGLES, g.a)
    a = np.where(s1 == s2, 0, a)
    return Gaussians2D(g.x, g.y, s1, s2, a, g.c0, g.c1, g.c2, g.background)


def _tensor_steps(steps: Steps) -> tuple[int, ...]:
    """Step exponents of FloatGaussians.tensors(): x, y, s1, s2, a, colour, background."""
    k = steps.exponents()
    return (*k[:5], k[5], k[5])


@dataclass
class FitReport:
    iterations: int  # optimizer steps taken
    seconds: float  # time spent
    loss: float  # last loss (weighted SSE in full-scale units, plus the rate term)


class Fitter:
    """Fits Gaussians to frames of one canvas on one device."""

    def __init__(self, canvas: Canvas, device: str, seed: int) -> None:
        self.canvas, self.device = canvas, device
        self.bounds = Bounds(canvas.width, canvas.height)
        self.rng = np.random.default_rng(seed)

    # ------------------------------------------------------------------ keyframes

    def initial(
        self, target: list[Tensor], count: int, deadline: float | None = None
    ) -> FloatGaussians:
        """Initial Gaussians for a keyframe (see the module docstring); the colour solve
        stops at `deadline` (a time.perf_counter() value)."""
        cv, rng = self.canvas, self.rng
        w, h = cv.width, cv.height
        luma = target[0][0] if not cv.yuv else target[0]
        y = luma.detach().cpu().numpy().astype(np.float64)
        grad = np.zeros_like(y)
        grad[:, 1:] += np.abs(np.diff(y, axis=1))
        grad[1:, :] += np.abs(np.diff(y, axis=0))
        n_grid = max(1, count // 2)
        n_detail = count - n_grid
        spacing = math.sqrt(w * h / n_grid)
        cols = max(1, round(w / spacing))
        rows = max(1, -(-n_grid // cols))
        gx, gy = np.meshgrid((np.arange(cols) + 0.5) * w / cols, (np.arange(rows) + 0.5) * h / rows)
        gx, gy = gx.ravel()[:n_grid], gy.ravel()[:n_grid]
        gx = gx + rng.uniform(-0.25, 0.25, n_grid) * spacing
        gy = gy + rng.uniform(-0.25, 0.25, n_grid) * spacing
        prob = (grad + grad.mean() * 0.1 + 1e-9).ravel()
        pick = rng.choice(prob.size, size=n_detail, p=prob / prob.sum())
        dx = (pick % w) + rng.uniform(0, 1, n_detail)
        dy = (pick // w) + rng.uniform(0, 1, n_detail)
        xs = np.concatenate([gx, dx])
        ys = np.concatenate([gy, dy])
        sig = np.concatenate([np.full(n_grid, 0.45 * spacing), np.full(n_detail, 0.25 * spacing)])
        s = np.clip(8.0 * np.log2(4.0 * np.maximum(sig, 0.3)), 0, T.SCALE_MAX)
        f = torch.tensor
        dev = self.device
        bg = torch.stack([t.mean() for t in self._full_planes(target)]) * float(1 << T.COLOR_BITS)
        p = FloatGaussians(
            f(xs * T.POS_ONE, dtype=torch.float32, device=dev),
            f(ys * T.POS_ONE, dtype=torch.float32, device=dev),
            f(s, dtype=torch.float32, device=dev),
            f(s + rng.uniform(-0.5, 0.5, count), dtype=torch.float32, device=dev),
            f(rng.uniform(0, T.ANGLES, count), dtype=torch.float32, device=dev),
            torch.zeros(count, 3, dtype=torch.float32, device=dev),
            torch.zeros(3, dtype=torch.float32, device=dev),
        )
        p.colour[:] = float(1 << T.COLOR_BITS)
        state = quantize(p, Steps(0, 0, 0, 0), self.bounds)
        with torch.no_grad():
            cover = render_float(p, windows(state), cv)[0]  # coverage with unit colours
            full = self._full_planes(target)
            ix = torch.from_numpy(np.clip(xs.astype(np.int64), 0, w - 1)).to(dev)
            iy = torch.from_numpy(np.clip(ys.astype(np.int64), 0, h - 1)).to(dev)
            norm = cover[iy, ix].clamp(min=0.3)
            p.background.copy_(bg.float())
            for ch in range(3):
                rest = full[ch][iy, ix] - bg[ch] / float(1 << T.COLOR_BITS)
                p.colour[:, ch] = rest / norm * float(1 << T.COLOR_BITS)
        self.solve_colours(p, target, COLOUR_SOLVE_STEPS, deadline)
        return p

    def solve_colours(
        self, p: FloatGaussians, target: list[Tensor], steps: int, deadline: float | None = None
    ) -> None:
        """Improve the colours in place by conjugate gradients on the weighted SSE (the
        picture is linear in the colours for fixed geometry)."""
        cv = self.canvas
        wins = windows(quantize(p, Steps(0, 0, 0, 0), self.bounds))
        zeros = [torch.zeros_like(t) for t in target]
        geometry = [t.detach() for t in p.tensors()[:5]]
        no_bg = torch.zeros_like(p.background)

        def grad(colour: Tensor, goal: list[Tensor], bg: Tensor) -> Tensor:
            c = colour.detach().requires_grad_(True)
            x, y, s1, s2, a = geometry
            q = FloatGaussians(x, y, s1, s2, a, c, bg)
            pred = float_planes(render_float(q, wins, cv), cv)
            (g,) = torch.autograd.grad(sse(pred, goal, cv), [c])
            return g

        colour = p.colour.detach().clone()
        r = -grad(colour, target, p.background.detach())
        d = r.clone()
        rr = float((r * r).sum())
        for _ in range(steps):
            if rr <= 0 or (deadline is not None and time.perf_counter() > deadline):
                break
            hd = grad(d, zeros, no_bg)
            dhd = float((d * hd).sum())
            if dhd <= 0:
                break
            alpha = rr / dhd
            colour += alpha * d
            r -= alpha * hd
            rr_new = float((r * r).sum())
            d = r + (rr_new / rr) * d
            rr = rr_new
        p.colour.copy_(colour.clamp(-T.COLOR_LIMIT, T.COLOR_LIMIT))

    def _full_planes(self, target: list[Tensor]) -> list[Tensor]:
        """Three full-resolution planes of the target (chroma repeated)."""
        if not self.canvas.yuv:
            return [target[0][c] for c in range(3)]
        sx, sy = self.canvas.sub
        h, w = self.canvas.height, self.canvas.width
        out = [target[0]]
        for t in target[1:]:
            out.append(t.repeat_interleave(sy, 0).repeat_interleave(sx, 1)[:h, :w])
        return out

    # ------------------------------------------------------------------ fitting

    def fit(
        self,
        p: FloatGaussians,
        target: list[Tensor],
        steps: Steps,
        *,
        seconds: float,
        max_iterations: int | None,
        anchor: FloatGaussians | None = None,
        rate_lambda: float = 0.0,
        lr_scale: float = 1.0,
    ) -> FitReport:
        """Adam on `p` in place until `seconds` pass (at least one step). With `anchor`
        the lattice is anchor + m * step and the rate term acts on p - anchor."""
        start = time.perf_counter()
        tens = p.tensors()
        for t in tens:
            t.requires_grad_(True)
        opt = torch.optim.Adam(
            [
                {"params": [t], "lr": lr * lr_scale}
                for t, lr in zip(tens, LEARNING_RATES, strict=True)
            ]
        )
        kk = _tensor_steps(steps)
        refs = anchor.tensors() if anchor is not None else [None] * len(tens)
        it, loss_value = 0, 0.0
        while True:
            elapsed = time.perf_counter() - start
            done = elapsed / seconds if seconds > 0 else 1.0
            if max_iterations is not None:
                done = max(done, it / max_iterations)
            if it > 0 and done >= 1.0:
                break
            state = quantize(p, steps, self.bounds, anchor)
            wins = windows(state)
            qat = done >= QAT_FROM
            used = []
            for t, ref, kk_i in zip(tens, refs, kk, strict=True):
                used.append(t + (_snap(t, ref, kk_i) - t).detach() if qat else t)
            q = FloatGaussians(*used)
            pred = float_planes(render_float(q, wins, self.canvas), self.canvas)
            loss = sse(pred, target, self.canvas)
            if anchor is not None and rate_lambda > 0:
                loss = loss + rate_lambda * self._rate(q, anchor, steps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            scale = lr_scale * (1.0 - 0.8 * min(done, 1.0))
            for group, lr in zip(opt.param_groups, LEARNING_RATES, strict=True):
                group["lr"] = lr * scale
            opt.step()
            loss_value = float(loss.detach())
            it += 1
        for t in tens:
            t.requires_grad_(False)
        return FitReport(it, time.perf_counter() - start, loss_value)

    @staticmethod
    def _rate(q: FloatGaussians, anchor: FloatGaussians, steps: Steps) -> Tensor:
        """About 2 log2(1 + |residual| / step) bits per residual (a smooth proxy)."""
        k = _tensor_steps(steps)
        total = torch.zeros((), device=q.x.device)
        pairs = zip(q.tensors()[:6], anchor.tensors()[:6], k[:6], strict=True)
        for i, (v, ref, kk) in enumerate(pairs):
            d = (v - ref) / float(1 << kk)
            if i == 4:  # angles wrap
                d = torch.remainder(
                    d + T.ANGLES / 2 / (1 << kk), T.ANGLES / (1 << kk)
                ) - T.ANGLES / 2 / (1 << kk)
            total = total + 2.0 * torch.log2(1.0 + d.abs()).sum()
        return total

    # ------------------------------------------------------------------ P-frames

    def births(
        self, prev: Gaussians2D, target: list[Tensor], count: int
    ) -> tuple[np.ndarray, FloatGaussians]:
        """(indices of prev to remove, new Gaussians): up to `count` new Gaussians at the
        4x4 blocks of prev's picture with the largest errors (those above BIRTH_CONTRAST x
        the mean), and as many of the weakest Gaussians go."""
        cv = self.canvas
        if count == 0 or prev.count <= count:
            return np.zeros(0, np.int64), to_float(Gaussians2D.empty(), self.device)
        energy = np.max(np.abs(np.stack([prev.c0, prev.c1, prev.c2])), axis=0) * np.exp2(
            (prev.s1 + prev.s2) / 8.0
        )
        weakest = np.argsort(energy, kind="stable")
        acc = render_exact(prev, cv).to(torch.float64) / float(1 << (T.COLOR_BITS + T.WEIGHT_BITS))
        full = self._full_planes(target)
        h, w = cv.height, cv.width
        err = torch.stack([full[c].double().cpu() - acc[c, :h, :w] for c in range(3)])
        cell = 4
        hh, ww = h // cell, w // cell
        if hh == 0 or ww == 0:
            return np.zeros(0, np.int64), to_float(Gaussians2D.empty(), self.device)
        blocks = err[:, : hh * cell, : ww * cell].reshape(3, hh, cell, ww, cell).mean(dim=(2, 4))
        score = (blocks**2).sum(0).reshape(-1)
        # only where the error stands out: a still picture needs no births
        n = min(count, int((score > BIRTH_CONTRAST * score.mean()).sum()))
        if n == 0:
            return np.zeros(0, np.int64), to_float(Gaussians2D.empty(), self.device)
        best = torch.topk(score, n).indices.cpu().numpy()
        bx = (best % ww) * cell + cell / 2
        by = (best // ww) * cell + cell / 2
        s = float(8.0 * np.log2(4.0 * cell * 0.5))
        dev = self.device
        colour = blocks.reshape(3, -1)[:, torch.from_numpy(best)].T.float() * float(
            1 << T.COLOR_BITS
        )
        born = FloatGaussians(
            torch.tensor(bx * T.POS_ONE, dtype=torch.float32, device=dev),
            torch.tensor(by * T.POS_ONE, dtype=torch.float32, device=dev),
            torch.full((n,), s, device=dev),
            torch.full((n,), s, device=dev),
            torch.zeros(n, device=dev),
            colour.to(dev).contiguous(),
            torch.zeros(3, device=dev),
        )
        return np.sort(weakest[:n]), born


def residual_of(
    prev: Gaussians2D,
    removed: np.ndarray,
    fitted: FloatGaussians,
    survivors: int,
    steps: Steps,
    bounds: Bounds,
) -> Residual:
    """The residual of a P-frame: fitted[:survivors] against prev without `removed`,
    fitted[survivors:] as births. Residuals that round to 0 are gated off."""
    keep = np.ones(prev.count, bool)
    keep[removed] = False
    base = prev.take(keep)
    k = steps.exponents()
    with torch.no_grad():
        cols = [t.cpu().numpy().astype(np.float64) for t in fitted.tensors()[:5]]
        colour = fitted.colour.cpu().numpy().astype(np.float64)
    values = [*cols, colour[:, 0], colour[:, 1], colour[:, 2]]
    ref = base.columns()
    deltas = []
    for i in range(8):
        d = values[i][:survivors] - ref[i]
        if ATTRIBUTES[i] == "a":
            d = np.mod(d + T.ANGLES / 2, T.ANGLES) - T.ANGLES / 2
        x = d / float(1 << k[i])
        deltas.append((np.sign(x) * np.floor(np.abs(x) + RESIDUAL_ROUNDING)).astype(np.int64))
    geo = (
        np.flatnonzero(np.any(np.stack(deltas[GEOMETRY]) != 0, axis=0))
        if survivors
        else np.zeros(0, np.int64)
    )
    col = (
        np.flatnonzero(np.any(np.stack(deltas[5:]) != 0, axis=0))
        if survivors
        else np.zeros(0, np.int64)
    )
    sent = [d[geo] if i < 5 else d[col] for i, d in enumerate(deltas)]
    born_cols = []
    for i in range(8):
        v = values[i][survivors:]
        born_cols.append((np.rint(v / float(1 << k[i])).astype(np.int64)) << k[i])
    born = canonical(bounds.clamp(Gaussians2D.from_columns(born_cols)))
    born = born.take(sort_key(born))
    with torch.no_grad():
        bg = fitted.background.cpu().numpy().astype(np.float64)
    bg_delta = tuple(
        int(deadzone(torch.tensor((bg[i] - prev.background[i]) / float(1 << k[5]))))
        for i in range(3)
    )
    return Residual(
        removed.astype(np.int64),
        geo.astype(np.int64),
        col.astype(np.int64),
        sent,
        born,
        bg_delta,  # type: ignore[arg-type]
    )


def _error_field(source: Frame, out: Frame, canvas: Canvas) -> tuple[Tensor, Tensor]:
    """(e, weights): the picture error source - out at the full render grid (3, H2, W2),
    chroma repeated over its subsampling, zero outside the picture; and the per-channel
    weights under which sum(weights_c * e_c * delta_c) is the SSE's linear term."""
    h2, w2 = canvas.padded
    h, w = canvas.height, canvas.width
    top = float(source.pixel_format.max_value)
    e = torch.zeros(3, h2, w2, dtype=torch.float64)
    if not canvas.yuv:
        d = (source.planes[0].astype(np.float64) - out.planes[0]) / top
        e[:, :h, :w] = torch.from_numpy(d).permute(2, 0, 1)
        return e, torch.full((3,), 1.0 / 3.0, dtype=torch.float64)
    sx, sy = canvas.sub
    e[0, :h, :w] = torch.from_numpy((source.planes[0].astype(np.float64) - out.planes[0]) / top)
    for ch in (1, 2):
        d = torch.from_numpy((source.planes[ch].astype(np.float64) - out.planes[ch]) / top)
        full = d.repeat_interleave(sy, 0).repeat_interleave(sx, 1)[:h, :w]
        e[ch, :h, :w] = full
    return e, torch.tensor(YUV_WEIGHTS, dtype=torch.float64) / 8.0


def keep_benefit(
    old: Gaussians2D, new: Gaussians2D, source: Frame, out: Frame, canvas: Canvas
) -> np.ndarray:
    """Per Gaussian i (old[i] -> new[i]), about how much the SSE of `out` (the picture of
    the new state) would grow if i alone went back to old[i]: 2 <e, d_i> + |d_i|^2, d_i
    the change of i's own contribution, e = source - out (float estimate)."""
    n = old.count
    if n == 0:
        return np.zeros(0)
    e, wt = _error_field(source, out, canvas)
    h2, w2 = canvas.padded
    ex_o, ey_o = extents(old)
    ex_n, ey_n = extents(new)
    shift_x = np.abs((new.x >> T.POS_BITS) - (old.x >> T.POS_BITS))
    shift_y = np.abs((new.y >> T.POS_BITS) - (old.y >> T.POS_BITS))
    ladder = np.asarray(T.LADDER, dtype=np.int64)
    ex = np.minimum(np.maximum(ex_o, ex_n) + shift_x, T.MAX_EXTENT)
    ey = np.minimum(np.maximum(ey_o, ey_n) + shift_y, T.MAX_EXTENT)
    wins = Windows(ladder[np.searchsorted(ladder, ex)], ladder[np.searchsorted(ladder, ey)])
    fo, fn = to_float(old, "cpu"), to_float(new, "cpu")
    out_gain = torch.zeros(n, dtype=torch.float64)
    pi = 3.141592653589793
    for part, wx, wy in wins.groups():
        idx = torch.from_numpy(part)
        cx = (torch.from_numpy(new.x[part]) >> T.POS_BITS)[:, None, None]
        cy = (torch.from_numpy(new.y[part]) >> T.POS_BITS)[:, None, None]
        cols = cx + torch.arange(-wx, wx + 1)[None, None, :]
        rows = cy + torch.arange(-wy, wy + 1)[None, :, None]
        inside = (cols >= 0) & (cols < w2) & (rows >= 0) & (rows < h2)
        flat = (rows.clamp(0, h2 - 1) * w2 + cols.clamp(0, w2 - 1)).reshape(len(part), -1)
        delta = torch.zeros(3, len(part), flat.shape[1], dtype=torch.float64)
        for sign, p in ((1.0, fn), (-1.0, fo)):
            dx = ((cols * T.POS_ONE + T.POS_ONE // 2) - p.x[idx][:, None, None]) / T.POS_ONE
            dy = ((rows * T.POS_ONE + T.POS_ONE // 2) - p.y[idx][:, None, None]) / T.POS_ONE
            th = p.a[idx] * (pi / T.ANGLES)
            c, s = torch.cos(th)[:, None, None], torch.sin(th)[:, None, None]
            u, v = c * dx + s * dy, c * dy - s * dx
            i1 = (16.0 * torch.exp2(-p.s1[idx] / 4.0))[:, None, None]
            i2 = (16.0 * torch.exp2(-p.s2[idx] / 4.0))[:, None, None]
            q = u * u * i1 + v * v * i2
            w = (torch.exp(-0.5 * q) * ((q < T.Q_CUT) & inside)).reshape(len(part), -1)
            colour = p.colour[idx].double().T / float(1 << T.COLOR_BITS)
            delta += sign * colour[:, :, None] * w.double()[None]
        err = e.reshape(3, -1)[:, flat]  # (3, n, P)
        lin = (wt[:, None, None] * err * delta).sum(dim=(0, 2))
        quad = (wt[:, None, None] * delta * delta).sum(dim=(0, 2))
        out_gain[idx] = 2.0 * lin + quad
    return out_gain.numpy()


def residual_bits(res: Residual) -> np.ndarray:
    """About the bits each gated survivor costs, indexed like the survivors' union of
    gates (np.union1d(res.geometry, res.colour))."""
    gated = np.union1d(res.geometry, res.colour)
    bits = np.zeros(gated.size)
    for i, d in enumerate(res.deltas):
        rows = res.geometry if i < 5 else res.colour
        where = np.searchsorted(gated, rows)
        bits[where] += 2.0 * np.log2(1.0 + np.abs(d)) + 1.0
    return bits + 3.0  # gate indices


def prune(res: Residual, drop: np.ndarray) -> Residual:
    """The residual without the survivors in `drop` (sorted indices)."""
    keep_g = ~np.isin(res.geometry, drop)
    keep_c = ~np.isin(res.colour, drop)
    deltas = [d[keep_g] if i < 5 else d[keep_c] for i, d in enumerate(res.deltas)]
    return Residual(
        res.removed, res.geometry[keep_g], res.colour[keep_c], deltas, res.births, res.background
    )

"""Rendering image-plane Gaussians: the exact integer renderer and the encoder's float one.

A frame is the plain sum of its Gaussians (GaussianImage's accumulated blending, no
sorting, no alpha): pixel(p) = sum_i colour_i * w_i(p), w_i(p) = exp(-q / 2),
q = d' inv(Sigma_i) d, d = p - centre_i, cut off at q >= Q_CUT; plus a background colour.

Exact path (the decoder's, and the encoder's reconstruction): the inverse covariance
(A, B, C) is an integer combination of table values; q at a pixel is
A dx^2 + 2 B dx dy + C dy^2 in int64 (dx, dy in 1/16 px), its table index drops the low
bits, the weight is an integer from the exp table, and the colour-weight products are
summed in int64. Integer addition is associative, so the result does not depend on the
summation order, the thread count or the device; every bound is below 2**62.

Each Gaussian is evaluated on a window of (2 ex + 1) x (2 ey + 1) pixels around its
centre pixel: ex and ey are the exact extents of its ellipse at q = Q_CUT along x and y
(an integer square root of integer variances) rounded up to tables.LADDER, so that
Gaussians share a few window sizes and each size is evaluated as one dense block. The
accumulators extend beyond the picture by the largest window (no clipping).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from nvc.codec.gaussian import tables as T
from nvc.codec.gaussian.state import Gaussians2D
from nvc.errors import BitstreamError
from nvc.media import pixel_format

IntArray = npt.NDArray[np.int64]
CHUNK = 1 << 21  # window pixels evaluated at once (bounds the renderer's memory)
TRIG_SQ = 2 * T.TRIG_BITS


@dataclass(frozen=True)
class Canvas:
    """The picture the Gaussians are rendered into."""

    width: int  # luma width of the stream
    height: int  # luma height
    format: str  # pixel format of the stream

    @property
    def yuv(self) -> bool:
        return pixel_format(self.format).family == "yuv"

    @property
    def sub(self) -> tuple[int, int]:
        """(x, y) chroma subsampling factors (1 or 2)."""
        f = pixel_format(self.format)
        return 1 << f.chroma_shift_x, 1 << f.chroma_shift_y

    @property
    def padded(self) -> tuple[int, int]:
        """(height, width) of the rendered grid: the picture rounded up to whole chroma
        samples."""
        sx, sy = self.sub
        return -(-self.height // sy) * sy, -(-self.width // sx) * sx

    @property
    def max_value(self) -> int:
        return pixel_format(self.format).max_value


def conic(g: Gaussians2D) -> tuple[IntArray, IntArray, IntArray]:
    """(A, B, C) of inv(Sigma) in 2**-24 / px**2 (integers from the tables)."""
    cos_t, sin_t = T.trig()
    inv2, _ = T.scales()
    c, s = cos_t[g.a], sin_t[g.a]
    i1, i2 = inv2[g.s1], inv2[g.s2]
    cc, ss, cs = c * c, s * s, c * s
    a = (i1 * cc + i2 * ss) >> TRIG_SQ
    b = ((i1 - i2) * cs) >> TRIG_SQ
    cq = (i1 * ss + i2 * cc) >> TRIG_SQ
    return a, b, cq


def extents(g: Gaussians2D) -> tuple[IntArray, IntArray]:
    """Half window (pixels) of each Gaussian along x and y: the smallest integer e with
    e**2 >= Q_CUT * Sigma_xx (resp. yy), in integers, between 1 and MAX_EXTENT."""
    cos_t, sin_t = T.trig()
    _, var = T.scales()
    c, s = cos_t[g.a], sin_t[g.a]
    v1, v2 = var[g.s1], var[g.s2]
    vxx = (v1 * c * c + v2 * s * s) >> TRIG_SQ
    vyy = (v1 * s * s + v2 * c * c) >> TRIG_SQ
    return _ceil_root(T.Q_CUT * vxx), _ceil_root(T.Q_CUT * vyy)


def _ceil_root(t: IntArray) -> IntArray:
    """The smallest e >= 1 with e * e * 2**COV_BITS >= t (exact: a float guess, then
    integer corrections), at most MAX_EXTENT."""
    e = np.floor(np.sqrt(np.maximum(t, 0) / float(1 << T.COV_BITS))).astype(np.int64)
    for _ in range(2):
        e += ((e * e) << T.COV_BITS) < t
    for _ in range(2):
        e -= (e > 0) & ((((e - 1) * (e - 1)) << T.COV_BITS) >= t)
    return np.clip(e, 1, T.MAX_EXTENT)


@dataclass(frozen=True)
class Windows:
    """The pixel windows of a set of Gaussians: (2 ex + 1) x (2 ey + 1) pixels around the
    centre pixel of each, ex and ey its exact extents rounded up to tables.LADDER."""

    ex: IntArray  # half width in pixels, per Gaussian (a LADDER value)
    ey: IntArray  # half height in pixels, per Gaussian (a LADDER value)

    @property
    def pixels(self) -> int:
        """Pixel evaluations needed to render the Gaussians."""
        return int(((2 * self.ex + 1) * (2 * self.ey + 1)).sum())

    def groups(self) -> Iterator[tuple[IntArray, int, int]]:
        """(indices, ex, ey) of Gaussians with the same window, at most CHUNK window pixels
        at a time, in a fixed order."""
        if self.ex.size == 0:
            return
        key = self.ex * (T.MAX_EXTENT + 1) + self.ey
        order = np.argsort(key, kind="stable")
        keys, starts = np.unique(key[order], return_index=True)
        bounds = [*starts.tolist(), len(order)]
        for k, lo, hi in zip(keys.tolist(), bounds[:-1], bounds[1:], strict=True):
            ex, ey = divmod(k, T.MAX_EXTENT + 1)
            per = max(1, CHUNK // ((2 * ex + 1) * (2 * ey + 1)))
            for a in range(lo, hi, per):
                yield order[a : min(hi, a + per)], ex, ey


def windows(g: Gaussians2D) -> Windows:
    ladder = np.asarray(T.LADDER, dtype=np.int64)
    ex, ey = extents(g)
    return Windows(
        ladder[np.searchsorted(ladder, ex, side="left")],
        ladder[np.searchsorted(ladder, ey, side="left")],
    )


CENTRE_MARGIN = 8 + 2  # pixels a centre within Bounds (and its floor) lies outside


def _grid(
    x: Tensor, y: Tensor, ex: int, ey: int, canvas: Canvas, margin: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Window pixel centres in 1/16 px, columns (n, 1, wx) and rows (n, wy, 1), for
    Gaussians with integer centres x, y (1/16 px), and the window pixels' flat indices
    (n, wy, wx) into accumulators that extend `margin` pixels around the picture (the
    largest window plus CENTRE_MARGIN, so no window needs clipping)."""
    _, wp = _accumulator_shape(canvas, margin)
    dev = x.device
    ox = torch.arange(-ex, ex + 1, dtype=torch.int64, device=dev)
    oy = torch.arange(-ey, ey + 1, dtype=torch.int64, device=dev)
    cols = (x >> T.POS_BITS)[:, None, None] + ox[None, None, :]
    rows = (y >> T.POS_BITS)[:, None, None] + oy[None, :, None]
    flat = (rows + margin) * wp + (cols + margin)
    half = T.POS_ONE // 2
    return cols * T.POS_ONE + half, rows * T.POS_ONE + half, flat


def _accumulator_shape(canvas: Canvas, margin: int) -> tuple[int, int]:
    h2, w2 = canvas.padded
    return h2 + 2 * margin, w2 + 2 * margin


def _margin(wins: Windows) -> int:
    if wins.ex.size == 0:
        return CENTRE_MARGIN
    return int(max(wins.ex.max(), wins.ey.max())) + CENTRE_MARGIN


def _crop(acc: Tensor, canvas: Canvas, margin: int) -> Tensor:
    h2, w2 = canvas.padded
    hp, wp = _accumulator_shape(canvas, margin)
    return acc.view(3, hp, wp)[:, margin : margin + h2, margin : margin + w2]


def render_exact(g: Gaussians2D, canvas: Canvas, max_pixels: int | None = None) -> Tensor:
    """The integer accumulators (3, H2, W2) int64 of `g` (colour x weight in 2**-24).

    `g` must be within Bounds (decoded states are). `max_pixels` bounds the window pixel
    evaluations (a BitstreamError above it)."""
    wins = windows(g)
    if max_pixels is not None and wins.pixels > max_pixels:
        raise BitstreamError(
            f"the Gaussians ask for {wins.pixels} pixel evaluations per frame, "
            f"above the limit of {max_pixels}"
        )
    margin = _margin(wins)
    hp, wp = _accumulator_shape(canvas, margin)
    acc = torch.zeros(3, hp * wp, dtype=torch.int64)
    a_all, b_all, c_all = (torch.from_numpy(v) for v in conic(g))
    x_all, y_all = torch.from_numpy(g.x), torch.from_numpy(g.y)
    colours = [torch.from_numpy(c) for c in (g.c0, g.c1, g.c2)]
    table = torch.from_numpy(T.exp_table())
    for part, ex, ey in wins.groups():
        idx = torch.from_numpy(part)
        x, y = x_all[idx], y_all[idx]
        px, py, flat = _grid(x, y, ex, ey, canvas, margin)
        dx = px - x[:, None, None]  # (n, 1, wx)
        dy = py - y[:, None, None]  # (n, wy, 1)
        # q = A dx^2 + C dy^2 + (2 B dy) dx, all exact in int64
        ends = a_all[idx][:, None, None] * dx * dx + c_all[idx][:, None, None] * dy * dy
        q = torch.addcmul(ends, 2 * b_all[idx][:, None, None] * dy, dx)
        q >>= T.Q_SHIFT
        w = table[q.clamp_(0, T.EXP_SIZE - 1)]
        flat_f = flat.reshape(-1)
        for ch in range(3):
            acc[ch].index_add_(0, flat_f, (w * colours[ch][idx][:, None, None]).reshape(-1))
    out = _crop(acc, canvas, margin).clone()
    for ch in range(3):
        out[ch] += g.background[ch] << T.WEIGHT_BITS
    return out


def to_planes(acc: Tensor, canvas: Canvas) -> tuple[np.ndarray, ...]:
    """Code values of the stream's planes from the exact accumulators (round, clamp)."""
    fmt = pixel_format(canvas.format)
    top = canvas.max_value
    shift = T.COLOR_BITS + T.WEIGHT_BITS
    h, w = canvas.height, canvas.width

    def code(values: Tensor, extra: int) -> np.ndarray:
        s = shift + extra
        out = ((values * top + (1 << (s - 1))) >> s).clamp(0, top)
        return out.numpy().astype(fmt.dtype)

    if not canvas.yuv:
        return (np.ascontiguousarray(code(acc[:, :h, :w], 0).transpose(1, 2, 0)),)
    sx, sy = canvas.sub
    planes = [code(acc[0, :h, :w], 0)]
    for ch in (1, 2):
        plane = acc[ch]
        h2, w2 = plane.shape
        summed = plane.reshape(h2 // sy, sy, w2 // sx, sx).sum(dim=(1, 3))
        planes.append(code(summed, (sx * sy).bit_length() - 1))
    return tuple(planes)


# --------------------------------------------------------------------------- float path


@dataclass
class FloatGaussians:
    """The encoder's continuous parameters in the units of the integer state."""

    x: Tensor  # (N,) float, 1/16 px
    y: Tensor
    s1: Tensor  # 1/8 octave
    s2: Tensor
    a: Tensor  # pi/256
    colour: Tensor  # (N, 3), 2**-12 of full scale
    background: Tensor  # (3,), 2**-12 of full scale

    def tensors(self) -> list[Tensor]:
        return [self.x, self.y, self.s1, self.s2, self.a, self.colour, self.background]


def render_float(p: FloatGaussians, wins: Windows, canvas: Canvas) -> Tensor:
    """A differentiable float render (3, H2, W2) in full-scale units on the windows `wins`
    (of the integer state nearest to p), with exp instead of the table."""
    margin = _margin(wins)
    hp, wp = _accumulator_shape(canvas, margin)
    dev = p.x.device
    out = torch.zeros(3, hp * wp, dtype=p.x.dtype, device=dev)
    pi = 3.141592653589793
    xi = torch.floor(p.x.detach()).to(torch.int64)
    yi = torch.floor(p.y.detach()).to(torch.int64)
    theta = p.a * (pi / T.ANGLES)
    cos, sin = torch.cos(theta), torch.sin(theta)
    i1 = 16.0 * torch.exp2(-p.s1 / 4.0) / float(T.POS_ONE**2)
    i2 = 16.0 * torch.exp2(-p.s2 / 4.0) / float(T.POS_ONE**2)
    # inverse covariance per (1/16 px)**2
    ca = cos * cos * i1 + sin * sin * i2
    cb = 2.0 * cos * sin * (i1 - i2)
    cc = sin * sin * i1 + cos * cos * i2
    colour = p.colour / float(1 << T.COLOR_BITS)
    for part, ex, ey in wins.groups():
        idx = torch.from_numpy(part).to(dev)
        px, py, flat = _grid(xi[idx], yi[idx], ex, ey, canvas, margin)
        dx = px.to(p.x.dtype) - p.x[idx][:, None, None]
        dy = py.to(p.x.dtype) - p.y[idx][:, None, None]
        q = ca[idx][:, None, None] * dx * dx + cc[idx][:, None, None] * dy * dy
        q = q + (cb[idx][:, None, None] * dy) * dx
        w = torch.exp(-0.5 * q) * (q < T.Q_CUT)
        w = w.reshape(len(part), -1)
        contrib = colour[idx].T[:, :, None] * w[None]
        out.index_add_(1, flat.reshape(-1), contrib.reshape(3, -1))
    bg = (p.background / float(1 << T.COLOR_BITS))[:, None, None]
    return _crop(out, canvas, margin) + bg


def float_planes(img: Tensor, canvas: Canvas) -> list[Tensor]:
    """The stream's planes (full-scale floats) from a float render: Y / R G B cropped,
    chroma averaged over its subsampling."""
    h, w = canvas.height, canvas.width
    if not canvas.yuv:
        return [img[:, :h, :w]]
    sx, sy = canvas.sub
    out = [img[0, :h, :w]]
    for ch in (1, 2):
        h2, w2 = img.shape[1:]
        out.append(img[ch].reshape(h2 // sy, sy, w2 // sx, sx).mean(dim=(1, 3)))
    return out

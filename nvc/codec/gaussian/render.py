"""Rendering image-plane Gaussians: the exact integer renderer and the encoder's float one.

A frame is the plain sum of its Gaussians (GaussianImage's accumulated blending, no
sorting, no alpha): pixel(p) = sum_i colour_i * w_i(p), w_i(p) = exp(-q / 2),
q = d' inv(Sigma_i) d, d = p - centre_i, cut off at q >= Q_CUT; plus a background colour.

Exact path (the decoder's, and the encoder's reconstruction): the inverse covariance
(A, B, C) is an integer combination of table values; q at a pixel is
A dx^2 + 2 B dx dy + C dy^2 (dx, dy in 1/16 px), its table index drops the low bits, the
weight is an integer from the exp table, and the colour-weight products are summed.
Every one of these values is an integer (times a power of two) below 2**53, so the
renderer computes them in float64, where such sums and products are exact (see _Plan);
the result is integer arithmetic and does not depend on the summation order, the chunks,
the thread count or the machine.

Each Gaussian is evaluated on a window of (2 ex + 1) x (2 ey + 1) pixels around its
centre pixel: ex and ey are the exact extents of its ellipse at q = Q_CUT along x and y
(an integer square root of integer variances) rounded up to tables.LADDER. The exact
renderer pads windows to a few BUCKETS and evaluates each bucket as batched dense blocks
(the padding gets weight 0, so exactly the window pixels contribute), in chunks, on
BANDS threads with one accumulator each; the accumulators extend beyond the picture as
far as the blocks do (no clipping).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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


# The exact renderer's work: window classes padded to buckets, chunks, threads. None of
# these changes a bit of the picture (integer sums; see _Plan), only the speed.
BUCKETS = (1, 2, 4, 8, 12, 16, 19, 23, 27, 32, 45, 64, 91, 128)  # padded half windows (px)
EXACT_CHUNK = 1 << 16  # window pixels per batched step (keeps the temporaries in cache)
# Threads rendering at once, each a share of the chunks into its own accumulator; None:
# two where a second core is idle (load average below the core count - 1), else one (on
# the loaded 2-core machine a second thread cost 35% more CPU and halved the fps).
BANDS: int | None = None
# Chroma pairs are summed as one int64, c1 x w + (c2 x w) << 32, where every pixel's
# sum of |c x w| over the blocks that cover it is below this (checked per frame)
PACK_LIMIT = 1 << 30
# q / 2**Q_SHIFT terms set outside a Gaussian's own window: with the others (below
# 2**51.7 / 2**Q_SHIFT) still far above the table, so weight 0
HUGE = float(1 << 40)


@dataclass(frozen=True)
class _Chunk:
    """A slice of the bucket-sorted Gaussians rendered as one (n, 2 EY + 1, 2 EX + 1) block."""

    lo: int  # first Gaussian (in bucket order)
    hi: int  # one past the last
    first: int  # first Gaussian of the bucket
    last: int  # one past the bucket's last
    ex: int  # padded half width of the block
    ey: int  # padded half height
    mixed: bool  # some Gaussians' own windows are smaller than the block

    @property
    def pixels(self) -> int:
        return (self.hi - self.lo) * (2 * self.ex + 1) * (2 * self.ey + 1)


def _chunks(wins: Windows, chunk: int) -> tuple[IntArray, list[_Chunk]]:
    """The bucket order of the Gaussians and the chunks that cover it.

    A Gaussian's window (ex, ey) is evaluated on the block of its bucket (each extent
    rounded up to BUCKETS); the block pixels outside its own window get q >= HUGE, that is
    weight 0, so exactly its window pixels contribute and the picture is the same as
    evaluating every window on its own."""
    if wins.ex.size == 0:
        return np.zeros(0, np.int64), []
    buckets = np.asarray(BUCKETS, dtype=np.int64)
    bx = buckets[np.searchsorted(buckets, wins.ex, side="left")]
    by = buckets[np.searchsorted(buckets, wins.ey, side="left")]
    key = bx * (T.MAX_EXTENT + 1) + by
    order = np.argsort(key, kind="stable")
    keys, starts = np.unique(key[order], return_index=True)
    bounds = [*starts.tolist(), len(order)]
    out = []
    for k, lo, hi in zip(keys.tolist(), bounds[:-1], bounds[1:], strict=True):
        ex, ey = divmod(k, T.MAX_EXTENT + 1)
        members = order[lo:hi]
        mixed = bool((wins.ex[members] != ex).any() or (wins.ey[members] != ey).any())
        per = max(1, chunk // ((2 * ex + 1) * (2 * ey + 1)))
        out += [_Chunk(a, min(hi, a + per), lo, hi, ex, ey, mixed) for a in range(lo, hi, per)]
    return order, out


@dataclass(frozen=True)
class _Plan:
    """Everything the chunks read, in bucket order, as torch tensors.

    Exactness: every value is an integer times a power of two that float64 holds exactly.
    |A|, |C| <= 2**28 (1 + 2**-12), |2 B| <= 2**28 and |dx|, |dy| <= (128 + 1) x 16 px/16,
    so each of A dx^2, C dy^2, 2 B dx dy is below 2**50.1 and q, their sum, below
    2**51.7 < 2**53: float64 products and sums of these integers are exact, as in int64.
    (A, 2 B, C) are held times 2**-Q_SHIFT (exact), so q comes out as q / 2**Q_SHIFT and
    clamping to [0, EXP_SIZE - 1] and truncating is the table index floor(q / 2**Q_SHIFT)
    clamped, exactly. The weights and colours are int64, the sums int64 (below
    count x 2**26 within Bounds). With `colours` of two rows the second is
    c1 + c2 x 2**32: where every pixel's sum of |c x w| is below PACK_LIMIT = 2**30, the
    int64 sum of w (c1 + c2 2**32) is sum(c1 w) + sum(c2 w) 2**32 with no overflow at any
    point, and both sums come back exactly (unpack). Integer sums do not depend on the
    order, the chunks or the threads."""

    fx: Tensor  # (N,) float64: window centre column minus the centre, 1/16 px (-7 .. 8)
    fy: Tensor
    base: Tensor  # (N,) int32 or int64: flat accumulator index of the centre pixel
    a: Tensor  # (N,) float64: A, 2 B and C of the inverse covariance, 2**-24 / px**2,
    b2: Tensor  # times 2**-Q_SHIFT
    c: Tensor
    ex: Tensor  # (N,) own half windows
    ey: Tensor
    colours: Tensor  # (3, N) int64 colours, or (2, N): c0 and c1 + c2 x 2**32
    table: Tensor  # the exp table, int64
    wp: int  # accumulator row length

    def _terms(self, ch: _Chunk) -> tuple[Tensor, ...]:
        """Per Gaussian of the chunk's bucket: dx (n, wx), the column terms A dx^2 (n, wx),
        the row terms C dy^2 (n, wy) and 2 B dy (n, wy), and the block's flat offsets."""
        ox = torch.arange(-ch.ex, ch.ex + 1, dtype=torch.int64)
        oy = torch.arange(-ch.ey, ch.ey + 1, dtype=torch.int64)
        s = slice(ch.first, ch.last)
        dx = self.fx[s, None] + (ox * T.POS_ONE).double()  # 1/16 px
        dy = self.fy[s, None] + (oy * T.POS_ONE).double()
        col_q = dx * dx
        col_q *= self.a[s, None]
        row_q = dy * dy
        row_q *= self.c[s, None]
        if ch.mixed:  # block pixels outside a Gaussian's own window: weight 0
            col_q.masked_fill_(ox.abs() > self.ex[s, None], HUGE)
            row_q.masked_fill_(oy.abs() > self.ey[s, None], HUGE)
        dy *= self.b2[s, None]
        grid = (oy[:, None] * self.wp + ox[None, :]).view(-1).to(self.base.dtype)
        return dx, col_q, row_q, dy, grid

    def render(self, chunks: list[_Chunk], size: int) -> Tensor:
        """(len(colours), size) int64 accumulators of the chunks."""
        acc = torch.zeros(self.colours.shape[0], size, dtype=torch.int64)
        planes = list(acc)
        colours = list(self.colours)
        terms: dict[int, tuple[Tensor, ...]] = {}
        for ch in chunks:
            if ch.first not in terms:
                terms[ch.first] = self._terms(ch)
            dx, col_q, row_q, cross, grid = terms[ch.first]
            r = slice(ch.lo - ch.first, ch.hi - ch.first)
            n = ch.hi - ch.lo
            q = row_q[r, :, None] + col_q[r, None, :]
            q.addcmul_(cross[r, :, None], dx[r, None, :])  # q / 2**Q_SHIFT
            index = q.clamp_(0, T.EXP_SIZE - 1).view(-1).to(torch.int32)  # = floor
            w = self.table.index_select(0, index).view(n, -1)
            flat = (self.base[ch.lo : ch.hi, None] + grid).view(-1)
            for plane, colour in zip(planes, colours, strict=True):
                plane.index_add_(0, flat, (w * colour[ch.lo : ch.hi, None]).view(-1))
        return acc


def _index_type(size: int) -> type[np.signedinteger]:
    return np.int32 if size < 1 << 31 else np.int64


def _bands() -> int:
    if BANDS is not None:
        return max(1, BANDS)
    try:
        idle = (os.cpu_count() or 1) - os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this system
        return 1
    return 2 if idle > 1.0 else 1


def _shares(chunks: list[_Chunk], bands: int) -> list[list[_Chunk]]:
    """The chunks split into `bands` shares of about equal work (largest first to the
    least loaded; deterministic)."""
    shares: list[list[_Chunk]] = [[] for _ in range(bands)]
    load = [0] * bands
    for ch in sorted(chunks, key=lambda c: -c.pixels):
        i = load.index(min(load))
        shares[i].append(ch)
        load[i] += ch.pixels
    return [s for s in shares if s]


COVER_CELL = 3  # the coverage bound is taken on cells of 2**3 x 2**3 pixels


def _coverage_max(
    value: IntArray, x0: IntArray, y0: IntArray, wx: IntArray, wy: IntArray, hp: int, wp: int
) -> int:
    """An upper bound of the largest sum, over the pixels of an hp x wp grid, of `value`
    of the rectangles (x0, y0, wx, wy) that cover the pixel: the exact largest sum over
    cells of 2**COVER_CELL pixels of the rectangles that touch the cell (a summed
    difference array)."""
    if value.size == 0:
        return 0
    k = COVER_CELL
    hc, wc = ((hp - 1) >> k) + 2, ((wp - 1) >> k) + 2
    diff = np.zeros(hc * wc, np.int64)
    c0, r0 = x0 >> k, y0 >> k
    c1, r1 = ((x0 + wx - 1) >> k) + 1, ((y0 + wy - 1) >> k) + 1
    for rows, cols, sign in ((r0, c0, 1), (r0, c1, -1), (r1, c0, -1), (r1, c1, 1)):
        np.add.at(diff, rows * wc + cols, sign * value)
    return int(diff.reshape(hc, wc).cumsum(0).cumsum(1).max())


def _unpack(packed: Tensor, first: Tensor, second: Tensor) -> None:
    """sum(c1 w) into `first` and sum(c2 w) into `second` from their packed int64 sum
    (each below 2**31 in size)."""
    torch.bitwise_and(packed + (1 << 31), (1 << 32) - 1, out=first)
    first -= 1 << 31
    torch.sub(packed, first, out=second)
    second >>= 32


def render_exact(g: Gaussians2D, canvas: Canvas, max_pixels: int | None = None) -> Tensor:
    """The integer accumulators (3, H2, W2) int64 of `g` (colour x weight in 2**-24).

    `g` must be within Bounds (decoded states are). `max_pixels` bounds the window pixel
    evaluations (a BitstreamError above it)."""
    wins = _checked_windows(g, max_pixels)
    return _with_background(_accumulate(g, wins, canvas), g)


def _checked_windows(g: Gaussians2D, max_pixels: int | None) -> Windows:
    wins = windows(g)
    if max_pixels is not None and wins.pixels > max_pixels:
        raise BitstreamError(
            f"the Gaussians ask for {wins.pixels} pixel evaluations per frame, "
            f"above the limit of {max_pixels}"
        )
    return wins


def _with_background(acc: Tensor, g: Gaussians2D) -> Tensor:
    return acc + (torch.tensor(g.background, dtype=torch.int64)[:, None, None] << T.WEIGHT_BITS)


def _rows(g: Gaussians2D) -> np.ndarray:
    """Each Gaussian's parameters as one opaque value (its 8 int64 attributes)."""
    cols = np.ascontiguousarray(np.stack(g.columns(), axis=1))
    return cols.view(np.dtype((np.void, 8 * cols.shape[1])))[:, 0]


def _multiset_change(old: Gaussians2D, new: Gaussians2D) -> tuple[Gaussians2D, Gaussians2D]:
    """(gone, added): the Gaussians of `old` that `new` no longer has and those it has
    that `old` had not, counted with multiplicity (order does not matter: a picture is a
    sum over its Gaussians)."""
    if old.count == new.count:  # aligned (a residual without removals or births): the
        # rows that differ; the unchanged ones cancel, so this is exact in any order
        differ = np.zeros(new.count, bool)
        for a, b in zip(old.columns(), new.columns(), strict=True):
            differ |= a != b
        if 2 * int(differ.sum()) <= INCREMENTAL_SHARE * new.count:
            return old.take(differ), new.take(differ)
        # else: removals and births shifted the rows; the multiset finds the true change
    ro, rn = _rows(old), _rows(new)
    uniq, inverse = np.unique(np.concatenate([ro, rn]), return_inverse=True)
    inverse = inverse.reshape(-1)
    net = np.bincount(inverse[old.count :], minlength=uniq.size) - np.bincount(
        inverse[: old.count], minlength=uniq.size
    )
    # one representative row per distinct value, repeated by how much its count changed
    first_old = np.full(uniq.size, -1, np.int64)
    first_old[inverse[: old.count][::-1]] = np.arange(old.count)[::-1]
    first_new = np.full(uniq.size, -1, np.int64)
    first_new[inverse[old.count :][::-1]] = np.arange(new.count)[::-1]
    gone = np.repeat(first_old[net < 0], -net[net < 0])
    added = np.repeat(first_new[net > 0], net[net > 0])
    return old.take(gone), new.take(added)


def _negated(g: Gaussians2D) -> Gaussians2D:
    """The same Gaussians with every colour negated: their exact contributions negated."""
    cols = g.columns()
    return Gaussians2D.from_columns([*cols[:5], -cols[5], -cols[6], -cols[7]])


# an incremental render redraws at most this share of the state's Gaussians, else all
INCREMENTAL_SHARE = 0.5


class IncrementalRenderer:
    """render_exact of a sequence of states, each drawn from the last one's accumulators:
    minus the Gaussians that left, plus those that came (integer sums: bit-identical to
    rendering the whole state). A decoder whose residuals touch a few Gaussians renders
    a few Gaussians."""

    def __init__(self, canvas: Canvas) -> None:
        self.canvas = canvas
        self._state: Gaussians2D | None = None
        self._acc: Tensor | None = None  # the last state's accumulators, no background
        self._planes: tuple[Gaussians2D, tuple[np.ndarray, ...]] | None = None

    def planes(self, g: Gaussians2D, max_pixels: int | None = None) -> tuple[np.ndarray, ...]:
        """to_planes(render_exact(g, ...)), exactly; an unchanged state (a skipped frame)
        costs a copy of the last planes."""
        if self._planes is not None and self._planes[0].equal(g):
            _checked_windows(g, max_pixels)
            return tuple(p.copy() for p in self._planes[1])
        out = to_planes(self._update(g, max_pixels), self.canvas, g.background)
        self._planes = (g, out)
        return tuple(p.copy() for p in out)

    def render(self, g: Gaussians2D, max_pixels: int | None = None) -> Tensor:
        """render_exact(g, canvas, max_pixels), exactly."""
        return _with_background(self._update(g, max_pixels), g)

    def _update(self, g: Gaussians2D, max_pixels: int | None) -> Tensor:
        """The accumulators of g without the background (held: callers must not edit)."""
        wins = _checked_windows(g, max_pixels)
        prev, acc = self._state, self._acc
        if prev is not None and acc is not None:
            gone, added = _multiset_change(prev, g)
            if gone.count + added.count <= INCREMENTAL_SHARE * max(g.count, 1):
                if gone.count + added.count:
                    # one pass: the gone ones with negated colours (w (-c) = -(w c) exactly)
                    _add_in_box(acc, _negated(gone).concat(added), self.canvas)
                self._state = g
                return acc
        self._state, self._acc = g, _accumulate(g, wins, self.canvas)
        return self._acc


@dataclass(frozen=True)
class _Box:
    """A rectangle of the picture as a canvas of its own (what _accumulate reads)."""

    padded: tuple[int, int]  # (height, width)


def _add_in_box(acc: Tensor, g: Gaussians2D, canvas: Canvas) -> None:
    """acc += _accumulate(g), computed only on the picture rectangle that g's windows
    touch: the Gaussians shifted by whole pixels (their sub-pixel phases, so every weight,
    unchanged) into a canvas of that rectangle's size."""
    wins = windows(g)
    h2, w2 = canvas.padded
    x, y = g.x >> T.POS_BITS, g.y >> T.POS_BITS
    x0, x1 = max(0, int((x - wins.ex).min())), min(w2 - 1, int((x + wins.ex).max()))
    y0, y1 = max(0, int((y - wins.ey).min())), min(h2 - 1, int((y + wins.ey).max()))
    if x0 > x1 or y0 > y1:
        return  # every window lies outside the picture
    cols = g.columns()
    shifted = Gaussians2D.from_columns(
        [cols[0] - (x0 << T.POS_BITS), cols[1] - (y0 << T.POS_BITS), *cols[2:]]
    )
    box = _Box((y1 - y0 + 1, x1 - x0 + 1))
    acc[:, y0 : y1 + 1, x0 : x1 + 1] += _accumulate(shifted, wins, box)


def _accumulate(g: Gaussians2D, wins: Windows, canvas: Canvas | _Box) -> Tensor:
    """render_exact without the background, for windows(g) already checked."""
    order, chunks = _chunks(wins, min(CHUNK, EXACT_CHUNK))
    x, y = g.x[order] >> T.POS_BITS, g.y[order] >> T.POS_BITS  # centre pixels
    # block half extents per Gaussian; the accumulators reach as far beyond the picture
    # as the blocks do (no clipping)
    bx, by = np.zeros(g.count, np.int64), np.zeros(g.count, np.int64)
    for ch in chunks:
        bx[ch.lo : ch.hi], by[ch.lo : ch.hi] = ch.ex, ch.ey
    h2, w2 = canvas.padded
    if g.count:
        left, top = max(0, int((bx - x).max())), max(0, int((by - y).max()))
        right = max(0, int((x + bx).max()) - (w2 - 1))
        bottom = max(0, int((y + by).max()) - (h2 - 1))
    else:
        left = top = right = bottom = 0
    hp, wp = h2 + top + bottom, w2 + left + right
    a, b, c = conic(g)
    c0, c1, c2 = g.c0[order], g.c1[order], g.c2[order]
    bound = np.maximum(np.abs(c1), np.abs(c2)) << T.WEIGHT_BITS
    packed = _coverage_max(bound, x + left - bx, y + top - by, 2 * bx + 1, 2 * by + 1, hp, wp)
    cols = np.stack([c0, c1 + (c2 << 32)] if packed < PACK_LIMIT else [c0, c1, c2])
    plan = _Plan(
        fx=torch.from_numpy((T.POS_ONE // 2 - (g.x[order] & (T.POS_ONE - 1))).astype(np.float64)),
        fy=torch.from_numpy((T.POS_ONE // 2 - (g.y[order] & (T.POS_ONE - 1))).astype(np.float64)),
        # int32 indices (less memory traffic) where the accumulators allow
        base=torch.from_numpy(((y + top) * wp + x + left).astype(_index_type(hp * wp))),
        a=torch.from_numpy(np.ldexp(a[order].astype(np.float64), -T.Q_SHIFT)),
        b2=torch.from_numpy(np.ldexp(2.0 * b[order], -T.Q_SHIFT)),
        c=torch.from_numpy(np.ldexp(c[order].astype(np.float64), -T.Q_SHIFT)),
        ex=torch.from_numpy(wins.ex[order]),
        ey=torch.from_numpy(wins.ey[order]),
        colours=torch.from_numpy(cols),
        table=torch.from_numpy(T.exp_table()),
        wp=wp,
    )
    shares = _shares(chunks, _bands())
    if len(shares) <= 1:
        total = plan.render(chunks, hp * wp)
    else:
        with ThreadPoolExecutor(len(shares)) as pool:
            parts = list(pool.map(lambda share: plan.render(share, hp * wp), shares))
        total = parts[0]
        for part in parts[1:]:
            total += part
    crop = total.view(-1, hp, wp)[:, top : top + h2, left : left + w2]
    if len(cols) == 2:
        out = torch.empty(3, h2, w2, dtype=torch.int64)
        out[0] = crop[0]
        _unpack(crop[1], out[1], out[2])
    else:
        out = crop.clone()
    return out


def to_planes(
    acc: Tensor, canvas: Canvas, background: tuple[int, int, int] = (0, 0, 0)
) -> tuple[np.ndarray, ...]:
    """Code values of the stream's planes from the exact accumulators (round, clamp);
    `background` (2**-12 of full scale) is added on the way, in the rounding constant
    (the same integers as adding it to every accumulator first)."""
    fmt = pixel_format(canvas.format)
    top = canvas.max_value
    shift = T.COLOR_BITS + T.WEIGHT_BITS
    h, w = canvas.height, canvas.width
    bg = [int(b) << T.WEIGHT_BITS for b in background]

    def code(values: Tensor, extra: int, offset: int | Tensor) -> np.ndarray:
        s = shift + extra
        out = ((values * top + (offset * top + (1 << (s - 1)))) >> s).clamp(0, top)
        return out.numpy().astype(fmt.dtype)

    if not canvas.yuv:
        rgb = torch.tensor(bg, dtype=torch.int64)[:, None, None]
        return (np.ascontiguousarray(code(acc[:, :h, :w], 0, rgb).transpose(1, 2, 0)),)
    sx, sy = canvas.sub
    planes = [code(acc[0, :h, :w], 0, bg[0])]
    for ch in (1, 2):
        plane = acc[ch]
        h2, w2 = plane.shape
        summed = plane[0::sy, 0::sx].clone()
        for dy in range(sy):
            for dx in range(sx):
                if dy or dx:
                    summed += plane[dy::sy, dx::sx]
        planes.append(code(summed, (sx * sy).bit_length() - 1, sx * sy * bg[ch]))
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

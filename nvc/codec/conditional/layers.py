"""Layers with two evaluations: float (training) and exact fixed point (coding).

Every module here has `forward(x)` on float tensors, used in training, and `exact(x)` on
fixed-point tensors, used by the encoder's reconstruction and by the decoder. A fixed-point
tensor is a float64 tensor whose values are integers: the real value times 2**FRAC_BITS.

Exactness. Weights become integers W * 2**wb (wb chosen per layer, at most 16, so that
every partial sum provably stays below 2**52 for any input within the activation clamp),
biases B * 2**(FRAC_BITS + wb). A convolution is unfold + matmul (or, depthwise, a sum of
k*k products) on integer-valued float64: every product and partial sum is an integer
below 2**53, so the result is exact whatever the summation order, BLAS, thread count or
device. After each layer the accumulator is divided by 2**wb and rounded half up
(floor(a / 2**wb + 1/2), an exact power-of-two operation), then ReLU and a clamp to
+-2**(FRAC_BITS + ACT_INT_BITS). Residual additions, concatenations, pixel (un)shuffles and
crops are exact on integers. The same idea as the entropy package's `FixedPointNetwork`
(Ballé, Johnston & Minnen, "Integer networks for data compression with latent-variable
models", ICLR 2019), extended to the layers the conditional codec needs.

Integer weights depend only on the float32 weights (multiplication by a power of two and
rounding are exact), so encoder and decoder derive identical integers everywhere.

Evaluation folds the rounding into the GEMM: it multiplies by W * 2**-wb and adds
(B + 2**(wb - 1)) * 2**-wb, both exact (powers of two), so that every product and partial
sum is an integer below 2**53 times 2**-wb, exactly representable: the GEMM (or the
convolution) returns (acc + 2**(wb - 1)) / 2**wb exactly in any order, and one floor
finishes the rounding. The results are those of the plain integer arithmetic above.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from nvc.errors import CodecError

FRAC_BITS = 12  # fraction bits of fixed-point activations
ONE = float(1 << FRAC_BITS)  # fixed-point 1.0
ACT_INT_BITS = 16  # activations are clamped to +-2**16 in real units
ACT_LIMIT = float(1 << (FRAC_BITS + ACT_INT_BITS))  # the clamp, in fixed point
MAX_WEIGHT_BITS = 16  # fraction bits of integer weights, at most
_EXACT_LIMIT = float(1 << 52)  # bound on any partial sum


def fixed_round_shift(acc: Tensor, bits: int) -> Tensor:
    """acc / 2**bits rounded half up, exactly (acc holds integers in float64; the scale by
    2**-bits is exact, as the division was)."""
    if bits <= 0:
        return acc
    return (acc + float(1 << (bits - 1))).mul_(1.0 / float(1 << bits)).floor_()


def clamp_act(x: Tensor) -> Tensor:
    return x.clamp(-ACT_LIMIT, ACT_LIMIT)


def clamp_act_(x: Tensor) -> Tensor:
    """clamp_act in place."""
    return x.clamp_(-ACT_LIMIT, ACT_LIMIT)


def to_fixed(x: Tensor) -> Tensor:
    """A float tensor to fixed point (round half up). Exact only where x * 2**FRAC_BITS is."""
    return clamp_act(torch.floor(x.to(torch.float64) * ONE + 0.5))


def from_fixed(x: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    return (x / ONE).to(dtype)


@dataclass(frozen=True)
class _IntConv:
    weight: Tensor  # float64 integers at 2**bits; (Cout, Cin*k*k) or (C, k*k, 1) depthwise
    bias: Tensor  # float64 integers at 2**(FRAC_BITS + bits)
    bits: int
    scaled_weight: Tensor  # weight * 2**-bits (exact), the matrix the evaluation multiplies by
    scaled_bias: Tensor  # (bias + 2**(bits - 1)) * 2**-bits (exact): bias and rounding offset


def _integer_weights(w: Tensor, b: Tensor, fan_dims: tuple[int, ...]) -> _IntConv:
    w = w.detach().to("cpu", torch.float64)
    b = b.detach().to("cpu", torch.float64)
    if not (torch.isfinite(w).all() and torch.isfinite(b).all()):
        raise CodecError("network weights contain NaN or inf")
    for bits in range(MAX_WEIGHT_BITS, -1, -1):
        wi = torch.round(w * float(1 << bits))
        bi = torch.round(b * float(1 << (FRAC_BITS + bits)))
        worst = wi.abs().sum(dim=fan_dims) * ACT_LIMIT + bi.abs()
        if float(worst.max()) <= _EXACT_LIMIT:
            half = float(1 << (bits - 1)) if bits > 0 else 0.0
            scale = 1.0 / float(1 << bits)
            return _IntConv(wi, bi, bits, wi * scale, (bi + half) * scale)
    raise CodecError("network weights too large for exact fixed-point evaluation")


class Conv(nn.Module):
    """k x k convolution (odd k, zero padding k // 2), optional stride, depthwise, ReLU."""

    def __init__(
        self,
        cin: int,
        cout: int,
        k: int = 1,
        stride: int = 1,
        *,
        depthwise: bool = False,
        relu: bool = False,
    ) -> None:
        super().__init__()
        if k % 2 != 1 or (depthwise and cin != cout):
            raise CodecError("Conv needs an odd kernel, and cin == cout when depthwise")
        self.k, self.stride, self.depthwise, self.relu = k, stride, depthwise, relu
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=cin if depthwise else 1)
        self._int: _IntConv | None = None

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        return F.relu(y) if self.relu else y

    def clear_exact(self) -> None:
        self._int = None

    def _ints(self) -> _IntConv:
        if self._int is None:
            w = self.conv.weight
            b = self.conv.bias if self.conv.bias is not None else torch.zeros(w.shape[0])
            if self.depthwise:
                self._int = _integer_weights(w.reshape(w.shape[0], -1, 1), b, (1, 2))
            else:
                self._int = _integer_weights(w.reshape(w.shape[0], -1), b, (1,))
        return self._int

    def exact(self, x: Tensor, relu: bool | None = None) -> Tensor:
        """The exact evaluation; `relu` overrides the layer's own (Up folds its ReLU in)."""
        iw = self._ints()
        k, s = self.k, self.stride
        b, c, h, w = x.shape
        if k == 1 and s == 1 and not self.depthwise:
            if b == 1:
                out = torch.addmm(iw.scaled_bias[:, None], iw.scaled_weight, x.reshape(c, h * w))
            else:
                out = torch.matmul(iw.scaled_weight, x.reshape(b, c, h * w))
                out += iw.scaled_bias[None, :, None]
            out = out.reshape(b, -1, h, w)
        elif self.depthwise:
            out = _depthwise(x, iw.scaled_weight, iw.scaled_bias, k, s)
        elif s == 1 and iw.weight.shape[0] <= c:
            out = _tap_gemm(x, iw.scaled_weight.reshape(-1, c, k, k), iw.scaled_bias)
        else:
            # float64 convolution of integers whose every partial sum stays below 2**53
            # (_integer_weights): exact in any summation order. CPU only: there float64
            # convolutions are direct or im2col + GEMM sums of products, never the
            # transformed (Winograd/FFT) algorithms whose intermediates are not integers.
            if x.device.type != "cpu":
                raise CodecError("the exact path runs on the CPU")
            wk = iw.scaled_weight.reshape(-1, c, k, k)
            out = F.conv2d(x, wk, iw.scaled_bias, stride=s, padding=k // 2)
        return self._round(out, iw, self.relu if relu is None else relu)

    @staticmethod
    def _round(out: Tensor, iw: _IntConv, relu: bool) -> Tensor:
        """Finish an accumulator of (acc + 2**(bits-1)) / 2**bits: floor, ReLU, clamp."""
        if iw.bits > 0:
            out.floor_()
        return out.clamp_(0.0 if relu else -ACT_LIMIT, ACT_LIMIT)

    def exact_parts(self, parts: Sequence[Tensor]) -> Tensor:
        """exact(torch.cat(parts, 1)) without forming the concatenation: for a 1x1 layer
        and batch 1, one GEMM per part into the same accumulator (exact sums)."""
        b, _, h, w = parts[0].shape
        if self.k != 1 or self.stride != 1 or self.depthwise or b != 1:
            return self.exact(torch.cat(list(parts), 1))
        iw = self._ints()
        out: Tensor | None = None
        start = 0
        for part in parts:
            c = part.shape[1]
            weight, x = iw.scaled_weight[:, start : start + c], part.reshape(c, h * w)
            if out is None:
                out = torch.addmm(iw.scaled_bias[:, None], weight, x)
            else:
                out.addmm_(weight, x)
            start += c
        if out is None or start != iw.weight.shape[1]:
            raise CodecError(
                f"the parts have {start} channels, the layer takes {iw.weight.shape[1]}"
            )
        return self._round(out, iw, self.relu).view(1, -1, h, w)

    def exact_at(
        self, x: Tensor, where: Tensor, taps: Sequence[tuple[int, int]] | None = None
    ) -> Tensor:
        """exact(x) at the flat positions `where` (row-major over H x W) of a batch-1 input
        only, as (1, Cout, 1, N) (stride 1, not depthwise). With `taps`, kernel offsets
        (i, j) in 0..k-1, only those taps are summed: the same integers wherever x is zero
        under all the other taps (exact sums do not see zero terms)."""
        if self.stride != 1 or self.depthwise or x.shape[0] != 1:
            raise CodecError("exact_at needs a batch-1 input and a stride-1, full convolution")
        iw = self._ints()
        k, p = self.k, self.k // 2
        _, c, h, w = x.shape
        taps = [(i, j) for i in range(k) for j in range(k)] if taps is None else list(taps)
        wk = iw.scaled_weight.reshape(-1, c, k, k)
        if k == 1:
            cols = x.reshape(c, h * w).index_select(1, where)
        else:  # tap (i, j) of output (r, q) reads padded (r + i, q + j)
            wp = w + 2 * p
            padded = F.pad(x, (p, p, p, p)).reshape(c, -1)
            centre = torch.div(where, w, rounding_mode="floor") * wp + where % w
            cols = torch.cat([padded.index_select(1, centre + i * wp + j) for i, j in taps])
        weight = torch.cat([wk[:, :, i, j] for i, j in taps], 1)
        out = self._round(torch.addmm(iw.scaled_bias[:, None], weight, cols), iw, self.relu)
        return out.view(1, -1, 1, out.shape[1])


def _tap_gemm(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """k x k convolution, stride 1, zero padding k // 2, as one GEMM of all k * k taps'
    weights with the padded input, then the sum of the k * k shifted products (exact: see
    the module docstring). Faster than im2col when the layer does not widen (Cout <= Cin)."""
    cout, cin, k, _ = weight.shape
    b, _, h, w = x.shape
    p = k // 2
    hp, wp = h + 2 * p, w + 2 * p
    padded = F.pad(x, (p, p, p, p)).reshape(b, cin, hp * wp)
    stacked = weight.permute(2, 3, 0, 1).reshape(k * k * cout, cin)
    taps = torch.mm(stacked, padded[0]) if b == 1 else torch.matmul(stacked, padded)
    taps = taps.view(b, k, k, cout, hp, wp)
    out = bias.view(1, cout, 1, 1).expand(b, cout, h, w).clone()
    for i in range(k):
        for j in range(k):
            out += taps[:, i, j, :, i : i + h, j : j + w]
    return out


def _depthwise(x: Tensor, weight: Tensor, bias: Tensor, k: int, stride: int) -> Tensor:
    """Depthwise k x k convolution (zero padding k // 2) as k * k multiply-adds of shifted
    views (exact: integer multiples of one power of two, see the module docstring); faster
    on the CPU than a grouped float64 convolution, which loops over the channels."""
    b, c, h, w = x.shape
    p = k // 2
    ho, wo = (h + 2 * p - k) // stride + 1, (w + 2 * p - k) // stride + 1
    padded = F.pad(x, (p, p, p, p))
    out = bias.view(1, c, 1, 1).expand(b, c, ho, wo).clone()
    taps = weight.reshape(c, k * k)
    for i in range(k):
        for j in range(k):
            view = padded[
                :, :, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride
            ]
            out.addcmul_(view, taps[:, i * k + j].view(1, c, 1, 1))
    return out


class Seq(nn.Module):
    """A chain of layers; each must have forward and exact."""

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def exact(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer.exact(x)  # type: ignore[operator]
        return x

    def exact_parts(self, parts: Sequence[Tensor]) -> Tensor:
        """exact(torch.cat(parts, 1)); a first Conv takes the parts without the copy."""
        first = self.layers[0]
        if isinstance(first, Conv):
            x = first.exact_parts(parts)
        else:
            x = first.exact(torch.cat(list(parts), 1))  # type: ignore[operator]
        for layer in self.layers[1:]:
            x = layer.exact(x)  # type: ignore[operator]
        return x


class Block(nn.Module):
    """Depthwise-separable residual block (as in DCVC-RT's depth-conv blocks):
    x + pw2(relu(dw3x3(relu(pw1(x)))))."""

    def __init__(self, channels: int, expand: int = 1) -> None:
        super().__init__()
        h = channels * expand
        self.pw1 = Conv(channels, h, 1, relu=True)
        self.dw = Conv(h, h, 3, depthwise=True, relu=True)
        self.pw2 = Conv(h, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.pw2(self.dw(self.pw1(x)))

    def exact(self, x: Tensor) -> Tensor:
        return clamp_act_(self.pw2.exact(self.dw.exact(self.pw1.exact(x))).add_(x))


class Down(nn.Module):
    """Halve the resolution: pixel-unshuffle(2), then a 1x1 conv (4 cin -> cout). Even sizes."""

    def __init__(self, cin: int, cout: int, relu: bool = False) -> None:
        super().__init__()
        self.conv = Conv(4 * cin, cout, 1, relu=relu)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pixel_unshuffle(x, 2))

    def exact(self, x: Tensor) -> Tensor:
        return self.conv.exact(F.pixel_unshuffle(x, 2))


class Up(nn.Module):
    """Double the resolution: a k x k conv (cin -> 4 cout), then pixel-shuffle(2)."""

    def __init__(self, cin: int, cout: int, k: int = 1, relu: bool = False) -> None:
        super().__init__()
        self.conv = Conv(cin, 4 * cout, k)
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        y = F.pixel_shuffle(self.conv(x), 2)
        return F.relu(y) if self.relu else y

    def exact(self, x: Tensor) -> Tensor:
        return F.pixel_shuffle(self.conv.exact(x, relu=self.relu), 2)


def clear_exact(module: nn.Module) -> None:
    """Forget cached integer weights (after the float weights changed)."""
    for m in module.modules():
        if isinstance(m, Conv):
            m.clear_exact()


def crop(x: Tensor, size: Sequence[int]) -> Tensor:
    return x[..., : size[0], : size[1]]


# ---------------------------------------------------------------------------- warping

WARP_BITS = 6  # displacements are rounded down to 1/64 pixel in the exact warp


def _gather_2d(x: Tensor, iy: Tensor, ix: Tensor) -> Tensor:
    """x (B, C, H, W) sampled at integer positions iy, ix (B, H', W'), already clamped."""
    b, c, h, w = x.shape
    flat = (iy * w + ix).reshape(b, 1, -1).expand(b, c, -1)
    return torch.gather(x.reshape(b, c, h * w), 2, flat).reshape(b, c, *iy.shape[1:])


def _base_grid(h: int, w: int, device: torch.device) -> tuple[Tensor, Tensor]:
    gy = torch.arange(h, device=device).view(1, h, 1)
    gx = torch.arange(w, device=device).view(1, 1, w)
    return gy, gx


def warp(x: Tensor, disp: Tensor) -> Tensor:
    """Backward bilinear warp (float, differentiable in x and disp):
    out(p) = x(p + disp(p)), positions outside the picture clamped to its border.

    x: (B, C, H, W); disp: (B, 2, H, W) as (dx, dy) in pixels of x.
    """
    b, _, h, w = x.shape
    gy, gx = _base_grid(h, w, x.device)
    py = gy + disp[:, 1]
    px = gx + disp[:, 0]
    y0 = torch.floor(py)
    x0 = torch.floor(px)
    ay = (py - y0).unsqueeze(1)
    ax = (px - x0).unsqueeze(1)
    y0i, x0i = y0.long(), x0.long()
    y1 = (y0i + 1).clamp(0, h - 1)
    x1 = (x0i + 1).clamp(0, w - 1)
    y0c, x0c = y0i.clamp(0, h - 1), x0i.clamp(0, w - 1)
    top = _gather_2d(x, y0c, x0c) * (1 - ax) + _gather_2d(x, y0c, x1) * ax
    bot = _gather_2d(x, y1, x0c) * (1 - ax) + _gather_2d(x, y1, x1) * ax
    return top * (1 - ay) + bot * ay


def exact_warp(x: Tensor, disp64: Tensor) -> Tensor:
    """The exact warp: x fixed point (B, C, H, W); disp64 (B, 2, H, W) integer displacements
    in 1/64 pixel (float64 holding integers). Weights are integers out of 64 x 64; the sum
    of four integer products is divided by 4096 rounding half up. Exact on any device."""
    if not bool(disp64.any()):
        return x.clone()  # a zero displacement reproduces x exactly
    b, _, h, w = x.shape
    unit = float(1 << WARP_BITS)
    gy, gx = _base_grid(h, w, x.device)
    iy = torch.floor(disp64[:, 1] / unit)
    ix = torch.floor(disp64[:, 0] / unit)
    ay = (disp64[:, 1] - iy * unit).unsqueeze(1)
    ax = (disp64[:, 0] - ix * unit).unsqueeze(1)
    y0 = gy + iy.long()
    x0 = gx + ix.long()
    y1 = (y0 + 1).clamp(0, h - 1)
    x1 = (x0 + 1).clamp(0, w - 1)
    y0, x0 = y0.clamp(0, h - 1), x0.clamp(0, w - 1)
    top = _gather_2d(x, y0, x0) * (unit - ax) + _gather_2d(x, y0, x1) * ax
    bot = _gather_2d(x, y1, x0) * (unit - ax) + _gather_2d(x, y1, x1) * ax
    acc = top * (unit - ay) + bot * ay  # integers < 2**(28 + 12 + 2): exact
    return fixed_round_shift(acc, 2 * WARP_BITS)


def upsample_nearest(x: Tensor, factor: int) -> Tensor:
    """Repeat each value factor x factor times (exact)."""
    if factor == 1:
        return x
    return x.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)

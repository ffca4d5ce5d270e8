"""The building blocks of the INR family, each usable in two modes.

- training (`exact=False`): float weights, autograd, in one of QUANT_MODES: plain float
  first, then weights with additive noise of one step, then straight-through quantization
  of weights, biases and layer inputs (quant.py).
- exact (`exact=True`, the decoder's path): every convolution multiplies integer weights
  by integer activations, so its float32 sums are exact integers (the encoder keeps
  sum |w| * max |a| < 2^24) and do not depend on the convolution algorithm, the thread
  count or the memory layout. Everything else is elementwise +, -, *, floor and clamp,
  each exactly rounded; activations are built from those ops only (no exp / erf / sin,
  whose vectorized and scalar versions differ). The same frame therefore decodes to the
  same bits in any process on the machine.

Blocks: frame-index positional encoding (NeRV), the quantized conv `QConv` (also the
linear layers, as 1x1 convs on (B, C, 1, 1)), the NeRV upsampling block with
Boosting-NeRV's affine modulation and sinusoidal activation, NeRV++'s separable conv
residual block (SCRB) and bilinear skip.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nvc.codec.inr.quant import fake_quant, laplace_bits, ste_input
from nvc.errors import CodecError

PE_BASE = 1.25  # NeRV's frequency base: frequencies PE_BASE^l * pi
# Training modes of a QConv, in the order training uses them (C3's schedule): "float"
# (no quantization: the fewest elementwise ops), "noise" (weights plus uniform noise of
# one step, inputs and bias float), "ste" (weights, bias and input rounded, straight-through).
QUANT_MODES = ("float", "noise", "ste")


def positional_encoding(t: Tensor, levels: int) -> Tensor:
    """NeRV's encoding of frame positions t (B,) in [0, 1] -> (B, 2 * levels, 1, 1)."""
    freqs = (PE_BASE ** torch.arange(levels, dtype=torch.float64) * math.pi).to(t.device)
    x = t.to(torch.float64)[:, None] * freqs[None, :]
    pe = torch.cat([torch.sin(x), torch.cos(x)], dim=1).to(torch.float32)
    return pe[:, :, None, None]


def positional_encoding_exact(t: float, levels: int) -> Tensor:
    """The same encoding for one frame with scalar float64 math (libm): reproducible."""
    xs = [PE_BASE**level * math.pi * t for level in range(levels)]
    values = [math.sin(x) for x in xs] + [math.cos(x) for x in xs]
    return torch.tensor(values, dtype=torch.float32).reshape(1, 2 * levels, 1, 1)


def hswish(x: Tensor) -> Tensor:
    """x * clamp(x + 3, 0, 6) / 6: a GELU-like activation made of exact ops."""
    return x * torch.clamp(x + 3.0, 0.0, 6.0) * (1.0 / 6.0)


def relu(x: Tensor) -> Tensor:
    return torch.clamp(x, min=0.0)


def sine(x: Tensor) -> Tensor:
    """A periodic parabola within 0.056 of sin(x), made of exact ops (period 2 pi)."""
    u = x * (1.0 / math.pi)
    r = u - 2.0 * torch.floor((u + 1.0) * 0.5)  # u wrapped into [-1, 1)
    return 4.0 * r * (1.0 - r.abs())


ACT = {"hswish": hswish, "relu": relu, "sine": sine}
# Training needs no exactness: torch's fused kernels (one op forward and backward each)
# compute the same functions up to float rounding.
TRAIN_ACT: dict[str, Callable[[Tensor], Tensor]] = {
    "hswish": F.hardswish,
    "relu": F.relu,
    "sine": sine,
}


def activation(name: str, exact: bool) -> Callable[[Tensor], Tensor]:
    """The activation `name` for the exact path or for training."""
    return ACT[name] if exact else TRAIN_ACT[name]


def up2(x: Tensor) -> Tensor:
    """Bilinear 2x upsampling (half-pixel centres, edges replicated) with exact ops."""
    b, c, h, w = x.shape

    def axis(v: Tensor, dim: int) -> Tensor:
        n = v.shape[dim]
        first = v.narrow(dim, 0, 1)
        last = v.narrow(dim, n - 1, 1)
        prev = torch.cat([first, v.narrow(dim, 0, n - 1)], dim) if n > 1 else first
        nxt = torch.cat([v.narrow(dim, 1, n - 1), last], dim) if n > 1 else last
        centre = v * 0.75
        even = centre + prev * 0.25
        odd = centre + nxt * 0.25
        return torch.stack([even, odd], dim + 1)

    rows = axis(x, 2).reshape(b, c, 2 * h, w)
    return axis(rows, 3).reshape(b, c, 2 * h, 2 * w)


def shuffle(x: Tensor) -> Tensor:
    """PixelShuffle(2) with channel order (i, j, c): (B, 4C, h, w) -> (B, C, 2h, 2w).

    Input channel (2 i + j) C + c becomes output pixel (2y + i, 2x + j) of channel c, so in
    channels-last memory each copied run is 2C floats long (faster than torch's order).
    """
    b, c4, h, w = x.shape
    c = c4 // 4
    v = x.permute(0, 2, 3, 1).reshape(b, h, w, 2, 2, c)  # (B, h, w, i, j, C)
    v = v.permute(0, 1, 3, 2, 4, 5).reshape(b, 2 * h, 2 * w, c)  # (B, 2h, 2w, C)
    return v.permute(0, 3, 1, 2)  # (B, C, 2h, 2w), channels-last memory


def channel_affine(x: Tensor, scale: Tensor, offset: Tensor) -> Tensor:
    """x * scale[c] + offset[c] (two exactly rounded ops) on a channels-last (B, C, h, w).

    Done on the (B h, w C) view with rows of repeated constants, which vectorizes even
    when C is small (a (1, C, 1, 1) broadcast does not, in channels-last memory).
    """
    b, c, h, w = x.shape
    flat = x.permute(0, 2, 3, 1).reshape(b * h, w * c)
    out = flat * scale.repeat(w)
    out += offset.repeat(w)
    return out.reshape(b, h, w, c).permute(0, 3, 1, 2)


class QConv(nn.Module):
    """A conv with quantized weights, bias and input (see the module docstring).

    Steps: per output channel (or one) for the weight, one for the bias, one for the input.
    The input is rounded to signed `act_bits` integers. Exact mode uses the tensors set by
    `load_exact` (integer weights, per-channel multipliers, dequantized bias).
    """

    mask: Tensor  # 1 for kept weights, 0 for pruned ones
    a_max: Tensor  # running maximum of |input| (training)

    def __init__(
        self,
        cin: int,
        cout: int,
        k: int = 1,
        *,
        groups: int = 1,
        per_channel: bool = True,
        act_bits: int = 10,
        zero_init: bool = False,
    ) -> None:
        super().__init__()
        self.cin, self.cout, self.k, self.groups = cin, cout, k, groups
        self.weight = nn.Parameter(torch.empty(cout, cin // groups, k, k))
        # He initialisation keeps activations at scale through the stack; "zero_init" layers
        # (residual branches, modulation) start near zero so the block starts as identity.
        # (on the meta device, the decoder's shape-only network, nothing to draw: meta
        # kaiming_normal_ runs a Python decomposition, 48 ms a layer, 2.7 s an encoder)
        real = self.weight.device.type != "meta"
        if real:
            nn.init.kaiming_normal_(self.weight, nonlinearity="relu")
        if zero_init and real:
            with torch.no_grad():
                self.weight.mul_(0.05)
        bound = 1.0 / math.sqrt(max(1, cin // groups * k * k))
        bias = torch.empty(cout)
        self.bias = nn.Parameter(
            bias.uniform_(-bound, bound) * (0.05 if zero_init else 1.0) if real else bias
        )
        self.w_logstep = nn.Parameter(torch.zeros(cout if per_channel else 1))
        self.b_logstep = nn.Parameter(torch.zeros(1))
        self.register_buffer("a_max", torch.ones(()))  # running max of |input| (step = a_max / hi)
        self.register_buffer("mask", torch.ones(cout, cin // groups, k, k))
        self.hi = float((1 << (act_bits - 1)) - 1)
        self.lo = -self.hi - 1.0
        self.pixels = 1  # output positions per frame, for MAC counting (set by the network)
        self.exact_w: Tensor | None = None  # integer-valued float32 weights (exact mode)
        self.exact_mult: Tensor | None = None  # (C,) weight step * input step
        self.exact_bias: Tensor | None = None  # (C,) dequantized bias
        self.exact_inv: float = 1.0  # float32 1 / input step
        self.mode = "ste"  # training: "float", "noise" or "ste" (see QUANT_MODES)
        self.pruned = False  # the mask holds zeros (else it is all ones and skipped)
        self.observing = True  # training: this step updates the input's running maximum

    @property
    def macs(self) -> int:
        return self.pixels * self.cout * (self.cin // self.groups) * self.k * self.k

    def a_step(self) -> Tensor:
        """The input step: the input's running maximum maps to the largest integer."""
        return self.a_max / self.hi

    def observe(self, x: Tensor) -> None:
        """Training: track the input range (a maximum that decays slowly between peaks)."""
        with torch.no_grad():
            self.a_max.copy_(
                torch.maximum(x.detach().abs().max(), self.a_max * 0.998).clamp(min=1e-4)
            )

    def init_steps(self, x: Tensor) -> None:
        """Data-driven initial steps: inputs unclipped, weights and bias at about 8 bits."""
        with torch.no_grad():
            self.a_max.fill_(float(x.detach().abs().max().clamp(min=1e-4)))
            w = self.weight.reshape(self.cout, -1)
            std = w.std(dim=1) if w.shape[1] > 1 else w.abs()[:, 0]
            if self.w_logstep.numel() == 1:
                std = self.weight.std().reshape(1)
            self.w_logstep.copy_(torch.log(std.clamp(min=1e-5) / 4.0))  # about 4 bits per weight
            self.b_logstep.fill_(math.log(max(float(self.bias.abs().max()), 1e-2) / 64.0))

    def _conv(self, x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
        if self.k == 1 and self.groups == 1 and x.shape[2] == x.shape[3] == 1:
            return F.linear(x.flatten(1), w.flatten(1), b)[:, :, None, None]  # (B, C, 1, 1)
        return F.conv2d(x, w, b, padding=self.k // 2, groups=self.groups)

    def exact_acc(self, x: Tensor, quantized_input: bool = False) -> Tensor:
        """Exact mode: the integer sums of integer weights and rounded inputs."""
        xi = x if quantized_input else x.mul(self.exact_inv).round_().clamp_(self.lo, self.hi)
        return self._conv(xi, self.exact_w, None)  # type: ignore[arg-type]

    def forward(
        self,
        x: Tensor,
        exact: bool = False,
        quantized_input: bool = False,
        a_step: Tensor | None = None,
    ) -> Tensor:
        """Exact mode: `quantized_input` means x already holds the integers. Training:
        `a_step` overrides the input step (the stem's input is the embedding, on its grid)."""
        if exact:
            acc = self.exact_acc(x, quantized_input)
            return channel_affine(acc, self.exact_mult, self.exact_bias)  # type: ignore[arg-type]
        if a_step is None and self.training and self.observing:
            self.observe(x)
        w = self.weight * self.mask if self.pruned else self.weight
        if self.mode == "float":
            return self._conv(x, w, self.bias)
        if self.mode == "noise":  # additive uniform noise of one weight step (C3's middle phase)
            step = self.w_step()
            return self._conv(x, w + step * (torch.rand_like(w) - 0.5), self.bias)
        xq = ste_input(x, self.a_step() if a_step is None else a_step, self.lo, self.hi)
        wq, _ = fake_quant(w, self.w_step())
        bq, _ = fake_quant(self.bias, self.b_logstep.exp())
        return self._conv(xq, wq, bq)

    def w_step(self) -> Tensor:
        return self.w_logstep.exp().reshape(-1, 1, 1, 1)

    def int_weights(self) -> tuple[Tensor, Tensor]:
        """Integer-valued (straight-through) weights and bias, for the rate proxy."""
        _, qw = fake_quant(self.weight * self.mask if self.pruned else self.weight, self.w_step())
        _, qb = fake_quant(self.bias, self.b_logstep.exp())
        return qw, qb

    def rate_bits(self, ref: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """Rate proxy of this layer's integers (of their change from `ref`, if given)."""
        qw, qb = self.int_weights()
        if ref is not None:
            qw, qb = qw - ref[0], qb - ref[1]
        return laplace_bits(qw) + laplace_bits(qb)

    def load_exact(
        self,
        w_ints: np.ndarray,
        w_steps: np.ndarray,
        a_step: np.float32,
        bias: np.ndarray,
        channels_last: bool = True,
    ) -> None:
        """Switch to exact mode with coded integers and float32 steps (see weights.py)."""
        a = np.float32(a_step)
        mult = (w_steps.astype(np.float32) * a).astype(np.float32)
        if mult.size == 1:
            mult = np.full(self.cout, mult.reshape(()), dtype=np.float32)
        w = torch.from_numpy(w_ints.astype(np.float32))
        self.exact_w = w.contiguous(memory_format=torch.channels_last) if channels_last else w
        self.exact_mult = torch.from_numpy(mult)
        self.exact_bias = torch.from_numpy(bias.astype(np.float32))
        self.exact_inv = float(np.float32(1.0) / a)


class SCRB(nn.Module):
    """NeRV++ separable conv residual block: x + pointwise(act(depthwise(x)))."""

    def __init__(self, c: int, act: str, **q: int | bool) -> None:
        super().__init__()
        self.dw = QConv(c, c, 3, groups=c, **q)  # type: ignore[arg-type]
        self.pw = QConv(c, c, 1, zero_init=True, **q)  # type: ignore[arg-type]
        self.act = ACT[act]
        self.act_name = act

    def forward(self, x: Tensor, exact: bool) -> Tensor:
        act = self.act if exact else TRAIN_ACT[self.act_name]
        return x + self.pw(act(self.dw(x, exact)), exact)


class UpBlock(nn.Module):
    """NeRV block: conv -> PixelShuffle(2) -> [modulation] -> activation, with options.

    (B, cin, h, w) -> (B, cout, 2h, 2w). Options: SCRBs before and after (NeRV++), a
    bilinear skip of the input (NeRV++; through a 1x1 conv when widths differ), and
    Boosting-NeRV's frame-index modulation of the features, here scale only:
    y * (1 + gamma(t)). (With the shift beta(t) as well, training on our short CPU
    schedules often collapsed to the mean colour; the scale alone trains reliably.)
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        k: int,
        act: str,
        *,
        scrb: bool,
        skip: bool,
        mod_dim: int,
        grid: int = 0,
        **q: int | bool,
    ) -> None:
        super().__init__()
        self.cout = cout
        self.pre = SCRB(cin, act if act != "sine" else "hswish", **q) if scrb else None
        # the upsampling conv also reads `grid` feature grid channels (grid.py), if any
        self.conv = QConv(cin + grid, 4 * cout, k, **q)  # type: ignore[arg-type]
        self.proj = QConv(cin, cout, 1, **q) if skip and cin != cout else None  # type: ignore[arg-type]
        self.skip = skip
        self.mod = (
            QConv(
                mod_dim,
                cout,
                1,
                per_channel=False,
                zero_init=True,
                act_bits=int(q.get("act_bits", 10)),
            )
            if mod_dim
            else None
        )
        self.post = SCRB(cout, act if act != "sine" else "hswish", **q) if scrb else None
        self.act = ACT[act]
        self.act_name = act

    def forward(
        self, x: Tensor, tfeat: Tensor | None, exact: bool, grid: Tensor | None = None
    ) -> Tensor:
        """grid: (B, G, h, w) feature grid channels appended to the conv's input."""
        if self.pre is not None:
            x = self.pre(x, exact)
        xin = x if grid is None else torch.cat([x, grid], dim=1)
        if exact:
            y = shuffle(self._exact_affine(xin, tfeat))  # (B, cout, 2h, 2w)
        else:
            y = shuffle(self.conv(xin, exact))  # (B, cout, 2h, 2w)
            if self.mod is not None and tfeat is not None:
                y = y * (self.mod(tfeat, exact) + 1.0)  # gamma(t): (B, cout, 1, 1)
        if exact:
            y = y.clamp_(min=0.0) if self.act is relu else self.act(y)
        else:
            y = TRAIN_ACT[self.act_name](y)
        if self.skip:
            s = self.proj(x, exact) if self.proj is not None else x
            # training: torch's bilinear 2x (half-pixel centres, edges replicated) is up2
            y = y + (up2(s) if exact else F.interpolate(s, scale_factor=2.0, mode="bilinear"))
        if self.post is not None:
            y = self.post(y, exact)
        return y

    def _exact_affine(self, x: Tensor, tfeat: Tensor | None) -> Tensor:
        """The conv's integer sums scaled, biased and modulated in one affine pass (B = 1):
        (acc * m + b) * (1 + g) is evaluated as acc * (m (1 + g)) + b (1 + g)."""
        acc = self.conv.exact_acc(x)  # (1, 4 cout, h, w)
        scale, offset = self.conv.exact_mult, self.conv.exact_bias
        if scale is None or offset is None:
            raise CodecError("exact inference before the layer's integer weights were set")
        if self.mod is not None and tfeat is not None:
            g = (self.mod(tfeat, True).reshape(-1) + 1.0).repeat(4)  # per shuffle input channel
            scale = scale * g
            offset = offset * g
        return channel_affine(acc, scale, offset)

    def set_pixels(self, h: int, w: int) -> None:
        """Record output positions of each conv for MAC counting; (h, w) is the input size."""
        if self.pre is not None:
            self.pre.dw.pixels = self.pre.pw.pixels = h * w
        self.conv.pixels = h * w
        if self.proj is not None:
            self.proj.pixels = h * w
        if self.post is not None:
            self.post.dw.pixels = self.post.pw.pixels = 4 * h * w

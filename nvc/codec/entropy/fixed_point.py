"""Integer-exact evaluation of small conv networks (for decoder-side entropy parameters).

When a network computes the entropy model's parameters on the decoder (the hyperprior's
synthesis transform h_s), its float output may differ in the last bits between thread
counts, libraries or devices, and a scale that lands on the other side of a table
threshold makes the rest of the stream undecodable. Integer networks (Ballé, Johnston &
Minnen, "Integer networks for data compression with latent-variable models", 2019) avoid
this; here the same idea is applied at inference time to a trained float network:

- weights become integers W * 2**wb, biases B * 2**(fb + wb), activations A * 2**fb;
- each convolution is computed as unfold + matmul in float64 on integer-valued tensors.
  Every product and partial sum is an integer below 2**53, so the result is exact
  whatever the summation order, BLAS, thread count or device;
- after each layer the accumulator is rounded back to 2**fb (floor of a power-of-two
  division, exact), then ReLU and a clamp to +-2**(fb + ACTIVATION_INT_BITS).

wb is chosen per layer (at most 16 bits) so that the 2**53 bound provably holds for any
input within the clamp; it depends only on the weights, so both sides pick the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from nvc.errors import CodecError

ACTIVATION_INT_BITS = 16  # activations are clamped to +-2**16 (in real units)
MAX_WEIGHT_BITS = 16  # fraction bits of the integer weights, at most
_EXACT_LIMIT = float(2**52)  # bound on any partial sum (2**53 would be the hard limit)


@dataclass(frozen=True)
class FixedPointLayer:
    """One convolution in integer form (a transposed conv is stored as its equivalent conv)."""

    weight: Tensor  # (Cout, Cin, k, k) float64, integer-valued, at 2**weight_bits
    bias: Tensor  # (Cout,) float64, integer-valued, at 2**(fraction_bits + weight_bits)
    weight_bits: int  # fraction bits of the weights
    stride: int  # conv stride (1 for a transposed conv, which is zero-stuffed instead)
    upsample: int  # transposed conv stride: zeros inserted between input pixels
    pad: tuple[int, int]  # padding before and after, in both spatial dims
    relu: bool  # apply ReLU after the layer


class FixedPointNetwork:
    """Exact integer evaluation of a Sequential of Conv2d / ConvTranspose2d / ReLU."""

    def __init__(self, layers: list[FixedPointLayer], fraction_bits: int) -> None:
        self.layers = layers
        self.fraction_bits = fraction_bits  # activations are integers at 2**fraction_bits
        self.limit = float(2 ** (fraction_bits + ACTIVATION_INT_BITS))  # activation clamp

    @classmethod
    def from_modules(cls, modules: Iterable[nn.Module], fraction_bits: int) -> FixedPointNetwork:
        if not 0 <= fraction_bits <= 20:
            raise CodecError(f"fraction_bits must be in 0..20, got {fraction_bits}")
        limit = float(2 ** (fraction_bits + ACTIVATION_INT_BITS))
        layers: list[FixedPointLayer] = []
        for m in modules:
            if isinstance(m, nn.ReLU):
                if not layers or layers[-1].relu:
                    raise CodecError("ReLU must follow a convolution")
                last = layers[-1]
                layers[-1] = FixedPointLayer(
                    last.weight,
                    last.bias,
                    last.weight_bits,
                    last.stride,
                    last.upsample,
                    last.pad,
                    True,
                )
            elif isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
                layers.append(_convert(m, fraction_bits, limit))
            else:
                name = type(m).__name__
                raise CodecError(
                    f"fixed-point networks take Conv2d, ConvTranspose2d, ReLU; got {name}"
                )
        return cls(layers, fraction_bits)

    def __call__(self, x: Tensor) -> Tensor:
        """x: (B, C, H, W) integer-valued at 2**fraction_bits -> same form, exactly."""
        h = x.to(torch.float64).clamp(-self.limit, self.limit)
        for layer in self.layers:
            h = _exact_conv(h, layer)
            if layer.weight_bits > 0:
                h = torch.floor((h + 2.0 ** (layer.weight_bits - 1)) / 2.0**layer.weight_bits)
            if layer.relu:
                h = h.clamp_min(0.0)
            h = h.clamp(-self.limit, self.limit)
        return h


def _convert(
    m: nn.Conv2d | nn.ConvTranspose2d, fraction_bits: int, limit: float
) -> FixedPointLayer:
    if m.groups != 1 or m.dilation not in ((1, 1), 1) or m.padding_mode != "zeros":
        raise CodecError("fixed-point layers need groups=1, dilation=1, zero padding")
    k = m.kernel_size
    s = m.stride
    p = m.padding
    if isinstance(p, str) or k[0] != k[1] or s[0] != s[1] or p[0] != p[1]:
        raise CodecError("fixed-point layers need square kernels, strides and paddings")
    w = m.weight.detach().to("cpu", torch.float64)
    if isinstance(m, nn.ConvTranspose2d):
        op = m.output_padding
        if op[0] != op[1] or k[0] - 1 - p[0] < 0:
            raise CodecError("unsupported transposed convolution geometry")
        w = w.flip(2, 3).transpose(0, 1).contiguous()  # equivalent conv weight
        pad = (k[0] - 1 - p[0], k[0] - 1 - p[0] + op[0])
        stride, upsample = 1, s[0]
    else:
        pad, stride, upsample = (p[0], p[0]), s[0], 1
    b = (
        m.bias.detach().to("cpu", torch.float64)
        if m.bias is not None
        else torch.zeros(w.shape[0], dtype=torch.float64)
    )
    if not (torch.isfinite(w).all() and torch.isfinite(b).all()):
        raise CodecError("network weights contain NaN or inf")
    for bits in range(MAX_WEIGHT_BITS, -1, -1):
        wi = torch.round(w * 2.0**bits)
        bi = torch.round(b * 2.0 ** (fraction_bits + bits))
        worst = wi.abs().sum(dim=(1, 2, 3)) * limit + bi.abs()
        if float(worst.max()) <= _EXACT_LIMIT:
            return FixedPointLayer(wi, bi, bits, stride, upsample, pad, False)
    raise CodecError("network weights too large for exact fixed-point evaluation")


def _exact_conv(x: Tensor, layer: FixedPointLayer) -> Tensor:
    """Convolution as unfold + matmul on integer-valued float64 (exact, order-independent)."""
    if layer.upsample > 1:
        b, c, h, w = x.shape
        u = layer.upsample
        stuffed = x.new_zeros(b, c, (h - 1) * u + 1, (w - 1) * u + 1)
        stuffed[:, :, ::u, ::u] = x
        x = stuffed
    lo, hi = layer.pad
    x = F.pad(x, (lo, hi, lo, hi))
    cout, cin, k, _ = layer.weight.shape
    b, _, h, w = x.shape
    ho = (h - k) // layer.stride + 1
    wo = (w - k) // layer.stride + 1
    cols = F.unfold(x, k, stride=layer.stride)  # (B, Cin * k * k, Ho * Wo)
    out = torch.matmul(layer.weight.reshape(cout, -1), cols)  # (B, Cout, Ho * Wo)
    out = out + layer.bias[None, :, None]
    return out.reshape(b, cout, ho, wo)


def module_fingerprint(module: nn.Module) -> bytes:
    """Hash of a module's parameters and buffers (to cache derived fixed-point forms)."""
    h = hashlib.sha256()
    for t in list(module.parameters()) + list(module.buffers()):
        h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.digest()

"""The v2 image codec of fm (intra frames and inter residuals): no bottleneck before
quantization.

The v1 codec (model.IntraCodec) maps each 8x8 block's 96 values (64 luma, 2 x 16 chroma,
frames.py) through a 1x1 convolution to 64 channels with a ReLU, then to a 1/16 latent of
64 channels (384 values per 16x16 block -> 64): information is lost before anything is
quantized, and its unquantized autoencoder stays near 30 dB on real frames (capacity.py).

v2 keeps the latent complete: 96 channels at 1/8 resolution, as many numbers as the
picture has samples (DCVC-RT likewise codes a single latent at 1/8). The analysis is

    y = P(B16(B8(D x))) / s_enc(q),    x_hat = D'(B8'(B16'(P'(y_hat * s_dec(q)))))

with D a linear 1x1 convolution 96 -> C (no ReLU), B8 residual blocks at 1/8, B16 a
residual branch through 1/16 (pixel-unshuffle, a block, pixel-shuffle; wider context),
P a linear 1x1 convolution C -> 96; the synthesis mirrors it. Every nonlinear part sits on
a residual path, so nothing forces information away. Initialisation: D is the orthonormal
block DCT (8x8 on luma, 4x4 on each chroma plane, as JPEG's transform), D' its inverse,
P and P' identities and the residual branches zero: at step 0 the codec is a DCT codec
with learned per-coefficient steps (the q scalers) and a learned entropy model, its
unquantized autoencoder exact, and training starts from there instead of from noise.

Quantization scalers start at the step that the loss lambda(q) MSE + bpp asks for at high
rate (step ~ 3.6 / sqrt(lambda) for 1.5 samples per pixel), so q is log-linear in the step
(about equal dB per q step). Entropy model: latent.LatentPrior (hyperprior with z at 1/32,
mean-scale Gaussian, two-step checkerboard context), exact integer tables.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from nvc.codec.conditional import frames as fr
from nvc.codec.conditional.latent import (
    SCALE_BITS,
    FrameOutput,
    LatentPrior,
    QScale,
    scale_exact,
)
from nvc.codec.conditional.layers import Block, Conv, Down, Seq, Up, clamp_act_
from nvc.codec.entropy import SymbolReader, SymbolWriter
from nvc.errors import CodecError

if TYPE_CHECKING:
    from nvc.codec.conditional.model import ModelConfig

LATENT = fr.CHANNELS  # v2 latent channels: complete (96 values per 8x8 block)
DC_CHANNELS = (0, 64, 80)  # the latent channels that start as the DC of Y, Cb, Cr


def dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix (n x n): row k is the k-th basis vector."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    d = np.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    d[0] /= math.sqrt(2.0)
    return d


def block_dct() -> np.ndarray:
    """The 96 x 96 orthonormal transform of one 8x8 block in the 96-channel layout: the 2-D
    DCT of the 8x8 luma samples (channels 0..63, index row * 8 + col) and of each 4x4
    chroma block (64..79, 80..95)."""
    out = np.zeros((fr.CHANNELS, fr.CHANNELS))
    d8, d4 = dct_matrix(8), dct_matrix(4)
    out[:64, :64] = np.kron(d8, d8)
    out[64:80, 64:80] = np.kron(d4, d4)
    out[80:, 80:] = np.kron(d4, d4)
    return out


def _zero(conv: Conv) -> None:
    """A convolution that outputs zeros (weights and bias)."""
    with torch.no_grad():
        conv.conv.weight.zero_()
        if conv.conv.bias is not None:
            conv.conv.bias.zero_()


class Branch16(nn.Module):
    """x + Up(Block(Down(x))): a residual path through 1/16 (wider context). The Up
    convolution starts at zero, so the branch starts as the identity."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.down = Down(c, c, relu=True)
        self.block = Block(c)
        self.up = Up(c, c, 1)
        _zero(self.up.conv)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.up(self.block(self.down(x)))

    def exact(self, x: Tensor) -> Tensor:
        return clamp_act_(self.up.exact(self.block.exact(self.down.exact(x))).add_(x))


def _zero_block(b: Block) -> Block:
    _zero(b.pw2)
    return b


def _set_linear(conv: Conv, weight: np.ndarray) -> None:
    _zero(conv)
    with torch.no_grad():
        conv.conv.weight.copy_(torch.from_numpy(weight).float()[:, :, None, None])


class TransformCodec(nn.Module):
    """The v2 image codec (see the module docstring); the interface of model.IntraCodec."""

    def __init__(self, cfg: ModelConfig, dc: bool = False) -> None:
        """`dc`: the DC channels (luma, Cb, Cr) may be DPCM-coded (dpcm.py; the intra
        codec). No parameter depends on it."""
        super().__init__()
        c, n = cfg.image_channels, cfg.image_blocks
        if c < LATENT or n < 1 or cfg.image_hyper < 1 or cfg.image_prior < 1:
            raise CodecError(
                f"the v2 image codec needs image_channels >= {LATENT} and positive "
                f"image_blocks, image_hyper, image_prior"
            )
        self.stem = Conv(fr.CHANNELS, c, 1)  # linear: nothing is lost here
        self.enc = Seq(*(_zero_block(Block(c)) for _ in range(n)), Branch16(c), Conv(c, LATENT, 1))
        self.q_enc = QScale(LATENT, 0.22, 0.014)
        self.q_dec = QScale(LATENT, 0.22, 0.014)
        self.prior = LatentPrior(
            LATENT, cfg.image_hyper, 0, cfg.image_prior, True, DC_CHANNELS if dc else (), True
        )
        self.dec = Seq(Conv(LATENT, c, 1), Branch16(c), *(_zero_block(Block(c)) for _ in range(n)))
        self.head = Conv(c, fr.CHANNELS, 1)  # linear
        dct = block_dct()
        embed = np.eye(c, LATENT)  # (c, 96): the first 96 channels carry the coefficients
        _set_linear(self.stem, embed @ dct)
        _set_linear(self.enc.layers[-1], embed.T)  # type: ignore[arg-type]
        _set_linear(self.dec.layers[0], embed)  # type: ignore[arg-type]
        _set_linear(self.head, dct.T @ embed.T)

    def analysis(self, x: Tensor) -> Tensor:
        return self.enc(self.stem(x))

    def synthesis(self, y: Tensor) -> Tensor:
        return self.head(self.dec(y))

    def forward(self, x: Tensor, q: Tensor) -> FrameOutput:
        po = self.prior(self.analysis(x) / self.q_enc(q))
        return FrameOutput(self.synthesis(po.y_hat * self.q_dec(q)), None, po.bits)

    def latent(self, x: Tensor, q: int) -> Tensor:
        return self.analysis(x) / self.q_enc(torch.tensor([q], device=x.device))

    def autoencode(self, x: Tensor, q: int) -> Tensor:
        """Float analysis then synthesis without quantization (the capacity check)."""
        qt = torch.tensor([q], device=x.device)
        return self.synthesis(self.analysis(x) / self.q_enc(qt) * self.q_dec(qt))

    def synthesize(self, y_hat: Tensor, q: int) -> Tensor:
        yd = scale_exact(y_hat, self.q_dec.fixed(q))
        return self.head.exact(self.dec.exact(yd))

    def rd_weights(self, q: int, lam: float) -> np.ndarray:
        """(96,) what one unit of squared error in each latent channel costs in bits under
        the loss lam * MSE + bpp: lam * (64 / 96) * s_dec(q)**2 * |column of the linear
        synthesis|**2 (the 1x1 convolutions around the residual branches; MSE is over the
        96 values per 8x8 block, bpp over its 64 pixels)."""
        first = self.dec.layers[0]
        if not isinstance(first, Conv):
            raise TypeError(f"the synthesis starts with {type(first).__name__}, not a Conv")
        w_in = first.conv.weight.detach()[:, :, 0, 0].to("cpu", torch.float64)
        w_out = self.head.conv.weight.detach()[:, :, 0, 0].to("cpu", torch.float64)
        gain = ((w_out @ w_in) ** 2).sum(0).numpy()
        s = self.q_dec.fixed(q).reshape(-1).numpy() / float(1 << SCALE_BITS)
        return lam * (64.0 / fr.CHANNELS) * s * s * gain

    def encode(
        self,
        y: Tensor,
        q: int,
        writer: SymbolWriter,
        lam: float | None = None,
        planes: bool = False,
    ) -> Tensor:
        """Code a latent; returns the reconstruction (fixed point, 96 channels). With `lam`
        (the loss's lambda), symbols are rounded rate-distortion-wise (rd_weights); with
        `planes` (fm version 4), DC and z channels may be DPCM-coded (LatentPrior.encode)."""
        rd = None if lam is None else self.rd_weights(q, lam)
        return self.synthesize(self.prior.encode(y, None, writer, rd, planes), q)

    def decode(
        self, reader: SymbolReader, q: int, size: tuple[int, int], planes: bool = False
    ) -> Tensor:
        y_hat = self.prior.decode(reader, (1, LATENT, size[0], size[1]), None, planes)
        return self.synthesize(y_hat, q)

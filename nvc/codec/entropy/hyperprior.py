"""Scale (and mean-scale) hyperprior: side information for the conditional models.

Ballé et al. 2018, "Variational image compression with a scale hyperprior": a hyper
analysis h_a turns the latent y into a hyper-latent z, coded with a `FactorizedPrior`;
a hyper synthesis h_s turns the decoded z_hat into the scale (and, after Minnen et al.
2018, the mean) of each element of y, which is coded with a `MeanScaleConditional`.

    h_a: conv3x3 s1, ReLU, conv5x5 s2, ReLU, conv5x5 s2          y (B,M,H,W) -> z (B,N,H/4,W/4)
    h_s: deconv5x5 s2, ReLU, deconv5x5 s2, ReLU, conv3x3 s1 [ReLU] z_hat -> (B,M or 2M,H,W)

Determinism: for coding, both sides evaluate h_s with `FixedPointNetwork` (exact integer
arithmetic), and map its fixed-point scales to table levels by integer comparison. The
encoder's levels and means are therefore the decoder's on any thread count or device.
Training (`forward`) uses the ordinary float h_s.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from nvc.codec.entropy.conditional import (
    ConditionalConfig,
    MeanScaleConditional,
    dequantize,
    round_symbols,
    to_numpy,
)
from nvc.codec.entropy.factorized import FactorizedPrior
from nvc.codec.entropy.fixed_point import FixedPointNetwork, module_fingerprint
from nvc.codec.entropy.likelihood import Quantize
from nvc.errors import CodecError


@dataclass(frozen=True)
class HyperpriorConfig:
    """Configuration of a hyperprior entropy model."""

    latent_channels: int = 192  # M, channels of the latent y
    hyper_channels: int = 128  # N, channels of the hyper-latent z
    mean_scale: bool = True  # h_s predicts means and scales (Minnen 2018); else scales only
    conditional: ConditionalConfig = field(default_factory=ConditionalConfig)  # model of y | z
    fraction_bits: int = 12  # fixed-point fraction bits of the exact decoder-side h_s

    def __post_init__(self) -> None:
        if self.latent_channels < 1 or self.hyper_channels < 1:
            raise CodecError("latent_channels and hyper_channels must be >= 1")


def _conv(cin: int, cout: int, k: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)


def _deconv(cin: int, cout: int, k: int, stride: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(
        cin, cout, k, stride=stride, padding=k // 2, output_padding=stride - 1
    )


class HyperAnalysis(nn.Module):
    """h_a: (B, M, H, W) -> (B, N, H/4, W/4)."""

    def __init__(self, latent_channels: int, hyper_channels: int) -> None:
        super().__init__()
        m, n = latent_channels, hyper_channels
        self.layers = nn.Sequential(
            _conv(m, n, 3, 1), nn.ReLU(), _conv(n, n, 5, 2), nn.ReLU(), _conv(n, n, 5, 2)
        )

    def forward(self, y: Tensor) -> Tensor:
        return self.layers(y)  # (B, N, H/4, W/4)


class HyperSynthesis(nn.Module):
    """h_s: (B, N, h, w) -> (B, M, 4h, 4w) scales, or (B, 2M, 4h, 4w) [scales, means]."""

    def __init__(self, hyper_channels: int, latent_channels: int, mean_scale: bool) -> None:
        super().__init__()
        n, m = hyper_channels, latent_channels
        out = 2 * m if mean_scale else m
        layers: list[nn.Module] = [
            _deconv(n, n, 5, 2),
            nn.ReLU(),
            _deconv(n, n, 5, 2),
            nn.ReLU(),
            _conv(n, out, 3, 1),
        ]
        if not mean_scale:
            layers.append(nn.ReLU())  # scales are non-negative (Ballé 2018)
        self.layers = nn.Sequential(*layers)

    def forward(self, z_hat: Tensor) -> Tensor:
        return self.layers(z_hat)  # (B, M or 2M, 4h, 4w)


@dataclass
class HyperpriorOutput:
    """What `Hyperprior.forward` returns."""

    y_hat: Tensor  # (B, M, H, W) quantized (or noisy) latent
    z_hat: Tensor  # (B, N, H/4, W/4) quantized (or noisy) hyper-latent
    y_likelihoods: Tensor  # (B, M, H, W)
    z_likelihoods: Tensor  # (B, N, H/4, W/4)


@dataclass(frozen=True)
class HyperpriorStreams:
    """The two coded streams and the latent shape: all a decoder needs."""

    z: bytes  # the hyper-latent, coded with the factorized prior
    y: bytes  # the latent, coded with the conditional model
    latent_shape: tuple[int, int, int, int]  # (B, M, H, W) of y

    def to_bytes(self) -> bytes:
        """Little-endian: 4 x u32 shape, u32 length of z, z, y."""
        return struct.pack("<5I", *self.latent_shape, len(self.z)) + self.z + self.y

    @classmethod
    def from_bytes(cls, data: bytes) -> HyperpriorStreams:
        if len(data) < 20:
            raise CodecError("hyperprior data is truncated")
        b, m, h, w, nz = struct.unpack_from("<5I", data)
        if 20 + nz > len(data):
            raise CodecError("hyperprior data is truncated")
        return cls(bytes(data[20 : 20 + nz]), bytes(data[20 + nz :]), (b, m, h, w))


@dataclass
class HyperpriorEncoding:
    """What `Hyperprior.compress` returns."""

    streams: HyperpriorStreams  # what to transmit
    y_hat: Tensor  # (B, M, H, W) the decoder's reconstruction of y, bit for bit


class Hyperprior(nn.Module):
    """h_a + factorized prior on z + h_s + conditional model on y."""

    def __init__(self, config: HyperpriorConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or HyperpriorConfig()
        self.h_a = HyperAnalysis(cfg.latent_channels, cfg.hyper_channels)
        self.h_s = HyperSynthesis(cfg.hyper_channels, cfg.latent_channels, cfg.mean_scale)
        self.z_prior = FactorizedPrior(cfg.hyper_channels)
        self.y_model = MeanScaleConditional(cfg.conditional)
        self._exact: FixedPointNetwork | None = None
        self._exact_fingerprint = b""

    def _check_latent(self, shape: tuple[int, ...]) -> None:
        if len(shape) != 4 or shape[1] != self.config.latent_channels:
            raise CodecError(
                f"latent must be (B, {self.config.latent_channels}, H, W), got {shape}"
            )
        if shape[2] % 4 or shape[3] % 4 or min(shape) < 1:
            raise CodecError(
                f"latent height and width must be positive multiples of 4, got {shape}"
            )

    def _split(self, params: Tensor) -> tuple[Tensor, Tensor | None]:
        m = self.config.latent_channels
        if self.config.mean_scale:
            return params[:, :m], params[:, m:]
        return params, None

    def forward(self, y: Tensor, quantize_mode: Quantize | None = None) -> HyperpriorOutput:
        """y: (B, M, H, W). Noise in training mode, rounding otherwise."""
        self._check_latent(tuple(y.shape))
        z = self.h_a(y if self.config.mean_scale else y.abs())  # (B, N, H/4, W/4)
        z_out = self.z_prior(z, quantize_mode)
        scales, means = self._split(self.h_s(z_out.y_hat))  # (B, M, H, W) each
        y_out = self.y_model(y, scales, means, quantize_mode)
        return HyperpriorOutput(y_out.y_hat, z_out.y_hat, y_out.likelihoods, z_out.likelihoods)

    # ------------------------------------------------------------------ coding

    def exact_synthesis(self) -> FixedPointNetwork:
        """The fixed-point h_s (rebuilt when the weights change)."""
        fp = module_fingerprint(self.h_s)
        if self._exact is None or fp != self._exact_fingerprint:
            self._exact = FixedPointNetwork.from_modules(self.h_s.layers, self.config.fraction_bits)
            self._exact_fingerprint = fp
        return self._exact

    def coding_params(self, z_hat: Tensor) -> tuple[npt.NDArray[np.uint16], Tensor | None]:
        """Scale levels (flat, C order of y) and means (B, M, H, W) from integer z_hat,
        computed exactly, as both the encoder and the decoder use them."""
        net = self.exact_synthesis()
        one = float(2**net.fraction_bits)
        out = net(z_hat.detach().to("cpu", torch.float64) * one)  # integers at 2**fb
        scales_fp, means_fp = self._split(out)
        bounds = self.config.conditional.scale_table.fixed_point_boundaries(net.fraction_bits)
        s = scales_fp.reshape(-1).numpy().astype(np.int64)
        levels = np.searchsorted(bounds, s, side="right").astype(np.uint16)
        means = None if means_fp is None else (means_fp / one).to(torch.float32)
        return levels, means

    def compress(self, y: Tensor) -> HyperpriorEncoding:
        """Code y (B, M, H, W); returns the streams and the decoder's y_hat."""
        shape = tuple(int(s) for s in y.shape)
        self._check_latent(shape)
        with torch.no_grad():
            z = self.h_a(y if self.config.mean_scale else y.abs())
            z_bytes = self.z_prior.compress(z)
            z_hat = (
                torch.from_numpy(self.z_prior.symbols(z).astype(np.float32))
                .reshape(z.shape[1], z.shape[0], *z.shape[2:])
                .transpose(0, 1)
            )
        levels, means = self.coding_params(z_hat)
        yn = to_numpy(y).astype(np.float64)
        if means is not None:
            yn = yn - means.reshape(-1).numpy().astype(np.float64)
        q = round_symbols(yn)
        y_bytes = self.y_model.compress_symbols(q, levels)
        y_hat = dequantize(q, shape, means).to(y.device)
        streams = HyperpriorStreams(z_bytes, y_bytes, shape)  # type: ignore[arg-type]
        return HyperpriorEncoding(streams=streams, y_hat=y_hat)

    def decompress(self, streams: HyperpriorStreams) -> Tensor:
        """y_hat (B, M, H, W) from the streams, bit-exactly the encoder's y_hat."""
        shape = tuple(streams.latent_shape)
        self._check_latent(shape)
        b, _, h, w = shape
        z_shape = (b, self.config.hyper_channels, h // 4, w // 4)
        z_hat = self.z_prior.decompress(streams.z, z_shape).cpu()
        levels, means = self.coding_params(z_hat)
        q = self.y_model.decompress_symbols(streams.y, levels)
        return dequantize(q, shape, means)

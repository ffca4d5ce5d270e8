"""The conditional video model: intra codec, inter codec, feature modulation.

Written from the description of DCVC-FM (Li, Li & Lu, "Neural Video Compression with
Feature Modulation", CVPR 2024) and the DCVC line it builds on (DCVC-TCM's multi-scale
temporal contexts, DCVC-DC's hierarchical quality and checkerboard-style spatial context,
DCVC-RT's work at 1/8 resolution after pixel-unshuffling); no code of theirs was used.

- Intra codec (first frame, intra period): analysis to a latent y at 1/16 luma resolution,
  hyperprior (z at 1/64) plus a two-step checkerboard spatial context, synthesis.
- Inter codec:
  * motion: block vectors from motion.estimate_motion, coded by a learned motion coder
    (an encoder to a motion latent at 1/16, its own hyperprior, a decoder back to a flow at
    1/8 resolution);
  * motion compensation in the feature domain: the previous decoded feature (1/8 res) is
    warped with the decoded flow; the reference picture is warped too (pixel domain) and
    both feed the context network;
  * multi-scale temporal contexts at 1/8 and 1/16, used by the contextual encoder and
    decoder, and a temporal prior (from the 1/16 context) fused with the hyperprior in the
    entropy model, plus the checkerboard step;
  * the decoder's last feature is the next frame's temporal feature; every `refresh`
    frames it is instead re-derived from the decoded picture by a feature adaptor (the
    periodic refresh of DCVC-FM), which stops error from accumulating in the feature chain.
- Feature modulation: learnable quantization scalers indexed by the quality index q
  (0..63): the encoder divides its latents by s_enc(q), the decoder multiplies the decoded
  latents by s_dec(q), per channel. log s(q) is a learned per-channel interpolation between
  the two ends plus a learned per-q offset, so one model covers the whole q range; training
  samples q uniformly and weighs distortion by lambda(q), log-linear in q.

`forward` methods are the float training path. `encode`/`decode` methods are the coding
path: every network whose output the decoder needs runs in exact fixed point (layers.py),
so the decoder's state is bit-exactly the encoder's.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor, nn

from nvc.codec.conditional import frames as fr
from nvc.codec.conditional.layers import (
    FRAC_BITS,
    ONE,
    WARP_BITS,
    Block,
    Conv,
    Down,
    Seq,
    Up,
    clamp_act,
    crop,
    exact_warp,
    fixed_round_shift,
    upsample_nearest,
    warp,
)
from nvc.codec.entropy import (
    FactorizedPrior,
    GaussianConditional,
    SymbolReader,
    SymbolWriter,
    detmath,
)
from nvc.codec.entropy.conditional import round_symbols
from nvc.errors import CodecError

Q_LEVELS = 64  # quality indices 0 (lowest rate) .. 63 (highest quality)
SCALE_BITS = 16  # fraction bits of the fixed-point quantization scalers
LAMBDA_MIN = 16.0  # rate-distortion trade-off at q = 0: loss = lambda * MSE + bits per pixel
LAMBDA_MAX = 4096.0  # ... at q = 63 (MSE of values in [0, 1]); log-linear in between
# Inter residuals are amplified by 2**shift before the residual coder's analysis and
# attenuated by as much after its synthesis (a finer step than q alone gives a small
# signal); the encoder tries these shifts, training samples them (codec.py, train.py).
RESIDUAL_SHIFTS = (1, 2)


def lambda_of(q: Tensor) -> Tensor:
    """lambda(q), log-linear between LAMBDA_MIN (q = 0) and LAMBDA_MAX (q = 63)."""
    t = q.float() / (Q_LEVELS - 1)
    return torch.exp(math.log(LAMBDA_MIN) * (1 - t) + math.log(LAMBDA_MAX) * t)


@dataclass(frozen=True)
class ModelConfig:
    """The network's shape. Everything a decoder needs besides the weights."""

    variant: str  # "realtime" or "quality"
    channels: int  # C: feature channels at 1/8 resolution
    latent: int  # M: channels of the frame latent y (1/16)
    hyper: int  # channels of the hyper-latent z (1/64)
    mv_channels: int  # channels of the motion latent (1/16)
    mv_hidden: int  # channels of the motion coder's 1/8-resolution layers
    mv_hyper: int  # channels of the motion hyper-latent
    prior_width: int  # channels of the entropy-parameter networks
    blocks: int  # residual blocks per stage
    checkerboard: bool = True  # two-step checkerboard spatial context for y
    latent_skip: bool = False  # inter: a linear path from the latent to the picture (see below)
    residual_codec: bool = False  # a separate image codec for inter residuals (else: intra's)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> ModelConfig:
        try:
            return cls(**d)  # type: ignore[arg-type]
        except TypeError as e:
            raise CodecError(f"bad model configuration: {e}") from None


VARIANTS: dict[str, ModelConfig] = {
    # sized for a 2-core CPU: ~0.6 M parameters, everything at 1/8 and 1/16 resolution
    "realtime": ModelConfig("realtime", 64, 64, 32, 32, 32, 16, 64, 1),
    # a larger model in the same design (train it on a GPU)
    "quality": ModelConfig("quality", 128, 128, 64, 64, 64, 32, 128, 3),
}


def ste_round(x: Tensor) -> Tensor:
    return x + (torch.round(x) - x).detach()


def checkerboard(h: int, w: int, device: torch.device | None = None) -> Tensor:
    """(1, 1, h, w) bool: the anchors (coded first) where (row + col) is even."""
    r = torch.arange(h, device=device).view(h, 1)
    c = torch.arange(w, device=device).view(1, w)
    return ((r + c) % 2 == 0).view(1, 1, h, w)


class QScale(nn.Module):
    """Per-channel quantization scaler s(q), q in 0..63 (DCVC-FM's feature modulation).

    log s(q, c) = (1 - t) a[c] + t b[c] + o[q], t = q / 63: two learned per-channel ends
    and a learned per-q offset. The coding path computes s(q) in reproducible float64
    (detmath) from the float32 parameters and rounds it to 2**-16."""

    def __init__(self, channels: int, low: float, high: float) -> None:
        super().__init__()
        self.log_low = nn.Parameter(torch.full((channels,), math.log(low)))
        self.log_high = nn.Parameter(torch.full((channels,), math.log(high)))
        self.offset = nn.Parameter(torch.zeros(Q_LEVELS))

    def forward(self, q: Tensor) -> Tensor:
        """q: (B,) long -> (B, C, 1, 1)."""
        t = (q.float() / (Q_LEVELS - 1))[:, None]
        log = self.log_low[None] * (1 - t) + self.log_high[None] * t + self.offset[q][:, None]
        return log.exp()[:, :, None, None]

    def fixed(self, q: int) -> Tensor:
        """s(q) per channel as integers at 2**SCALE_BITS, (1, C, 1, 1) float64."""
        lo = self.log_low.detach().to("cpu", torch.float32).numpy().astype(np.float64)
        hi = self.log_high.detach().to("cpu", torch.float32).numpy().astype(np.float64)
        off = float(self.offset.detach().to("cpu", torch.float32)[q])
        t = q / float(Q_LEVELS - 1)
        s = detmath.exp(lo * (1.0 - t) + hi * t + off)
        ints = np.floor(s * float(1 << SCALE_BITS) + 0.5)
        return torch.from_numpy(ints).view(1, -1, 1, 1)


def scale_exact(x: Tensor, s: Tensor) -> Tensor:
    """Fixed-point x times fixed-point scaler s (at 2**SCALE_BITS), rounded half up."""
    return clamp_act(fixed_round_shift(x * s, SCALE_BITS))


@dataclass
class PriorOutput:
    y_hat: Tensor  # (B, M, h, w) quantized latent (straight-through rounding around the mean)
    bits: Tensor  # (B,) estimated bits of y and z


class LatentPrior(nn.Module):
    """Entropy model of one latent: hyperprior (Ballé 2018, mean-scale per Minnen 2018), an
    optional temporal prior fused with it (DCVC), and an optional two-step checkerboard
    spatial context (He et al. 2021; DCVC-DC/FM use a four-step variant)."""

    def __init__(self, channels: int, hyper: int, temporal: int, width: int, spatial: bool) -> None:
        super().__init__()
        m = channels
        self.channels, self.hyper, self.spatial = m, hyper, spatial
        self.h_a = Seq(
            Conv(m, hyper, 3, relu=True),
            Conv(hyper, hyper, 3, 2, relu=True),
            Conv(hyper, hyper, 3, 2),
        )
        self.h_s = Seq(Up(hyper, hyper, 3, relu=True), Up(hyper, width, 3, relu=True))
        self.fuse = Seq(
            Conv(width + temporal, width, 1, relu=True), Conv(width, width, 1, relu=True)
        )
        self.head1 = Conv(width, 2 * m, 1)
        if spatial:
            self.sctx = Conv(m, width, 3, relu=True)
            self.head2 = Seq(Conv(2 * width, width, 1, relu=True), Conv(width, 2 * m, 1))
        self.z_prior = FactorizedPrior(hyper)
        self.cond = GaussianConditional()
        bounds = self.cond.config.scale_table.fixed_point_boundaries(FRAC_BITS)
        self.register_buffer("_bounds", torch.from_numpy(bounds), persistent=False)

    # ------------------------------------------------------------------ training

    def _base(self, z_hat: Tensor, temporal: Tensor | None, size: tuple[int, int]) -> Tensor:
        hp = crop(self.h_s(z_hat), size)
        return self.fuse(hp if temporal is None else torch.cat([hp, temporal], 1))

    def forward(
        self, y: Tensor, temporal: Tensor | None = None, noisy_decoder: bool = False
    ) -> PriorOutput:
        """Training: the rate uses additive uniform noise; what the decoder side sees is
        y rounded around the mean with a straight-through gradient, or, with
        `noisy_decoder`, the same noisy y (Ballé's proxy: it keeps a collapsed latent's
        decoder weights learning, used in the first inter stage)."""
        z = self.h_a(y)
        z_noisy = z + torch.empty_like(z).uniform_(-0.5, 0.5) if self.training else torch.round(z)
        z_bits = -torch.log2(self.z_prior.likelihood(z_noisy)).sum(dim=(1, 2, 3))
        base = self._base(ste_round(z), temporal, (y.shape[2], y.shape[3]))
        mu, sc = self.head1(base).chunk(2, 1)
        noise = torch.empty_like(y).uniform_(-0.5, 0.5) if self.training else None
        noisy = noisy_decoder and noise is not None
        if self.spatial:
            mask = checkerboard(y.shape[2], y.shape[3], y.device)
            first = y + noise if noisy and noise is not None else ste_round(y - mu) + mu
            mu2, sc2 = self.head2(torch.cat([base, self.sctx(first * mask)], 1)).chunk(2, 1)
            mu = torch.where(mask, mu, mu2)
            sc = torch.where(mask, sc, sc2)
        y_hat = ste_round(y - mu) + mu
        y_noisy = y + noise if noise is not None else y_hat
        y_bits = -torch.log2(self.cond.likelihood(y_noisy, sc, mu)).sum(dim=(1, 2, 3))
        return PriorOutput(y_noisy if noisy else y_hat, y_bits + z_bits)

    # ------------------------------------------------------------------ coding

    def z_shape(self, y_shape: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        b, _, h, w = y_shape

        def half(n: int) -> int:  # size after a stride-2 conv with padding 1
            return (n + 1) // 2

        return b, self.hyper, half(half(h)), half(half(w))

    def _z_indices(self, shape: tuple[int, ...]) -> np.ndarray:
        per = int(np.prod(shape)) // self.hyper
        return np.repeat(np.arange(self.hyper, dtype=np.uint8), per)

    def _exact_base(self, z_int: Tensor, temporal: Tensor | None, size: tuple[int, int]) -> Tensor:
        hp = crop(self.h_s.exact(z_int * ONE), size)
        return self.fuse.exact(hp if temporal is None else torch.cat([hp, temporal], 1))

    def _levels(self, scales: Tensor) -> np.ndarray:
        s = scales.reshape(-1).to(torch.int64)
        bounds: Tensor = self._bounds  # type: ignore[assignment]
        return torch.searchsorted(bounds, s, right=True).numpy().astype(np.uint8)

    def encode(self, y: Tensor, temporal: Tensor | None, writer: SymbolWriter) -> Tensor:
        """Code y (1, M, h, w) float; returns the decoder's y_hat in fixed point."""
        with torch.no_grad():
            z = self.h_a(y.float())
        z_int = torch.from_numpy(round_symbols(z.to(torch.float64).numpy())).to(torch.float64)
        z_int = z_int.reshape(z.shape)
        zs = z_int.transpose(0, 1).reshape(-1).numpy().astype(np.int64)
        writer.put_indexed(zs, self._z_indices(tuple(z.shape)), self.z_prior.tables)
        base = self._exact_base(z_int, temporal, (y.shape[2], y.shape[3]))
        y64 = y.detach().to("cpu", torch.float64)
        mu, sc = self.head1.exact(base).chunk(2, 1)
        if not self.spatial:
            return self._put(y64, mu, sc, None, writer)
        mask = checkerboard(y.shape[2], y.shape[3]).expand_as(y64)
        first = self._put(y64, mu, sc, mask, writer)
        mu2, sc2 = self.head2.exact(torch.cat([base, self.sctx.exact(first * mask)], 1)).chunk(2, 1)
        second = self._put(y64, mu2, sc2, ~mask, writer)
        return torch.where(mask, first, second)

    def _put(
        self, y64: Tensor, mu: Tensor, sc: Tensor, mask: Tensor | None, writer: SymbolWriter
    ) -> Tensor:
        sym = torch.from_numpy(round_symbols((y64 - mu / ONE).numpy())).to(torch.float64)
        if mask is None:
            writer.put_indexed(
                sym.reshape(-1).numpy().astype(np.int64),
                self._levels(sc),
                self.cond.tables,
                trusted=True,
            )
        else:
            writer.put_indexed(
                sym[mask].numpy().astype(np.int64),
                self._levels(sc[mask]),
                self.cond.tables,
                trusted=True,
            )
        return clamp_act(sym * ONE + mu)

    def decode(
        self, reader: SymbolReader, y_shape: tuple[int, int, int, int], temporal: Tensor | None
    ) -> Tensor:
        """y_hat (fixed point) from the stream: bit-exactly the encoder's."""
        zshape = self.z_shape(y_shape)
        zs = reader.get_indexed(self._z_indices(zshape), self.z_prior.tables)
        z_int = (
            torch.from_numpy(zs.astype(np.float64))
            .reshape(zshape[1], zshape[0], zshape[2], zshape[3])
            .transpose(0, 1)
        )
        base = self._exact_base(z_int, temporal, (y_shape[2], y_shape[3]))
        mu, sc = self.head1.exact(base).chunk(2, 1)
        if not self.spatial:
            return self._get(reader, mu, sc, None)
        mask = checkerboard(y_shape[2], y_shape[3]).expand(y_shape)
        first = self._get(reader, mu, sc, mask)
        mu2, sc2 = self.head2.exact(torch.cat([base, self.sctx.exact(first * mask)], 1)).chunk(2, 1)
        second = self._get(reader, mu2, sc2, ~mask)
        return torch.where(mask, first, second)

    def _get(self, reader: SymbolReader, mu: Tensor, sc: Tensor, mask: Tensor | None) -> Tensor:
        if mask is None:
            sym = reader.get_indexed(self._levels(sc), self.cond.tables, trusted=True)
            q = torch.from_numpy(sym.astype(np.float64)).reshape(mu.shape)
        else:
            sym = reader.get_indexed(self._levels(sc[mask]), self.cond.tables, trusted=True)
            q = torch.zeros(mu.shape, dtype=torch.float64)
            q[mask] = torch.from_numpy(sym.astype(np.float64))
        return clamp_act(q * ONE + mu)


def _blocks(c: int, n: int) -> list[nn.Module]:
    return [Block(c) for _ in range(n)]


# ---------------------------------------------------------------------------- intra


@dataclass
class FrameOutput:
    x_hat: Tensor  # (B, 96, H/8, W/8) reconstruction, network values
    feature: Tensor | None  # (B, C, H/8, W/8) decoder feature (inter) for the next frame
    bits: Tensor  # (B,) estimated bits
    flow_hat: Tensor | None = None  # (B, 2, H/8, W/8) decoded motion (inter)
    pred: Tensor | None = None  # (B, 96, H/8, W/8) motion-compensated reference (inter)


class IntraCodec(nn.Module):
    """Image codec for the first frame and intra refreshes."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c, m = cfg.channels, cfg.latent
        self.enc = Seq(Conv(fr.CHANNELS, c, 1, relu=True), *_blocks(c, cfg.blocks), Down(c, m))
        self.q_enc = QScale(m, 2.0, 0.5)
        self.q_dec = QScale(m, 2.0, 0.5)
        self.prior = LatentPrior(m, cfg.hyper, 0, cfg.prior_width, cfg.checkerboard)
        self.dec = Seq(Up(m, c, 1, relu=True), *_blocks(c, cfg.blocks + 1))
        self.head = Conv(c, fr.CHANNELS, 1)

    def forward(self, x: Tensor, q: Tensor) -> FrameOutput:
        po = self.prior(self.enc(x) / self.q_enc(q))
        x_hat = self.head(self.dec(po.y_hat * self.q_dec(q)))
        return FrameOutput(x_hat, None, po.bits)

    def latent(self, x: Tensor, q: int) -> Tensor:
        return self.enc(x) / self.q_enc(torch.tensor([q]))

    def synthesize(self, y_hat: Tensor, q: int) -> Tensor:
        return self.head.exact(self.dec.exact(scale_exact(y_hat, self.q_dec.fixed(q))))

    def encode(self, y: Tensor, q: int, writer: SymbolWriter) -> Tensor:
        """Code a latent; returns the reconstruction (fixed point, 96 channels)."""
        return self.synthesize(self.prior.encode(y, None, writer), q)

    def decode(self, reader: SymbolReader, q: int, size: tuple[int, int]) -> Tensor:
        h, w = size[0] // 2, size[1] // 2
        y_hat = self.prior.decode(reader, (1, self.prior.channels, h, w), None)
        return self.synthesize(y_hat, q)


# ---------------------------------------------------------------------------- inter


@dataclass
class Contexts:
    pred: Tensor  # (B, 96, H/8, W/8) motion-compensated reference picture
    c0: Tensor  # (B, C, H/8, W/8) temporal context, fine
    c1: Tensor  # (B, C, H/16, W/16) temporal context, coarse
    prior: Tensor  # (B, C, H/16, W/16) temporal prior for the entropy model


def warp_picture(ref: Tensor, flow: Tensor) -> Tensor:
    """Warp a 96-channel picture in the pixel domain (float): luma with 8x the flow,
    chroma with 4x, each vector applied to its 8x8 (4x4) block."""
    y, uv = fr.split_96(ref)
    yw = warp(y, upsample_nearest(flow * 8.0, 8))
    uvw = warp(uv, upsample_nearest(flow * 4.0, 4))
    return fr.planes_to_96(yw, uvw)


def exact_warp_picture(ref: Tensor, flow: Tensor) -> Tensor:
    """The same in fixed point: flow (fixed, feature-grid units) -> 1/64-pixel integers."""
    y, uv = fr.split_96(ref)
    dy = torch.floor(flow * (8.0 * (1 << WARP_BITS)) / ONE)
    duv = torch.floor(flow * (4.0 * (1 << WARP_BITS)) / ONE)
    yw = exact_warp(y, upsample_nearest(dy, 8))
    uvw = exact_warp(uv, upsample_nearest(duv, 4))
    return fr.planes_to_96(yw, uvw)


class InterCodec(nn.Module):
    """Conditional inter-frame codec with a learned motion coder."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c, m, k = cfg.channels, cfg.latent, fr.CHANNELS
        cm, ch = cfg.mv_channels, cfg.mv_hidden
        # motion coder
        self.mv_enc = Seq(Conv(2, ch, 3, relu=True), Conv(ch, ch, 3, relu=True), Down(ch, cm))
        self.mv_q_enc = QScale(cm, 1.0, 0.25)
        self.mv_q_dec = QScale(cm, 1.0, 0.25)
        self.mv_prior = LatentPrior(cm, cfg.mv_hyper, 0, cfg.prior_width // 2, False)
        self.mv_dec = Seq(Up(cm, ch, 1, relu=True), Conv(ch, ch, 3, relu=True), Conv(ch, 2, 3))
        # temporal context
        self.adaptor = Seq(Conv(k, c, 1, relu=True), Block(c))
        self.ctx0 = Seq(Conv(c + k, c, 1, relu=True), Block(c))
        self.ctx1 = Seq(Down(c, c, relu=True), Block(c))
        self.tprior = Conv(c, c, 1, relu=True)
        # contextual encoder / decoder
        self.enc0 = Seq(Conv(k + c, c, 1, relu=True), *_blocks(c, cfg.blocks))
        self.enc1 = Down(c, c, relu=True)
        self.enc2 = Seq(Conv(2 * c, m, 1, relu=True), Conv(m, m, 1))
        self.q_enc = QScale(m, 2.0, 0.5)
        self.q_dec = QScale(m, 2.0, 0.5)
        self.prior = LatentPrior(m, cfg.hyper, c, cfg.prior_width, cfg.checkerboard)
        self.dec1 = Seq(Conv(m + c, c, 1, relu=True), Block(c), Up(c, c, 1, relu=True))
        self.dec0 = Seq(Conv(2 * c, c, 1, relu=True), *_blocks(c, cfg.blocks + 1))
        self.head = Conv(c, k, 1)
        # latent_skip: the decoded latent also reaches the picture through one linear layer
        # (1x1 conv + pixel shuffle, a learned 16x16 block transform), so the distortion's
        # gradient reaches the latent at full strength from the start of training
        self.skip = Up(m, k, 1) if cfg.latent_skip else None

    # ------------------------------------------------------------------ training

    def contexts(self, ref: Tensor, feature: Tensor, flow: Tensor) -> Contexts:
        pred = warp_picture(ref, flow)
        c0 = self.ctx0(torch.cat([warp(feature, flow), pred], 1))
        c1 = self.ctx1(c0)
        return Contexts(pred, c0, c1, self.tprior(c1))

    def motion_latent(self, flow: Tensor, q: Tensor) -> Tensor:
        return self.mv_enc(flow) / self.mv_q_enc(q)

    def frame_latent(self, x: Tensor, ctx: Contexts, q: Tensor) -> Tensor:
        h = self.enc1(self.enc0(torch.cat([x, ctx.c0], 1)))
        return self.enc2(torch.cat([h, ctx.c1], 1)) / self.q_enc(q)

    def synthesis(self, y_dec: Tensor, ctx: Contexts) -> tuple[Tensor, Tensor]:
        f = self.dec0(torch.cat([self.dec1(torch.cat([y_dec, ctx.c1], 1)), ctx.c0], 1))
        x_hat = ctx.pred + self.head(f)
        return (x_hat if self.skip is None else x_hat + self.skip(y_dec)), f

    def forward(
        self,
        x: Tensor,
        ref: Tensor,
        feature: Tensor,
        flow: Tensor,
        q: Tensor,
        noisy_decoder: bool = False,
    ) -> FrameOutput:
        """x, ref: (B, 96, H/8, W/8); feature: (B, C, ...) the temporal feature (already the
        adaptor's output on refresh); flow: (B, 2, H/8, W/8) estimated motion."""
        mo = self.mv_prior(self.motion_latent(flow, q), None, noisy_decoder)
        flow_hat = self.mv_dec(mo.y_hat * self.mv_q_dec(q))
        ctx = self.contexts(ref, feature, flow_hat)
        po = self.prior(self.frame_latent(x, ctx, q), ctx.prior, noisy_decoder)
        x_hat, f = self.synthesis(po.y_hat * self.q_dec(q), ctx)
        return FrameOutput(x_hat, f, po.bits + mo.bits, flow_hat, ctx.pred)

    # ------------------------------------------------------------------ coding

    def exact_contexts(self, ref: Tensor, feature: Tensor, flow: Tensor) -> Contexts:
        pred = exact_warp_picture(ref, flow)
        fw = exact_warp(feature, torch.floor(flow * float(1 << WARP_BITS) / ONE))
        c0 = self.ctx0.exact(torch.cat([fw, pred], 1))
        c1 = self.ctx1.exact(c0)
        return Contexts(pred, c0, c1, self.tprior.exact(c1))

    def exact_flow(self, m_hat: Tensor, q: int) -> Tensor:
        return self.mv_dec.exact(scale_exact(m_hat, self.mv_q_dec.fixed(q)))

    def exact_synthesis(self, y_hat: Tensor, ctx: Contexts, q: int) -> tuple[Tensor, Tensor]:
        yd = scale_exact(y_hat, self.q_dec.fixed(q))
        up = self.dec1.exact(torch.cat([yd, ctx.c1], 1))
        f = self.dec0.exact(torch.cat([up, ctx.c0], 1))
        x_hat = ctx.pred + self.head.exact(f)
        if self.skip is not None:
            x_hat = x_hat + self.skip.exact(yd)
        return clamp_act(x_hat), f

    def latent_shapes(self, size: tuple[int, int]) -> tuple[tuple[int, int, int, int], ...]:
        h, w = size[0] // 2, size[1] // 2
        return (1, self.mv_prior.channels, h, w), (1, self.prior.channels, h, w)


class FMModel(nn.Module):
    """The whole codec model: intra + inter (+ a residual codec), one configuration."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.intra = IntraCodec(config)
        self.inter = InterCodec(config)
        # the image codec of the encoder's inter-frame residuals (codec.py), the intra
        # codec's architecture trained on residuals (train.py stage 4), when configured
        self.residual = IntraCodec(config) if config.residual_codec else None

    @property
    def residual_coder(self) -> IntraCodec:
        """The codec that codes inter residuals: the residual codec, or else the intra one."""
        return self.intra if self.residual is None else self.residual

    def exact_adapt(self, ref: Tensor) -> Tensor:
        """Temporal feature from a decoded picture (after intra frames and on refresh)."""
        return self.inter.adaptor.exact(ref)

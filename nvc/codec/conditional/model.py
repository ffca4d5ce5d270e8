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

import torch
from torch import Tensor, nn

from nvc.codec.conditional import frames as fr
from nvc.codec.conditional.image import TransformCodec
from nvc.codec.conditional.latent import (
    Q_LEVELS,
    SCALE_BITS,
    FrameOutput,
    LatentPrior,
    PriorOutput,
    QScale,
    checkerboard,
    scale_exact,
    ste_round,
)
from nvc.codec.conditional.layers import (
    ONE,
    WARP_BITS,
    Block,
    Conv,
    Down,
    Seq,
    Up,
    clamp_act_,
    exact_warp,
    upsample_nearest,
    warp,
)
from nvc.codec.entropy import SymbolReader, SymbolWriter
from nvc.errors import CodecError

LAMBDA_MIN = 16.0  # rate-distortion trade-off at q = 0: loss = lambda * MSE + bits per pixel
LAMBDA_MAX = 4096.0  # ... at q = 63 (MSE of values in [0, 1]); log-linear in between
# Inter residuals are amplified by 2**shift before the residual coder's analysis and
# attenuated by as much after its synthesis (a finer step than q alone gives a small
# signal); the encoder tries these shifts, training samples them (codec.py, train.py).
RESIDUAL_SHIFTS = (1, 2)


def lambda_of(q: Tensor, config: ModelConfig | None = None) -> Tensor:
    """lambda(q), log-linear between the model's lambda_min (q = 0) and lambda_max (q = 63);
    without a configuration, LAMBDA_MIN .. LAMBDA_MAX (the shipped model's range)."""
    lo, hi = (LAMBDA_MIN, LAMBDA_MAX) if config is None else (config.lambda_min, config.lambda_max)
    t = q.float() / (Q_LEVELS - 1)
    return torch.exp(math.log(lo) * (1 - t) + math.log(hi) * t)


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
    # The image codec of intra frames and residuals: "v1" (IntraCodec below: 1/16 latent of
    # `latent` channels after a 1x1 + ReLU stem, the shipped design, with a capacity ceiling)
    # or "v2" (image.TransformCodec: no bottleneck before quantization, 96-channel latent at
    # 1/8, DCT-initialised; the fields below size it)
    image: str = "v1"
    image_channels: int = 0  # v2: feature channels at 1/8 (>= 96)
    image_blocks: int = 0  # v2: residual blocks at 1/8 on each side
    image_hyper: int = 0  # v2: channels of its hyper-latent z (1/32)
    image_prior: int = 0  # v2: channels of its entropy-parameter networks
    lambda_min: float = LAMBDA_MIN  # training and encoder RD: lambda at q = 0
    lambda_max: float = LAMBDA_MAX  # ... at q = 63 (log-linear in between)

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
    # the realtime inter codec with the v2 image codec (intra and residuals) and a lambda
    # range that reaches high quality (lambda 65536: a step of ~4 codes, ~45 dB)
    "realtime2": ModelConfig(
        "realtime2",
        64,
        64,
        32,
        32,
        32,
        16,
        64,
        1,
        residual_codec=True,
        image="v2",
        image_channels=96,
        image_blocks=2,
        image_hyper=32,
        image_prior=64,
        lambda_min=256.0,
        lambda_max=65536.0,
    ),
}


def _blocks(c: int, n: int) -> list[nn.Module]:
    return [Block(c) for _ in range(n)]


# ---------------------------------------------------------------------------- intra


class IntraCodec(nn.Module):
    """Image codec for the first frame and intra refreshes (v1: a 1x1 + ReLU stem to C
    channels and a 1/16 latent of M channels; its unquantized autoencoder is lossy, see
    capacity.py)."""

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
        return self.enc(x) / self.q_enc(torch.tensor([q], device=x.device))

    def autoencode(self, x: Tensor, q: int) -> Tensor:
        """Float analysis then synthesis without quantization (the capacity check)."""
        qt = torch.tensor([q], device=x.device)
        return self.head(self.dec(self.enc(x) / self.q_enc(qt) * self.q_dec(qt)))

    def synthesize(self, y_hat: Tensor, q: int) -> Tensor:
        return self.head.exact(self.dec.exact(scale_exact(y_hat, self.q_dec.fixed(q))))

    def encode(
        self,
        y: Tensor,
        q: int,
        writer: SymbolWriter,
        lam: float | None = None,
        planes: bool = False,
    ) -> Tensor:
        """Code a latent; returns the reconstruction (fixed point, 96 channels). (`lam`,
        `planes`: the v2 codec's rate-distortion rounding and DPCM planes; this codec has
        neither.)"""
        return self.synthesize(self.prior.encode(y, None, writer), q)

    def decode(
        self, reader: SymbolReader, q: int, size: tuple[int, int], planes: bool = False
    ) -> Tensor:
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
    """The same in fixed point: flow (fixed, feature-grid units) -> 1/64-pixel integers.

    The integers of exact_warp on the luma plane (8x the flow, upsampled to its 8x8 blocks)
    and on the chroma planes (4x, 4x4 blocks), computed block by block in the 96-channel
    layout (_warp_planes_96), without forming the planes or per-pixel fields."""
    dy = torch.floor(flow * (8.0 * (1 << WARP_BITS)) / ONE)
    duv = torch.floor(flow * (4.0 * (1 << WARP_BITS)) / ONE)
    flat = ref.contiguous().view(-1)
    y96 = _warp_planes_96(flat, ref.shape, dy, 0, 1, 8) if bool(dy.any()) else ref[:, :64]
    uv96 = _warp_planes_96(flat, ref.shape, duv, 64, 2, 4) if bool(duv.any()) else ref[:, 64:]
    return torch.cat([y96, uv96], 1)


def _warp_planes_96(
    flat: Tensor, shape: torch.Size, disp64: Tensor, first: int, planes: int, s: int
) -> Tensor:
    """Warp `planes` planes stored from channel `first` of a (B, 96, h, w) picture (flat:
    its values, contiguous) as pixel-unshuffled s x s blocks (channel first + plane * s * s
    + i * s + j holds pixel (y * s + i, x * s + j) at (y, x)), with one displacement per
    block (disp64: (B, 2, h, w), 1/64 pixel). Returns (B, planes * s * s, h, w).

    Bit for bit exact_warp on the planes with the displacement upsampled: each block's
    (s + 1)^2 source pixels (rows and columns clamped to the plane, as there) are gathered
    straight from the 96-channel layout, in the output's channel order, then interpolated
    with the block's weights in exact integer arithmetic (sums below 2**42)."""
    b, ch, h, w = shape
    dev = flat.device
    unit = float(1 << WARP_BITS)
    iy = torch.floor(disp64[:, 1] / unit)  # (B, h, w)
    ix = torch.floor(disp64[:, 0] / unit)
    ay = (disp64[:, 1] - iy * unit).unsqueeze(1)  # (B, 1, h, w): broadcasts over taps
    ax = (disp64[:, 0] - ix * unit).unsqueeze(1)
    taps = torch.arange(s + 1, device=dev).view(1, s + 1, 1, 1)
    rows = iy.long().unsqueeze(1) + taps + torch.arange(h, device=dev).view(1, 1, h, 1) * s
    cols = ix.long().unsqueeze(1) + taps + torch.arange(w, device=dev).view(1, 1, 1, w) * s
    rows = rows.clamp_(0, h * s - 1)  # (B, s + 1, h, w): source plane rows of each tap
    cols = cols.clamp_(0, w * s - 1)
    hw = h * w
    # offset of plane pixel (Y, X) in the flat picture: rows and columns contribute apart
    row_off = (rows % s) * (s * hw) + torch.div(rows, s, rounding_mode="floor") * w
    col_off = (cols % s) * hw + torch.div(cols, s, rounding_mode="floor")
    batch = (torch.arange(b, device=dev) * (ch * hw)).view(b, 1, 1, 1, 1, 1)
    plane = (torch.arange(planes, device=dev) * (s * s * hw) + first * hw).view(
        1, planes, 1, 1, 1, 1
    )
    # (B, planes, s + 1 rows, s + 1 cols, h, w)
    idx = batch + plane + row_off.view(b, 1, s + 1, 1, h, w) + col_off.view(b, 1, 1, s + 1, h, w)
    p = flat.index_select(0, idx.view(-1)).view(idx.shape)
    wx = ax.view(b, 1, 1, 1, h, w)
    wy = ay.view(b, 1, 1, h, w)
    horiz = (p[:, :, :, :-1] * (unit - wx)).add_(p[:, :, :, 1:] * wx)  # (B, P, s+1, s, h, w)
    acc = (horiz[:, :, :-1] * (unit - wy.unsqueeze(2))).add_(horiz[:, :, 1:] * wy.unsqueeze(2))
    acc.add_(float(1 << (2 * WARP_BITS - 1))).mul_(1.0 / (unit * unit)).floor_()
    return acc.view(b, planes * s * s, h, w)


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
        c0 = self.ctx0.exact_parts([fw, pred])
        c1 = self.ctx1.exact(c0)
        return Contexts(pred, c0, c1, self.tprior.exact(c1))

    def exact_flow(self, m_hat: Tensor, q: int) -> Tensor:
        return self.mv_dec.exact(scale_exact(m_hat, self.mv_q_dec.fixed(q)))

    def exact_synthesis(self, y_hat: Tensor, ctx: Contexts, q: int) -> tuple[Tensor, Tensor]:
        yd = scale_exact(y_hat, self.q_dec.fixed(q))
        up = self.dec1.exact_parts([yd, ctx.c1])
        f = self.dec0.exact_parts([up, ctx.c0])
        x_hat = self.head.exact(f).add_(ctx.pred)
        if self.skip is not None:
            x_hat.add_(self.skip.exact(yd))
        return clamp_act_(x_hat), f

    def latent_shapes(self, size: tuple[int, int]) -> tuple[tuple[int, int, int, int], ...]:
        h, w = size[0] // 2, size[1] // 2
        return (1, self.mv_prior.channels, h, w), (1, self.prior.channels, h, w)


ImageCodec = IntraCodec | TransformCodec  # the two image codec designs


def image_codec(config: ModelConfig, dc: bool = False) -> ImageCodec:
    """The configured image codec (intra frames, residuals); `dc`: see TransformCodec."""
    if config.image == "v1":
        return IntraCodec(config)
    if config.image == "v2":
        return TransformCodec(config, dc)
    raise CodecError(f"unknown fm image codec {config.image!r}")


class FMModel(nn.Module):
    """The whole codec model: intra + inter (+ a residual codec), one configuration."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.intra = image_codec(config, dc=True)
        self.inter = InterCodec(config)
        # the image codec of the encoder's inter-frame residuals (codec.py), the intra
        # codec's architecture trained on residuals (train.py stage 4), when configured
        self.residual = image_codec(config) if config.residual_codec else None

    @property
    def residual_coder(self) -> ImageCodec:
        """The codec that codes inter residuals: the residual codec, or else the intra one."""
        return self.intra if self.residual is None else self.residual

    def exact_adapt(self, ref: Tensor) -> Tensor:
        """Temporal feature from a decoded picture (after intra frames and on refresh)."""
        return self.inter.adaptor.exact(ref)


__all__ = [
    "LAMBDA_MAX",
    "LAMBDA_MIN",
    "Q_LEVELS",
    "RESIDUAL_SHIFTS",
    "SCALE_BITS",
    "VARIANTS",
    "Contexts",
    "FMModel",
    "FrameOutput",
    "ImageCodec",
    "InterCodec",
    "IntraCodec",
    "LatentPrior",
    "ModelConfig",
    "PriorOutput",
    "QScale",
    "TransformCodec",
    "checkerboard",
    "image_codec",
    "lambda_of",
    "scale_exact",
    "ste_round",
]

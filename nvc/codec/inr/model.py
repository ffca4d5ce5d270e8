"""The INR network (one configurable family) and the HNeRV content encoder.

    stem "pe":    t -> PE(t) (B, 2L) -> MLP -> (B, C0 * h0 * w0) -> reshape (B, C0, h0, w0)
    stem "embed": per-frame embedding (B, d, h0, w0), sent in FRAME units -> conv -> (B, C0, h0, w0)
    blocks:       (B, C_i, h, w) -> (B, C_i+1, 2h, 2w), optionally modulated by MLP(PE(t))
    head:         (B, C_n, h, w) -> (B, 3, H', W'), H' = h0 * stride >= H (cropped by frames.py);
                  with head_shuffle a conv to 12 channels and a PixelShuffle(2)

The three output channels are the stream's colour space scaled to [0, 1]: Y, Cb + 1/2,
Cr + 1/2 for YUV streams, R, G, B for RGB streams.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nvc.codec.inr.blocks import (
    QUANT_MODES,
    QConv,
    UpBlock,
    activation,
    positional_encoding,
    shuffle,
)
from nvc.codec.inr.config import ModelConfig
from nvc.codec.inr.grid import FeatureGrids
from nvc.errors import CodecError


class InrNet(nn.Module):
    """The decoder network. `forward(pe, emb, exact)`; see the module docstring."""

    def __init__(self, cfg: ModelConfig, grid: tuple[int, int], embed_bits: int = 6) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed_hi = float((1 << (embed_bits - 1)) - 1)  # embeddings: signed embed_bits ints
        self.grid = grid
        self.mode = "ste"  # training mode of the embeddings (see set_mode)
        h0, w0 = grid
        c = cfg.channels
        q = {"act_bits": cfg.act_bits, "per_channel": cfg.per_channel}
        pe_dim = 2 * cfg.pe_levels
        self.stem_mlp: nn.ModuleList | None = None
        self.stem_conv: QConv | None = None
        if cfg.stem == "pe":
            self.stem_mlp = nn.ModuleList(
                [
                    QConv(pe_dim, cfg.hidden, 1, per_channel=False, act_bits=cfg.act_bits),
                    QConv(cfg.hidden, c[0] * h0 * w0, 1, per_channel=False, act_bits=cfg.act_bits),
                ]
            )
        else:
            self.stem_conv = QConv(cfg.embed_dim, c[0], 3, **q)  # type: ignore[arg-type]
            self.stem_conv.pixels = h0 * w0
        self.t_mlp = (
            QConv(pe_dim, cfg.hidden, 1, per_channel=False, act_bits=cfg.act_bits)
            if cfg.modulation
            else None
        )
        blocks = []
        h, w = h0, w0
        for i, k in enumerate(cfg.kernels):
            act = "sine" if i < cfg.sin_blocks else cfg.act
            mod_dim = cfg.hidden if cfg.modulation else 0
            g = cfg.grid_channels[i] if cfg.grid_channels else 0
            block = UpBlock(
                c[i], c[i + 1], k, act, scrb=cfg.scrb, skip=cfg.skip, mod_dim=mod_dim, grid=g, **q
            )
            block.set_pixels(h, w)
            blocks.append(block)
            h, w = 2 * h, 2 * w
        self.blocks = nn.ModuleList(blocks)
        self.grids = FeatureGrids(cfg, grid) if cfg.has_grids else None
        self.head = QConv(c[-1], 12 if cfg.head_shuffle else 3, cfg.head_kernel, **q)  # type: ignore[arg-type]
        self.head.pixels = h * w
        self.out_size = (2 * h, 2 * w) if cfg.head_shuffle else (h, w)
        with torch.no_grad():  # start near mid-grey: deep stacks otherwise start far off
            self.head.weight.mul_(0.1)
            self.head.bias.fill_(0.5)

    @property
    def layers(self) -> list[QConv]:
        """Every quantized layer, in the fixed order the bitstream uses."""
        return [m for m in self.modules() if isinstance(m, QConv)]

    def macs(self) -> int:
        """Multiply-accumulates of one frame's exact decode (convs and linear layers)."""
        return sum(layer.macs for layer in self.layers)

    def forward(
        self,
        pe: Tensor | None,
        emb: Tensor | None,
        exact: bool = False,
        t: Tensor | None = None,
        subpixel: bool = False,
    ) -> Tensor:
        """pe: (B, 2L, 1, 1) frame-index encoding; emb: (B, d, h0, w0) embedding (integers
        in exact mode, floats in training); t: (B,) frame positions (i + 0.5) / group_size,
        needed with feature grids -> (B, 3, H', W'). `subpixel` (training, a shuffling
        head): the head's (B, 12, H'/2, W'/2) before the shuffle, for frames.subpixel_loss."""
        act, hsw = activation(self.cfg.act, exact), activation("hswish", exact)
        tfeat = None
        if self.t_mlp is not None:
            tfeat = hsw(self.t_mlp(pe, exact))  # (B, hidden, 1, 1)
        if self.stem_mlp is not None:
            x = hsw(self.stem_mlp[0](pe, exact))  # (B, hidden, 1, 1)
            x = act(self.stem_mlp[1](x, exact))  # (B, C0 * h0 * w0, 1, 1)
            x = x.reshape(x.shape[0], self.cfg.channels[0], *self.grid)  # (B, C0, h0, w0)
        else:
            if emb is None:
                raise CodecError("an embedding-stem INR needs the frame's embedding")
            step = None if exact else self.embed_step()
            x = act(self.stem(emb, exact, quantized_input=exact, a_step=step))  # (B, C0, h0, w0)
        x = x.contiguous(memory_format=torch.channels_last)
        grids: dict[int, Tensor] = {}
        if self.grids is not None:
            if t is None:
                raise CodecError("an INR with feature grids needs the frame positions")
            grids = self.grids.features(t, exact)
        for i, block in enumerate(self.blocks):
            x = block(x, tfeat, exact, grids.get(i))  # (B, C_i+1, 2h, 2w)
        out = self.head(x, exact)  # (B, 3 or 12, H'', W'')
        if subpixel and self.cfg.head_shuffle:
            return out  # (B, 12, H'/2, W'/2)
        return shuffle(out) if self.cfg.head_shuffle else out  # (B, 3, H', W')

    @property
    def stem(self) -> QConv:
        """The embedding stem's convolution (configurations with stem "embed" only)."""
        if self.stem_conv is None:
            raise CodecError(f"the INR stem is {self.cfg.stem!r}, not an embedding stem")
        return self.stem_conv

    def embed_step(self) -> Tensor:
        """The embedding step: the embeddings' running maximum maps to embed_hi."""
        return self.stem.a_max / self.embed_hi

    def quantize_embedding(self, emb: Tensor) -> tuple[Tensor, Tensor]:
        """Training: (the embedding as the stem sees it, its integers), straight-through."""
        if self.training and self.stem.observing:
            self.stem.observe(emb)
        step = self.embed_step()
        q = torch.clamp(emb / step, -self.embed_hi - 1, self.embed_hi)
        if self.mode == "noise":
            q = q + (torch.rand_like(q) - 0.5)
        elif self.mode == "ste":
            q = q + (torch.round(q) - q).detach()
        return q * step, q

    def set_observing(self, on: bool) -> None:
        """Whether training steps update the layers' input ranges (every few steps will do)."""
        for layer in self.layers:
            layer.observing = on

    def set_mode(self, mode: str) -> None:
        """Training mode of every layer and of the embeddings (blocks.QUANT_MODES)."""
        if mode not in QUANT_MODES:
            raise CodecError(f"unknown training mode {mode!r} (modes: {', '.join(QUANT_MODES)})")
        self.mode = mode
        for layer in self.layers:
            layer.mode = mode
        if self.grids is not None:
            self.grids.mode = mode

    def grid_rate_bits(self) -> Tensor | float:
        """Rate proxy of the feature grids' integers (0 without grids)."""
        return self.grids.rate_bits() if self.grids is not None else 0.0

    def grid_bits(self) -> float:
        """Empirical entropy of the feature grids' integers (0 without grids)."""
        return self.grids.empirical_bits() if self.grids is not None else 0.0

    def pe(self, t: Tensor) -> Tensor | None:
        if self.cfg.stem == "pe" or self.cfg.modulation:
            return positional_encoding(t, self.cfg.pe_levels)
        return None


def network_cost(cfg: ModelConfig, grid: tuple[int, int]) -> tuple[int, int]:
    """(coded parameters, MACs per frame) of InrNet(cfg, grid), without building it.

    Mirrors InrNet's layers (a test checks it against the real network). The feature grids'
    values are not parameters here (their number depends on the group's length: see
    grid.grid_values); their channels are counted in the convs that read them."""
    params = macs = 0

    def conv(cin: int, cout: int, k: int, pixels: int, groups: int = 1) -> None:
        nonlocal params, macs
        params += cout * (cin // groups) * k * k + cout
        macs += pixels * cout * (cin // groups) * k * k

    c, (h, w), pe = cfg.channels, grid, 2 * cfg.pe_levels
    if cfg.stem == "pe":
        conv(pe, cfg.hidden, 1, 1)
        conv(cfg.hidden, c[0] * h * w, 1, 1)
    else:
        conv(cfg.embed_dim, c[0], 3, h * w)
    if cfg.modulation:
        conv(pe, cfg.hidden, 1, 1)
    for i, k in enumerate(cfg.kernels):
        cin, cout = c[i], c[i + 1]
        g = cfg.grid_channels[i] if cfg.grid_channels else 0
        if cfg.scrb:
            conv(cin, cin, 3, h * w, groups=cin)
            conv(cin, cin, 1, h * w)
        conv(cin + g, 4 * cout, k, h * w)
        if cfg.skip and cin != cout:
            conv(cin, cout, 1, h * w)
        if cfg.modulation:
            conv(cfg.hidden, cout, 1, 1)
        h, w = 2 * h, 2 * w
        if cfg.scrb:
            conv(cout, cout, 3, h * w, groups=cout)
            conv(cout, cout, 1, h * w)
    conv(c[-1], 12 if cfg.head_shuffle else 3, cfg.head_kernel, h * w)
    return params, macs


class ContentEncoder(nn.Module):
    """HNeRV's content encoder, small: frame (B, 3, H', W') -> embedding (B, d, h0, w0).

    PixelUnshuffle(4), a 1x1 conv, then stride-2 3x3 convs down to the stem grid, plus a
    1x1 projection of the frame's block means (a thumbnail), so the embeddings carry the
    picture from the first step on (otherwise training sits on the mean colour for a long
    while). It runs only in the encoder; it is never transmitted.
    """

    def __init__(self, log2_stride: int, embed_dim: int, width: int = 32) -> None:
        super().__init__()
        first = min(log2_stride, 2)
        self.stride = 1 << log2_stride
        self.unshuffle = 1 << first
        self.inp = nn.Conv2d(3 * self.unshuffle**2, width, 1)
        self.down = nn.ModuleList(
            [nn.Conv2d(width, width, 3, stride=2, padding=1) for _ in range(log2_stride - first)]
        )
        self.out = nn.Conv2d(width, embed_dim, 1)
        self.thumb = nn.Conv2d(3, embed_dim, 1)
        with torch.no_grad():
            self.out.weight.mul_(0.1)

    def forward(self, x: Tensor) -> Tensor:
        thumb = self.thumb(F.avg_pool2d(x, self.stride) - 0.5)  # (B, d, h0, w0)
        x = F.pixel_unshuffle(x, self.unshuffle).contiguous(memory_format=torch.channels_last)
        x = F.gelu(self.inp(x))
        for conv in self.down:
            x = F.gelu(conv(x))
        return self.out(x) + thumb

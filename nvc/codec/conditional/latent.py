"""Pieces shared by the fm codec's networks: quantization scalers (feature modulation) and
the entropy model of one latent (hyperprior, optional temporal prior, checkerboard context),
each with a float training path and an exact fixed-point coding path (layers.py)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from nvc.codec.conditional import dpcm
from nvc.codec.conditional.layers import (
    ACT_LIMIT,
    FRAC_BITS,
    ONE,
    Conv,
    Seq,
    Up,
    clamp_act,
    crop,
    fixed_round_shift,
)
from nvc.codec.entropy import (
    FactorizedPrior,
    GaussianConditional,
    SymbolReader,
    SymbolWriter,
    detmath,
)
from nvc.codec.entropy.coder import indexed_cost_bits
from nvc.codec.entropy.conditional import rd_round, round_symbols
from nvc.errors import CodecError

Q_LEVELS = 64  # quality indices 0 (lowest rate) .. 63 (highest quality)
SCALE_BITS = 16  # fraction bits of the fixed-point quantization scalers


@dataclass
class FrameOutput:
    x_hat: Tensor  # (B, 96, H/8, W/8) reconstruction, network values
    feature: Tensor | None  # (B, C, H/8, W/8) decoder feature (inter) for the next frame
    bits: Tensor  # (B,) estimated bits
    flow_hat: Tensor | None = None  # (B, 2, H/8, W/8) decoded motion (inter)
    pred: Tensor | None = None  # (B, 96, H/8, W/8) motion-compensated reference (inter)


def ste_round(x: Tensor) -> Tensor:
    return x + (torch.round(x) - x).detach()


def checkerboard(h: int, w: int, device: torch.device | None = None) -> Tensor:
    """(1, 1, h, w) bool: the anchors (coded first) where (row + col) is even."""
    r = torch.arange(h, device=device).view(h, 1)
    c = torch.arange(w, device=device).view(1, w)
    return ((r + c) % 2 == 0).view(1, 1, h, w)


@functools.lru_cache(maxsize=32)
def _checkerboard_split(h: int, w: int) -> tuple[Tensor, Tensor]:
    """Flat positions (row-major over h x w) of the checkerboard's anchors and of the rest."""
    flat = checkerboard(h, w).reshape(-1)
    return torch.nonzero(flat).view(-1), torch.nonzero(~flat).view(-1)


# The taps of the 3x3 spatial context that can be non-zero at a non-anchor: its four
# neighbours are anchors, its centre and diagonals are non-anchors (still zero then).
_NEIGHBOUR_TAPS = ((0, 1), (1, 0), (1, 2), (2, 1))


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

    def __init__(
        self,
        channels: int,
        hyper: int,
        temporal: int,
        width: int,
        spatial: bool,
        dc_channels: tuple[int, ...] = (),
        z_planes: bool = False,
    ) -> None:
        super().__init__()
        m = channels
        self.channels, self.hyper, self.spatial = m, hyper, spatial
        if dc_channels and not spatial:
            raise CodecError("DPCM-coded DC channels need the checkerboard context")
        self.dc_channels = dc_channels  # channels that may be DPCM-coded (encode's `planes`)
        self.z_planes = z_planes  # z channels may be DPCM-coded too (encode's `planes`)
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
        return self.fuse.exact(hp) if temporal is None else self.fuse.exact_parts([hp, temporal])

    def _levels(self, scales: Tensor) -> np.ndarray:
        s = scales.reshape(-1).to(torch.int64)
        bounds: Tensor = self._bounds  # type: ignore[assignment]
        return torch.searchsorted(bounds, s, right=True).numpy().astype(np.uint8)

    def encode(
        self,
        y: Tensor,
        temporal: Tensor | None,
        writer: SymbolWriter,
        rd_weights: np.ndarray | None = None,
        planes: bool = False,
    ) -> Tensor:
        """Code y (1, M, h, w) float; returns the decoder's y_hat in fixed point. With
        `rd_weights` (M,), the bits one unit of squared error costs in each channel, the
        symbols are chosen by rate-distortion rounding (entropy.conditional.rd_round)
        instead of rounding: an encoder decision, the decoder is the same. With `planes`
        (fm version 4), each channel of `dc_channels` and, with `z_planes`, of z carries a
        mode and is DPCM-coded (dpcm.py) where that takes fewer bits than its model."""
        with torch.no_grad():
            z = self.h_a(y.float())
        z_int = torch.from_numpy(round_symbols(z.to(torch.float64).numpy())).to(torch.float64)
        z_int = z_int.reshape(z.shape)
        self._put_z(writer, z_int, planes and self.z_planes)
        base = self._exact_base(z_int, temporal, (y.shape[2], y.shape[3]))
        y64 = y.detach().to("cpu", torch.float64)
        if not self.spatial:
            mu, sc = self.head1.exact(base).chunk(2, 1)
            return self._put(y64, mu, sc, writer, rd_weights)
        known: dict[int, tuple[int, np.ndarray]] = {}
        if planes and self.dc_channels:
            known = self._dc_choice(base, y64, rd_weights)
            dpcm.put_modes(
                writer, [known[c][0] if c in known else dpcm.CONTEXT for c in self.dc_channels]
            )
            for c in self.dc_channels:
                if c in known:
                    dpcm.put_plane(writer, known[c][1], known[c][0])
        dc_planes = {c: k.reshape(-1) for c, (_, k) in known.items()}
        return self._checkerboard(
            base,
            y64,
            lambda v, mu, sc, at: self._put(v, mu, sc, writer, rd_weights, dc_planes, at),
        )

    def _put_z(self, writer: SymbolWriter, z_int: Tensor, planes: bool) -> None:
        """Code z (1, hyper, hz, wz) integers: with the factorized prior, or with `planes`
        (fm version 4) a flag per channel, the DPCM modes of the flagged channels, the
        others with the factorized prior, then the flagged ones DPCM-coded: a channel is
        flagged where that costs fewer bits (a bias-driven near-constant channel of an
        all-zero residual costs ~0 then instead of several bits a position)."""
        tables = self.z_prior.tables
        zc = z_int[0].numpy().astype(np.int64)  # (hyper, hz, wz)
        n = zc[0].size
        modes = [dpcm.CONTEXT] * self.hyper
        if planes:
            for c in range(self.hyper):
                own = indexed_cost_bits(zc[c].reshape(-1), np.full(n, c, np.uint8), tables)
                mode, bits = dpcm.best_mode(zc[c])
                if bits + dpcm.MODE_BITS < own:
                    modes[c] = mode
            dpcm.put_flags(writer, [m != dpcm.CONTEXT for m in modes])
            dpcm.put_modes(writer, [m for m in modes if m != dpcm.CONTEXT])
        rest = np.array([c for c in range(self.hyper) if modes[c] == dpcm.CONTEXT], np.uint8)
        writer.put_indexed(zc[rest].reshape(-1), np.repeat(rest, n), tables)
        for c in range(self.hyper):
            if modes[c] != dpcm.CONTEXT:
                dpcm.put_plane(writer, zc[c], modes[c])

    def _get_z(
        self, reader: SymbolReader, zshape: tuple[int, int, int, int], planes: bool
    ) -> Tensor:
        """z as _put_z coded it, (1, hyper, hz, wz) float64 integers."""
        _, hyper, hz, wz = zshape
        n = hz * wz
        modes = [dpcm.CONTEXT] * hyper
        if planes:
            flags = dpcm.get_flags(reader, hyper)
            coded = dpcm.get_modes(reader, sum(flags))
            if dpcm.CONTEXT in coded:
                raise CodecError("a DPCM-coded z channel has no DPCM mode")
            it = iter(coded)
            modes = [next(it) if f else dpcm.CONTEXT for f in flags]
        rest = np.array([c for c in range(hyper) if modes[c] == dpcm.CONTEXT], np.uint8)
        z = np.zeros((hyper, hz, wz), dtype=np.int64)
        z[rest] = reader.get_indexed(np.repeat(rest, n), self.z_prior.tables).reshape(-1, hz, wz)
        for c in range(hyper):
            if modes[c] != dpcm.CONTEXT:
                z[c] = dpcm.get_plane(reader, (hz, wz), modes[c])
        return torch.from_numpy(z.astype(np.float64)).view(1, hyper, hz, wz)

    def _dc_choice(
        self, base: Tensor, y64: Tensor, rd_weights: np.ndarray | None
    ) -> dict[int, tuple[int, np.ndarray]]:
        """channel -> (mode, integers) of the DC channels that DPCM codes in fewer bits than
        the context model (measured by coding the latent without writing it)."""
        tables = self.cond.tables
        bits = np.zeros(self.channels)

        def cost(v: Tensor | None, mu: Tensor, sc: Tensor, at: Tensor) -> Tensor:
            if v is None:
                raise CodecError("nothing to code")
            mu = mu.reshape(v.shape)
            d = (v - mu / ONE).numpy()
            levels = self._levels(sc)
            ints = self._symbols(d, levels, rd_weights)
            rel = ints.reshape(-1) - tables.lo[levels]
            inside = (rel >= 0) & (rel < tables.size[levels])
            nl = tables.neg_log2[tables.offsets[levels] + np.where(inside, rel, 0)]
            bits[:] += np.where(inside, nl, 32.0).reshape(self.channels, -1).sum(1)
            return clamp_act(torch.from_numpy(ints).to(torch.float64) * ONE + mu)

        self._checkerboard(base, y64, cost)
        out = {}
        for c in self.dc_channels:
            k = round_symbols(y64[0, c].numpy())
            mode, dc_bits = dpcm.best_mode(k)
            if dc_bits < bits[c]:
                out[c] = (mode, k)
        return out

    def _checkerboard(
        self,
        base: Tensor,
        y64: Tensor | None,
        code: Callable[[Tensor | None, Tensor, Tensor, Tensor], Tensor],
    ) -> Tensor:
        """The two checkerboard steps of a (1, M, h, w) latent: the anchors with the
        hyperprior's parameters, then the rest with parameters that also see the decoded
        anchors (sctx). Each parameter network runs only where its output is used, and
        sctx only over its taps that can be non-zero there (the same integers as the full
        networks at those positions). `code(values, mu, sc, positions)` codes (or
        decodes, values None) the symbols of one step at those flat positions,
        channel-major, and returns their y_hat."""
        _, width, h, w = base.shape
        anchors, rest = _checkerboard_split(h, w)
        m = self.channels
        y_hat = torch.zeros((1, m, h, w), dtype=torch.float64)
        flat = y_hat.view(m, h * w)
        y_flat = None if y64 is None else y64.reshape(m, h * w)
        mu, sc = self.head1.exact_at(base, anchors).chunk(2, 1)
        values = None if y_flat is None else y_flat[:, anchors]
        flat[:, anchors] = code(values, mu, sc, anchors).view(m, -1)
        ctx = self.sctx.exact_at(y_hat, rest, _NEIGHBOUR_TAPS)  # y_hat is 0 off the anchors
        base_rest = base.reshape(width, h * w).index_select(1, rest).view(1, width, 1, -1)
        mu2, sc2 = self.head2.exact_parts([base_rest, ctx]).chunk(2, 1)
        values = None if y_flat is None else y_flat[:, rest]
        flat[:, rest] = code(values, mu2, sc2, rest).view(m, -1)
        return y_hat

    def _symbols(
        self, d: np.ndarray, levels: np.ndarray, rd_weights: np.ndarray | None
    ) -> np.ndarray:
        """The symbols of the (channel-major) offsets d from the means."""
        if rd_weights is None:
            return round_symbols(d)
        w = np.repeat(np.asarray(rd_weights, dtype=np.float64), d.size // self.channels)
        return rd_round(d, levels, self.cond.tables, w).reshape(d.shape)

    def _put(
        self,
        y64: Tensor | None,
        mu: Tensor,
        sc: Tensor,
        writer: SymbolWriter,
        rd_weights: np.ndarray | None = None,
        planes: dict[int, np.ndarray] | None = None,
        at: Tensor | None = None,
    ) -> Tensor:
        """Code round(y - mu) (or its rate-distortion rounding, see encode) with the tables
        of sc's levels; returns y_hat, shaped like y (channel-major, batch 1). Channels in
        `planes` (DPCM-coded already: their integers over the whole latent) are not coded
        here; their y_hat at the flat positions `at` is those integers."""
        if y64 is None:
            raise CodecError("nothing to code")
        mu = mu.reshape(y64.shape)
        ints = self._symbols((y64 - mu / ONE).numpy(), self._levels(sc), rd_weights)
        y_hat = clamp_act(torch.from_numpy(ints).to(torch.float64) * ONE + mu)
        coded = self._coded_rows(planes, y_hat, at)
        rows = ints.reshape(self.channels, -1)[coded]
        writer.put_indexed(
            rows.reshape(-1).astype(np.int64),
            self._levels(sc.reshape(self.channels, -1)[coded]),
            self.cond.tables,
            trusted=True,
        )
        return y_hat

    def _coded_rows(
        self, planes: dict[int, np.ndarray] | None, y_hat: Tensor, at: Tensor | None
    ) -> list[int]:
        """The channels the context model codes; puts the DPCM planes' values into y_hat
        (channel-major (M, ...) at the positions `at`)."""
        if not planes:
            return list(range(self.channels))
        if at is None:
            raise CodecError("DPCM planes given without the positions they fill")
        rows = y_hat.view(self.channels, -1)
        for c, k in planes.items():
            rows[c] = torch.from_numpy(k[at.numpy()]).to(torch.float64) * ONE
        rows.clamp_(-ACT_LIMIT, ACT_LIMIT)
        return [c for c in range(self.channels) if c not in planes]

    def decode(
        self,
        reader: SymbolReader,
        y_shape: tuple[int, int, int, int],
        temporal: Tensor | None,
        planes: bool = False,
    ) -> Tensor:
        """y_hat (fixed point) from the stream: bit-exactly the encoder's."""
        z_int = self._get_z(reader, self.z_shape(y_shape), planes and self.z_planes)
        base = self._exact_base(z_int, temporal, (y_shape[2], y_shape[3]))
        if not self.spatial:
            mu, sc = self.head1.exact(base).chunk(2, 1)
            return self._get(reader, mu, sc)
        dc_planes: dict[int, np.ndarray] = {}
        if planes and self.dc_channels:
            modes = dpcm.get_modes(reader, len(self.dc_channels))
            for c, mode in zip(self.dc_channels, modes, strict=True):
                if mode != dpcm.CONTEXT:
                    k = dpcm.get_plane(reader, (y_shape[2], y_shape[3]), mode)
                    dc_planes[c] = k.reshape(-1)
        return self._checkerboard(
            base, None, lambda _, mu, sc, at: self._get(reader, mu, sc, dc_planes, at)
        )

    def _get(
        self,
        reader: SymbolReader,
        mu: Tensor,
        sc: Tensor,
        planes: dict[int, np.ndarray] | None = None,
        at: Tensor | None = None,
    ) -> Tensor:
        """Decode symbols with the tables of sc's levels; returns y_hat = q + mu (the
        DPCM planes' values where `planes` has them, see _put)."""
        m = self.channels
        rows = [c for c in range(m) if not planes or c not in planes]
        levels = self._levels(sc.reshape(m, -1)[rows])
        sym = reader.get_indexed(levels, self.cond.tables, trusted=True)
        q = torch.zeros((m, levels.size // max(len(rows), 1)), dtype=torch.float64)
        q[rows] = torch.from_numpy(sym.astype(np.float64)).view(len(rows), -1)
        y_hat = clamp_act(q.view(mu.shape) * ONE + mu)
        if planes:
            self._coded_rows(planes, y_hat, at)
        return y_hat

"""Factorized prior: one learned, non-parametric density per channel (Ballé et al. 2018).

The cumulative of each channel's density is a small monotone network
c(x) = sigmoid(f_K(... f_1(x))), f_k(x) = softplus(H_k) x + b_k, followed for all but the
last layer by x + tanh(a_k) * tanh(x) (appendix 6.1 of "Variational image compression
with a scale hyperprior"). The probability of the integer v is c(v + .5) - c(v - .5).

Training uses the torch network. Coding uses integer tables that `update()` builds by
re-evaluating the same network with `detmath` in float64: reproducible bits from the
same parameters on any machine, so the decoder rebuilds exactly the encoder's tables.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from nvc.codec.entropy import coder, detmath
from nvc.codec.entropy.likelihood import Quantize, lower_bound, quantize
from nvc.codec.entropy.tables import CodingTables, counts_from_probabilities
from nvc.errors import CodecError

MAX_RADIUS = 1 << 12  # tables never extend beyond +-4096; values further out escape


@dataclass
class FactorizedOutput:
    """What `FactorizedPrior.forward` returns."""

    y_hat: Tensor  # (B, C, ...) quantized (or noisy, in training) values
    likelihoods: Tensor  # (B, C, ...) probability of each value under the prior


class FactorizedPrior(nn.Module):
    """Per-channel learned density over integers, for training and for coding.

    channels: number of channels C (dimension 1 of the tensors it models).
    hidden: widths of the hidden layers of the per-channel CDF network.
    init_scale: rough initial spread of the density.
    tail_mass: probability left outside each channel's table (coded as escapes).
    likelihood_bound: smallest likelihood reported in training (keeps the loss finite).
    """

    def __init__(
        self,
        channels: int,
        hidden: Sequence[int] = (3, 3, 3),
        init_scale: float = 10.0,
        tail_mass: float = 1e-9,
        likelihood_bound: float = 1e-9,
    ) -> None:
        super().__init__()
        if channels < 1 or any(h < 1 for h in hidden) or not init_scale > 0:
            raise CodecError("FactorizedPrior needs channels >= 1, hidden >= 1, init_scale > 0")
        if not 0 < tail_mass < 0.1:
            raise CodecError(f"tail_mass must be in (0, 0.1), got {tail_mass}")
        self.channels = channels
        self.tail_mass = tail_mass
        self.likelihood_bound = likelihood_bound
        dims = (1, *hidden, 1)
        depth = len(dims) - 1
        step_scale = init_scale ** (1.0 / depth)
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for k in range(depth):
            init = math.log(math.expm1(1.0 / step_scale / dims[k + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[k + 1], dims[k]), init)))
            self.biases.append(
                nn.Parameter(torch.empty(channels, dims[k + 1], 1).uniform_(-0.5, 0.5))
            )
            if k < depth - 1:
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[k + 1], 1)))
        self._tables: CodingTables | None = None
        self._fingerprint = b""

    # ------------------------------------------------------------------ training

    def logits_cumulative(self, x: Tensor) -> Tensor:
        """Logit of the CDF. x: (C, 1, N) -> (C, 1, N)."""
        for k, (matrix, bias) in enumerate(zip(self.matrices, self.biases, strict=True)):
            x = torch.matmul(F.softplus(matrix), x) + bias  # (C, d_{k+1}, N)
            if k < len(self.factors):
                x = x + torch.tanh(self.factors[k]) * torch.tanh(x)
        return x

    def likelihood(self, y_hat: Tensor) -> Tensor:
        """Probability of each value's unit bin. y_hat: (B, C, ...) -> same shape."""
        flat = self._channels_first(y_hat)  # (C, 1, N)
        lower = self.logits_cumulative(flat - 0.5)
        upper = self.logits_cumulative(flat + 0.5)
        sign = -torch.sign(lower + upper).detach()  # evaluate on the side with small values
        lik = (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs()
        lik = lower_bound(lik, self.likelihood_bound)
        return self._channels_back(lik, y_hat.shape)

    def forward(self, y: Tensor, quantize_mode: Quantize | None = None) -> FactorizedOutput:
        """y: (B, C, ...). Noise in training mode, rounding otherwise, unless told."""
        mode = quantize_mode or ("noise" if self.training else "round")
        y_hat = quantize(y, mode)  # (B, C, ...)
        return FactorizedOutput(y_hat=y_hat, likelihoods=self.likelihood(y_hat))

    def _channels_first(self, y: Tensor) -> Tensor:
        if y.dim() < 2 or y.shape[1] != self.channels:
            raise CodecError(f"expected (B, {self.channels}, ...), got {tuple(y.shape)}")
        return y.transpose(0, 1).reshape(self.channels, 1, -1)

    @staticmethod
    def _channels_back(flat: Tensor, shape: torch.Size) -> Tensor:
        swapped = (shape[1], shape[0], *shape[2:])
        return flat.reshape(swapped).transpose(0, 1)

    # ------------------------------------------------------------------ tables

    def _numpy_params(self) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        def grab(ps: nn.ParameterList) -> list[np.ndarray]:
            return [p.detach().to("cpu", torch.float64).numpy() for p in ps]

        return grab(self.matrices), grab(self.biases), grab(self.factors)

    def _param_fingerprint(self) -> bytes:
        h = hashlib.sha256()
        for p in self.parameters():
            h.update(p.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        h.update(repr(self.tail_mass).encode())
        return h.digest()

    def update(self, force: bool = False) -> bool:
        """Build the integer tables from the current parameters; True if rebuilt.

        Called automatically by compress/decompress when the parameters changed.
        """
        fp = self._param_fingerprint()
        if not force and self._tables is not None and fp == self._fingerprint:
            return False
        self._tables = build_factorized_tables(*self._numpy_params(), self.tail_mass)
        self._fingerprint = fp
        return True

    @property
    def tables(self) -> CodingTables:
        self.update()
        tables = self._tables
        if tables is None:  # unreachable: update() always sets it
            raise CodecError("factorized tables are missing")
        return tables

    # ------------------------------------------------------------------ coding

    def _symbol_layout(self, shape: Sequence[int]) -> tuple[int, npt.NDArray[np.uint16]]:
        if len(shape) < 2 or shape[1] != self.channels or any(int(s) < 0 for s in shape):
            raise CodecError(f"expected shape (B, {self.channels}, ...), got {tuple(shape)}")
        per_channel = int(np.prod(shape)) // self.channels if self.channels else 0
        idx = np.repeat(np.arange(self.channels, dtype=np.uint16), per_channel)
        return per_channel, idx

    def symbols(self, y: Tensor) -> np.ndarray:
        """Integer symbols round(y), channel-major (C, B * ...) flattened, validated."""
        flat = y.detach().transpose(0, 1).reshape(-1).to("cpu", torch.float64).numpy()
        return coder.as_symbols(np.rint(flat))

    def compress(self, y: Tensor) -> bytes:
        """Round y (B, C, ...) to integers and code them. Values beyond the tables escape."""
        _, idx = self._symbol_layout(y.shape)
        return coder.encode_indexed(self.symbols(y), idx, self.tables)

    def decompress(self, data: bytes, shape: Sequence[int]) -> Tensor:
        """Inverse of `compress`: the integer values as float32 of the given shape."""
        _, idx = self._symbol_layout(shape)
        sym = coder.decode_indexed(data, idx, self.tables)
        swapped = (shape[1], shape[0], *shape[2:])
        out = torch.from_numpy(sym.astype(np.float32)).reshape(swapped).transpose(0, 1)
        return out.contiguous().to(self.biases[0].device)

    def cost_bits(self, y_hat: Tensor) -> float:
        """Exact model cost of coding round(y_hat) under the integer tables."""
        _, idx = self._symbol_layout(y_hat.shape)
        return coder.indexed_cost_bits(self.symbols(y_hat), idx, self.tables)


def _np_logits(
    x: np.ndarray, mats: list[np.ndarray], biases: list[np.ndarray], factors: list[np.ndarray]
) -> np.ndarray:
    """The CDF network in detmath float64. x: (C, 1, N) -> (C, 1, N). Fixed summation order."""
    for k, (m, b) in enumerate(zip(mats, biases, strict=True)):
        w = detmath.softplus(m)  # (C, out, in)
        acc = w[:, :, 0:1] * x[:, 0:1, :]
        for i in range(1, w.shape[2]):
            acc = acc + w[:, :, i : i + 1] * x[:, i : i + 1, :]
        x = acc + b
        if k < len(factors):
            x = x + detmath.tanh(factors[k]) * detmath.tanh(x)
    return x


def build_factorized_tables(
    mats: list[np.ndarray],
    biases: list[np.ndarray],
    factors: list[np.ndarray],
    tail_mass: float,
) -> CodingTables:
    """Integer tables of each channel over the integers where its CDF is in
    [tail/2, 1 - tail/2] (clamped to +-MAX_RADIUS), plus an escape slot."""
    channels = mats[0].shape[0]
    target = float(detmath.log(np.float64(2.0 / tail_mass - 1.0)))  # logit(1 - tail/2)

    def find(level: float) -> np.ndarray:  # x with logits(x) = level, per channel
        lo = np.full(channels, -float(MAX_RADIUS))
        hi = np.full(channels, float(MAX_RADIUS))
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            val = _np_logits(mid[:, None, None], mats, biases, factors)[:, 0, 0]
            above = val > level
            hi = np.where(above, mid, hi)
            lo = np.where(above, lo, mid)
        return 0.5 * (lo + hi)

    lo_edge = np.floor(find(-target)).astype(np.int64)
    hi_edge = np.ceil(find(target)).astype(np.int64)
    lo_edge = np.clip(lo_edge, -MAX_RADIUS, MAX_RADIUS - 1)
    hi_edge = np.clip(np.maximum(hi_edge, lo_edge + 1), -MAX_RADIUS + 1, MAX_RADIUS)
    sizes = hi_edge - lo_edge + 1
    width = int(sizes.max())
    edges = lo_edge[:, None] + np.arange(width + 1)[None, :] - 0.5  # (C, width + 1)
    logits = _np_logits(edges[:, None, :], mats, biases, factors)[:, 0, :]
    sign = -np.sign(logits[:, 1:] + logits[:, :-1])
    pmf = np.abs(detmath.sigmoid(sign * logits[:, 1:]) - detmath.sigmoid(sign * logits[:, :-1]))
    rows = []
    for c in range(channels):
        n = int(sizes[c])
        below = detmath.sigmoid(logits[c, 0])
        above = detmath.sigmoid(-logits[c, n])
        probs = np.concatenate([pmf[c, :n], [below + above]])
        rows.append(counts_from_probabilities(probs)[0])
    return CodingTables(lo_edge, rows)

"""The decoded state of a free-viewpoint frame: 3D Gaussians as integers.

Every decoder that has read the same units holds exactly these integers (the float
parameters the renderer gets are exact functions of them), and `crc()` is what each unit
carries so that a decoder or a player can tell that it has drifted from the encoder.

Units (value 1 means), ranges inclusive (see /work/notes/gaussian3d-api.md):

- means (N, 3): 2**U world units, U the stream's signed `unit` exponent; |v| <= 2**24;
- log_scales (N, 3): 1/64 natural-log unit, sigma = 2**U exp(v / 64); |v| <= 1024;
- quats (N, 4): 2**-12, (w, x, y, z), written with w >= 0; |v| <= 4096;
- opacity (N,): 1/32 of a logit, alpha = sigmoid(v / 32); |v| <= 512;
- sh0 (N, 3): 1/256 of a degree-0 SH coefficient; |v| <= 1024.

Quantization steps are powers of two of these units (`Steps3D`); every range is a
multiple of every allowed step, so clamping keeps a state on its lattice.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from nvc.codec.gaussian.fit3d import Gaussians3D
from nvc.errors import BitstreamError

IntArray = npt.NDArray[np.int64]

ATTRIBUTES3D = ("means", "log_scales", "quats", "opacity", "sh0")  # coding order
WIDTHS = (3, 3, 4, 1, 3)  # columns per attribute
LIMITS = (1 << 24, 1024, 4096, 512, 1024)  # |value| bound per attribute
SCALE_UNIT = 64  # log_scales per natural-log unit
QUAT_UNIT = 4096  # quats per unit
OPACITY_UNIT = 32  # opacity values per logit
COLOUR_UNIT = 256  # sh0 values per SH coefficient
MAX_STEP = 12  # largest step exponent a stream may use
MAX_GAUSSIANS3D = 1 << 20  # most Gaussians in a state


def _column_limits() -> IntArray:
    return np.repeat(np.array(LIMITS, np.int64), WIDTHS)


@dataclass(frozen=True)
class Steps3D:
    """Power-of-two quantization steps (exponents) of the five attribute groups."""

    position: int  # means step 2**k (in 2**U world units)
    scale: int  # log_scales step 2**k / 64
    rotation: int  # quats step 2**k / 4096
    opacity: int  # opacity step 2**k / 32
    colour: int  # sh0 step 2**k / 256

    def values(self) -> tuple[int, int, int, int, int]:
        return (self.position, self.scale, self.rotation, self.opacity, self.colour)

    def exponents(self) -> IntArray:
        """The exponent of each of the 14 columns."""
        return np.repeat(np.array(self.values(), np.int64), WIDTHS)

    def to_bytes(self) -> bytes:
        return bytes(self.values())

    @classmethod
    def read(cls, data: bytes, pos: int) -> tuple[Steps3D, int]:
        if pos + 5 > len(data):
            raise BitstreamError("gaussian 3D unit is truncated (quantization steps)")
        values = data[pos : pos + 5]
        if max(values) > MAX_STEP:
            raise BitstreamError(f"gaussian 3D unit has a quantization step above 2**{MAX_STEP}")
        return cls(*values), pos + 5


def steps3d_for(q: int) -> Steps3D:
    """The steps of quality index q (0 coarsest .. 63 finest), level = q // 16."""
    level = q // 16
    return Steps3D(
        position=5 - level,
        scale=max(0, 3 - level // 2),
        rotation=max(1, 6 - level),
        opacity=max(0, 2 - level // 2),
        colour=max(0, 4 - level),
    )


@dataclass(frozen=True, eq=False)
class State3D:
    """N integer 3D Gaussians (module docstring); arrays int64."""

    means: IntArray  # (N, 3)
    log_scales: IntArray  # (N, 3)
    quats: IntArray  # (N, 4)
    opacity: IntArray  # (N,)
    sh0: IntArray  # (N, 3)

    @property
    def count(self) -> int:
        return int(self.opacity.shape[0])

    def columns(self) -> list[IntArray]:
        """The 14 columns: x y z, s0 s1 s2, qw qx qy qz, o, c0 c1 c2."""
        out: list[IntArray] = []
        for name in ATTRIBUTES3D:
            a = getattr(self, name)
            out += [a] if a.ndim == 1 else [a[:, i] for i in range(a.shape[1])]
        return out

    def matrix(self) -> IntArray:
        """(N, 14) int64: the columns side by side."""
        return np.stack(self.columns(), axis=1) if self.count else np.zeros((0, 14), np.int64)

    @classmethod
    def from_matrix(cls, m: IntArray) -> State3D:
        m = np.ascontiguousarray(m, dtype=np.int64).reshape(-1, 14)
        return cls(
            m[:, 0:3].copy(),
            m[:, 3:6].copy(),
            m[:, 6:10].copy(),
            m[:, 10].copy(),
            m[:, 11:14].copy(),
        )

    @classmethod
    def from_columns(cls, cols: list[IntArray]) -> State3D:
        if len(cols) != 14:
            raise ValueError(f"expected 14 columns, got {len(cols)}")
        return cls.from_matrix(np.stack([np.asarray(c, np.int64) for c in cols], axis=1))

    def take(self, index: IntArray) -> State3D:
        return State3D.from_matrix(self.matrix()[index])

    def clamp(self) -> State3D:
        lim = _column_limits()
        return State3D.from_matrix(np.clip(self.matrix(), -lim, lim))

    def in_range(self) -> bool:
        return bool(np.all(np.abs(self.matrix()) <= _column_limits()))

    def equal(self, other: State3D) -> bool:
        return self.count == other.count and bool(np.array_equal(self.matrix(), other.matrix()))

    def crc(self) -> int:
        """CRC-32 of the count (u32le) and the 14 columns as int32 little-endian, in order."""
        crc = zlib.crc32(self.count.to_bytes(4, "little"))
        for c in self.columns():
            crc = zlib.crc32(np.ascontiguousarray(c, dtype="<i4").tobytes(), crc)
        return crc


def to_float(state: State3D, unit: int) -> Gaussians3D:
    """The float32 parameters the renderer gets (exact functions of the integers)."""
    scale = 2.0**unit
    return Gaussians3D(
        torch.tensor(state.means.astype(np.float64) * scale, dtype=torch.float32),
        torch.tensor(state.log_scales / SCALE_UNIT + unit * math.log(2.0), dtype=torch.float32),
        torch.tensor(state.quats / QUAT_UNIT, dtype=torch.float32),
        torch.tensor(state.opacity / OPACITY_UNIT, dtype=torch.float32),
        torch.tensor(state.sh0 / COLOUR_UNIT, dtype=torch.float32),
    )


def quantize(g: Gaussians3D, unit: int, steps: Steps3D) -> State3D:
    """The nearest state on the steps' lattice (quaternions normalised, w >= 0), clamped."""
    k = steps.exponents()
    m = np.round(quantize_float(g, unit) / (1 << k)).astype(np.int64) << k
    return State3D.from_matrix(m).clamp()


def residual(
    prev: State3D,
    cur: Gaussians3D,
    unit: int,
    steps: Steps3D,
    *,
    move: npt.NDArray[np.bool_] | None = None,
    update: npt.NDArray[np.bool_] | None = None,
    dead_zone: float = 0.35,
) -> State3D:
    """The state prev + d, d the rounded residual of `cur` in steps with a dead zone
    (|r| below 1 - dead_zone steps is zero); positions only where `move` (the gates) is
    True, the other attributes only where `update` is (all when None). Quaternions are
    not renormalised (the renderer normalises), so an untouched one has no residual.
    Clamped to the ranges."""
    target = quantize_float(cur, unit, normalize=False)
    d = (target - prev.matrix()) / (1 << steps.exponents())
    r = (np.sign(d) * np.floor(np.abs(d) + dead_zone)).astype(np.int64)
    if move is not None:
        r[~move, 0:3] = 0
    if update is not None:
        r[~update, 3:] = 0
    return State3D.from_matrix(prev.matrix() + (r << steps.exponents())).clamp()


def quantize_float(g: Gaussians3D, unit: int, *, normalize: bool = True) -> np.ndarray:
    """(N, 14) float64: g in the state's units, not rounded; quaternions normalised with
    w >= 0 (as quantize writes them) unless `normalize` is False."""
    means = g.means.detach().double().numpy() / 2.0**unit
    logs = (g.log_scales.detach().double().numpy() - unit * math.log(2.0)) * SCALE_UNIT
    q = g.quats.detach().double().numpy()
    if normalize:
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        q = np.where(q[:, :1] < 0, -q, q)
    q = q * QUAT_UNIT
    opa = g.opacity_logits.detach().double().numpy()[:, None] * OPACITY_UNIT
    sh = g.sh0.detach().double().numpy().reshape(-1, 3) * COLOUR_UNIT
    out = np.concatenate([means, logs, q, opa, sh], axis=1)
    big = float(1 << 26)
    return np.nan_to_num(out, nan=0.0, posinf=big, neginf=-big).clip(-big, big)


def unit_for(cameras_centres: np.ndarray) -> int:
    """The position unit exponent U of a rig: about its extent / 2**14 (at least 2**-20)."""
    c = np.asarray(cameras_centres, np.float64).reshape(-1, 3)
    extent = float(np.abs(c).max()) if c.size else 1.0
    extent = max(extent, float(np.ptp(c, axis=0).max()) if len(c) > 1 else 0.0, 1e-3)
    return max(-20, min(20, math.floor(math.log2(extent)) - 13))

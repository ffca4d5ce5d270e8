"""Integer tables of the exact 2D renderer, built with reproducible float64 math.

Every number the decoder uses to turn Gaussian parameters into pixels is an integer from
these tables (or integer arithmetic on them), so every decoder renders the same bits.
The tables are computed once per process from `nvc.codec.entropy.detmath` (IEEE-754
+, -, *, / and rint only, in a fixed order) and a Taylor series for cos/sin, so they are
the same on every machine; `table_digest()` is tested against a golden value.

Units (see README.md):
- positions in 1/16 pixel (`POS_ONE` = 16 per pixel);
- log-scales `s` in 1/8 octave: sigma = 2**(s / 8) / 4 pixels, s in 0..SCALE_MAX;
- angles `a` in pi/256: the axis of sigma_1 is rotated by a * pi / 256, a in 0..255;
- colours in 2**-12 of full scale; weights in 2**-12.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np
import numpy.typing as npt

from nvc.codec.entropy import detmath

IntArray = npt.NDArray[np.int64]

POS_BITS = 4  # positions are in 1/16 pixel
POS_ONE = 1 << POS_BITS
SCALE_MAX = 56  # sigma = 2**(s/8) / 4 pixels: 0.25 .. 32 pixels
ANGLES = 256  # angle steps over [0, pi)
COLOR_BITS = 12  # colours in 2**-12 of full scale
COLOR_LIMIT = 4 << COLOR_BITS  # |colour| <= 4 full scales
WEIGHT_BITS = 12  # exp table values in 2**-12
TRIG_BITS = 14  # cos / sin in 2**-14
CONIC_BITS = 24  # inverse covariance in 2**-24 per pixel**2
COV_BITS = 8  # covariance in 2**-8 pixel**2
Q_FRACTION = 6  # the exp table is indexed by q = d' inv(Sigma) d in steps of 2**-6
Q_CUT = 10  # q at and beyond which a Gaussian contributes nothing (exp(-5) ~ 0.7%)
EXP_SIZE = Q_CUT << Q_FRACTION  # entries of the exp table; the last one is 0
# q_scaled = A dx^2 + 2 B dx dy + C dy^2 with dx in 1/16 px and A in 2**-24 / px^2 is q at
# scale 2**(24 + 8); the table index drops all but Q_FRACTION of its fraction bits.
Q_SHIFT = CONIC_BITS + 2 * POS_BITS - Q_FRACTION
MAX_EXTENT = 128  # largest half window of a Gaussian in pixels
# Half windows in pixels (about 2**(1/4) apart): a Gaussian's window is its exact extent
# rounded up to one of these, so Gaussians share a few window sizes.
LADDER = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 19, 23, 27, 32, 38, 45, 54, 64, 76, 91, 108, 128)


def _cos_sin(x: npt.NDArray[np.float64]) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of |x| <= pi/2 by Taylor series (fixed order, IEEE ops only)."""
    x2 = x * x
    c = np.ones_like(x)
    s = np.ones_like(x)
    for n in range(22, 0, -1):  # Horner from the highest term
        c = 1.0 - c * x2 / ((2 * n - 1) * (2 * n))
        s = 1.0 - s * x2 / ((2 * n) * (2 * n + 1))
    return c, s * x


@functools.lru_cache(maxsize=1)
def trig() -> tuple[IntArray, IntArray]:
    """(COS, SIN) of a * pi / 256 for a in 0..255, rounded to 2**-14."""
    a = np.arange(ANGLES, dtype=np.float64)
    pi = 3.141592653589793
    # reduce to |x| <= pi/2: angles above pi/2 are pi/2 + y with cos = -sin y, sin = cos y
    upper = a >= ANGLES // 2
    x = np.where(upper, a - ANGLES // 2, a) * (pi / ANGLES)
    c, s = _cos_sin(x)
    cos = np.where(upper, -s, c)
    sin = np.where(upper, c, s)
    one = float(1 << TRIG_BITS)
    return np.rint(cos * one).astype(np.int64), np.rint(sin * one).astype(np.int64)


@functools.lru_cache(maxsize=1)
def scales() -> tuple[IntArray, IntArray]:
    """(INV2, VAR): 1 / sigma**2 in 2**-24 / px**2 and sigma**2 in 2**-8 px**2, per s."""
    s = np.arange(SCALE_MAX + 1, dtype=np.float64)
    # sigma**2 = 2**(s/4) / 16 px**2
    two_s4 = detmath.exp(s * (0.6931471805599453 / 4.0))
    inv2 = np.rint(16.0 * float(1 << CONIC_BITS) / two_s4).astype(np.int64)
    var = np.rint(two_s4 * float(1 << COV_BITS) / 16.0).astype(np.int64)
    return inv2, np.maximum(var, 1)


@functools.lru_cache(maxsize=1)
def exp_table() -> IntArray:
    """EXP[i] = round(2**12 * exp(-q / 2)) at the middle q of bin i; the last entry is 0."""
    q = (np.arange(EXP_SIZE, dtype=np.float64) + 0.5) / float(1 << Q_FRACTION)
    table = np.rint(detmath.exp(-0.5 * q) * float(1 << WEIGHT_BITS)).astype(np.int64)
    table[-1] = 0
    return table


def table_digest() -> str:
    """SHA-256 of every table, for the golden test (a change is a bitstream change)."""
    h = hashlib.sha256()
    ladder = np.asarray(LADDER, dtype=np.int64)
    for t in (*trig(), *scales(), exp_table(), ladder):
        h.update(np.ascontiguousarray(t, dtype="<i8").tobytes())
    return h.hexdigest()

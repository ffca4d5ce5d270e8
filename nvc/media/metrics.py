"""Quality and rate metrics: PSNR (plane, RGB, YUV 6:1:1), MS-SSIM and bits per pixel.

Conventions:

- PSNR = 10 log10(peak^2 / MSE), with MSE over all samples in float64; identical inputs
  give inf. The peak of an n-bit plane is 2^n - 1 (255, 1023).
- `psnr_rgb` compares RGB: when both frames are 8-bit (yuv 8-bit or rgb24) YUV is first
  converted to 8-bit RGB (BT.709, rounded), as learned-codec papers do, and the peak is
  255; otherwise both become float RGB in [0, 1] (unquantised) and the peak is 1.
- `psnr_yuv` compares planes of the reference's format (the distorted frame is converted
  to it when it differs; RGB references are compared as yuv444p / yuv444p10le) and
  weights them 6:1:1: (6 Y + U + V) / 8.
- Per-sequence values are arithmetic means of per-frame values (`mean_psnr`,
  `YuvPsnr.mean`), so one identical frame makes the mean inf.
- MS-SSIM is Wang, Simoncelli and Bovik (2003): 11-tap Gaussian window (sigma 1.5)
  applied "valid" (no padding), K1 = 0.01, K2 = 0.03, five scales with weights 0.0448,
  0.2856, 0.3001, 0.2363, 0.1333, 2x2 mean downsampling between scales (an odd size
  replicates its last row / column). Contrast-structure terms are clipped at 0 before the
  powers (as common implementations do). Multi-channel images get the mean of the
  per-channel values; Frames are compared in RGB in [0, 1] (or on luma with
  `channels="y"`). An image whose smaller side is too small for five scales
  (< 161 pixels: the coarsest scale must hold an 11x11 window) uses as many scales as fit,
  with the leading weights renormalised to sum to 1; below 11 pixels it is a MediaError.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from nvc.errors import MediaError
from nvc.media.color import convert, to_rgb_float
from nvc.media.frame import Frame

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW = 11  # Gaussian window size
SIGMA = 1.5  # Gaussian window standard deviation
K1 = 0.01
K2 = 0.03


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    """PSNR in dB between two arrays of the same shape; inf when they are identical."""
    if a.shape != b.shape:
        raise MediaError(f"cannot compare arrays of shapes {a.shape} and {b.shape}")
    if a.size == 0:
        raise MediaError("cannot compute the PSNR of empty arrays")
    diff = a.astype(np.float64) - b.astype(np.float64)
    mse = float(np.mean(diff * diff))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(float(peak) ** 2 / mse)


def mean_psnr(values: Iterable[float]) -> float:
    """Arithmetic mean of per-frame PSNR values (inf if any is inf)."""
    items = list(values)
    if not items:
        raise MediaError("no PSNR values to average")
    return float(sum(items) / len(items))


def _check_same_size(ref: Frame, dist: Frame) -> None:
    if (ref.width, ref.height) != (dist.width, dist.height):
        raise MediaError(
            f"cannot compare a {ref.width}x{ref.height} frame with a "
            f"{dist.width}x{dist.height} frame"
        )


def psnr_rgb(ref: Frame, dist: Frame) -> float:
    """PSNR of the two frames in RGB (see the module docstring for depth and peak)."""
    _check_same_size(ref, dist)
    if ref.pixel_format.bit_depth <= 8 and dist.pixel_format.bit_depth <= 8:
        a = convert(ref, "rgb24").planes[0]
        b = convert(dist, "rgb24").planes[0]
        return psnr(a, b, 255.0)
    return psnr(to_rgb_float(ref), to_rgb_float(dist), 1.0)


@dataclass(frozen=True)
class YuvPsnr:
    y: float  # PSNR of luma, dB
    u: float  # PSNR of Cb, dB
    v: float  # PSNR of Cr, dB
    weighted: float  # (6 y + u + v) / 8, dB

    @classmethod
    def mean(cls, items: Sequence[YuvPsnr]) -> YuvPsnr:
        """Per-component arithmetic mean over frames."""
        if not items:
            raise MediaError("no PSNR values to average")
        return cls(
            mean_psnr(i.y for i in items),
            mean_psnr(i.u for i in items),
            mean_psnr(i.v for i in items),
            mean_psnr(i.weighted for i in items),
        )


def psnr_yuv(ref: Frame, dist: Frame) -> YuvPsnr:
    """Per-plane PSNR and the 6:1:1 weighted PSNR in the reference's YUV format."""
    _check_same_size(ref, dist)
    fmt = ref.pixel_format
    if fmt.family == "rgb":
        ref = convert(ref, "yuv444p" if fmt.bit_depth <= 8 else "yuv444p10le")
        fmt = ref.pixel_format
    dist = convert(dist, ref.format, full_range=ref.full_range)
    peak = float(fmt.max_value)
    y, u, v = (psnr(a, b, peak) for a, b in zip(ref.planes, dist.planes, strict=True))
    return YuvPsnr(y, u, v, (6.0 * y + u + v) / 8.0)


def bpp(nbytes: int, frames: int, width: int, height: int) -> float:
    """Bits per pixel: 8 * nbytes / (frames * width * height)."""
    if nbytes < 0 or frames <= 0 or width <= 0 or height <= 0:
        raise MediaError(
            f"bpp needs nbytes >= 0 and positive frames, width, height; got "
            f"{nbytes}, {frames}, {width}, {height}"
        )
    return 8.0 * nbytes / (frames * width * height)


# -- MS-SSIM ----------------------------------------------------------------------------


def _gaussian() -> np.ndarray:
    x = np.arange(WINDOW, dtype=np.float64) - (WINDOW - 1) / 2
    g = np.exp(-(x * x) / (2 * SIGMA * SIGMA))
    return g / g.sum()


_KERNEL = _gaussian()


def _filter_valid(x: np.ndarray) -> np.ndarray:
    """Separable Gaussian filter over the last two axes, keeping only full windows."""
    h, w = x.shape[-2], x.shape[-1]
    rows = sum(_KERNEL[k] * x[..., k : k + h - WINDOW + 1, :] for k in range(WINDOW))
    return sum(_KERNEL[k] * rows[..., :, k : k + w - WINDOW + 1] for k in range(WINDOW))


def _downsample(x: np.ndarray) -> np.ndarray:
    """2x2 mean over the last two axes; odd sizes replicate the last row / column."""
    if x.shape[-2] % 2:
        x = np.concatenate([x, x[..., -1:, :]], axis=-2)
    if x.shape[-1] % 2:
        x = np.concatenate([x, x[..., :, -1:]], axis=-1)
    return 0.25 * (
        x[..., 0::2, 0::2] + x[..., 1::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 1::2]
    )


def _ssim_terms(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean SSIM and mean contrast-structure of (C, H, W) images in [0, 1]."""
    c1 = K1 * K1
    c2 = K2 * K2
    stats = _filter_valid(np.stack([x, y, x * x, y * y, x * y]))
    mx, my, xx, yy, xy = stats
    sx = xx - mx * mx
    sy = yy - my * my
    sxy = xy - mx * my
    cs = (2 * sxy + c2) / (sx + sy + c2)
    lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    return (lum * cs).mean(axis=(-2, -1)), cs.mean(axis=(-2, -1))


def ms_ssim_scales(width: int, height: int) -> int:
    """How many MS-SSIM scales (at most 5) a width x height image supports."""
    side = min(width, height)
    if side < WINDOW:
        raise MediaError(
            f"MS-SSIM needs images of at least {WINDOW}x{WINDOW}, got {width}x{height}"
        )
    scales = 1
    while scales < len(MS_SSIM_WEIGHTS):
        side = (side + 1) // 2
        if side < WINDOW:
            break
        scales += 1
    return scales


def _as_unit_image(x: Frame | np.ndarray, channels: str, data_range: float | None) -> np.ndarray:
    """A float64 (C, H, W) image scaled to [0, 1]."""
    if isinstance(x, Frame):
        if channels == "rgb":
            return np.moveaxis(to_rgb_float(x).astype(np.float64), -1, 0)
        if channels == "y":
            if x.pixel_format.family == "rgb":
                x = convert(x, "yuv444p" if x.pixel_format.bit_depth <= 8 else "yuv444p10le")
            return x.planes[0][None].astype(np.float64) / x.pixel_format.max_value
        raise MediaError(f"channels must be 'rgb' or 'y', got {channels!r}")
    a = np.asarray(x)
    if a.ndim == 2:
        a = a[None]
    elif a.ndim == 3:
        a = np.moveaxis(a, -1, 0)
    else:
        raise MediaError(f"MS-SSIM needs (H, W) or (H, W, C) images, got shape {a.shape}")
    if data_range is None:
        if a.dtype == np.uint8:
            data_range = 255.0
        elif a.dtype == np.uint16:
            data_range = 65535.0
        elif np.issubdtype(a.dtype, np.floating):
            data_range = 1.0
        else:
            raise MediaError(f"give data_range for {a.dtype} images")
    return a.astype(np.float64) / float(data_range)


def ms_ssim(
    ref: Frame | np.ndarray,
    dist: Frame | np.ndarray,
    *,
    channels: str = "rgb",
    data_range: float | None = None,
) -> float:
    """MS-SSIM in [0, 1] (1 for identical inputs); see the module docstring.

    Frames are compared in RGB (`channels="rgb"`) or on luma (`channels="y"`). Arrays are
    (H, W) or (H, W, C) with `data_range` defaulting to 255 (uint8), 65535 (uint16) or
    1 (floats).
    """
    x = _as_unit_image(ref, channels, data_range)
    y = _as_unit_image(dist, channels, data_range)
    if x.shape != y.shape:
        raise MediaError(f"cannot compare images of shapes {x.shape} and {y.shape}")
    scales = ms_ssim_scales(x.shape[2], x.shape[1])
    weights = np.asarray(MS_SSIM_WEIGHTS[:scales], dtype=np.float64)
    weights /= weights.sum()
    result = np.ones(x.shape[0], dtype=np.float64)
    for i in range(scales):
        ssim, cs = _ssim_terms(x, y)
        if i == scales - 1:
            result *= np.maximum(ssim, 0.0) ** weights[i]
        else:
            result *= np.maximum(cs, 0.0) ** weights[i]
            x, y = _downsample(x), _downsample(y)
    return float(np.mean(result))

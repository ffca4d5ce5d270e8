"""Colour conversion: RGB <-> Y'CbCr (the signalled matrix), chroma resampling, bit depth.

Conventions, all explicit:

- Matrix: the frame's (`Frame.colorspace.matrix`, BT.709 unless signalled otherwise), on
  gamma-encoded values (no linearisation): Y' = Kr R + Kg G + Kb B, Cb = (B - Y') / (2 - 2 Kb),
  Cr = (R - Y') / (2 - 2 Kr), with Kg = 1 - Kr - Kb. BT.709: Kr = 0.2126, Kb = 0.0722;
  BT.601 (bt470bg, smpte170m): 0.299, 0.114; BT.2020 non-constant luminance: 0.2627, 0.0593
  (also fcc and smpte240m; other matrices are a MediaError). Primaries and transfer are
  metadata only: nothing here converts between them.
- Levels of an n-bit sample, with s = 2 ** (n - 8):
  limited ("studio", the default) Y = 16 s + 219 s Y', C = 128 s + 224 s C;
  full ("JPEG") Y = (2 ** n - 1) Y', C = 2 ** (n - 1) + (2 ** n - 1) C.
- RGB samples: uint8 means 0..255, uint16 means 0..65535 (rgb48le), floats mean [0, 1].
- 4:2:0 subsampling takes the mean of each 2x2 block of full-resolution chroma (centre
  siting, as in JPEG / MPEG-1); an odd width or height first replicates the last column or
  row. Upsampling is the bilinear ("triangle") filter for centre-sited chroma (each output
  sample is 3/4 of the nearest chroma sample plus 1/4 of the next nearest, in each
  direction, with edge replication) followed by a mean correction: every 2x2 block is
  shifted by a constant so that its mean is exactly its chroma sample. So subsampling an
  upsampled plane gives the plane back (4:2:0 -> 4:4:4 / RGB -> 4:2:0 loses only the
  rounding), while edges stay smooth.
- All arithmetic is float32. Quantisation rounds half up (floor(x + 0.5)) and then clips
  to the whole code range [0, 2 ** n - 1] (limited-range headroom is kept, not clipped).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from nvc.errors import MediaError
from nvc.media.colorspace import BT709, MATRICES, ColorSpace
from nvc.media.formats import PixelFormat, pixel_format
from nvc.media.frame import Frame


def _levels(bit_depth: int, full_range: bool) -> tuple[float, float, float, float]:
    """(luma offset, luma scale, chroma offset, chroma scale) of n-bit code values."""
    if full_range:
        top = float((1 << bit_depth) - 1)
        return 0.0, top, float(1 << (bit_depth - 1)), top
    s = float(1 << (bit_depth - 8))
    return 16.0 * s, 219.0 * s, 128.0 * s, 224.0 * s


def quantize(x: np.ndarray, max_value: int, dtype: np.dtype) -> np.ndarray:
    """Round half up to integers, clip to [0, max_value] and cast to `dtype`."""
    q = np.floor(x + np.float32(0.5))
    np.clip(q, 0, max_value, out=q)
    return q.astype(dtype)


def rgb_as_float(rgb: np.ndarray) -> np.ndarray:
    """An (H, W, 3) RGB array as float32 in [0, 1] (uint8 /255, uint16 /65535, floats clipped)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise MediaError(f"RGB image must have shape (H, W, 3), got {rgb.shape}")
    if rgb.dtype.kind == "u" and rgb.dtype.itemsize == 1:
        return rgb.astype(np.float32) * np.float32(1.0 / 255.0)
    if rgb.dtype.kind == "u" and rgb.dtype.itemsize == 2:
        return rgb.astype(np.float32) * np.float32(1.0 / 65535.0)
    if np.issubdtype(rgb.dtype, np.floating):
        return np.clip(rgb, 0.0, 1.0).astype(np.float32)
    raise MediaError(f"RGB image must be uint8, uint16 or float, got {rgb.dtype}")


def downsample_chroma(c: np.ndarray, shift_x: int, shift_y: int) -> np.ndarray:
    """Mean of 2x2 (or 2x1 / 1x2) blocks; odd sizes replicate the last row / column first."""
    if shift_y:
        if c.shape[0] % 2:
            c = np.concatenate([c, c[-1:]], axis=0)
        c = (c[0::2] + c[1::2]) * np.float32(0.5)
    if shift_x:
        if c.shape[1] % 2:
            c = np.concatenate([c, c[:, -1:]], axis=1)
        c = (c[:, 0::2] + c[:, 1::2]) * np.float32(0.5)
    return c


def _upsample_axis(c: np.ndarray, axis: int, size: int) -> np.ndarray:
    """Double `c` along `axis` with the centre-sited bilinear filter, then crop to `size`."""
    c = np.moveaxis(c, axis, 0)
    prev = np.concatenate([c[:1], c[:-1]], axis=0)
    nxt = np.concatenate([c[1:], c[-1:]], axis=0)
    out = np.empty((2 * c.shape[0],) + c.shape[1:], dtype=np.float32)
    out[0::2] = np.float32(0.75) * c + np.float32(0.25) * prev
    out[1::2] = np.float32(0.75) * c + np.float32(0.25) * nxt
    return np.moveaxis(out[:size], 0, axis)


def upsample_chroma(
    c: np.ndarray, shift_x: int, shift_y: int, width: int, height: int
) -> np.ndarray:
    """Bring a subsampled chroma plane back to width x height (see the module docstring).

    Bilinear, then each block is shifted so that its mean equals its chroma sample:
    downsample_chroma(upsample_chroma(c)) == c up to float rounding.
    """
    if not (shift_x or shift_y):
        return c
    up = c
    if shift_y:
        up = _upsample_axis(up, 0, height)
    if shift_x:
        up = _upsample_axis(up, 1, width)
    residual = c - downsample_chroma(up, shift_x, shift_y)
    if shift_y:
        residual = np.repeat(residual, 2, axis=0)[:height]
    if shift_x:
        residual = np.repeat(residual, 2, axis=1)[:, :width]
    return up + residual


def rgb_float_to_ycbcr(
    rgb: np.ndarray, colorspace: ColorSpace = BT709
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float RGB in [0, 1] -> (Y' in [0, 1], Cb and Cr in [-0.5, 0.5]), all full resolution."""
    kr, kb = colorspace.luma_weights
    kg = 1.0 - kr - kb
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = np.float32(kr) * r + np.float32(kg) * g + np.float32(kb) * b
    cb = (b - y) * np.float32(1.0 / (2.0 * (1.0 - kb)))
    cr = (r - y) * np.float32(1.0 / (2.0 * (1.0 - kr)))
    return y, cb, cr


def ycbcr_to_rgb_float(
    y: np.ndarray, cb: np.ndarray, cr: np.ndarray, colorspace: ColorSpace = BT709
) -> np.ndarray:
    """Inverse of rgb_float_to_ycbcr on full-resolution planes; the result is not clipped."""
    kr, kb = colorspace.luma_weights
    r = y + np.float32(2.0 * (1.0 - kr)) * cr
    b = y + np.float32(2.0 * (1.0 - kb)) * cb
    g = (y - np.float32(kr) * r - np.float32(kb) * b) * np.float32(1.0 / (1.0 - kr - kb))
    return np.stack([r, g, b], axis=-1)


def same_matrix(a: ColorSpace, b: ColorSpace) -> bool:
    """True when Y'CbCr samples mean the same RGB under both (BT.601's two codes agree)."""
    return a.matrix == b.matrix or MATRICES[a.matrix][1] == MATRICES[b.matrix][1] is not None


def _yuv_format(format: str) -> PixelFormat:
    fmt = pixel_format(format)
    if fmt.family != "yuv":
        raise MediaError(f"{format} is not a YUV format")
    return fmt


def encode_ycbcr(
    y: np.ndarray, cb: np.ndarray, cr: np.ndarray, format: str, full_range: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised full-resolution Y'CbCr -> integer planes of `format` (subsampling chroma)."""
    fmt = _yuv_format(format)
    yo, ys, co, cs = _levels(fmt.bit_depth, full_range)
    cb = downsample_chroma(cb, fmt.chroma_shift_x, fmt.chroma_shift_y)
    cr = downsample_chroma(cr, fmt.chroma_shift_x, fmt.chroma_shift_y)
    top = fmt.max_value
    return (
        quantize(y * np.float32(ys) + np.float32(yo), top, fmt.dtype),
        quantize(cb * np.float32(cs) + np.float32(co), top, fmt.dtype),
        quantize(cr * np.float32(cs) + np.float32(co), top, fmt.dtype),
    )


def decode_ycbcr(
    planes: tuple[np.ndarray, ...] | list[np.ndarray], format: str, full_range: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer planes of `format` -> normalised Y'CbCr float32 at their own resolution."""
    fmt = _yuv_format(format)
    if len(planes) != 3:
        raise MediaError(f"{format} needs 3 planes, got {len(planes)}")
    yo, ys, co, cs = _levels(fmt.bit_depth, full_range)
    y = (planes[0].astype(np.float32) - np.float32(yo)) * np.float32(1.0 / ys)
    cb = (planes[1].astype(np.float32) - np.float32(co)) * np.float32(1.0 / cs)
    cr = (planes[2].astype(np.float32) - np.float32(co)) * np.float32(1.0 / cs)
    return y, cb, cr


def rgb_to_yuv(
    rgb: np.ndarray, format: str, full_range: bool = False, colorspace: ColorSpace = BT709
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RGB (H, W, 3) uint8 / uint16 / float in [0, 1] -> the three planes of a YUV `format`
    (with the matrix of `colorspace`)."""
    y, cb, cr = rgb_float_to_ycbcr(rgb_as_float(rgb), colorspace)
    return encode_ycbcr(y, cb, cr, format, full_range)


def _rgb_from_float(rgb: np.ndarray, out_dtype: np.dtype) -> np.ndarray:
    if out_dtype.kind == "u" and out_dtype.itemsize == 1:
        return quantize(rgb * np.float32(255.0), 255, out_dtype)
    if out_dtype.kind == "u" and out_dtype.itemsize == 2:
        return quantize(rgb * np.float32(65535.0), 65535, out_dtype)
    if np.issubdtype(out_dtype, np.floating):
        return np.clip(rgb, 0.0, 1.0).astype(out_dtype)
    raise MediaError(f"RGB output must be uint8, uint16 or float, got {out_dtype}")


def yuv_to_rgb(
    planes: tuple[np.ndarray, ...] | list[np.ndarray],
    format: str,
    full_range: bool = False,
    out_dtype: type | np.dtype | str = np.uint8,
    colorspace: ColorSpace = BT709,
) -> np.ndarray:
    """The planes of a YUV `format` -> RGB (H, W, 3): uint8 0..255, uint16 0..65535 or float [0, 1].

    Subsampled chroma is upsampled with the bilinear filter of the module docstring; the
    matrix is that of `colorspace`.
    """
    fmt = _yuv_format(format)
    y, cb, cr = decode_ycbcr(planes, format, full_range)
    height, width = y.shape
    cb = upsample_chroma(cb, fmt.chroma_shift_x, fmt.chroma_shift_y, width, height)
    cr = upsample_chroma(cr, fmt.chroma_shift_x, fmt.chroma_shift_y, width, height)
    return _rgb_from_float(ycbcr_to_rgb_float(y, cb, cr, colorspace), np.dtype(out_dtype))


def to_rgb_float(frame: Frame) -> np.ndarray:
    """The frame as (H, W, 3) float32 RGB in [0, 1] (YUV through its own matrix and range)."""
    if frame.pixel_format.family == "rgb":
        return rgb_as_float(frame.planes[0])
    return yuv_to_rgb(frame.planes, frame.format, frame.full_range, np.float32, frame.colorspace)


def convert(
    frame: Frame,
    format: str,
    *,
    full_range: bool | None = None,
    colorspace: ColorSpace | None = None,
) -> Frame:
    """The frame in another pixel format (and, for YUV targets, range and matrix); pts and
    time_base kept.

    `full_range=None` keeps the frame's range for YUV -> YUV and means limited range for
    RGB -> YUV; `colorspace=None` keeps the frame's colour metadata (its matrix is used both
    ways). YUV -> YUV with the same matrix stays in Y'CbCr (no RGB round trip): bit depth
    changes rescale the levels (for limited range exactly a shift by 2 bits), chroma is
    resampled as in the module docstring; with another matrix it goes through unclipped
    float RGB. The frame itself is returned when nothing changes.
    """
    dst = pixel_format(format)
    src = frame.pixel_format
    target = frame.colorspace if colorspace is None else colorspace
    if dst.family == "rgb":
        full_range = False
    elif full_range is None:
        full_range = frame.full_range if src.family == "yuv" else False
    if frame.format == format and frame.full_range == full_range and frame.colorspace == target:
        return frame
    rematrix = src.family == dst.family == "yuv" and not same_matrix(frame.colorspace, target)
    if frame.format == format and frame.full_range == full_range and not rematrix:
        return replace(frame, colorspace=target)  # only metadata changes
    planes: tuple[np.ndarray, ...]
    if dst.family == "rgb":
        if src.family == "rgb":
            rgb = rgb_as_float(frame.planes[0])
            planes = (_rgb_from_float(rgb, dst.dtype),)
        else:
            planes = (
                yuv_to_rgb(
                    frame.planes, frame.format, frame.full_range, dst.dtype, frame.colorspace
                ),
            )
    elif src.family == "rgb":
        planes = rgb_to_yuv(frame.planes[0], format, full_range, target)
    elif rematrix:
        y, cb, cr = decode_ycbcr(frame.planes, frame.format, frame.full_range)
        w, h = frame.width, frame.height
        cb = upsample_chroma(cb, src.chroma_shift_x, src.chroma_shift_y, w, h)
        cr = upsample_chroma(cr, src.chroma_shift_x, src.chroma_shift_y, w, h)
        rgb = ycbcr_to_rgb_float(y, cb, cr, frame.colorspace)
        planes = encode_ycbcr(*rgb_float_to_ycbcr(rgb, target), format, full_range)
    else:
        y, cb, cr = decode_ycbcr(frame.planes, frame.format, frame.full_range)
        if (src.chroma_shift_x, src.chroma_shift_y) != (dst.chroma_shift_x, dst.chroma_shift_y):
            w, h = frame.width, frame.height
            cb = upsample_chroma(cb, src.chroma_shift_x, src.chroma_shift_y, w, h)
            cr = upsample_chroma(cr, src.chroma_shift_x, src.chroma_shift_y, w, h)
            planes = encode_ycbcr(y, cb, cr, format, full_range)
        else:
            yo, ys, co, cs = _levels(dst.bit_depth, full_range)
            top = dst.max_value
            planes = (
                quantize(y * np.float32(ys) + np.float32(yo), top, dst.dtype),
                quantize(cb * np.float32(cs) + np.float32(co), top, dst.dtype),
                quantize(cr * np.float32(cs) + np.float32(co), top, dst.dtype),
            )
    return replace(frame, planes=planes, format=format, full_range=full_range, colorspace=target)

"""Pictures in and out of the model: 4:2:0 planes <-> the 96-channel 1/8-resolution tensor.

The model codes Y'CbCr 4:2:0 directly, as DCVC-FM's YUV420 mode does, and works at 1/8 of
the luma resolution from its first layer on, as DCVC-RT does: luma is pixel-unshuffled by 8
(64 channels) and each chroma plane by 4 (16 channels each), 96 channels in all.

- The internal format is yuv420p (8-bit sources) or yuv420p10le (deeper ones); other
  formats are converted on the way in and back on the way out (nvc.media.convert).
- Planes are padded by edge replication to a multiple of 16 luma pixels (the latent is at
  1/16) and cropped back after decoding.
- Network values: code / 2**bit_depth - 1/2 (a power-of-two scale, so the fixed-point form
  code * 2**(FRAC_BITS - bit_depth) - 2**(FRAC_BITS - 1) is exact). Reconstructions go back
  to codes by rounding half up and clipping: the decoder's output and the next frame's
  reference are these integers.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import numpy as np
import torch
from torch import Tensor

from nvc.codec.conditional.layers import FRAC_BITS
from nvc.errors import CodecError
from nvc.media import Frame, convert, pixel_format

CHANNELS = 96  # 64 luma + 16 + 16 chroma channels at 1/8 resolution
ALIGN = 16  # pictures are padded to multiples of this many luma pixels


def internal_format(format: str) -> str:
    """The 4:2:0 format a stream of `format` is coded in."""
    fmt = pixel_format(format)
    return "yuv420p" if fmt.bit_depth <= 8 else "yuv420p10le"


def bit_depth(internal: str) -> int:
    return pixel_format(internal).bit_depth


def padded_size(width: int, height: int) -> tuple[int, int]:
    return -(-width // ALIGN) * ALIGN, -(-height // ALIGN) * ALIGN


def _pad_edge(plane: np.ndarray, h: int, w: int) -> np.ndarray:
    ph, pw = h - plane.shape[0], w - plane.shape[1]
    if ph == 0 and pw == 0:
        return plane
    return np.pad(plane, ((0, ph), (0, pw)), mode="edge")


def frame_to_codes(frame: Frame, internal: str) -> Tensor:
    """A frame as code values (1, 96, Hp/8, Wp/8) float64 (integers), padded."""
    if frame.format != internal:
        frame = convert(frame, internal, full_range=frame.full_range)
    wp, hp = padded_size(frame.width, frame.height)
    y = _pad_edge(frame.planes[0], hp, wp).astype(np.float64)
    u = _pad_edge(frame.planes[1], hp // 2, wp // 2).astype(np.float64)
    v = _pad_edge(frame.planes[2], hp // 2, wp // 2).astype(np.float64)
    return planes_to_96(torch.from_numpy(y)[None, None], torch.from_numpy(np.stack([u, v]))[None])


def planes_to_96(y: Tensor, uv: Tensor) -> Tensor:
    """(B, 1, H, W) luma and (B, 2, H/2, W/2) chroma -> (B, 96, H/8, W/8): pixel-unshuffled
    by 8 and 4 (channel plane * s * s + i * s + j holds pixel (y * s + i, x * s + j)),
    as one reshape and permute each (the values of F.pixel_unshuffle, faster)."""
    b, _, hh, ww = y.shape
    h, w = hh // 8, ww // 8
    luma = y.reshape(b, 1, h, 8, w, 8).permute(0, 1, 3, 5, 2, 4).reshape(b, 64, h, w)
    chroma = uv.reshape(b, 2, h, 4, w, 4).permute(0, 1, 3, 5, 2, 4).reshape(b, 32, h, w)
    return torch.cat([luma, chroma], dim=1)


def split_96(x: Tensor) -> tuple[Tensor, Tensor]:
    """Inverse of planes_to_96 (the values of F.pixel_shuffle, faster)."""
    b, _, h, w = x.shape
    y = x[:, :64].reshape(b, 1, 8, 8, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, 1, 8 * h, 8 * w)
    uv = x[:, 64:].reshape(b, 2, 4, 4, h, w).permute(0, 1, 4, 2, 5, 3)
    return y, uv.reshape(b, 2, 4 * h, 4 * w)


def codes_to_net(codes: Tensor, depth: int) -> Tensor:
    """Code values -> float network values in [-1/2, 1/2)."""
    return (codes / float(1 << depth) - 0.5).to(torch.float32)


def codes_to_fixed(codes: Tensor, depth: int) -> Tensor:
    """Code values -> the same network values in fixed point (exact)."""
    return codes.to(torch.float64) * float(1 << (FRAC_BITS - depth)) - float(1 << (FRAC_BITS - 1))


def fixed_to_codes(x: Tensor, depth: int) -> Tensor:
    """Fixed-point network values -> code values: round half up, clip (exact).

    floor((x + 2**(FRAC_BITS - 1) + 2**(bits - 1)) / 2**bits), bits = FRAC_BITS - depth, in
    one expression: integer additions and a power-of-two scale are exact."""
    bits = FRAC_BITS - depth
    if bits <= 0:
        return (x + float(1 << (FRAC_BITS - 1))).clamp_(0, (1 << depth) - 1)
    offset = float((1 << (FRAC_BITS - 1)) + (1 << (bits - 1)))
    return x.add(offset).mul_(1.0 / float(1 << bits)).floor_().clamp_(0, (1 << depth) - 1)


def net_to_codes_ste(x: Tensor, depth: int) -> Tensor:
    """Training: network values rounded to the code grid and clipped, with a straight-through
    gradient (the reference the next frame sees is the rounded picture, as in coding)."""
    scale = float(1 << depth)
    q = torch.floor((x + 0.5) * scale + 0.5).clamp(0, scale - 1) / scale - 0.5
    return x + (q - x).detach()


def codes_to_frame(
    codes: Tensor,
    *,
    internal: str,
    out_format: str,
    width: int,
    height: int,
    pts: int,
    time_base: Fraction,
    full_range: bool,
) -> Frame:
    """Code values (1, 96, Hp/8, Wp/8) -> a Frame of the stream's format, cropped."""
    dtype = pixel_format(internal).dtype
    # codes are integers below 2**depth <= 2**16: exact in int32, 2x less to shuffle
    y, uv = split_96(codes.to(torch.int32))
    cw, ch = -(-width // 2), -(-height // 2)
    yp = y[0, 0, :height, :width].numpy().astype(dtype)
    up = uv[0, 0, :ch, :cw].numpy().astype(dtype)
    vp = uv[0, 1, :ch, :cw].numpy().astype(dtype)
    frame = Frame((yp, up, vp), internal, pts, time_base, full_range)
    if out_format != internal:
        frame = convert(frame, out_format, full_range=full_range)
        if pixel_format(out_format).family == "rgb":
            frame = replace(frame, full_range=False)
    return frame


def check_codes(codes: Tensor) -> None:
    if codes.dim() != 4 or codes.shape[1] != CHANNELS:
        raise CodecError(f"expected (B, {CHANNELS}, H, W) codes, got {tuple(codes.shape)}")

"""Frames in and out of the network: colour, padding, cropping, chroma subsampling.

The network works in the stream's own colour space scaled to [0, 1]: Y', Cb + 1/2,
Cr + 1/2 (BT.709 levels of nvc.media.color) for YUV streams, R, G, B for RGB streams, at
the padded size H' x W' (the frame size rounded up to the network's stride).

Decoding (`render_planes`) crops to H x W, averages 2x2 chroma blocks for 4:2:0 (odd
sizes replicate the last row / column first), scales to code values, rounds half up and
clips: only exactly rounded elementwise ops, so the encoder's reconstruction and the
decoder's output are the same bits. Training (`plane_loss`) compares the same quantities
before rounding, so the loss is the distortion of the decoded planes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from nvc.media import Frame, pixel_format
from nvc.media.color import decode_ycbcr, rgb_as_float, upsample_chroma

# Weights of the planes in the training loss: 6:1:1 like nvc.media.psnr_yuv.
_YUV_WEIGHTS = (6.0 / 8.0, 1.0 / 8.0, 1.0 / 8.0)


@dataclass(frozen=True)
class Geometry:
    """The stream's picture as the network sees it."""

    width: int  # luma width
    height: int  # luma height
    format: str  # pixel format (nvc.media.FORMATS)
    full_range: bool  # yuv only: full-range levels
    stride: int  # the network's total upsampling factor

    @property
    def padded(self) -> tuple[int, int]:
        s = self.stride
        return -(-self.height // s) * s, -(-self.width // s) * s

    @property
    def yuv(self) -> bool:
        return pixel_format(self.format).family == "yuv"

    @property
    def subsampled(self) -> bool:
        fmt = pixel_format(self.format)
        return fmt.family == "yuv" and fmt.chroma_shift_x == 1

    def levels(self) -> tuple[tuple[float, float], ...]:
        """(scale, offset) per output channel: code value = channel * scale + offset."""
        fmt = pixel_format(self.format)
        top = float(fmt.max_value)
        if fmt.family == "rgb":
            return ((top, 0.0),) * 3
        if self.full_range:
            ys, yo, cs, co = top, 0.0, top, float(1 << (fmt.bit_depth - 1))
        else:
            s = float(1 << (fmt.bit_depth - 8))
            ys, yo, cs, co = 219.0 * s, 16.0 * s, 224.0 * s, 128.0 * s
        # chroma channels hold C + 1/2: code = (c - 1/2) * cs + co = c * cs + (co - cs / 2)
        return (ys, yo), (cs, co - cs / 2.0), (cs, co - cs / 2.0)


def frame_planes(frame: Frame, geo: Geometry) -> tuple[np.ndarray, ...]:
    """Training targets of one frame: YUV (Y (H, W), CbCr (2, h, w)) or RGB ((3, H, W),)."""
    if geo.yuv:
        y, cb, cr = decode_ycbcr(frame.planes, frame.format, frame.full_range)
        return y, np.stack([cb + np.float32(0.5), cr + np.float32(0.5)])
    return (np.moveaxis(rgb_as_float(frame.planes[0]), -1, 0),)


def encoder_input(planes: tuple[np.ndarray, ...], geo: Geometry) -> np.ndarray:
    """Full-resolution (3, H', W') picture for the content encoder, edges replicated."""
    if geo.yuv:
        fmt = pixel_format(geo.format)
        c = [
            upsample_chroma(p, fmt.chroma_shift_x, fmt.chroma_shift_y, geo.width, geo.height)
            for p in planes[1]
        ]
        full = np.stack([planes[0], *c])
    else:
        full = planes[0]
    hp, wp = geo.padded
    return np.pad(full, ((0, 0), (0, hp - geo.height), (0, wp - geo.width)), mode="edge")


def _pool2x2(c: Tensor) -> Tensor:
    """Mean of 2x2 blocks of (B, C, h, w) with replicated edges, in a fixed op order."""
    if c.shape[2] % 2 or c.shape[3] % 2:
        c = F.pad(c, (0, c.shape[3] % 2, 0, c.shape[2] % 2), mode="replicate")
    s = c[:, :, 0::2, 0::2] + c[:, :, 1::2, 0::2]
    s = s + c[:, :, 0::2, 1::2]
    s = s + c[:, :, 1::2, 1::2]
    return s * 0.25


def _split(out: Tensor, geo: Geometry) -> tuple[Tensor, ...]:
    """Network output (B, 3, H', W') -> the planes it codes, in [0, 1] units."""
    out = out[:, :, : geo.height, : geo.width]
    if not geo.yuv:
        return (out,)
    y, c = out[:, :1], out[:, 1:]
    if geo.subsampled:
        c = _pool2x2(c)
    return y, c


def plane_loss(out: Tensor, targets: tuple[Tensor, ...], geo: Geometry) -> Tensor:
    """Weighted MSE between the network output and target planes (batch first)."""
    planes = _split(out, geo)
    if not geo.yuv:
        return F.mse_loss(planes[0], targets[0])
    wy, wc, _ = _YUV_WEIGHTS
    return wy * F.mse_loss(planes[0], targets[0]) + 2.0 * wc * F.mse_loss(planes[1], targets[1])


def subpixel_targets(targets: tuple[Tensor, ...], geo: Geometry) -> tuple[Tensor, ...] | None:
    """The targets in the sub-pixel layout of a shuffling head (see `subpixel_loss`), or
    None where the picture's height or width is odd (the crop would split a 2x2 block).

    Full-resolution planes (N, C, H, W) become (N, 4, C, H/2, W/2), sub-pixel k = 2 i + j
    holding pixel (2y + i, 2x + j); 4:2:0 chroma is already at the head's resolution."""
    if geo.height % 2 or geo.width % 2:
        return None

    def split(p: Tensor) -> Tensor:
        n, c, h, w = p.shape
        v = p.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 3, 5, 1, 2, 4)  # (N, i, j, C, y, x)
        return v.reshape(n, 4, c, h // 2, w // 2).contiguous()

    if geo.yuv and geo.subsampled:
        return split(targets[0]), targets[1]
    return tuple(split(t) for t in targets)


def subpixel_loss(out: Tensor, targets: tuple[Tensor, ...], geo: Geometry) -> Tensor:
    """`plane_loss` of shuffle(out) without the shuffle: out is a shuffling head's
    (B, 12, H'/2, W'/2), channel 3 k + c holding sub-pixel k of colour c (blocks.shuffle),
    and the targets come from `subpixel_targets`. Training only (the decoder's picture is
    always `render_planes` of the shuffled output)."""
    b, _, h, w = out.shape
    v = out.reshape(b, 4, 3, h, w)[:, :, :, : geo.height // 2, : geo.width // 2]
    if not geo.yuv:
        return F.mse_loss(v, targets[0])
    wy, wc, _ = _YUV_WEIGHTS
    c = v[:, :, 1:].mean(dim=1) if geo.subsampled else v[:, :, 1:]
    return wy * F.mse_loss(v[:, :, :1], targets[0]) + 2.0 * wc * F.mse_loss(c, targets[1])


def render_planes(out: Tensor, geo: Geometry) -> tuple[np.ndarray, ...]:
    """Exact: network output (1, 3, H', W') -> the Frame planes of the stream's format."""
    fmt = pixel_format(geo.format)
    planes = _split(out, geo)
    levels = geo.levels()
    top = float(fmt.max_value)
    dtype = fmt.dtype

    def code(x: Tensor, scale: float, offset: float) -> np.ndarray:
        v = torch.floor(x * scale + offset + 0.5)
        return torch.clamp(v, 0.0, top).numpy().astype(dtype)

    if not geo.yuv:
        rgb = torch.cat([planes[0][:, i : i + 1] * levels[i][0] for i in range(3)], dim=1)
        v = torch.clamp(torch.floor(rgb + 0.5), 0.0, top)
        return (np.ascontiguousarray(v[0].permute(1, 2, 0).numpy().astype(dtype)),)
    y, c = planes
    return (
        np.ascontiguousarray(code(y[0, 0], *levels[0])),
        np.ascontiguousarray(code(c[0, 0], *levels[1])),
        np.ascontiguousarray(code(c[0, 1], *levels[2])),
    )


def frame_psnrs(out: Tensor, targets: tuple[Tensor, ...], geo: Geometry) -> list[float]:
    """PSNR of each frame of a batch before rounding, in the units `nvc.media` reports:
    YUV 6:1:1 of per-plane PSNRs in code values (psnr_yuv's weighted), or RGB PSNR."""
    planes = _split(out, geo)
    fmt = pixel_format(geo.format)

    def db(a: Tensor, b: Tensor, scale: float, peak: float) -> Tensor:
        mse = ((a - b) * scale).square().flatten(1).mean(1).clamp(min=1e-10)
        return 10.0 * torch.log10(peak * peak / mse)

    if not geo.yuv:
        return db(planes[0], targets[0], 1.0, 1.0).tolist()
    (ys, _), (cs, _), _ = geo.levels()
    peak = float(fmt.max_value)
    y = db(planes[0], targets[0], ys, peak)
    u = db(planes[1][:, :1], targets[1][:, :1], cs, peak)
    v = db(planes[1][:, 1:], targets[1][:, 1:], cs, peak)
    return ((6.0 * y + u + v) / 8.0).tolist()

"""The capacity check of an fm image codec: how well its unquantized autoencoder
reconstructs real pictures.

An image codec whose analysis and synthesis lose information before anything is quantized
has a quality ceiling that no rate can lift (issue 11: the shipped v1 codec's unquantized
autoencoder reaches ~30 dB on real frames). The check runs the float analysis, skips the
quantization (the latent goes straight to the synthesis, scaled by the q scalers as in
coding), rounds the reconstruction to 8-bit codes and measures PSNR-YUV (6:1:1) against
the 4:2:0 picture. The aim for the v2 codec is >= 45 dB on real frames (CAPACITY_AIM_DB).
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction

import torch

from nvc.codec.conditional import frames as fr
from nvc.codec.conditional.model import FMModel, ImageCodec
from nvc.media import Frame, YuvPsnr, convert, psnr_yuv

CAPACITY_AIM_DB = 45.0  # unquantized autoencoder PSNR-YUV the v2 image codec must reach
CAPACITY_Q = 63  # the q whose scalers bracket the missing quantizer


def autoencode_frame(codec: ImageCodec, frame: Frame, q: int = CAPACITY_Q) -> Frame:
    """The frame (as 8-bit 4:2:0) through analysis and synthesis without quantization."""
    pic = frame if frame.format == "yuv420p" else convert(frame, "yuv420p", full_range=False)
    codes = fr.frame_to_codes(pic, "yuv420p")
    param = next(codec.parameters())
    x = fr.codes_to_net(codes, 8).to(param.device)
    with torch.no_grad():
        x_hat = codec.autoencode(x, q).to("cpu", torch.float64)
    out = torch.floor((x_hat + 0.5) * 256.0 + 0.5).clamp(0, 255)
    return fr.codes_to_frame(
        out,
        internal="yuv420p",
        out_format="yuv420p",
        width=pic.width,
        height=pic.height,
        pts=pic.pts,
        time_base=Fraction(1, 25),
        full_range=pic.full_range,
    )


def capacity(codec: ImageCodec, frames: Iterable[Frame], q: int = CAPACITY_Q) -> YuvPsnr:
    """Mean PSNR (Y, U, V and 6:1:1) of the unquantized autoencoder over `frames`."""
    scores = []
    for f in frames:
        pic = f if f.format == "yuv420p" else convert(f, "yuv420p", full_range=False)
        scores.append(psnr_yuv(pic, autoencode_frame(codec, pic, q)))
    return YuvPsnr.mean(scores)


def model_capacity(model: FMModel, frames: list[Frame]) -> dict[str, float]:
    """The check for a model's intra codec and (when it has one) its residual codec's
    synthesis of the same pictures: PSNR-YUV 6:1:1 in dB."""
    out = {"intra": capacity(model.intra, frames).weighted}
    if model.residual is not None:
        out["residual"] = capacity(model.residual, frames).weighted
    return out

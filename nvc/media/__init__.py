"""Frames in and out: PyAV, y4m and raw yuv I/O, colour conversion, quality metrics.

This package does not import torch, nvc.codec or nvc.bitstream.

    with open_video("clip.y4m") as reader:          # lazily, frame by frame
        with open_writer("out.mp4", width=reader.width, height=reader.height,
                         fps=reader.fps, format=reader.format) as writer:
            for frame in reader:
                writer.write(frame)
"""

from __future__ import annotations

from nvc.media.base import VideoReader, VideoWriter
from nvc.media.color import convert, rgb_to_yuv, to_rgb_float, yuv_to_rgb
from nvc.media.colorspace import ColorSpace
from nvc.media.formats import FORMATS, PixelFormat, pixel_format
from nvc.media.frame import Frame
from nvc.media.metrics import YuvPsnr, bpp, mean_psnr, ms_ssim, psnr, psnr_rgb, psnr_yuv
from nvc.media.open import open_video, open_writer
from nvc.media.rawyuv import parse_raw_name
from nvc.media.synth import iter_synthetic_clip, synthetic_clip

__all__ = [
    "FORMATS",
    "ColorSpace",
    "Frame",
    "PixelFormat",
    "VideoReader",
    "VideoWriter",
    "YuvPsnr",
    "bpp",
    "convert",
    "iter_synthetic_clip",
    "mean_psnr",
    "ms_ssim",
    "open_video",
    "open_writer",
    "parse_raw_name",
    "pixel_format",
    "psnr",
    "psnr_rgb",
    "psnr_yuv",
    "rgb_to_yuv",
    "synthetic_clip",
    "to_rgb_float",
    "yuv_to_rgb",
]

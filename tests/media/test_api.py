"""The public surface of nvc.media and its layering."""

from __future__ import annotations

import subprocess
import sys

import nvc.media

REQUIRED = [
    "Frame",
    "PixelFormat",
    "FORMATS",
    "pixel_format",
    "open_video",
    "VideoReader",
    "open_writer",
    "VideoWriter",
    "rgb_to_yuv",
    "yuv_to_rgb",
    "convert",
    "to_rgb_float",
    "psnr",
    "psnr_rgb",
    "psnr_yuv",
    "YuvPsnr",
    "ms_ssim",
    "bpp",
    "synthetic_clip",
    "ColorSpace",
]


def test_required_names() -> None:
    for name in REQUIRED:
        assert hasattr(nvc.media, name), name
        assert name in nvc.media.__all__


def test_media_does_not_import_torch_codec_or_bitstream() -> None:
    code = (
        "import sys, nvc.media\n"
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith(('torch.', "
        "'nvc.codec', 'nvc.bitstream', 'nvc.api'))]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

"""Decoder limits (nvc.codec.limits): what a stream may ask a decoder to allocate is
checked before anything is allocated, with a one-line BitstreamError."""

from __future__ import annotations

import dataclasses
import time
from fractions import Fraction

import pytest

import nvc
from nvc.bitstream import SequenceHeader
from nvc.codec import registry
from nvc.codec.base import StreamInfo
from nvc.codec.inr.config import ModelConfig
from nvc.codec.limits import (
    DEFAULT_MAX_PIXELS,
    INR_MAX_MACS_PER_PIXEL,
    INR_MAX_PARAMS,
    check_picture,
)
from nvc.codec.pipeline import decode_frames, encode_frames
from nvc.errors import BitstreamError
from nvc.media import synthetic_clip


def _header(codec: str, width: int, height: int, params: bytes = b"\x01") -> SequenceHeader:
    return SequenceHeader(registry.get(codec).id, params, width, height, Fraction(25), "yuv420p")


def test_default_is_4k_uhd_and_the_limit_is_inclusive() -> None:
    assert DEFAULT_MAX_PIXELS == 3840 * 2160
    check_picture(_header("lossless", 3840, 2160))
    check_picture(_header("lossless", 65536, 1))
    with pytest.raises(BitstreamError, match=r"3841x2160 .* limit of 8294400 pixels"):
        check_picture(_header("lossless", 3841, 2160))
    check_picture(_header("lossless", 3841, 2160), max_pixels=3841 * 2160)
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="max_pixels"):
            check_picture(_header("lossless", 8, 8), max_pixels=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("codec", ["lossless", "fm", "inr", "gaussian"])
@pytest.mark.parametrize("size", [(16384, 16384), (4096, 4096), (65536, 65536)])
def test_every_codec_refuses_a_forged_size_before_building_anything(
    codec: str, size: tuple[int, int]
) -> None:
    """The check comes first: not even the codec parameters are looked at."""
    start = time.perf_counter()
    with pytest.raises(BitstreamError, match="--max-pixels") as info:
        registry.get(codec).create_decoder(_header(codec, *size, params=b"junk"))
    assert "\n" not in str(info.value)
    assert time.perf_counter() - start < 0.5


def test_max_pixels_reaches_the_decoder_through_every_api(tmp_path) -> None:
    frames = list(synthetic_clip(48, 32, 2, format="yuv420p", seed=3))
    path = tmp_path / "a.nvc"
    encode_frames(frames, StreamInfo(48, 32, Fraction(25), "yuv420p"), path)
    with pytest.raises(BitstreamError, match="limit of 1000 pixels"):
        list(decode_frames(path, max_pixels=1000))
    assert len(list(decode_frames(path, max_pixels=48 * 32))) == 2
    with nvc.open(path, max_pixels=1000) as f, pytest.raises(BitstreamError):
        list(f)
    with nvc.open(path) as f:
        assert len(list(f)) == 2
    with pytest.raises(TypeError, match="max_pixels"):
        nvc.open(path, max_pixel=5)
    with pytest.raises(BitstreamError, match="limit of 1000 pixels"):
        nvc.decode_file(path, tmp_path / "out.y4m", max_pixels=1000)
    assert not (tmp_path / "out.y4m").exists()


def _inr_params(**changes: object) -> bytes:
    base = ModelConfig(
        channels=(16, 12, 8),
        kernels=(3, 3),
        stem="embed",
        pe_levels=8,
        hidden=16,
        embed_dim=4,
        modulation=False,
        sin_blocks=0,
        act="relu",
        scrb=False,
        skip=False,
        head_kernel=1,
        head_shuffle=False,
        act_bits=8,
        per_channel=False,
        group_size=2,
        rap_every=1,
    )
    return b"\x02" + dataclasses.replace(base, **changes).validate().to_bytes()[1:]


@pytest.mark.parametrize(
    ("changes", "what"),
    [
        # a 4096-wide stem MLP output on a 64x64 grid: 2**34 weights
        ({"stem": "pe", "channels": (4096, 4096, 4096), "hidden": 4096}, "parameters"),
        # 4096 -> 4 x 4096 channels, 7x7: about 2**33 MACs per pixel at any size
        ({"channels": (4096, 4096, 4096), "kernels": (7, 7)}, "parameters"),
        # fewer weights (13M), much work: 256 -> 4 x 256 channels, 7x7, half resolution
        ({"channels": (8, 256, 256), "kernels": (7, 7)}, "MACs per pixel"),
        # few weights, little work, a huge feature map: 4096 channels, 1x1, full resolution
        ({"channels": (1, 1, 4096), "kernels": (1, 1)}, "feature map values"),
    ],
)
def test_inr_refuses_networks_above_the_limits(changes: dict, what: str) -> None:
    header = _header("inr", 256, 256, params=_inr_params(**changes))
    start = time.perf_counter()
    with pytest.raises(BitstreamError, match=what):
        registry.get("inr").create_decoder(header)
    assert time.perf_counter() - start < 1.0


def test_inr_limits_cover_what_the_encoder_writes() -> None:
    """Every preset's network at the default width, at 4K, is under the limits."""
    from nvc.codec.inr.config import PRESETS, InrConfig
    from nvc.codec.inr.plan import make_plan

    for preset in PRESETS:
        for bpp in (0.05, 1.0):
            stream = StreamInfo(3840, 2160, Fraction(25), "yuv420p", False, 120)
            plan = make_plan(stream, InrConfig(preset=preset, bpp=bpp))
            assert plan.params <= INR_MAX_PARAMS
            assert plan.macs_per_pixel <= INR_MAX_MACS_PER_PIXEL
            params = plan.model.to_bytes()
            registry.get("inr").create_decoder(_header("inr", 3840, 2160, params))

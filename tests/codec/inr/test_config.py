"""Configuration: codec parameters, option validation, presets and rate-control sizing."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import pytest

from nvc.codec import registry
from nvc.codec.base import StreamInfo
from nvc.codec.inr.config import PRESETS, InrConfig, ModelConfig, quality_to_bpp
from nvc.codec.inr.plan import make_plan
from nvc.errors import BitstreamError, CodecError


def _stream(w: int = 640, h: int = 360, n: int = 100) -> StreamInfo:
    return StreamInfo(w, h, Fraction(25), "yuv420p", False, n)


def test_registry_knows_inr() -> None:
    spec = registry.get("inr")
    assert spec.id == 2 and registry.get(2) is spec


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_codec_params_round_trip(preset: str) -> None:
    model = make_plan(_stream(97, 41, 8), InrConfig(preset=preset)).model
    data = model.to_bytes()
    assert ModelConfig.from_bytes(data) == model
    for bad in (b"", bytes([9]) + data[1:], data[:-1], data + b"\x01"):
        with pytest.raises(BitstreamError):
            ModelConfig.from_bytes(bad)


@pytest.mark.parametrize(
    "options",
    [
        {"preset": "fast"},
        {"bpp": 0.1, "quality": 50},
        {"bpp": -1},
        {"quality": 101},
        {"time_budget": 0},
        {"group_size": 0},
        {"device": "tpu"},
        {"stem": "x"},
        {"nope": 1},
    ],
)
def test_bad_options_are_codec_errors(options: dict[str, object]) -> None:
    with pytest.raises(CodecError):
        registry.get("inr").config(options)


def test_quality_scale() -> None:
    assert quality_to_bpp(0) == pytest.approx(0.005)
    assert quality_to_bpp(50) == pytest.approx(0.08)
    assert quality_to_bpp(62.5) == pytest.approx(2 * quality_to_bpp(50))


def test_realtime_preset_respects_its_mac_cap() -> None:
    for bpp in (0.01, 0.1, 1.0):
        plan = make_plan(_stream(), InrConfig(preset="realtime", bpp=bpp))
        assert plan.macs_per_pixel <= 4000
    assert make_plan(_stream(), InrConfig(preset="realtime", bpp=0.1)).macs_per_pixel > 1000


def test_rate_target_sets_the_model_size() -> None:
    small = make_plan(_stream(), InrConfig(preset="quality", bpp=0.02))
    large = make_plan(_stream(), InrConfig(preset="quality", bpp=0.1))
    assert small.params < large.params
    p = large.preset
    assert large.params * p.bits_per_param < 0.1 * 640 * 360 * 100
    assert make_plan(_stream(), InrConfig(quality=30)).bpp == pytest.approx(quality_to_bpp(30))


def test_large_frames_get_extra_blocks() -> None:
    small = make_plan(_stream(320, 180), InrConfig(preset="hnerv"))
    big = make_plan(_stream(1920, 1080), InrConfig(preset="hnerv"))
    assert big.model.blocks > small.model.blocks
    h0, w0 = big.model.grid(1920, 1080)
    assert h0 * w0 <= PRESETS["hnerv"].grid_area


def test_overrides_reach_the_model() -> None:
    cfg = InrConfig(
        preset="nerv", modulation=True, scrb=True, skip=True, sin_blocks=2, stem="embed"
    )
    m = make_plan(_stream(64, 48, 4), cfg).model
    assert (m.modulation, m.scrb, m.skip, m.sin_blocks, m.stem) == (True, True, True, 2, "embed")
    assert dataclasses.replace(m, group_size=7).to_bytes() != m.to_bytes()

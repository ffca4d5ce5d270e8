"""Feature grids: temporal interpolation, training vs exact features, the grid section's
coding (context model, fuzz safety), codec parameters v3, limits, and bit-exact decoding."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from nvc.bitstream import Reader, SequenceHeader
from nvc.codec import registry
from nvc.codec.inr.config import PRESETS, ModelConfig
from nvc.codec.inr.grid import (
    GRID_SHARE,
    FeatureGrids,
    grid_levels,
    grid_slices,
    grid_values,
    slice_weights,
)
from nvc.codec.inr.gridcode import decode_grids, encode_grids, join_payload, split_payload
from nvc.codec.inr.model import InrNet
from nvc.errors import BitstreamError
from nvc.media import synthetic_clip
from tests.codec.inr.test_codec import encode


def _cfg(**kw: object) -> ModelConfig:
    base = dict(
        channels=(8, 6, 4),
        kernels=(3, 3),
        stem="embed",
        pe_levels=8,
        hidden=8,
        embed_dim=2,
        modulation=True,
        sin_blocks=1,
        act="hswish",
        scrb=True,
        skip=True,
        head_kernel=3,
        head_shuffle=True,
        act_bits=10,
        per_channel=True,
        group_size=12,
        rap_every=1,
        grid_channels=(2, 3),
        grid_every=4,
        grid_down=1,
    )
    base.update(kw)
    return ModelConfig(**base).validate()  # type: ignore[arg-type]


def test_slice_weights_interpolate_between_slice_centres() -> None:
    # every 4 frames: slice j sits at frame 4 j + 1.5
    assert slice_weights(0, 4, 3) == (0, 0, 0.0)
    assert slice_weights(1, 4, 3) == (0, 0, 0.0)
    assert slice_weights(2, 4, 3) == (0, 1, 0.125)
    assert slice_weights(5, 4, 3) == (0, 1, 0.875)
    assert slice_weights(6, 4, 3) == (1, 2, 0.125)
    assert slice_weights(9, 4, 3) == (1, 2, 0.875)  # 9.5 - 5.5 = 4 * 0.875 after slice 1
    assert slice_weights(10, 4, 3) == (2, 2, 0.0)  # past the last slice: the last slice
    assert slice_weights(7, 1, 12) == (7, 7, 0.0)  # a slice per frame: no interpolation
    assert slice_weights(5, 4, 1) == (0, 0, 0.0)
    positions = [j0 + w for j0, _, w in (slice_weights(i, 3, 5) for i in range(15))]
    assert positions == sorted(positions)  # monotonic in time
    _, _, w = slice_weights(3, 7, 4)
    assert w == float(np.float32(w))  # a float32: the same on both sides


def test_grid_shapes_and_counts() -> None:
    cfg = _cfg(grid_channels=(0, 3), grid_down=1)
    levels = grid_levels(cfg, (3, 5))  # block inputs 3x5 and 6x10
    assert [(lv.block, lv.channels, lv.rows, lv.cols) for lv in levels] == [(1, 3, 3, 5)]
    assert grid_slices(cfg, 12) == 3 and grid_slices(cfg, 5) == 2
    assert grid_values(cfg, (3, 5), 5) == 2 * 3 * 15
    assert ModelConfig(**{**vars(cfg), "grid_channels": (0, 0)}).grid_channels == ()


def _trained_grids(cfg: ModelConfig, grid: tuple[int, int], frames: int) -> FeatureGrids:
    g = FeatureGrids(cfg, grid)
    g.use(frames)
    with torch.no_grad():
        for p in g.raw:
            p.normal_(0.0, 0.05)
    g.mode = "ste"
    return g


@pytest.mark.parametrize("down", [0, 1, 2])
def test_exact_features_match_training_features(down: int) -> None:
    cfg = _cfg(grid_down=down)
    grid = (3, 5)
    g = _trained_grids(cfg, grid, 10)
    t = (torch.arange(10, dtype=torch.float32) + 0.5) / cfg.group_size
    with torch.no_grad():
        train = g.features(t, exact=False)
    exact = FeatureGrids(cfg, grid)
    exact.load_exact(g.export())
    for i in range(10):
        feats = exact.features(t[i : i + 1], exact=True)
        for block, f in feats.items():
            assert f.shape == train[block][i : i + 1].shape
            torch.testing.assert_close(f, train[block][i : i + 1], atol=1e-5, rtol=1e-5)


def test_grid_rate_proxy_is_differentiable_and_counts_used_slices() -> None:
    cfg = _cfg()
    g = _trained_grids(cfg, (3, 5), 12)
    full = g.rate_bits()
    full.backward()
    full = full.detach()
    assert float(full) > 0 and g.logstep.grad is not None and float(g.logstep.grad.abs().sum()) > 0
    g.use(4)  # one slice of three
    assert 0 < float(g.rate_bits().detach()) < float(full)
    assert g.empirical_bits() > 0


def test_next_group_starts_from_the_last_used_slice() -> None:
    g = _trained_grids(_cfg(), (3, 5), 7)  # slices 0 and 1 of 3 in use
    last = [p[1].detach().clone() for p in g.raw]
    g.carry_over()
    for p, ref in zip(g.raw, last, strict=True):
        assert all(torch.equal(p[j], ref) for j in range(p.shape[0]))


def _codes(cfg: ModelConfig, grid: tuple[int, int], slices: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    codes = []
    for lv in grid_levels(cfg, grid):
        base = rng.laplace(0, 3, (1, lv.channels, lv.rows, lv.cols))
        drift = rng.laplace(0, 0.5, (slices, lv.channels, lv.rows, lv.cols)).cumsum(0)
        codes.append((np.float32(0.01 * (lv.block + 1)), np.rint(base + drift).astype(np.int64)))
    return codes


def test_grid_section_round_trip_and_context_model_pays() -> None:
    cfg = _cfg(grid_channels=(4, 4), grid_down=0)
    levels = grid_levels(cfg, (6, 8))
    codes = _codes(cfg, (6, 8), 3)
    data = encode_grids(codes, levels)
    back = decode_grids(data, levels, 3)
    for (s0, a), (s1, b) in zip(codes, back, strict=True):
        assert s0 == s1 and np.array_equal(a, b)
    # slowly drifting slices: temporal prediction is chosen (flag byte after the step)
    assert data[1 + 4] & 1
    # the context model beats an order-0 Laplace of the same integers
    from nvc.codec.entropy import ParametricWeightModel

    lap = ParametricWeightModel("laplace")
    order0 = sum(lap.cost_bits(c, lap.fit(c)) for _, c in codes) / 8
    assert len(data) < 0.9 * order0


def test_corrupt_grid_sections_raise_bitstream_errors() -> None:
    cfg = _cfg()
    levels = grid_levels(cfg, (3, 5))
    data = encode_grids(_codes(cfg, (3, 5), 3), levels)
    with pytest.raises(BitstreamError, match="slices"):
        decode_grids(data, levels, 2)  # more slices than the stream's group allows
    flags = data[:5] + b"\x07" + data[6:]  # unknown flag bits of the first grid
    for blob in (data[:-1], data[:3], b"", data + b"\x00", bytes([0]) + data[1:], flags):
        with pytest.raises(BitstreamError):
            decode_grids(blob, levels, 3)
    rng = np.random.default_rng(1)
    shapes = [c.shape for _, c in _codes(cfg, (3, 5), 3)]
    for _ in range(200):  # random damage: refused, or integers of the right shapes
        b = bytearray(data)
        for pos in rng.integers(0, len(b), 3):
            b[pos] = int(rng.integers(0, 256))
        try:
            out = decode_grids(bytes(b), levels, 3)
        except BitstreamError:
            continue
        assert [c.shape for _, c in out] == shapes


def test_payload_split_is_the_inverse_of_join() -> None:
    assert split_payload(join_payload(b"grid", b"weights")) == (b"grid", b"weights")
    for bad in (b"", b"\x05ab", b"\x80"):
        with pytest.raises(BitstreamError, match="truncated"):
            split_payload(bad)


def test_codec_params_v3_carry_the_grids_and_v2_still_decodes() -> None:
    cfg = _cfg()
    data = cfg.to_bytes()
    assert data[0] == 3 and ModelConfig.from_bytes(data) == cfg
    plain = _cfg(grid_channels=())
    assert plain.to_bytes()[0] == 2  # no grids: the version older decoders read
    assert ModelConfig.from_bytes(plain.to_bytes()) == plain
    assert ModelConfig.from_bytes(b"\x01" + plain.to_bytes()[1:]) == plain
    for bad in (bytes([4]) + data[1:], b"\x02" + data[1:], data[:-1], data + b"\x00"):
        with pytest.raises(BitstreamError):
            ModelConfig.from_bytes(bad)
    with pytest.raises(BitstreamError, match="invalid"):  # 65 grid channels
        ModelConfig.from_bytes(data[:-1] + bytes([65]))


def test_decoder_refuses_oversized_grids_before_allocating() -> None:
    # 100000 frames per group, a slice per frame: 2^30 grid values at 256x256
    cfg = _cfg(group_size=100_000, grid_every=1, grid_down=0, grid_channels=(64, 64))
    header = SequenceHeader(2, cfg.to_bytes(), 256, 256, Fraction(25), "yuv420p")
    with pytest.raises(BitstreamError, match="feature grid values"):
        registry.get("inr").create_decoder(header)


def test_grid_network_trains_codes_and_decodes_bit_exactly_elsewhere(tmp_path: Path) -> None:
    frames = synthetic_clip(48, 32, 12, format="yuv420p", seed=7)
    # two groups (10 + 2 frames), 2 and 1 temporal slices, grids at 1/2 of the block inputs
    enc = encode(frames, tmp_path / "v.nvc", preset="quality", bpp=1.0, group_size=10, threads=2)
    assert enc.model.has_grids and enc.codec_params[0] == 3
    with Reader(tmp_path / "v.nvc") as r:
        header, units = r.header, list(r)
    decoder = registry.get("inr").create_decoder(header)
    net = decoder.renderer.net
    assert net.grids is not None
    decoder.decode(units[0])
    assert net.grids.slices == 2
    code = (
        "import sys, torch; torch.set_num_threads(1)\n"
        "from nvc.codec.pipeline import decode_frames\n"
        "from nvc.codec.inr.codec import frame_digest\n"
        "print(' '.join(frame_digest(f) for f in decode_frames(sys.argv[1])))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "v.nvc")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == [d for rep in enc.reports for d in rep.digests] and len(out) == 12
    # a MODEL unit whose grid section was cut is refused
    cut = dataclasses.replace(units[0], payload=units[0].payload[:40])
    with pytest.raises(BitstreamError):
        registry.get("inr").create_decoder(header).decode(cut)


def test_grids_scale_with_the_rate_budget() -> None:
    from nvc.codec.base import StreamInfo
    from nvc.codec.inr.config import InrConfig
    from nvc.codec.inr.plan import make_plan

    stream = StreamInfo(176, 144, Fraction(25), "yuv420p", False, 30)
    rich = make_plan(stream, InrConfig(preset="quality", bpp=0.3)).model
    poor = make_plan(stream, InrConfig(preset="quality", bpp=0.1)).model
    assert max(rich.grid_channels) == 8 > max(poor.grid_channels) > 0
    for m, bpp in ((rich, 0.3), (poor, 0.1)):  # expected grid bits within GRID_SHARE
        values = grid_values(m, m.grid(176, 144), 30)
        assert values * PRESETS["quality"].bits_per_grid <= GRID_SHARE * bpp * 176 * 144 * 30


def test_grids_can_be_switched_off() -> None:
    frames = 12
    from nvc.codec.base import StreamInfo
    from nvc.codec.inr.config import InrConfig
    from nvc.codec.inr.plan import make_plan

    stream = StreamInfo(96, 64, Fraction(25), "yuv420p", False, frames)
    on = make_plan(stream, InrConfig(preset="quality", bpp=0.3))
    off = make_plan(stream, InrConfig(preset="quality", bpp=0.3, grids=False))
    assert on.model.has_grids and not off.model.has_grids
    assert off.model.to_bytes()[0] == 2
    net = InrNet(on.model, on.model.grid(96, 64))
    assert net.grids is not None and len(net.grids.levels) == sum(
        c > 0 for c in on.model.grid_channels
    )

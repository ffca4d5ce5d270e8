"""The model's modules at tiny sizes: shapes, training outputs, exact latent coding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nvc.codec.conditional import frames as fr
from nvc.codec.conditional.layers import ONE, to_fixed
from nvc.codec.conditional.model import (
    Q_LEVELS,
    VARIANTS,
    FMModel,
    LatentPrior,
    ModelConfig,
    QScale,
    lambda_of,
)
from nvc.codec.conditional.motion import estimate_motion
from nvc.codec.entropy import SymbolReader, SymbolWriter
from nvc.media import synthetic_clip

from .conftest import TINY, tiny_model


def test_variants_are_small_enough() -> None:
    counts = {k: sum(p.numel() for p in FMModel(v).parameters()) for k, v in VARIANTS.items()}
    assert counts["realtime"] < 1_500_000  # a few MB of float32
    assert counts["quality"] > counts["realtime"]


def test_intra_and_inter_forward_shapes() -> None:
    model = tiny_model()
    model.train()
    x = torch.rand(2, 96, 4, 6) - 0.5  # a 48x32 picture
    q = torch.tensor([0, 63])
    out = model.intra(x, q)
    assert out.x_hat.shape == x.shape and out.bits.shape == (2,) and out.feature is None
    ref = out.x_hat.detach()
    feature = model.inter.adaptor(ref)
    assert feature.shape == (2, TINY.channels, 4, 6)
    flow = torch.zeros(2, 2, 4, 6)
    inter = model.inter(x, ref, feature, flow, q)
    assert inter.x_hat.shape == x.shape and inter.feature is not None
    assert inter.feature.shape == feature.shape and inter.bits.shape == (2,)
    (inter.x_hat.square().mean() + inter.bits.mean()).backward()
    assert model.inter.q_dec.log_low.grad is not None


def test_qscale_and_lambda() -> None:
    s = QScale(4, 2.0, 0.5)
    q = torch.arange(Q_LEVELS)
    v = s(q)
    assert v.shape == (Q_LEVELS, 4, 1, 1)
    assert bool((v[1:] < v[:-1]).all())  # finer steps at higher q
    fixed = s.fixed(10)
    assert torch.allclose(fixed / 65536.0, v[10:11].double(), atol=1e-4)
    lam = lambda_of(q)
    assert bool((lam[1:] > lam[:-1]).all()) and float(lam[-1] / lam[0]) == pytest.approx(256.0)


@pytest.mark.parametrize("spatial", [False, True])
def test_latent_prior_codes_exactly(spatial: bool) -> None:
    torch.manual_seed(3)
    prior = LatentPrior(8, 4, 6, 12, spatial).eval()
    y = torch.randn(1, 8, 5, 7) * 3
    temporal = to_fixed(torch.rand(1, 6, 5, 7))
    w = SymbolWriter()
    y_hat = prior.encode(y, temporal, w)
    data = w.finish()
    back = prior.decode(SymbolReader(data), (1, 8, 5, 7), temporal)
    assert torch.equal(back, y_hat)
    assert float((y_hat / ONE - y).abs().max()) <= 0.5 + 1e-6  # rounding around the mean
    # training-time estimate (eval: rounded) is near the real size for these random values
    with torch.no_grad():
        bits = float(prior(y, (temporal / ONE).float()).bits)
    assert 0.5 * bits < 8 * len(data) + 64 and 8 * len(data) < 2 * bits + 64


def test_motion_estimation_finds_a_shift() -> None:
    clip = synthetic_clip(128, 96, 1, seed=5)
    codes = fr.frame_to_codes(clip[0], "yuv420p")
    y = fr.split_96(codes)[0].float() / 256.0
    ref = y
    cur = torch.roll(y, shifts=(4, -6), dims=(2, 3))  # cur(p) = ref(p - (dy, dx))
    flow = estimate_motion(cur, ref)
    assert flow.shape == (1, 2, 12, 16)
    inner = flow[0, :, 2:-2, 2:-2].reshape(2, -1)
    med = inner.median(dim=1).values * 8  # luma pixels
    assert float(med[0]) == pytest.approx(6.0, abs=0.5) and float(med[1]) == pytest.approx(
        -4.0, abs=0.5
    )


def test_motion_rate_term_smooths_a_noisy_field(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rate term (distance to the neighbours' median) makes the field of a shifted,
    noisy picture smoother (cheaper for the motion coder) and keeps the true shift."""
    from nvc.codec.conditional import motion

    clip = synthetic_clip(128, 96, 1, seed=5)
    y = fr.split_96(fr.frame_to_codes(clip[0], "yuv420p"))[0].float() / 256.0
    gen = torch.Generator().manual_seed(0)
    cur = torch.roll(y, shifts=(4, -6), dims=(2, 3)) + 0.04 * torch.randn(y.shape, generator=gen)

    def roughness(flow: torch.Tensor) -> float:
        return float((flow[..., 1:, :] - flow[..., :-1, :]).abs().sum()) + float(
            (flow[..., 1:] - flow[..., :-1]).abs().sum()
        )

    smooth = estimate_motion(cur, y)
    monkeypatch.setattr(motion, "SMOOTHNESS", 0.0)
    plain = estimate_motion(cur, y)
    assert roughness(smooth) < 0.8 * roughness(plain), (roughness(smooth), roughness(plain))
    med = smooth[0, :, 2:-2, 2:-2].reshape(2, -1).median(dim=1).values * 8
    assert float(med[0]) == pytest.approx(6.0, abs=0.5)
    assert float(med[1]) == pytest.approx(-4.0, abs=0.5)


def test_frame_layout_round_trip() -> None:
    frame = synthetic_clip(35, 21, 1, seed=6)[0]
    codes = fr.frame_to_codes(frame, "yuv420p")
    assert codes.shape == (1, 96, 4, 6)  # padded to 48x32
    back = fr.codes_to_frame(
        codes,
        internal="yuv420p",
        out_format="yuv420p",
        width=35,
        height=21,
        pts=0,
        time_base=frame.time_base,
        full_range=False,
    )
    assert back.equal(frame)
    fixed = fr.codes_to_fixed(codes, 8)
    assert torch.equal(fr.fixed_to_codes(fixed, 8), codes)
    assert np.isclose(float(fr.codes_to_net(codes, 8).max()), float(codes.max()) / 256 - 0.5)


def test_configs_without_newer_fields_still_load() -> None:
    d = TINY.to_dict()
    del d["latent_skip"]  # weights saved before the latent skip existed
    cfg = ModelConfig.from_dict(d)
    assert cfg.latent_skip is False
    assert FMModel(cfg).inter.skip is None and tiny_model().inter.skip is not None

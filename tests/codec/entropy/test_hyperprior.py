"""Hyperprior: training forward, bit-exact coding, stream packing, misuse."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nvc.codec.entropy import (
    ConditionalConfig,
    Hyperprior,
    HyperpriorConfig,
    HyperpriorStreams,
)
from nvc.errors import CodecError


def _model(mean_scale: bool = True, dist: str = "gaussian") -> Hyperprior:
    torch.manual_seed(0)
    cfg = HyperpriorConfig(
        latent_channels=8,
        hyper_channels=6,
        mean_scale=mean_scale,
        conditional=ConditionalConfig(distribution=dist),  # type: ignore[arg-type]
    )
    model = Hyperprior(cfg).eval()
    with torch.no_grad():  # untrained, but with plausible outputs: scales near 3, means near 0
        last = [m for m in model.h_s.layers if isinstance(m, torch.nn.Conv2d)][-1]
        last.weight.mul_(0.1)
        last.bias.fill_(0.0)
        last.bias[:8] = 3.0
    return model


def test_forward_shapes_and_gradients() -> None:
    model = _model().train()
    y = (torch.randn(2, 8, 16, 12) * 3).requires_grad_()
    out = model(y)
    assert out.y_hat.shape == y.shape and out.y_likelihoods.shape == y.shape
    assert out.z_hat.shape == (2, 6, 4, 3) and out.z_likelihoods.shape == (2, 6, 4, 3)
    rate = -torch.log2(out.y_likelihoods).sum() - torch.log2(out.z_likelihoods).sum()
    rate.backward()
    assert y.grad is not None and torch.isfinite(y.grad).all()
    assert all(p.grad is not None for p in model.h_s.parameters())


@pytest.mark.parametrize(("mean_scale", "dist"), [(True, "gaussian"), (False, "laplace")])
def test_roundtrip_is_bit_exact(mean_scale: bool, dist: str) -> None:
    model = _model(mean_scale, dist)
    y = torch.randn(2, 8, 16, 16) * 4 + 1.3
    enc = model.compress(y)
    packed = enc.streams.to_bytes()
    dec = model.decompress(HyperpriorStreams.from_bytes(packed))
    assert torch.equal(dec, enc.y_hat)
    assert float((enc.y_hat - y).abs().max()) <= 0.5 + 1e-5
    with torch.no_grad():
        out = model(y)
    # the coded size is close to what the (float, rounded) training model reports
    train_bits = float(-torch.log2(out.y_likelihoods.double()).sum())
    train_bits += float(-torch.log2(out.z_likelihoods.double()).sum())
    coded_bits = 8 * (len(enc.streams.y) + len(enc.streams.z))
    assert abs(coded_bits / train_bits - 1) < 0.02


def test_misuse() -> None:
    model = _model()
    with pytest.raises(CodecError):
        model.compress(torch.zeros(1, 8, 10, 16))  # not a multiple of 4
    with pytest.raises(CodecError):
        model.compress(torch.zeros(1, 7, 16, 16))
    with pytest.raises(CodecError):
        HyperpriorStreams.from_bytes(b"\x00" * 10)
    bad = HyperpriorStreams(b"", b"", (1, 8, 16, 16)).to_bytes()[:-1] + b"\xff"
    with pytest.raises(CodecError):
        HyperpriorStreams.from_bytes(bad)
    y = torch.zeros(1, 8, 8, 8)
    y[0, 0, 0, 0] = float("nan")
    with pytest.raises(CodecError):
        model.compress(y)


def test_exact_params_follow_weight_changes() -> None:
    model = _model()
    z = torch.randint(-3, 4, (1, 6, 2, 2)).float()
    levels_a, _ = model.coding_params(z)
    with torch.no_grad():
        model.h_s.layers[-1].bias.add_(3.0)
    levels_b, _ = model.coding_params(z)
    assert not np.array_equal(levels_a, levels_b)

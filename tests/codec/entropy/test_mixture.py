"""Gaussian mixture: exact coding of a million symbols, training rate, parameter handling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nvc.codec.entropy import GaussianMixtureConditional, MixtureConfig
from nvc.errors import CodecError

K = 3


def _draw(n: int, seed: int) -> tuple[torch.Tensor, ...]:
    """y ~ per-symbol mixtures with known weights, means and scales."""
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.ones(K), n)
    mu = rng.normal(0, 3, (n, 1)) + rng.normal(0, 2, (n, K))
    sc = np.exp(rng.uniform(np.log(0.2), np.log(4.0), (n, K)))
    comp = (rng.random(n)[:, None] > np.cumsum(w, 1)).sum(1).clip(0, K - 1)
    rows = np.arange(n)
    y = rng.normal(mu[rows, comp], sc[rows, comp])
    return tuple(torch.from_numpy(a.astype(np.float32)) for a in (y, w, mu, sc))


def test_million_symbols_code_at_table_cost_and_decode_exactly() -> None:
    model = GaussianMixtureConditional()
    y, w, mu, sc = _draw(1_000_000, seed=1)
    qp = model.quantize_params(w, mu, sc)
    sym = np.rint(y.numpy()).astype(np.int64)
    data = model.compress_symbols(sym, qp)
    assert np.array_equal(model.decompress_symbols(data, qp), sym)
    ideal = model.cost_bits(sym, qp)
    assert len(data) * 8 <= 1.01 * ideal + 64
    assert len(data) * 8 >= 0.99 * ideal - 64


def test_training_rate_matches_coded_size() -> None:
    model = GaussianMixtureConditional()
    y, w, mu, sc = _draw(100_000, seed=2)
    with torch.no_grad():
        out = model(y, w, mu, sc, quantize_mode="round")
        train_bits = float(-torch.log2(out.likelihoods.double()).sum())
    data = model.compress(y, w, mu, sc)
    assert abs(len(data) * 8 / train_bits - 1) < 0.02
    assert torch.equal(model.decompress(data, w, mu, sc), torch.round(y))


def test_likelihood_normalizes_weights_and_sums_to_one() -> None:
    model = GaussianMixtureConditional()
    grid = torch.arange(-60, 61, dtype=torch.float64)
    w = torch.tensor([2.0, 1.0, 1.0], dtype=torch.float64).expand(121, K)
    mu = torch.tensor([-5.0, 0.3, 9.0], dtype=torch.float64).expand(121, K)
    sc = torch.tensor([1.0, 0.5, 3.0], dtype=torch.float64).expand(121, K)
    lik = model.likelihood(grid, w, mu, sc)
    assert abs(float(lik.sum()) - 1) < 1e-6
    # at -5: half the weight times the N(-5, 1) mass of [-5.5, -4.5] (others negligible)
    assert abs(float(lik[55]) - 0.5 * 0.38292492254802624) < 1e-6


def test_far_apart_components_wide_windows_and_escapes() -> None:
    model = GaussianMixtureConditional(MixtureConfig(max_window=64))
    n = 2000
    w = np.tile([0.5, 0.5, 0.0], (n, 1))
    mu = np.tile([-400.0, 400.0, 0.0], (n, 1))
    sc = np.ones((n, K))
    rng = np.random.default_rng(3)
    sym = np.where(rng.random(n) < 0.5, -400, 400) + rng.integers(-2, 3, n)
    sym[:3] = [2**31 - 1, -(2**31), 0]
    qp = model.quantize_params(w, mu, sc)
    data = model.compress_symbols(sym, qp)
    assert np.array_equal(model.decompress_symbols(data, qp), sym)


def test_parameter_edge_cases() -> None:
    model = GaussianMixtureConditional()
    y = torch.tensor([0.0, 1.0, -3.0])
    w = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1e30, 1.0, 0.0]])  # zero row: uniform
    mu = torch.tensor([[0.0, 1.0, 2.0], [1.0, 1.0, 1.0], [-3.0, 5.0, 9.0]])
    sc = torch.tensor([[float("inf"), 0.0, -1.0], [1e-9, 1.0, 1.0], [1.0, 1.0, 1.0]])
    data = model.compress(y, w, mu, sc)
    assert torch.equal(model.decompress(data, w, mu, sc), y)
    qp = model.quantize_params(w, mu, sc)
    assert np.all(qp.weights.sum(1) == 1 << model.config.weight_bits)
    bad_cases = [
        (w.clone().fill_(float("nan")), mu, sc),
        (-w, mu, sc),
        (w, mu.clone().fill_(float("inf")), sc),
        (w, mu.clone().fill_(2.0**31), sc),
        (w, mu, sc.clone().fill_(float("nan"))),
    ]
    for args in bad_cases:
        with pytest.raises(CodecError):
            model.compress(y, *args)
    with pytest.raises(CodecError):
        model.likelihood(y, w[:, :2], mu, sc)
    with pytest.raises(CodecError):
        model.compress_symbols([1, 2], qp)
    with pytest.raises(CodecError):
        MixtureConfig(max_window=100)
    empty = torch.zeros(0, K)
    assert model.compress(torch.zeros(0), empty, empty, empty) == b""

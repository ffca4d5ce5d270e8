"""Mean-scale Gaussian / Laplace: exact coding on a million symbols, training rate, misuse."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nvc.codec.entropy import (
    ConditionalConfig,
    GaussianConditional,
    LaplaceConditional,
    MeanScaleConditional,
)
from nvc.errors import CodecError

N = 1_000_000


def _model(dist: str) -> MeanScaleConditional:
    return GaussianConditional() if dist == "gaussian" else LaplaceConditional()


def _draw(dist: str, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    scales = np.exp(rng.uniform(np.log(0.15), np.log(60.0), n))
    means = rng.normal(0, 10, n)
    noise = rng.normal(0, 1, n) if dist == "gaussian" else rng.laplace(0, 1, n)
    y = means + scales * noise
    return tuple(torch.from_numpy(a.astype(np.float32)) for a in (y, scales, means))  # type: ignore[return-value]


@pytest.mark.parametrize("dist", ["gaussian", "laplace"])
def test_million_symbols_code_at_model_cost_and_decode_exactly(dist: str) -> None:
    model = _model(dist)
    y, scales, means = _draw(dist, N, seed=1)
    data = model.compress(y, scales, means)
    y_hat = model.decompress(data, scales, means)
    q = model.symbols(y, means)
    ideal = model.cost_bits(q, model.scale_indices(scales))
    assert torch.equal(y_hat, torch.from_numpy(q.astype(np.float32)) + means)
    assert len(data) * 8 <= 1.01 * ideal + 64
    assert len(data) * 8 >= 0.99 * ideal - 64  # the cost accounting is honest both ways


@pytest.mark.parametrize("dist", ["gaussian", "laplace"])
def test_training_rate_matches_coded_size(dist: str) -> None:
    model = _model(dist)
    y, scales, means = _draw(dist, 200_000, seed=2)
    out = model(y, scales, means, quantize_mode="round")
    train_bits = float(-torch.log2(out.likelihoods.double()).sum())
    coded_bits = len(model.compress(y, scales, means)) * 8
    assert abs(coded_bits / train_bits - 1) < 0.02


def test_likelihood_is_a_distribution_and_differentiable() -> None:
    model = GaussianConditional()
    scales = torch.tensor([0.3, 1.0, 7.0], requires_grad=True)
    grid = torch.arange(-80, 81, dtype=torch.float32)[:, None].expand(-1, 3)
    lik = model.likelihood(grid + 0.25, scales.expand(161, 3), torch.full((161, 3), 0.25))
    torch.testing.assert_close(lik.sum(0), torch.ones(3), atol=1e-5, rtol=0)
    (-torch.log2(lik[80]).sum()).backward()
    assert scales.grad is not None and torch.all(torch.isfinite(scales.grad))
    lap = LaplaceConditional().likelihood(grid, torch.full((161, 3), 2.0))
    torch.testing.assert_close(lap.sum(0), torch.ones(3), atol=1e-5, rtol=0)


def test_quantize_modes() -> None:
    model = GaussianConditional()
    y = torch.tensor([0.2, 1.7, -2.6], requires_grad=True)
    means = torch.tensor([0.5, 0.5, 0.5])
    s = torch.ones(3)
    ste = model(y, s, means, quantize_mode="ste").y_hat
    assert torch.equal(ste.detach(), torch.round(y.detach() - means) + means)
    ste.sum().backward()
    assert torch.equal(y.grad, torch.ones(3))  # type: ignore[arg-type]
    model.train()
    noisy = model(y, s, means).y_hat
    assert torch.all((noisy - y).abs() <= 0.5)
    with pytest.raises(CodecError):
        model(y, s, means, quantize_mode="floor")  # type: ignore[arg-type]


def test_nan_inf_and_out_of_table_parameters() -> None:
    model = GaussianConditional()
    y = torch.tensor([0.0, 3.0, -700.0, 5.0, 2.0e6])
    scales = torch.tensor([-1.0, 0.0, 1e-30, float("inf"), 1e9])  # all clamped to the table
    data = model.compress(y, scales)
    assert torch.equal(model.decompress(data, scales), y)
    with pytest.raises(CodecError):
        model.compress(y, torch.tensor([1.0, float("nan"), 1.0, 1.0, 1.0]))
    with pytest.raises(CodecError):
        model.compress(torch.tensor([0.0, float("nan")]), torch.ones(2))
    with pytest.raises(CodecError):
        model.compress(torch.tensor([0.0, float("inf")]), torch.ones(2))
    with pytest.raises(CodecError):
        model.compress(torch.tensor([3e9]), torch.ones(1))
    with pytest.raises(CodecError):
        model.compress(torch.zeros(3), torch.ones(3), torch.tensor([0.0, float("inf"), 0.0]))
    with pytest.raises(CodecError):
        model.compress(torch.zeros(3), torch.ones(2))
    with pytest.raises(CodecError):
        model.compress(torch.zeros(3), torch.ones(3), torch.zeros(2))


def test_empty_tensors() -> None:
    model = LaplaceConditional()
    empty = torch.zeros(0, 4)
    data = model.compress(empty, empty, empty)
    assert data == b""
    assert model.decompress(data, empty, empty).shape == (0, 4)


def test_config_validation() -> None:
    with pytest.raises(CodecError):
        ConditionalConfig(distribution="cauchy")  # type: ignore[arg-type]
    with pytest.raises(CodecError):
        ConditionalConfig(tail_mass=0.5)
    with pytest.raises(CodecError):
        GaussianConditional(ConditionalConfig(distribution="laplace"))


def test_rd_round_picks_the_cheaper_neighbour() -> None:
    """rd_round against brute force: each symbol is round(v) or one step towards zero,
    whichever has the lower weight * error**2 + bits under its table."""
    from nvc.codec.entropy.conditional import rd_round

    tables = GaussianConditional().tables
    rng = np.random.default_rng(5)
    n = 20_000
    v = rng.laplace(0, 2.0, n)
    idx = rng.integers(0, tables.num_tables, n).astype(np.uint8)
    w = np.exp(rng.uniform(np.log(0.05), np.log(50.0), n))
    got = rd_round(v, idx, tables, w)

    def bits(k: np.ndarray) -> np.ndarray:
        rel = k - tables.lo[idx]
        inside = (rel >= 0) & (rel < tables.size[idx])
        nl = tables.neg_log2[tables.offsets[idx] + np.where(inside, rel, 0)]
        return np.where(inside, nl, np.inf)

    k = np.rint(v).astype(np.int64)
    k2 = k - np.sign(k)
    cost = w * (k - v) ** 2 + bits(k)
    cost2 = np.where(k != 0, w * (k2 - v) ** 2 + bits(k2), np.inf)
    # a symbol outside its table (an escape) stays where rounding puts it
    want = np.where((cost2 < cost) & np.isfinite(cost), k2, k)
    assert not np.isfinite(cost).all()  # and there are such symbols here
    assert np.array_equal(got, want)
    moved = got != k
    assert 0.05 < moved.mean() < 0.9  # the test exercises both outcomes
    assert np.all(np.abs(got[moved]) < np.abs(k[moved]))  # only ever towards zero
    # no weight on the rate side: plain rounding; no weight on the error: every non-zero
    # symbol inside its table moves (a zero-mean table makes smaller values cheaper)
    assert np.array_equal(rd_round(v, idx, tables, np.full(n, 1e12)), k)
    free = rd_round(v, idx, tables, np.zeros(n))
    assert np.all(np.abs(free - k) <= 1) and np.all(np.abs(free) <= np.abs(k))
    assert np.mean(free != k) > 0.5

"""Factorized prior: learnable, exact coding from rebuilt tables, training rate agreement."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nvc.codec.entropy import FactorizedPrior
from nvc.errors import CodecError


def _samples(n: int, seed: int) -> torch.Tensor:
    """(n, 4) draws from four different known distributions, one per channel."""
    rng = np.random.default_rng(seed)
    bimodal = np.where(rng.random(n) < 0.3, rng.normal(-6, 1.5, n), rng.normal(4, 2.5, n))
    cols = [rng.normal(0, 2, n), rng.laplace(3, 5, n), bimodal, rng.normal(-10, 0.5, n)]
    return torch.from_numpy(np.stack(cols, 1).astype(np.float32))


def _as_latent(x: torch.Tensor) -> torch.Tensor:
    """(n, 4) -> (n / 64, 4, 8, 8)."""
    return x.reshape(-1, 8, 8, 4).permute(0, 3, 1, 2).contiguous()


@pytest.fixture(scope="module")
def trained() -> FactorizedPrior:
    torch.manual_seed(0)
    prior = FactorizedPrior(4)
    opt = torch.optim.Adam(prior.parameters(), lr=0.02)
    data = _as_latent(_samples(64 * 128, seed=0))
    prior.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: extra threads only cost (a lot, on a busy machine)
    try:
        for _ in range(300):
            opt.zero_grad()
            loss = -torch.log2(prior(data).likelihoods).mean()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    prior.eval()
    return prior


def test_training_learns_the_densities(trained: FactorizedPrior) -> None:
    y = _as_latent(_samples(64 * 256, seed=5))
    fresh = FactorizedPrior(4)
    with torch.no_grad():
        rate_trained = float(-torch.log2(trained.likelihood(torch.round(y))).mean())
        rate_fresh = float(-torch.log2(fresh.likelihood(torch.round(y))).mean())
    # differential entropies of the four channels, discretized: about 3.05, 4.7, 4.0, 0.4
    assert rate_trained < 3.4 < rate_fresh


def test_million_symbols_code_at_table_cost(trained: FactorizedPrior) -> None:
    y = _as_latent(_samples(250_000 - 250_000 % 64, seed=1))
    y = torch.cat([y, y[:1] * 0 + 1e4])  # one batch element far outside the tables: escapes
    data = trained.compress(y)
    out = trained.decompress(data, y.shape)
    assert torch.equal(out, torch.round(y))
    ideal = trained.cost_bits(y)
    assert len(data) * 8 <= 1.01 * ideal + 64
    assert len(data) * 8 >= 0.99 * ideal - 64


def test_training_rate_matches_coded_size(trained: FactorizedPrior) -> None:
    y = _as_latent(_samples(64 * 1024, seed=2))
    with torch.no_grad():
        train_bits = float(-torch.log2(trained(y).likelihoods.double()).sum())
    coded_bits = len(trained.compress(y)) * 8
    assert abs(coded_bits / train_bits - 1) < 0.02


def test_tables_follow_the_parameters() -> None:
    prior = FactorizedPrior(2)
    assert prior.update() is True
    assert prior.update() is False
    with torch.no_grad():
        prior.biases[-1].add_(5.0)
    y = torch.full((1, 2, 4, 4), 3.0)
    data = prior.compress(y)  # rebuilds automatically
    assert torch.equal(prior.decompress(data, y.shape), y)


def test_tables_are_rebuilt_identically_from_saved_weights(tmp_path) -> None:  # noqa: ANN001
    prior = FactorizedPrior(3)
    torch.save(prior.state_dict(), tmp_path / "p.pt")
    other = FactorizedPrior(3)
    other.load_state_dict(torch.load(tmp_path / "p.pt", weights_only=True))
    a, b = prior.tables, other.tables
    assert np.array_equal(a.counts, b.counts) and np.array_equal(a.lo, b.lo)


def test_likelihood_sums_to_one_per_channel() -> None:
    prior = FactorizedPrior(2)
    grid = torch.arange(-400, 401, dtype=torch.float32)
    y = grid[:, None, None].expand(-1, 2, 1).contiguous()  # (801, 2, 1)
    with torch.no_grad():
        total = prior.likelihood(y).sum(0).squeeze(-1)
    torch.testing.assert_close(total, torch.ones(2), atol=1e-4, rtol=0)


def test_misuse() -> None:
    prior = FactorizedPrior(3)
    with pytest.raises(CodecError):
        prior.compress(torch.zeros(1, 2, 4))
    with pytest.raises(CodecError):
        prior.compress(torch.tensor([[[float("nan")]] * 3]))
    with pytest.raises(CodecError):
        prior.decompress(b"", (1, 4, 2))
    with pytest.raises(CodecError):
        FactorizedPrior(0)
    empty = torch.zeros(0, 3, 5)
    assert prior.decompress(prior.compress(empty), empty.shape).shape == (0, 3, 5)

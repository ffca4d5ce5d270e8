"""Weight models for INR codecs: transmitted parameters, exact coding, training rate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nvc.codec.entropy import (
    CategoricalWeightModel,
    CategoricalWeightParams,
    ParametricWeightModel,
    ParametricWeightParams,
)
from nvc.errors import CodecError

N = 1_000_000


def _values(dist: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    raw = rng.normal(-2.3, 6.0, n) if dist == "gaussian" else rng.laplace(1.7, 4.0, n)
    return np.rint(raw).astype(np.int64)


@pytest.mark.parametrize("dist", ["gaussian", "laplace"])
def test_parametric_million_values(dist: str) -> None:
    model = ParametricWeightModel(dist)  # type: ignore[arg-type]
    v = _values(dist, N, seed=1)
    params = model.fit(v)
    assert abs(params.mean - (-2.3 if dist == "gaussian" else 1.7)) < 0.05
    assert abs(params.scale - (6.0 if dist == "gaussian" else 4.0)) < 0.3
    data = model.compress(v, params)
    received = model.params_from_bytes(params.to_bytes())
    assert received == params
    assert np.array_equal(model.decompress(data, received, v.size), v)
    ideal = model.cost_bits(v, params)
    assert len(data) * 8 <= 1.01 * ideal + 64
    assert len(data) * 8 >= 0.99 * ideal - 64


@pytest.mark.parametrize("dist", ["gaussian", "laplace"])
def test_parametric_training_rate_matches_coded_size(dist: str) -> None:
    model = ParametricWeightModel(dist)  # type: ignore[arg-type]
    v = _values(dist, 100_000, seed=2)
    params = model.fit(v)
    w = torch.tensor(v, dtype=torch.float32, requires_grad=True)
    lik = model.likelihood(w, params.mean, params.scale)
    train_bits = -torch.log2(lik).sum()
    train_bits.backward()
    assert w.grad is not None and torch.all(torch.isfinite(w.grad))
    coded_bits = len(model.compress(v, params)) * 8
    assert abs(coded_bits / float(train_bits.detach()) - 1) < 0.02


@pytest.mark.parametrize("mode", ["empirical", "adaptive"])
def test_categorical_million_values(mode: str) -> None:
    model = CategoricalWeightModel(mode)  # type: ignore[arg-type]
    v = _values("laplace", N, seed=3)
    params = model.fit(v)
    header = params.to_bytes()
    received = model.params_from_bytes(header)
    data = model.compress(v, params)
    assert np.array_equal(model.decompress(data, received, v.size), v)
    ideal = model.cost_bits(v, params)
    assert len(data) * 8 <= 1.01 * ideal + 64
    assert len(data) * 8 >= 0.99 * ideal - 64
    # both modes come close to the empirical entropy of the values
    _, counts = np.unique(v, return_counts=True)
    p = counts / v.size
    entropy_bits = float(-(counts * np.log2(p)).sum())
    assert (len(data) + len(header)) * 8 < 1.005 * entropy_bits


def test_categorical_values_outside_the_fitted_range_escape() -> None:
    for mode in ("empirical", "adaptive"):
        model = CategoricalWeightModel(mode)  # type: ignore[arg-type]
        params = model.fit(np.arange(-3, 4))
        v = np.array([0, 1, 100, -(2**31), 2**31 - 1, -3])
        assert np.array_equal(model.decompress(model.compress(v, params), params, v.size), v)


def test_parametric_values_far_in_the_tails_escape() -> None:
    model = ParametricWeightModel("gaussian")
    params = ParametricWeightParams.from_float("gaussian", 0.0, 1.0)
    v = np.array([0, 1, -1, 10**6, -(10**9)])
    assert np.array_equal(model.decompress(model.compress(v, params), params, v.size), v)


def test_params_serialization_rejects_garbage() -> None:
    with pytest.raises(CodecError):
        ParametricWeightParams.from_bytes(b"\x00" * 8)
    with pytest.raises(CodecError):
        ParametricWeightParams.from_bytes(b"\x07" + b"\x00" * 8)
    with pytest.raises(CodecError):
        ParametricWeightParams("gaussian", 0, 0)  # scale below the minimum
    with pytest.raises(CodecError):
        ParametricWeightParams.from_float("gaussian", float("nan"), 1.0)
    emp = CategoricalWeightModel("empirical").fit(np.array([0, 1, 1, 2]))
    data = emp.to_bytes()
    with pytest.raises(CodecError):
        CategoricalWeightParams.from_bytes(data[:-1])
    with pytest.raises(CodecError):
        CategoricalWeightParams.from_bytes(data[:5])
    with pytest.raises(CodecError):
        CategoricalWeightModel("adaptive").params_from_bytes(data)  # wrong mode
    with pytest.raises(CodecError):
        CategoricalWeightModel("empirical").fit(np.array([0, 1 << 20]))  # range too wide
    roundtrip = CategoricalWeightParams.from_bytes(data)
    assert roundtrip.counts is not None and np.array_equal(roundtrip.counts, emp.counts)


def test_empty_and_tensor_input() -> None:
    for model in (
        ParametricWeightModel("laplace"),
        CategoricalWeightModel("empirical"),
        CategoricalWeightModel("adaptive"),
    ):
        p = model.fit(np.zeros(0, np.int64))
        assert model.decompress(model.compress(np.zeros(0, np.int64), p), p, 0).size == 0  # type: ignore[arg-type]
        t = torch.tensor([[1.0, -2.0], [3.0, 0.0]])
        p = model.fit(t)
        assert model.decompress(model.compress(t, p), p, 4).tolist() == [1, -2, 3, 0]  # type: ignore[arg-type]
    with pytest.raises(CodecError):
        ParametricWeightModel("gaussian").compress(torch.tensor([0.5]), p)  # type: ignore[arg-type]

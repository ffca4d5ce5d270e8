"""Encode or decode every model's test payload in its own process (see test_cross_process.py).

    python _xproc_helper.py encode DIR THREADS   # writes payloads and expected symbols
    python _xproc_helper.py decode DIR THREADS   # reads them back, writes decoded symbols

The decoder gets only what a real decoder would: coded bytes, transmitted parameters,
model weights, and the float parameters its own side would hold.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from nvc.codec.entropy import (
    CategoricalWeightModel,
    CategoricalWeightParams,
    FactorizedPrior,
    GaussianConditional,
    GaussianMixtureConditional,
    Hyperprior,
    HyperpriorConfig,
    HyperpriorStreams,
    LaplaceConditional,
    ParametricWeightModel,
    ParametricWeightParams,
)


def _perturbed(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=gen))
    return module


def _hyperprior() -> Hyperprior:
    return Hyperprior(HyperpriorConfig(latent_channels=16, hyper_channels=12)).eval()


def encode(d: Path) -> None:
    rng = np.random.default_rng(7)
    expected: dict[str, np.ndarray] = {}
    arrays: dict[str, np.ndarray] = {}

    torch.manual_seed(1)
    prior = _perturbed(FactorizedPrior(16), 2)
    torch.save(prior.state_dict(), d / "factorized.pt")
    y = torch.from_numpy(rng.normal(0, 6, (2, 16, 24, 24)).astype(np.float32))
    (d / "factorized.bin").write_bytes(prior.compress(y))  # type: ignore[operator]
    expected["factorized"] = torch.round(y).numpy()

    n = 300_000
    arrays["cond_scales"] = np.exp(rng.uniform(-2, 4, n)).astype(np.float32)
    arrays["cond_means"] = rng.normal(0, 5, n).astype(np.float32)
    y_c = arrays["cond_means"] + arrays["cond_scales"] * rng.normal(0, 1, n).astype(np.float32)
    for name, model in (("gaussian", GaussianConditional()), ("laplace", LaplaceConditional())):
        data = model.compress(y_c, arrays["cond_scales"], arrays["cond_means"])
        (d / f"{name}.bin").write_bytes(data)
        expected[name] = np.rint(y_c.astype(np.float64) - arrays["cond_means"]).astype(np.int64)

    m = 100_000
    arrays["mix_w"] = rng.dirichlet(np.ones(3), m).astype(np.float32)
    arrays["mix_mu"] = rng.normal(0, 4, (m, 3)).astype(np.float32)
    arrays["mix_sc"] = np.exp(rng.uniform(-1.5, 1.5, (m, 3))).astype(np.float32)
    y_m = rng.normal(arrays["mix_mu"][:, 0], arrays["mix_sc"][:, 0])
    mix = GaussianMixtureConditional()
    mix_data = mix.compress(y_m, arrays["mix_w"], arrays["mix_mu"], arrays["mix_sc"])
    (d / "mixture.bin").write_bytes(mix_data)
    expected["mixture"] = np.rint(y_m).astype(np.int64)

    weights = np.rint(rng.laplace(0, 9, 200_000)).astype(np.int64)
    for name, wm in (
        ("w_gauss", ParametricWeightModel("gaussian")),
        ("w_emp", CategoricalWeightModel("empirical")),
        ("w_adapt", CategoricalWeightModel("adaptive")),
    ):
        params = wm.fit(weights)  # type: ignore[attr-defined]
        (d / f"{name}.params").write_bytes(params.to_bytes())
        (d / f"{name}.bin").write_bytes(wm.compress(weights, params))  # type: ignore[attr-defined]
        expected[name] = weights

    torch.manual_seed(3)
    hp = _perturbed(_hyperprior(), 4)
    torch.save(hp.state_dict(), d / "hyperprior.pt")
    y_h = torch.from_numpy(rng.normal(0, 4, (1, 16, 32, 32)).astype(np.float32))
    enc = hp.compress(y_h)  # type: ignore[operator]
    (d / "hyperprior.bin").write_bytes(enc.streams.to_bytes())
    expected["hyperprior"] = enc.y_hat.numpy()

    np.savez(d / "arrays.npz", **arrays)
    np.savez(d / "expected.npz", **expected)


def decode(d: Path) -> None:
    arrays = dict(np.load(d / "arrays.npz"))
    decoded: dict[str, np.ndarray] = {}

    prior = FactorizedPrior(16)
    prior.load_state_dict(torch.load(d / "factorized.pt", weights_only=True))
    decoded["factorized"] = prior.decompress(
        (d / "factorized.bin").read_bytes(), (2, 16, 24, 24)
    ).numpy()

    scales = torch.from_numpy(arrays["cond_scales"])
    for name, model in (("gaussian", GaussianConditional()), ("laplace", LaplaceConditional())):
        idx = model.scale_indices(scales)
        decoded[name] = model.decompress_symbols((d / f"{name}.bin").read_bytes(), idx)

    mix = GaussianMixtureConditional()
    qp = mix.quantize_params(arrays["mix_w"], arrays["mix_mu"], arrays["mix_sc"])
    decoded["mixture"] = mix.decompress_symbols((d / "mixture.bin").read_bytes(), qp)

    count = 200_000
    pm = ParametricWeightModel("gaussian")
    pp = ParametricWeightParams.from_bytes((d / "w_gauss.params").read_bytes())
    decoded["w_gauss"] = pm.decompress((d / "w_gauss.bin").read_bytes(), pp, count)
    for name, mode in (("w_emp", "empirical"), ("w_adapt", "adaptive")):
        cm = CategoricalWeightModel(mode)  # type: ignore[arg-type]
        cp = CategoricalWeightParams.from_bytes((d / f"{name}.params").read_bytes())
        decoded[name] = cm.decompress((d / f"{name}.bin").read_bytes(), cp, count)

    hp = _hyperprior()
    hp.load_state_dict(torch.load(d / "hyperprior.pt", weights_only=True))
    streams = HyperpriorStreams.from_bytes((d / "hyperprior.bin").read_bytes())
    decoded["hyperprior"] = hp.decompress(streams).numpy()

    np.savez(d / "decoded.npz", **decoded)


if __name__ == "__main__":
    _, action, directory, threads = sys.argv
    torch.set_num_threads(int(threads))
    {"encode": encode, "decode": decode}[action](Path(directory))
    print(f"{action} ok with {torch.get_num_threads()} threads")

"""Throughput and exactness of nvc.codec.entropy, per model.

    python benchmarks/entropy.py            # 1M symbols per model, 5 runs
    python benchmarks/entropy.py --quick    # 200k symbols, 2 runs -> entropy-quick.json

For each model: encode and decode throughput in Msymbols/s (median over runs; encode
is parameters + values -> bytes, decode is bytes + parameters -> values, including the
scale bucketing and table lookups), bits per symbol, the gap between the coded size and
the model's own integer-table cost, and (where the model has one) the gap to the
training-time likelihood. Prints a table and writes JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nvc.codec.entropy import (
    CategoricalWeightModel,
    FactorizedPrior,
    GaussianConditional,
    GaussianMixtureConditional,
    Hyperprior,
    HyperpriorConfig,
    LaplaceConditional,
    MeanScaleConditional,
    ParametricWeightModel,
)

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Result:
    """One row of the report."""

    model: str  # what was coded
    symbols: int  # symbols per run
    encode_msym_s: float  # median encode throughput, million symbols per second
    decode_msym_s: float  # median decode throughput, million symbols per second
    bits_per_symbol: float  # coded size / symbols
    table_gap_pct: float  # (coded bits / integer-table cost - 1) * 100
    train_gap_pct: float | None  # (coded bits / training-likelihood bits - 1) * 100
    exact: bool  # decoded values equal the encoded ones


def _median_time(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """Median wall time of `runs` calls after one untimed warm-up call (table building)."""
    out = fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def _result(
    name: str,
    n: int,
    enc_t: float,
    dec_t: float,
    data_bits: int,
    table_bits: float,
    train_bits: float | None,
    exact: bool,
) -> Result:
    return Result(
        model=name,
        symbols=n,
        encode_msym_s=n / enc_t / 1e6,
        decode_msym_s=n / dec_t / 1e6,
        bits_per_symbol=data_bits / n,
        table_gap_pct=(data_bits / table_bits - 1) * 100,
        train_gap_pct=None if train_bits is None else (data_bits / train_bits - 1) * 100,
        exact=exact,
    )


def bench_mean_scale(name: str, model: MeanScaleConditional, n: int, runs: int) -> Result:
    rng = np.random.default_rng(0)
    scales = torch.from_numpy(np.exp(rng.uniform(np.log(0.15), np.log(30), n)).astype(np.float32))
    means = torch.from_numpy(rng.normal(0, 5, n).astype(np.float32))
    noise = rng.normal(0, 1, n) if name == "gaussian" else rng.laplace(0, 1, n)
    y = means + scales * torch.from_numpy(noise.astype(np.float32))
    enc_t, data = _median_time(lambda: model.compress(y, scales, means), runs)
    dec_t, y_hat = _median_time(lambda: model.decompress(data, scales, means), runs)
    q = model.symbols(y, means)
    table = model.cost_bits(q, model.scale_indices(scales))
    with torch.no_grad():
        train = float(-torch.log2(model(y, scales, means, "round").likelihoods.double()).sum())
    exact = bool(torch.equal(y_hat, torch.from_numpy(q.astype(np.float32)) + means))
    return _result(name, n, enc_t, dec_t, len(data) * 8, table, train, exact)


def bench_indexed(n: int, runs: int) -> Result:
    """The coder alone: integer symbols with precomputed scale levels."""
    model = GaussianConditional()
    rng = np.random.default_rng(1)
    levels = rng.integers(0, 40, n).astype(np.uint16)
    scales = model.config.scale_table.values[levels]
    q = np.rint(rng.normal(0, scales)).astype(np.int64)
    enc_t, data = _median_time(lambda: model.compress_symbols(q, levels), runs)
    dec_t, out = _median_time(lambda: model.decompress_symbols(data, levels), runs)
    table = model.cost_bits(q, levels)
    exact = bool(np.array_equal(out, q))
    return _result("gaussian (coder only)", n, enc_t, dec_t, len(data) * 8, table, None, exact)


def bench_factorized(n: int, runs: int) -> Result:
    torch.manual_seed(0)
    channels = 192
    prior = FactorizedPrior(channels).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in prior.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen))
    side = max(1, int(round((n / channels) ** 0.5)))
    y = torch.randn(1, channels, side, side, generator=gen) * 3
    count = y.numel()
    prior.update()
    enc_t, data = _median_time(lambda: prior.compress(y), runs)
    dec_t, out = _median_time(lambda: prior.decompress(data, y.shape), runs)
    with torch.no_grad():
        train = float(-torch.log2(prior(y).likelihoods.double()).sum())
    exact = bool(torch.equal(out, torch.round(y)))
    return _result(
        "factorized (192 ch)", count, enc_t, dec_t, len(data) * 8, prior.cost_bits(y), train, exact
    )


def bench_mixture(n: int, runs: int) -> Result:
    k = 3
    rng = np.random.default_rng(2)
    w = rng.dirichlet(np.ones(k), n).astype(np.float32)
    mu = (rng.normal(0, 3, (n, 1)) + rng.normal(0, 1.5, (n, k))).astype(np.float32)
    sc = np.exp(rng.uniform(np.log(0.2), np.log(4.0), (n, k))).astype(np.float32)
    comp = (rng.random(n)[:, None] > np.cumsum(w, 1)).sum(1).clip(0, k - 1)
    rows = np.arange(n)
    y = torch.from_numpy(rng.normal(mu[rows, comp], sc[rows, comp]).astype(np.float32))
    tw, tmu, tsc = (torch.from_numpy(a) for a in (w, mu, sc))
    model = GaussianMixtureConditional()
    enc_t, data = _median_time(lambda: model.compress(y, tw, tmu, tsc), runs)
    dec_t, out = _median_time(lambda: model.decompress(data, tw, tmu, tsc), runs)
    sym = np.rint(y.numpy()).astype(np.int64)
    table = model.cost_bits(sym, model.quantize_params(tw, tmu, tsc))
    with torch.no_grad():
        train = float(-torch.log2(model(y, tw, tmu, tsc, "round").likelihoods.double()).sum())
    exact = bool(torch.equal(out, torch.round(y)))
    return _result("gaussian mixture (K=3)", n, enc_t, dec_t, len(data) * 8, table, train, exact)


def bench_weights(n: int, runs: int) -> list[Result]:
    rng = np.random.default_rng(3)
    v = np.rint(rng.laplace(0, 6, n)).astype(np.int64)
    out = []
    models: list[tuple[str, Any]] = [
        ("weights: discrete gaussian", ParametricWeightModel("gaussian")),
        ("weights: discrete laplace", ParametricWeightModel("laplace")),
        ("weights: categorical empirical", CategoricalWeightModel("empirical")),
        ("weights: categorical adaptive", CategoricalWeightModel("adaptive")),
    ]
    for name, model in models:
        params = model.fit(v)
        enc_t, data = _median_time(lambda m=model, p=params: m.compress(v, p), runs)
        dec_t, back = _median_time(lambda m=model, p=params, d=data: m.decompress(d, p, n), runs)
        train = None
        if isinstance(model, ParametricWeightModel):
            with torch.no_grad():
                lik = model.likelihood(torch.from_numpy(v).double(), params.mean, params.scale)
            train = float(-torch.log2(lik).sum())
        bits = (len(data) + len(params.to_bytes())) * 8
        table = model.cost_bits(v, params) + len(params.to_bytes()) * 8
        exact = bool(np.array_equal(back, v))
        out.append(_result(name, n, enc_t, dec_t, bits, table, train, exact))
    return out


def bench_hyperprior(n: int, runs: int) -> Result:
    """End to end, including h_a and the exact fixed-point h_s (the networks dominate)."""
    torch.manual_seed(0)
    m = 192
    model = Hyperprior(HyperpriorConfig(latent_channels=m, hyper_channels=128)).eval()
    with torch.no_grad():  # untrained, but with plausible outputs: scales near 3, means near 0
        last = model.h_s.layers[-1]
        last.weight.mul_(0.05)
        last.bias[:m] = 3.0
        last.bias[m:] = 0.0
    side = max(4, 4 * int(round((n / m) ** 0.5 / 4)))
    y = torch.randn(1, m, side, side) * 3
    enc_t, enc = _median_time(lambda: model.compress(y), runs)
    dec_t, y_hat = _median_time(lambda: model.decompress(enc.streams), runs)
    with torch.no_grad():
        out = model(y)
    train = float(-torch.log2(out.y_likelihoods.double()).sum())
    train += float(-torch.log2(out.z_likelihoods.double()).sum())
    bits = 8 * (len(enc.streams.y) + len(enc.streams.z))
    with torch.no_grad():
        z_hat = torch.round(model.h_a(y))
    levels, means = model.coding_params(z_hat)
    centred = y.numpy().reshape(-1).astype(np.float64)
    if means is not None:
        centred = centred - means.numpy().reshape(-1).astype(np.float64)
    q = np.rint(centred).astype(np.int64)
    table = model.z_prior.cost_bits(z_hat) + model.y_model.cost_bits(q, levels)
    exact = bool(torch.equal(y_hat, enc.y_hat))
    return _result(
        "hyperprior (incl. networks)", y.numel(), enc_t, dec_t, bits, table, train, exact
    )


def machine_info() -> dict[str, Any]:
    def version(pkg: str) -> str:
        try:
            return importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "versions": {p: version(p) for p in ("numpy", "torch", "constriction", "nvc")},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="200k symbols, 2 runs")
    parser.add_argument("--symbols", type=int, help="symbols per model (default 1M)")
    parser.add_argument("--runs", type=int, help="timed runs per measurement (default 5)")
    parser.add_argument(
        "--out", type=Path, help="JSON path (default results/entropy.json, -quick.json)"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (the coder itself is serial)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = args.out or RESULTS / ("entropy-quick.json" if args.quick else "entropy.json")
    n = args.symbols or (200_000 if args.quick else 1_000_000)
    runs = args.runs or (2 if args.quick else 5)
    torch.manual_seed(0)

    results = [
        bench_mean_scale("gaussian", GaussianConditional(), n, runs),
        bench_mean_scale("laplace", LaplaceConditional(), n, runs),
        bench_indexed(n, runs),
        bench_factorized(n, runs),
        bench_mixture(n, runs),
        *bench_weights(n, runs),
        bench_hyperprior(n, runs),
    ]

    head = f"{'model':32} {'symbols':>9} {'enc Msym/s':>10} {'dec Msym/s':>10} "
    head += f"{'bits/sym':>8} {'vs table':>9} {'vs train':>9} exact"
    print(head)
    for r in results:
        train = "" if r.train_gap_pct is None else f"{r.train_gap_pct:+.3f}%"
        print(
            f"{r.model:32} {r.symbols:>9} {r.encode_msym_s:>10.2f} {r.decode_msym_s:>10.2f} "
            f"{r.bits_per_symbol:>8.3f} {r.table_gap_pct:>+8.4f}% {train:>9} {r.exact}"
        )
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "runs": runs,
        "machine": machine_info(),
        "load_average": list(os.getloadavg()),
        "notes": (
            "Throughput is the median over runs of one call on all symbols (single thread "
            "for the coder). 'vs table' compares the coded size with the sum of -log2 p "
            "under the model's own integer tables (escapes included); 'vs train' with the "
            "training-time likelihood (for the hyperprior: float networks, untrained weights). "
            "Hyperprior throughput includes the h_a and fixed-point h_s networks."
        ),
        "results": [asdict(r) for r in results],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if all(r.exact for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

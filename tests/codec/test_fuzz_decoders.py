"""Fuzzing through every codec's decoder (tests/fuzzing.py): mutated real streams, decoded
in fresh memory-capped worker processes; only nvc errors, no hang, no undetected damage.

The default run tries a few hundred cases; `pytest -m slow` tries thousands. Seeds are
fixed, so a failure reproduces with `python -m tests.fuzzing JOB` (see tests.fuzzing.main).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzzing import OTHER_KINDS, PAYLOAD_KINDS, decoder_worker, session_corpus

SEED = 20261201
# Cases per corpus stream in the default run: decoding is cheap after the worker's start
DEFAULT_CASES = {
    "lossless": 100,
    "fm": 70,
    "inr": 60,
    "inr-nerv": 40,
    "inr-grids": 40,
    "gaussian": 40,
    "gaussian-3d": 40,
    "gaussian-3d-video": 30,
}
SLOW_CASES = 2500
MAX_RSS_MB = 1500  # peak RSS of one worker (torch and the fm model take about 300 MB)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return session_corpus(tmp_path_factory.getbasetemp())


def _check(summary: dict, cases: int) -> None:
    assert summary["cases"] == cases
    assert summary["failures"] == [], summary["failures"][:3]
    assert sum(summary["outcomes"].values()) == cases
    assert summary["peak_rss_mb"] < MAX_RSS_MB


def test_fuzz_every_decoder(corpus: dict[str, Path]) -> None:
    """All corpus streams in one worker process (one start of torch and the models)."""
    streams = {name: (corpus[name], cases) for name, cases in DEFAULT_CASES.items()}
    summaries = decoder_worker(streams, SEED, timeout=300)
    assert sorted(summaries) == sorted(DEFAULT_CASES)
    for name, cases in DEFAULT_CASES.items():
        _check(summaries[name], cases)
        # the damage reached the codec, which refused most of it
        assert summaries[name]["outcomes"].get("BitstreamError", 0) >= cases // 3, name


def test_corpus_has_an_inr_stream_with_grids(corpus: dict[str, Path]) -> None:
    """inr-grids is a network with feature grids (codec parameters version 3), and half its
    payload damage is aimed at the grid section of each MODEL unit."""
    from nvc.bitstream import Reader, UnitType
    from nvc.codec.inr.config import ModelConfig
    from nvc.codec.inr.gridcode import split_payload
    from tests.fuzzing import parse

    with Reader(corpus["inr-grids"]) as reader:
        params = reader.header.codec_params
    assert params[0] == 3
    cfg = ModelConfig.from_bytes(params)
    assert cfg.has_grids and sum(cfg.grid_channels) > 0
    stream = parse(corpus["inr-grids"].read_bytes())
    models = [i for i, u in enumerate(stream.units) if u.type == UnitType.MODEL]
    assert len(models) == 2 and sorted(stream.focus) == models
    for i in models:
        grids, weights = split_payload(stream.units[i].payload)
        assert len(grids) > 0 and len(weights) > 0
        assert stream.focus[i] == len(stream.units[i].payload) - len(weights)
    for name in ("inr", "inr-nerv"):  # no grids: version 2, uniform damage
        assert parse(corpus[name].read_bytes()).focus == {}


def test_every_mutation_kind_is_tried() -> None:
    from tests.fuzzing import case_kind

    kinds = {case_kind(i) for i in range(min(DEFAULT_CASES.values()))}
    assert kinds == set(PAYLOAD_KINDS + OTHER_KINDS)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DEFAULT_CASES))
def test_fuzz_decoder_at_scale(corpus: dict[str, Path], name: str) -> None:
    for part in range(2):
        summaries = decoder_worker(
            {name: (corpus[name], SLOW_CASES // 2)}, SEED + 1000 + part, timeout=1800
        )
        _check(summaries[name], SLOW_CASES // 2)

"""Hostile and damaged files through `nvc decode` and `nvc info`, for every codec.

In a fresh process per case (memory cap, time cap, the child's own peak RSS): a header
forged to 16384x16384 is refused quickly without a big allocation, and mutated files give
a one-line error (exit 1) and no partial output, or decode. In-process: the bad-input
cases of test_cli.py for fm and inr files (that test covers lossless files).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from nvc.cli import main
from tests.fuzzing import assemble, parse, run_cli_fuzz, session_corpus

SEED = 424242
MAX_RSS_MB = 700  # an inr decode of the corpus peaks at about 330 MB (torch, the network)
MAX_SECONDS = 30  # per process, on a busy 2-core machine (a few seconds when idle)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return session_corpus(tmp_path_factory.getbasetemp())


def _check_results(results: list) -> None:
    problems = [(name, r.problem, r.stderr[-200:]) for name, r in results if r.problem]
    assert problems == []
    for name, r in results:
        assert r.seconds < MAX_SECONDS, (name, r.seconds)
        assert r.rss_mb < MAX_RSS_MB, (name, r.rss_mb)


def test_cli_fuzz(corpus: dict[str, Path]) -> None:
    """Per codec a forged 16384x16384 header, per corpus stream one mutated file."""
    results = run_cli_fuzz(corpus, SEED, mutations=1, timeout=120)
    assert len(results) == 4 + len(corpus)
    _check_results(results)
    big = [(name, r) for name, r in results if "16384" in name]
    assert sorted(name.split()[0] for name, _ in big) == ["fm", "gaussian", "inr", "lossless"]
    for name, r in big:
        assert r.rc == 1 and "--max-pixels" in r.stderr, (name, r.stderr)
        assert r.seconds < 10 and r.rss_mb < 150, (name, r.seconds, r.rss_mb)  # not even torch


@pytest.mark.slow
def test_cli_fuzz_at_scale(corpus: dict[str, Path]) -> None:
    results = run_cli_fuzz(corpus, SEED + 1, mutations=60, timeout=300)
    _check_results(results)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _damaged_payload(path: Path) -> bytes:
    """The first payload of over 8 bytes (inr-nerv: a MODEL unit, its FRAME units carry only
    their checksums) with one bit flipped, the container CRC re-forged."""
    stream = parse(path.read_bytes())
    units = list(stream.units)
    i = next(k for k, u in enumerate(units) if len(u.payload) > 8)
    payload = bytearray(units[i].payload)
    payload[len(payload) // 2] ^= 0x08
    units[i] = dataclasses.replace(units[i], payload=bytes(payload))
    return assemble(stream.header_payload, units)


@pytest.mark.parametrize("name", ["fm", "inr", "inr-nerv"])
def test_bad_fm_and_inr_files_give_one_line_errors_and_no_output(
    corpus: dict[str, Path], name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = corpus[name].read_bytes()
    files = {
        "truncated": data[: len(data) * 2 // 3],
        "bit flip": bytes(b ^ 0x40 if i == len(data) // 2 else b for i, b in enumerate(data)),
        "damaged payload, CRC re-forged": _damaged_payload(corpus[name]),
    }
    out = tmp_path / "out.y4m"
    capsys.readouterr()
    for what, content in files.items():
        src = tmp_path / f"{what.replace(' ', '_').replace(',', '')}.nvc"
        src.write_bytes(content)
        before = set(os.listdir(tmp_path))
        for argv in (["decode", str(src), "-o", str(out)], ["decode", str(src), "-o", f"{out}/"]):
            code, stdout, err = _run(capsys, *argv)
            assert code == 1, f"{name} {what}: exit {code}, {err!r}"
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("nvc: error: "), (what, err)
            assert stdout == "" and "Traceback" not in err
            assert set(os.listdir(tmp_path)) == before, f"{name} {what}: left files"
        if what != "damaged payload, CRC re-forged":  # info reads framing, not payloads
            code, _, err = _run(capsys, "info", str(src), "--json")
            assert code == 1 and err.startswith("nvc: error: "), (what, err)


def test_max_pixels_flag(corpus: dict[str, Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "a.y4m"
    code, _, err = _run(
        capsys, "decode", str(corpus["lossless"]), "-o", str(out), "--max-pixels", "700"
    )
    assert code == 1 and "limit of 700 pixels" in err and not out.exists()
    code, _, err = _run(
        capsys, "decode", str(corpus["lossless"]), "-o", str(out), "--max-pixels", str(32 * 24)
    )
    assert code == 0 and out.exists(), err
    code, _, err = _run(
        capsys, "decode", str(corpus["lossless"]), "-o", str(out), "--max-pixels", "0"
    )
    assert code == 2

"""Encode with 2 torch threads in one process, decode with 1 thread in a fresh process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

HELPER = Path(__file__).with_name("_xproc_helper.py")
MODELS = [
    "factorized",
    "gaussian",
    "laplace",
    "mixture",
    "w_gauss",
    "w_emp",
    "w_adapt",
    "hyperprior",
]


def _run(action: str, directory: Path, threads: int) -> None:
    proc = subprocess.run(
        [sys.executable, str(HELPER), action, str(directory), str(threads)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{action} ok with {threads} threads" in proc.stdout


def test_encode_two_threads_decode_one_thread_fresh_process(tmp_path: Path) -> None:
    _run("encode", tmp_path, 2)
    _run("decode", tmp_path, 1)
    expected = np.load(tmp_path / "expected.npz")
    decoded = np.load(tmp_path / "decoded.npz")
    assert sorted(expected.files) == sorted(MODELS) == sorted(decoded.files)
    for name in MODELS:
        e, d = expected[name], decoded[name]
        assert e.shape == d.shape or e.size == d.size, name
        assert np.array_equal(e.reshape(-1), d.reshape(-1)), name
        assert e.dtype.kind == "f" or np.abs(e).max() > 0, name  # payloads are not trivial

"""SIGTERM, SIGHUP and SIGINT in the middle of `nvc encode` / `nvc decode`: exit 128 + the
signal, no partial output, no temporary file.

The input arrives on a pipe that the test controls, so the signal lands while nvc is
provably mid-write: its temporary output exists and more input is still to come.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nvc.media import open_writer, synthetic_clip
from nvc.signals import Terminated, exit_code, exit_on_signals

NVC = [sys.executable, "-m", "nvc.cli"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _y4m_bytes(tmp_path: Path, frames: int) -> bytes:
    path = tmp_path / "src.y4m"
    with open_writer(path, width=32, height=16, fps=25, format="yuv420p") as w:
        for f in synthetic_clip(32, 16, frames, format="yuv420p", seed=5):
            w.write(f)
    data = path.read_bytes()
    path.unlink()
    return data


def _wait_for_temporary(directory: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not any(p.name.endswith(".tmp") for p in directory.iterdir()):
        if proc.poll() is not None:
            raise AssertionError(f"nvc ended early: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
        if time.monotonic() > deadline:
            raise AssertionError("nvc never started writing its output")
        time.sleep(0.05)


def _default_signals() -> None:
    """In the child: SIGINT and SIGHUP at their defaults, whatever pytest was started
    under (`nohup` ignores SIGHUP and a shell's background job ignores SIGINT, and
    ignored dispositions survive exec, so nvc would rightly keep ignoring them)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def _interrupt(argv: list[str], first: bytes, sig: signal.Signals, work: Path) -> tuple[int, str]:
    """Run nvc with `first` on its stdin (kept open), send `sig` once its temporary output
    exists; its exit status and stderr."""
    proc = subprocess.Popen(
        [*NVC, *argv],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
        cwd=work,
        preexec_fn=_default_signals,
    )
    assert proc.stdin is not None and proc.stderr is not None
    proc.stdin.write(first)
    proc.stdin.flush()
    try:
        _wait_for_temporary(work / "out", proc)
        proc.send_signal(sig)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdin.close()
    return rc, proc.stderr.read().decode()


@pytest.mark.parametrize(
    ("sig", "code", "message"),
    [
        (signal.SIGTERM, 143, "nvc: terminated by SIGTERM"),
        (signal.SIGINT, 130, "nvc: interrupted"),
    ],
)
def test_signal_during_encode_leaves_nothing(
    tmp_path: Path, sig: signal.Signals, code: int, message: str
) -> None:
    data = _y4m_bytes(tmp_path, frames=6)
    half = len(data) // 2  # the header and some frames; the rest never comes
    (tmp_path / "out").mkdir()
    rc, err = _interrupt(["encode", "-", "-o", "out/clip.nvc"], data[:half], sig, tmp_path)
    assert rc == code
    assert err.strip() == message
    assert os.listdir(tmp_path / "out") == []  # neither clip.nvc nor a temporary


def test_sighup_during_decode_leaves_nothing(tmp_path: Path) -> None:
    from nvc.cli import main

    (tmp_path / "src.y4m").write_bytes(_y4m_bytes(tmp_path, frames=6))
    assert main(["encode", str(tmp_path / "src.y4m"), "-o", str(tmp_path / "clip.nvc")]) == 0
    stream = (tmp_path / "clip.nvc").read_bytes()
    (tmp_path / "out").mkdir()
    rc, err = _interrupt(
        ["decode", "-", "-o", "out/clip.y4m"], stream[: len(stream) // 2], signal.SIGHUP, tmp_path
    )
    assert rc == 129
    assert err.strip() == "nvc: terminated by SIGHUP"
    assert os.listdir(tmp_path / "out") == []


def test_handlers_are_scoped_and_respect_nohup() -> None:
    before_term = signal.getsignal(signal.SIGTERM)
    previous_hup = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under `nohup`
    try:
        with pytest.raises(Terminated) as info, exit_on_signals():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends
        assert info.value.signum == signal.SIGTERM and exit_code(info.value) == 143
        assert exit_code(KeyboardInterrupt()) == 130
        assert signal.getsignal(signal.SIGTERM) == before_term
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous_hup)
    done = threading.Event()
    threading.Thread(target=lambda: (exit_on_signals().__enter__(), done.set())).start()
    assert done.wait(5)  # outside the main thread it is a no-op, not a ValueError

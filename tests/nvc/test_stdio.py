"""`-` as stdin / stdout: y4m and .nvc streams through real pipes between nvc processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nvc.cli import main
from nvc.codec.pipeline import decode_frames
from nvc.media import Frame, open_writer, synthetic_clip

NVC = [sys.executable, "-m", "nvc.cli"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _clip(tmp_path: Path, frames: int = 4) -> tuple[Path, list[Frame]]:
    clip = list(synthetic_clip(24, 16, frames, format="yuv420p", seed=3))
    path = tmp_path / "clip.y4m"
    with open_writer(path, width=24, height=16, fps=25, format="yuv420p") as w:
        for f in clip:
            w.write(f)
    return path, clip


def test_encode_to_stdout_piped_into_decode_from_stdin_to_stdout(tmp_path: Path) -> None:
    """nvc encode clip.y4m -o - | nvc decode - -o -   gives back clip.y4m byte for byte."""
    src, _ = _clip(tmp_path)
    encode = subprocess.Popen(
        [*NVC, "encode", str(src), "-o", "-"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    assert encode.stdout is not None
    decode = subprocess.run(
        [*NVC, "decode", "-", "-o", "-"],
        stdin=encode.stdout,
        capture_output=True,
        env=ENV,
        timeout=120,
    )
    encode.stdout.close()
    encode_err = encode.communicate(timeout=120)[1].decode()
    assert encode.returncode == 0, encode_err
    assert decode.returncode == 0, decode.stderr.decode()
    assert decode.stdout == src.read_bytes()  # the report lines went to stderr
    assert "4 frames 24x16" in encode_err and "4 frames 24x16" in decode.stderr.decode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.y4m"]  # no file named "-"


def test_y4m_on_stdin_through_a_pipe_is_encoded(tmp_path: Path) -> None:
    """ffmpeg ... -f yuv4mpegpipe - | nvc encode - -o y.nvc  (here Python is the producer)."""
    src, clip = _clip(tmp_path, frames=5)
    out = tmp_path / "y.nvc"
    proc = subprocess.Popen(
        [*NVC, "encode", "-", "-o", str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    stdout, stderr = proc.communicate(src.read_bytes(), timeout=120)  # a pipe: no seeking
    assert proc.returncode == 0, stderr.decode()
    assert stdout.decode().startswith(f"{out}: 5 frames 24x16")
    back = list(decode_frames(out))
    assert [a.equal(b) for a, b in zip(clip, back, strict=True)] == [True] * 5


def test_reports_go_to_stderr_when_stdout_is_the_output(
    tmp_path: Path, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    src, _ = _clip(tmp_path, frames=2)
    nvc_file = tmp_path / "clip.nvc"
    assert main(["encode", str(src), "-o", str(nvc_file)]) == 0
    capfdbinary.readouterr()
    assert main(["encode", str(src), "-o", "-", "--json"]) == 0
    captured = capfdbinary.readouterr()
    assert captured.out == nvc_file.read_bytes()  # only the stream on stdout
    assert json.loads(captured.err)["frames"] == 2
    for stdout in ("-", "/dev/stdout"):  # /dev/stdout: the descriptor, not a rename
        assert main(["decode", str(nvc_file), "-o", stdout]) == 0
        captured = capfdbinary.readouterr()
        assert captured.out == src.read_bytes()
        assert b"2 frames 24x16" in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.nvc", "clip.y4m"]


def test_reader_gone_is_a_one_line_error(tmp_path: Path) -> None:
    """nvc decode x.nvc -o - | (a player that quits): exit 1, one line, no traceback."""
    src, _ = _clip(tmp_path, frames=2)
    assert main(["encode", str(src), "-o", str(tmp_path / "clip.nvc")]) == 0
    proc = subprocess.Popen(
        [*NVC, "decode", str(tmp_path / "clip.nvc"), "-o", "-"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # before nvc has started: its first write meets a closed pipe
    err = proc.communicate(timeout=120)[1].decode()
    assert proc.returncode == 1
    assert err.strip() == "nvc: error: cannot write standard output: Broken pipe"


def test_stdin_to_stdout_is_not_taken_for_overwriting_the_input(tmp_path: Path) -> None:
    """cat clip.y4m | nvc encode - -o - | nvc decode - -o -  is a filter, not a self-overwrite."""
    src, _ = _clip(tmp_path, frames=3)
    encode = subprocess.run(
        [*NVC, "encode", "-", "-o", "-"],
        input=src.read_bytes(),
        capture_output=True,
        env=ENV,
        timeout=120,
    )
    assert encode.returncode == 0, encode.stderr.decode()
    decode = subprocess.run(
        [*NVC, "decode", "-", "-o", "-"],
        input=encode.stdout,
        capture_output=True,
        env=ENV,
        timeout=120,
    )
    assert decode.returncode == 0, decode.stderr.decode()
    assert decode.stdout == src.read_bytes()

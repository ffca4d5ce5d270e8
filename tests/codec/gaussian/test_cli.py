"""`nvc encode --codec gaussian` with its flags, and `nvc decode` of the result."""

from __future__ import annotations

from fractions import Fraction

from nvc.cli import main
from nvc.codec.pipeline import decode_frames
from nvc.media import open_writer

from .conftest import clip


def test_encode_and_decode_through_the_cli(tmp_path, capsys):
    frames = clip(frames=3)
    src = tmp_path / "in.y4m"
    with open_writer(src, width=48, height=32, fps=Fraction(25), format="yuv420p") as w:
        for f in frames:
            w.write(f)
    out = tmp_path / "c.nvc"
    args = ["encode", str(src), "-o", str(out), "--codec", "gaussian", "--gaussians", "30"]
    assert main([*args, "--q", "20", "--time-budget", "1.5", "--device", "cpu"]) == 0
    assert "codec gaussian" in capsys.readouterr().out
    assert len(list(decode_frames(out))) == 3
    assert main(["decode", str(out), "-o", str(tmp_path / "out.y4m")]) == 0


def test_bad_flags_are_one_line_errors(tmp_path, capsys):
    src = tmp_path / "in.y4m"
    with open_writer(src, width=48, height=32, fps=Fraction(25), format="yuv420p") as w:
        w.write(clip(frames=1)[0])
    out = tmp_path / "c.nvc"
    assert main(["encode", str(src), "-o", str(out), "--codec", "gaussian", "--q", "70"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "q must be an integer in 0..63" in err[0]
    assert not out.exists()

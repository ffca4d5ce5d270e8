"""The `nvc` command, run in-process through main() and once as a real console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nvc.cli import main
from nvc.media import open_video
from tests.conftest import write_frames


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as e:  # argparse usage errors and --help
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def frames_of(path: Path, **kw):
    with open_video(path, **kw) as r:
        return list(r)


def assert_same_frames(a, b):
    assert len(a) == len(b) > 0
    for x, y in zip(a, b, strict=True):
        assert x.format == y.format
        for p, q in zip(x.planes, y.planes, strict=True):
            np.testing.assert_array_equal(p, q)


def test_encode_decode_mp4_is_exact_to_the_decoded_input(tmp_path, capsys, mp4_file):
    nvc_path, y4m = tmp_path / "a.nvc", tmp_path / "b.y4m"
    code, out, err = run(
        capsys, "encode", str(mp4_file), "-o", str(nvc_path), "--codec", "lossless"
    )
    assert code == 0, err
    assert "10 frames 96x64" in out and "bpp" in out
    code, out, err = run(capsys, "decode", str(nvc_path), "-o", str(y4m))
    assert code == 0, err
    assert_same_frames(frames_of(mp4_file), frames_of(y4m))


@pytest.mark.parametrize("fmt", ["yuv420p", "yuv444p", "yuv420p10le"])
def test_y4m_roundtrip(tmp_path, capsys, fmt):
    from nvc.media import convert, synthetic_clip

    frames = [convert(f, fmt) for f in synthetic_clip(35, 21, 5, seed=4)]
    src = write_frames(tmp_path / "in.y4m", frames)
    code, _, err = run(capsys, "encode", str(src), "-o", str(tmp_path / "a.nvc"))
    assert code == 0, err
    code, _, err = run(capsys, "decode", str(tmp_path / "a.nvc"), "-o", str(tmp_path / "out.y4m"))
    assert code == 0, err
    assert_same_frames(frames, frames_of(tmp_path / "out.y4m"))


@pytest.mark.parametrize("fmt", ["yuv420p", "yuv420p10le"])
def test_raw_yuv_roundtrip_with_uvg_style_name(tmp_path, capsys, fmt):
    from nvc.media import convert, synthetic_clip

    depth = "10bit" if "10" in fmt else "8bit"
    frames = [convert(f, fmt) for f in synthetic_clip(64, 36, 4, seed=5)]
    src = write_frames(tmp_path / f"Clip_64x36_120fps_420_{depth}_YUV.yuv", frames)
    code, _, err = run(capsys, "encode", str(src), "-o", str(tmp_path / "a.nvc"))
    assert code == 0, err
    code, _, err = run(capsys, "decode", str(tmp_path / "a.nvc"), "-o", str(tmp_path / "o.yuv"))
    assert code == 0, err
    again = frames_of(tmp_path / "o.yuv", size=(64, 36), fps=120, pix_fmt=fmt)
    assert_same_frames(frames, again)


def test_raw_yuv_with_explicit_options_and_frame_limit(tmp_path, capsys, clip):
    src = write_frames(tmp_path / "raw.yuv", clip)
    code, out, err = run(
        capsys, "encode", str(src), "-o", str(tmp_path / "a.nvc"),
        "--size", "67x39", "--fps", "30000/1001", "--pix-fmt", "yuv420p", "--frames", "3",
    )  # fmt: skip
    assert code == 0, err
    assert "3 frames 67x39" in out
    code, out, err = run(capsys, "info", str(tmp_path / "a.nvc"), "--json")
    info = json.loads(out)
    assert info["fps"] == "30000/1001" and info["frames"] == 3


def test_info_json_lists_every_unit(tmp_path, capsys, clip):
    src = write_frames(tmp_path / "in.y4m", clip)
    run(capsys, "encode", str(src), "-o", str(tmp_path / "a.nvc"))
    code, out, err = run(capsys, "info", str(tmp_path / "a.nvc"), "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["codec"] == "lossless" and (info["width"], info["height"]) == (67, 39)
    types = [u["type"] for u in info["units"]]
    assert types[0] == "SEQUENCE_HEADER" and types.count("FRAME") == len(clip)
    # The units tile the file after the 8-byte file header, with nothing unaccounted for.
    units = info["units"]
    for a, b in zip(units, units[1:], strict=False):
        assert a["offset"] + a["size"] == b["offset"]
    assert units[-1]["offset"] + units[-1]["size"] == info["bytes"]
    assert len(info["random_access_points"]) == len(clip)
    code, out, _ = run(capsys, "info", str(tmp_path / "a.nvc"))
    assert code == 0 and "lossless" in out and "FRAME" in out


def test_decode_to_png_directory(tmp_path, capsys, clip):
    src = write_frames(tmp_path / "in.y4m", clip)
    run(capsys, "encode", str(src), "-o", str(tmp_path / "a.nvc"))
    code, _, err = run(capsys, "decode", str(tmp_path / "a.nvc"), "-o", str(tmp_path / "png") + "/")
    assert code == 0, err
    assert len(list((tmp_path / "png").glob("*.png"))) == len(clip)


def _nvc_file(tmp_path: Path, clip) -> Path:
    src = write_frames(tmp_path / "in.y4m", clip)
    main(["encode", str(src), "-o", str(tmp_path / "good.nvc")])
    return tmp_path / "good.nvc"


def _bad_cases(tmp_path: Path, clip) -> list[tuple[str, list[str], Path]]:
    good = _nvc_file(tmp_path, clip)
    data = good.read_bytes()
    text = tmp_path / "notes.txt"
    text.write_text("not a video\n")
    (tmp_path / "fake.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
    (tmp_path / "odd.yuv").write_bytes(b"\x00" * 1000)
    (tmp_path / "trunc.nvc").write_bytes(data[: len(data) // 2])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x40
    (tmp_path / "flip.nvc").write_bytes(bytes(flipped))
    (tmp_path / "empty.nvc").write_bytes(b"")
    out = tmp_path / "out"
    return [
        (
            "missing input",
            ["encode", str(tmp_path / "nope.mp4"), "-o", str(out) + ".nvc"],
            out.with_suffix(".nvc"),
        ),
        ("not a video", ["encode", str(text), "-o", str(out) + ".nvc"], out.with_suffix(".nvc")),
        (
            "broken mp4",
            ["encode", str(tmp_path / "fake.mp4"), "-o", str(out) + ".nvc"],
            out.with_suffix(".nvc"),
        ),
        (
            "raw yuv, no size",
            ["encode", str(tmp_path / "odd.yuv"), "-o", str(out) + ".nvc"],
            out.with_suffix(".nvc"),
        ),
        (
            "raw yuv, size mismatch",
            [
                "encode",
                str(tmp_path / "odd.yuv"),
                "-o",
                str(out) + ".nvc",
                "--size",
                "16x16",
                "--fps",
                "25",
            ],
            out.with_suffix(".nvc"),
        ),
        (
            "unknown codec",
            ["encode", str(tmp_path / "in.y4m"), "-o", str(out) + ".nvc", "--codec", "zz"],
            out.with_suffix(".nvc"),
        ),
        (
            "output into a missing dir",
            ["encode", str(tmp_path / "in.y4m"), "-o", str(tmp_path / "no/dir/a.nvc")],
            tmp_path / "no",
        ),
        (
            "output is the input",
            ["encode", str(tmp_path / "in.y4m"), "-o", str(tmp_path / "in.y4m")],
            out,
        ),
        (
            "decode missing",
            ["decode", str(tmp_path / "nope.nvc"), "-o", str(out) + ".y4m"],
            out.with_suffix(".y4m"),
        ),
        ("decode not nvc", ["decode", str(text), "-o", str(out) + ".y4m"], out.with_suffix(".y4m")),
        (
            "decode empty",
            ["decode", str(tmp_path / "empty.nvc"), "-o", str(out) + ".y4m"],
            out.with_suffix(".y4m"),
        ),
        (
            "decode truncated",
            ["decode", str(tmp_path / "trunc.nvc"), "-o", str(out) + ".y4m"],
            out.with_suffix(".y4m"),
        ),
        (
            "decode corrupted",
            ["decode", str(tmp_path / "flip.nvc"), "-o", str(out) + ".y4m"],
            out.with_suffix(".y4m"),
        ),
        (
            "decode to png, truncated",
            ["decode", str(tmp_path / "trunc.nvc"), "-o", str(out) + "/"],
            out,
        ),
        ("info missing", ["info", str(tmp_path / "nope.nvc")], out),
        ("info not nvc", ["info", str(text)], out),
        ("info truncated", ["info", str(tmp_path / "trunc.nvc")], out),
        ("info corrupted", ["info", str(tmp_path / "flip.nvc"), "--json"], out),
        ("demo unknown codec", ["demo", "--codec", "zz"], out),
    ]


def test_bad_input_gives_exit_1_one_line_and_no_output(tmp_path, capsys, clip):
    cases = _bad_cases(tmp_path, clip)
    capsys.readouterr()
    for name, argv, output in cases:
        before = set(os.listdir(tmp_path))
        code, out, err = run(capsys, *argv)
        assert code == 1, f"{name}: exit {code}, stderr {err!r}"
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("nvc: error: "), f"{name}: {err!r}"
        assert "Traceback" not in err and out == "", name
        assert not output.exists(), f"{name}: left {output}"
        assert set(os.listdir(tmp_path)) == before, (
            f"{name}: left {set(os.listdir(tmp_path)) - before}"
        )


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["encode", "x.mp4"],
        ["encode", "x.mp4", "-o", "a.nvc", "--size", "12"],
        ["decode"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(capsys, argv):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert "usage:" in err


def test_help_explains_each_command(capsys):
    for cmd in ["encode", "decode", "info", "demo"]:
        code, out, _ = run(capsys, cmd, "--help")
        assert code == 0 and "usage: nvc " + cmd in out


def test_console_script_reports_errors_without_traceback(tmp_path):
    exe = shutil.which("nvc", path=os.path.dirname(sys.executable))
    assert exe, "the nvc console script is not installed in this environment"
    out = str(tmp_path / "o.y4m")
    missing = str(tmp_path / "missing.nvc")
    res = subprocess.run([exe, "decode", missing, "-o", out], capture_output=True, text=True)
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    res = subprocess.run(
        [exe, "--debug", "decode", missing, "-o", out], capture_output=True, text=True
    )
    assert res.returncode == 1 and "Traceback" in res.stderr

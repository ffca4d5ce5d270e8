"""`nvc encode/decode` options: --debug anywhere, --start/--frames/--threads, --weights,
--device checks, the encode report (--json), and commands that must not import torch."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from nvc.argtypes import timestamp
from nvc.cli import build_parser, main
from nvc.media import open_video, psnr_yuv, synthetic_clip
from tests.conftest import write_frames

FPS = Fraction(10)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def frames_of(path: Path) -> list:
    with open_video(path) as r:
        return list(r)


def same(a, b) -> bool:
    return a.format == b.format and all(
        np.array_equal(p, q) for p, q in zip(a.planes, b.planes, strict=True)
    )


@pytest.fixture
def source(tmp_path: Path) -> tuple[Path, list]:
    """30 frames at 10 fps (3 s), 64x48 4:2:0, as y4m."""
    frames = list(synthetic_clip(64, 48, 30, fps=FPS, format="yuv420p", seed=7))
    return write_frames(tmp_path / "in.y4m", frames, fps=FPS), frames


def one_line_error(code: int, out: str, err: str) -> str:
    lines = err.strip().splitlines()
    assert code == 1 and out == "" and len(lines) == 1, (code, out, err)
    assert lines[0].startswith("nvc: error: ") and "internal error" not in err
    return lines[0]


# ---- --debug -----------------------------------------------------------------


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_works_before_and_after_the_subcommand(tmp_path, capsys, where):
    missing = str(tmp_path / "missing.nvc")
    argv = ["decode", missing, "-o", str(tmp_path / "o.y4m")]
    one_line_error(*run(capsys, *argv))
    argv = ["--debug", *argv] if where == "before" else [*argv, "--debug"]
    with pytest.raises(OSError):  # --debug: the exception itself, for its traceback
        main(argv)


def test_debug_after_a_streaming_subcommand_is_accepted(capsys):
    code, out, _ = run(capsys, "serve", "--help", "--debug")
    assert code == 0 and "--debug" in out


# ---- times -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("12.5", 12.5), ("1:30", 90.0), ("01:02:03.5", 3723.5), ("00:00:00.040", 0.04), ("0", 0)],
)
def test_timestamp_accepts_seconds_and_clock_times(text, seconds):
    assert math.isclose(timestamp(text), seconds)


@pytest.mark.parametrize("text", ["-1", "1:60", "1:75:00", "a", "1::2", "inf", "nan", "1:2:3:4"])
def test_timestamp_rejects_bad_times(text):
    import argparse

    with pytest.raises(argparse.ArgumentTypeError):
        timestamp(text)


# ---- --start / --frames --------------------------------------------------------


@pytest.mark.parametrize("start", ["1.5", "00:00:01.500"])
def test_encode_start_and_frames_take_the_right_frames(tmp_path, capsys, source, start):
    src, frames = source
    nvc_path, out = tmp_path / "a.nvc", tmp_path / "o.y4m"
    code, text, err = run(
        capsys, "encode", str(src), "-o", str(nvc_path), "--start", start, "--frames", "5"
    )
    assert code == 0, err
    assert "5 frames 64x48" in text
    code, _, err = run(capsys, "decode", str(nvc_path), "-o", str(out))
    assert code == 0, err
    got = frames_of(out)
    assert len(got) == 5 and all(same(a, b) for a, b in zip(got, frames[15:20], strict=True))
    code, text, _ = run(capsys, "info", str(nvc_path), "--json")
    assert [u["pts"] for u in json.loads(text)["units"] if u["type"] == "FRAME"] == list(range(5))


def test_encode_start_past_the_end_is_a_one_line_error(tmp_path, capsys, source):
    src, _ = source
    line = one_line_error(*run(capsys, "encode", str(src), "-o", str(tmp_path / "a.nvc"),
                               "--start", "3"))  # fmt: skip
    assert "--start" in line and not (tmp_path / "a.nvc").exists()


def _fm_stream(tmp_path: Path, src: Path, capsys) -> Path:
    nvc_path = tmp_path / "fm.nvc"
    code, _, err = run(
        capsys, "encode", str(src), "-o", str(nvc_path), "--codec", "fm", "--q", "20",
        "--intra-period", "4", "--frames", "14",
    )  # fmt: skip
    assert code == 0, err
    return nvc_path


def test_decode_start_seeks_to_the_random_access_point_and_drops_earlier_frames(
    tmp_path, capsys, source
):
    src, _ = source
    nvc_path = _fm_stream(tmp_path, src, capsys)
    full, part = tmp_path / "full.y4m", tmp_path / "part.y4m"
    assert run(capsys, "decode", str(nvc_path), "-o", str(full))[0] == 0
    code, text, err = run(
        capsys, "decode", str(nvc_path), "-o", str(part), "--start", "1.0", "--frames", "3"
    )
    assert code == 0, err
    assert "3 frames" in text
    want, got = frames_of(full)[10:13], frames_of(part)
    assert len(got) == 3 and all(same(a, b) for a, b in zip(got, want, strict=True))

    # Frame 5 (inside the group of frames 4..7) is corrupted: a decode that starts at
    # 1.0 s must not read it, because it seeks to the random-access point at frame 8.
    info = json.loads(run(capsys, "info", str(nvc_path), "--json")[1])
    unit = next(u for u in info["units"] if u["type"] == "FRAME" and u["pts"] == 5)
    data = bytearray(nvc_path.read_bytes())
    data[unit["offset"] + unit["size"] - 5] ^= 0xFF
    broken = tmp_path / "broken.nvc"
    broken.write_bytes(bytes(data))
    one_line_error(*run(capsys, "decode", str(broken), "-o", str(tmp_path / "x.y4m")))
    code, _, err = run(
        capsys, "decode", str(broken), "-o", str(part), "--start", "1", "--frames", "3"
    )
    assert code == 0, err
    got = frames_of(part)
    assert len(got) == 3 and all(same(a, b) for a, b in zip(got, want, strict=True))


def test_decode_start_past_the_end_is_a_one_line_error(tmp_path, capsys, source):
    src, _ = source
    run(capsys, "encode", str(src), "-o", str(tmp_path / "a.nvc"))
    line = one_line_error(*run(capsys, "decode", str(tmp_path / "a.nvc"), "-o",
                               str(tmp_path / "o.y4m"), "--start", "00:00:04"))  # fmt: skip
    assert "--start" in line and not (tmp_path / "o.y4m").exists()


# ---- --threads -------------------------------------------------------------------


def test_encode_threads_reach_the_codec_and_do_not_change_fm_output(tmp_path, capsys, source):
    src, _ = source
    outs = []
    for n in ("1", "2"):
        path = tmp_path / f"t{n}.nvc"
        code, _, err = run(capsys, "encode", str(src), "-o", str(path), "--codec", "fm",
                           "--frames", "3", "--threads", n)  # fmt: skip
        assert code == 0, err
        outs.append(path.read_bytes())
    assert outs[0] == outs[1]
    line = one_line_error(*run(capsys, "encode", str(src), "-o", str(tmp_path / "x.nvc"),
                               "--codec", "fm", "--threads", "300"))  # fmt: skip
    assert "threads" in line  # fm's own limit (1..256): the value was passed through


# ---- --device --------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["fm", "inr"])
def test_an_unusable_device_is_a_one_line_error(tmp_path, capsys, source, codec):
    src, _ = source
    out = tmp_path / "a.nvc"
    # cuda:99 is unusable on any machine: no CUDA, or fewer than 100 devices.
    line = one_line_error(*run(capsys, "encode", str(src), "-o", str(out), "--codec", codec,
                               "--device", "cuda:99", "--frames", "2"))  # fmt: skip
    assert "cuda:99" in line and not out.exists()


def test_check_device():
    from nvc.codec.base import check_device
    from nvc.errors import CodecError

    assert check_device("cpu") == "cpu"
    with pytest.raises(CodecError, match="unknown device"):
        check_device("gpu7")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(CodecError, match="sees no CUDA device"):
            check_device("cuda")


# ---- --weights -------------------------------------------------------------------


def _other_weights(path: Path) -> Path:
    """The shipped fm weights, one bias nudged: a model with its own hash."""
    import torch

    from nvc.codec.conditional import weights as wt

    model = wt.load_weights(wt.shipped_path("realtime"))
    with torch.no_grad():
        name, tensor = next((n, t) for n, t in model.named_parameters() if n.endswith("bias"))
        tensor.add_(1e-3)
    wt.save_weights(model, path)
    return path


def test_encode_and_decode_with_a_weights_file(tmp_path, capsys, source):
    src, _ = source
    weights = _other_weights(tmp_path / "mine.pt")
    nvc_path, out = tmp_path / "w.nvc", tmp_path / "o.y4m"
    code, text, err = run(capsys, "encode", str(src), "-o", str(nvc_path), "--codec", "fm",
                          "--frames", "3", "--weights", str(weights), "--json")  # fmt: skip
    assert code == 0, err
    report = json.loads(text)
    # The stream names the file's weights, which this process's decoder does not have...
    line = one_line_error(*run(capsys, "decode", str(nvc_path), "-o", str(out)))
    assert "weights" in line and not out.exists()
    # ... until --weights gives them; the decoded PSNR is the encoder's reported one.
    code, _, err = run(capsys, "decode", str(nvc_path), "-o", str(out), "--weights", str(weights))
    assert code == 0, err
    decoded = frames_of(out)
    mean = sum(psnr_yuv(a, b).weighted for a, b in zip(source[1][:3], decoded, strict=True)) / 3
    assert math.isclose(report["psnr"], mean, rel_tol=1e-9)


def test_variant_and_fast_choose_the_model_and_the_search(tmp_path, capsys, source):
    """--variant realtime2 codes with the shipped v2 model (the stream names it, the decoder
    finds it); --fast turns the encoder's RD search off; both decode to the reported PSNR."""
    from nvc.bitstream import Reader
    from nvc.codec.conditional.codec import FmParams

    src, frames = source
    sizes = {}
    for flags in (["--variant", "realtime2"], ["--variant", "realtime2", "--fast"]):
        nvc_path, out = tmp_path / "v.nvc", tmp_path / "v.y4m"
        code, text, err = run(capsys, "encode", str(src), "-o", str(nvc_path), "--codec", "fm",
                              "--frames", "4", "--json", *flags)  # fmt: skip
        assert code == 0, err
        with Reader(nvc_path) as r:
            assert FmParams.from_bytes(r.header.codec_params).variant == "realtime2"
        assert run(capsys, "decode", str(nvc_path), "-o", str(out))[0] == 0
        decoded = frames_of(out)
        mean = sum(psnr_yuv(a, b).weighted for a, b in zip(frames[:4], decoded, strict=True)) / 4
        report = json.loads(text)
        assert math.isclose(report["psnr"], mean, rel_tol=1e-9)
        sizes[len(flags)] = report["bytes"]
    assert sizes[3] >= sizes[2]  # the search never costs bits
    with pytest.raises(SystemExit):
        build_parser("encode").parse_args(["encode", "a", "-o", "b", "--variant", "huge"])


@pytest.mark.parametrize("kind", ["missing", "not weights"])
def test_a_bad_weights_file_is_a_one_line_error(tmp_path, capsys, source, kind):
    src, _ = source
    weights = tmp_path / "w.pt"
    if kind == "not weights":
        weights.write_text("hello\n")
    out = tmp_path / "a.nvc"
    line = one_line_error(*run(capsys, "encode", str(src), "-o", str(out), "--codec", "fm",
                               "--weights", str(weights)))  # fmt: skip
    assert "w.pt" in line and not out.exists()


# ---- the encode report -----------------------------------------------------------


def test_encode_report_line_and_json_agree_with_the_decoded_file(tmp_path, capsys, source):
    src, frames = source
    nvc_path, out = tmp_path / "a.nvc", tmp_path / "o.y4m"
    code, text, err = run(capsys, "encode", str(src), "-o", str(nvc_path), "--codec", "fm",
                          "--frames", "4", "--json")  # fmt: skip
    assert code == 0, err
    r = json.loads(text)  # stdout holds the JSON and nothing else
    size = nvc_path.stat().st_size
    assert (r["frames"], r["bytes"], r["codec"], r["fps"]) == (4, size, "fm", "10")
    assert math.isclose(r["bpp"], 8 * size / (4 * 64 * 48))
    assert math.isclose(r["kbps"], 8 * size * 10 / 4 / 1000)
    assert r["encode_fps"] > 0 and r["exact"] is False and r["psnr_metric"] == "yuv"
    run(capsys, "decode", str(nvc_path), "-o", str(out))
    decoded = frames_of(out)
    mean = sum(psnr_yuv(a, b).weighted for a, b in zip(frames[:4], decoded, strict=True)) / 4
    assert math.isclose(r["psnr"], mean, rel_tol=1e-9)

    code, text, err = run(capsys, "encode", str(src), "-o", str(tmp_path / "b.nvc"),
                          "--codec", "fm", "--frames", "4")  # fmt: skip
    assert code == 0, err
    line = text.strip().splitlines()[0]
    assert f"PSNR {mean:.2f} dB YUV" in line and "kbit/s" in line and "fps)" in line


def test_lossless_report_says_psnr_is_not_available(tmp_path, capsys, source):
    src, _ = source
    code, text, err = run(capsys, "encode", str(src), "-o", str(tmp_path / "a.nvc"))
    assert code == 0, err
    assert "PSNR n/a" in text and "kbit/s" in text
    code, text, _ = run(capsys, "encode", str(src), "-o", str(tmp_path / "b.nvc"), "--json")
    r = json.loads(text)
    assert r["psnr"] is None and r["exact"] is None and r["codec"] == "lossless"


# ---- no torch for light commands -------------------------------------------------


def test_version_help_info_and_lossless_do_not_import_torch(tmp_path, source):
    src, _ = source
    script = textwrap.dedent(
        f"""
        import sys
        from nvc.cli import main
        for argv in (["--version"], ["--help"], ["encode", "--help"], ["train", "--help"]):
            if argv == ["train", "--help"]:
                assert "torch" not in sys.modules, "before train --help"
                break
            try:
                main(argv)
            except SystemExit:
                pass
        nvc, out = {str(tmp_path / "a.nvc")!r}, {str(tmp_path / "o.y4m")!r}
        assert main(["encode", {str(src)!r}, "-o", nvc, "--start", "0.5", "--threads", "2"]) == 0
        assert main(["info", nvc]) == 0
        assert main(["decode", nvc, "-o", out, "--start", "1", "--threads", "2"]) == 0
        assert main(["demo", "--codec", "lossless", "--frames", "2", "--size", "32x16"]) == 0
        print("TORCH", "torch" in sys.modules)
        """
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "TORCH False"


def test_the_train_command_still_has_its_full_parser(capsys):
    code, out, _ = run(capsys, "train", "--help")
    assert code == 0 and "--export" in out


def test_console_script_debug_after_the_subcommand_shows_the_traceback(tmp_path):
    exe = shutil.which("nvc", path=os.path.dirname(sys.executable))
    assert exe, "the nvc console script is not installed in this environment"
    missing = str(tmp_path / "missing.nvc")
    res = subprocess.run(
        [exe, "decode", missing, "-o", str(tmp_path / "o.y4m"), "--debug"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 1 and "Traceback" in res.stderr


def test_decode_threads_hold_for_the_decode_and_are_restored():
    import torch

    from nvc.codec.base import torch_threads

    old = torch.get_num_threads()
    with torch_threads(old + 2):
        assert torch.get_num_threads() == old + 2
    assert torch.get_num_threads() == old


def test_encode_start_on_a_container_input(tmp_path, capsys, mp4_file):
    nvc_path, out = tmp_path / "a.nvc", tmp_path / "o.y4m"
    # 25 fps: 0.2 s is frame 5
    code, text, err = run(
        capsys, "encode", str(mp4_file), "-o", str(nvc_path), "--start", "0.2", "--frames", "3"
    )
    assert code == 0, err
    assert run(capsys, "decode", str(nvc_path), "-o", str(out))[0] == 0
    want, got = frames_of(mp4_file)[5:8], frames_of(out)
    assert len(got) == 3 and all(same(a, b) for a, b in zip(got, want, strict=True))

"""`nvc bench` end to end: outputs written, quick runs labelled, errors, a real kill."""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nvc.bench import cli, published, report
from nvc.media import open_writer, synthetic_clip

SMALL = ["--points", "x264=[24,32,40]", "--points", "x265=[24,32,40]", "--threads", "1"]


@pytest.fixture
def clip_file(tmp_path: Path) -> Path:
    path = tmp_path / "clip.y4m"
    frames = synthetic_clip(96, 64, 6, seed=5)
    with open_writer(path, width=96, height=64, fps=25, format="yuv420p") as w:
        for f in frames:
            w.write(f)
    return path


def test_input_run_writes_json_csv_markdown_and_png(
    clip_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["--input", str(clip_file), "--codecs", "nosuch,x264,x265", "--frames", "4"]
    assert cli.main([*argv, *SMALL, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "QUICK RUN" in err
    assert "'nosuch' is not registered" in err

    data = json.loads((out / "rd.json").read_text())
    assert data["command"].startswith("nvc bench --input")
    assert data["protocol"]["quick"] is True and "Not a UVG result" in data["protocol"]["statement"]
    assert set(data["machine"]) >= {"cpu", "cores", "platform"}
    assert data["versions"]["av"] and "revision" in data["git"]
    rows = data["rows"]
    assert {r["codec"] for r in rows} >= {"x264", "x265"}
    assert all(r["sequence"] == "clip" and r["frames"] == 4 for r in rows)
    x264 = data["bd"]["metrics"]["psnr_rgb"]["average"][0]
    assert x264["codec"] == "x264" and x264["bd_rate"] is not None

    with (out / "rd.csv").open() as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows)
    assert all("QUICK RUN" in line["protocol"] for line in table)

    md = (out / "rd.md").read_text()
    assert "QUICK RUN" in md and "| x264 medium |" in md and "![RD curves](rd.png)" in md
    png = (out / "rd.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000

    # Running again resumes: nothing new is measured, the outputs are rewritten.
    assert cli.main([*argv, *SMALL, "--out", str(out)]) == 0
    assert "resuming: 6 of 6 rows" in capsys.readouterr().err


def test_one_png_per_sequence_plus_the_average(tmp_path: Path) -> None:
    out = tmp_path / "o"
    argv = ["--synthetic", "64x48", "--synthetic", "80x48", "--frames", "3", "--codecs", "x264"]
    assert cli.main([*argv, *SMALL, "--out", str(out), "--name", "two", "--quiet"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert "two.png" in names and "two_synthetic-64x48.png" in names
    assert "two_synthetic-80x48.png" in names
    data = json.loads((out / "two.json").read_text())
    assert {r["codec"] for r in data["rows"]} == {"x264", "x265"}  # the anchor is added


def test_missing_uvg_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--uvg", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "ultravideo.fi/dataset.html" in err and err.count("\n") == 1


def test_nothing_to_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--out", str(tmp_path)]) == 1
    assert "--input" in capsys.readouterr().err


def test_add_parser_wires_a_bench_subcommand() -> None:
    parser = argparse.ArgumentParser(prog="nvc")
    sub = parser.add_subparsers(dest="command")
    cli.add_parser(sub)
    args = parser.parse_args(["bench", "--synthetic", "64x48", "--quick", "--codecs", "x264"])
    assert args.run is cli.run and args.quick and args.synthetic == [(64, 48)]
    with pytest.raises(SystemExit):
        parser.parse_args(["bench", "--scale", "65x48"])


def test_module_help_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nvc.bench.cli", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "--uvg DIR" in result.stdout


def test_published_curves_are_drawn_only_when_marked(tmp_path: Path) -> None:
    rows = []
    for codec, kind, shift in (("x265", "anchor", 0.0), ("inr", "nvc", 1.0)):
        for i, rate in enumerate((0.01, 0.03, 0.1)):
            rows.append(
                {
                    "sequence": "Beauty",
                    "codec": codec,
                    "label": codec,
                    "kind": kind,
                    "point": {"i": i},
                    "point_label": f"i={i}",
                    "bpp": rate,
                    "psnr_rgb": 33.0 + 2 * i + shift,
                    "psnr_yuv": 35.0 + 2 * i + shift,
                    "ms_ssim_db": 15.0 + i + shift,
                }
            )
    meta = {"protocol": {"statement": "UVG protocol", "quick": False}}
    rep = report.Report("p", meta, rows, [], anchor="x265", published_ok=True)
    paths = report.write_all(rep, tmp_path)
    assert "VTM 17 RA (published)" not in paths["md"].read_text()  # the table holds measurements
    assert "Published reference curves" in paths["md"].read_text()
    assert paths["png"].stat().st_size > 10_000
    bd = json.loads(paths["json"].read_text())["bd"]["metrics"]["psnr_rgb"]["average"]
    assert bd[0]["bd_quality"] == pytest.approx(1.0)
    assert len(published.curves("average")) >= 6 and published.curves("Beauty")


def test_published_data_is_well_formed() -> None:
    for seq in [
        "average",
        "Beauty",
        "Bosphorus",
        "HoneyBee",
        "Jockey",
        "ReadySteadyGo",
        "ShakeNDry",
        "YachtRide",
    ]:
        for c in published.curves(seq):
            assert len(c.bpp) == len(c.psnr) >= 3
            assert list(c.bpp) == sorted(c.bpp)
            assert min(c.psnr) > 25 and max(c.psnr) < 50
            assert c.source and c.url.startswith("https://")
    assert any(b["system"] == "DCVC-FM" for b in published.bd_rates())


def test_killed_process_resumes_without_duplicate_rows(tmp_path: Path) -> None:
    out = tmp_path / "k"
    argv = [
        sys.executable, "-m", "nvc.bench.cli", "--synthetic", "256x144", "--frames", "8",
        "--codecs", "x265", "--points", "x265=[20,23,26,29,32,35,38,41,44,47]",
        "--threads", "1", "--no-ms-ssim", "--quiet", "--out", str(out),
    ]  # fmt: skip
    state = out / "rd.state.jsonl"
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if state.exists() and state.read_text().count('"type": "row"') >= 2:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    killed_rows = state.read_text().count('"type": "row"')
    assert 2 <= killed_rows < 10  # killed in the middle of the run
    assert subprocess.run(argv, capture_output=True).returncode == 0
    lines = [json.loads(x) for x in state.read_text().splitlines()]
    keys = [x["key"] for x in lines if x["type"] == "row"]
    assert len(keys) == len(set(keys)) == 10
    data = json.loads((out / "rd.json").read_text())
    assert len(data["rows"]) == 10


def test_progress_is_live_on_a_terminal_only() -> None:
    import io

    from nvc.bench.runner import Reporter

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        r = Reporter(stream)
        r.status("[1/2] clip x265 crf=27 encode 3/30", force=True)
        r.line("[1/2] clip x265 crf=27: done")
    assert "\r[1/2] clip x265 crf=27 encode 3/30" in tty.getvalue()
    assert pipe.getvalue() == "[1/2] clip x265 crf=27: done\n"


@pytest.mark.slow
def test_uvg_protocol_end_to_end(tmp_path: Path) -> None:
    """Seven 2-frame 1080p files under UVG names run as the UVG protocol, published curves on."""
    import numpy as np

    frames = synthetic_clip(1920, 1080, 2, seed=9)
    data = b"".join(np.ascontiguousarray(p).tobytes() for f in frames for p in f.planes)
    uvg = tmp_path / "UVG"
    uvg.mkdir()
    for name in ["Beauty", "Bosphorus", "HoneyBee", "Jockey", "ReadySteadyGo", "ShakeNDry",
                 "YachtRide"]:  # fmt: skip
        (uvg / f"{name}_1920x1080_120fps_420_8bit_YUV.yuv").write_bytes(data)
    out = tmp_path / "out"
    argv = ["--uvg", str(uvg), "--codecs", "x265", "--points", "x265=[30,38]", "--no-ms-ssim"]
    assert cli.main([*argv, "--threads", "2", "--out", str(out), "--quiet"]) == 0
    result = json.loads((out / "rd.json").read_text())
    assert result["protocol"]["kind"] == "uvg" and result["published_curves_drawn"] is True
    assert len(result["rows"]) == 14 and all(r["fps"] == "120" for r in result["rows"])
    assert len(list(out.glob("rd_*.png"))) == 7
    assert "Published reference curves" in (out / "rd.md").read_text()


@pytest.mark.slow
def test_runs_the_inr_codec(clip_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "inr"
    points = 'inr=[{"bpp": 0.2, "time_budget": 3}, {"bpp": 0.5, "time_budget": 3}]'
    argv = ["--input", str(clip_file), "--codecs", "inr,x264,x265", "--frames", "4"]
    assert cli.main([*argv, *SMALL, "--points", points, "--out", str(out), "--quiet"]) == 0
    rows = json.loads((out / "rd.json").read_text())["rows"]
    inr = [r for r in rows if r["codec"] == "inr"]
    assert len(inr) == 2 and all(r["bytes_counted"] == ".nvc file" for r in inr)
    assert all(r["psnr_rgb"] > 0 and r["bpp"] > 0 and r["decode_fps"] > 0 for r in inr)

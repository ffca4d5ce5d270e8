"""The serve / play / live subcommands through argparse, as `nvc` will run them."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from nvc.errors import NvcError
from nvc.media import open_video
from nvc.player.cli import add_parsers
from nvc.player.source import FileSource
from tests.player.helpers import Serving, reference


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nvc")
    add_parsers(p.add_subparsers(dest="command", required=True))
    return p


def test_the_subcommands_parse():
    p = parser()
    a = p.parse_args(["serve", "x.nvc", "--loop", "--port", "0", "--max-retransmits", "0"])
    assert (a.input, a.loop, a.port, a.max_retransmits, a.host) == (
        "x.nvc",
        True,
        0,
        0,
        "127.0.0.1",
    )
    a = p.parse_args(["play", "http://127.0.0.1:8080", "-o", "o.y4m", "--view", "--stats"])
    assert (a.output, a.view, a.stats) == ("o.y4m", True, True)
    a = p.parse_args(["live", "testsrc", "--codec", "lossless", "--size", "320x180", "--fps", "30"])
    assert (a.source, a.codec, a.size, a.fps) == ("testsrc", "lossless", (320, 180), 30)
    for bad in (
        ["serve"],
        ["play"],
        ["serve", "x", "--drop-rate", "1.5"],
        ["live", "x", "--size", "0x1"],
    ):
        with pytest.raises(SystemExit):
            p.parse_args(bad)


def test_the_cli_module_is_cheap_to_import():
    code = "import sys, nvc.player.cli; print('aiortc' in sys.modules, 'aiohttp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


class ServerThread:
    """A StreamServer in its own thread and event loop, for commands that call asyncio.run."""

    def __init__(self, source) -> None:
        self.source = source
        self.url: str | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with Serving(self.source) as (_, url):
            self.url = url
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> str:
        self._thread.start()
        assert self._ready.wait(10)
        assert self.url
        return self.url

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def test_play_records_and_reports(lossless_file, tmp_path, capsys):
    out, stats_file = tmp_path / "out.y4m", tmp_path / "stats.json"
    with ServerThread(FileSource(lossless_file)) as url:
        args = parser().parse_args(
            ["play", url, "-o", str(out), "--no-drop", "--stats", "--stats-json", str(stats_file)]
        )
        assert args.run(args) == 0
    with open_video(out) as r:
        got = list(r)
    assert len(got) == 25 and all(
        a.equal(b) for a, b in zip(got, reference(lossless_file), strict=True)
    )
    stats = json.loads(stats_file.read_text())
    assert stats["frames_presented"] == 25 and stats["latency_ms_median"] is not None
    assert "decode" in capsys.readouterr().err


def test_user_errors_are_nvc_errors(tmp_path):
    p = parser()
    args = p.parse_args(["play", "http://127.0.0.1:9", "--timeout", "3"])
    with pytest.raises(NvcError, match="cannot reach"):
        args.run(args)
    args = p.parse_args(["play", "ftp://x"])
    with pytest.raises(NvcError, match="http"):
        args.run(args)
    args = p.parse_args(["serve", str(tmp_path / "missing.nvc")])
    with pytest.raises(NvcError, match="no such file"):
        args.run(args)
    args = p.parse_args(["live", "testsrc", "--codec", "nope"])
    with pytest.raises(NvcError, match="unknown codec"):
        args.run(args)
    args = p.parse_args(["live", "testsrc", "--codec", "fm", "--q", "70", "--no-residual"])
    with pytest.raises(NvcError, match="0..63"):  # the options reach the codec
        args.run(args)
    args = p.parse_args(["live", "testsrc", "--codec", "lossless", "--intra-period", "4"])
    with pytest.raises(NvcError, match="intra_period"):
        args.run(args)


def test_serve_and_play_as_processes(lossless_file, tmp_path):
    """`python -m nvc.player serve` in a process, then `play` in another, then Ctrl-C."""
    root = Path(__file__).resolve().parents[2]
    serve = subprocess.Popen(
        [sys.executable, "-m", "nvc.player", "serve", str(lossless_file), "--port", "0"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = serve.stdout.readline() if serve.stdout else ""
        assert "serving" in line, line
        url = line.split(" at ")[1].split()[0]
        out = tmp_path / "p.y4m"
        played = subprocess.run(
            [sys.executable, "-m", "nvc.player", "play", url, "-o", str(out), "--no-drop"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert played.returncode == 0, played.stderr
        with open_video(out) as r:
            assert sum(1 for _ in r) == 25
    finally:
        serve.send_signal(2)  # SIGINT: a clean stop
        try:
            code = serve.wait(15)
        except subprocess.TimeoutExpired:
            serve.kill()
            code = serve.wait()
    assert code == 0


def test_play_decode_threads_sets_the_decoders_torch_threads(tmp_path):
    """`--decode-threads N`: a neural decoder in the player runs with N torch threads."""
    from dataclasses import dataclass

    import torch

    from nvc.codec import registry
    from nvc.codec.base import CodecSpec
    from tests.player.helpers import GopDecoder, GopEncoder, make_file

    @dataclass(frozen=True)
    class Cfg:
        gop: int = 5

    seen: set[int] = set()

    class ThreadsDecoder(GopDecoder):
        def decode(self, unit):
            seen.add(torch.get_num_threads())
            return super().decode(unit)

    spec = CodecSpec(9007, "testthreads", "test", Cfg, GopEncoder, ThreadsDecoder)
    registry.register(spec)
    before = torch.get_num_threads()
    try:
        path = make_file(tmp_path / "t.nvc", frames=10, codec="testthreads")
        for threads in (2, 1):
            torch.set_num_threads(3 - threads)  # something else before playback
            seen.clear()
            with ServerThread(FileSource(path)) as url:
                args = parser().parse_args(
                    ["play", url, "--no-drop", "--decode-threads", str(threads)]
                )
                assert args.run(args) == 0
            assert seen == {threads}
    finally:
        torch.set_num_threads(before)
        registry.unregister(spec)


def test_play_max_latency_option():
    p = parser()
    assert p.parse_args(["play", "http://x"]).max_latency == 1.0
    assert p.parse_args(["play", "http://x", "--max-latency", "0.25"]).max_latency == 0.25
    with pytest.raises(SystemExit):
        p.parse_args(["play", "http://x", "--max-latency", "-1"])


def test_play_says_what_it_concealed(tmp_path, capsys):
    from nvc.bitstream import Unit, Writer
    from tests.player.helpers import file_units, make_file

    src = make_file(tmp_path / "ll.nvc", frames=10)
    header, units = file_units(src)
    damaged = tmp_path / "damaged.nvc"
    with Writer(damaged, header) as w:
        for u in units:
            payload = u.payload[:-600] if u.pts in (2, 5) else u.payload
            w.write(Unit(u.type, payload, u.pts, u.rap))
    out = tmp_path / "out.y4m"
    with ServerThread(FileSource(damaged)) as url:
        args = parser().parse_args(["play", url, "--no-drop", "-o", str(out)])
        assert args.run(args) == 0
    assert "nvc: concealed: 2 units that did not decode" in capsys.readouterr().err
    with open_video(out) as r:
        got = list(r)
    expected = [f for f in reference(src) if f.pts not in (2, 5)]
    assert len(got) == 8 and all(a.equal(b) for a, b in zip(got, expected, strict=True))


def test_play_max_pixels_refuses_a_stream_of_larger_frames(lossless_file, tmp_path, capsys):
    """--max-pixels below the stream's picture: no decoder is built, nothing is recorded or
    shown, and the player says so in one line; at the picture's own size it plays."""
    from nvc.bitstream import Reader

    with Reader(lossless_file) as r:
        pixels = r.header.width * r.header.height
    out = tmp_path / "out.y4m"
    with ServerThread(FileSource(lossless_file)) as url:
        args = parser().parse_args(["play", url, "-o", str(out), "--max-pixels", str(pixels - 1)])
        with pytest.raises(NvcError, match="no frame was presented"):
            args.run(args)
        assert not out.exists()
        assert "--max-pixels" in capsys.readouterr().err
        args = parser().parse_args(["play", url, "-o", str(out), "--max-pixels", str(pixels)])
        assert args.run(args) == 0
    with open_video(out) as r:
        assert len(list(r)) == 25

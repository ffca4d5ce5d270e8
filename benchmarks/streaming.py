"""Streaming on loopback: latency, decode speed, and how many viewers stay real time.

    python benchmarks/streaming.py            # full run  -> benchmarks/results/streaming.json
    python benchmarks/streaming.py --quick    # short run -> benchmarks/results/streaming-quick.json

What it measures (the server runs in its own process, `python -m nvc.player serve|live`;
the players run in this process, so the numbers are for one machine doing both):

- live: `live testsrc` at 640x360, 30 fps, lossless codec, one player; end-to-end latency
  from the capture of a frame to its presentation (median, p95) against the target of
  150 ms plus one frame interval; per-frame encode time; frames dropped. Then the same
  with a natural clip (a y4m file played live at its rate) at 320x180 and 640x360,
  whose lossless coding makes 7 and 28 Mb/s: a stress far above a neural codec's rate.
- file: a 640x360 lossless file served in a loop, one player; latency from the server's
  release of a unit (its presentation time on the stream clock) to presentation.
- viewers: a file served in a loop to 1, 2, 4, 8, ... players at once; a player is held
  at real time when it presents at least 90% of the frames the stream had in that time,
  with at most 5% late or dropped and nothing skipped by the server or lost. Reports the
  largest count held (stops at the first count that is not), for a heavy stream (lossless
  320x180 natural clip, ~8.6 Mb/s) and a light one (lossless 640x360 testsrc, ~0.4 Mb/s,
  the rate of a neural codec).
- inr: a 640x360 clip coded with the inr codec's `realtime` preset (a few training
  epochs: decode speed does not depend on them), served and played by `play` in a fresh
  process, with torch's default thread count and with `--decode-threads 1`; decode fps
  and whether playback kept up (skipped with --skip-inr or when the codec is not there).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nvc.codec import registry  # noqa: E402
from nvc.codec.base import StreamInfo  # noqa: E402
from nvc.codec.pipeline import encode_frames  # noqa: E402
from nvc.media import synthetic_clip  # noqa: E402
from nvc.player.pattern import TestPattern  # noqa: E402
from nvc.player.player import Player, PlayerConfig, PlayerStats  # noqa: E402


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in load] if load else None,
    }


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("nvc", "aiortc", "aiohttp", "aioice", "av", "numpy", "torch"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
        out["git"] = rev.stdout.strip() or None
    except OSError:
        out["git"] = None
    return out


class ServerProcess:
    """`python -m nvc.player ARGS --port 0` until stopped; .url is its base URL."""

    def __init__(self, *args: str) -> None:
        self.args = [sys.executable, "-m", "nvc.player", *args, "--port", "0"]
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> ServerProcess:
        self.proc = subprocess.Popen(
            self.args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if " at " not in line:
            self.__exit__()
            raise RuntimeError(f"the server did not start: {' '.join(self.args)}")
        self.url = line.split(" at ")[1].split()[0]
        return self

    def info(self) -> dict[str, Any]:
        import urllib.request

        with urllib.request.urlopen(self.url + "/", timeout=10) as r:
            return dict(json.loads(r.read()))

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(2)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def make_lossless(path: Path, size: tuple[int, int], frames: int, fps: int) -> Path:
    clip = synthetic_clip(size[0], size[1], frames, fps=fps, seed=7)
    stream = StreamInfo(size[0], size[1], Fraction(fps), "yuv420p", frame_count=frames)
    encode_frames(clip, stream, path, codec="lossless")
    return path


async def play(url: str, seconds: float | None, **config: Any) -> PlayerStats:
    return await Player(PlayerConfig(url, duration=seconds, **config)).run()


def player_summary(stats: PlayerStats) -> dict[str, Any]:
    s = stats.summary()
    keep = [
        "frames_presented",
        "frames_late",
        "frames_dropped",
        "units_lost",
        "units_skipped",
        "units_skipped_by_server",
        "units_dropped_late",
        "decode_errors",
        "clock_resets",
        "decode_fps",
        "latency_ms_median",
        "latency_ms_p95",
        "bitrate_kbps",
        "end_reason",
    ]
    out = {k: s[k] for k in keep}
    for k in ("decode_fps", "latency_ms_median", "latency_ms_p95", "bitrate_kbps"):
        if out[k] is not None:
            out[k] = round(out[k], 1)
    return out


def bench_live(source: str, what: str, seconds: float, *extra: str) -> dict[str, Any]:
    fps = 30
    with ServerProcess("live", source, "--codec", "lossless", *extra) as server:
        stats = asyncio.run(play(server.url, seconds))
        encoder = server.info()["source"]["encoder"]
    result = player_summary(stats)
    target = 150 + 1000 / fps
    median = result["latency_ms_median"]
    for k in ("encode_ms_median", "encode_ms_p95", "encode_ms_max"):
        if encoder.get(k) is not None:
            encoder[k] = round(encoder[k], 2)
    return {
        "what": what + "; latency = capture -> presentation",
        "seconds": seconds,
        "player": result,
        "encoder": encoder,
        "target_latency_ms_median": round(target, 1),
        "meets_target": median is not None and median < target,
    }


def write_y4m(path: Path, size: tuple[int, int], frames: int, fps: int) -> Path:
    from nvc.media import open_writer

    clip = synthetic_clip(size[0], size[1], frames, fps=fps, seed=7)
    with open_writer(path, width=size[0], height=size[1], fps=fps, format="yuv420p") as w:
        for frame in clip:
            w.write(frame)
    return path


def bench_file(work: Path, seconds: float, frames: int) -> dict[str, Any]:
    path = make_lossless(work / "file640.nvc", (640, 360), frames, 30)
    with ServerProcess("serve", str(path), "--loop") as server:
        stats = asyncio.run(play(server.url, seconds))
    return {
        "what": "lossless 640x360 30 fps file, looped; latency = release -> presentation",
        "seconds": seconds,
        "bytes_per_frame": path.stat().st_size // frames,
        "player": player_summary(stats),
    }


def held(stats: PlayerStats, expected: float) -> bool:
    shown = stats.frames_presented
    bad = stats.frames_late + stats.frames_dropped
    return (
        shown >= 0.9 * expected
        and bad <= 0.05 * max(shown, 1)
        and stats.units_skipped_by_server == 0
        and stats.units_lost == 0
        and stats.units_dropped_late == 0
    )


def make_pattern(path: Path, size: tuple[int, int], frames: int, fps: int) -> Path:
    pattern = TestPattern(size[0], size[1], Fraction(fps))
    stream = StreamInfo(size[0], size[1], Fraction(fps), "yuv420p", frame_count=frames)
    encode_frames((pattern.frame(k) for k in range(frames)), stream, path, codec="lossless")
    return path


def bench_viewers(path: Path, what: str, seconds: float, counts: list[int]) -> dict[str, Any]:
    fps = 30
    rows = []
    best = 0
    for n in counts:
        with ServerProcess(
            "serve", str(path), "--loop", "--wait-for", str(n), "--max-viewers", str(n)
        ) as server:

            async def many(url: str = server.url, n: int = n) -> list[PlayerStats]:
                return list(await asyncio.gather(*(play(url, seconds) for _ in range(n))))

            all_stats = asyncio.run(many())
        # the stream starts with the last player; each plays `seconds` from its own start
        expected = (seconds - 0.5) * fps
        ok = all(held(s, expected) for s in all_stats)
        lat = [s.summary()["latency_ms_p95"] or 0.0 for s in all_stats]
        rows.append(
            {
                "viewers": n,
                "held": ok,
                "frames_presented_min": min(s.frames_presented for s in all_stats),
                "frames_late_total": sum(s.frames_late for s in all_stats),
                "frames_dropped_total": sum(s.frames_dropped for s in all_stats),
                "units_skipped_by_server_total": sum(s.units_skipped_by_server for s in all_stats),
                "latency_ms_p95_max": round(max(lat), 1),
                "bitrate_kbps_each": round(statistics.mean(s.bitrate_kbps or 0 for s in all_stats)),
            }
        )
        print(f"  viewers {n}: {'held' if ok else 'NOT held'} {rows[-1]}", flush=True)
        if not ok:
            break
        best = n
    return {
        "what": what,
        "seconds": seconds,
        "rule": ">= 90% of frames shown, <= 5% late or dropped, nothing skipped or lost",
        "max_viewers_held": best,
        "runs": rows,
    }


def decode_timing(path: Path) -> dict[str, Any]:
    """Per-frame decode times of a file, decoder created afresh (in this process)."""
    from nvc.bitstream import Reader

    times = []
    with Reader(path) as reader:
        decoder = registry.get(reader.header.codec_id).create_decoder(reader.header)
        for unit in reader:
            t0 = time.perf_counter()
            frames = decoder.decode(unit)
            if frames:
                times.append(1000 * (time.perf_counter() - t0))
    steady = sorted(times[10:]) or sorted(times)
    return {
        "frames": len(times),
        "first_frame_ms": round(times[0], 1),
        "steady_ms_median": round(statistics.median(steady), 1),
        "steady_fps": round(1000 / statistics.median(steady), 1),
        "overall_fps": round(1000 * len(times) / sum(times), 1),
    }


def play_process(url: str, work: Path, *extra: str) -> dict[str, Any]:
    """`python -m nvc.player play URL` in a fresh process (a cold decoder, as a user gets)."""
    stats_file = work / "play-stats.json"
    subprocess.run(
        [sys.executable, "-m", "nvc.player", "play", url, "--stats-json", str(stats_file), *extra],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=600,
    )
    return dict(json.loads(stats_file.read_text()))


def bench_inr(work: Path, frames: int) -> dict[str, Any]:
    if "inr" not in registry.names():
        return {"skipped": "the inr codec is not registered"}
    fps = 30
    path = work / "inr.nvc"
    clip = synthetic_clip(640, 360, frames, fps=fps, seed=7)
    stream = StreamInfo(640, 360, Fraction(fps), "yuv420p", frame_count=frames)
    t0 = time.perf_counter()
    options = {"preset": "realtime", "epochs": 2, "group_size": frames, "threads": 1}
    encode_frames(clip, stream, path, codec="inr", options=options)
    encode_s = time.perf_counter() - t0
    runs = {}
    for name, extra in (("default_threads", ()), ("decode_threads_1", ("--decode-threads", "1"))):
        with ServerProcess("serve", str(path)) as server:
            runs[name] = play_process(server.url, work, *extra)
    keys = [
        "frames_presented",
        "frames_late",
        "frames_dropped",
        "clock_resets",
        "decode_fps",
        "latency_ms_median",
        "latency_ms_p95",
        "bitrate_kbps",
        "end_reason",
    ]
    players = {}
    for name, played in runs.items():
        player = {
            k: round(v, 1) if isinstance(v, float) else v for k, v in played.items() if k in keys
        }
        shown = player["frames_presented"]
        player["real_time"] = bool((player["decode_fps"] or 0) >= fps and shown >= 0.95 * frames)
        players[name] = player
    return {
        "what": "inr realtime preset, 640x360 30 fps: served, played by `play` in a fresh "
        "process, with torch's default threads and with --decode-threads 1",
        "frames": frames,
        "encode_options": options,
        "encode_seconds": round(encode_s, 1),
        "decode_timing_default_threads": decode_timing(path),
        "player": players,
        "real_time": any(p["real_time"] for p in players.values()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs (about a minute)")
    parser.add_argument("--skip-inr", action="store_true", help="leave out the inr playback")
    parser.add_argument("--out", help="JSON output (default: benchmarks/results/streaming*.json)")
    args = parser.parse_args(argv)
    quick = args.quick
    out = Path(
        args.out
        or ROOT / "benchmarks" / "results" / ("streaming-quick.json" if quick else "streaming.json")
    )
    result: dict[str, Any] = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "quick": quick,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "versions": versions(),
        "notes": "loopback; server in its own process, all players in this process (inr: "
        "a fresh `play` process); a shared machine: see load_average_at_start/_end",
    }
    with tempfile.TemporaryDirectory(prefix="nvc-bench-") as tmp:
        work = Path(tmp)
        seconds = 6.0 if quick else 20.0
        print("live testsrc ...", flush=True)
        result["live"] = bench_live(
            "testsrc",
            "live testsrc 640x360 30 fps, lossless codec",
            seconds,
            *("--size", "640x360", "--fps", "30"),
        )
        print(json.dumps(result["live"]["player"]), flush=True)
        for w, h in ((320, 180), (640, 360)):
            name = f"live_natural_{w}x{h}"
            print(f"{name} ...", flush=True)
            y4m = write_y4m(work / f"natural{w}.y4m", (w, h), 60, 30)
            result[name] = bench_live(
                str(y4m),
                f"live {w}x{h} 30 fps natural clip (a y4m played at its rate, looped), "
                "lossless codec (about 7 / 28 Mb/s)",
                seconds,
                "--loop",
            )
            print(json.dumps(result[name]["player"]), flush=True)
        print("file ...", flush=True)
        result["file"] = bench_file(work, 5.0 if quick else 15.0, 30 if quick else 90)
        print(json.dumps(result["file"]["player"]), flush=True)
        seconds = 4.0 if quick else 10.0
        print("viewers, heavy stream ...", flush=True)
        heavy = make_lossless(work / "heavy.nvc", (320, 180), 60, 30)
        counts = [1, 2, 4, 8] if quick else [1, 2, 4, 6, 8, 12, 16]
        result["viewers_heavy"] = bench_viewers(
            heavy, "lossless 320x180 30 fps natural clip (~8.6 Mb/s), looped", seconds, counts
        )
        print("viewers, light stream ...", flush=True)
        light = make_pattern(work / "light.nvc", (640, 360), 60, 30)
        counts = [1, 4, 8] if quick else [1, 2, 4, 8, 12, 16, 24]
        result["viewers_light"] = bench_viewers(
            light,
            "lossless 640x360 30 fps testsrc (~0.4 Mb/s, a neural codec's rate), looped",
            seconds,
            counts,
        )
        if args.skip_inr:
            result["inr"] = {"skipped": "--skip-inr"}
        else:
            print("inr ...", flush=True)
            result["inr"] = bench_inr(work, 15 if quick else 30)
            print(json.dumps(result["inr"]), flush=True)
    if hasattr(os, "getloadavg"):
        result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

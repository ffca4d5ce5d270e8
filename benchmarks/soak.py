"""Soak: many viewers of a looping fm stream for a long time, watching for leaks.

    nice -n 10 python benchmarks/soak.py                 # 8 viewers, 10 minutes
    python benchmarks/soak.py --minutes 1 --out /tmp/soak-1.json

The server runs in its own process (this script with `--serve FILE`: a StreamServer of
the file with `--loop`), the viewers (nvc.player.Player, real aiortc peers on loopback,
each decoding with the fm codec) in this one. Every `--sample` seconds both processes
report their resident memory (RSS, from /proc), open fds, threads and asyncio tasks;
the players also report frames presented and what they dropped. Every `--churn` seconds
(default 60) the oldest viewer hangs up and a new one joins, so peers come and go all
along (their tasks, sockets and decoders must go with them).

Verdict: after a warm-up (the first fifth of the run, at least 30 s: torch, the decoders
and aiortc's buffers settle), the last third of the samples is compared with the first
third of the rest. Growth is flagged when RSS rises by more than `--rss-tolerance` MiB
(default 16) or tasks, fds or threads rise at all. The stream is small (160x96 at 5 fps,
an intra frame every 10) so that 8 fm decoders fit on a shared 2-core machine; where
they do not, players drop to random-access points (`units_dropped_late`), which the
soak then exercises too. Results go to benchmarks/results/soak.json with the command,
the machine and the load average at start and end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.streaming import machine, versions  # noqa: E402


def process_state(pid: int | str = "self") -> dict[str, Any]:
    """RSS (MiB), open fds and threads of a process, from /proc."""
    rss_kib = threads = 0
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss_kib = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return {
        "rss_mib": round(rss_kib / 1024, 2),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "threads": threads,
    }


def make_clip(path: Path, size: tuple[int, int], frames: int, fps: int, intra: int) -> Path:
    """The testsrc pattern coded with fm (shipped weights)."""
    import torch

    from nvc.codec.base import StreamInfo
    from nvc.codec.pipeline import encode_frames
    from nvc.player.pattern import TestPattern

    torch.set_num_threads(1)
    pattern = TestPattern(size[0], size[1], Fraction(fps), "yuv420p")
    clip = [pattern.frame(i) for i in range(frames)]
    stream = StreamInfo(size[0], size[1], Fraction(fps), "yuv420p", frame_count=frames)
    encode_frames(clip, stream, path, codec="fm", options={"intra_period": intra})
    return path


# ---- the server process ----------------------------------------------------------------


async def serve(path: str, sample: float) -> None:
    """Serve `path` in a loop; print the URL, then a JSON state line every `sample` s."""
    from nvc.player.broadcast import ViewerConfig
    from nvc.player.server import ServeConfig, StreamServer
    from nvc.player.source import FileSource

    server = StreamServer(FileSource(path, loop=True), ViewerConfig(), ServeConfig(port=0))
    url = await server.start()
    print(json.dumps({"url": url}), flush=True)
    try:
        while True:
            await asyncio.sleep(sample)
            state = process_state()
            state["tasks"] = len(asyncio.all_tasks())
            state["peers"] = len(server.peers)
            b = server.broadcast.summary()
            state["viewers"] = b["viewers"]
            state["units_released"] = b["units_released"]
            state["units_skipped"] = sum(v["units_skipped"] for v in b["per_viewer"])
            print(json.dumps(state), flush=True)
    finally:
        await server.close()


# ---- the players ------------------------------------------------------------------------


def verdict(samples: list[dict[str, Any]], keys: list[str], rss_tolerance: float) -> dict[str, Any]:
    """Compare the late samples with the early ones (after the warm-up)."""
    third = max(1, len(samples) // 3)
    early, late = samples[:third], samples[-third:]
    out: dict[str, Any] = {"samples": len(samples)}
    grew = False
    for key in keys:
        a = statistics.median(s[key] for s in early)
        b = statistics.median(s[key] for s in late)
        out[key] = {"early": a, "late": b, "max": max(s[key] for s in samples)}
        limit = rss_tolerance if key == "rss_mib" else 0
        if b - a > limit:
            grew = True
    if len(samples) >= 3:  # RSS trend over the run after warm-up, MiB per minute
        ts = [s["t"] for s in samples]
        rs = [s["rss_mib"] for s in samples]
        mt, mr = statistics.fmean(ts), statistics.fmean(rs)
        var = sum((t - mt) ** 2 for t in ts)
        slope = sum((t - mt) * (r - mr) for t, r in zip(ts, rs, strict=True)) / var if var else 0
        out["rss_mib_per_minute"] = round(60 * slope, 3)
    out["growth"] = grew
    return out


async def soak(args: argparse.Namespace, clip: Path) -> dict[str, Any]:
    import torch

    from nvc.player.player import Player, PlayerConfig

    torch.set_num_threads(1)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).resolve()),
        "--serve",
        str(clip),
        "--sample",
        str(args.sample),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    server_samples: list[dict[str, Any]] = []
    player_samples: list[dict[str, Any]] = []
    players: list[Player] = []
    gone: list[Any] = []  # the stats of players that left (churn)
    results: list[list[Any]] = []  # what each player's run() returned or raised
    try:
        stdout = proc.stdout
        if stdout is None:
            raise RuntimeError("no server output")
        first = json.loads(await asyncio.wait_for(stdout.readline(), 60))
        url = first["url"]
        start = time.monotonic()

        async def read_server() -> None:
            while line := await stdout.readline():
                state = json.loads(line)
                state["t"] = round(time.monotonic() - start, 1)
                server_samples.append(state)

        reader = asyncio.create_task(read_server())
        config = PlayerConfig(url, decode_threads=1, idle_timeout=30.0)
        players = [Player(config) for _ in range(args.viewers)]
        runs = [asyncio.create_task(p.run()) for p in players]
        end = start + 60 * args.minutes
        next_churn = start + args.churn if args.churn else end
        while time.monotonic() < end:
            now = time.monotonic()
            await asyncio.sleep(max(0.0, min(args.sample, end - now, next_churn - now)))
            if time.monotonic() >= next_churn and time.monotonic() < end:
                # the oldest viewer leaves and a new one joins: peers come and go all along
                next_churn += args.churn
                players[0].stop("churn")
                results.append(await asyncio.gather(runs[0], return_exceptions=True))
                gone.append(players.pop(0).stats)  # its stats only: the player can go
                runs.pop(0)
                players.append(Player(config))
                runs.append(asyncio.create_task(players[-1].run()))
                continue
            state = process_state()
            state["t"] = round(time.monotonic() - start, 1)
            state["tasks"] = len(asyncio.all_tasks())
            everyone = gone + [p.stats for p in players]
            state["frames_presented"] = sum(s.frames_presented for s in everyone)
            state["units_dropped_late"] = sum(s.units_dropped_late for s in everyone)
            state["players_running"] = sum(not r.done() for r in runs)
            state["players_churned"] = len(gone)
            player_samples.append(state)
            print(json.dumps({"players": state}), flush=True)
        for p in players:
            p.stop("soak over")
        results += [[r] for r in await asyncio.gather(*runs, return_exceptions=True)]
        reader.cancel()
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
    errors = [
        f"{type(r).__name__}: {r}" for rs in results for r in rs if isinstance(r, BaseException)
    ]
    warm = max(30.0, 12 * args.minutes)  # the first fifth of the run, at least 30 s
    return {
        "player_process": verdict(
            [s for s in player_samples if s["t"] >= warm],
            ["rss_mib", "fds", "threads", "tasks"],
            args.rss_tolerance,
        ),
        "server_process": verdict(
            [s for s in server_samples if s["t"] >= warm],
            ["rss_mib", "fds", "threads", "tasks"],
            args.rss_tolerance,
        ),
        "warm_up_seconds": warm,
        "players": [s.summary() for s in gone + [p.stats for p in players]],
        "player_errors": errors,
        "samples": {"players": player_samples, "server": server_samples},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long (default: 10)")
    parser.add_argument("--viewers", type=int, default=8, help="players at once (default: 8)")
    parser.add_argument("--size", default="160x96", help="the fm stream's size (default: 160x96)")
    parser.add_argument("--fps", type=int, default=5, help="its frame rate (default: 5)")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    parser.add_argument(
        "--churn",
        type=float,
        default=60.0,
        help="every this many seconds the oldest viewer leaves and a new one joins (0: never)",
    )
    parser.add_argument("--rss-tolerance", type=float, default=16.0, help="MiB of RSS growth")
    parser.add_argument("--out", help="JSON output (default: benchmarks/results/soak.json)")
    parser.add_argument("--serve", metavar="FILE", help=argparse.SUPPRESS)  # the server process
    args = parser.parse_args(argv)
    if args.serve:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(args.serve, args.sample))
        return 0
    out = Path(args.out or ROOT / "benchmarks" / "results" / "soak.json")
    width, height = (int(v) for v in args.size.split("x"))
    result: dict[str, Any] = {
        "command": " ".join(["benchmarks/soak.py", *(argv if argv is not None else sys.argv[1:])]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "versions": versions(),
        "stream": f"fm {width}x{height} {args.fps} fps testsrc, 40 frames looped, intra every 10",
        "viewers": args.viewers,
        "churn_seconds": args.churn,
        "minutes": args.minutes,
        "notes": "loopback; the server in its own process, all players in this one, each "
        "decoding fm with one torch thread; a shared machine: see the load averages",
    }
    with tempfile.TemporaryDirectory(prefix="nvc-soak-") as tmp:
        print("encoding the fm clip ...", flush=True)
        clip = make_clip(Path(tmp) / "soak.nvc", (width, height), 40, args.fps, 10)
        result.update(asyncio.run(soak(args, clip)))
    if hasattr(os, "getloadavg"):
        result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["growth"] = result["player_process"]["growth"] or result["server_process"]["growth"]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    summary = {k: result[k] for k in ("growth", "player_process", "server_process")}
    print(json.dumps(summary, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

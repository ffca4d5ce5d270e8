"""Fuzzing the player's entry points (issue 13): the data channel's messages and the
streams it plays. Shared by tests/player/test_player_fuzz.py and, for its figures,
benchmarks/robustness.py.

- `fuzz_channel`: hostile text messages (mutated control messages, deep nesting, long,
  not JSON, wrong fields) and mutated binary network messages of a real stream, handed
  to the player's message handler as the data channel would. A case fails when an
  exception escapes the handler or the player's bounded state (timing entries) overflows.
- `fuzz_streams`: mutated real streams of every codec (tests/fuzzing.py: damaged payloads
  and codec parameters under re-forged CRCs, dropped, duplicated, retyped and swapped
  units, forged sizes and formats) played through the player's decode and presentation
  loops, without the network. A case fails when playback ends with an error instead of
  concealing, runs past the time cap, or shows a frame that differs from the undamaged
  stream's frame of that pts (for payload damage: undetected corruption shown).

Both run in this process: peak RSS is this process's (getrusage), which includes the
codecs' own memory.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import time
from pathlib import Path
from typing import Any

from tests.fuzzing import PAYLOAD_KINDS, case_kind, mutate, parse

CASE_SECONDS = 20.0  # a case running longer counts as a hang


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _texts(rng: random.Random) -> str:
    """One hostile text message."""
    from nvc.player import wire

    valid = [
        wire.encode(wire.Hello(rng.random() < 0.5, rng.random() < 0.5, rng.choice([None, 0]))),
        wire.encode(wire.Timing(rng.randrange(1000), rng.randrange(1000), time.time(), None)),
        wire.encode(wire.Skip(rng.randrange(100), "slow")),
    ]
    kind = rng.randrange(8)
    if kind == 0:
        return rng.choice("[{") * rng.randint(500, 5000)  # nesting
    if kind == 1:
        return '{"a":' * rng.randint(100, 900) + "0" + "}" * rng.randint(0, 900)
    if kind == 2:
        return "9" * rng.randint(100, 5000)  # digits
    if kind == 3:
        return "".join(chr(rng.randrange(1, 0xD7FF)) for _ in range(rng.randint(0, 64)))
    if kind == 4:  # a valid message with a field changed to something else
        body = json.loads(rng.choice(valid))
        key = rng.choice(sorted(body))
        body[key] = rng.choice([None, -1, 2**70, 1e308, "x", [], {}, True, float("nan")])
        return json.dumps(body)
    if kind == 5:
        return rng.choice(valid)[: rng.randrange(40)]  # truncated
    text = bytearray(rng.choice(valid).encode())
    for _ in range(rng.randint(1, 6)):
        text[rng.randrange(len(text))] = rng.randrange(32, 127)
    return text.decode("ascii")


def _binary(rng: random.Random, messages: list[bytes]) -> bytes:
    """One mutated network message of a real stream (or random bytes)."""
    if rng.random() < 0.2:
        return rng.randbytes(rng.randint(0, 64))
    b = bytearray(rng.choice(messages))
    for _ in range(rng.randint(1, 4)):
        if b:
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    if rng.random() < 0.3:
        del b[rng.randrange(len(b) + 1) :]
    return bytes(b)


def fuzz_channel(stream: Path, cases: int, seed: int) -> dict[str, Any]:
    """`cases` hostile messages (half text, half binary) through Player._on_message."""
    from nvc.bitstream import Packetizer, Reader
    from nvc.player.player import MAX_ORIGINS, Player, PlayerConfig

    with Reader(stream) as reader:
        units = [reader.header.to_unit(), *reader]
    packetizer = Packetizer(256)  # small messages: many fragments to damage
    messages = [m for u in units for m in packetizer.packetize(u)]
    rng = random.Random(seed)
    failures: list[str] = []
    longest = 0.0

    async def go() -> None:
        nonlocal longest
        player = Player(PlayerConfig("http://127.0.0.1:9"))
        for i in range(cases):
            message: bytes | str = _texts(rng) if i % 2 == 0 else _binary(rng, messages)
            start = time.perf_counter()
            try:
                player._on_message(message)
            except Exception as e:
                failures.append(f"case {i}: {type(e).__name__}: {e}"[:200])
            longest = max(longest, time.perf_counter() - start)
            if len(player._origins) > MAX_ORIGINS:
                failures.append(f"case {i}: {len(player._origins)} timing entries kept")
        player._decode_pool.shutdown()
        player._io_pool.shutdown()

    asyncio.run(go())
    return {
        "entry_point": "data channel (player's message handler)",
        "cases": cases,
        "failures": len(failures),
        "failure_examples": failures[:5],
        "longest_case_s": round(longest, 4),
        "peak_rss_mb": _peak_rss_mb(),
    }


async def _play_units(units: list[Any], seconds: float) -> tuple[Any, list[Any]]:
    """Play units through a Player's decode and presentation loops (no network)."""
    from nvc.player.player import Player, PlayerConfig

    shown: list[Any] = []
    player = Player(
        PlayerConfig("http://127.0.0.1:9", drop_late=False, delay=0.0), on_frame=shown.append
    )
    tasks = [
        asyncio.create_task(player._decode_loop()),
        asyncio.create_task(player._present_loop()),
    ]
    try:
        player._take(units)
        player._end_stream("end of stream")
        await asyncio.wait_for(player._finished.wait(), seconds)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        player._decode_pool.shutdown(wait=True)
        player._io_pool.shutdown()
    return player, shown


def _key(frame: Any) -> bytes:
    return b"".join(bytes(p.tobytes()) for p in frame.planes)


def fuzz_streams(corpus: dict[str, Path], cases: int, seed: int) -> dict[str, Any]:
    """`cases` mutated streams per corpus file, played by the player (see the docstring)."""
    from nvc.bitstream import Reader, Unit, UnitType
    from nvc.errors import BitstreamError

    failures: list[str] = []
    longest = 0.0
    total = 0
    concealed = 0
    for name, path in corpus.items():
        data = path.read_bytes()
        stream = parse(data)
        with Reader(data) as reader:
            clean = {f.pts: _key(f) for f in _decoded(reader)}
        rng = random.Random(f"{seed}-{name}")
        for i in range(cases):
            kind = case_kind(i)
            mutated = mutate(stream, rng, kind)
            try:
                with Reader(mutated) as reader:
                    units = [reader.header.to_unit(), *reader]
            except BitstreamError:
                units = None  # the container refuses it: nothing reaches the player
            if units is None:
                continue
            units = [u for u in units if u.type != UnitType.END] + [Unit(UnitType.END, bytes(8))]
            total += 1
            start = time.perf_counter()
            try:
                player, shown = asyncio.run(_play_units(units, CASE_SECONDS))
            except TimeoutError:
                failures.append(f"{name} case {i} ({kind}): over {CASE_SECONDS} s")
                continue
            longest = max(longest, time.perf_counter() - start)
            if player._error is not None:
                failures.append(f"{name} case {i} ({kind}): ended with {player._error!r}"[:200])
            s = player.stats
            concealed += bool(s.decode_errors or s.header_errors or s.units_skipped)
            if kind in PAYLOAD_KINDS:
                wrong = [f.pts for f in shown if clean.get(f.pts) != _key(f)]
                if wrong:
                    failures.append(f"{name} case {i} ({kind}): wrong frames shown at {wrong}")
    return {
        "entry_point": "player (decode, conceal, present)",
        "cases": total,
        "streams_concealing_damage": concealed,
        "failures": len(failures),
        "failure_examples": failures[:5],
        "longest_case_s": round(longest, 3),
        "peak_rss_mb": _peak_rss_mb(),
    }


def _decoded(reader: Any) -> list[Any]:
    from nvc.codec.pipeline import decode_reader

    return list(decode_reader(reader))


def main(argv: list[str] | None = None) -> int:
    """`python -m tests.player.fuzz [--scale F] [--out FILE]`: the figures as JSON."""
    import argparse
    import os
    import platform
    import sys
    import tempfile

    from tests.fuzzing import build_corpus
    from tests.player.helpers import make_file, register_gop

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--scale", type=float, default=1.0, help="multiply the case counts")
    p.add_argument("--out", type=Path, help="write the figures here (JSON)")
    args = p.parse_args(argv)
    started = time.time()
    load = [round(v, 2) for v in os.getloadavg()]
    register_gop()
    with tempfile.TemporaryDirectory(prefix="nvc-player-fuzz-") as tmp:
        corpus = build_corpus(Path(tmp))
        gop = make_file(Path(tmp) / "gop.nvc", frames=40, codec="testgop")
        entries = [
            fuzz_channel(gop, max(1, round(20_000 * args.scale)), seed=20261202),
            fuzz_streams(corpus, max(1, round(150 * args.scale)), seed=20261202),
        ]
    report = {
        "command": "python -m tests.player.fuzz"
        + (f" --scale {args.scale}" if args.scale != 1.0 else "")
        + (f" --out {args.out}" if args.out else ""),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime(started)),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_start": load,
            "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "seconds": round(time.time() - started, 1),
        "entries": entries,
    }
    text = json.dumps(report, indent=2) + "\n"
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    sys.stdout.write(text)
    return 1 if any(e["failures"] for e in entries) else 0


if __name__ == "__main__":
    raise SystemExit(main())

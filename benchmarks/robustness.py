"""Robustness figures (issue 13): hostile inputs through every entry point, from one run.

    nice -n 10 python benchmarks/robustness.py                 # writes results/robustness.json
    python benchmarks/robustness.py --scale 0.05 --out /tmp/r.json   # a quick look

Entry points and what counts as a failure (which must be 0):

- container: mutated .nvc files through `nvc.bitstream.Reader` (iteration, index, seek,
  entries; seekable and not) and mutated network message streams through `Reassembler`
  (tests/bitstream/test_fuzz.py): anything but a BitstreamError, a unit that was never
  written coming out of a damaged input, a case over 5 s.
- each codec's decoder: mutated real streams (tests/fuzzing.py: damaged payloads and codec
  parameters with the CRCs re-forged, dropped, duplicated, retyped and swapped units,
  forged picture sizes and formats, blind damage) decoded in fresh worker processes under
  a 3 GiB address-space cap: anything but an nvc error, a hang, a memory blow-up, or
  damaged payloads decoding without an error to pictures other than the undamaged ones.
  One stream per tests/fuzzing.STREAMS entry (inr with and without feature grids, gaussian
  2D and 3D, QUEEN residuals and `--pack video`; the
  grids stream aims half its payload damage at the MODEL units' grid sections).
- CLI: `nvc decode` / `nvc info` on mutated files and on files forged to 16384x16384, one
  fresh process per case under the same caps: exit codes other than 0/1, tracebacks,
  errors of more than one line, partial outputs or stray files, hangs.
- signaling: `parse_offer` on mutated offers (a status other than 2xx/4xx), and mutated
  HTTP requests to both servers on loopback (a 5xx, a request over 3 s, a logged
  traceback, a server that stops serving).
- data channel: hostile text and binary messages through the player's message handler
  (an exception out of it, unbounded state); player: mutated streams of every codec played
  through the decode, conceal and present loops (the player ending with an error, a
  damaged payload shown as a picture other than the undamaged one, a case over its time).

Peak RSS is native memory (VmHWM), per process: the largest of the entry point's
processes (the container and signaling entries run in this process).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SEED = 20261202


def peak_rss_kb() -> int:
    from tests.fuzzing import peak_rss_kb as peak

    return peak()


def _entry(name: str, cases: int, failures: list[str], **extra: object) -> dict:
    return {
        "entry_point": name,
        "cases": cases,
        "failures": len(failures),
        "failure_examples": failures[:5],
        **extra,
    }


def container(files: int, messages: int, seed: int) -> list[dict]:
    """The container layer, in this process (before torch is imported)."""
    from tests.bitstream import test_fuzz as fz

    out = []
    for name, count, run_case in (
        ("container: files through Reader", files, _file_case),
        ("container: messages through Reassembler", messages, _message_case),
    ):
        rng = random.Random(seed)
        failures: list[str] = []
        longest = 0.0
        start = time.perf_counter()
        for _ in range(count):
            t0 = time.perf_counter()
            try:
                with fz.time_limit(fz.CASE_SECONDS):
                    run_case(fz, rng)
            except BaseException as e:  # noqa: BLE001 - every escape is a failure
                failures.append(f"{type(e).__name__}: {e}")
            longest = max(longest, time.perf_counter() - t0)
        out.append(
            _entry(
                name,
                count,
                failures,
                longest_case_s=round(longest, 4),
                peak_rss_mb=round(peak_rss_kb() / 1024, 1),
                seconds=round(time.perf_counter() - start, 1),
            )
        )
    return out


def _file_case(fz, rng: random.Random) -> None:  # noqa: ANN001 - a module
    data, blind = fz.mutate_file(rng)
    fz.exercise_file(data, rng, blind)


def _message_case(fz, rng: random.Random) -> None:  # noqa: ANN001 - a module
    messages, units = fz.mutate_messages(rng)
    fz.exercise_messages(messages, units, resync=rng.random() < 0.3)


def decoders(corpus: dict[str, Path], cases: int, seed: int) -> list[dict]:
    """Each corpus stream's decoder in its own fresh worker process."""
    from tests.fuzzing import STREAMS, decoder_worker

    out = []
    for name, path in corpus.items():
        start = time.perf_counter()
        try:
            summary = decoder_worker({name: (path, cases)}, seed, timeout=3600)[name]
        except Exception as e:  # noqa: BLE001 - a worker that died is a failure
            out.append(_entry(f"decoder: {name}", cases, [f"worker: {e}"]))
            continue
        failures = [f"case {f['case']} ({f['kind']}): {f['error']}" for f in summary["failures"]]
        out.append(
            _entry(
                f"decoder: {name} ({STREAMS[name][0]} codec)",
                summary["cases"],
                failures,
                outcomes=summary["outcomes"],
                longest_case_s=summary["longest_case_s"],
                peak_rss_mb=summary["peak_rss_mb"],
                seconds=round(time.perf_counter() - start, 1),
            )
        )
    return out


def cli(corpus: dict[str, Path], mutations: int, seed: int) -> dict:
    """`nvc decode` / `nvc info`, a fresh process per case."""
    from tests.fuzzing import run_cli_fuzz

    start = time.perf_counter()
    results = run_cli_fuzz(corpus, seed, mutations, timeout=300)
    failures = [f"{name}: {r.problem}" for name, r in results if r.problem]
    codes: dict[str, int] = {}
    for _, r in results:
        codes[str(r.rc)] = codes.get(str(r.rc), 0) + 1
    big = [r for name, r in results if "16384" in name]
    return _entry(
        "CLI: nvc decode / nvc info (fresh process per case)",
        len(results),
        failures,
        exit_codes=codes,
        forged_16384x16384={
            "cases": len(big),
            "refused": sum(r.rc == 1 and "--max-pixels" in r.stderr for r in big),
            "longest_s": round(max((r.seconds for r in big), default=0.0), 2),
            "peak_rss_mb": round(max((r.rss_mb for r in big), default=0.0), 1),
        },
        longest_case_s=round(max(r.seconds for _, r in results), 2),
        peak_rss_mb=round(max(r.rss_mb for _, r in results), 1),
        seconds=round(time.perf_counter() - start, 1),
    )


def signaling(cases: int, seed: int) -> dict | None:
    """parse_offer on mutated offers (tests/player/test_signaling_fuzz.py)."""
    try:
        from tests.player.test_signaling_fuzz import fuzz_parse
    except ImportError:
        return None
    start = time.perf_counter()
    failures: list[str] = []
    outcomes: dict = {}
    try:
        outcomes = fuzz_parse(cases, seed)
    except BaseException as e:  # noqa: BLE001
        failures.append(f"{type(e).__name__}: {e}")
        traceback.print_exc()
    return _entry(
        "signaling: parse_offer (in process)",
        cases,
        failures,
        outcomes={str(k): v for k, v in outcomes.items()},
        longest_case_s=None,
        peak_rss_mb=round(peak_rss_kb() / 1024, 1),
        seconds=round(time.perf_counter() - start, 1),
    )


class _TracebackCounter(logging.Handler):
    """Counts log records that carry a traceback (a server must log client errors quietly)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.examples: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info is not None or "Traceback" in record.getMessage():
            self.examples.append(f"{record.name}: {record.getMessage()[:200]}")


def signaling_http(lossless: Path, cases: int, seed: int) -> dict | None:
    """Mutated HTTP requests to both servers on loopback (tests/player/test_signaling_fuzz.py)."""
    try:
        from tests.player.test_signaling_fuzz import fuzz_http
    except ImportError:
        return None
    counter = _TracebackCounter()
    root = logging.getLogger()
    old_level = root.level
    root.setLevel(logging.INFO)
    root.addHandler(counter)
    start = time.perf_counter()
    failures: list[str] = []
    outcomes: dict = {}
    longest = None
    try:
        outcomes, closed, after, longest = fuzz_http(lossless, cases, seed)
        if after != [200, 200]:
            failures.append(f"a server stopped serving: {after}")
        failures += [f"HTTP {s} x{n}" for s, n in outcomes.items() if s >= 500]
        if longest >= 3.0:
            failures.append(f"a request took {longest:.1f} s")
        outcomes = {**{str(k): v for k, v in outcomes.items()}, "closed": closed}
    except BaseException as e:  # noqa: BLE001
        failures.append(f"{type(e).__name__}: {e}")
    finally:
        root.removeHandler(counter)
        root.setLevel(old_level)
    failures += [f"logged a traceback: {x}" for x in counter.examples]
    return _entry(
        "signaling: HTTP requests to both servers (loopback)",
        cases,
        failures,
        outcomes=outcomes,
        longest_case_s=None if longest is None else round(longest, 3),
        peak_rss_mb=round(peak_rss_kb() / 1024, 1),
        seconds=round(time.perf_counter() - start, 1),
    )


def player(corpus: dict[str, Path], tmp: Path, messages: int, streams: int, seed: int) -> list:
    """The player's data-channel handler on hostile messages, and the player's decode,
    conceal and present loops on mutated streams of every codec (tests/player/fuzz.py)."""
    from tests.player.fuzz import fuzz_channel, fuzz_streams
    from tests.player.helpers import make_file, register_gop

    register_gop()
    gop = make_file(tmp / "gop.nvc", frames=40, codec="testgop")
    entries = []
    for name, run in (
        ("channel", lambda: fuzz_channel(gop, messages, seed)),
        ("player", lambda: fuzz_streams(corpus, streams, seed)),
    ):
        start = time.perf_counter()
        entry = run()
        entry["seconds"] = round(time.perf_counter() - start, 1)
        entries.append(entry)
        print(f"{name}: {entry['cases']} cases, {entry['failures']} failures", flush=True)
    return entries


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/robustness.json")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every case count")
    args = p.parse_args()
    counts = {
        "files": 5000,
        "messages": 5000,
        "decoder": 1000,
        "cli_mutations": 20,
        "signaling": 5000,
        "http": 1000,
        "channel": 20000,
        "player": 150,
    }
    counts = {k: max(1, round(v * args.scale)) for k, v in counts.items()}
    started = time.time()
    entries = container(counts["files"], counts["messages"], SEED)
    from tests.fuzzing import build_corpus

    with tempfile.TemporaryDirectory(prefix="nvc-robustness-") as tmp:
        corpus = build_corpus(Path(tmp))
        entries += decoders(corpus, counts["decoder"], SEED)
        entries.append(cli(corpus, counts["cli_mutations"], SEED))
        for sig in (
            signaling(counts["signaling"], SEED),
            signaling_http(corpus["lossless"], counts["http"], SEED),
        ):
            if sig is not None:
                entries.append(sig)
        entries += player(corpus, Path(tmp), counts["channel"], counts["player"], SEED)
    report = {
        "command": "nice -n 10 python benchmarks/robustness.py"
        + (f" --scale {args.scale}" if args.scale != 1.0 else ""),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime(started)),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "caps": {"address_space_gib": 3, "case_seconds": 20},
        "total_cases": sum(e["cases"] for e in entries),
        "total_failures": sum(e["failures"] for e in entries),
        "seconds": round(time.time() - started, 1),
        "entries": entries,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for e in entries:
        print(
            f"{e['entry_point']}: {e['cases']} cases, {e['failures']} failures, "
            f"peak RSS {e.get('peak_rss_mb')} MB, longest {e.get('longest_case_s')} s"
        )
    print(f"wrote {args.out}: {report['total_cases']} cases, {report['total_failures']} failures")
    return 1 if report["total_failures"] else 0


if __name__ == "__main__":
    sys.exit(main())

"""End-to-end fuzzing of the codec decoders and the `nvc` command (issue 13).

Shared by tests/codec/test_fuzz_decoders.py, tests/nvc/test_cli_fuzz.py and
benchmarks/robustness.py. The corpus is a small real stream of each codec; every case is a
deterministic mutation of one of them (seeded). Containers stay valid (CRCs re-forged),
so the mutations reach the codec decoders; a few cases keep the blind damage to show
that the container layer still catches it.

Decoder fuzzing runs in fresh worker processes (`python -m tests.fuzzing`), many cases per
process, each process under a memory cap (RLIMIT_AS) and each case under a time cap
(SIGALRM). The CLI fuzzing runs `nvc decode` / `nvc info` (the console script's entry
point) once per case, under the same caps. Peak RSS is native memory: each process's
VmHWM, which it reports itself at exit.

A case fails when it raises anything but an nvc error (NvcError), runs past the time cap,
hits the memory cap, or (payload damage only) decodes without an error to frames that
differ from the undamaged stream's: undetected corruption.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

# Corpus streams: name -> (codec, options). inr-nerv has a frame-index stem (empty FRAME
# payloads) and residual groups (every second MODEL unit is not a RAP). inr-grids has
# learnable feature grids (codec parameters version 3, grid sections in its MODEL units);
# bpp 1.0 keeps its grids non-trivial at 32x24.
STREAMS: dict[str, tuple[str, dict[str, object]]] = {
    "lossless": ("lossless", {}),
    "fm": ("fm", {"intra_period": 3}),
    "inr": ("inr", {"preset": "realtime", "epochs": 2, "group_size": 2}),
    "inr-grids": ("inr", {"preset": "quality", "bpp": 1.0, "epochs": 2, "group_size": 2}),
    "inr-nerv": ("inr", {"preset": "nerv", "epochs": 2, "group_size": 2, "rap_every": 2}),
    "gaussian": (
        "gaussian",
        {"gaussians": 12, "max_iterations": 20, "group": 2, "frame_budget": 0.2},
    ),
    # 3D mode (a multi-view scene folder in, tests/codec/gaussian/scene3d_data.py): QUEEN-
    # style residuals, and residuals packed into H.264 pictures (V^3, `--pack video`)
    "gaussian-3d": ("gaussian", {"gaussians": 40, "group": 3, "max_iterations": 2}),
    "gaussian-3d-video": (
        "gaussian",
        {"gaussians": 40, "group": 3, "max_iterations": 2, "pack": "video"},
    ),
}
SCENE_STREAMS = {"gaussian-3d", "gaussian-3d-video"}  # encoded from a scene folder
MEMORY_CAP = 3 << 30  # bytes of address space per worker / CLI process
CASE_SECONDS = 20  # a case running longer counts as a hang
ROOT = Path(__file__).resolve().parent.parent


# ---- the corpus ----------------------------------------------------------------------


def build_corpus(directory: Path) -> dict[str, Path]:
    """Write the STREAMS (small, real) into `directory`; returns name -> path."""
    import torch

    from nvc.codec.base import StreamInfo
    from nvc.codec.pipeline import encode_frames
    from nvc.media import synthetic_clip

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    paths = {}
    try:
        for name, (codec, options) in STREAMS.items():
            if name in SCENE_STREAMS:
                paths[name] = _scene_stream(directory, name, options)
                continue
            frames = list(synthetic_clip(32, 24, 4, format="yuv420p", seed=7))
            stream = StreamInfo(32, 24, Fraction(25), "yuv420p", False, len(frames))
            path = directory / f"{name}.nvc"
            encode_frames(frames, stream, path, codec=codec, options=options)
            paths[name] = path
    finally:
        torch.set_num_threads(threads)
    return paths


def _scene_stream(directory: Path, name: str, options: dict[str, object]) -> Path:
    """A 3D-mode stream of a small procedural scene (4 frames, 2 cameras)."""
    from nvc.codec.gaussian.scene3d import encode_scene
    from tests.codec.gaussian.scene3d_data import procedural, write_colmap_scene

    folder = write_colmap_scene(directory / f"{name}-scene", procedural(cameras=2), points=80)
    path = directory / f"{name}.nvc"
    encode_scene(folder, path, options={"frame_budget": 5.0, **options}, psnr=False)
    return path


def session_corpus(base: Path) -> dict[str, Path]:
    """The corpus under `base` (a test session's base temp directory), built on first use,
    so the test modules that fuzz share one build."""
    directory = base / "fuzz-corpus"
    paths = {name: directory / f"{name}.nvc" for name in STREAMS}
    if not all(p.exists() for p in paths.values()):
        directory.mkdir(exist_ok=True)
        paths = build_corpus(directory)
    return paths


@dataclasses.dataclass
class Stream:
    """A parsed corpus file: its header unit and the units after it."""

    header_payload: bytes  # the SEQUENCE_HEADER payload
    units: list  # list[nvc.bitstream.Unit], INDEX and END left out
    # unit index -> length of a leading section that half the payload damage is aimed at:
    # the grid sections (their uleb length included) of an inr stream with feature grids,
    # a small share of its MODEL units that uniform damage would seldom reach
    focus: dict[int, int] = dataclasses.field(default_factory=dict)


def _grid_sections(header_payload: bytes, units: list) -> dict[int, int]:
    """Unit index -> grid section length of the MODEL units of an inr stream whose codec
    parameters are version 3 (feature grids, nvc/codec/inr/gridcode.py); {} otherwise."""
    from nvc.bitstream import SequenceHeader, Unit, UnitType, decode_uleb128
    from nvc.codec import registry

    header = SequenceHeader.from_unit(Unit(UnitType.SEQUENCE_HEADER, header_payload))
    if registry.name_of(header.codec_id) != "inr" or header.codec_params[:1] != b"\x03":
        return {}
    sections = {}
    for i, u in enumerate(units):
        if u.type == UnitType.MODEL:
            n, pos = decode_uleb128(u.payload, 0, limit=1 << 31, what="inr grid section")
            sections[i] = pos + n
    return sections


def parse(data: bytes) -> Stream:
    from nvc.bitstream import Reader, UnitType

    with Reader(data) as reader:
        entries = list(reader.entries())
    units = [
        e.unit
        for e in entries[1:]
        if e.unit.type not in (UnitType.SEQUENCE_HEADER, UnitType.INDEX, UnitType.END)
    ]
    header = entries[0].unit.payload
    return Stream(header, units, _grid_sections(header, units))


def assemble(header_payload: bytes, units: list) -> bytes:
    """A valid container (magic, header, units, END without index) around anything."""
    from nvc.bitstream import Unit, UnitType, encode_file_header, encode_unit
    from nvc.bitstream.index import encode_end

    parts = [encode_file_header(), encode_unit(Unit(UnitType.SEQUENCE_HEADER, header_payload))]
    parts += [encode_unit(u) for u in units]
    parts.append(encode_end(0))
    return b"".join(parts)


# ---- mutations ------------------------------------------------------------------------

# Mutations of payload bytes: the decoder must notice them (or decode the same frames).
PAYLOAD_KINDS = ("flip", "bytes", "truncate", "extend", "zero")
# Other mutations: any outcome but a crash, a hang or a memory blow-up.
OTHER_KINDS = ("swap", "drop", "duplicate", "retype", "params", "size", "format", "blind")


def _damage(rng: random.Random, data: bytes, kind: str) -> bytes:
    b = bytearray(data)
    if kind == "flip" and b:
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif kind == "bytes" and b:
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.choice([0, 0xFF, 0x80, rng.randrange(256)])
    elif kind == "truncate":
        del b[rng.randrange(len(b) + 1) if b else 0 :]
    elif kind == "extend":
        b += rng.randbytes(rng.randint(1, 16))
    elif kind == "zero" and b:
        at = rng.randrange(len(b))
        end = min(len(b), at + rng.randint(1, 32))
        b[at:end] = bytes(end - at)
    return bytes(b)


def _header_with(payload: bytes, **changes: object) -> bytes:
    from nvc.bitstream import SequenceHeader, Unit, UnitType

    header = SequenceHeader.from_unit(Unit(UnitType.SEQUENCE_HEADER, payload))
    return dataclasses.replace(header, **changes).to_unit().payload


SIZES = [(1, 1), (31, 23), (64, 48), (4096, 4096), (16384, 16384), (65536, 1), (65536, 65536)]
FORMATS = ["yuv420p", "yuv444p", "yuv420p10le", "rgb24", "rgb48le", "gray"]


def mutate(stream: Stream, rng: random.Random, kind: str) -> bytes:
    """One mutated file of `stream` (a container that parses, except for `blind`)."""
    from nvc.bitstream import Unit

    units = list(stream.units)
    header = stream.header_payload
    i = rng.randrange(len(units))
    if kind in PAYLOAD_KINDS and stream.focus and rng.random() < 0.5:
        i = rng.choice(sorted(stream.focus))
        u, end = units[i], stream.focus[i]
        damaged = _damage(rng, u.payload[:end], kind) + u.payload[end:]
        units[i] = Unit(u.type, damaged, u.pts, u.rap)
    elif kind in PAYLOAD_KINDS:
        u = units[i]
        units[i] = Unit(u.type, _damage(rng, u.payload, kind), u.pts, u.rap)
    elif kind == "swap":
        j = rng.randrange(len(units))
        a, b = units[i], units[j]
        units[i] = Unit(a.type, b.payload, a.pts, a.rap)
    elif kind == "drop":
        del units[i]
    elif kind == "duplicate":
        units.insert(rng.randrange(len(units) + 1), units[i])
    elif kind == "retype":
        u = units[i]
        units[i] = Unit(rng.choice([2, 3, 4, 5, 99]), u.payload, u.pts, rng.random() < 0.5)
    elif kind == "params":
        from nvc.bitstream import SequenceHeader, UnitType

        h = SequenceHeader.from_unit(Unit(UnitType.SEQUENCE_HEADER, header))
        params = _damage(rng, h.codec_params, rng.choice(PAYLOAD_KINDS))
        header = dataclasses.replace(h, codec_params=params).to_unit().payload
    elif kind == "size":
        w, h = rng.choice(SIZES)
        header = _header_with(header, width=w, height=h)
    elif kind == "format":
        header = _header_with(header, pix_fmt=rng.choice(FORMATS), full_range=rng.random() < 0.5)
    data = assemble(header, units)
    if kind == "blind":
        data = _damage(rng, data, rng.choice(("flip", "bytes", "truncate", "zero")))
    return data


def case_kind(index: int) -> str:
    """Half the cases damage payloads, the rest cycle through the other kinds."""
    kinds = PAYLOAD_KINDS + OTHER_KINDS
    return kinds[index % len(kinds)]


# ---- running cases --------------------------------------------------------------------


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"case ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def peak_rss_kb() -> int:
    """This process's peak RSS in KiB: VmHWM, the high-water mark of its own address space.
    (getrusage's ru_maxrss would do, but Linux carries the parent's RSS at fork into it.)"""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _frames_key(frames: list) -> dict[int, bytes]:
    return {f.pts: b"".join(bytes(p.tobytes()) for p in f.planes) for f in frames}


def decode_all(data: bytes) -> list:
    from nvc.bitstream import Reader
    from nvc.codec.pipeline import decode_reader

    with Reader(data) as reader:
        return list(decode_reader(reader))


def run_decoder_cases(path: Path, seed: int, cases: int, case_seconds: float) -> dict:
    """Mutate the corpus file at `path` `cases` times and decode each mutation in this
    process; returns a summary (cases, failures, outcomes, longest case, peak RSS)."""
    from nvc.errors import NvcError

    data = path.read_bytes()
    stream = parse(data)
    reference = _frames_key(decode_all(data))
    outcomes: dict[str, int] = {}
    failures: list[dict] = []
    longest = 0.0
    start_rss = peak_rss_kb()
    rng = random.Random(seed)
    for index in range(cases):
        kind = case_kind(index)
        case_rng = random.Random(rng.getrandbits(64))
        mutated = mutate(stream, case_rng, kind)
        t0 = time.perf_counter()
        outcome = "decoded"
        try:
            with time_limit(case_seconds):
                frames = decode_all(mutated)
            got = _frames_key(frames)
            same = all(reference.get(pts) == planes for pts, planes in got.items())
            if not same and kind in PAYLOAD_KINDS:
                outcome = "undetected"
                failures.append({"case": index, "kind": kind, "error": "undetected corruption"})
        except NvcError as e:
            outcome = type(e).__name__
            if "\n" in str(e):
                failures.append({"case": index, "kind": kind, "error": f"multi-line: {e!r}"})
        except BaseException as e:  # noqa: BLE001 - every other exception is a finding
            outcome = "crash"
            failures.append(
                {
                    "case": index,
                    "kind": kind,
                    "error": f"{type(e).__name__}: {e}",
                    "traceback": traceback.format_exc(limit=6),
                }
            )
        longest = max(longest, time.perf_counter() - t0)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return {
        "cases": cases,
        "failures": failures,
        "outcomes": outcomes,
        "longest_case_s": round(longest, 3),
        "peak_rss_mb": round(peak_rss_kb() / 1024, 1),
        "rss_growth_mb": round((peak_rss_kb() - start_rss) / 1024, 1),
    }


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def decoder_worker(
    streams: dict[str, tuple[Path, int]], seed: int, timeout: float, case_seconds: float = 0
) -> dict[str, dict]:
    """Run the decoder cases of several corpus files ({name: (path, cases)}) in one fresh,
    memory-capped process; returns {name: summary} (see run_decoder_cases)."""
    job = {
        "seed": seed,
        "case_seconds": case_seconds or CASE_SECONDS,
        "streams": {name: [str(path), cases] for name, (path, cases) in streams.items()},
    }
    proc = subprocess.run(
        [sys.executable, "-m", "tests.fuzzing", json.dumps(job)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(),
        cwd=ROOT,
        preexec_fn=_cap_memory,  # noqa: PLW1509 - the parent starts no threads here
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"fuzz worker failed (rc {proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(lines[-1])


# ---- the CLI --------------------------------------------------------------------------


@dataclasses.dataclass
class CliResult:
    argv: list[str]
    rc: int
    stderr: str
    seconds: float
    rss_mb: float
    problem: str | None  # why this case fails, or None


# The `nvc` console script's entry point, reporting the process's peak RSS at exit.
_NVC = """
import atexit, os, sys
from tests.fuzzing import peak_rss_kb
def report():
    with open(os.environ["NVC_FUZZ_RSS_FILE"], "w") as f:
        f.write(str(peak_rss_kb()))
atexit.register(report)
from nvc.cli import main
sys.exit(main())
"""


def run_cli(args: list[str], workdir: Path, output: Path | None, timeout: float) -> CliResult:
    """Run `nvc ARGS` in a fresh memory-capped process; check the one-line-error rules."""
    argv = [sys.executable, "-c", _NVC, *args]
    before = set(os.listdir(workdir))
    rss_file = Path(tempfile.mkstemp(prefix="nvc-fuzz-rss-")[1])
    with tempfile.TemporaryFile() as out_file, tempfile.TemporaryFile() as err_file:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            stdout=out_file,
            stderr=err_file,
            env={**_env(), "NVC_FUZZ_RSS_FILE": str(rss_file)},
            cwd=workdir,
            preexec_fn=_cap_memory,  # noqa: PLW1509 - the parent starts no threads here
        )
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _, status = os.waitpid(proc.pid, 0)
        finally:
            killer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - t0
        err_file.seek(0)
        err = err_file.read().decode("utf-8", "replace")
    text = rss_file.read_text().strip()
    rss_file.unlink()
    rss = int(text) / 1024 if text else 0.0  # empty: killed before its exit handlers ran
    if seconds >= timeout:
        return CliResult(argv, proc.returncode, err, seconds, rss, f"hang: ran past {timeout} s")
    problem = None
    lines = err.strip().splitlines()
    if proc.returncode not in (0, 1):
        problem = f"exit {proc.returncode}"
    elif "Traceback" in err or "internal error" in err:
        problem = "traceback or internal error"
    elif proc.returncode == 1 and not (len(lines) == 1 and lines[0].startswith("nvc: error: ")):
        problem = f"not a one-line error: {err[-300:]!r}"
    elif proc.returncode == 1 and output is not None and output.exists():
        problem = "left a partial output"
    leftovers = set(os.listdir(workdir)) - before - ({output.name} if output else set())
    if proc.returncode == 1 and leftovers:
        problem = f"left files behind: {sorted(leftovers)}"
    if output is not None and output.exists():
        if output.is_dir():
            for child in output.iterdir():
                child.unlink()
            output.rmdir()
        else:
            output.unlink()
    return CliResult(argv, proc.returncode, err.strip(), seconds, rss, problem)


def cli_cases(
    corpus: dict[str, Path], workdir: Path, seed: int, mutations: int
) -> Iterator[tuple[str, list[str], Path | None]]:
    """(name, nvc arguments, output path) of CLI cases: for each codec a file forged to
    16384x16384, then for each corpus stream `mutations` mutated files, alternating
    `nvc decode` and `nvc info`."""
    from nvc.bitstream import Reader
    from nvc.codec import registry

    rng = random.Random(seed)
    codecs_done = set()
    for name, path in corpus.items():
        with Reader(path) as reader:
            codec = registry.name_of(reader.header.codec_id)
        if codec in codecs_done:
            continue
        codecs_done.add(codec)
        stream = parse(path.read_bytes())
        big = workdir / f"{name}-big.nvc"
        forged = _header_with(stream.header_payload, width=16384, height=16384)
        big.write_bytes(assemble(forged, stream.units))
        out = workdir / "big.y4m"
        yield f"{codec} 16384x16384 decode", ["decode", big.name, "-o", out.name], out
    for i, (name, path) in enumerate(corpus.items()):
        stream = parse(path.read_bytes())
        for n in range(mutations):
            kind = case_kind(rng.randrange(1000))
            case = workdir / f"{name}-{n}.nvc"
            case.write_bytes(mutate(stream, random.Random(rng.getrandbits(64)), kind))
            if (n + i) % 2:
                yield f"{name} {kind} info", ["info", case.name, "--json"], None
            else:
                out = workdir / f"{name}-{n}.y4m"
                yield f"{name} {kind} decode", ["decode", case.name, "-o", out.name], out


def run_cli_fuzz(
    corpus: dict[str, Path],
    seed: int,
    mutations: int,
    timeout: float,
    on_case: Callable[[str, CliResult], None] | None = None,
) -> list[tuple[str, CliResult]]:
    """Run cli_cases in a temporary directory; returns [(case name, result)]."""
    results = []
    with tempfile.TemporaryDirectory(prefix="nvc-cli-fuzz-") as tmp:
        workdir = Path(tmp)
        for name, args, output in cli_cases(corpus, workdir, seed, mutations):
            result = run_cli(args, workdir, output, timeout)
            results.append((name, result))
            if on_case:
                on_case(name, result)
    return results


def main(argv: list[str] | None = None) -> int:
    """Worker: python -m tests.fuzzing JOB (JSON: seed, case_seconds, streams {name: [path,
    cases]}) -> one JSON line {name: summary}."""
    job = json.loads((argv if argv is not None else sys.argv[1:])[0])
    out = {}  # torch (imported by the neural decoders) takes one thread: OMP_NUM_THREADS=1
    for n, (name, (path, cases)) in enumerate(sorted(job["streams"].items())):
        seed = job["seed"] + 7919 * n
        out[name] = run_decoder_cases(Path(path), seed, cases, job["case_seconds"])
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

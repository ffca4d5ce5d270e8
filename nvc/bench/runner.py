"""The benchmark loop: sequences x codecs x rate points, measured, resumable.

For each (sequence, codec, rate point) the runner encodes the sequence's frames into a
file, decodes that file with a fresh decoder, and records one row:

- bytes: the size of the file (a raw elementary stream for anchors, the .nvc file for
  nvc codecs), and bpp = 8 * bytes / (frames * width * height);
- PSNR-RGB, PSNR-YUV (Y, U, V and (6 Y + U + V) / 8) and MS-SSIM (RGB), each the mean
  of per-frame values from `nvc.media`; a frame decoded exactly counts as 100 dB, so
  that means stay finite;
- encode seconds and decode seconds: medians over `repeats` encode+decode cycles (the
  first cycle's stream is the one measured; every repeat must produce the same bytes);
- peak memory: the largest resident set size (RSS) of this process while encoding and
  while decoding, sampled every 5 ms from /proc/self/statm in a helper thread, reported
  in MiB both as the absolute peak and as the increase over the RSS just before. The
  sampler sees native allocations (x264, libtorch) that tracemalloc would miss; the
  increase can under-count memory the allocator reuses from earlier rows, and the
  absolute peak includes the loaded frames. (Where /proc is absent, the process's
  lifetime peak from getrusage is reported and marked so.)

Each finished row is appended as one JSON line to the state file `<name>.state.jsonl`
in the output directory. A rerun with the same settings skips the rows already there,
so a killed run continues where it stopped; rows made under other settings (another
protocol, GOP, thread count or source file) are ignored, never mixed in. Each row also
stores its codec's identity (`nvc.bench.identity`: the options resolved with defaults, fm's
weights hash, an anchor's encoder options and version): a stored row whose identity no
longer matches is stale and measured again, and fm rows of older state files, which have
no identity, count as stale.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from nvc.bench import anchors, datasets, executor, identity
from nvc.bench.codecs import Contender, point_key, point_label
from nvc.errors import NvcError
from nvc.media import Frame, bpp, ms_ssim, psnr_rgb, psnr_yuv

PSNR_CAP = 100.0  # dB counted for a frame decoded exactly
# 2: anchors' streams are counted without informational SEI (rows of version 1 had it).
STATE_VERSION = 2


@dataclass
class BenchConfig:
    """Everything that decides what a run measures."""

    sequences: list[datasets.Sequence]  # what to code
    contenders: list[Contender]  # codecs with their rate points
    protocol: datasets.Protocol = field(default_factory=datasets.Protocol)  # how much of it
    out_dir: Path = Path("bench-out")  # where state and reports go
    name: str = "rd"  # prefix of every output file
    repeats: int = 1  # encode+decode cycles per row (timings are medians)
    ms_ssim: bool = True  # compute MS-SSIM (the slowest metric)
    gop: str = "ra"  # anchors' GOP mode (recorded)
    keyint: int = 128  # anchors' intra period (recorded)
    threads: int = 1  # anchors' threads (recorded)
    stamp: dict[str, Any] = field(default_factory=dict)  # added to every new row (git revision)
    ray: executor.RayTarget | None = None  # run rows as Ray tasks there (None: in this process)

    @property
    def measure(self) -> Measure:
        return Measure(repeats=self.repeats, ms_ssim=self.ms_ssim)

    def fingerprint(self, sequence: datasets.Sequence) -> str:
        """What must match for a stored row of `sequence` to be reused."""
        data = {
            "v": STATE_VERSION,
            "sequence": [sequence.kind, sequence.name, sequence.identity],
            "protocol": self.protocol.as_dict(),
            "gop": self.gop,
            "keyint": self.keyint,
            "threads": self.threads,
            "ms_ssim": self.ms_ssim,
        }
        text = json.dumps(data, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def state_path(self) -> Path:
        return self.out_dir / f"{self.name}.state.jsonl"


def row_key(sequence: str, codec: str, point: dict[str, Any]) -> str:
    return f"{sequence}|{codec}|{point_key(point)}"


@dataclass(frozen=True)
class CodecIdentity:
    """What a stored row's codec identity must be for the row to be reused."""

    fingerprint: str  # identity.fingerprint of `described`
    described: dict[str, Any]  # the identity itself (stored in every new row)
    required: bool  # rows without a stored identity are stale (codecs with model weights)


def codec_identity(contender: Contender, point: dict[str, Any]) -> CodecIdentity:
    """The identity of one contender's rate point (see nvc.bench.identity)."""
    try:
        if contender.anchor_config is not None:
            described = identity.anchor_identity(
                contender.anchor_config,
                point,
                contender.gop,
                contender.keyint,
                contender.threads,
            )
        else:
            described = identity.nvc_identity(contender.name, point)
    except NvcError as e:  # the row fails when it runs; a stored one is not reused meanwhile
        described = {"codec": contender.name, "unavailable": str(e)}
    return CodecIdentity(
        identity.fingerprint(described), described, identity.needs_identity(contender.name)
    )


def _identity_key(contender: Contender, point: dict[str, Any]) -> str:
    return f"{contender.name}|{point_key(point)}"


Identities = dict[str, CodecIdentity]  # "codec|point" -> identity


# -- state ------------------------------------------------------------------------------


class State:
    """The JSONL file of finished rows and loaded sequences; append-only."""

    def __init__(self, path: Path, *, fresh: bool = False) -> None:
        self.path = path
        self.rows: dict[str, dict[str, Any]] = {}  # "fingerprint|key" -> row
        self.sequences: dict[str, dict[str, Any]] = {}  # fingerprint -> sequence info
        path.parent.mkdir(parents=True, exist_ok=True)
        if fresh and path.exists():
            path.unlink()
        if path.exists():
            self._load()

    def _load(self) -> None:
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            # A run killed in the middle of a write leaves a partial last line: drop it.
            with open(self.path, "r+b") as f:
                f.truncate(end)
            data = data[:end]
        for line in data.decode("utf-8", errors="replace").splitlines():
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(item, dict):
                continue
            if item.get("type") == "row":
                self.rows[f"{item.get('fingerprint')}|{item.get('key')}"] = item
            elif item.get("type") == "sequence":
                self.sequences[str(item.get("fingerprint"))] = item

    def _append(self, item: dict[str, Any]) -> None:
        line = json.dumps(item, sort_keys=True, allow_nan=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def has(self, fingerprint: str, key: str) -> bool:
        return f"{fingerprint}|{key}" in self.rows

    def current(self, fingerprint: str, key: str, codec: CodecIdentity) -> bool:
        """Whether a stored row exists and was coded by the same codec identity."""
        row = self.rows.get(f"{fingerprint}|{key}")
        if row is None:
            return False
        stored = row.get("codec_fingerprint")
        return not codec.required if stored is None else stored == codec.fingerprint

    def add_row(self, row: dict[str, Any]) -> None:
        row = {"type": "row", **row}
        self._append(row)
        self.rows[f"{row['fingerprint']}|{row['key']}"] = row

    def add_sequence(self, fingerprint: str, info: dict[str, Any]) -> None:
        item = {"type": "sequence", "fingerprint": fingerprint, **info}
        self._append(item)
        self.sequences[fingerprint] = item


# -- memory -----------------------------------------------------------------------------

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class PeakMemory:
    """Peak RSS while the block ran (see the module docstring)."""

    method: str = "rss-sampled"
    before: int = 0
    peak: int = 0

    @property
    def peak_mib(self) -> float:
        return self.peak / 2**20

    @property
    def delta_mib(self) -> float:
        return max(self.peak - self.before, 0) / 2**20


@contextmanager
def peak_memory(interval: float = 0.005) -> Iterator[PeakMemory]:
    first = _rss_bytes()
    if first is None:
        usage = PeakMemory("getrusage-lifetime")
        yield usage
        usage.peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return
    usage = PeakMemory("rss-sampled", first, first)
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(interval):
            now = _rss_bytes()
            if now is not None and now > usage.peak:
                usage.peak = now

    thread = threading.Thread(target=sample, name="nvc-bench-rss", daemon=True)
    thread.start()
    try:
        yield usage
    finally:
        stop.set()
        thread.join()
        now = _rss_bytes()
        if now is not None and now > usage.peak:
            usage.peak = now


# -- metrics ----------------------------------------------------------------------------


def _cap(value: float) -> float:
    return PSNR_CAP if math.isinf(value) else min(value, PSNR_CAP)


def measure_quality(
    reference: Sequence[Frame], decoded: Sequence[Frame], *, with_ms_ssim: bool = True
) -> dict[str, float | None]:
    """Mean per-frame PSNR-RGB, PSNR-YUV (per plane and 6:1:1) and MS-SSIM."""
    if len(decoded) != len(reference):
        raise NvcError(f"decoded {len(decoded)} frames, expected {len(reference)}")
    rgb, y, u, v, w, ms = [], [], [], [], [], []
    for ref, dist in zip(reference, decoded, strict=True):
        rgb.append(_cap(psnr_rgb(ref, dist)))
        p = psnr_yuv(ref, dist)
        y.append(_cap(p.y))
        u.append(_cap(p.u))
        v.append(_cap(p.v))
        w.append(_cap(p.weighted))
        if with_ms_ssim:
            ms.append(ms_ssim(ref, dist))
    out: dict[str, float | None] = {
        "psnr_rgb": statistics.fmean(rgb),
        "psnr_y": statistics.fmean(y),
        "psnr_u": statistics.fmean(u),
        "psnr_v": statistics.fmean(v),
        "psnr_yuv": statistics.fmean(w),
        "ms_ssim": None,
        "ms_ssim_db": None,
    }
    if ms:
        m = statistics.fmean(ms)
        out["ms_ssim"] = m
        out["ms_ssim_db"] = PSNR_CAP if m >= 1.0 else min(-10.0 * math.log10(1.0 - m), PSNR_CAP)
    return out


# -- the loop ---------------------------------------------------------------------------


class Reporter:
    """Progress on stderr: a live line on a terminal, one line per row otherwise."""

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.live = (not quiet) and self.stream.isatty()
        self.quiet = quiet
        self._last = 0.0
        self._drawn = False

    def status(self, text: str, *, force: bool = False) -> None:
        if not self.live:
            return
        now = time.perf_counter()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        self.stream.write("\r" + text[:160] + "\x1b[K")
        self.stream.flush()
        self._drawn = True

    def line(self, text: str) -> None:
        if self.quiet:
            return
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self._drawn = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def warn(self, text: str) -> None:
        """A line shown even when quiet (what the user must know about reused results)."""
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self._drawn = False
        self.stream.write(text + "\n")
        self.stream.flush()


@dataclass
class RunOutcome:
    """What `run` leaves for the reports."""

    rows: list[dict[str, Any]]  # finished rows of this configuration, in run order
    sequences: list[dict[str, Any]]  # info of each sequence (from the state when reused)
    skipped: list[str]  # messages about codecs or rows that were not run
    new_rows: int  # rows measured by this call (the rest came from the state file)


@dataclass(frozen=True)
class Measure:
    """How each row is measured (what a Ray task needs of the BenchConfig)."""

    repeats: int = 1  # encode+decode cycles (timings are medians)
    ms_ssim: bool = True  # compute MS-SSIM


def _no_progress(stage: str, done: int, total: int) -> None:
    pass


def _measure_row(
    contender: Contender,
    point: dict[str, Any],
    clip: datasets.Clip,
    config: Measure,
    workdir: Path,
    on_progress: Callable[[str, int, int], None],
) -> dict[str, Any]:
    frames = clip.frames
    path = workdir / f"stream.{contender.extension}"
    enc_times: list[float] = []
    dec_times: list[float] = []
    enc_mem: list[PeakMemory] = []
    dec_mem: list[PeakMemory] = []
    nbytes = 0
    version: str | None = None
    quality: dict[str, float | None] = {}
    notes: list[str] = []
    for r in range(config.repeats):
        if path.exists():
            path.unlink()
        with peak_memory() as mem:
            start = time.perf_counter()
            size = contender.encode(
                frames,
                point,
                path,
                fps=clip.fps,
                progress=lambda done, total: on_progress("encode", done, total),
                detail=lambda text: on_progress(f"encode ({text})", 0, 0),
            )
            enc_times.append(time.perf_counter() - start)
        enc_mem.append(mem)
        size = path.stat().st_size if path.exists() else size
        if r == 0:
            nbytes = size
            if contender.anchor_config is not None:
                version = anchors.library_version(contender.anchor_config)
        elif size != nbytes:
            notes.append(f"repeat {r + 1} produced {size} bytes, not {nbytes}")
        on_progress("decode", 0, len(frames))
        with peak_memory() as mem:
            start = time.perf_counter()
            decoded = contender.decode(path, fps=clip.fps)
            dec_times.append(time.perf_counter() - start)
        dec_mem.append(mem)
        if r == 0:
            on_progress("metrics", 0, len(frames))
            quality = measure_quality(frames, decoded, with_ms_ssim=config.ms_ssim)
        del decoded
    n = len(frames)
    enc_s = statistics.median(enc_times)
    dec_s = statistics.median(dec_times)
    return {
        "sequence": clip.sequence.name,
        "codec": contender.name,
        "label": contender.label,
        "kind": contender.kind,
        "point": dict(point),
        "point_label": point_label(point),
        "frames": n,
        "width": clip.width,
        "height": clip.height,
        "fps": str(clip.fps),
        "bytes": nbytes,
        "bytes_counted": (
            "raw elementary stream file, informational SEI removed"
            if contender.kind == "anchor"
            else ".nvc file"
        ),
        "bpp": bpp(nbytes, n, clip.width, clip.height),
        **quality,
        "encode_seconds": enc_s,
        "encode_fps": n / enc_s if enc_s > 0 else None,
        "decode_seconds": dec_s,
        "decode_fps": n / dec_s if dec_s > 0 else None,
        "encode_seconds_all": enc_times,
        "decode_seconds_all": dec_times,
        "repeats": config.repeats,
        "encode_peak_rss_mib": max(m.peak_mib for m in enc_mem),
        "encode_rss_increase_mib": max(m.delta_mib for m in enc_mem),
        "decode_peak_rss_mib": max(m.peak_mib for m in dec_mem),
        "decode_rss_increase_mib": max(m.delta_mib for m in dec_mem),
        "memory_method": enc_mem[0].method,
        "host": platform.node(),
        "encoder_version": version,
        "notes": notes,
    }


def describe_row(row: dict[str, Any]) -> str:
    ps = row.get("psnr_rgb")
    dec = row.get("decode_fps")
    return (
        f"{row['sequence']} {row['codec']} {row['point_label']}: {row['bpp']:.4f} bpp, "
        f"PSNR-RGB {ps:.2f} dB, encode {row['encode_seconds']:.2f} s, "
        f"decode {dec:.0f} fps"
        if ps is not None and dec is not None
        else f"{row['sequence']} {row['codec']} {row['point_label']}: {row['bpp']:.4f} bpp"
    )


def _key(item: tuple[datasets.Sequence, str, Contender, dict[str, Any]]) -> str:
    seq, _fp, contender, point = item
    return row_key(seq.name, contender.name, point)


def _finish_row(
    row: dict[str, Any],
    config: BenchConfig,
    key: str,
    fingerprint: str,
    codec: CodecIdentity,
    where: str,
) -> dict[str, Any]:
    row.update(config.stamp)
    row.update(
        key=key,
        fingerprint=fingerprint,
        codec_fingerprint=codec.fingerprint,
        codec_identity=codec.described,
        executor=where,
        measured_utc=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    return row


def _why(e: BaseException) -> str:
    return str(e) if isinstance(e, NvcError) else f"{type(e).__name__}: {e}"


def _run_here(
    config: BenchConfig,
    state: State,
    plan: list[tuple[datasets.Sequence, str, Contender, dict[str, Any]]],
    done_before: int,
    total: int,
    reporter: Reporter,
    stop_after: int | None,
    identities: Identities,
) -> tuple[int, list[str]]:
    """Measure the plan's missing rows in this process, one after another."""
    skipped: list[str] = []
    new_rows = 0
    index = done_before
    clip: datasets.Clip | None = None
    with tempfile.TemporaryDirectory(prefix="nvc-bench-") as tmp:
        workdir = Path(tmp)
        for seq, fp, contender, point in plan:
            key = row_key(seq.name, contender.name, point)
            codec = identities[_identity_key(contender, point)]
            if state.current(fp, key, codec):
                continue
            if stop_after is not None and new_rows >= stop_after:
                break
            if clip is None or clip.sequence != seq:
                clip = None
                reporter.status(f"loading {seq.name} ...", force=True)
                clip = datasets.load(seq, config.protocol)
                if fp not in state.sequences:
                    state.add_sequence(fp, clip.info())
            index += 1
            label = f"[{index}/{total}] {seq.name} {contender.name} {point_label(point)}"

            def on_progress(stage: str, done: int, n: int, label: str = label) -> None:
                reporter.status(f"{label} {stage} {done}/{n}" if done else f"{label} {stage}")

            try:
                row = _measure_row(contender, point, clip, config.measure, workdir, on_progress)
            except Exception as e:  # one failing codec must not stop the others
                why = _why(e)
                skipped.append(f"{seq.name} {contender.name} {point_label(point)} failed: {why}")
                reporter.line(f"{label}: FAILED: {why}")
                continue
            state.add_row(_finish_row(row, config, key, fp, codec, "local"))
            new_rows += 1
            reporter.line(f"[{index}/{total}] {describe_row(row)}")
    return new_rows, skipped


@dataclass(frozen=True)
class _Shared:
    """What every Ray task of one sequence gets from the object store."""

    clip: datasets.Clip  # the loaded frames
    measure: Measure  # how to measure


def _ray_row(job: tuple[Contender, dict[str, Any]], shared: _Shared) -> dict[str, Any]:
    """One row, measured in a Ray worker (in its own temporary folder)."""
    contender, point = job
    with tempfile.TemporaryDirectory(prefix="nvc-bench-") as tmp:
        return _measure_row(contender, point, shared.clip, shared.measure, Path(tmp), _no_progress)


def _run_on_ray(
    config: BenchConfig,
    state: State,
    pending: list[tuple[datasets.Sequence, str, Contender, dict[str, Any]]],
    done_before: int,
    total: int,
    reporter: Reporter,
    identities: Identities,
) -> tuple[int, list[str]]:
    """Measure the pending rows as Ray tasks, one sequence's frames in the object store at a time.

    The driver loads each sequence, puts its frames into Ray's object store once, submits
    one task per row and records each row in the state file as it comes back.
    """
    target = config.ray
    if target is None:
        raise NvcError("no Ray address")
    skipped: list[str] = []
    counter = {"new": 0, "index": done_before}
    where = f"ray {target.address}"
    with executor.ray_session(target):
        for seq in config.sequences:
            items = [item for item in pending if item[0] is seq]
            if not items:
                continue
            reporter.status(f"loading {seq.name} ...", force=True)
            clip = datasets.load(seq, config.protocol)
            fp = items[0][1]
            if fp not in state.sequences:
                state.add_sequence(fp, clip.info())
            reporter.line(f"{seq.name}: {len(items)} rows submitted to Ray at {target.address}")

            def done(i: int, row: dict[str, Any], items: list[Any] = items) -> None:
                codec = identities[_identity_key(items[i][2], items[i][3])]
                state.add_row(_finish_row(row, config, _key(items[i]), items[i][1], codec, where))
                counter["new"] += 1
                counter["index"] += 1
                reporter.line(f"[{counter['index']}/{total}] {describe_row(row)}")

            def failed(i: int, e: BaseException, items: list[Any] = items) -> None:
                seq_i, _fp, contender, point = items[i]
                what = f"{seq_i.name} {contender.name} {point_label(point)}"
                skipped.append(f"{what} failed: {_why(e)}")
                reporter.line(f"{what}: FAILED: {_why(e)}")

            executor.run_jobs(
                _ray_row,
                [(item[2], item[3]) for item in items],
                shared=_Shared(clip, config.measure),
                ray=target,
                on_done=done,
                on_error=failed,
            )
            del clip
    return counter["new"], skipped


def run(
    config: BenchConfig,
    *,
    reporter: Reporter | None = None,
    fresh: bool = False,
    stop_after: int | None = None,
) -> RunOutcome:
    """Measure every row not yet in the state file; `stop_after` rows at most (tests)."""
    reporter = reporter or Reporter(quiet=True)
    if config.repeats < 1:
        raise NvcError(f"--repeats must be at least 1, got {config.repeats}")
    if config.ray is not None:
        executor.preflight(config.ray)
    state = State(config.state_path, fresh=fresh)
    plan: list[tuple[datasets.Sequence, str, Contender, dict[str, Any]]] = []
    for seq in config.sequences:
        fp = config.fingerprint(seq)
        for contender in config.contenders:
            for point in contender.points:
                plan.append((seq, fp, contender, point))
    total = len(plan)
    identities: Identities = {}
    for contender in config.contenders:
        for point in contender.points:
            identities[_identity_key(contender, point)] = codec_identity(contender, point)

    def current(item: tuple[datasets.Sequence, str, Contender, dict[str, Any]]) -> bool:
        return state.current(item[1], _key(item), identities[_identity_key(item[2], item[3])])

    done_before = sum(1 for item in plan if current(item))
    stale = sum(1 for item in plan if state.has(item[1], _key(item)) and not current(item))
    if stale:
        reporter.warn(
            f"{stale} stored rows are stale (model/weights changed) and will be re-measured"
        )
    if done_before:
        reporter.line(f"resuming: {done_before} of {total} rows already measured")
    if config.ray is not None:
        pending = [item for item in plan if not current(item)]
        if stop_after is not None:
            pending = pending[:stop_after]
        new_rows, skipped = _run_on_ray(
            config, state, pending, done_before, total, reporter, identities
        )
    else:
        new_rows, skipped = _run_here(
            config, state, plan, done_before, total, reporter, stop_after, identities
        )
    rows = [state.rows[f"{item[1]}|{_key(item)}"] for item in plan if current(item)]
    sequences = []
    for seq in config.sequences:
        info = state.sequences.get(config.fingerprint(seq))
        if info is not None:
            sequences.append({k: v for k, v in info.items() if k not in ("type", "fingerprint")})
    return RunOutcome(rows=rows, sequences=sequences, skipped=skipped, new_rows=new_rows)

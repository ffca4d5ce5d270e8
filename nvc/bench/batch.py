"""`nvc batch`: encode a folder or a list of videos into .nvc files, here or on Ray.

    nvc batch videos/ -o coded/ --codec fm --options '{"q": 30}'
    nvc batch a.mp4 b.mkv --list more.txt -o coded/ --ray auto

Every input becomes one job, `OUT/<input stem>.nvc`, coded exactly as `nvc encode` codes
it (`nvc.codec.pipeline.encode_file`). The jobs are independent, so they run one after
another in this process or as Ray tasks (`--ray ADDRESS`, see nvc.bench.executor); either
way the coded bytes come back to this process, which writes each file atomically and
records it in `OUT/batch.state.jsonl`. Running the same command again skips every job
whose input (path, size, modification time), codec, options and frame limit are
unchanged and whose output is still there with the recorded SHA-256; the others are
coded again. One failing input does not stop the others; the exit status says whether
all succeeded.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nvc import __version__
from nvc.argtypes import positive_int
from nvc.bench import executor
from nvc.errors import NvcError

if TYPE_CHECKING:  # the runner imports nvc.media: only when a batch runs (fast `nvc --help`)
    from nvc.bench.runner import Reporter

# Files a folder given as input contributes (anything else in it is left alone).
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".ts", ".y4m", ".yuv")
STATE_NAME = "batch.state.jsonl"


@dataclass(frozen=True)
class BatchJob:
    """One input video and how to code it."""

    input: str  # absolute path of the video
    output_name: str  # name of its .nvc file in the output folder
    codec: str  # nvc codec name
    options: dict[str, Any] = field(default_factory=dict)  # codec options
    frames: int | None = None  # code at most this many frames (None: all)

    def fingerprint(self) -> str:
        """What must match for a recorded output to be reused."""
        from nvc.bench import identity  # imports the codec (torch for fm) only when a batch runs

        stat = os.stat(self.input)
        try:  # the options resolved with defaults, fm's weights hash (nvc.bench.identity)
            codec = identity.fingerprint(identity.nvc_identity(self.codec, self.options))
        except NvcError as e:  # the job fails with this error when it runs
            codec = f"unavailable: {e}"
        data = {
            "input": self.input,
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "codec": self.codec,
            "options": self.options,
            "frames": self.frames,
            "nvc": __version__,
            "codec_identity": codec,
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class JobResult:
    """A coded input, as it comes back from wherever the job ran."""

    data: bytes  # the .nvc file
    frames: int  # frames coded
    width: int  # luma width
    height: int  # luma height
    bpp: float  # 8 * bytes / (frames * width * height)
    psnr: float | None  # PSNR of the encoder's reconstruction (dB), where the codec gives it
    psnr_metric: str | None  # "yuv" (6:1:1) or "rgb"
    seconds: float  # encode wall time
    host: str  # machine that coded it


def encode_job(job: BatchJob) -> JobResult:
    """Code one input (in whatever process runs the job); the file's bytes come back."""
    from nvc.codec.pipeline import encode_file

    with tempfile.TemporaryDirectory(prefix="nvc-batch-") as tmp:
        out = Path(tmp) / job.output_name
        report = encode_file(
            job.input, out, codec=job.codec, frames=job.frames, options=job.options, psnr=True
        )
        data = out.read_bytes()
    return JobResult(
        data=data,
        frames=report.frames,
        width=report.width,
        height=report.height,
        bpp=report.bpp,
        psnr=report.psnr,
        psnr_metric=report.psnr_metric,
        seconds=report.seconds,
        host=platform.node(),
    )


def collect_inputs(paths: list[str], lists: list[str]) -> list[Path]:
    """The videos named: files as given, folders' video files (sorted), list files' lines.

    A list file holds one path per line (blank lines and lines starting with # are
    skipped); relative paths are relative to the list file's folder.
    """
    named: list[Path] = [Path(p) for p in paths]
    for name in lists:
        list_path = Path(name)
        try:
            lines = list_path.read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise NvcError(f"cannot read the list {name}: {e.strerror}") from None
        for line in lines:
            text = line.strip()
            if text and not text.startswith("#"):
                p = Path(text)
                named.append(p if p.is_absolute() else list_path.parent / p)
    out: list[Path] = []
    for p in named:
        if p.is_dir():
            out += sorted(
                q for q in p.iterdir() if q.is_file() and q.suffix.lower() in VIDEO_EXTENSIONS
            )
        elif p.is_file():
            out.append(p)
        else:
            raise NvcError(f"no such file or folder: {p}")
    unique: list[Path] = []
    seen: set[Path] = set()
    for p in out:
        resolved = p.resolve()
        if resolved not in seen:
            seen.add(resolved)
            unique.append(resolved)
    if not unique:
        raise NvcError("no videos to code (folders contribute " + " ".join(VIDEO_EXTENSIONS) + ")")
    return unique


def plan_jobs(
    inputs: list[Path], codec: str, options: dict[str, Any], frames: int | None
) -> list[BatchJob]:
    """One job per input; refuses two inputs that would write the same output name."""
    from nvc.codec import registry

    registry.get(codec).config(options)  # an unknown codec or option fails before any work
    by_name: dict[str, Path] = {}
    jobs = []
    for p in inputs:
        name = p.stem + ".nvc"
        if name in by_name:
            raise NvcError(f"{by_name[name]} and {p} would both be coded to {name}: rename one")
        by_name[name] = p
        jobs.append(BatchJob(str(p), name, codec, dict(options), frames))
    return jobs


@dataclass
class BatchOutcome:
    """What a batch run did."""

    rows: list[dict[str, Any]]  # the recorded row of every job that has an output, in input order
    new: int  # jobs coded by this run (the rest were already done)
    failed: list[str]  # one line per job that failed


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)


def run_batch(
    jobs: list[BatchJob],
    out_dir: Path,
    *,
    ray: executor.RayTarget | None = None,
    fresh: bool = False,
    reporter: Reporter | None = None,
) -> BatchOutcome:
    """Code every job not already done into `out_dir` (see the module docstring)."""
    from nvc.bench.runner import Reporter, State

    reporter = reporter or Reporter(quiet=True)
    if ray is not None:
        executor.preflight(ray)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = State(out_dir / STATE_NAME, fresh=fresh)
    fingerprints = [job.fingerprint() for job in jobs]
    pending: list[int] = []
    for i, (job, fp) in enumerate(zip(jobs, fingerprints, strict=True)):
        row = state.rows.get(f"{fp}|{job.output_name}")
        if row is None or _sha256(out_dir / job.output_name) != row.get("sha256"):
            pending.append(i)
    if len(pending) < len(jobs):
        reporter.line(f"resuming: {len(jobs) - len(pending)} of {len(jobs)} videos already coded")
    failed: list[str] = []
    where = f"ray {ray.address}" if ray else "local"

    def done(k: int, result: JobResult) -> None:
        i = pending[k]
        job = jobs[i]
        _write_atomically(out_dir / job.output_name, result.data)
        info = asdict(result)
        del info["data"]
        row = {
            "key": job.output_name,
            "fingerprint": fingerprints[i],
            "input": job.input,
            "output": job.output_name,
            "codec": job.codec,
            "options": job.options,
            "frames_limit": job.frames,
            "bytes": len(result.data),
            "sha256": hashlib.sha256(result.data).hexdigest(),
            **info,
            "executor": where,
            "coded_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        state.add_row(row)
        quality = f", PSNR {result.psnr:.2f} dB" if result.psnr is not None else ""
        reporter.line(
            f"{job.output_name}: {result.frames} frames {result.width}x{result.height}, "
            f"{len(result.data)} bytes, {result.bpp:.4f} bpp{quality}, {result.seconds:.2f} s"
        )

    def error(k: int, e: BaseException) -> None:
        job = jobs[pending[k]]
        why = str(e) if isinstance(e, NvcError) else f"{type(e).__name__}: {e}"
        failed.append(f"{job.input}: {' '.join(why.split())}")
        reporter.line(f"{job.output_name}: FAILED: {failed[-1]}")

    executor.run_jobs(encode_job, [jobs[i] for i in pending], on_done=done, on_error=error, ray=ray)
    rows = [
        state.rows[key]
        for job, fp in zip(jobs, fingerprints, strict=True)
        if (key := f"{fp}|{job.output_name}") in state.rows
    ]
    return BatchOutcome(rows=rows, new=len(pending) - len(failed), failed=failed)


# -- the command ---------------------------------------------------------------------------


def _options(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise NvcError(f"--options: not valid JSON ({e.msg})") from None
    if not isinstance(value, dict):
        raise NvcError("--options wants a JSON object, e.g. '{\"q\": 30}'")
    return value


def configure(p: argparse.ArgumentParser) -> None:
    """Add the batch options to a parser."""
    from nvc.bench.cli import add_ray_argument

    p.add_argument("inputs", nargs="*", metavar="INPUT", help="videos, or folders of videos")
    p.add_argument(
        "--list",
        action="append",
        default=[],
        metavar="FILE",
        help="a text file naming one video per line; repeatable",
    )
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="folder for the .nvc files")
    p.add_argument("--codec", default="lossless", help="nvc codec (default: lossless)")
    p.add_argument(
        "--options",
        metavar="JSON",
        help="codec options as a JSON object, e.g. '{\"q\": 30}' (fm) or '{\"bpp\": 0.05}' (inr)",
    )
    p.add_argument("--frames", type=positive_int, help="code at most N frames of each video")
    p.add_argument(
        "--fresh", action="store_true", help="code every video again, ignoring earlier runs"
    )
    p.add_argument("--quiet", action="store_true", help="no line per video")
    add_ray_argument(p)


def run(args: argparse.Namespace) -> int:
    """Run a parsed `nvc batch` command; 0 when every video was coded."""
    from nvc.bench.runner import Reporter

    inputs = collect_inputs(args.inputs, args.list)
    jobs = plan_jobs(inputs, args.codec, _options(args.options), args.frames)
    reporter = Reporter(quiet=args.quiet)
    target = executor.RayTarget(args.ray) if args.ray else None
    outcome = run_batch(jobs, Path(args.out), ray=target, fresh=args.fresh, reporter=reporter)
    total = sum(r["bytes"] for r in outcome.rows)
    print(
        f"nvc batch: {len(outcome.rows)} of {len(jobs)} videos coded ({outcome.new} now), "
        f"{total} bytes in {args.out}"
    )
    if outcome.failed:
        raise NvcError(f"{len(outcome.failed)} of {len(jobs)} videos failed (listed above)")
    return 0


def add_parser(subparsers: Any) -> None:
    """Add `batch` to the `nvc` command's subparsers."""
    p = subparsers.add_parser(
        "batch",
        help="encode a folder or list of videos, here or on a Ray cluster",
        description="Encode many videos into OUT/<name>.nvc, each as `nvc encode` would. "
        "Jobs run in this process or as Ray tasks (--ray); running the same command again "
        "codes only what is new or changed.",
    )
    configure(p)
    p.set_defaults(run=run)

"""The codecs a benchmark runs: anchors (x264, x265, SVT-AV1) and nvc's own codecs.

Both kinds look the same to the runner: a name, a list of rate points (each a dict of
options), `encode(frames, point, path) -> bytes` that writes one file, and
`decode(path) -> frames` that reads it back in a fresh decoder.

nvc codecs are looked up in `nvc.codec.registry`, coded through
`nvc.codec.pipeline.encode_frames` into a real .nvc file (the container's bytes count
towards bpp), and decoded from that file with `decode_frames`. Their rate points come
from `NVC_RATE_POINTS` (or `--points`); a registered codec not in that table is run once
with its default options. A name that is neither an anchor nor a registered codec is
skipped with a message saying so.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from nvc.bench import anchors
from nvc.errors import CodecError, NvcError
from nvc.media import Frame

ProgressFn = Callable[[int, int], None]

# Rate points of nvc's codecs: codec name -> encoder options of each point, lowest rate first.
# inr trains while it encodes: each point gets a 60 s training budget so that a default
# run finishes in minutes on a CPU; give longer budgets with --points for its best quality.
INR_TIME_BUDGET = 60.0
NVC_RATE_POINTS: dict[str, list[dict[str, Any]]] = {
    "inr": [{"bpp": b, "time_budget": INR_TIME_BUDGET} for b in (0.02, 0.05, 0.1, 0.2)],
    "lossless": [{}],
    # gaussian fits while it encodes: 2 s per frame (a keyframe 4x) at four quantizations
    "gaussian": [{"q": q, "frame_budget": 2.0} for q in (8, 24, 40, 56)],
}


def _config_fields(name: str) -> set[str]:
    from nvc.codec import registry

    return {f.name for f in dataclasses.fields(registry.get(name).config_type)}


def _describe(status: Any) -> str:
    """A short line from a codec's progress object (epoch, PSNR, bpp when it has them)."""
    parts = []
    if hasattr(status, "epoch") and hasattr(status, "epochs"):
        parts.append(f"epoch {status.epoch}/{status.epochs}")
    if hasattr(status, "group") and getattr(status, "groups", None):
        parts.append(f"group {status.group + 1}/{status.groups}")
    for name, unit in (("psnr", "dB"), ("bpp", "bpp")):
        value = getattr(status, name, None)
        if isinstance(value, int | float):
            parts.append(f"{value:.3f} {unit}" if name == "bpp" else f"{value:.2f} {unit}")
    return ", ".join(parts) or str(status)[:80]


def point_label(point: Mapping[str, Any]) -> str:
    """A short stable label for a rate point: 'crf=27', 'bpp=0.05', 'default'."""
    if not point:
        return "default"
    return ",".join(f"{k}={point[k]}" for k in sorted(point))


def point_key(point: Mapping[str, Any]) -> str:
    """The rate point as canonical JSON (used to recognise finished rows)."""
    return json.dumps(dict(point), sort_keys=True, separators=(",", ":"))


@dataclass
class Contender:
    """One codec under test, with its rate points and fixed settings."""

    name: str  # name on the command line and in results
    label: str  # name in plots and tables
    kind: str  # "anchor" or "nvc"
    points: list[dict[str, Any]]  # options of each rate point
    extension: str  # extension of the coded file
    config: dict[str, Any] = field(default_factory=dict)  # what results record
    anchor_config: anchors.AnchorConfig | None = None
    gop: str = "ra"
    keyint: int = anchors.DEFAULT_KEYINT
    threads: int = 1

    def encode(
        self,
        frames: Sequence[Frame],
        point: Mapping[str, Any],
        path: str | os.PathLike[str],
        *,
        fps: Fraction,
        progress: ProgressFn | None = None,
        detail: Callable[[str], None] | None = None,
    ) -> int:
        """Code `frames` at one rate point into the file `path`; returns its size in bytes.

        `progress(done, total)` follows the frames given to the encoder; `detail(text)`
        receives free-form status from codecs that report it (training epochs).
        """
        if self.anchor_config is not None:
            crf = point.get("crf")
            if not isinstance(crf, int) or set(point) != {"crf"}:
                raise CodecError(f"{self.name} rate points are {{'crf': N}}, got {dict(point)}")
            return anchors.encode(
                frames,
                self.anchor_config,
                crf,
                path,
                fps=fps,
                gop=self.gop,
                keyint=self.keyint,
                threads=self.threads,
                progress=progress,
            )
        from nvc.codec.base import StreamInfo
        from nvc.codec.pipeline import encode_frames

        first = frames[0]
        stream = StreamInfo(
            width=first.width,
            height=first.height,
            fps=Fraction(fps),
            format=first.format,
            full_range=first.full_range,
            frame_count=len(frames),
        )
        total = len(frames)

        def report(done: int, _total: int | None) -> None:
            if progress:
                progress(done, total)

        options = dict(point)
        if detail is not None and "on_progress" in _config_fields(self.name):
            # Codecs that train (inr) report their epochs: show them on the progress line.
            options["on_progress"] = lambda status: detail(_describe(status))
        result = encode_frames(
            frames, stream, path, codec=self.name, options=options, progress=report
        )
        return int(result.bytes)

    def decode(self, path: str | os.PathLike[str], *, fps: Fraction) -> list[Frame]:
        """Read a file written by `encode` back into frames, with a fresh decoder."""
        if self.anchor_config is not None:
            return anchors.decode(path, self.anchor_config, fps=fps, threads=self.threads)
        from nvc.codec.pipeline import decode_frames

        return list(decode_frames(path))


def canonical(name: str) -> str:
    """The canonical name of a codec: anchors' aliases resolved ('svt-av1' -> 'svtav1')."""
    config = anchors.anchor(name.strip())
    return config.name if config else name.strip()


def parse_points(specs: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """--points CODEC=JSON values: a JSON list of option objects per codec.

    For anchors the list may also be plain CRF numbers: x265=[22,27,32,37].
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for spec in specs:
        name, sep, text = spec.partition("=")
        if not sep or not name.strip():
            raise NvcError(
                f"--points wants CODEC=JSON, e.g. 'inr=[{{\"bpp\": 0.05}}]', not {spec!r}"
            )
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise NvcError(f"--points {name}: not valid JSON ({e.msg})") from None
        if not isinstance(value, list) or not value:
            raise NvcError(f"--points {name}: expected a non-empty JSON list")
        points: list[dict[str, Any]] = []
        for item in value:
            if isinstance(item, int) and not isinstance(item, bool):
                points.append({"crf": item})
            elif isinstance(item, dict):
                points.append(item)
            else:
                raise NvcError(f"--points {name}: each point is an object (or a CRF number)")
        out[canonical(name)] = points
    return out


def resolve(
    names: Sequence[str],
    *,
    gop: str = "ra",
    keyint: int = anchors.DEFAULT_KEYINT,
    threads: int = 1,
    points: Mapping[str, list[dict[str, Any]]] | None = None,
) -> tuple[list[Contender], list[str]]:
    """Contenders for the requested names, and one message per name that was skipped."""
    from nvc.codec import registry

    points = dict(points or {})
    registered = registry.names()
    out: list[Contender] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        config = anchors.anchor(name)
        if config is not None:
            if config.name in seen:
                continue
            seen.add(config.name)
            pts = points.pop(config.name, []) or [{"crf": c} for c in config.crf_points]
            out.append(
                Contender(
                    name=config.name,
                    label=config.label,
                    kind="anchor",
                    points=pts,
                    extension=config.extension,
                    config=config.describe(gop, keyint, threads),
                    anchor_config=config,
                    gop=gop,
                    keyint=keyint,
                    threads=threads,
                )
            )
        elif name in registered:
            if name in seen:
                continue
            seen.add(name)
            spec = registry.get(name)
            pts = points.pop(name, []) or NVC_RATE_POINTS.get(name) or [{}]
            for p in pts:
                spec.config(p)  # unknown options fail now, not after an hour of anchors
            out.append(
                Contender(
                    name=name,
                    label=f"nvc {name}",
                    kind="nvc",
                    points=[dict(p) for p in pts],
                    extension="nvc",
                    config={"codec_id": spec.id, "summary": spec.summary},
                )
            )
        else:
            known = ", ".join(list(anchors.ANCHORS) + registered)
            skipped.append(
                f"codec {name!r} is not registered in this nvc and is not an anchor; skipped "
                f"(available: {known})"
            )
    for name in points:
        skipped.append(f"--points {name}: no such codec in this run; ignored")
    return out, skipped

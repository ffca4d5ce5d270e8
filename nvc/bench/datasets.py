"""What the benchmark codes: UVG, a user's clips, or a generated clip, and how much of it.

Every sequence is brought to one working format before any codec sees it: 8-bit 4:2:0
Y'CbCr at limited ("studio") range, even width and height. 10-bit sources (UVG's 10-bit
files, HDR clips) are converted to 8 bits by `nvc.media.convert` (a 2-bit shift of the
levels); an odd width or height loses its last column or row. Quality is measured against
these working frames, so every codec is compared with the same reference.

A `Protocol` says how much of each sequence is coded: all frames at native size (the UVG
protocol of the published results), or a quick run (`--frames`, `--crop`, `--scale`,
`--quick`) whose limits are written into every result so that nobody mistakes it for a
UVG result.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from nvc.errors import MediaError, NvcError
from nvc.media import Frame, convert, iter_synthetic_clip, open_video, parse_raw_name
from nvc.media.pyav_io import av_frame_from, planes_from_av

WORK_FORMAT = "yuv420p"  # the format every codec is given and measured in

UVG_URL = "https://ultravideo.fi/dataset.html"
UVG_SIZE = (1920, 1080)
# The seven 1080p sequences that learned-codec papers report on, with their frame counts.
UVG_SEQUENCES: dict[str, int] = {
    "Beauty": 600,
    "Bosphorus": 600,
    "HoneyBee": 600,
    "Jockey": 600,
    "ReadySteadyGo": 600,
    "ShakeNDry": 300,
    "YachtRide": 600,
}
# Other spellings seen in papers' scripts (C3 and others write "ReadySetGo").
_UVG_ALIASES = {"readysetgo": "ReadySteadyGo"}

QUICK_FRAMES = 30  # --quick: the first 30 frames ...
QUICK_FIT = (640, 360)  # ... scaled to fit in 640x360


@dataclass(frozen=True)
class Protocol:
    """How much of each sequence is coded. None everywhere means all of it, as it is."""

    frames: int | None = None  # code only the first N frames
    crop: tuple[int, int] | None = None  # centre crop to (width, height), before scaling
    scale: tuple[int, int] | None = None  # resize to (width, height) (area filter down)
    fit: tuple[int, int] | None = None  # resize to fit inside (width, height), aspect kept

    @property
    def quick(self) -> bool:
        """True when sequences are not coded whole and at their own size."""
        return any(v is not None for v in (self.frames, self.crop, self.scale, self.fit))

    def describe(self) -> str:
        """One line for reports, e.g. 'first 30 frames, scaled to 640x360'."""
        parts = []
        if self.frames is not None:
            parts.append(f"first {self.frames} frames")
        if self.crop is not None:
            parts.append(f"centre-cropped to {self.crop[0]}x{self.crop[1]}")
        if self.scale is not None:
            parts.append(f"scaled to {self.scale[0]}x{self.scale[1]}")
        if self.fit is not None:
            parts.append(f"scaled to fit {self.fit[0]}x{self.fit[1]}")
        return ", ".join(parts) if parts else "all frames at native size"

    def as_dict(self) -> dict[str, object]:
        return {
            "frames": self.frames,
            "crop": list(self.crop) if self.crop else None,
            "scale": list(self.scale) if self.scale else None,
            "fit": list(self.fit) if self.fit else None,
        }


@dataclass(frozen=True)
class Sequence:
    """One source of frames."""

    name: str  # short name used in tables and file names (e.g. "Beauty")
    kind: str  # "uvg", "file" or "synthetic"
    source: str  # file path, or "synthetic:WxH:seed=S"
    identity: str = ""  # what changes when the content changes (path, size, mtime)


@dataclass
class Clip:
    """A sequence loaded for coding: frames in the working format, and what was done."""

    sequence: Sequence
    frames: list[Frame]
    fps: Fraction
    source_size: tuple[int, int]  # (width, height) of the source
    source_format: str  # pixel format of the source
    source_frames: int | None  # frames in the source, when known
    notes: list[str] = field(default_factory=list)  # conversions applied, in order

    @property
    def width(self) -> int:
        return self.frames[0].width

    @property
    def height(self) -> int:
        return self.frames[0].height

    def info(self) -> dict[str, object]:
        """What reports record about the sequence."""
        return {
            "name": self.sequence.name,
            "kind": self.sequence.kind,
            "source": self.sequence.source,
            "width": self.width,
            "height": self.height,
            "frames": len(self.frames),
            "fps": str(self.fps),
            "source_size": f"{self.source_size[0]}x{self.source_size[1]}",
            "source_format": self.source_format,
            "source_frames": self.source_frames,
            "notes": list(self.notes),
        }


# -- finding sequences ------------------------------------------------------------------


def uvg_missing_message(directory: Path, missing: list[str]) -> str:
    example = "Beauty_1920x1080_120fps_420_8bit_YUV.yuv"
    return (
        f"UVG not found in {directory}: missing {', '.join(missing)}. nvc cannot download it. "
        f"Get the 1920x1080 8-bit (or 10-bit) 4:2:0 YUV RAW archives of Beauty, Bosphorus, "
        f"HoneyBee, Jockey, ReadySteadyGo, ShakeNDry and YachtRide from {UVG_URL}, extract "
        f"them, and put the .yuv files with their official names directly in {directory} "
        f"(or one folder below it), e.g. {directory / example}"
    )


def _uvg_name(stem: str) -> str | None:
    head = stem.split("_", 1)[0].lower()
    for name in UVG_SEQUENCES:
        if head == name.lower():
            return name
    return _UVG_ALIASES.get(head)


def _candidates(directory: Path) -> Iterator[Path]:
    """Files in `directory` and in its immediate subdirectories, sorted by name."""
    entries = sorted(directory.iterdir())
    for p in entries:
        if p.is_file():
            yield p
    for p in entries:
        if p.is_dir():
            yield from sorted(q for q in p.iterdir() if q.is_file())


def find_uvg(directory: str | os.PathLike[str], *, require_all: bool = False) -> list[Sequence]:
    """The UVG sequences in `directory`, in the standard order.

    Files are recognised by their official names (`Beauty_1920x1080_120fps_420_8bit_YUV.yuv`,
    and the `_10bit_` variants); when both depths are present the 8-bit file is used. None
    found (or, with `require_all`, any missing) is an NvcError that says where to get UVG
    and how to lay it out.
    """
    root = Path(directory)
    if not root.is_dir():
        raise NvcError(uvg_missing_message(root, list(UVG_SEQUENCES)))
    found: dict[str, tuple[int, Path]] = {}
    for path in _candidates(root):
        if path.suffix.lower() not in (".yuv", ".y4m"):
            continue
        name = _uvg_name(path.stem)
        if name is None:
            continue
        if path.suffix.lower() == ".yuv":
            guess = parse_raw_name(path.name)
            if guess.size != UVG_SIZE or guess.pix_fmt not in ("yuv420p", "yuv420p10le"):
                continue
            depth = 10 if guess.pix_fmt == "yuv420p10le" else 8
        else:
            depth = 10 if "10bit" in path.stem.lower() else 8
        if name not in found or depth < found[name][0]:
            found[name] = (depth, path)
    missing = [n for n in UVG_SEQUENCES if n not in found]
    if not found or (require_all and missing):
        raise NvcError(uvg_missing_message(root, missing))
    return [_file_sequence(found[n][1], n, "uvg") for n in UVG_SEQUENCES if n in found]


def _file_sequence(path: Path, name: str, kind: str) -> Sequence:
    try:
        st = path.stat()
    except OSError as e:
        raise MediaError(f"cannot read {path}: {e.strerror or e}") from None
    identity = f"{path.resolve()}|{st.st_size}|{int(st.st_mtime)}"
    return Sequence(name=name, kind=kind, source=str(path), identity=identity)


def user_sequences(paths: list[str]) -> list[Sequence]:
    """Sequences for the user's files; names are file stems, made unique."""
    out: list[Sequence] = []
    used: set[str] = set()
    for text in paths:
        p = Path(text)
        if not p.exists():
            raise MediaError(f"no such file: {p}")
        base = _safe_name(p.stem if p.is_file() else p.name) or "clip"
        name, i = base, 2
        while name in used:
            name, i = f"{base}-{i}", i + 1
        used.add(name)
        out.append(_file_sequence(p, name, "file"))
    return out


def synthetic_sequence(width: int, height: int, seed: int = 1) -> Sequence:
    """The generated natural-looking clip of nvc.media at width x height."""
    source = f"synthetic:{width}x{height}:seed={seed}"
    return Sequence(
        name=f"synthetic-{width}x{height}", kind="synthetic", source=source, identity=source
    )


def _safe_name(text: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "-" for c in text)
    return keep.strip("-.")


# -- loading ----------------------------------------------------------------------------

SYNTHETIC_FPS = Fraction(25)
SYNTHETIC_FRAMES = 60  # frames of a synthetic sequence when the protocol says "all"


def _even(n: int) -> int:
    return n - (n % 2)


def fit_size(width: int, height: int, box: tuple[int, int]) -> tuple[int, int]:
    """The even size with width x height's aspect that fits in box (never enlarged)."""
    bw, bh = box
    ratio = min(bw / width, bh / height, 1.0)
    return max(2, _even(round(width * ratio))), max(2, _even(round(height * ratio)))


def crop_center(frame: Frame, width: int, height: int) -> Frame:
    """The centre width x height window of a 4:2:0 frame (even offsets and sizes)."""
    if width > frame.width or height > frame.height:
        raise NvcError(f"cannot crop a {frame.width}x{frame.height} frame to {width}x{height}")
    x0 = _even((frame.width - width) // 2)
    y0 = _even((frame.height - height) // 2)
    y, u, v = frame.planes
    planes = (
        np.ascontiguousarray(y[y0 : y0 + height, x0 : x0 + width]),
        np.ascontiguousarray(u[y0 // 2 : (y0 + height) // 2, x0 // 2 : (x0 + width) // 2]),
        np.ascontiguousarray(v[y0 // 2 : (y0 + height) // 2, x0 // 2 : (x0 + width) // 2]),
    )
    return Frame(planes, frame.format, frame.pts, frame.time_base, frame.full_range)


def resize(frame: Frame, width: int, height: int) -> Frame:
    """The frame resized by FFmpeg's swscale: area averaging down, bicubic up."""
    if (width, height) == (frame.width, frame.height):
        return frame
    down = width <= frame.width and height <= frame.height
    image = av_frame_from(frame)
    out = image.reformat(
        width=width, height=height, format=frame.format, interpolation="AREA" if down else "BICUBIC"
    )
    return Frame(planes_from_av(out, frame.format), frame.format, frame.pts, frame.time_base)


def _to_work_format(frame: Frame) -> Frame:
    if frame.format != WORK_FORMAT or frame.full_range:
        frame = convert(frame, WORK_FORMAT, full_range=False)
    w, h = _even(frame.width), _even(frame.height)
    if (w, h) != (frame.width, frame.height):
        frame = crop_center(frame, w, h) if w and h else frame
    return frame


def _process(frame: Frame, protocol: Protocol) -> Frame:
    frame = _to_work_format(frame)
    if protocol.crop is not None:
        frame = crop_center(frame, *protocol.crop)
    if protocol.scale is not None:
        frame = resize(frame, *protocol.scale)
    if protocol.fit is not None:
        frame = resize(frame, *fit_size(frame.width, frame.height, protocol.fit))
    return frame


def load(sequence: Sequence, protocol: Protocol) -> Clip:
    """Read a sequence under a protocol into working-format frames."""
    frames: list[Frame] = []
    full_range = False
    if sequence.kind == "synthetic":
        _, size, seed = sequence.source.split(":")
        w, h = (int(v) for v in size.split("x"))
        n = protocol.frames or SYNTHETIC_FRAMES
        fps, src_size, src_fmt, src_frames = SYNTHETIC_FPS, (w, h), WORK_FORMAT, None
        for f in iter_synthetic_clip(
            w, h, n, fps=SYNTHETIC_FPS, format=WORK_FORMAT, seed=int(seed.removeprefix("seed="))
        ):
            frames.append(_process(f, protocol))
    else:
        with open_video(sequence.source) as reader:
            fps = reader.fps
            src_size = (reader.width, reader.height)
            src_fmt = reader.format
            src_frames = reader.frame_count
            full_range = reader.full_range
            for f in reader:
                if protocol.frames is not None and len(frames) >= protocol.frames:
                    break
                frames.append(_process(f, protocol))
        if not frames:
            raise MediaError(f"{sequence.source} holds no frames")
    notes: list[str] = []
    if src_fmt != WORK_FORMAT:
        notes.append(f"converted {src_fmt} to {WORK_FORMAT}")
    if full_range:
        notes.append("converted full-range levels to limited range")
    if (src_size[0] % 2) or (src_size[1] % 2):
        notes.append(f"cropped {src_size[0]}x{src_size[1]} to an even size")
    if protocol.frames is not None and len(frames) < protocol.frames:
        notes.append(f"source has only {len(frames)} frames (asked for {protocol.frames})")
    return Clip(sequence, frames, fps, src_size, src_fmt, src_frames, notes)

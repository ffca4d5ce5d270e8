"""Training data for `nvc train fm`, from what a user really has.

Three sources, mixed with equal probability among those given:

- folders of videos (anything PyAV or nvc.media opens): short windows of consecutive
  frames at random positions, random crops, sometimes halved in size first;
- folders of images (jpg, png, ...), animated into clips: a crop window that moves with a
  random camera velocity and zoom over the (randomly rescaled) photograph, plus one or two
  moving layers (soft-edged patches cut from another photograph) with their own motion.
  Natural photographs come with Debian's wallpaper packages (plasma-workspace-wallpapers,
  mate-backgrounds: /usr/share/wallpapers, /usr/share/backgrounds), so a model can be
  trained where no video dataset can be downloaded;
- nvc.media.synthetic_clip (procedural texture, camera pan, moving sprites) when no folder
  is given, or as a third source on request.

Every sample is `frames` consecutive 8-bit 4:2:0 pictures of crop x crop pixels, returned
as code values in the model's 96-channel layout: (frames, 96, crop / 8, crop / 8).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np
import torch
from torch import Tensor

from nvc.codec.conditional import frames as fr
from nvc.errors import NvcError
from nvc.media import Frame, open_video, rgb_to_yuv, synthetic_clip

VIDEO_EXTENSIONS = {".mp4", ".mkv", ".webm", ".mov", ".avi", ".y4m", ".m4v", ".ts", ".mpg"}
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def _files(folders: Sequence[str | os.PathLike[str]], extensions: set[str]) -> list[Path]:
    out: list[Path] = []
    for folder in folders:
        p = Path(folder)
        if p.is_file():
            out.append(p)
            continue
        if not p.is_dir():
            raise NvcError(f"training data folder {p} does not exist")
        out.extend(sorted(f for f in p.rglob("*") if f.suffix.lower() in extensions))
    return out


def _planes_to_codes(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> Tensor:
    yt = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))[None, None]
    uv = torch.from_numpy(np.ascontiguousarray(np.stack([u, v]), dtype=np.float32))[None]
    return fr.planes_to_96(yt, uv)[0]


def _rgb_to_codes(rgb: np.ndarray) -> Tensor:
    y, u, v = rgb_to_yuv(rgb, "yuv420p")
    return _planes_to_codes(y, u, v)


def _bilinear_crop(
    img: np.ndarray, x0: float, y0: float, scale: float, width: int, height: int
) -> np.ndarray:
    """width x height window of img (H, W, 3) float32, or uint8 scaled to [0, 1], whose
    top-left is (x0, y0) and whose pixels are `scale` source pixels apart (bilinear, edges
    clamped)."""
    h, w = img.shape[:2]
    xs = np.clip(x0 + scale * np.arange(width, dtype=np.float32), 0, w - 1.001)
    ys = np.clip(y0 + scale * np.arange(height, dtype=np.float32), 0, h - 1.001)
    xi, yi = xs.astype(np.int64), ys.astype(np.int64)
    ax, ay = (xs - xi)[None, :, None], (ys - yi)[:, None, None]
    unit = np.float32(1 / 255 if img.dtype == np.uint8 else 1)  # uint8 photographs
    rows, rows1 = img[yi], img[yi + 1]
    a = rows[:, xi].astype(np.float32) * unit
    b = rows[:, xi + 1].astype(np.float32) * unit
    c = rows1[:, xi].astype(np.float32) * unit
    d = rows1[:, xi + 1].astype(np.float32) * unit
    return (a * (1 - ax) + b * ax) * (1 - ay) + (c * (1 - ax) + d * ax) * ay


class ImageAnimator:
    """Clips from still photographs: camera motion plus moving layers."""

    def __init__(self, folders: Sequence[str | os.PathLike[str]], max_side: int = 1024) -> None:
        files = _files(folders, IMAGE_EXTENSIONS)
        self.images: list[np.ndarray] = []
        for f in files:
            try:
                with av.open(str(f)) as c:
                    frame = next(c.decode(video=0))
            except (av.error.FFmpegError, StopIteration, OSError):
                continue
            scale = max(frame.width, frame.height) / max_side
            if scale > 1:
                frame = frame.reformat(
                    width=int(frame.width / scale), height=int(frame.height / scale)
                )
            self.images.append(frame.to_ndarray(format="rgb24"))  # uint8: 4x less memory
        if not self.images:
            raise NvcError(f"no readable images in {', '.join(str(f) for f in folders)}")

    def sample(self, rng: np.random.Generator, frames: int, crop: int) -> Tensor:
        return torch.stack([_rgb_to_codes(p) for p in self.animate(rng, frames, crop, crop)])

    def animate(
        self, rng: np.random.Generator, frames: int, width: int, height: int
    ) -> list[np.ndarray]:
        """`frames` RGB pictures (height, width, 3) float32 in [0, 1] of one animated clip."""
        img = self.images[rng.integers(len(self.images))]
        h, w = img.shape[:2]
        side = max(width, height)
        scale = float(rng.uniform(0.5, max(0.5, min(3.0, min(h, w) / (side * 1.6)))))
        zoom = float(rng.uniform(-0.01, 0.01))
        vx, vy = rng.uniform(-6, 6, size=2) * scale
        span_x = width * scale * (1 + abs(zoom) * frames) + abs(vx) * frames
        span_y = height * scale * (1 + abs(zoom) * frames) + abs(vy) * frames
        x0 = float(rng.uniform(0, max(w - span_x, 1))) + (abs(vx) * frames if vx < 0 else 0)
        y0 = float(rng.uniform(0, max(h - span_y, 1))) + (abs(vy) * frames if vy < 0 else 0)
        layers = []
        small = min(width, height)
        for _ in range(int(rng.integers(0, 3))):
            src = self.images[rng.integers(len(self.images))]
            size = int(rng.integers(small // 4, small // 2 + 1))
            sy = int(rng.integers(0, src.shape[0] - size))
            sx = int(rng.integers(0, src.shape[1] - size))
            patch = src[sy : sy + size, sx : sx + size].astype(np.float32) / 255.0
            yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1) * 2 - 1
            alpha = np.clip((1 - np.sqrt(xx**2 + yy**2)) * 4, 0, 1)[:, :, None]  # soft disc
            pos = rng.uniform(0, 1, size=2) * (np.array([width, height]) - size)
            vel = rng.uniform(-5, 5, size=2)
            layers.append((patch, alpha, pos, vel))
        out = []
        for t in range(frames):
            s = scale * (1 + zoom * t)
            pic = _bilinear_crop(img, x0 + vx * t, y0 + vy * t, s, width, height)
            for patch, alpha, pos, vel in layers:
                px, py = (int(round(v)) for v in pos + vel * t)
                size = patch.shape[0]
                x1, y1 = max(px, 0), max(py, 0)
                x2, y2 = min(px + size, width), min(py + size, height)
                if x2 <= x1 or y2 <= y1:
                    continue
                sub = (slice(y1 - py, y2 - py), slice(x1 - px, x2 - px))
                a = alpha[sub]
                pic[y1:y2, x1:x2] = pic[y1:y2, x1:x2] * (1 - a) + patch[sub] * a
            out.append(pic)
        return out


def parse_span(item: str | os.PathLike[str]) -> tuple[Path, int, int | None]:
    """'clip.avi' -> (clip.avi, 0, None); 'clip.avi@0-600' -> frames 0..599 only;
    'clip.avi@600-' -> from frame 600 on (so that one clip can be split in time between
    training and testing)."""
    text = str(item)
    if "@" not in text:
        return Path(text), 0, None
    path, _, span = text.rpartition("@")
    first, sep, last = span.partition("-")
    try:
        start = int(first)
        stop = int(last) if last else None
    except ValueError:
        raise NvcError(f"bad frame span {span!r} in {text!r} (write FILE@FIRST-LAST)") from None
    if not sep or start < 0 or (stop is not None and stop <= start):
        raise NvcError(f"bad frame span {span!r} in {text!r} (write FILE@FIRST-LAST)")
    return Path(path), start, stop


class VideoClips:
    """Windows of consecutive frames from videos, all decoded once into memory (8-bit
    4:2:0 planes), so that a sample is a pure function of the random generator: a run that
    resumes from a checkpoint draws exactly the samples an uninterrupted run draws.

    Items are folders (every video in them), files, or `FILE@FIRST-LAST` (frames FIRST to
    LAST - 1 of one file). A window starts at a uniformly drawn frame of all the clips;
    frames whose shorter side is at least twice the crop are halved (2x2 mean) half the
    time, for a second scale. Clips smaller than the crop are left out (and named)."""

    def __init__(self, items: Sequence[str | os.PathLike[str]], crop: int | None = None) -> None:
        self.clips: list[tuple[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]] = []
        self.skipped: list[str] = []
        for item in items:
            path, start, stop = parse_span(item)
            for f in _files([path], VIDEO_EXTENSIONS) if path.is_dir() else [path]:
                if not f.is_file():
                    raise NvcError(f"training video {f} does not exist")
                planes = _read_planes(f, start, stop)
                name = f.name if "@" not in str(item) else f"{f.name}@{start}-{stop or ''}"
                h, w = planes[0][0].shape if planes else (0, 0)
                if not planes or (crop is not None and min(h, w) < crop):
                    self.skipped.append(name)
                    continue
                self.clips.append((name, planes))
        if not self.clips:
            raise NvcError(f"no usable videos in {', '.join(str(i) for i in items)}")
        self.files = [name for name, _ in self.clips]
        self._lengths = np.array([len(p) for _, p in self.clips], dtype=np.int64)

    def sample(self, rng: np.random.Generator, frames: int, crop: int) -> Tensor:
        starts = np.maximum(self._lengths - frames + 1, 0)
        if starts.sum() == 0:
            raise NvcError(f"no video has {frames} frames")
        k = int(rng.choice(len(self.clips), p=starts / starts.sum()))
        name, planes = self.clips[k]
        t0 = int(rng.integers(int(starts[k])))
        y0p = planes[t0][0]
        half = min(y0p.shape) >= 2 * crop and rng.random() < 0.5
        h, w = (y0p.shape[0] // 2, y0p.shape[1] // 2) if half else y0p.shape
        if w < crop or h < crop:
            raise NvcError(f"video {name} frames {w}x{h} are smaller than the crop {crop}")
        x0 = int(rng.integers(0, w - crop + 1)) & ~1
        y0 = int(rng.integers(0, h - crop + 1)) & ~1
        out = []
        for y, u, v in planes[t0 : t0 + frames]:
            yf, uf, vf = (p.astype(np.float32) for p in (y, u, v))
            if half:
                yf, uf, vf = np.round(_halve(yf)), np.round(_halve(uf)), np.round(_halve(vf))
            ys = yf[y0 : y0 + crop, x0 : x0 + crop]
            us = uf[y0 // 2 : (y0 + crop) // 2, x0 // 2 : (x0 + crop) // 2]
            vs = vf[y0 // 2 : (y0 + crop) // 2, x0 // 2 : (x0 + crop) // 2]
            out.append(_planes_to_codes(ys, us, vs))
        return torch.stack(out)


def _read_planes(
    path: Path, start: int, stop: int | None
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Frames start..stop-1 of a video as 8-bit 4:2:0 planes (uint8)."""
    out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    try:
        with open_video(path) as reader:
            for i, frame in enumerate(reader):
                if stop is not None and i >= stop:
                    break
                if i < start:
                    continue
                f = frame if frame.format == "yuv420p" else _convert(frame)
                y, u, v = (np.ascontiguousarray(p, dtype=np.uint8) for p in f.planes[:3])
                if y.shape[0] % 2 or y.shape[1] % 2:  # even luma, whole chroma samples
                    y = y[: y.shape[0] // 2 * 2, : y.shape[1] // 2 * 2]
                out.append(
                    (
                        y,
                        u[: y.shape[0] // 2, : y.shape[1] // 2],
                        v[: y.shape[0] // 2, : y.shape[1] // 2],
                    )
                )
    except NvcError as e:
        raise NvcError(f"cannot read training video {path}: {e}") from None
    return out


def _convert(frame: Frame) -> Frame:
    from nvc.media import convert

    if frame.pixel_format.bit_depth > 8:
        frame = convert(frame, "yuv420p10le" if frame.pixel_format.family == "yuv" else "rgb24")
    return convert(frame, "yuv420p", full_range=False)


def _halve(p: np.ndarray) -> np.ndarray:
    h, w = p.shape[0] // 2 * 2, p.shape[1] // 2 * 2
    p = p[:h, :w]
    return (p[0::2, 0::2] + p[1::2, 0::2] + p[0::2, 1::2] + p[1::2, 1::2]) / 4


class SyntheticClips:
    """nvc.media.synthetic_clip with a new seed per sample."""

    def sample(self, rng: np.random.Generator, frames: int, crop: int) -> Tensor:
        seed = int(rng.integers(1 << 30))
        clip = synthetic_clip(crop, crop, frames, format="yuv420p", seed=seed)
        return torch.stack([_planes_to_codes(*(p for p in f.planes)) for f in clip])


VIDEO_WEIGHT = 3.0  # real video is drawn this many times as often as each other source


class TrainingData:
    """Mixes the sources (videos VIDEO_WEIGHT times as often as each other one); `batch()`
    gives (B, frames, 96, crop / 8, crop / 8) codes. `crop` (when known) leaves out videos
    smaller than the crops."""

    def __init__(
        self,
        videos: Sequence[str] = (),
        images: Sequence[str] = (),
        synthetic: bool | None = None,
        seed: int = 0,
        crop: int | None = None,
    ) -> None:
        self.sources: list[VideoClips | ImageAnimator | SyntheticClips] = []
        if videos:
            self.sources.append(VideoClips(videos, crop))
        if images:
            self.sources.append(ImageAnimator(images))
        if synthetic or (synthetic is None and not self.sources):
            self.sources.append(SyntheticClips())
        if not self.sources:
            raise NvcError("no training data: give video or image folders, or --synthetic")
        weights = np.array(
            [VIDEO_WEIGHT if isinstance(s, VideoClips) else 1.0 for s in self.sources]
        )
        self._p = weights / weights.sum()
        self.rng = np.random.default_rng(seed)

    def describe(self) -> str:
        parts = []
        for s in self.sources:
            if isinstance(s, VideoClips):
                parts.append(f"videos {', '.join(s.files)}")
                if s.skipped:
                    parts.append(f"left out (smaller than the crop): {', '.join(s.skipped)}")
            elif isinstance(s, ImageAnimator):
                parts.append(f"{len(s.images)} animated images")
            else:
                parts.append("synthetic clips")
        return ", ".join(parts)

    def batch(self, size: int, frames: int, crop: int) -> Tensor:
        if crop % fr.ALIGN:
            raise NvcError(f"crop must be a multiple of {fr.ALIGN}, got {crop}")
        out = []
        for _ in range(size):
            src = self.sources[int(self.rng.choice(len(self.sources), p=self._p))]
            clip = src.sample(self.rng, frames, crop)
            if self.rng.random() < 0.5:  # random horizontal flip (a mirrored world)
                y, uv = fr.split_96(clip)
                clip = fr.planes_to_96(y.flip(-1), uv.flip(-1))
            out.append(clip)
        return torch.stack(out)

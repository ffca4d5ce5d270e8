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
from collections.abc import Iterator, Sequence
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
    yt = torch.from_numpy(y.astype(np.float32))[None, None]
    uv = torch.from_numpy(np.stack([u, v]).astype(np.float32))[None]
    return fr.planes_to_96(yt, uv)[0]


def _rgb_to_codes(rgb: np.ndarray) -> Tensor:
    y, u, v = rgb_to_yuv(rgb, "yuv420p")
    return _planes_to_codes(y, u, v)


def _bilinear_crop(
    img: np.ndarray, x0: float, y0: float, scale: float, width: int, height: int
) -> np.ndarray:
    """width x height window of img (H, W, 3) float32 whose top-left is (x0, y0) and whose
    pixels are `scale` source pixels apart (bilinear, edges clamped)."""
    h, w = img.shape[:2]
    xs = np.clip(x0 + scale * np.arange(width, dtype=np.float32), 0, w - 1.001)
    ys = np.clip(y0 + scale * np.arange(height, dtype=np.float32), 0, h - 1.001)
    xi, yi = xs.astype(np.int64), ys.astype(np.int64)
    ax, ay = (xs - xi)[None, :, None], (ys - yi)[:, None, None]
    a = img[yi][:, xi]
    b = img[yi][:, xi + 1]
    c = img[yi + 1][:, xi]
    d = img[yi + 1][:, xi + 1]
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
            self.images.append(frame.to_ndarray(format="rgb24").astype(np.float32) / 255.0)
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
            patch = src[sy : sy + size, sx : sx + size]
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


class VideoClips:
    """Windows of consecutive frames from a folder of videos, kept in a small pool that is
    refilled as it is used (reading a video once gives many samples)."""

    def __init__(self, folders: Sequence[str | os.PathLike[str]], pool: int = 64) -> None:
        self.files = _files(folders, VIDEO_EXTENSIONS)
        if not self.files:
            raise NvcError(f"no videos in {', '.join(str(f) for f in folders)}")
        self.pool_size = pool
        self.pool: list[list[Frame]] = []
        self._readers: Iterator[list[Frame]] | None = None

    def _windows(self, rng: np.random.Generator, frames: int) -> Iterator[list[Frame]]:
        while True:
            path = self.files[rng.integers(len(self.files))]
            try:
                with open_video(path) as reader:
                    window: list[Frame] = []
                    gap = int(rng.integers(0, 30))
                    for frame in reader:
                        if gap > 0:
                            gap -= 1
                            continue
                        window.append(frame)
                        if len(window) == frames:
                            yield window
                            window = []
                            gap = int(rng.integers(5, 60))
            except NvcError:
                continue

    def sample(self, rng: np.random.Generator, frames: int, crop: int) -> Tensor:
        if self._readers is None:
            self._readers = self._windows(rng, frames)
        while len(self.pool) < self.pool_size:
            self.pool.append(next(self._readers))
        window = self.pool.pop(int(rng.integers(len(self.pool))))
        if len(window) < frames:
            return self.sample(rng, frames, crop)
        out = []
        first = window[0]
        half = min(first.width, first.height) >= 4 * crop and rng.random() < 0.5
        w = first.width // (2 if half else 1)
        h = first.height // (2 if half else 1)
        if w < crop or h < crop:
            raise NvcError(f"video frames {first.width}x{first.height} are smaller than {crop}")
        x0 = int(rng.integers(0, w - crop + 1)) & ~1
        y0 = int(rng.integers(0, h - crop + 1)) & ~1
        for frame in window[:frames]:
            f = frame if frame.format == "yuv420p" else _convert(frame)
            y, u, v = (p.astype(np.float32) for p in f.planes)
            if half:
                y = _halve(y)
                u, v = _halve(u), _halve(v)
            ys = y[y0 : y0 + crop, x0 : x0 + crop]
            us = u[y0 // 2 : (y0 + crop) // 2, x0 // 2 : (x0 + crop) // 2]
            vs = v[y0 // 2 : (y0 + crop) // 2, x0 // 2 : (x0 + crop) // 2]
            out.append(_planes_to_codes(np.round(ys), np.round(us), np.round(vs)))
        return torch.stack(out)


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


class TrainingData:
    """Mixes the sources; `batch()` gives (B, frames, 96, crop / 8, crop / 8) codes."""

    def __init__(
        self,
        videos: Sequence[str] = (),
        images: Sequence[str] = (),
        synthetic: bool | None = None,
        seed: int = 0,
    ) -> None:
        self.sources: list[VideoClips | ImageAnimator | SyntheticClips] = []
        if videos:
            self.sources.append(VideoClips(videos))
        if images:
            self.sources.append(ImageAnimator(images))
        if synthetic or (synthetic is None and not self.sources):
            self.sources.append(SyntheticClips())
        if not self.sources:
            raise NvcError("no training data: give video or image folders, or --synthetic")
        self.rng = np.random.default_rng(seed)

    def describe(self) -> str:
        parts = []
        for s in self.sources:
            if isinstance(s, VideoClips):
                parts.append(f"{len(s.files)} videos")
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
            src = self.sources[int(self.rng.integers(len(self.sources)))]
            clip = src.sample(self.rng, frames, crop)
            if self.rng.random() < 0.5:  # random horizontal flip (a mirrored world)
                y, uv = fr.split_96(clip)
                clip = fr.planes_to_96(y.flip(-1), uv.flip(-1))
            out.append(clip)
        return torch.stack(out)

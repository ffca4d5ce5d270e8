"""A deterministic synthetic clip with natural-image statistics, for demos and tests.

The scene, all drawn in float RGB and then converted to the requested format:

- a background texture: fractal (fBm) value noise, seven octaves from a cell of about a
  third of the frame down to 2 pixels with amplitude falling like frequency^-0.75,
  tinted by two smooth colour fields; it tiles, so the camera may pan forever;
- a camera that pans across it with sub-pixel, slowly varying velocity;
- a soft screen-space lighting gradient that drifts over time;
- a few sprites (ellipses and rounded rectangles with anti-aliased edges, their own
  noise or stripe textures and soft drop shadows) moving along their own smooth paths;
- a faint luma grain, new every frame (as a camera sensor's).

Everything comes from one numpy Generator seeded with `seed`, so a (size, frames, seed)
triple always gives the same samples.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from nvc.errors import MediaError
from nvc.media.base import as_fps, check_size
from nvc.media.color import quantize, rgb_to_yuv
from nvc.media.formats import pixel_format
from nvc.media.frame import Frame

GRAIN = 0.8 / 255.0  # standard deviation of the per-frame luma grain


def _periodic_noise(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """Tileable value noise on a height x width canvas (multiples of `cell`), in [-1, 1]."""
    gh, gw = height // cell, width // cell
    grid = rng.uniform(-1.0, 1.0, size=(gh, gw)).astype(np.float32)

    def axis(n: int, cells: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = (np.arange(n, dtype=np.float32) + 0.5) / cell - 0.5
        i0 = np.floor(pos).astype(np.int64)
        t = pos - i0
        t = t * t * (3.0 - 2.0 * t)  # smoothstep: no grid-aligned creases
        return i0 % cells, (i0 + 1) % cells, t.astype(np.float32)

    y0, y1, ty = axis(height, gh)
    x0, x1, tx = axis(width, gw)
    rows = grid[y0] * (1.0 - ty)[:, None] + grid[y1] * ty[:, None]
    return rows[:, x0] * (1.0 - tx) + rows[:, x1] * tx


def _fbm(rng: np.random.Generator, height: int, width: int, cells: list[int]) -> np.ndarray:
    """Sum of noise octaves with amplitude proportional to cell size^0.75, normalised."""
    out = np.zeros((height, width), dtype=np.float32)
    for cell in cells:
        out += np.float32(cell**0.75) * _periodic_noise(rng, height, width, cell)
    out -= out.mean()
    out /= max(float(out.std()), 1e-6)
    return out


def _shoulder(x: np.ndarray) -> np.ndarray:
    """Compress highlights smoothly into [0, 0.97) instead of clipping them (film-like)."""
    knee = np.float32(0.8)
    room = np.float32(0.17)
    out = np.maximum(x, 0.0).astype(np.float32)
    high = out > knee
    out[high] = knee + room * np.tanh((out[high] - knee) / room)
    return out


def _shifted(texture: np.ndarray, oy: float, ox: float, height: int, width: int) -> np.ndarray:
    """A height x width window of a tiling texture at sub-pixel offset (oy, ox), bilinear."""
    iy, ix = int(np.floor(oy)), int(np.floor(ox))
    fy, fx = np.float32(oy - iy), np.float32(ox - ix)
    rows = np.arange(iy, iy + height + 1) % texture.shape[0]
    cols = np.arange(ix, ix + width + 1) % texture.shape[1]
    win = texture[rows[:, None], cols[None, :]]
    top = win[:-1, :-1] * (1 - fx) + win[:-1, 1:] * fx
    bottom = win[1:, :-1] * (1 - fx) + win[1:, 1:] * fx
    return top * (1 - fy) + bottom * fy


@dataclass
class _Sprite:
    texture: np.ndarray  # (th, tw, 3) RGB float texture, tiling
    rx: float  # half width, pixels
    ry: float  # half height, pixels
    rounded: bool  # rounded rectangle (True) or ellipse (False)
    start: tuple[float, float]  # centre (y, x) at frame 0, pixels
    velocity: tuple[float, float]  # pixels per frame
    wobble: tuple[float, float, float]  # amplitude (px), angular speed (rad/frame), phase

    def centre(self, t: int) -> tuple[float, float]:
        amp, omega, phase = self.wobble
        y = self.start[0] + self.velocity[0] * t + amp * np.sin(omega * t + phase)
        x = self.start[1] + self.velocity[1] * t + amp * np.cos(0.7 * omega * t + phase)
        return float(y), float(x)

    def coverage(self, cy: float, cx: float, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """Anti-aliased coverage in [0, 1] on the pixel grid ys x xs (pixel centres)."""
        dy = np.abs(ys[:, None] + 0.5 - cy)
        dx = np.abs(xs[None, :] + 0.5 - cx)
        if self.rounded:
            r = 0.3 * min(self.rx, self.ry)
            qy = np.maximum(dy - (self.ry - r), 0.0)
            qx = np.maximum(dx - (self.rx - r), 0.0)
            inside = np.minimum(np.maximum(dy - self.ry, dx - self.rx), 0.0)
            dist = np.sqrt(qy * qy + qx * qx) - r + inside
        else:
            k = np.sqrt((dy / self.ry) ** 2 + (dx / self.rx) ** 2)
            dist = (k - 1.0) * min(self.rx, self.ry)
        return np.clip(0.5 - dist, 0.0, 1.0).astype(np.float32)


def _make_sprite(rng: np.random.Generator, width: int, height: int, stripes: bool) -> _Sprite:
    scale = min(width, height)
    rx = float(rng.uniform(0.08, 0.2) * scale)
    ry = float(rng.uniform(0.08, 0.2) * scale)
    th = max(16, int(2 * ry + 4) // 8 * 8 + 8)
    tw = max(16, int(2 * rx + 4) // 8 * 8 + 8)
    colour = rng.uniform(0.15, 0.95, size=3).astype(np.float32)
    if stripes:
        period = float(rng.uniform(4.0, 9.0))
        angle = float(rng.uniform(0, np.pi))
        yy, xx = np.mgrid[0:th, 0:tw].astype(np.float32)
        wave = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * (2 * np.pi / period))
        lum = 0.55 + 0.35 * wave
    else:
        cells = [c for c in (16, 8, 4, 2) if th % c == 0 and tw % c == 0]
        lum = 0.55 + 0.2 * _fbm(rng, th, tw, cells)
    texture = np.maximum(lum[..., None] * colour[None, None, :] * 1.3, 0.0)
    speed = rng.uniform(0.3, 1.6) * scale / 360.0
    heading = rng.uniform(0, 2 * np.pi)
    return _Sprite(
        texture=texture.astype(np.float32),
        rx=rx,
        ry=ry,
        rounded=bool(rng.integers(0, 2)),
        start=(float(rng.uniform(0, height)), float(rng.uniform(0, width))),
        velocity=(float(speed * np.sin(heading)), float(speed * np.cos(heading))),
        wobble=(float(rng.uniform(0, 0.05 * scale)), float(rng.uniform(0.02, 0.1)), 0.0),
    )


class _Scene:
    def __init__(self, width: int, height: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.width, self.height = width, height
        top = 8
        while top * 2 <= max(8, min(width, height) // 3):
            top *= 2
        cells = [top >> i for i in range(8) if top >> i >= 2][:7]
        ch = -(-int(1.25 * height + 8) // top) * top
        cw = -(-int(1.25 * width + 8) // top) * top
        lum = 0.5 + 0.17 * _fbm(rng, ch, cw, cells)
        # colour regions with fairly crisp borders (a steep sigmoid of smooth noise)
        tint_a = 1.0 / (1.0 + np.exp(-4.0 * _fbm(rng, ch, cw, cells[:4])))
        tint_b = 1.0 / (1.0 + np.exp(-2.0 * _fbm(rng, ch, cw, cells[:3])))
        palette = rng.uniform(0.2, 0.9, size=(3, 3)).astype(np.float32)
        base = (
            palette[0] * (1 - tint_a[..., None])
            + palette[1] * tint_a[..., None] * (1 - tint_b[..., None])
            + palette[2] * tint_a[..., None] * tint_b[..., None]
        )
        self.background = np.clip(base * (0.3 + 1.4 * lum[..., None]), 0.0, 1.0).astype(np.float32)
        scale = min(width, height) / 360.0
        heading = rng.uniform(0, 2 * np.pi)
        speed = rng.uniform(0.5, 1.5) * scale
        self.pan = (float(speed * np.sin(heading)), float(speed * np.cos(heading)))
        self.pan_wobble = float(rng.uniform(2.0, 8.0) * scale)
        self.light_angle = float(rng.uniform(0, 2 * np.pi))
        count = 2 + min(3, (width * height) // 100_000)
        self.sprites = [_make_sprite(rng, width, height, stripes=(i == 1)) for i in range(count)]
        self.seed = seed
        ys = (np.arange(height, dtype=np.float32) + 0.5) / height - 0.5
        xs = (np.arange(width, dtype=np.float32) + 0.5) / width - 0.5
        self._ys, self._xs = ys, xs

    def render(self, t: int) -> np.ndarray:
        """Frame t as float32 RGB in [0, 1]."""
        h, w = self.height, self.width
        oy = self.pan[0] * t + self.pan_wobble * np.sin(0.05 * t)
        ox = self.pan[1] * t + self.pan_wobble * np.sin(0.031 * t + 1.0)
        img = _shifted(self.background, oy, ox, h, w)
        angle = self.light_angle + 0.01 * t
        light = 1.0 + 0.2 * (np.cos(angle) * self._ys[:, None] + np.sin(angle) * self._xs)
        img *= light[..., None]
        rows, cols = np.arange(h), np.arange(w)
        for sprite in self.sprites:
            cy, cx = sprite.centre(t)
            cy %= h + 2 * sprite.ry
            cx %= w + 2 * sprite.rx
            cy -= sprite.ry
            cx -= sprite.rx
            # shadow: a darker, offset copy of the shape
            self._blend(img, sprite, cy + 0.15 * sprite.ry, cx + 0.15 * sprite.rx, rows, cols)
            self._blend(img, sprite, cy, cx, rows, cols, shadow=False)
        img = _shoulder(img)
        grain = np.random.default_rng((self.seed, t)).standard_normal((h, w), dtype=np.float32)
        img += np.float32(GRAIN) * grain[..., None]
        return np.clip(img, 0.0, 1.0)

    def _blend(
        self,
        img: np.ndarray,
        sprite: _Sprite,
        cy: float,
        cx: float,
        rows: np.ndarray,
        cols: np.ndarray,
        shadow: bool = True,
    ) -> None:
        y0 = max(0, int(cy - sprite.ry - 2))
        y1 = min(self.height, int(cy + sprite.ry + 3))
        x0 = max(0, int(cx - sprite.rx - 2))
        x1 = min(self.width, int(cx + sprite.rx + 3))
        if y0 >= y1 or x0 >= x1:
            return
        alpha = sprite.coverage(cy, cx, rows[y0:y1], cols[x0:x1])[..., None]
        region = img[y0:y1, x0:x1]
        if shadow:
            region *= 1.0 - 0.45 * alpha
            return
        tex = _shifted(
            sprite.texture, y0 - (cy - sprite.ry), x0 - (cx - sprite.rx), y1 - y0, x1 - x0
        )
        region *= 1.0 - alpha
        region += alpha * tex


def iter_synthetic_clip(
    width: int,
    height: int,
    frames: int,
    *,
    fps: Fraction | float = Fraction(25),
    format: str = "yuv420p",
    seed: int = 0,
) -> Iterator[Frame]:
    """The frames of the synthetic clip one by one (see the module docstring)."""
    check_size(width, height)
    if frames < 1:
        raise MediaError(f"a clip needs at least one frame, got {frames}")
    fmt = pixel_format(format)
    rate = as_fps(fps)
    scene = _Scene(width, height, seed)
    for t in range(frames):
        rgb = scene.render(t)
        if fmt.family == "rgb":
            planes: tuple[np.ndarray, ...] = (
                quantize(rgb * np.float32(fmt.max_value), fmt.max_value, fmt.dtype),
            )
        else:
            planes = rgb_to_yuv(rgb, format)
        yield Frame(planes, format, pts=t, time_base=1 / rate)


def synthetic_clip(
    width: int,
    height: int,
    frames: int,
    *,
    fps: Fraction | float = Fraction(25),
    format: str = "yuv420p",
    seed: int = 0,
) -> list[Frame]:
    """A deterministic clip with texture at many scales, camera pan and moving objects."""
    return list(iter_synthetic_clip(width, height, frames, fps=fps, format=format, seed=seed))

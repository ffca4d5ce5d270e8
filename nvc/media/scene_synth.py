"""A procedural multi-view dynamic scene with exact ground truth, for tests and benchmarks.

Free-viewpoint codecs need calibrated multi-view video, and none can be downloaded here,
so nvc draws its own: textured objects moving in front of a textured backdrop, seen by
8-12 pinhole cameras on an arc, rendered by *ray casting* in numpy (analytic ray-sphere,
ray-box and ray-plane intersections), so the pictures are independent of any Gaussian
model fitted to them.

The world (axes as nvc.media.multiview's cameras: y points down):

- a backdrop plane at z = BACKDROP_Z and a floor plane at y = FLOOR_Y, each with its own
  procedural texture (sums of random plane waves through a soft threshold, plus thin grid
  lines on the floor), so that every view has detail at several scales;
- two spheres and an oriented box, each with a 3D procedural texture fixed to the object
  (it moves and turns with it): one sphere swings left and right while spinning about its
  vertical axis, the other circles in depth, the box turns about the vertical and bobs;
- Lambertian shading by one directional light plus ambient light: view-independent
  colour, which Gaussians with degree-0 spherical harmonics can represent exactly, and
  no shadows;
- `supersample` x `supersample` rays per pixel, averaged (anti-aliased edges).

Cameras stand on an arc of `arc_degrees` at distance `radius` from the origin, slightly
above the objects, all looking at the origin, with one horizontal field of view. The
**held-out camera** used for scoring is the middle one of the arc (index cameras // 2;
for an even count, the one just right of the middle): it lies between training views, so
scoring it measures view interpolation, as N3DV's protocol (which holds out its central
cam00) does. `train_cameras` are all the others.

Everything comes from `seed` (object colours, textures, motion phases): a
(config, seed) pair always gives the same pictures. `static=True` freezes time at 0
(every frame identical). `write_n3dv` writes the scene as an N3DV folder (lossless
camNN.mp4 + poses_bounds.npy) that nvc.media.multiview.open_scene reads back.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from nvc.errors import MediaError
from nvc.media.base import check_size
from nvc.media.frame import Frame
from nvc.media.multiview import POSES_FILE, Camera, camera_to_llff
from nvc.media.open import open_writer

BACKDROP_Z = 3.0  # the backdrop plane z = BACKDROP_Z (behind the objects)
FLOOR_Y = 1.0  # the floor plane y = FLOOR_Y (y points down: below the objects)
LIGHT = np.array([-0.35, -0.8, -0.5]) / np.linalg.norm([-0.35, -0.8, -0.5])  # towards light
AMBIENT = 0.35  # ambient share of the lighting
MISS = np.inf  # ray parameter of a ray that hits nothing


@dataclass(frozen=True)
class SceneConfig:
    """What the procedural scene looks like; every field has a small default for tests."""

    width: int = 160  # frame width of every camera
    height: int = 90  # frame height of every camera
    cameras: int = 9  # cameras on the arc (8-12 is the intended range; at least 2)
    frames: int = 10  # frames of video
    fps: int = 25  # frame rate
    seed: int = 0  # seeds textures, colours and motion phases
    static: bool = False  # True: time stands still (every frame is frame 0)
    arc_degrees: float = 60.0  # angle spanned by the camera arc, seen from the origin
    radius: float = 4.5  # distance of the cameras from the origin
    fov_degrees: float = 50.0  # horizontal field of view of every camera
    supersample: int = 2  # rays per pixel along each axis (1: one ray per pixel)
    speed: float = 1.0  # motion speed factor (1: a swing of the first sphere per 4 s)


@dataclass(frozen=True)
class _Texture:
    """A random 3D texture: two colours mixed by a sum of plane waves."""

    colour_a: np.ndarray  # (3,) colour where the wave sum is low
    colour_b: np.ndarray  # (3,) colour where the wave sum is high
    waves: np.ndarray  # (K, 3) wave vectors (direction times angular frequency)
    phases: np.ndarray  # (K,) wave phases
    weights: np.ndarray  # (K,) wave amplitudes

    @classmethod
    def random(cls, rng: np.random.Generator, low: float, high: float, k: int = 6) -> _Texture:
        dirs = rng.normal(size=(k, 3))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        freqs = np.exp(rng.uniform(np.log(low), np.log(high), size=k))
        return cls(
            rng.uniform(0.1, 0.9, size=3),
            rng.uniform(0.1, 0.9, size=3),
            dirs * freqs[:, None],
            rng.uniform(0, 2 * np.pi, size=k),
            1.0 / np.sqrt(freqs),
        )

    def __call__(self, p: np.ndarray) -> np.ndarray:
        """Colours (N, 3) at points (N, 3)."""
        s = np.sin(p @ self.waves.T + self.phases) @ self.weights
        s = s / self.weights.sum() * 3.0
        m = (0.5 + 0.5 * np.tanh(s))[:, None]
        return self.colour_a * (1.0 - m) + self.colour_b * m


def _look_at(centre: np.ndarray, target: np.ndarray) -> np.ndarray:
    """World-to-camera rotation of a camera at `centre` looking at `target`, y down."""
    z = target - centre
    z = z / np.linalg.norm(z)
    x = np.cross(np.array([0.0, 1.0, 0.0]), z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z])


def _rot_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


class ProceduralScene:
    """The scene of the module docstring for one SceneConfig."""

    def __init__(self, config: SceneConfig | None = None) -> None:
        c = config or SceneConfig()
        check_size(c.width, c.height)
        if c.cameras < 2:
            raise MediaError(f"a multi-view scene needs at least 2 cameras, got {c.cameras}")
        if c.frames < 1 or c.supersample < 1 or c.fps < 1:
            raise MediaError("frames, fps and supersample must be at least 1")
        if not 0 < c.fov_degrees < 170 or c.radius <= 1.5:
            raise MediaError("fov_degrees must be in (0, 170) and radius above 1.5")
        self.config = c
        rng = np.random.default_rng(c.seed)
        self._backdrop = _Texture.random(rng, 1.5, 12.0)
        self._floor = _Texture.random(rng, 1.0, 8.0)
        self._object_textures = [_Texture.random(rng, 3.0, 18.0) for _ in range(3)]
        self._phases = rng.uniform(0, 2 * np.pi, size=4)
        self.cameras = self._make_cameras()
        self.held_out = c.cameras // 2  # index of the camera kept out of training
        self.train_cameras = tuple(i for i in range(c.cameras) if i != self.held_out)

    def _make_cameras(self) -> tuple[Camera, ...]:
        c = self.config
        focal = 0.5 * c.width / np.tan(np.radians(c.fov_degrees) / 2)
        half = np.radians(c.arc_degrees) / 2
        cams = []
        for i, angle in enumerate(np.linspace(-half, half, c.cameras)):
            centre = np.array([c.radius * np.sin(angle), -0.6, -c.radius * np.cos(angle)])
            R = _look_at(centre, np.array([0.0, 0.1, 0.0]))
            cams.append(
                Camera(
                    f"cam{i:02d}",
                    c.width,
                    c.height,
                    focal,
                    focal,
                    c.width / 2,
                    c.height / 2,
                    R,
                    -R @ centre,
                    0.5,
                    2 * c.radius + BACKDROP_Z,
                )
            )
        return tuple(cams)

    # --- the moving objects at time `seconds` ---

    def _objects(self, seconds: float) -> list[tuple[str, np.ndarray, np.ndarray, float]]:
        """(kind, centre, rotation, size) of each object at a time: size is a sphere's
        radius or a box's half side."""
        w = 2 * np.pi * 0.25 * self.config.speed * seconds
        p = self._phases
        return [
            ("sphere", np.array([0.9 * np.sin(w + p[0]) - 0.4, 0.1, 0.2]), _rot_y(1.5 * w), 0.55),
            (
                "sphere",
                np.array(
                    [0.9 + 0.4 * np.cos(1.3 * w + p[1]), -0.35, -0.5 + 0.5 * np.sin(1.3 * w + p[1])]
                ),
                _rot_y(-w),
                0.35,
            ),
            (
                "box",
                np.array([-0.2, 0.55 + 0.1 * np.sin(2 * w + p[2]), -0.9]),
                _rot_y(0.8 * w + p[3]),
                0.3,
            ),
        ]

    def frame_time(self, frame: int) -> float:
        """Scene time in seconds of frame number `frame` (0 for a static scene)."""
        if not 0 <= frame < self.config.frames:
            raise MediaError(f"no frame {frame}: the scene has {self.config.frames}")
        return 0.0 if self.config.static else frame / self.config.fps

    # --- ray casting ---

    def ray_cast(
        self, origins: np.ndarray, dirs: np.ndarray, frame: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Colours (N, 3) in [0, 1] and ray parameters t (N,) of rays o + t d, d unit, at
        frame `frame` (t = MISS where nothing is hit; no such ray in a normal view)."""
        o = np.broadcast_to(np.asarray(origins, np.float64), np.shape(dirs)).reshape(-1, 3)
        d = np.asarray(dirs, np.float64).reshape(-1, 3)
        n = len(d)
        best = np.full(n, MISS)
        colour = np.zeros((n, 3))
        normal = np.zeros((n, 3))
        # planes: backdrop (z = BACKDROP_Z) and floor (y = FLOOR_Y)
        for axis, level, tex, face in (
            (2, BACKDROP_Z, self._backdrop, -1.0),
            (1, FLOOR_Y, self._floor, -1.0),
        ):
            with np.errstate(divide="ignore", invalid="ignore"):
                t = (level - o[:, axis]) / d[:, axis]
            hit = np.isfinite(t) & (t > 1e-6) & (t < best)
            if hit.any():
                best[hit] = t[hit]
                p = o[hit] + t[hit, None] * d[hit]
                col = tex(p)
                if axis == 1:  # thin grid lines on the floor
                    g = np.abs(((p[:, [0, 2]] * 2.0) % 1.0) - 0.5).min(axis=1)
                    col = col * (0.55 + 0.45 * np.clip(g / 0.05, 0.0, 1.0))[:, None]
                colour[hit] = col
                normal[hit] = 0.0
                normal[hit, axis] = face
        for (kind, centre, rot, size), tex in zip(
            self._objects(self.frame_time(frame)), self._object_textures, strict=True
        ):
            lo, ld = (o - centre) @ rot, d @ rot  # the ray in the object's frame
            if kind == "sphere":
                b = np.einsum("ij,ij->i", lo, ld)
                disc = b * b - (np.einsum("ij,ij->i", lo, lo) - size * size)
                with np.errstate(invalid="ignore"):
                    t = -b - np.sqrt(disc)
                hit = (disc > 0) & (t > 1e-6) & (t < best)
                local = lo[hit] + t[hit, None] * ld[hit]
                local_n = local / size
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    t1 = (-size - lo) / ld
                    t2 = (size - lo) / ld
                near_t = np.minimum(t1, t2)
                far_t = np.maximum(t1, t2).min(axis=1)
                t = near_t.max(axis=1)
                hit = (t <= far_t) & (t > 1e-6) & (t < best)
                face = near_t[hit].argmax(axis=1)
                local = lo[hit] + t[hit, None] * ld[hit]
                local_n = np.zeros_like(local)
                local_n[np.arange(len(face)), face] = np.sign(local[np.arange(len(face)), face])
            if not hit.any():
                continue
            best[hit] = t[hit]
            col = tex(local)
            if kind == "box":  # a checker on the box faces
                check = np.floor(local * (3.0 / size)).sum(axis=1) % 2
                col = col * (0.7 + 0.3 * check)[:, None]
            colour[hit] = col
            normal[hit] = local_n @ rot.T
        lit = np.where(np.any(normal != 0, axis=1), np.clip(normal @ LIGHT, 0.0, 1.0), 1.0)
        shade = AMBIENT + (1.0 - AMBIENT) * lit
        return np.clip(colour * shade[:, None], 0.0, 1.0), best

    def render(self, camera: int | Camera, frame: int) -> np.ndarray:
        """The (H, W, 3) float32 picture in [0, 1] of a camera (index or Camera) at a frame."""
        cam = self.cameras[camera] if isinstance(camera, int) else camera
        s = self.config.supersample
        offsets = (np.arange(s) + 0.5) / s
        v, u = np.mgrid[0 : cam.height, 0 : cam.width].astype(np.float64)
        total = np.zeros((cam.height * cam.width, 3))
        for dy in offsets:
            for dx in offsets:
                uv = np.stack([u + dx, v + dy], axis=-1).reshape(-1, 2)
                rgb, _ = self.ray_cast(cam.center, cam.directions(uv), frame)
                total += rgb
        return (total / (s * s)).reshape(cam.height, cam.width, 3).astype(np.float32)

    def render_uint8(self, camera: int | Camera, frame: int) -> np.ndarray:
        """render() as (H, W, 3) uint8 (rounded)."""
        return np.round(self.render(camera, frame) * 255.0).astype(np.uint8)

    def depth(self, camera: int | Camera, frame: int) -> np.ndarray:
        """(H, W) float64 camera-space depth z through each pixel centre (inf: no hit)."""
        cam = self.cameras[camera] if isinstance(camera, int) else camera
        origin, dirs = cam.rays()
        _, t = self.ray_cast(origin, dirs, frame)
        return (t * (dirs.reshape(-1, 3) @ cam.R[2])).reshape(cam.height, cam.width)

    def frame(self, camera: int, frame: int) -> Frame:
        """An rgb24 nvc Frame of a camera at a frame (pts = frame, time_base = 1 / fps)."""
        return Frame.from_ndarray(
            self.render_uint8(camera, frame),
            "rgb24",
            pts=frame,
            time_base=Fraction(1, self.config.fps),
        )


def write_n3dv(scene: ProceduralScene, root: str | os.PathLike[str]) -> Path:
    """Write the scene as an N3DV folder: lossless camNN.mp4 (libx264rgb) per camera and
    poses_bounds.npy (near/far from the first frame's depths). The folder is assembled
    beside `root` and renamed onto it at the end; `root` must not exist or be empty."""
    dest = Path(root)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise MediaError(f"{dest} exists and is not an empty folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        c = scene.config
        rows = []
        for i, cam in enumerate(scene.cameras):
            with open_writer(
                tmp / f"{cam.name}.mp4", width=c.width, height=c.height, fps=c.fps, format="rgb24"
            ) as writer:
                for f in range(c.frames):
                    writer.write(scene.frame(i, f))
            z = scene.depth(i, 0)
            z = z[np.isfinite(z)]
            row = camera_to_llff(cam)
            row[15:] = (0.9 * float(z.min()), 1.1 * float(z.max()))
            rows.append(row)
        np.save(tmp / POSES_FILE, np.array(rows))
        if dest.exists():
            dest.rmdir()
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest

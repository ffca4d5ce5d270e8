"""Multi-view scenes: a rig of calibrated pinhole cameras, each with its own video.

A free-viewpoint scene is a set of synchronized cameras; `MultiViewScene` holds their
calibration (`Camera`: intrinsics and world-to-camera extrinsics) and opens each
camera's frames with `open_video` (a video file, or a folder of PNG frames).

Conventions (every reader converts to these):

- Camera axes as in OpenCV and COLMAP: x right, y down, z forward (the viewing
  direction). Extrinsics are world-to-camera: ``x_cam = R @ x_world + t``; the camera
  centre in the world is ``-R.T @ t``.
- Pixel coordinates have their origin at the top-left corner of the image, so the centre
  of pixel (row i, column j) is at ``(u, v) = (j + 0.5, i + 0.5)`` (COLMAP's convention;
  an LLFF principal point is then exactly ``(W / 2, H / 2)``). A point projects to
  ``u = fx * x / z + cx``, ``v = fy * y / z + cy``.

Layouts read by `open_scene(folder)`:

- **N3DV / LLFF**: ``poses_bounds.npy`` (an N x 17 float array) beside the camera videos
  ``cam00.mp4``, ``cam01.mp4`` ... (or folders ``cam00/`` of PNG frames), one row per
  camera in the sorted order of their names. Each row is a 3 x 5 matrix, row-major,
  followed by the scene's near and far depth for that camera. The matrix is
  ``[c0 c1 c2 | p | hwf]``: the camera-to-world rotation whose columns are the camera's
  *down*, *right* and *backwards* axes in world coordinates (LLFF's convention), the
  camera centre p, and (image height, image width, focal length in pixels). nvc's axes
  are (right, down, forward) = (c1, c0, -c2). The focal length is given for the
  height/width in the file; videos of another size with the same aspect ratio (LLFF's
  downsampled images) have it scaled. The principal point is the image centre.
- **COLMAP**: ``sparse/0/cameras.{txt,bin}`` and ``sparse/0/images.{txt,bin}`` (text
  preferred when both exist; ``sparse/`` itself is accepted too). Each registered image
  names one camera of the rig: its name's first path component without extension
  (``cam03.png`` and ``cam03/000000.png`` are both camera ``cam03``); when several images
  name one camera, the first in name order gives its pose (a rig is fixed). A camera's
  frames are, in this order of preference: a video ``<name>.<ext>`` beside ``sparse/``
  or in ``videos/``; a folder ``<name>/`` of PNG frames beside ``sparse/`` or in
  ``images/`` or ``frames/``; else the single registered image itself (a static scene,
  one frame per camera). Camera models PINHOLE and SIMPLE_PINHOLE are read as they are.
  Models with lens distortion (SIMPLE_RADIAL, RADIAL, OPENCV, FULL_OPENCV, and the
  fisheye ones) are **refused** with a MediaError that says to undistort first
  (``colmap image_undistorter`` writes PINHOLE cameras and undistorted images), unless all
  of their distortion coefficients are exactly zero, which is pinhole; with
  ``ignore_distortion=True`` they are read as pinhole and one warning is logged on the
  "nvc.media" logger (the pictures will then be slightly off near the borders).
  `read_points3d` gives COLMAP's sparse points (points3D.txt or .bin), where present, for
  starting a fit.

All cameras of a scene must have the same frame size, frame rate and number of frames;
anything else, a folder that is not a scene, or missing or inconsistent poses is a one-line
MediaError.
"""

from __future__ import annotations

import logging
import os
import re
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from nvc.errors import MediaError
from nvc.media.base import VideoReader, check_size
from nvc.media.frame import Frame
from nvc.media.open import open_video

log = logging.getLogger("nvc.media")

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".y4m")
POSES_FILE = "poses_bounds.npy"
_CAMERA_NAME = re.compile(r"cam[_-]?\d+$", re.IGNORECASE)  # N3DV camera video stems


@dataclass(frozen=True)
class Camera:
    """One calibrated pinhole camera of a rig (see the module docstring's conventions)."""

    name: str  # the camera's name in its scene (cam00, or a COLMAP image's stem)
    width: int  # image width in pixels
    height: int  # image height in pixels
    fx: float  # focal length along x, in pixels
    fy: float  # focal length along y, in pixels
    cx: float  # principal point x, in pixels from the left image edge
    cy: float  # principal point y, in pixels from the top image edge
    R: np.ndarray  # (3, 3) float64 world-to-camera rotation
    t: np.ndarray  # (3,) float64 world-to-camera translation
    near: float | None = None  # nearest scene depth seen by the camera, when known
    far: float | None = None  # farthest scene depth seen by the camera, when known

    def __post_init__(self) -> None:
        check_size(self.width, self.height)
        R = np.asarray(self.R, dtype=np.float64)
        t = np.asarray(self.t, dtype=np.float64).reshape(-1)
        if R.shape != (3, 3) or t.shape != (3,):
            raise MediaError(f"camera {self.name}: R must be 3x3 and t 3 values")
        if not (np.all(np.isfinite(R)) and np.all(np.isfinite(t))):
            raise MediaError(f"camera {self.name}: the pose holds non-finite values")
        if np.abs(R @ R.T - np.eye(3)).max() > 1e-4 or np.linalg.det(R) < 0:
            raise MediaError(f"camera {self.name}: R is not a rotation")
        values = (self.fx, self.fy, self.cx, self.cy)
        if not all(np.isfinite(v) for v in values) or self.fx <= 0 or self.fy <= 0:
            raise MediaError(f"camera {self.name}: bad intrinsics {values}")
        object.__setattr__(self, "R", R)
        object.__setattr__(self, "t", t)
        for name in ("fx", "fy", "cx", "cy"):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    @property
    def K(self) -> np.ndarray:
        """The 3 x 3 intrinsic matrix."""
        return np.array(
            [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]], np.float64
        )

    @property
    def viewmat(self) -> np.ndarray:
        """The 4 x 4 world-to-camera matrix [R t; 0 1]."""
        out = np.eye(4)
        out[:3, :3] = self.R
        out[:3, 3] = self.t
        return out

    @property
    def center(self) -> np.ndarray:
        """The camera centre in world coordinates."""
        return -self.R.T @ self.t

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (N, 2) as (u, v) and depths z (N,) of world points (N, 3)."""
        cam = np.asarray(points, np.float64) @ self.R.T + self.t
        z = cam[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = self.fx * cam[:, 0] / z + self.cx
            v = self.fy * cam[:, 1] / z + self.cy
        return np.stack([u, v], axis=1), z

    def directions(self, uv: np.ndarray) -> np.ndarray:
        """Unit world-space directions (..., 3) of the rays through pixel positions (..., 2)."""
        uv = np.asarray(uv, np.float64)
        x = (uv[..., 0] - self.cx) / self.fx
        y = (uv[..., 1] - self.cy) / self.fy
        d = np.stack([x, y, np.ones_like(x)], axis=-1) @ self.R  # R.T applied to each row
        return d / np.linalg.norm(d, axis=-1, keepdims=True)

    def rays(self) -> tuple[np.ndarray, np.ndarray]:
        """World-space origin (3,) and unit directions (H, W, 3) through the pixel centres."""
        v, u = np.mgrid[0 : self.height, 0 : self.width].astype(np.float64) + 0.5
        return self.center, self.directions(np.stack([u, v], axis=-1))

    def to_json(self) -> dict[str, Any]:
        """The camera as JSON-ready values (floats round-trip exactly through JSON)."""
        return {
            "name": self.name,
            "width": self.width,
            "height": self.height,
            "fx": self.fx,
            "fy": self.fy,
            "cx": self.cx,
            "cy": self.cy,
            "R": [float(v) for v in self.R.reshape(-1)],
            "t": [float(v) for v in self.t],
            "near": self.near,
            "far": self.far,
        }

    @classmethod
    def from_json(cls, data: object) -> Camera:
        """A camera from to_json's values; MediaError when they do not describe one."""
        try:
            if not isinstance(data, dict):
                raise TypeError
            near, far = data.get("near"), data.get("far")
            return cls(
                str(data["name"]),
                int(data["width"]),
                int(data["height"]),
                float(data["fx"]),
                float(data["fy"]),
                float(data["cx"]),
                float(data["cy"]),
                np.array(data["R"], np.float64).reshape(3, 3),
                np.array(data["t"], np.float64),
                None if near is None else float(near),
                None if far is None else float(far),
            )
        except (KeyError, TypeError, ValueError):
            raise MediaError("bad camera description in the stream") from None

    def scaled(self, width: int, height: int) -> Camera:
        """This camera's intrinsics for images resized to width x height."""
        sx, sy = width / self.width, height / self.height
        return Camera(
            self.name,
            width,
            height,
            self.fx * sx,
            self.fy * sy,
            self.cx * sx,
            self.cy * sy,
            self.R,
            self.t,
            self.near,
            self.far,
        )


@dataclass
class MultiViewScene:
    """A calibrated rig and the source of each camera's frames (all one size and length)."""

    root: Path  # the scene folder
    layout: str  # "n3dv" or "colmap": how the folder was read
    cameras: tuple[Camera, ...]  # the rig, in the scene's camera order
    sources: tuple[Path, ...]  # per camera: its video file, PNG folder or single image
    width: int  # frame width shared by every camera
    height: int  # frame height shared by every camera
    fps: Fraction  # frame rate shared by every camera
    frame_count: int  # number of frames of every camera
    extras: dict[str, object] = field(default_factory=dict)  # layout-specific details

    def __len__(self) -> int:
        return len(self.cameras)

    def open_camera(self, index: int) -> VideoReader:
        """A reader of camera `index`'s frames (the caller closes it)."""
        if not 0 <= index < len(self.cameras):
            raise MediaError(f"no camera {index}: the scene has {len(self.cameras)}")
        return open_video(self.sources[index], fps=self.fps)

    def frames(self, cameras: Sequence[int] | None = None) -> Iterator[tuple[Frame, ...]]:
        """The frames of the chosen cameras (default all), one tuple per time step."""
        chosen = list(range(len(self.cameras))) if cameras is None else list(cameras)
        readers = [self.open_camera(i) for i in chosen]
        try:
            for _ in range(self.frame_count):
                step = []
                for i, reader in zip(chosen, readers, strict=True):
                    frame = next(reader, None)
                    if frame is None:
                        raise MediaError(
                            f"{self.sources[i]} ended before {self.frame_count} frames"
                        )
                    step.append(frame)
                yield tuple(step)
        finally:
            for reader in readers:
                reader.close()


def open_scene(path: str | os.PathLike[str], *, ignore_distortion: bool = False) -> MultiViewScene:
    """Read a multi-view scene folder (N3DV/LLFF or COLMAP; see the module docstring)."""
    root = Path(path)
    if not root.is_dir():
        raise MediaError(f"{root} is not a folder (a multi-view scene is a folder)")
    if (root / POSES_FILE).is_file():
        return read_n3dv(root)
    if _colmap_dir(root) is not None:
        return read_colmap(root, ignore_distortion=ignore_distortion)
    raise MediaError(
        f"{root} is not a multi-view scene: it has neither {POSES_FILE} (N3DV/LLFF) "
        "nor sparse/0/cameras and images (COLMAP)"
    )


def is_scene(path: str | os.PathLike[str]) -> bool:
    """True when `path` is a folder laid out as a scene open_scene reads."""
    p = Path(path)
    return p.is_dir() and ((p / POSES_FILE).is_file() or _colmap_dir(p) is not None)


# --- N3DV / LLFF ---------------------------------------------------------------------


def llff_to_camera(row: np.ndarray, name: str) -> Camera:
    """A Camera from one 17-value poses_bounds row (see the module docstring)."""
    row = np.asarray(row, np.float64)
    m = row[:15].reshape(3, 5)
    down, right, back, centre = m[:, 0], m[:, 1], m[:, 2], m[:, 3]
    height, width, focal = m[:, 4]
    c2w = np.stack([right, down, -back], axis=1)  # columns: nvc's x, y, z axes in the world
    R = c2w.T
    h, w = round(float(height)), round(float(width))
    if abs(h - height) > 1e-3 or abs(w - width) > 1e-3 or h <= 0 or w <= 0:
        raise MediaError(f"{POSES_FILE}: camera {name} has a bad image size {width}x{height}")
    return Camera(
        name,
        w,
        h,
        float(focal),
        float(focal),
        w / 2,
        h / 2,
        R,
        -R @ centre,
        float(row[15]),
        float(row[16]),
    )


def camera_to_llff(camera: Camera) -> np.ndarray:
    """The 17-value poses_bounds row of a camera (fx == fy, principal point at the centre)."""
    if abs(camera.fx - camera.fy) > 1e-9 * camera.fx:
        raise MediaError(f"camera {camera.name}: LLFF poses need fx == fy")
    if abs(camera.cx - camera.width / 2) > 1e-6 or abs(camera.cy - camera.height / 2) > 1e-6:
        raise MediaError(f"camera {camera.name}: LLFF poses need the principal point centred")
    c2w = camera.R.T
    m = np.zeros((3, 5))
    m[:, 0], m[:, 1], m[:, 2] = c2w[:, 1], c2w[:, 0], -c2w[:, 2]
    m[:, 3] = camera.center
    m[:, 4] = (camera.height, camera.width, camera.fx)
    near = camera.near if camera.near is not None else 0.0
    far = camera.far if camera.far is not None else 0.0
    return np.concatenate([m.reshape(-1), [near, far]])


def _n3dv_sources(root: Path) -> list[Path]:
    """Camera videos (camNN.ext) or PNG folders (camNN/) of an N3DV folder, in name order."""
    found: dict[str, Path] = {}
    for p in root.iterdir():
        if p.name.startswith("."):
            continue
        if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS and _CAMERA_NAME.match(p.stem):
            found.setdefault(p.stem, p)
        elif p.is_dir() and _CAMERA_NAME.match(p.name) and any(p.glob("*.png")):
            found.setdefault(p.name, p)
    return [found[k] for k in sorted(found, key=_camera_key)]


def _camera_key(name: str) -> tuple[str, int]:
    m = re.match(r"(.*?)(\d+)$", name)
    return (m.group(1), int(m.group(2))) if m else (name, -1)


def read_n3dv(root: str | os.PathLike[str]) -> MultiViewScene:
    """An N3DV / LLFF folder: poses_bounds.npy and camNN videos (see the module docstring)."""
    root = Path(root)
    poses_path = root / POSES_FILE
    try:
        poses = np.load(poses_path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise MediaError(f"cannot read {poses_path}: {' '.join(str(e).split())}") from None
    if poses.ndim != 2 or poses.shape[1] != 17 or poses.dtype.kind != "f":
        raise MediaError(
            f"{poses_path}: expected an N x 17 float array (LLFF poses), got "
            f"{poses.dtype} {poses.shape}"
        )
    if not np.all(np.isfinite(poses)):
        raise MediaError(f"{poses_path} holds non-finite values")
    sources = _n3dv_sources(root)
    if not sources:
        raise MediaError(f"{root} has {POSES_FILE} but no camera videos (cam00.mp4, ...)")
    if len(sources) != len(poses):
        raise MediaError(
            f"{poses_path} has poses for {len(poses)} cameras but {root} has "
            f"{len(sources)} camera videos"
        )
    names = [p.stem if p.is_file() else p.name for p in sources]
    cameras = [llff_to_camera(row, name) for row, name in zip(poses, names, strict=True)]
    return _assemble(root, "n3dv", cameras, sources)


# --- COLMAP --------------------------------------------------------------------------

# model id -> (name, number of parameters, number of leading pinhole parameters)
COLMAP_MODELS: dict[int, tuple[str, int]] = {
    0: ("SIMPLE_PINHOLE", 3),
    1: ("PINHOLE", 4),
    2: ("SIMPLE_RADIAL", 4),
    3: ("RADIAL", 5),
    4: ("OPENCV", 8),
    5: ("OPENCV_FISHEYE", 8),
    6: ("FULL_OPENCV", 12),
    7: ("FOV", 5),
    8: ("SIMPLE_RADIAL_FISHEYE", 4),
    9: ("RADIAL_FISHEYE", 5),
    10: ("THIN_PRISM_FISHEYE", 12),
}
_MODEL_IDS = {name: (i, n) for i, (name, n) in COLMAP_MODELS.items()}
_ONE_FOCAL = {
    "SIMPLE_PINHOLE",
    "SIMPLE_RADIAL",
    "RADIAL",
    "SIMPLE_RADIAL_FISHEYE",
    "RADIAL_FISHEYE",
}  # models with a single f, then cx, cy


@dataclass(frozen=True)
class ColmapCamera:
    """One line of cameras.txt (or record of cameras.bin)."""

    camera_id: int  # COLMAP's camera id
    model: str  # COLMAP's model name
    width: int  # image width
    height: int  # image height
    params: tuple[float, ...]  # the model's parameters in COLMAP's order


@dataclass(frozen=True)
class ColmapImage:
    """One registered image of images.txt (or record of images.bin)."""

    image_id: int  # COLMAP's image id
    qvec: tuple[float, float, float, float]  # world-to-camera rotation, (w, x, y, z)
    tvec: tuple[float, float, float]  # world-to-camera translation
    camera_id: int  # the ColmapCamera it was taken with
    name: str  # the image's path relative to COLMAP's image folder


def quat_to_rotation(q: Sequence[float] | np.ndarray) -> np.ndarray:
    """Rotation matrix of a (w, x, y, z) quaternion (Hamilton; normalised first)."""
    w, x, y, z = np.asarray(q, np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def rotation_to_quat(R: np.ndarray) -> tuple[float, float, float, float]:
    """The (w, x, y, z) unit quaternion with w >= 0 of a rotation matrix."""
    m = np.asarray(R, np.float64)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [s / 4, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + m[i, i] - m[j, j] - m[k, k])
        q = [0.0] * 4
        q[0] = (m[k, j] - m[j, k]) / s
        q[1 + i] = s / 4
        q[1 + j] = (m[j, i] + m[i, j]) / s
        q[1 + k] = (m[k, i] + m[i, k]) / s
    out = np.array(q) / np.linalg.norm(q)
    if out[0] < 0:
        out = -out
    return (float(out[0]), float(out[1]), float(out[2]), float(out[3]))


def _colmap_dir(root: Path) -> Path | None:
    for d in (root / "sparse" / "0", root / "sparse"):
        has_cameras = (d / "cameras.txt").is_file() or (d / "cameras.bin").is_file()
        has_images = (d / "images.txt").is_file() or (d / "images.bin").is_file()
        if has_cameras and has_images:
            return d
    return None


def _data_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise MediaError(f"cannot read {path}: {' '.join(str(e).split())}") from None
    return [line.strip() for line in text.splitlines() if not line.lstrip().startswith("#")]


def read_cameras_text(path: Path) -> dict[int, ColmapCamera]:
    """cameras.txt: `CAMERA_ID MODEL WIDTH HEIGHT PARAMS...` per line."""
    out: dict[int, ColmapCamera] = {}
    for n, line in enumerate(_data_lines(path), 1):
        if not line:
            continue
        f = line.split()
        try:
            cam_id, model, width, height = int(f[0]), f[1], int(f[2]), int(f[3])
            params = tuple(float(v) for v in f[4:])
        except (ValueError, IndexError):
            raise MediaError(f"{path}: line {n} is not a camera: {line[:60]!r}") from None
        if model not in _MODEL_IDS:
            raise MediaError(f"{path}: unknown camera model {model!r}")
        if len(params) != _MODEL_IDS[model][1]:
            raise MediaError(
                f"{path}: camera {cam_id} ({model}) has {len(params)} parameters, expected "
                f"{_MODEL_IDS[model][1]}"
            )
        out[cam_id] = ColmapCamera(cam_id, model, width, height, params)
    return out


def read_images_text(path: Path) -> dict[int, ColmapImage]:
    """images.txt: two lines per image, `IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME` and
    its 2D points (not read)."""
    lines = _data_lines(path)
    out: dict[int, ColmapImage] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line:  # an empty points line, or a blank line
            i += 1
            continue
        f = line.split(maxsplit=9)
        try:
            image_id = int(f[0])
            q = (float(f[1]), float(f[2]), float(f[3]), float(f[4]))
            tv = (float(f[5]), float(f[6]), float(f[7]))
            camera_id, name = int(f[8]), f[9]
        except (ValueError, IndexError):
            raise MediaError(f"{path}: {line[:60]!r} is not an image line") from None
        out[image_id] = ColmapImage(image_id, q, tv, camera_id, name)
        i += 2  # the points line follows (possibly empty)
    return out


class _Bytes:
    def __init__(self, path: Path) -> None:
        try:
            self.data = path.read_bytes()
        except OSError as e:
            raise MediaError(f"cannot read {path}: {' '.join(str(e).split())}") from None
        self.path = path
        self.pos = 0

    def take(self, fmt: str) -> tuple[Any, ...]:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise MediaError(f"{self.path} is truncated (at byte {self.pos})")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values

    def cstring(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise MediaError(f"{self.path} is truncated (an image name has no end)")
        raw, self.pos = self.data[self.pos : end], end + 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise MediaError(f"{self.path}: an image name is not UTF-8") from None


def _count(reader: _Bytes, record_min: int) -> int:
    (n,) = reader.take("<Q")
    count = int(n)
    if count * record_min > len(reader.data):
        raise MediaError(f"{reader.path} claims {count} records but is too short for them")
    return count


def read_cameras_binary(path: Path) -> dict[int, ColmapCamera]:
    """cameras.bin: uint64 count, then per camera int32 id, int32 model, uint64 width and
    height, float64 parameters (as many as the model has); little-endian."""
    r = _Bytes(path)
    out: dict[int, ColmapCamera] = {}
    for _ in range(_count(r, 24)):
        cam_id, model_id, width, height = r.take("<iiQQ")
        if model_id not in COLMAP_MODELS:
            raise MediaError(f"{path}: unknown camera model id {model_id}")
        model, n = COLMAP_MODELS[int(model_id)]
        params = tuple(float(v) for v in r.take(f"<{n}d"))
        out[int(cam_id)] = ColmapCamera(int(cam_id), model, int(width), int(height), params)
    return out


def read_images_binary(path: Path) -> dict[int, ColmapImage]:
    """images.bin: uint64 count, then per image int32 id, 4 float64 qvec, 3 float64 tvec,
    int32 camera id, a NUL-terminated name, uint64 point count and that many
    (float64 x, float64 y, int64 point id) records (skipped); little-endian."""
    r = _Bytes(path)
    out: dict[int, ColmapImage] = {}
    for _ in range(_count(r, 64)):
        image_id, qw, qx, qy, qz, tx, ty, tz, camera_id = r.take("<i7di")
        name = r.cstring()
        (points,) = r.take("<Q")
        skip = int(points) * 24
        if r.pos + skip > len(r.data):
            raise MediaError(f"{path} is truncated (in the points of image {name})")
        r.pos += skip
        q = (float(qw), float(qx), float(qy), float(qz))
        tv = (float(tx), float(ty), float(tz))
        out[int(image_id)] = ColmapImage(int(image_id), q, tv, int(camera_id), name)
    return out


def write_colmap_text(directory: Path, cameras: Sequence[Camera]) -> None:
    """cameras.txt and images.txt (PINHOLE, one camera and image per rig camera, image
    names `<camera name>.png`) for `cameras` in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    cam_lines = ["# Camera list with one line of data per camera:"]
    img_lines = ["# Image list with two lines of data per image:"]
    for i, c in enumerate(cameras, 1):
        values = " ".join(repr(float(v)) for v in (c.fx, c.fy, c.cx, c.cy))
        cam_lines.append(f"{i} PINHOLE {c.width} {c.height} {values}")
        q = rotation_to_quat(c.R)
        values = " ".join(repr(float(v)) for v in (*q, *c.t))
        img_lines += [f"{i} {values} {i} {c.name}.png", ""]
    (directory / "cameras.txt").write_text("\n".join(cam_lines) + "\n")
    (directory / "images.txt").write_text("\n".join(img_lines) + "\n")


def write_colmap_binary(directory: Path, cameras: Sequence[Camera]) -> None:
    """cameras.bin and images.bin, as write_colmap_text writes them in text."""
    directory.mkdir(parents=True, exist_ok=True)
    cam = bytearray(struct.pack("<Q", len(cameras)))
    img = bytearray(struct.pack("<Q", len(cameras)))
    for i, c in enumerate(cameras, 1):
        cam += struct.pack("<iiQQ4d", i, 1, c.width, c.height, c.fx, c.fy, c.cx, c.cy)
        img += struct.pack("<i7di", i, *rotation_to_quat(c.R), *c.t, i)
        img += f"{c.name}.png".encode() + b"\0" + struct.pack("<Q", 0)
    (directory / "cameras.bin").write_bytes(bytes(cam))
    (directory / "images.bin").write_bytes(bytes(img))


def _pinhole(cam: ColmapCamera, where: Path, ignore_distortion: bool) -> tuple[float, ...]:
    """(fx, fy, cx, cy) of a COLMAP camera, refusing lens distortion (module docstring)."""
    p = cam.params
    if cam.model in _ONE_FOCAL:
        fx = fy = p[0]
        cx, cy, rest = p[1], p[2], p[3:]
    else:
        fx, fy, cx, cy, rest = p[0], p[1], p[2], p[3], p[4:]
    if any(v != 0.0 for v in rest):
        if not ignore_distortion:
            raise MediaError(
                f"{where}: camera {cam.camera_id} uses the {cam.model} model with lens "
                "distortion; undistort the images first (colmap image_undistorter writes "
                "PINHOLE cameras), or pass ignore_distortion=True"
            )
        log.warning(
            "%s: camera %d's %s distortion is ignored (read as pinhole)",
            where,
            cam.camera_id,
            cam.model,
        )
    return fx, fy, cx, cy


def _colmap_source(root: Path, name: str, image_name: str) -> Path | None:
    for folder in (root, root / "videos"):
        for ext in VIDEO_EXTENSIONS:
            if (folder / f"{name}{ext}").is_file():
                return folder / f"{name}{ext}"
    for folder in (root, root / "images", root / "frames"):
        if (folder / name).is_dir() and any((folder / name).glob("*.png")):
            return folder / name
    image = root / "images" / image_name
    return image if image.is_file() else None


def read_points3d(scene: MultiViewScene) -> tuple[np.ndarray, np.ndarray] | None:
    """A COLMAP scene's sparse points: positions (N, 3) float64 and colours (N, 3) uint8
    from points3D.txt (`POINT3D_ID X Y Z R G B ERROR TRACK...` per line) or points3D.bin
    (uint64 count; per point uint64 id, 3 float64, 3 uint8, float64 error, uint64 track
    length and that many (int32 image id, int32 point index)); None when there are none
    (N3DV folders have none)."""
    sparse = _colmap_dir(scene.root) if scene.layout == "colmap" else None
    if sparse is None:
        return None
    xyz: list[tuple[float, float, float]] = []
    rgb: list[tuple[int, int, int]] = []
    if (sparse / "points3D.txt").is_file():
        for n, line in enumerate(_data_lines(sparse / "points3D.txt"), 1):
            if not line:
                continue
            f = line.split()
            try:
                xyz.append((float(f[1]), float(f[2]), float(f[3])))
                rgb.append((int(f[4]), int(f[5]), int(f[6])))
            except (ValueError, IndexError):
                raise MediaError(f"{sparse / 'points3D.txt'}: line {n} is not a point") from None
    elif (sparse / "points3D.bin").is_file():
        r = _Bytes(sparse / "points3D.bin")
        for _ in range(_count(r, 51)):
            values = r.take("<Q3d3BdQ")
            xyz.append((values[1], values[2], values[3]))
            rgb.append((values[4], values[5], values[6]))
            skip = int(values[8]) * 8
            if r.pos + skip > len(r.data):
                raise MediaError(f"{r.path} is truncated (in a point's track)")
            r.pos += skip
    if not xyz:
        return None
    points = np.array(xyz, np.float64)
    if not np.all(np.isfinite(points)) or any(not 0 <= v <= 255 for c in rgb for v in c):
        raise MediaError(f"{sparse}: the 3D points hold bad values")
    return points, np.array(rgb, np.uint8)


def write_points3d_text(directory: Path, points: np.ndarray, colours: np.ndarray) -> None:
    """points3D.txt for `points` (N, 3) and uint8 `colours` (N, 3), with empty tracks."""
    lines = ["# 3D point list with one line of data per point:"]
    for i, (p, c) in enumerate(zip(points, colours, strict=True), 1):
        xyz = " ".join(repr(float(v)) for v in p)
        lines.append(f"{i} {xyz} {int(c[0])} {int(c[1])} {int(c[2])} 0.5")
    (directory / "points3D.txt").write_text("\n".join(lines) + "\n")


def write_points3d_binary(directory: Path, points: np.ndarray, colours: np.ndarray) -> None:
    """points3D.bin as write_points3d_text writes it in text (each with a 1-long track)."""
    out = bytearray(struct.pack("<Q", len(points)))
    for i, (p, c) in enumerate(zip(points, colours, strict=True), 1):
        out += struct.pack("<Q3d3BdQ", i, *map(float, p), *map(int, c), 0.5, 1)
        out += struct.pack("<ii", 1, 0)
    (directory / "points3D.bin").write_bytes(bytes(out))


def read_colmap(root: str | os.PathLike[str], *, ignore_distortion: bool = False) -> MultiViewScene:
    """A COLMAP folder (sparse/0 text or binary; see the module docstring)."""
    root = Path(root)
    sparse = _colmap_dir(root)
    if sparse is None:
        raise MediaError(f"{root} has no sparse/0 with cameras and images (COLMAP)")
    if (sparse / "cameras.txt").is_file():
        colmap_cameras = read_cameras_text(sparse / "cameras.txt")
    else:
        colmap_cameras = read_cameras_binary(sparse / "cameras.bin")
    if (sparse / "images.txt").is_file():
        images = read_images_text(sparse / "images.txt")
    else:
        images = read_images_binary(sparse / "images.bin")
    if not images:
        raise MediaError(f"{sparse} registers no images: there are no poses")
    by_camera: dict[str, ColmapImage] = {}
    for image in sorted(images.values(), key=lambda im: im.name):
        first = Path(image.name).parts[0]
        by_camera.setdefault(Path(first).stem if len(Path(image.name).parts) == 1 else first, image)
    cameras: list[Camera] = []
    sources: list[Path] = []
    for name in sorted(by_camera, key=_camera_key):
        image = by_camera[name]
        cam = colmap_cameras.get(image.camera_id)
        if cam is None:
            raise MediaError(
                f"{sparse}: image {image.name} names camera {image.camera_id}, "
                "which the cameras file lacks"
            )
        fx, fy, cx, cy = _pinhole(cam, sparse, ignore_distortion)
        q = np.asarray(image.qvec)
        if not np.all(np.isfinite(q)) or np.linalg.norm(q) < 1e-9:
            raise MediaError(f"{sparse}: image {image.name} has a bad rotation {image.qvec}")
        cameras.append(
            Camera(
                name,
                cam.width,
                cam.height,
                fx,
                fy,
                cx,
                cy,
                quat_to_rotation(q),
                np.asarray(image.tvec),
            )
        )
        source = _colmap_source(root, name, image.name)
        if source is None:
            raise MediaError(
                f"{root}: no frames for camera {name} (looked for {name}.mp4, a {name}/ "
                f"folder of PNGs, and images/{image.name})"
            )
        sources.append(source)
    return _assemble(root, "colmap", cameras, sources)


# --- checks shared by the layouts ----------------------------------------------------


def _frame_count(reader: VideoReader) -> int:
    if reader.frame_count is not None:
        return reader.frame_count
    return sum(1 for _ in reader)  # the container does not say: count by decoding


def _assemble(
    root: Path, layout: str, cameras: list[Camera], sources: list[Path]
) -> MultiViewScene:
    """Open every camera's frames once and check that the rig is consistent."""
    first: tuple[int, int, Fraction, int] | None = None
    checked: list[Camera] = []
    for cam, source in zip(cameras, sources, strict=True):
        with open_video(source) as reader:
            size = (reader.width, reader.height)
            info = (reader.width, reader.height, reader.fps, _frame_count(reader))
        if size != (cam.width, cam.height):
            slack = max(cam.width, cam.height)  # one pixel of rounding either way
            if abs(size[0] * cam.height - size[1] * cam.width) > slack:
                raise MediaError(
                    f"{source.name} is {size[0]}x{size[1]} but its pose is for "
                    f"{cam.width}x{cam.height}: the poses do not fit the videos"
                )
            cam = cam.scaled(*size)
        if first is None:
            first = info
            first_name = source.name
        elif info[:2] != first[:2]:
            raise MediaError(
                f"{source.name} is {info[0]}x{info[1]} but {first_name} is "
                f"{first[0]}x{first[1]}: all cameras must have one size"
            )
        elif info[2] != first[2]:
            raise MediaError(
                f"{source.name} runs at {info[2]} fps but {first_name} at "
                f"{first[2]}: all cameras must have one frame rate"
            )
        elif info[3] != first[3]:
            raise MediaError(
                f"{source.name} has {info[3]} frames but {first_name} has "
                f"{first[3]}: all cameras must have as many frames"
            )
        checked.append(cam)
    names = [c.name for c in checked]
    if len(set(names)) != len(names):
        raise MediaError(f"{root}: two cameras share a name")
    if first is None:
        raise MediaError(f"{root} has no cameras")
    centres = np.array([c.center for c in checked])
    if len(checked) > 1 and np.ptp(centres, axis=0).max() <= 1e-9:
        raise MediaError(f"{root}: every camera is at the same place: inconsistent poses")
    return MultiViewScene(
        root, layout, tuple(checked), tuple(sources), first[0], first[1], first[2], first[3]
    )

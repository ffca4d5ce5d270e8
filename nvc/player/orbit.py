"""Orbit-camera maths for the `--view` page of free-viewpoint streams (numpy only).

A person orbits the scene around the rig's centre: a pose is a yaw and a pitch (degrees)
and a distance from the centre (a multiple of the default camera's distance), and the
camera at a pose looks at the centre with the rig's up direction (`OrbitRig.camera`).

The orbit frame (`OrbitRig.of(rig, default)`):

- centre: the point nearest to every camera's optical axis in the least-squares sense
  (for cameras that all look at one point, that point). When the axes are close to
  parallel (a forward-facing rig) or the point would lie behind a camera, the centre is
  instead the mean camera centre moved along the mean viewing direction by a focus depth:
  with near/far bounds, the depth of the LLFF / NeRF spiral path's focus,
  1 / ((1 - 0.75) / near + 0.75 / far) (Mildenhall et al., 2019 and 2020); without them,
  the rig's spread (at least 1);
- up: the normal of the plane the cameras' right axes (R[0]) lie in, on the side of
  their mean up direction (nvc cameras have y pointing down, so a camera's up is -R[1]):
  for cameras without roll on an arc or a ring, however they tilt, that is the world's
  vertical. When all right axes are one (a forward-facing rig), the mean up direction
  made perpendicular to it;
- yaw 0 and pitch 0 is the direction from the centre to the default camera, flattened
  onto the plane perpendicular to up; yaw turns about up (positive: towards up x base,
  the direction `side`), pitch tilts towards up.

A camera at yaw y, pitch p and distance d stands at
``centre + d r0 (cos p (cos y base + sin y side) + sin p up)`` (r0: the default camera's
distance from the centre) and keeps the default camera's intrinsics, scaled to at most
`max_pixels` (`view_size`). Pitch is limited to +-PITCH_LIMIT degrees (the look-at is
undefined straight above or below the centre), distance to DISTANCE_RANGE.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nvc.errors import MediaError
from nvc.media.multiview import Camera

PITCH_LIMIT = 80.0  # degrees: largest |pitch| of an orbit pose
DISTANCE_RANGE = (0.2, 5.0)  # smallest and largest distance, in default-camera distances
MAX_VIEW_PIXELS = 640 * 360  # largest picture an orbit view renders, pixels
FOCUS_BLEND = 0.75  # LLFF spiral focus depth: weight of 1/far against 1/near
PARALLEL = 1e-3  # smallest eigenvalue share of the axis system treated as converging


@dataclass(frozen=True)
class OrbitPose:
    """Where the orbit camera is, around the rig's centre."""

    yaw: float  # degrees about the up axis from the default camera's direction
    pitch: float  # degrees above (positive) or below the horizontal plane
    distance: float  # distance from the centre, in default-camera distances


def _unit(v: np.ndarray) -> np.ndarray | None:
    n = float(np.linalg.norm(v))
    return None if n < 1e-9 or not math.isfinite(n) else v / n


def perpendicular(v: np.ndarray) -> np.ndarray:
    """A unit vector perpendicular to the unit vector v."""
    helper = np.eye(3)[int(np.argmin(np.abs(v)))]  # the axis least along v
    w = np.cross(v, helper)
    return w / np.linalg.norm(w)


def forward_of(camera: Camera) -> np.ndarray:
    """The world direction a camera looks along (its z axis)."""
    return np.asarray(camera.R[2], np.float64)


def up_of(camera: Camera) -> np.ndarray:
    """The world direction a camera's picture has at its top (minus its y axis)."""
    return -np.asarray(camera.R[1], np.float64)


def rig_centre(rig: Sequence[Camera]) -> np.ndarray:
    """The point the rig looks at (see the module docstring)."""
    centres = np.array([c.center for c in rig])
    dirs = np.array([forward_of(c) for c in rig])
    if len(rig) >= 2:
        A = np.zeros((3, 3))
        b = np.zeros(3)
        for c, d in zip(centres, dirs, strict=True):
            P = np.eye(3) - np.outer(d, d)  # removes the component along the axis
            A += P
            b += P @ c
        eig = np.linalg.eigvalsh(A)
        if eig[0] > PARALLEL * eig[-1]:
            point = np.linalg.solve(A, b)
            if all(float((point - c) @ d) > 0 for c, d in zip(centres, dirs, strict=True)):
                return point
    mean_dir = _unit(dirs.mean(axis=0))
    if mean_dir is None:
        mean_dir = dirs[0]
    return centres.mean(axis=0) + focus_depth(rig) * mean_dir


def focus_depth(rig: Sequence[Camera]) -> float:
    """How far in front of a forward-facing rig its centre is (module docstring)."""
    bounds = [(c.near, c.far) for c in rig if c.near is not None and c.far is not None]
    bounds = [(n, f) for n, f in bounds if 0 < n < f and math.isfinite(f)]
    if bounds:
        near = float(np.mean([n for n, _ in bounds]))
        far = float(np.mean([f for _, f in bounds]))
        return 1.0 / ((1.0 - FOCUS_BLEND) / near + FOCUS_BLEND / far)
    centres = np.array([c.center for c in rig])
    spread = float(np.linalg.norm(centres - centres.mean(axis=0), axis=1).max())
    return max(1.0, 2.0 * spread)


def rig_up(rig: Sequence[Camera], default: int) -> np.ndarray:
    """The rig's up direction (see the module docstring)."""
    mean_up = _unit(np.array([up_of(c) for c in rig]).mean(axis=0))
    if mean_up is None:
        mean_up = up_of(rig[default])
    rights = np.array([c.R[0] for c in rig], np.float64)
    eig, vectors = np.linalg.eigh(rights.T @ rights)
    if eig[1] > PARALLEL * eig[2]:  # the right axes span a plane: up is its normal
        up = vectors[:, 0]
        return up if float(up @ mean_up) >= 0 else -up
    # one right axis for all (a forward-facing rig): the mean up, made square to it
    right = _unit(rights.mean(axis=0))
    if right is None:
        return mean_up
    square = _unit(mean_up - (mean_up @ right) * right)
    return square if square is not None else mean_up


def view_size(camera: Camera, max_pixels: int = MAX_VIEW_PIXELS) -> tuple[int, int]:
    """The camera's picture size shrunk (aspect kept) to at most max_pixels, even sides."""
    if max_pixels < 4:
        raise MediaError("an orbit view needs at least 4 pixels")
    w, h = camera.width, camera.height
    if w * h > max_pixels:
        s = math.sqrt(max_pixels / (w * h))
        w, h = max(1, int(w * s)), max(1, int(h * s))
    return max(2, w & ~1), max(2, h & ~1)


def look_at(
    name: str,
    base: Camera,
    position: np.ndarray,
    target: np.ndarray,
    up: np.ndarray,
    size: tuple[int, int],
) -> Camera:
    """A camera with base's intrinsics (scaled to `size`) at `position` looking at
    `target`, its picture's top towards `up` (as far as it is not along the view)."""
    forward = _unit(target - position)
    if forward is None:
        raise MediaError("the orbit camera stands on the point it looks at")
    right = _unit(np.cross(forward, up))
    if right is None:  # looking straight along up: any right angle will do
        right = perpendicular(forward)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])
    scaled = base.scaled(*size)
    return Camera(
        name,
        size[0],
        size[1],
        scaled.fx,
        scaled.fy,
        scaled.cx,
        scaled.cy,
        R,
        -R @ position,
        None,
        None,
    )


@dataclass(frozen=True)
class OrbitRig:
    """The orbit frame of a rig (see the module docstring)."""

    cameras: tuple[Camera, ...]  # the rig, as the stream describes it
    default: int  # index of the default camera (yaw 0, pitch 0, distance 1)
    centre: np.ndarray  # (3,) the point orbits go around and look at
    up: np.ndarray  # (3,) unit: the rig's up direction
    base: np.ndarray  # (3,) unit, perpendicular to up: the direction of yaw 0
    side: np.ndarray  # (3,) unit: up x base, the direction of yaw 90
    radius: float  # distance of the default camera from the centre (world units)
    max_pixels: int = MAX_VIEW_PIXELS  # largest orbit picture

    @classmethod
    def of(cls, rig: Sequence[Camera], default: int, max_pixels: int = MAX_VIEW_PIXELS) -> OrbitRig:
        cameras = tuple(rig)
        if not cameras:
            raise MediaError("a free-viewpoint stream without cameras")
        if not 0 <= default < len(cameras):
            raise MediaError(f"default view {default} is not one of the {len(cameras)} cameras")
        centre = rig_centre(cameras)
        up = rig_up(cameras, default)
        offset = cameras[default].center - centre
        radius = float(np.linalg.norm(offset))
        if radius < 1e-9:  # the default camera stands on the centre: step back from it
            radius = focus_depth(cameras)
            centre = cameras[default].center + radius * forward_of(cameras[default])
            offset = cameras[default].center - centre
        flat = _unit(offset - (offset @ up) * up)
        if flat is None:  # straight above or below the centre: its picture's top is yaw 0
            flat = _unit(up_of(cameras[default]) - (up_of(cameras[default]) @ up) * up)
        if flat is None:
            flat = perpendicular(up)
        return cls(cameras, default, centre, up, flat, np.cross(up, flat), radius, max_pixels)

    def pose_of(self, camera: Camera) -> OrbitPose:
        """The pose whose position is this camera's centre."""
        offset = camera.center - self.centre
        r = float(np.linalg.norm(offset))
        if r < 1e-12:
            return OrbitPose(0.0, 0.0, DISTANCE_RANGE[0])
        pitch = math.degrees(math.asin(max(-1.0, min(1.0, float(offset @ self.up) / r))))
        yaw = math.degrees(math.atan2(float(offset @ self.side), float(offset @ self.base)))
        return OrbitPose(yaw, pitch, r / self.radius)

    def position(self, pose: OrbitPose) -> np.ndarray:
        """Where the camera of a pose stands (pitch and distance within their limits)."""
        yaw = math.radians(pose.yaw)
        pitch = math.radians(max(-PITCH_LIMIT, min(PITCH_LIMIT, pose.pitch)))
        distance = max(DISTANCE_RANGE[0], min(DISTANCE_RANGE[1], pose.distance))
        direction = math.cos(pitch) * (math.cos(yaw) * self.base + math.sin(yaw) * self.side)
        direction = direction + math.sin(pitch) * self.up
        return self.centre + distance * self.radius * direction

    def camera(self, pose: OrbitPose) -> Camera:
        """The orbit camera of a pose: it looks at the centre, its top towards up."""
        base = self.cameras[self.default]
        return look_at(
            "orbit",
            base,
            self.position(pose),
            self.centre,
            self.up,
            view_size(base, self.max_pixels),
        )

    def rig_view(self, index: int) -> Camera:
        """Rig camera `index` as it is, its picture shrunk to at most max_pixels."""
        camera = self.cameras[index]
        size = view_size(camera, self.max_pixels)
        return camera if size == (camera.width, camera.height) else camera.scaled(*size)

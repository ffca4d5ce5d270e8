"""The `gaussian` codec's free-viewpoint mode (mode 1): a dynamic scene as 3D Gaussians.

Stream (see README.md, "3D mode"):

- codec parameters (`SceneParams`, params3d.py): version 1, mode 1, group length, residual coder
  (0 queen, 1 video), default view, the position unit exponent U (zigzag), and the camera
  rig as JSON (LEB128 length, UTF-8; `Camera.to_json` per camera). Every rig camera has
  the header's frame size; the header's pixel format is rgb24.
- every `group` frames a GAUSSIAN_BASE unit (random-access point): a full integer set
  of 3D Gaussians (coding3d.encode_base); between them GAUSSIAN_RESIDUAL units with the
  residual coder's payload for the frame, coded against the *decoded* previous state.
  Each payload ends with the CRC-32 of the decoded state (State3D.crc, u32le), which the
  decoder checks; a mismatch, a damaged unit or a residual without its base is a
  BitstreamError and clears the state, so nothing is shown until the next base.
- the count of Gaussians is fixed within a group (V^3); a base may change it.

Each unit decodes to one rgb24 frame: the default view rendered by render3d (CPU) or
gsplat (CUDA, when present). Renders are floats, so only the *state* is bit-exact across
machines and thread counts (its CRC); the pictures of two machines agree closely, not
exactly, and the units carry no frame CRC.

Encoding (`SceneEncoder`, QUEEN-style; Girish et al., NeurIPS 2024): a base is fitted
with fit3d.fit_static (from the COLMAP points or, lacking them, points placed by a
plane sweep at sampled pixels within the cameras' near/far bounds; later bases start
from the decoded previous state). A P-frame starts from the decoded previous state;
its position gates are decided once, from
QUEEN's signal: the view-space positional gradient of the frame-to-frame loss difference
(fit3d.gate_scores): a Gaussian's position may change only when its score is above
`gate_threshold` times the mean non-zero score, or, with `gates="learned"`, QUEEN's
hard-concrete gates initialised from this signal learn which positions move (gates.py).
The same signal freezes the static part entirely: only Gaussians scoring above
`update_threshold` times the mean may change their other attributes (the score is exactly
zero for a Gaussian whose pixels are the same in both frames). Then Adam fits
(`P_FRAME_LR`: positions at 20x a base's learning rate, so that they follow the motion
in a few steps, the rest at 0.5x) with an L1 rate term on the non-position attributes'
change (`RATE_3D` x `rate_weight`); residuals are rounded with a dead zone of 0.35 step,
and the residual coder codes the result. Views identical to the previous frame's send an
empty residual.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from nvc.bitstream import SequenceHeader, Unit, UnitType
from nvc.codec.base import StreamInfo, torch_threads
from nvc.codec.gaussian import coding3d
from nvc.codec.gaussian.config import GaussianConfig
from nvc.codec.gaussian.fit3d import (
    Fit3DConfig,
    Gaussians3D,
    camera_matrices,
    fit_static,
    gate_scores,
    initial_gaussians,
    photo_consistent_points,
    rgb_psnr,
)
from nvc.codec.gaussian.gates import initial_logits
from nvc.codec.gaussian.params3d import MAX_CAMERAS, SceneParams
from nvc.codec.gaussian.params3d import is_scene_stream as is_scene_stream  # re-exported
from nvc.codec.gaussian.params3d import stream_mode as stream_mode  # re-exported
from nvc.codec.gaussian.render3d import gsplat_render, render
from nvc.codec.gaussian.state3d import (
    MAX_GAUSSIANS3D,
    State3D,
    quantize,
    residual,
    steps3d_for,
    to_float,
    unit_for,
)
from nvc.errors import BitstreamError, CodecError
from nvc.media import Frame
from nvc.media.multiview import Camera

# A P-frame's learning rates relative to a base's (means, log-scales, quaternions,
# opacities, colours): positions must follow the motion within a few steps (on the
# procedural scene, 80x45, ~8 steps per frame: held-out PSNR after 3 P-frames 24.8 dB at
# 0.5x, 25.5 at 5x, 26.4 at 20x); the rest change slowly.
P_FRAME_LR = (20.0, 0.5, 0.5, 0.5, 0.5)
# The P-frame fit's L1 rate term on the non-position attributes, per step of change and
# per pixel of a view, at rate_weight 1 (benchmarks/results/gaussian3d_rate.json: 80x45,
# 6 cameras, 1500 Gaussians, q 40, 10 steps per P-frame; rate_weight 0 / 0.3 / 2 / 10:
# residuals 1911 / 798 / 625 / 628 bytes per frame, held-out PSNR 29.15 / 29.01 / 28.97 /
# 28.98 dB).
RATE_3D = 0.01
# learned gates (gates.py): an open position gate costs as much in the fit's loss as a
# change of GATE_COST quantization steps of the other attributes
GATE_COST = 20.0
DEAD_ZONE = 0.35  # residual rounding: |r| < 1 - DEAD_ZONE steps is zero
STATE_CHECK = 4  # bytes of the state CRC at the end of a payload
# Torch threads of a CPU render (render_rgb: the decoder's pictures and views, the encoder's
# reconstruction; the encoder's fits keep their own count). Measured on the loaded 2-core
# machine (benchmarks/results/render3d_speed.json): two threads took 40x (640x360) to 120x
# (96x64) as long as one. The picture does not depend on it beyond float rounding.
RENDER_THREADS = 1
PIXELS_PER_GAUSSIAN = 16  # default count: one Gaussian per this many pixels of one view
DEFAULT_MAX_GAUSSIANS = 20_000  # default count at most this (the CPU fit's speed)


def state_limit(width: int, height: int) -> int:
    """Most Gaussians a decoder accepts for views of this size."""
    return min(MAX_GAUSSIANS3D, max(4096, 4 * width * height))


# --- rendering --------------------------------------------------------------------------


def _use_gsplat() -> bool:
    if not torch.cuda.is_available():
        return False
    try:
        import gsplat  # noqa: F401
    except ImportError:
        return False
    return True


def render_rgb(g: Gaussians3D, camera: Camera) -> np.ndarray:
    """(H, W, 3) float32 picture in [0, 1]: gsplat on CUDA when present, else render3d
    with RENDER_THREADS torch threads."""
    viewmat, K = camera_matrices(camera)
    with torch.no_grad():
        if _use_gsplat():
            means, scales, quats, opacity, sh0 = (t.cuda() for t in g.tensors())
            out = gsplat_render(
                means,
                scales,
                quats,
                opacity,
                sh0,
                viewmat.cuda(),
                K.cuda(),
                camera.width,
                camera.height,
                sh_degree=0,
            )
            image = out.image.float().cpu()
        else:
            with torch_threads(RENDER_THREADS):
                tensors = g.tensors()
                image = render(*tensors, viewmat, K, camera.width, camera.height, sh_degree=0).image
    return image.clamp(0, 1).numpy()


def to_frame(rgb: np.ndarray, pts: int, fps: Fraction) -> Frame:
    """An rgb24 frame of a float picture (rounded)."""
    array = np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)
    return Frame.from_ndarray(array, "rgb24", pts=pts, time_base=1 / Fraction(fps))


# --- orbit ------------------------------------------------------------------------------


def rig_target(rig: Sequence[Camera]) -> np.ndarray:
    """The point nearest to every camera's optical axis (least squares); for parallel
    axes, a point ahead of the rig's mean centre at its mean near/far depth."""
    A = np.zeros((3, 3))
    b = np.zeros(3)
    for c in rig:
        d = c.R[2]
        P = np.eye(3) - np.outer(d, d)
        A += P
        b += P @ c.center
    if np.linalg.cond(A) < 1e6:
        return np.linalg.solve(A, b)
    centre = np.mean([c.center for c in rig], axis=0)
    forward = np.mean([c.R[2] for c in rig], axis=0)
    depths = [v for c in rig for v in (c.near, c.far) if v]
    depth = float(np.mean(depths)) if depths else 1.0
    return centre + forward / max(np.linalg.norm(forward), 1e-12) * depth


def _look_at(centre: np.ndarray, target: np.ndarray, down: np.ndarray) -> np.ndarray:
    z = target - centre
    z = z / np.linalg.norm(z)
    x = np.cross(down, z)
    x = x / max(np.linalg.norm(x), 1e-12)
    y = np.cross(z, x)
    return np.stack([x, y, z])


def orbit_cameras(rig: Sequence[Camera], count: int, view: int = 0) -> list[Camera]:
    """`count` cameras on a smooth closed path over the rig: from one end of the rig to
    the other and back (s = (1 - cos(2 pi t)) / 2), on the arc between the two cameras
    farthest apart around `rig_target`, looking at it; intrinsics of rig camera `view`."""
    if not rig or count < 1:
        raise CodecError("an orbit needs a rig and at least one frame")
    target = rig_target(rig)
    centres = np.array([c.center for c in rig])
    dist = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    i, j = np.unravel_index(int(np.argmax(dist)), dist.shape)
    a, b = centres[i] - target, centres[j] - target
    ra, rb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    ua, ub = a / max(ra, 1e-12), b / max(rb, 1e-12)
    omega = math.acos(float(np.clip(ua @ ub, -1.0, 1.0)))
    down = np.mean([c.R[1] for c in rig], axis=0)
    base = rig[view]
    out = []
    for k in range(count):
        s = 0.5 - 0.5 * math.cos(2 * math.pi * k / count)
        if omega < 1e-6:
            u = ua
        else:
            u = (math.sin((1 - s) * omega) * ua + math.sin(s * omega) * ub) / math.sin(omega)
        centre = target + u * ((1 - s) * ra + s * rb)
        R = _look_at(centre, target, down)
        out.append(
            Camera(
                f"orbit{k:04d}",
                base.width,
                base.height,
                base.fx,
                base.fy,
                base.cx,
                base.cy,
                R,
                -R @ centre,
                base.near,
                base.far,
            )
        )
    return out


# --- encoder ----------------------------------------------------------------------------


@dataclass
class FrameReport3D:
    """What the encoder measured for one coded frame."""

    pts: int  # frame index
    base: bool  # a GAUSSIAN_BASE unit
    gaussians: int  # Gaussians in the decoded state
    gated: int  # P-frames: Gaussians whose position changed
    changed: int  # P-frames: Gaussians with any change
    bytes: int  # payload bytes
    psnr: float  # RGB PSNR of the default view's render against its source
    steps: int  # optimizer steps
    seconds: float  # fitting and coding time
    crc: int  # CRC-32 of the decoded state


def _train_views(rig_size: int, hold_out: int | None) -> list[int]:
    return [i for i in range(rig_size) if i != hold_out]


class SceneEncoder:
    """Codes one multi-view frame (one picture per rig camera) per `encode_views` call."""

    def __init__(
        self,
        rig: Sequence[Camera],
        fps: Fraction,
        config: GaussianConfig,
        *,
        frame_count: int | None = None,
        points: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        if not rig or len(rig) > MAX_CAMERAS:
            raise CodecError(f"a scene needs 1..{MAX_CAMERAS} cameras, got {len(rig)}")
        self.rig = tuple(rig)
        first = self.rig[0]
        if any((c.width, c.height) != (first.width, first.height) for c in self.rig):
            raise CodecError("all cameras of a scene must have one frame size")
        self.width, self.height = first.width, first.height
        if config.device != "cpu" and not config.device.startswith("cpu:"):
            raise CodecError(
                f"--device {config.device}: the 3D mode fits on the CPU only (decoding uses "
                "gsplat on CUDA where it is installed)"
            )
        self.config = config
        self.default_view = len(rig) // 2 if config.view is None else config.view
        if not 0 <= self.default_view < len(rig):
            raise CodecError(f"--view {self.default_view}: the rig has {len(rig)} cameras")
        if config.hold_out is not None and not 0 <= config.hold_out < len(rig):
            raise CodecError(f"hold_out {config.hold_out}: the rig has {len(rig)} cameras")
        self.train = _train_views(len(rig), config.hold_out)
        if not self.train:
            raise CodecError("no camera is left to fit to")
        self.pack = coding3d.PACKS.index(config.pack) if config.pack in coding3d.PACKS else -1
        if self.pack < 0:
            raise CodecError(f"unknown --pack {config.pack!r} (choose from queen, video)")
        self.new_encoder, self.new_decoder = coding3d.residual_coder(config.pack)
        self.fps = Fraction(fps)
        self.unit = unit_for(np.array([c.center for c in self.rig]))
        self.steps = steps3d_for(config.q)
        default = max(500, self.width * self.height // PIXELS_PER_GAUSSIAN)
        count = config.gaussians or min(DEFAULT_MAX_GAUSSIANS, default)
        self.count = min(count, state_limit(self.width, self.height))
        self.points = points
        self.frame_count = frame_count
        self.params = SceneParams(
            config.group, self.pack, self.default_view, self.unit, self.rig
        ).to_bytes()
        self.stream = StreamInfo(
            self.width, self.height, self.fps, "rgb24", frame_count=frame_count
        )
        self.state: State3D | None = None
        self._coder: coding3d.ResidualEncoder | None = None
        self._check: coding3d.ResidualDecoder | None = None
        self._before: list[np.ndarray] | None = None
        self.index = 0
        self.spent = 0.0
        self._frame_start = 0.0
        self.reports: list[FrameReport3D] = []
        self.last_reconstruction: Frame | None = None
        self._rng = np.random.default_rng(config.seed)

    @property
    def codec_params(self) -> bytes:
        return self.params

    def header(self) -> SequenceHeader:
        return self.stream.to_header(4, self.params)

    def _seconds(self, key: bool) -> float:
        """Fitting time of this frame: frame_budget (x key_weight), within time_budget."""
        cfg = self.config
        weight = cfg.key_weight if key else 1.0
        own = cfg.frame_budget * weight
        if cfg.time_budget is None:
            return own
        left = max(cfg.time_budget - self.spent, 0.0)
        if self.frame_count:
            rest = max(self.frame_count - self.index, 1)
            keys = -(-rest // cfg.group)
            share = left * weight / (rest - keys + keys * cfg.key_weight)
        else:
            share = left * weight / (weight + 20)
        return min(own, share)

    def _fit_config(self, key: bool) -> Fit3DConfig:
        """The fit of this frame: its time share less what the frame has used already
        (the gate scores of a P-frame), at most max_iterations steps."""
        cfg = self.config
        used = time.perf_counter() - self._frame_start
        return Fit3DConfig(
            gaussians=self.count,
            steps=cfg.max_iterations or 1_000_000,
            time_budget=max(self._seconds(key) - used, 0.0),
            min_steps=1,
            relocate_every=100 if key else 0,
            seed=cfg.seed + self.index,
        )

    def encode_views(self, views: Sequence[np.ndarray], pts: int) -> list[Unit]:
        """Code one time step: `views` are (H, W, 3) uint8 RGB pictures, one per rig camera."""
        if len(views) != len(self.rig):
            raise CodecError(f"expected {len(self.rig)} views, got {len(views)}")
        for v in views:
            if v.shape != (self.height, self.width, 3) or v.dtype != np.uint8:
                raise CodecError(f"a view must be ({self.height}, {self.width}, 3) uint8")
        start = self._frame_start = time.perf_counter()
        images = [views[i].astype(np.float32) / 255.0 for i in self.train]
        cams = [self.rig[i] for i in self.train]
        key = self.state is None or self.index % self.config.group == 0
        with torch.inference_mode(False):
            if key:
                payload, state, gated, changed, steps = self._key(images, cams)
            else:
                payload, state, gated, changed, steps = self._predicted(images, cams)
        payload += state.crc().to_bytes(STATE_CHECK, "little")
        self.state = state
        self._before = images
        kind = UnitType.GAUSSIAN_BASE if key else UnitType.GAUSSIAN_RESIDUAL
        unit = Unit(kind, payload, pts=pts, rap=key)
        seconds = time.perf_counter() - start
        self.spent += seconds
        self.index += 1
        g = to_float(state, self.unit)
        out = render_rgb(g, self.rig[self.default_view])
        self.last_reconstruction = to_frame(out, pts, self.fps)
        source = views[self.default_view].astype(np.float32) / 255.0
        psnr = rgb_psnr(self.last_reconstruction.to_ndarray("rgb24") / 255.0, source)
        self.reports.append(
            FrameReport3D(
                pts,
                key,
                state.count,
                gated,
                changed,
                len(payload),
                psnr,
                steps,
                seconds,
                state.crc(),
            )
        )
        return [unit]

    def _start(self, images: list[np.ndarray], cams: list[Camera]) -> Gaussians3D:
        if self.state is not None:  # later bases start from the decoded previous state
            return to_float(self.state, self.unit)
        if self.points is not None and len(self.points[0]) >= 4:
            pts, rgb = self.points
            few = len(pts) < self.count
            pick = self._rng.choice(len(pts), size=self.count, replace=few)
            chosen = pts[pick]
            if few:  # repeated points: spread them by about half the points' spacing
                spacing = float(np.ptp(pts, axis=0).max()) * len(pts) ** (-1 / 3)
                chosen = chosen + self._rng.normal(0.0, 0.5 * spacing, chosen.shape)
            return initial_gaussians(chosen, rgb[pick].astype(np.float64) / 255.0, 0.5)
        return initial_gaussians(*self._sweep_points(images, cams, self.count), 0.5)

    def _sweep_points(
        self, images: list[np.ndarray], cams: list[Camera], n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """n points for scenes without SfM points (N3DV folders): random pixels placed at
        their most photo-consistent depth within each camera's near..far bounds
        (fit3d.photo_consistent_points; bounds of 0.5..1.5 x the distance to the rig's
        target where the poses give none); random depths with a single view."""
        target = rig_target(self.rig)
        bounds = []
        for cam in cams:
            dist = float(np.linalg.norm(target - cam.center))
            near = cam.near if cam.near and cam.near > 0 else 0.5 * dist
            far = cam.far if cam.far and cam.far > near else max(1.5 * dist, 2 * near)
            bounds.append((near, far))
        if len(cams) >= 2:
            return photo_consistent_points(images, cams, n, self._rng, bounds=bounds)
        cam, (near, far) = cams[0], bounds[0]
        uv = self._rng.uniform(0, 1, (n, 2)) * (cam.width, cam.height)
        d = cam.directions(uv)
        t = self._rng.uniform(near, far, n) / (d @ cam.R[2])
        px = np.minimum(uv.astype(int), (cam.width - 1, cam.height - 1))
        return cam.center + t[:, None] * d, images[0][px[:, 1], px[:, 0]]

    def _key(
        self, images: list[np.ndarray], cams: list[Camera]
    ) -> tuple[bytes, State3D, int, int, int]:
        init = self._start(images, cams)
        reseed = (lambda n: self._sweep_points(images, cams, n)) if self.points is None else None
        if self.points is not None:
            pts, rgb = self.points

            def reseed(n: int) -> tuple[np.ndarray, np.ndarray]:
                pick = self._rng.choice(len(pts), size=n)
                return pts[pick], rgb[pick].astype(np.float64) / 255.0

        fitted, rep = fit_static(
            images, cams, init, self._fit_config(True), reseed=reseed, measure=False
        )
        state = quantize(fitted, self.unit, self.steps)
        state = state.take(coding3d.morton_order(state))
        body = coding3d.encode_base(state, self.steps)
        decoded, _ = coding3d.decode_base(body, state_limit(self.width, self.height), "base")
        if not decoded.equal(state):
            raise CodecError("gaussian 3D: the base does not decode to the encoder's state (a bug)")
        self._coder = self.new_encoder(decoded, self.steps)
        self._check = self.new_decoder(decoded, self.steps)
        return body, decoded, 0, 0, rep.steps

    def _predicted(
        self, images: list[np.ndarray], cams: list[Camera]
    ) -> tuple[bytes, State3D, int, int, int]:
        prev, before = self.state, self._before
        if prev is None or before is None or self._coder is None or self._check is None:
            raise CodecError("gaussian 3D: a P-frame without a previous state (a bug)")
        steps = 0
        if all(np.array_equal(a, b) for a, b in zip(images, before, strict=True)):
            cur = prev  # nothing moved: an empty residual
        else:
            start = to_float(prev, self.unit)
            scores = gate_scores(start, cams, images, before)
            positive = scores[scores > 0]
            mean = positive.mean() if positive.numel() else torch.tensor(math.inf)
            move = scores > self.config.gate_threshold * mean
            update = scores > self.config.update_threshold * mean
            learned = self.config.gates == "learned"
            fitted, rep = fit_static(
                images,
                cams,
                start,
                self._fit_config(False),
                move=None if learned else move,
                update=update,
                lr_scale=P_FRAME_LR,
                measure=False,
                anchor=start,
                rate=self._rate_weights(),
                gates=initial_logits(scores, float(self.config.gate_threshold * mean))
                if learned
                else None,
                gate_cost=RATE_3D * self.config.rate_weight * GATE_COST,
            )
            if rep.moved is not None:
                move = rep.moved
            steps = rep.steps
            cur = residual(
                prev,
                fitted,
                self.unit,
                self.steps,
                move=move.numpy(),
                update=update.numpy(),
                dead_zone=DEAD_ZONE,
            )
        body, decoded = self._coder.encode_residuals(prev, cur)
        check = self._check.decode_residuals(body, prev)
        if not check.equal(decoded):
            raise CodecError(
                "gaussian 3D: a residual does not decode to the encoder's state (a bug)"
            )
        d = decoded.matrix() - prev.matrix()
        gated = int(np.any(d[:, 0:3] != 0, axis=1).sum())
        changed = int(np.any(d != 0, axis=1).sum())
        return body, decoded, gated, changed, steps

    def _rate_weights(self) -> list[float] | None:
        """fit_static's L1 rate weights: RATE_3D x `rate_weight` per step of each float
        attribute (none for positions, which the gates already sparsify)."""
        w = RATE_3D * self.config.rate_weight
        if not w:
            return None
        k = self.steps.values()
        float_steps = (
            2.0 ** (k[1] - 6),  # log-scales: 2**k / SCALE_UNIT
            2.0 ** (k[2] - 12),  # quaternions: 2**k / QUAT_UNIT
            2.0 ** (k[3] - 5),  # opacity logits: 2**k / OPACITY_UNIT
            2.0 ** (k[4] - 8),  # SH colours: 2**k / COLOUR_UNIT
        )
        return [0.0, *(w / s for s in float_steps)]

    def psnr(self) -> float:
        return float(np.mean([r.psnr for r in self.reports])) if self.reports else math.nan


# --- decoder ----------------------------------------------------------------------------


class SceneDecoder:
    """Holds the decoded 3D Gaussians; renders the default view per unit, any view on
    request (`render_view`, for the player)."""

    def __init__(self, header: SequenceHeader) -> None:
        self.header = header
        self.params = SceneParams.from_bytes(header.codec_params, header.width, header.height)
        self.rig: list[Camera] = list(self.params.rig)
        self.default_view = self.params.default_view
        self.fps = Fraction(header.fps)
        self.limit = state_limit(header.width, header.height)
        self._new_decoder = coding3d.residual_coder(coding3d.PACKS[self.params.pack])[1]
        self.state: State3D | None = None
        self.pts = 0
        self._coder: coding3d.ResidualDecoder | None = None
        self._floats: Gaussians3D | None = None

    def decode(self, unit: Unit | None) -> list[Frame]:
        if not self.apply(unit):
            return []
        return [self.render_view(self.rig[self.default_view])]

    def apply(self, unit: Unit | None) -> bool:
        """Decode a unit into the state without rendering; False for units that are not
        the codec's (nothing changes). A BitstreamError clears the state."""
        if unit is None or unit.type not in (UnitType.GAUSSIAN_BASE, UnitType.GAUSSIAN_RESIDUAL):
            return False
        try:
            self._apply(unit)
        except BitstreamError:
            self.state = self._coder = self._floats = None  # nothing until the next base
            raise
        return True

    def _apply(self, unit: Unit) -> None:
        base = unit.type == UnitType.GAUSSIAN_BASE
        what = f"gaussian 3D {'base' if base else 'residual'} {unit.pts}"
        if len(unit.payload) < STATE_CHECK:
            raise BitstreamError(f"{what} is too short for its state checksum")
        body, crc = (
            unit.payload[:-STATE_CHECK],
            int.from_bytes(unit.payload[-STATE_CHECK:], "little"),
        )
        if base:
            state, steps = coding3d.decode_base(body, self.limit, what)
            coder = self._new_decoder(state, steps)
        else:
            if self.state is None or self._coder is None:
                raise BitstreamError(
                    f"{what} has no base to apply to (decoding must start at a GAUSSIAN_BASE "
                    "unit, a random-access point)"
                )
            coder = self._coder
            state = coder.decode_residuals(body, self.state)
        if state.crc() != crc:
            raise BitstreamError(
                f"{what}: the decoded Gaussians do not match the encoder's (state checksum); "
                "the stream is damaged or a unit it depends on is missing"
            )
        self.state, self._coder, self.pts = state, coder, unit.pts
        self._floats = to_float(state, self.params.unit)

    def gaussians(self) -> Gaussians3D:
        """The float parameters of the most recently decoded state (what render_view
        renders); CodecError when nothing is decoded."""
        if self._floats is None:
            raise CodecError("no Gaussians decoded yet (or the last unit failed)")
        return self._floats

    def render_view(self, camera: Camera) -> Frame:
        """The most recently decoded Gaussians seen from `camera` (rgb24, its size)."""
        return to_frame(render_rgb(self.gaussians(), camera), self.pts, self.fps)

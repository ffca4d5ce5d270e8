"""A tiny free-viewpoint stream for the orbit-view tests: real 3D Gaussians, rendered by
nvc.codec.gaussian.render3d, behind the decoder interface the player orbits with
(nvc.player.orbit_view.FreeViewpoint: `rig`, `default_view`, `render_view(camera)`).

The test codec ("testscene") carries the rig and a seed in its parameters; its decoder
places Gaussians on the procedural scene's surfaces (nvc.media.scene_synth, ray cast;
fit3d.surface_points and initial_gaussians, no optimisation: enough for a recognisable
picture), and every unit gives the default camera's picture of them. The scene is
static, so the picture the page shows changes only when the camera moves.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from nvc.bitstream import SequenceHeader, Unit, UnitType, Writer
from nvc.codec import registry
from nvc.codec.base import CodecSpec, StreamInfo
from nvc.errors import CodecError
from nvc.media import Frame
from nvc.media.multiview import Camera
from nvc.media.scene_synth import ProceduralScene, SceneConfig

SCENE_CODEC_ID = 9003  # test-only codec id
SIZE = (96, 64)  # the stream's picture size
CAMERAS = 3  # cameras of the rig
GAUSSIANS = 1500  # Gaussians placed on the scene's surfaces


@dataclass(frozen=True)
class SceneOptions:
    pass  # the test codec is never used to encode through the pipeline


def _scene(seed: int) -> ProceduralScene:
    return ProceduralScene(
        SceneConfig(
            width=SIZE[0], height=SIZE[1], cameras=CAMERAS, static=True, supersample=1, seed=seed
        )
    )


class SceneDecoder:
    """Gaussians on the procedural scene's surfaces, seen from any camera."""

    def __init__(self, header: SequenceHeader) -> None:
        import torch

        from nvc.codec.gaussian.fit3d import initial_gaussians, surface_points

        params = json.loads(header.codec_params)
        self.rig: list[Camera] = [Camera.from_json(c) for c in params["rig"]]
        self.default_view: int = int(params["default"])
        scene = _scene(int(params["seed"]))
        images = [scene.render(i, 0) for i in range(CAMERAS)]
        depths = [scene.depth(i, 0) for i in range(CAMERAS)]
        points, colours = surface_points(
            images, scene.cameras, depths, GAUSSIANS, np.random.default_rng(0)
        )
        self._gaussians = initial_gaussians(points, colours, 0.9)
        self._torch = torch
        self._decoded = False
        self._default: Frame | None = None
        self._fps = header.fps
        self.threads: list[str] = []  # the threads render_view ran on (their pool's name)

    def _picture(self, camera: Camera, pts: int) -> Frame:
        with self._torch.no_grad():
            image = self._gaussians.render(camera)
        rgb = (image.clamp(0, 1) * 255).round().to(self._torch.uint8).numpy()
        return Frame.from_ndarray(rgb, "rgb24", pts=pts, time_base=1 / self._fps)

    def decode(self, unit: Unit | None) -> list[Frame]:
        if unit is None or unit.type != UnitType.FRAME:
            return []
        self._decoded = True
        if self._default is None:  # a static scene: its default picture is always the same
            self._default = self._picture(self.rig[self.default_view], 0)
        rgb = self._default.planes[0]
        return [Frame.from_ndarray(rgb.copy(), "rgb24", pts=unit.pts, time_base=1 / self._fps)]

    def render_view(self, camera: Camera) -> Frame:
        if not self._decoded:
            raise CodecError("nothing decoded yet")
        self.threads.append(threading.current_thread().name.rsplit("_", 1)[0])
        return self._picture(camera, 0)


class _NoEncoder:
    def __init__(self, stream: StreamInfo, config: SceneOptions) -> None:
        raise CodecError("testscene streams are written by write_scene_stream")


SCENE_SPEC = CodecSpec(
    SCENE_CODEC_ID,
    "testscene",
    "test: a static 3D Gaussian scene",
    SceneOptions,
    _NoEncoder,
    SceneDecoder,
)


def register_scene() -> None:
    if registry.name_of(SCENE_CODEC_ID) is None:
        registry.register(SCENE_SPEC)


def write_scene_stream(path: Path, *, frames: int = 20, fps: int = 10, seed: int = 0) -> Path:
    """A testscene .nvc: the rig of the procedural scene, `frames` units (each a RAP)."""
    scene = _scene(seed)
    params = {"rig": [c.to_json() for c in scene.cameras], "default": 1, "seed": seed}
    header = SequenceHeader(
        SCENE_CODEC_ID,
        json.dumps(params).encode(),
        SIZE[0],
        SIZE[1],
        Fraction(fps),
        "rgb24",
        full_range=True,
        frame_count=frames,
    )
    with Writer(path, header) as writer:
        for i in range(frames):
            writer.write(Unit(UnitType.FRAME, i.to_bytes(4, "little"), i, True))
    return path

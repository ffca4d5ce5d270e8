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

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from nvc.bitstream import SequenceHeader, Unit, UnitType, Writer
from nvc.codec import registry
from nvc.codec.base import CodecSpec, StreamInfo
from nvc.errors import CodecError
from nvc.media import Frame
from nvc.media.multiview import Camera
from nvc.media.scene_synth import ProceduralScene, SceneConfig
from nvc.player.player import Player, PlayerConfig
from nvc.player.server import ServeConfig, StreamServer
from nvc.player.source import FileSource
from nvc.player.view import FrameHub, ViewServer

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


def scene_file_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A module fixture's body: a testscene stream, the codec registered meanwhile."""
    import nvc.codec.gaussian.fit3d  # noqa: F401 (torch: loaded before the clock starts)

    register_scene()
    yield write_scene_stream(tmp_path_factory.mktemp("scene") / "scene.nvc")
    registry.unregister(SCENE_SPEC)


class Session:
    """A stream server (a file, looping), a player and its view server, on loopback."""

    def __init__(self, path: Path) -> None:
        self.server = StreamServer(FileSource(path, loop=True), config=ServeConfig(port=0))
        self.hub = FrameHub()
        self.view = ViewServer(self.hub)
        self.player: Player | None = None
        self.page = ""
        self.http: aiohttp.ClientSession | None = None

    async def post(self, body: Any, *, raw: bytes | None = None, **kw: Any) -> tuple[int, dict]:
        assert self.http is not None
        data = raw if raw is not None else json.dumps(body).encode()
        headers = {"Content-Type": kw.pop("content_type", "application/json")}
        async with self.http.post(self.page + "camera", data=data, headers=headers) as r:
            return r.status, await r.json()

    async def orbit(self) -> dict:
        assert self.http is not None
        async with self.http.get(self.page + "orbit") as r:
            return await r.json()

    async def wait(self, condition: Any, timeout: float, what: str) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not condition():
            if loop.time() > end:
                raise AssertionError(f"{what}: not within {timeout:g} s")
            await asyncio.sleep(0.02)

    async def render(self, camera: Any) -> np.ndarray:
        """What the player's decoder renders from `camera` (on its thread)."""
        player = self.player
        assert player is not None
        decoder = player.decoder
        frame = await player.in_decoder_thread(lambda: decoder.render_view(camera))
        return frame.to_ndarray()


@asynccontextmanager
async def session(path: Path) -> AsyncIterator[Session]:
    s = Session(path)
    url = await s.server.start()
    s.page = await s.view.start()
    s.player = Player(PlayerConfig(url, duration=60), on_frame=s.hub.publish)
    s.view.watch(s.player)
    playing = asyncio.create_task(s.player.run())
    try:
        async with aiohttp.ClientSession() as http:
            s.http = http
            await s.wait(lambda: s.view.page_hub.frame is not None, 30, "the first frame")
            yield s
    finally:
        s.player.stop()
        await playing
        await s.view.close()
        await s.server.close()

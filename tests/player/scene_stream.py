"""A tiny free-viewpoint stream for the orbit-view tests, coded by the gaussian codec's 3D
mode (nvc.codec.gaussian.codec3d): the procedural scene (nvc.media.scene_synth, ray cast)
seen by 3 cameras at 96x64, static, so the picture the page shows changes only when the
camera moves (a static scene's residuals are empty: the decoded Gaussians stay the same).

The stream is encoded once per test session (a few seconds of fitting) and shared by the
test modules that use it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from nvc.bitstream import Writer
from nvc.player.broadcast import ViewerConfig
from nvc.player.player import Player, PlayerConfig
from nvc.player.server import ServeConfig, StreamServer
from nvc.player.source import FileSource
from nvc.player.view import FrameHub, ViewServer

SIZE = (96, 64)  # every camera's picture size
CAMERAS = 3  # cameras of the rig (the default view is the middle one)
FRAMES = 3  # frames of the scene (one group: a base and two residuals)
FPS = 10  # frame rate of the stream
# encoder settings that keep the encode to a few seconds
FIT = {"gaussians": 800, "group": FRAMES, "max_iterations": 5, "frame_budget": 10.0}


def write_gaussian_scene(path: Path) -> Path:
    """The procedural scene, static, coded with the gaussian codec's 3D mode."""
    import torch

    from nvc.codec.gaussian import GaussianConfig
    from nvc.codec.gaussian.codec3d import SceneEncoder
    from nvc.codec.gaussian.fit3d import surface_points
    from nvc.media.scene_synth import ProceduralScene, SceneConfig

    torch.set_num_threads(1)
    scene = ProceduralScene(
        SceneConfig(
            width=SIZE[0],
            height=SIZE[1],
            cameras=CAMERAS,
            frames=FRAMES,
            fps=FPS,
            static=True,
            supersample=1,
        )
    )
    images = [scene.render(i, 0) for i in range(CAMERAS)]
    depths = [scene.depth(i, 0) for i in range(CAMERAS)]
    points, colours = surface_points(images, scene.cameras, depths, 1500, np.random.default_rng(0))
    encoder = SceneEncoder(
        scene.cameras,
        Fraction(FPS),
        GaussianConfig(**FIT),
        frame_count=FRAMES,
        points=(points, np.round(colours * 255).astype(np.uint8)),
    )
    with Writer(path, encoder.header()) as writer:
        for t in range(FRAMES):
            views = [scene.render_uint8(i, t) for i in range(CAMERAS)]
            for unit in encoder.encode_views(views, t):
                writer.write(unit)
    return path


def gaussian_scene_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stream of write_gaussian_scene, written once per test session."""
    path = tmp_path_factory.getbasetemp() / "orbit-scene" / "scene.nvc"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        write_gaussian_scene(path)
    return path


class Session:
    """A stream server (a file, looping), a player and its view server, on loopback."""

    def __init__(self, path: Path, viewers: ViewerConfig | None = None) -> None:
        source = FileSource(path, loop=True)
        self.server = StreamServer(source, viewers, config=ServeConfig(port=0))
        self.hub = FrameHub()
        self.view = ViewServer(self.hub)
        self.player: Player | None = None
        self.page = ""  # the view page's URL
        self.url = ""  # the stream server's URL
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
async def session(path: Path, viewers: ViewerConfig | None = None) -> AsyncIterator[Session]:
    s = Session(path, viewers)
    s.url = url = await s.server.start()
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

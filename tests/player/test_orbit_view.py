"""The orbit view of free-viewpoint streams (`nvc play --view`): real WebRTC peers on
loopback, a real 3D Gaussian decoder (tests/player/scene_stream.py), the view server's
`GET /orbit` and `POST /camera`."""

from __future__ import annotations

import asyncio
import json
import random
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nvc.media import Frame
from nvc.player.broadcast import ViewerConfig
from nvc.player.orbit import OrbitPose
from nvc.player.orbit_view import MAX_MESSAGE, CameraMessageError, parse_camera
from nvc.player.player import Player, PlayerConfig
from nvc.player.view import FrameHub, ViewServer
from tests.player.helpers import make_file, run
from tests.player.scene_stream import FRAMES, gaussian_scene_file, session


@pytest.fixture(scope="module")
def scene_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny static 3D scene coded by the gaussian codec (3 cameras, 96x64)."""
    return gaussian_scene_file(tmp_path_factory)


def _pixels(frame: Frame | None) -> np.ndarray:
    assert frame is not None
    return frame.to_ndarray()


def _change(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_the_page_chooses_a_camera_and_the_player_renders_the_scene_from_it(scene_file):
    async def go() -> dict:
        seen: dict = {}
        async with session(scene_file) as s:
            view, orbit = s.view, s.view.orbit
            decoder = s.player.decoder
            threads: set[str] = set()
            render_view = decoder.render_view

            def recorded(camera: Any) -> Frame:  # the real render; where it ran is noted
                threads.add(threading.current_thread().name.rsplit("_", 1)[0])
                return render_view(camera)

            decoder.render_view = recorded
            seen["orbit"] = await s.orbit()
            stream_picture = _pixels(view.page_hub.frame)
            seen["passes_through"] = np.array_equal(stream_picture, _pixels(s.hub.frame))
            pose = {"yaw": 40.0, "pitch": 25.0, "distance": 1.3}
            seen["post"] = await s.post(pose)
            await s.wait(lambda: orbit.stats.renders >= 1, 20, "a render")
            await asyncio.sleep(0.3)  # frames keep coming: the page keeps the orbit picture
            rig = orbit.orbit_rig()
            assert rig is not None
            moved = _pixels(view.page_hub.frame)
            seen["moved"] = _change(stream_picture, moved)
            seen["exact"] = np.array_equal(moved, await s.render(rig.camera(OrbitPose(**pose))))
            seen["size"] = moved.shape
            # many camera messages at once: only some are rendered, the last one shown last
            before = orbit.stats.renders
            poses = [{"yaw": -60.0 + 4 * i, "pitch": 10.0, "distance": 1.0} for i in range(30)]
            statuses = [(await s.post(p))[0] for p in poses]
            await s.wait(lambda: orbit._done[0] == orbit._choice_version, 30, "the last pose")
            await asyncio.sleep(0.2)
            seen["statuses"] = statuses
            seen["rendered"] = orbit.stats.renders - before
            last = await s.render(rig.camera(OrbitPose(**poses[-1])))
            seen["last_exact"] = np.array_equal(_pixels(view.page_hub.frame), last)
            seen["threads"] = set(threads)
            # a rig camera as it is, then the default camera: the stream's own pictures
            await s.post({"camera": 0})
            await s.wait(lambda: orbit._done[0] == orbit._choice_version, 20, "camera 0")
            await asyncio.sleep(0.2)
            seen["rig0"] = np.array_equal(
                _pixels(view.page_hub.frame), await s.render(rig.cameras[0])
            )
            seen["chosen"] = (await s.orbit())["chosen"]
            await s.post({"camera": 1})
            await asyncio.sleep(0.3)
            seen["back"] = np.array_equal(_pixels(view.page_hub.frame), _pixels(s.hub.frame))
            seen["stats"] = orbit.stats.summary()
        return seen

    seen = run(go(), 90)
    orbit = seen["orbit"]
    assert orbit["available"] and orbit["default"] == 1 and len(orbit["cameras"]) == 3
    assert orbit["cameras"][1]["yaw"] == 0 and orbit["cameras"][1]["distance"] == 1
    assert orbit["cameras"][0]["yaw"] == -orbit["cameras"][2]["yaw"] != 0
    assert orbit["chosen"] == {"camera": 1} and orbit["size"] == [96, 64]
    assert seen["passes_through"]  # before any camera message: the stream's pictures
    assert seen["post"] == (200, {"ok": True})
    assert seen["moved"] > 5.0, f"the picture hardly changed ({seen['moved']:.2f})"
    assert seen["exact"] and seen["size"] == (64, 96, 3)
    assert seen["statuses"] == [200] * 30
    assert 1 <= seen["rendered"] < 30, seen["rendered"]  # coalesced
    assert seen["last_exact"]
    assert seen["threads"] == {"nvc-decode"}  # rendered on the decoder's worker thread
    assert seen["rig0"] and seen["chosen"] == {"camera": 0}
    assert seen["back"]
    stats = seen["stats"]
    assert stats["camera_messages"] == 33 and stats["camera_rejected"] == 0
    assert stats["superseded"] >= 1 and stats["render_errors"] == 0
    assert stats["render_ms_median"] > 0


def test_a_lost_unit_keeps_the_chosen_camera_and_never_flashes_the_stream_picture(scene_file):
    """Units lost on the way (a tenth of the messages dropped): the player resumes with a
    fresh decoder at the next base; the page keeps the orbit camera throughout."""

    async def go() -> dict:
        seen: dict = {}
        async with session(scene_file, ViewerConfig(drop_rate=0.1, seed=3)) as s:
            orbit = s.view.orbit
            stream_picture = _pixels(s.view.page_hub.frame)
            await s.post({"yaw": 35.0, "pitch": 20.0, "distance": 1.1})
            await s.wait(lambda: orbit.stats.renders >= 1, 20, "a render")
            published: list[np.ndarray] = []
            publish = orbit.publish

            def recorded(frame: Frame) -> None:  # what goes to the page, noted
                published.append(frame.to_ndarray())
                publish(frame)

            orbit.publish = recorded
            decoders = set()
            loop = asyncio.get_running_loop()
            end = loop.time() + 4.0
            while loop.time() < end:
                if s.player.decoder is not None:
                    decoders.add(id(s.player.decoder))
                await asyncio.sleep(0.01)
            seen["decoders"] = len(decoders)
            seen["loss"] = s.player.stats.loss_events
            seen["published"] = len(published)
            seen["flashes"] = sum(np.array_equal(p, stream_picture) for p in published)
            seen["chosen"] = (await s.orbit())["chosen"]
        return seen

    seen = run(go(), 60)
    assert seen["loss"] >= 1 and seen["decoders"] >= 2, seen  # fresh decoders at bases
    assert seen["published"] >= 1 and seen["flashes"] == 0, seen
    assert seen["chosen"] == {"yaw": 35.0, "pitch": 20.0, "distance": 1.1}


def test_a_viewer_joining_mid_stream_starts_at_a_base_and_orbits(scene_file):
    """A second player joins the running 3D stream: it starts at a base (a random-access
    point, GAUSSIAN_BASE) after the start, decodes without an error, and its own page's
    camera is rendered by its own decoder."""

    async def go() -> dict:
        async with session(scene_file) as s:
            await asyncio.sleep(1.0)  # the stream runs (about 10 frames, 3 bases)
            hub = FrameHub()
            view = ViewServer(hub)
            page = await view.start()
            joiner = Player(PlayerConfig(s.url, duration=30), on_frame=hub.publish)
            view.watch(joiner)
            playing = asyncio.create_task(joiner.run())
            try:
                await s.wait(lambda: view.page_hub.frame is not None, 20, "the joiner's frame")
                assert s.http is not None
                async with s.http.post(
                    page + "camera", json={"yaw": -20.0, "pitch": 30.0, "distance": 0.9}
                ) as r:
                    status = r.status
                await s.wait(lambda: view.orbit.stats.renders >= 1, 20, "the joiner's render")
                return {
                    "status": status,
                    "first": joiner.stats.first_rap_pts,
                    "errors": joiner.stats.decode_errors,
                    "renders": (view.orbit.stats.renders, s.view.orbit.stats.renders),
                }
            finally:
                joiner.stop()
                await playing
                await view.close()

    seen = run(go(), 60)
    assert seen["status"] == 200
    assert seen["first"] > 0 and seen["first"] % FRAMES == 0, seen  # a base, mid-stream
    assert seen["errors"] == 0
    assert seen["renders"][0] >= 1 and seen["renders"][1] == 0  # only the joiner's page moved


HOSTILE: list[tuple[Any, int]] = [  # (body, HTTP status)
    (b"", 400),
    (b"not json", 400),
    (b"\xff\xfe", 400),
    (b"[" * 5000 + b"]" * 5000, 413),
    (b'{"yaw": 1}' + b" " * MAX_MESSAGE, 413),
    ([], 400),
    ("yaw", 400),
    ({}, 400),
    ({"yaw": 10, "pitch": 0}, 400),
    ({"yaw": 10, "pitch": 0, "distance": 1, "extra": 0}, 400),
    ({"yaw": "10", "pitch": 0, "distance": 1}, 400),
    ({"yaw": True, "pitch": 0, "distance": 1}, 400),
    ({"yaw": None, "pitch": 0, "distance": 1}, 400),
    ({"yaw": [1], "pitch": 0, "distance": 1}, 400),
    (b'{"yaw": NaN, "pitch": 0, "distance": 1}', 400),
    (b'{"yaw": Infinity, "pitch": 0, "distance": 1}', 400),
    (b'{"yaw": 1e400, "pitch": 0, "distance": 1}', 400),
    ({"yaw": 1e6, "pitch": 0, "distance": 1}, 400),
    ({"yaw": 0, "pitch": 89, "distance": 1}, 400),
    ({"yaw": 0, "pitch": -90.5, "distance": 1}, 400),
    ({"yaw": 0, "pitch": 0, "distance": 0}, 400),
    ({"yaw": 0, "pitch": 0, "distance": -1}, 400),
    ({"yaw": 0, "pitch": 0, "distance": 1e9}, 400),
    ({"camera": 3}, 400),
    ({"camera": -1}, 400),
    ({"camera": 1.0}, 400),
    ({"camera": True}, 400),
    ({"camera": "0"}, 400),
    ({"camera": 0, "yaw": 1}, 400),
    (b'{"camera": 10000000000000000000000000000000000000000}', 400),
]


def test_malformed_and_hostile_camera_messages_are_refused_and_counted(scene_file):
    async def go() -> dict:
        seen: dict = {}
        async with session(scene_file) as s:
            orbit = s.view.orbit
            picture = _pixels(s.view.page_hub.frame)
            results = []
            for body, _ in HOSTILE:
                raw = body if isinstance(body, bytes) else None
                results.append((await s.post(body, raw=raw))[0])
            results.append((await s.post({"camera": 0}, content_type="text/plain"))[0])
            seen["results"] = results
            seen["stats"] = orbit.stats.summary()
            seen["chosen"] = (await s.orbit())["chosen"]
            await asyncio.sleep(0.2)
            seen["unchanged"] = orbit.choice is None and np.array_equal(
                picture, _pixels(s.view.page_hub.frame)
            )
            # and the view goes on working
            seen["valid"] = await s.post({"yaw": -30, "pitch": 5, "distance": 0.8})
            await s.wait(lambda: orbit.stats.renders >= 1, 20, "a render")
            seen["playing"] = s.player.stats.frames_presented > 0
        return seen

    seen = run(go(), 60)
    expected = [status for _, status in HOSTILE] + [415]
    assert seen["results"] == expected
    assert seen["stats"]["camera_rejected"] == len(expected)
    assert seen["stats"]["camera_messages"] == 0 and seen["stats"]["renders"] == 0
    assert seen["chosen"] == {"camera": 1} and seen["unchanged"]
    assert seen["valid"] == (200, {"ok": True}) and seen["playing"]


def test_parse_camera_takes_poses_and_rig_cameras():
    assert parse_camera(b'{"yaw": 370, "pitch": -10, "distance": 2}', 3) == OrbitPose(
        10.0, -10.0, 2.0
    )
    assert parse_camera(b'{"camera": 2}', 3) == 2
    with pytest.raises(CameraMessageError, match="index below 3"):
        parse_camera(b'{"camera": 3}', 3)
    with pytest.raises(CameraMessageError, match=r"pitch must be within \[-80, 80\]"):
        parse_camera(b'{"yaw": 0, "pitch": 81, "distance": 1}', 3)


def test_a_2d_stream_has_no_orbit_and_its_frames_pass_through(tmp_path):
    clip = make_file(tmp_path / "flat.nvc", frames=25)

    async def go() -> dict:
        async with session(clip) as s:
            await asyncio.sleep(0.3)
            before = await s.orbit()
            status = await s.post({"yaw": 0, "pitch": 0, "distance": 1})
            same = np.array_equal(_pixels(s.view.page_hub.frame), _pixels(s.hub.frame))
            return {"before": before, "orbit": await s.orbit(), "status": status, "same": same}

    seen = run(go(), 60)
    assert seen["before"]["available"] is False and seen["orbit"]["available"] is False
    assert seen["status"] == (409, {"error": "this stream has no cameras to orbit"})
    assert seen["before"]["stats"]["camera_rejected"] == 0
    assert seen["orbit"]["stats"]["camera_rejected"] == 1
    assert seen["same"]


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.randint(-(10**30), 10**30)
    if kind == 2:
        return rng.choice([0, 1, 2, 3, -1, 79.9, 80.0, -80.0, 0.2, 5.0, 5.0001, 1e308, -0.0])
    if kind == 3:
        return rng.uniform(-400, 400)
    if kind == 4:
        return "".join(rng.choice('yawpitchdistancemr\\u0000"') for _ in range(rng.randrange(8)))
    if kind == 5:
        return rng.choice(["yaw", "pitch", "distance", "camera"])
    if kind == 6:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(3))]
    keys = ["yaw", "pitch", "distance", "camera", "x"]
    return {k: _random_json(rng, depth + 1) for k in rng.sample(keys, rng.randrange(1, 5))}


def test_parse_camera_refuses_random_messages_with_its_own_error_only():
    rng = random.Random(15)
    accepted = 0
    for _ in range(3000):
        body = json.dumps(_random_json(rng)).encode()
        if rng.random() < 0.2:  # bytes cut or flipped
            cut = bytearray(body[: rng.randrange(len(body) + 1)])
            if cut:
                cut[rng.randrange(len(cut))] = rng.randrange(256)
            body = bytes(cut)
        try:
            value = parse_camera(body, 3)
        except CameraMessageError as e:
            assert "\n" not in str(e)
            continue
        accepted += 1
        if isinstance(value, int):
            assert 0 <= value < 3
        else:
            assert -180 <= value.yaw <= 180 and -80 <= value.pitch <= 80
            assert 0.2 <= value.distance <= 5
    assert accepted > 0  # the generator does produce valid ones too

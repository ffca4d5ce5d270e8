"""The `--view` page's orbit view of free-viewpoint streams: the page moves the camera, the
player renders the scene from it.

A stream whose decoder is free-viewpoint (`FreeViewpoint`: it has a camera rig, a default
view and `render_view(camera)`, as the gaussian codec's 3D decoder does) can be watched
from any camera. The page asks `GET orbit` what the stream offers (the rig's cameras as
orbit poses, the limits) and sends the camera it wants to `POST camera`:

    {"yaw": 30.0, "pitch": 10.0, "distance": 1.2}    an orbit pose (nvc.player.orbit)
    {"camera": 2}                                    rig camera 2 as it is

The default camera means the stream's own pictures again. Anything else (not a JSON
object of exactly those fields, numbers that are not finite or out of range, a body over
MAX_MESSAGE bytes, another Content-Type than JSON, a stream that has no cameras) is
answered 4xx, counted in `camera_rejected`, and changes nothing.

While a camera other than the default is chosen, the presented frames are not shown:
the most recently decoded scene is rendered from the chosen camera instead, on the
decoder's worker thread (`Player.in_decoder_thread`: renders take their turn between
units, so they never see a half-decoded state and never run on the event loop), and the
picture goes to the page's video track. Requests are coalesced: one render at a time,
always of the latest camera; a render for a new frame of the stream (the scene moves)
waits at least as long as the previous render took, so renders take at most about half of
the decoder's thread. Pictures are at most `max_pixels` (nvc.player.orbit.view_size).
2D streams are not touched: their frames go to the page as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import statistics
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from aiohttp import web

from nvc.errors import NvcError
from nvc.media import Frame
from nvc.media.multiview import Camera
from nvc.player.orbit import DISTANCE_RANGE, MAX_VIEW_PIXELS, PITCH_LIMIT, OrbitPose, OrbitRig
from nvc.player.signaling import SignalingError, read_body
from nvc.player.site import json_error

if TYPE_CHECKING:
    from nvc.player.player import Player

log = logging.getLogger("nvc.player")

MAX_MESSAGE = 1024  # largest camera message, bytes
MAX_YAW = 3600.0  # largest |yaw| accepted, degrees (the page keeps it within +-180)
RENDER_TIMES = 100  # render times kept for the median


@runtime_checkable
class FreeViewpoint(Protocol):
    """A decoder that can render its current scene from any camera."""

    rig: list[Camera]  # the stream's cameras
    default_view: int  # index in rig of the camera decode() renders

    def render_view(self, camera: Camera) -> Frame:
        """The most recently decoded scene seen from `camera` (its size)."""
        ...


class CameraMessageError(NvcError):
    """A camera message the page should not have sent."""


def _reject_constant(name: str) -> float:
    raise CameraMessageError(f"{name} is not a number")


def _number(data: dict[str, Any], name: str, low: float, high: float) -> float:
    value = data[name]
    if type(value) not in (int, float):  # bool is an int, and not a number here
        raise CameraMessageError(f"{name} must be a number")
    value = float(value)
    if not (math.isfinite(value) and low <= value <= high):
        raise CameraMessageError(f"{name} must be within [{low:g}, {high:g}]")
    return value


def parse_camera(body: bytes, cameras: int) -> OrbitPose | int:
    """A camera message: an orbit pose, or the index of a rig camera (of `cameras`).
    CameraMessageError (one line) for anything else."""
    if len(body) > MAX_MESSAGE:
        raise CameraMessageError(f"a camera message is at most {MAX_MESSAGE} bytes")
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError):
        raise CameraMessageError("the body is not valid JSON") from None
    except RecursionError:
        raise CameraMessageError("the body's JSON is nested too deeply") from None
    if not isinstance(data, dict):
        raise CameraMessageError("a camera message is a JSON object")
    keys = set(data)
    if keys == {"camera"}:
        index = data["camera"]
        if type(index) is not int or not 0 <= index < cameras:
            raise CameraMessageError(f"camera must be an index below {cameras}")
        return index
    if keys == {"yaw", "pitch", "distance"}:
        yaw = _number(data, "yaw", -MAX_YAW, MAX_YAW)
        pitch = _number(data, "pitch", -PITCH_LIMIT, PITCH_LIMIT)
        distance = _number(data, "distance", *DISTANCE_RANGE)
        return OrbitPose(math.remainder(yaw, 360.0), pitch, distance)
    raise CameraMessageError('a camera message is {"yaw", "pitch", "distance"} or {"camera"}')


@dataclass
class OrbitStats:
    """What the orbit view did."""

    camera_messages: int = 0  # camera messages accepted
    camera_rejected: int = 0  # camera messages refused (malformed, out of range, no rig)
    renders: int = 0  # pictures rendered from a chosen camera
    render_errors: int = 0  # renders that failed (nothing decoded yet, the decoder refused)
    superseded: int = 0  # camera messages replaced by a newer one before their render
    render_ms: deque[float] = field(default_factory=lambda: deque(maxlen=RENDER_TIMES))

    def summary(self) -> dict[str, Any]:
        times = list(self.render_ms)
        out: dict[str, Any] = {k: v for k, v in self.__dict__.items() if k != "render_ms"}
        out["render_ms_median"] = round(statistics.median(times), 1) if times else None
        return out


class OrbitView:
    """The orbit view (see the module docstring): sits between the player's presented
    frames (`on_frame`) and the page's picture (`publish`)."""

    def __init__(
        self,
        publish: Callable[[Frame], None],
        *,
        max_pixels: int = MAX_VIEW_PIXELS,
        body_timeout: float = 10.0,
    ) -> None:
        self.publish = publish
        self.max_pixels = max_pixels
        self.body_timeout = body_timeout
        self.player: Player | None = None
        self.stats = OrbitStats()
        self.choice: OrbitPose | int | None = None  # None: the stream's own pictures
        self._choice_version = 0  # increases with every accepted camera message
        self._frames = 0  # frames presented so far
        self._last_frame: Frame | None = None
        self._done: tuple[int, int] = (0, 0)  # (choice version, frames) last rendered
        self._rendered_at = 0.0  # loop time the last render finished
        self._render_seconds = 0.0  # how long it took
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # the current decoder's rig (the list itself), what it holds, its orbit frame
        self._rig: tuple[list[Camera], tuple[int, str], OrbitRig] | None = None

    def watch(self, player: Player) -> None:
        """Render with this player's decoder."""
        self.player = player

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/orbit", self._get_orbit)
        app.router.add_post("/camera", self._post_camera)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None

    # ---- frames ----------------------------------------------------------------------

    def on_frame(self, frame: Frame) -> None:
        """A frame the player presents: to the page, or (a camera is chosen) a reason to
        render the scene again."""
        self._last_frame = frame
        self._frames += 1
        if self.choice is not None and self.orbit_rig() is not None:
            self._wake.set()
        else:
            self.publish(frame)

    def orbit_rig(self) -> OrbitRig | None:
        """The orbit frame of the current decoder's rig; None for a stream without one.
        Between two decoders (the player resumes at a random-access point) it is the last
        one's: the chosen camera stays, and no picture of the stream's own slips in."""
        player = self.player
        decoder = player.decoder if player is not None else None
        cached = self._rig
        if decoder is None:
            return cached[2] if cached is not None else None
        if not isinstance(decoder, FreeViewpoint):
            self._forget()
            return None
        rig = decoder.rig
        if cached is not None and cached[0] is rig:
            return cached[2]
        try:
            key = (decoder.default_view, json.dumps([c.to_json() for c in rig]))
            if cached is not None and cached[1] == key:  # a fresh decoder of the same rig
                self._rig = (rig, key, cached[2])
                return cached[2]
            orbit = OrbitRig.of(rig, decoder.default_view, self.max_pixels)
        except (NvcError, AttributeError, TypeError, ValueError) as e:
            log.info("the stream's cameras cannot be orbited: %s", e)
            self._forget()
            return None
        if cached is not None and self.choice is not None:  # a camera of another rig
            log.info("orbit view: the stream's cameras changed: back to the default view")
            self.choice = None
        self._rig = (rig, key, orbit)
        return orbit

    def _forget(self) -> None:
        """The stream has no cameras (any more): its own pictures again."""
        self._rig = None
        self.choice = None

    def _camera(self, rig: OrbitRig, choice: OrbitPose | int) -> Camera:
        return rig.rig_view(choice) if isinstance(choice, int) else rig.camera(choice)

    async def _render_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            rig = self.orbit_rig()  # first: a new rig sends the view back to the default
            choice, version, frames = self.choice, self._choice_version, self._frames
            player = self.player
            if choice is None or rig is None or player is None or (version, frames) == self._done:
                continue
            if version == self._done[0]:  # only the scene moved: keep renders at half duty
                wait = self._rendered_at + self._render_seconds - loop.time()
                if wait > 0:
                    with contextlib.suppress(TimeoutError):  # a camera message cuts it short
                        await asyncio.wait_for(self._wake.wait(), wait)
                    self._wake.set()  # and look again
                    continue
            try:
                await self._render(player, rig, choice, version, frames)
            except Exception as e:  # a fault of ours: counted, and the view goes on
                self.stats.render_errors += 1
                self._done = (version, frames)
                log.warning("orbit view: render failed: %s: %s", type(e).__name__, e)

    async def _render(
        self, player: Player, rig: OrbitRig, choice: OrbitPose | int, version: int, frames: int
    ) -> None:
        loop = asyncio.get_running_loop()
        camera = self._camera(rig, choice)
        decoder = player.decoder
        if not isinstance(decoder, FreeViewpoint):
            return
        start = loop.time()
        try:
            frame = await player.in_decoder_thread(lambda: decoder.render_view(camera))
            if not isinstance(frame, Frame) or (frame.width, frame.height) != (
                camera.width,
                camera.height,
            ):
                raise NvcError("the decoder rendered a picture of the wrong size")
        except Exception as e:  # CodecError before the first frame, a stopped player, ...
            self.stats.render_errors += 1
            self._done = (version, frames)
            log.info("orbit view: no render (%s: %s)", type(e).__name__, e)
            return
        self._rendered_at = loop.time()
        self._render_seconds = self._rendered_at - start
        self.stats.renders += 1
        self.stats.render_ms.append(1000 * self._render_seconds)
        self._done = (version, frames)
        if self.choice is not None:  # not sent back to the stream's pictures meanwhile
            self.publish(frame)
        if self._choice_version != version or self._frames != frames:
            self._wake.set()  # something newer came during the render

    # ---- HTTP ------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """GET orbit: what the page may ask for."""
        rig = self.orbit_rig()
        stats = self.stats.summary()
        if rig is None:
            return {"available": False, "stats": stats}
        cameras = []
        for cam in rig.cameras:
            pose = rig.pose_of(cam)
            cameras.append(
                {
                    "name": cam.name,
                    "yaw": round(pose.yaw, 4),
                    "pitch": round(pose.pitch, 4),
                    "distance": round(pose.distance, 4),
                }
            )
        choice = self.choice
        chosen: dict[str, Any] | None
        if choice is None:
            chosen = {"camera": rig.default}
        elif isinstance(choice, int):
            chosen = {"camera": choice}
        else:
            chosen = {"yaw": choice.yaw, "pitch": choice.pitch, "distance": choice.distance}
        view = rig.camera(OrbitPose(0.0, 0.0, 1.0))
        return {
            "available": True,
            "cameras": cameras,
            "default": rig.default,
            "pitch_limit": PITCH_LIMIT,
            "distance_range": list(DISTANCE_RANGE),
            "size": [view.width, view.height],
            "chosen": chosen,
            "stats": stats,
        }

    async def _get_orbit(self, request: web.Request) -> web.Response:
        return web.json_response(self.describe())

    def _refuse(self, status: int, message: str, *, close: bool = False) -> web.Response:
        self.stats.camera_rejected += 1
        log.info("orbit view: camera message refused: %s", message)
        return json_error(status, message, close=close)

    async def _post_camera(self, request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            return self._refuse(415, "Content-Type must be application/json")
        try:
            body = await read_body(request, limit=MAX_MESSAGE, timeout=self.body_timeout)
        except SignalingError as e:
            return self._refuse(e.status, e.message, close=e.status in (408, 413))
        rig = self.orbit_rig()
        if rig is None:
            return self._refuse(409, "this stream has no cameras to orbit")
        try:
            choice = parse_camera(body, len(rig.cameras))
        except CameraMessageError as e:
            return self._refuse(400, str(e))
        if self._done[0] != self._choice_version and self.choice is not None:
            self.stats.superseded += 1  # the previous one was never rendered
        self.stats.camera_messages += 1
        self._choice_version += 1
        if choice == rig.default:  # the default camera: the stream's own pictures again
            self.choice = None
            self._done = (self._choice_version, self._frames)
            if self._last_frame is not None:
                self.publish(self._last_frame)
        else:
            self.choice = choice
            if self._task is None:
                self._task = asyncio.create_task(self._render_loop(), name="nvc-view-orbit")
            self._wake.set()
        return web.json_response({"ok": True})

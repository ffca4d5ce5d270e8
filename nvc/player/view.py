"""`nvc play --view`: watch the decoded video in a browser.

The player publishes each presented frame to a `FrameHub`; a small local web server
(`ViewServer`, 127.0.0.1) serves a page (view_page.py) whose script makes a WebRTC offer
to it and plays the answer's video track, an aiortc `VideoStreamTrack` (`HubTrack`) that
sends the latest presented frame, encoded by aiortc like any camera track (VP8 or H.264,
whatever the browser picks).

Routes: `GET /` the page; `POST /offer` its offer; `GET /stats` the player's state and
numbers for the page (`player_report`); `POST /status` the page's playback state (current
time, frames decoded, a luma sample of the picture, twice a second), which `GET /status`
returns, so a person or a test can see that the browser really plays. `GET /orbit` and
`POST /camera`: the orbit view of free-viewpoint streams (orbit_view.py).

A page's peer that does not connect within `offer_timeout` is closed and frees its slot
(at most `max_peers` at once); one whose connection fails or closes (the tab went away)
is closed too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import av
from aiohttp import web
from aiortc import MediaStreamTrack, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import MediaStreamError

from nvc.bitstream import SequenceHeader
from nvc.codec import registry
from nvc.errors import NvcError
from nvc.media import Frame
from nvc.media.pyav_io import av_frame_from
from nvc.player import rtc
from nvc.player.orbit_view import OrbitView
from nvc.player.signaling import Offer, SignalingError, offer_route, read_body
from nvc.player.site import GuardedSite, HttpLimits, json_error, new_app, start_site
from nvc.player.view_page import PAGE

if TYPE_CHECKING:
    from nvc.player.player import Player

log = logging.getLogger("nvc.player")

VIDEO_TIME_BASE = Fraction(1, 90000)  # RTP video clock
REPEAT_AFTER = 0.5  # seconds without a new frame before the last one is sent again
MAX_STATUS = 4096  # largest status report, bytes
MAX_PEERS = 4  # browser tabs at once
OFFER_TIMEOUT = 10.0  # seconds for a page's peer to connect before it is closed


class FrameHub:
    """The latest presented frame, and a way to wait for the next one."""

    def __init__(self) -> None:
        self.frame: Frame | None = None
        self.version = 0  # increases with every frame published
        self._event = asyncio.Event()

    def publish(self, frame: Frame) -> None:
        self.frame = frame
        self.version += 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait_newer(self, version: int, timeout: float) -> bool:
        """Wait until a frame newer than `version` is published; False on timeout."""
        if self.version > version:
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)
        return self.version > version


def to_video_frame(frame: Frame) -> av.VideoFrame:
    """An 8-bit 4:2:0 PyAV frame (what WebRTC encoders take) of even size."""
    image = av_frame_from(frame)
    width, height = max(2, frame.width & ~1), max(2, frame.height & ~1)
    if image.format.name != "yuv420p" or (width, height) != (frame.width, frame.height):
        image = image.reformat(width=width, height=height, format="yuv420p")
    return image


class HubTrack(VideoStreamTrack):
    """A video track that sends the hub's frames as they are presented."""

    def __init__(self, hub: FrameHub) -> None:
        super().__init__()
        self.hub = hub
        self._version = 0
        self._t0: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        await self.hub.wait_newer(self._version, REPEAT_AFTER)
        frame = self.hub.frame
        self._version = self.hub.version
        if frame is not None:
            image = to_video_frame(frame)  # a new object each time: the encoder owns it
        else:  # nothing presented yet: black, to get the connection going
            image = av.VideoFrame(320, 180, "yuv420p")
            for plane, value in zip(image.planes, (16, 128, 128), strict=True):
                plane.update(bytes([value]) * plane.buffer_size)
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        image.pts = int((now - self._t0) * 90000)
        image.time_base = VIDEO_TIME_BASE
        return image


def model_label(header: SequenceHeader) -> str:
    """What model decodes the stream, in a few words (the codec's summary by default)."""
    name = registry.name_of(header.codec_id)
    if name == "fm":
        from nvc.codec.conditional.codec import FmParams  # torch: loaded by the decoder anyway

        try:
            params = FmParams.from_bytes(header.codec_params)
        except NvcError:
            return "unreadable fm parameters"
        return f"{params.variant}, weights {params.weights_hash.hex()[:12]}"
    try:
        return registry.get(header.codec_id).summary
    except NvcError:
        return f"unknown (codec id {header.codec_id})"


REPORTED = (  # PlayerStats.summary() fields the page shows
    "frames_presented",
    "frames_late",
    "frames_dropped",
    "units_lost",
    "units_skipped",
    "decode_fps",
    "bitrate_kbps",
    "latency_ms_median",
    "latency_ms_p95",
)


def player_report(player: Player | None) -> dict[str, Any]:
    """The player's state for the page: `state` is connecting (no answer from the server
    yet), waiting (connected, nothing shown yet), playing or ended (`message`: why)."""
    if player is None:
        return {"state": "connecting", "message": "", "stream": None, "live": None, "stats": {}}
    summary = player.stats.summary()
    header = player.header
    if player.stats.end_reason:
        state = "ended"
    elif player.stats.frames_presented:
        state = "playing"
    elif player.hello is not None or header is not None:
        state = "waiting"
    else:
        state = "connecting"
    stream = None
    if header is not None:
        stream = {
            "codec": registry.name_of(header.codec_id) or f"id {header.codec_id}",
            "model": model_label(header),
            "width": header.width,
            "height": header.height,
            "fps": round(float(header.fps), 3),
        }
    return {
        "state": state,
        "message": player.stats.end_reason,
        "stream": stream,
        "live": player.hello.live if player.hello is not None else None,
        "stats": {k: summary.get(k) for k in REPORTED},
    }


class ViewServer:
    """The local page and its WebRTC peers (see the module docstring)."""

    def __init__(
        self,
        hub: FrameHub,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: HttpLimits | None = None,
        offer_timeout: float = OFFER_TIMEOUT,
        max_peers: int = MAX_PEERS,
    ) -> None:
        self.hub = hub
        self.host, self.port = host, port
        self.limits = limits or HttpLimits()
        self.offer_timeout = offer_timeout
        self.max_peers = max_peers
        self.url: str | None = None
        self.site: GuardedSite | None = None  # the listening site (sockets, connections)
        self.player: Player | None = None  # whose state GET /stats reports
        self.status: dict[str, Any] | None = None  # the page's last report
        self.reports = 0  # reports received
        # what the page's tracks send: the hub's frames, through the orbit view (which, for
        # a free-viewpoint stream, shows the scene from the camera the page chose instead)
        self.page_hub = FrameHub()
        self.orbit = OrbitView(self.page_hub.publish, body_timeout=self.limits.body_timeout)
        self._forwarder: asyncio.Task[None] | None = None
        self._peers: set[Any] = set()
        self._tracks: set[MediaStreamTrack] = set()
        self._timers: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None

    def watch(self, player: Player) -> None:
        """Report this player's state and numbers on the page (and render with it)."""
        self.player = player
        self.orbit.watch(player)

    @property
    def peers(self) -> int:
        return len(self._peers)

    async def start(self) -> str:
        app = new_app(self.limits)
        app.router.add_get("/", self._page)
        app.router.add_post(
            "/offer",
            offer_route(self._on_offer, need="video", body_timeout=self.limits.body_timeout),
        )
        app.router.add_get("/stats", self._get_stats)
        app.router.add_post("/status", self._post_status)
        app.router.add_get("/status", self._get_status)
        self.orbit.add_routes(app)
        self._runner, self.site, url = await start_site(app, self.host, self.port, self.limits)
        self._forwarder = asyncio.create_task(self._forward(), name="nvc-view-frames")
        self.url = url + "/"
        return self.url

    async def close(self) -> None:
        if self._forwarder is not None:
            self._forwarder.cancel()
            await asyncio.gather(self._forwarder, return_exceptions=True)
            self._forwarder = None
        await self.orbit.close()
        for timer in list(self._timers):
            timer.cancel()
        await asyncio.gather(*self._timers, return_exceptions=True)
        for pc in list(self._peers):
            await self._drop(pc)
        self._peers.clear()
        self._tracks.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _forward(self) -> None:
        """The presented frames to the orbit view, which passes them on to the page."""
        version = 0
        while True:
            if await self.hub.wait_newer(version, REPEAT_AFTER) and self.hub.frame is not None:
                version = self.hub.version
                self.orbit.on_frame(self.hub.frame)

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def _drop(self, pc: Any) -> None:
        for sender in pc.getSenders():
            if sender.track is not None:
                sender.track.stop()
                self._tracks.discard(sender.track)
        self._peers.discard(pc)
        with contextlib.suppress(Exception):
            await pc.close()

    async def _expire(self, pc: Any) -> None:
        """Close a page's peer that has not connected within offer_timeout."""
        try:
            await asyncio.sleep(self.offer_timeout)
            if pc in self._peers and pc.connectionState != "connected":
                log.info("a view page did not connect within %g s: dropped", self.offer_timeout)
                await self._drop(pc)
        finally:
            self._timers.discard(asyncio.current_task())

    async def _on_offer(self, offer: Offer) -> dict[str, Any]:
        if len(self._peers) >= self.max_peers:
            raise SignalingError(503, f"at most {self.max_peers} pages at once")
        pc = rtc.new_peer()
        track = HubTrack(self.page_hub)
        self._peers.add(pc)
        self._tracks.add(track)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed") and pc in self._peers:
                await self._drop(pc)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(offer.sdp, "offer"))
            pc.addTrack(track)
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as e:  # aiortc rejects what it cannot use with assorted errors
            track.stop()
            self._tracks.discard(track)
            self._peers.discard(pc)
            await pc.close()
            raise SignalingError(400, f"cannot use the offer: {' '.join(str(e).split())}") from None
        timer = asyncio.create_task(self._expire(pc), name="nvc-view-offer-timeout")
        self._timers.add(timer)
        return {"type": "answer", "sdp": pc.localDescription.sdp}

    async def _get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(player_report(self.player))

    async def _post_status(self, request: web.Request) -> web.Response:
        try:
            body = await read_body(request, limit=MAX_STATUS, timeout=self.limits.body_timeout)
        except SignalingError as e:
            return json_error(e.status, e.message, close=e.status in (408, 413))
        try:
            status = json.loads(body)
        except ValueError:
            return json_error(400, "the body is not valid JSON")
        except RecursionError:  # "[[[[..." deeper than the parser's stack
            return json_error(400, "the body's JSON is nested too deeply")
        if not isinstance(status, dict):
            return json_error(400, "the body must be a JSON object")
        self.status = status
        self.reports += 1
        return web.json_response({"ok": True})

    async def _get_status(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"page": self.status, "reports": self.reports, "peers": len(self._peers)}
        )

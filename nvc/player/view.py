"""`nvc play --view`: watch the decoded video in a browser.

The player publishes each presented frame to a `FrameHub`; a small local web server
(`ViewServer`, 127.0.0.1) serves a page whose script makes a WebRTC offer to it and
plays the answer's video track, an aiortc `VideoStreamTrack` (`HubTrack`) that sends the
latest presented frame, encoded by aiortc like any camera track (VP8 or H.264, whatever
the browser picks). The page reports its playback state (current time, frames decoded,
a luma sample of the picture) to `POST /status` twice a second; `GET /status` returns
the last report, so a person or a test can see that the browser really plays.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from fractions import Fraction
from typing import Any

import av
from aiohttp import web
from aiortc import MediaStreamTrack, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import MediaStreamError

from nvc.media import Frame
from nvc.media.pyav_io import av_frame_from
from nvc.player import rtc
from nvc.player.signaling import (
    Offer,
    SignalingError,
    json_error,
    new_app,
    offer_route,
    start_site,
)

log = logging.getLogger("nvc.player")

VIDEO_TIME_BASE = Fraction(1, 90000)  # RTP video clock
REPEAT_AFTER = 0.5  # seconds without a new frame before the last one is sent again
MAX_STATUS = 4096  # largest status report, bytes
MAX_PEERS = 4  # browser tabs at once


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


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>nvc view</title>
<style>
 body { background: #111; color: #ddd; font: 14px system-ui, sans-serif; margin: 1em; }
 video { max-width: 100%; background: #000; display: block; }
 #state { margin-top: .5em; white-space: pre; font-family: monospace; }
</style></head>
<body>
<video id="video" autoplay muted playsinline></video>
<div id="state">connecting...</div>
<script>
"use strict";
const video = document.getElementById("video");
const state = document.getElementById("state");
const canvas = document.createElement("canvas");
canvas.width = 32; canvas.height = 18;
let pc = null;

async function connect() {
  pc = new RTCPeerConnection({iceServers: []});
  pc.addTransceiver("video", {direction: "recvonly"});
  pc.ontrack = (e) => {
    video.srcObject = e.streams[0] || new MediaStream([e.track]);
    video.play().catch(() => {});
  };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((done) => {
    if (pc.iceGatheringState === "complete") return done();
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") done();
    });
    setTimeout(done, 3000);
  });
  const response = await fetch("offer", {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({type: "offer", sdp: pc.localDescription.sdp}),
  });
  if (!response.ok) throw new Error("offer refused: HTTP " + response.status);
  await pc.setRemoteDescription(await response.json());
}

function sample() {
  if (video.readyState < 2 || !video.videoWidth) return null;
  const ctx = canvas.getContext("2d", {willReadFrequently: true});
  ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
  const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let sum = 0, sum2 = 0, n = 0;
  for (let i = 0; i < px.length; i += 4) {
    const y = 0.2126 * px[i] + 0.7152 * px[i + 1] + 0.0722 * px[i + 2];
    sum += y; sum2 += y * y; n += 1;
  }
  const mean = sum / n;
  return {mean: mean, std: Math.sqrt(Math.max(0, sum2 / n - mean * mean))};
}

async function report() {
  const quality = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
  const status = {
    currentTime: video.currentTime,
    paused: video.paused,
    readyState: video.readyState,
    width: video.videoWidth,
    height: video.videoHeight,
    framesDecoded: quality ? quality.totalVideoFrames : null,
    connection: pc ? pc.connectionState : "new",
    sample: sample(),
  };
  state.textContent = JSON.stringify(status, null, 1);
  try {
    await fetch("status", {method: "POST", headers: {"Content-Type": "application/json"},
                           body: JSON.stringify(status)});
  } catch (e) { /* the player has stopped */ }
}

connect().catch((e) => { state.textContent = "error: " + e; });
setInterval(report, 500);
</script>
</body></html>
"""


class ViewServer:
    """The local page and its WebRTC peers (see the module docstring)."""

    def __init__(self, hub: FrameHub, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.hub = hub
        self.host, self.port = host, port
        self.url: str | None = None
        self.status: dict[str, Any] | None = None  # the page's last report
        self.reports = 0  # reports received
        self._peers: set[Any] = set()
        self._tracks: set[MediaStreamTrack] = set()
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = new_app()
        app.router.add_get("/", self._page)
        app.router.add_post("/offer", offer_route(self._on_offer, need="video"))
        app.router.add_post("/status", self._post_status)
        app.router.add_get("/status", self._get_status)
        self._runner, url = await start_site(app, self.host, self.port)
        self.url = url + "/"
        return self.url

    async def close(self) -> None:
        for track in list(self._tracks):
            track.stop()
        for pc in list(self._peers):
            await pc.close()
        self._peers.clear()
        self._tracks.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def _on_offer(self, offer: Offer) -> dict[str, Any]:
        if len(self._peers) >= MAX_PEERS:
            raise SignalingError(503, f"at most {MAX_PEERS} pages at once")
        pc = rtc.new_peer()
        track = HubTrack(self.hub)
        self._peers.add(pc)
        self._tracks.add(track)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                track.stop()
                self._tracks.discard(track)
                self._peers.discard(pc)
                await pc.close()

        try:
            await pc.setRemoteDescription(RTCSessionDescription(offer.sdp, "offer"))
            pc.addTrack(track)
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as e:
            track.stop()
            self._tracks.discard(track)
            self._peers.discard(pc)
            await pc.close()
            raise SignalingError(400, f"cannot use the offer: {' '.join(str(e).split())}") from None
        return {"type": "answer", "sdp": pc.localDescription.sdp}

    async def _post_status(self, request: web.Request) -> web.Response:
        body = await request.content.read(MAX_STATUS + 1)
        if len(body) > MAX_STATUS:
            return json_error(413, "status report too large")
        try:
            status = json.loads(body)
        except ValueError:
            return json_error(400, "the body is not valid JSON")
        if not isinstance(status, dict):
            return json_error(400, "the body must be a JSON object")
        self.status = status
        self.reports += 1
        return web.json_response({"ok": True})

    async def _get_status(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"page": self.status, "reports": self.reports, "peers": len(self._peers)}
        )

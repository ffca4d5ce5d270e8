"""The streaming server behind `nvc serve` and `nvc live`.

    server = StreamServer(FileSource("clip.nvc"), ServeConfig(port=0))
    url = await server.start()            # http://127.0.0.1:PORT
    ...
    await server.close()

HTTP: `GET /` is a JSON description of the stream and its viewers; `POST /offer` is the
signaling endpoint (nvc.player.signaling). Each offer becomes one aiortc peer with one
data channel, negotiated out of band (label "nvc", id 0, created by both sides; the
server's reliability settings govern what it sends), on which the broadcast
(nvc.player.broadcast) sends the stream. A viewer is removed and its peer closed when
its channel closes, its connection fails, its channel does not open in time
(`open_timeout`: an offer that never connects frees its slot then), or, after the end of
the stream, when it hangs up (or a grace period passes). `max_connecting` can keep
connecting peers from taking every `max_viewers` slot. The HTTP limits (timeouts, the
connection cap, the Host/Origin check) are nvc.player.site's.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiortc import RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from nvc.bitstream import SequenceHeader
from nvc.codec import registry
from nvc.player import rtc, wire
from nvc.player.broadcast import Broadcast, ViewerConfig
from nvc.player.signaling import Offer, SignalingError, offer_route
from nvc.player.site import GuardedSite, HttpLimits, new_app, start_site
from nvc.player.source import UnitSource

log = logging.getLogger("nvc.player")


@dataclass(frozen=True)
class ServeConfig:
    """Where and how the server listens."""

    host: str = "127.0.0.1"  # address to bind; loopback unless told otherwise
    port: int = 8080  # TCP port (0: any free port)
    max_viewers: int = 16  # peers at once (connecting ones included); more get 503
    max_connecting: int | None = None  # peers whose channel is not open yet (None: any)
    open_timeout: float = 10.0  # seconds for a viewer's channel to open before it is dropped
    end_grace: float = 5.0  # seconds to wait for a viewer to hang up after the stream's end
    wait_for: int = 1  # viewers that must be connected before a run starts
    http: HttpLimits = field(default_factory=HttpLimits)  # header/body timeouts, caps, hosts


def header_info(header: SequenceHeader | None) -> dict[str, Any] | None:
    if header is None:
        return None
    return {
        "codec": registry.name_of(header.codec_id) or header.codec_id,
        "width": header.width,
        "height": header.height,
        "fps": str(header.fps),
        "pix_fmt": header.pix_fmt,
        "full_range": header.full_range,
        "frame_count": header.frame_count,
    }


class _Peer:
    def __init__(self, pc: RTCPeerConnection) -> None:
        self.pc = pc
        self.task: asyncio.Task[None] | None = None
        self.connecting = True  # its channel has not opened yet


class StreamServer:
    """Signaling plus a broadcast of one source (see the module docstring)."""

    def __init__(
        self,
        source: UnitSource,
        viewer_config: ViewerConfig | None = None,
        config: ServeConfig | None = None,
    ) -> None:
        self.source = source
        self.config = config or ServeConfig()
        vc = viewer_config or ViewerConfig()
        if vc.live != source.live:
            vc = dataclasses.replace(vc, live=source.live)
        self.viewer_config = vc
        self.broadcast = Broadcast(source, vc, wait_for=self.config.wait_for)
        self.peers: set[_Peer] = set()
        self.url: str | None = None
        self.site: GuardedSite | None = None  # the listening site (sockets, connections)
        self._runner: web.AppRunner | None = None
        self._closing = False

    async def start(self) -> str:
        """Start listening; returns the base URL viewers are given."""
        limits = self.config.http
        app = new_app(limits)
        app.router.add_get("/", self._get_info)
        app.router.add_post(
            "/offer",
            offer_route(self._on_offer, need="application", body_timeout=limits.body_timeout),
        )
        self._runner, self.site, self.url = await start_site(
            app, self.config.host, self.config.port, limits
        )
        return self.url

    async def close(self) -> None:
        """Hang up on every viewer, stop the stream and the HTTP server."""
        self._closing = True
        await self.broadcast.close()
        tasks = [p.task for p in self.peers if p.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for peer in list(self.peers):
            await peer.pc.close()
        self.peers.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def info(self) -> dict[str, Any]:
        header = self.broadcast.header or getattr(self.source, "header", None)
        vc = self.viewer_config
        return {
            "name": "nvc",
            "protocol": wire.PROTOCOL,
            "offer": "POST /offer",
            "stream": header_info(header),
            "source": self.source.describe(),
            "channel": {"ordered": vc.ordered, "max_retransmits": vc.max_retransmits},
            "peers": len(self.peers),
            "broadcast": self.broadcast.summary(),
        }

    async def _get_info(self, request: web.Request) -> web.Response:
        return web.json_response(self.info())

    async def _on_offer(self, offer: Offer) -> dict[str, Any]:
        if self._closing:
            raise SignalingError(503, "the server is shutting down")
        if len(self.peers) >= self.config.max_viewers:
            raise SignalingError(503, f"the server is full ({self.config.max_viewers} viewers)")
        connecting = sum(p.connecting for p in self.peers)
        if self.config.max_connecting is not None and connecting >= self.config.max_connecting:
            raise SignalingError(
                503, f"{connecting} viewers are connecting already: try again in a few seconds"
            )
        pc = rtc.new_peer()
        peer = _Peer(pc)
        self.peers.add(peer)
        vc = self.viewer_config
        try:
            await pc.setRemoteDescription(RTCSessionDescription(offer.sdp, "offer"))
            channel = pc.createDataChannel(
                rtc.CHANNEL_LABEL,
                negotiated=True,
                id=rtc.CHANNEL_ID,
                ordered=vc.ordered,
                maxRetransmits=vc.max_retransmits,
            )
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as e:  # aiortc rejects what it cannot use with assorted errors
            self.peers.discard(peer)
            await pc.close()
            text = " ".join(str(e).split()) or type(e).__name__
            raise SignalingError(400, f"cannot use the offer: {text}") from None
        peer.task = asyncio.create_task(self._serve_peer(peer, channel), name="nvc-peer")
        return {
            "type": "answer",
            "sdp": pc.localDescription.sdp,
            "channel": {
                "label": rtc.CHANNEL_LABEL,
                "id": rtc.CHANNEL_ID,
                "ordered": vc.ordered,
                "max_retransmits": vc.max_retransmits,
            },
            "live": self.source.live,
        }

    async def _serve_peer(self, peer: _Peer, channel: RTCDataChannel) -> None:
        pc = peer.pc
        opened = asyncio.Event()
        gone = asyncio.Event()

        def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                gone.set()

        channel.on("open", opened.set)
        channel.on("close", gone.set)
        pc.on("connectionstatechange", on_state)
        viewer = None
        try:
            if not await _first(opened, gone, timeout=self.config.open_timeout) or gone.is_set():
                log.info(
                    "a viewer's channel did not open within %g s: dropped",
                    self.config.open_timeout,
                )
                return
            peer.connecting = False
            viewer = self.broadcast.add(channel)
            log.info("viewer %d joined (%d watching)", viewer.number, len(self.broadcast.viewers))
            await _first(viewer.done, gone)
            if not gone.is_set():  # the stream ended: let the player hang up first
                await _first(gone, timeout=self.config.end_grace)
        finally:
            if viewer is not None:
                self.broadcast.remove(viewer)
                log.info("viewer %d left", viewer.number)
            with contextlib.suppress(Exception):
                await asyncio.shield(pc.close())
            self.peers.discard(peer)


async def _first(*events: asyncio.Event, timeout: float | None = None) -> bool:
    """Wait until one of `events` is set; False on timeout."""
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        return bool(done)
    finally:
        for w in waiters:
            w.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)

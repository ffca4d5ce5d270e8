"""`nvc play --view`: the local page, its video track, its peers, and a real headless Chromium."""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
from fractions import Fraction
from pathlib import Path

import aiohttp
import pytest
from aiortc import RTCSessionDescription

from nvc.media import synthetic_clip
from nvc.player import rtc
from nvc.player.player import Player, PlayerConfig
from nvc.player.server import ServeConfig, StreamServer
from nvc.player.source import FileSource
from nvc.player.view import FrameHub, HubTrack, ViewServer, player_report, to_video_frame
from tests.player.browser import INSTALL, Browser, chromium, chromium_decision
from tests.player.helpers import make_file, run

MAX_SCREENSHOT = 200 * 1024  # bytes: the README's screenshot is committed


def test_frames_become_even_sized_8_bit_420_video_frames():
    frame = synthetic_clip(67, 39, 1, format="yuv420p10le")[0]
    image = to_video_frame(frame)
    assert (image.width, image.height, image.format.name) == (66, 38, "yuv420p")
    rgb = synthetic_clip(32, 16, 1, format="rgb24")[0]
    assert to_video_frame(rgb).format.name == "yuv420p"


def test_the_track_sends_each_published_frame_and_repeats_the_last():
    async def go():
        hub = FrameHub()
        track = HubTrack(hub)
        first = await track.recv()  # nothing yet: a black frame after a wait
        clip = synthetic_clip(32, 16, 2, fps=Fraction(25))
        hub.publish(clip[0])
        a = await track.recv()
        hub.publish(clip[1])
        b = await track.recv()
        c = await track.recv()  # no new frame: the last one again
        track.stop()
        return first, a, b, c

    first, a, b, c = run(go(), 10)
    assert (first.width, a.width) == (320, 32)
    assert b.pts >= a.pts and c.pts > b.pts


@pytest.mark.parametrize(
    ("env", "on_path", "files", "action"),
    [
        ({}, "/opt/bin/chromium", set(), "run"),  # on PATH
        ({}, None, {"/usr/bin/chromium"}, "run"),  # Debian's, not on PATH
        ({}, None, set(), "skip"),  # none, not CI: skip with the install command
        ({"CI": "true"}, None, set(), "fail"),  # none under CI: fail, never skip
        ({"CI": "1"}, None, set(), "fail"),
        ({"CI": "false"}, None, set(), "skip"),
        ({"CI": "true"}, None, {"/usr/bin/chromium"}, "run"),
        ({"NVC_CHROMIUM": "/x/chrome"}, None, {"/x/chrome"}, "run"),
        ({"NVC_CHROMIUM": "/x/chrome"}, "/opt/bin/chromium", set(), "fail"),  # a wrong setting
    ],
)
def test_the_browser_test_skips_only_outside_ci(env, on_path, files, action):
    decision = chromium_decision(env, which=lambda name: on_path, is_file=files.__contains__)
    assert decision.action == action
    if action == "run":
        assert decision.path == env.get("NVC_CHROMIUM", on_path or "/usr/bin/chromium")
    elif action == "skip":
        assert INSTALL in decision.reason and "\n" not in decision.reason
        assert "apt-get install chromium" in decision.reason
    elif "NVC_CHROMIUM" not in env:
        assert INSTALL in decision.reason and "CI" in decision.reason


def test_the_report_says_connecting_before_the_player_has_an_answer():
    report = player_report(None)
    assert report["state"] == "connecting" and report["stream"] is None
    player = Player(PlayerConfig("http://127.0.0.1:9/"))
    report = player_report(player)
    assert report["state"] == "connecting" and report["stats"]["frames_presented"] == 0


async def _video_offer() -> tuple[object, str]:
    """An aiortc peer with a receive-only video offer, as the page makes."""
    pc = rtc.new_peer()
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


def test_view_pages_are_limited_unconnected_ones_expire_and_gone_ones_free_their_slot():
    async def go():
        hub = FrameHub()
        view = ViewServer(hub, offer_timeout=2.0)
        page = await view.start()
        clients = []
        statuses = []
        try:
            async with aiohttp.ClientSession() as http:

                async def offer(sdp: str) -> tuple[int, dict]:
                    body = {"type": "offer", "sdp": sdp}
                    async with http.post(page + "offer", json=body) as r:
                        return r.status, await r.json()

                offers = [await _video_offer() for _ in range(view.max_peers + 1)]
                for pc, sdp in offers:  # answered, never connected
                    clients.append(pc)
                    statuses.append((await offer(sdp))[0])
                full = view.peers
                loop = asyncio.get_running_loop()
                t0 = loop.time()
                while view.peers and loop.time() - t0 < 5:
                    await asyncio.sleep(0.05)
                expired_after = loop.time() - t0
                left = view.peers
                # a page that connects, then goes away
                hub.publish(synthetic_clip(64, 48, 1)[0])
                pc, sdp = await _video_offer()
                clients.append(pc)
                got = asyncio.Event()

                @pc.on("track")
                def on_track(track):
                    async def pull():
                        await track.recv()
                        got.set()

                    asyncio.ensure_future(pull())

                status, answer = await offer(sdp)
                await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
                await asyncio.wait_for(got.wait(), 10)
                await asyncio.sleep(2.2)  # past offer_timeout: a connected page stays
                connected = view.peers
                await pc.close()
                t0 = loop.time()
                while view.peers and loop.time() - t0 < 5:
                    await asyncio.sleep(0.05)
                freed_after = loop.time() - t0
        finally:
            for pc in clients:
                await pc.close()
            await view.close()
        return statuses, full, expired_after, left, status, connected, view.peers, freed_after

    statuses, full, expired_after, left, status, connected, after, freed_after = run(go(), 40)
    assert statuses == [200] * 4 + [503]  # at most 4 pages (MAX_PEERS)
    assert full == 4
    assert left == 0 and 1.0 < expired_after < 3.5  # unconnected: dropped at offer_timeout
    assert status == 200 and connected == 1
    assert after == 0 and freed_after < 3.0


NUMBER = r"\d+(\.\d+)?"


def _change(first: list[int], second: list[int]) -> float:
    """Mean absolute difference of two luma samples."""
    return sum(abs(a - b) for a, b in zip(first, second, strict=True)) / len(first)


def _quantized_png(png: bytes) -> bytes:
    """The screenshot with a 256-colour palette: small enough to commit."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    out = io.BytesIO()
    image.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(out, "PNG", optimize=True)
    return out.getvalue()


def test_headless_chromium_shows_the_view_page(tmp_path):
    browser = chromium()
    clip = make_file(tmp_path / "view.nvc", frames=50, size=(256, 144), seed=4)
    screenshot = tmp_path / "player.png"

    async def go():
        server = StreamServer(FileSource(clip, loop=True), config=ServeConfig(port=0))
        url = await server.start()
        hub = FrameHub()
        view = ViewServer(hub)
        page = await view.start()
        player = Player(PlayerConfig(url, duration=60), on_frame=hub.publish)
        playing: asyncio.Task | None = None
        seen: dict = {}
        try:
            async with Browser(browser, page) as b:
                # before the player runs: a clear "connecting" state, no picture yet
                seen["connecting"] = await b.wait_for(
                    "badge.dataset.state === 'connecting' && !overlay.hidden && "
                    "[badge.textContent, overlay.textContent]",
                    15,
                    "the connecting state",
                )
                view.watch(player)
                playing = asyncio.create_task(player.run())
                await b.wait_for("badge.dataset.state === 'playing'", 30, "playback")
                await asyncio.sleep(1.0)  # let the numbers settle
                first = await b.evaluate("nvcSample()")
                for _ in range(50):  # the picture moves (within 10 s on a busy machine)
                    await asyncio.sleep(0.2)
                    second = await b.evaluate("nvcSample()")
                    if _change(first, second) > 1.0:
                        break
                seen["samples"] = (first, second)
                seen["fields"] = await b.evaluate(
                    "Object.fromEntries([...document.querySelectorAll('dd')]"
                    ".map((d) => [d.id, d.textContent]))"
                )
                seen["text"] = await b.evaluate("document.body.innerText")
                seen["presented"] = player.stats.frames_presented
                # pause: the picture and the clock stop; play: they go on
                await b.click("#playpause")
                seen["paused"] = await b.wait_for(
                    "video.paused && badge.dataset.state === 'paused' && "
                    "[button.textContent, video.currentTime]",
                    5,
                    "pausing",
                )
                frozen = await b.evaluate("nvcSample()")
                await asyncio.sleep(1.0)
                seen["still"] = (
                    frozen,
                    await b.evaluate("nvcSample()"),
                    await b.evaluate("video.currentTime"),
                )
                await b.click("#playpause")
                await b.wait_for(
                    "!video.paused && badge.dataset.state === 'playing'", 5, "playing again"
                )
                t0 = await b.evaluate("video.currentTime")
                await asyncio.sleep(1.0)
                seen["resumed"] = (t0, await b.evaluate("video.currentTime"))
                seen["screenshot"] = await b.screenshot()  # playing, numbers settled
                # the stream server goes away: the player ends, the page says so
                await server.close()
                seen["ended"] = await b.wait_for(
                    "badge.dataset.state === 'ended' && message.textContent", 20, "the end"
                )
                await playing
                await view.close()  # the player is gone (as `nvc play --view` exits)
                seen["error"] = await b.wait_for(
                    "badge.dataset.state === 'error' && !overlay.hidden && overlay.textContent",
                    10,
                    "the error state",
                )
        finally:
            player.stop()
            if playing is not None:
                await playing
            await view.close()
            await server.close()
        return seen

    seen = run(go(), 90)
    badge, overlay = seen["connecting"]
    assert badge == "Connecting" and "Connecting" in overlay
    first, second = seen["samples"]
    assert first and second and len(first) == 32 * 18
    mean = sum(second) / len(second)
    std = (sum((v - mean) ** 2 for v in second) / len(second)) ** 0.5
    assert std > 5 and 20 < mean < 240, f"blank picture: mean {mean}, std {std}"
    change = _change(first, second)
    assert change > 1.0, f"the picture does not change ({change:.2f})"

    fields = seen["fields"]
    assert fields["codec"] == "lossless" and "FFV1" in fields["model"]
    assert fields["picture"] == "256\u00d7144 at 25 fps"
    assert fields["source"] == "file"
    assert re.fullmatch(NUMBER + r" (kbit|Mbit)/s", fields["bitrate"]), fields
    assert re.fullmatch(r"\d+ fps", fields["decode"]), fields
    assert re.fullmatch(r"\d+ ms \(p95 \d+\)", fields["latency"]), fields
    assert 0 < int(fields["shown"]) <= seen["presented"]
    for name in ("late", "dropped", "lost"):
        assert fields[name].isdigit(), fields
    text = seen["text"]
    assert "{" not in text and "readyState" not in text  # no raw JSON on the page

    label, paused_at = seen["paused"]
    assert label == "Play"
    frozen, still, paused_later = seen["still"]
    assert paused_later == paused_at and frozen == still  # the picture stopped
    t0, t1 = seen["resumed"]
    assert t1 - t0 >= 0.5  # and goes on again

    assert "ended" in seen["ended"]
    assert "player has stopped" in seen["error"]

    png = _quantized_png(seen["screenshot"])
    screenshot.write_bytes(png)
    keep = os.environ.get("NVC_VIEW_SCREENSHOT")  # where to keep it (docs/player.png)
    if keep:
        shutil.copyfile(screenshot, Path(keep))
    from PIL import Image

    assert Image.open(screenshot).size == (960, 540)
    assert len(png) < MAX_SCREENSHOT, f"screenshot {len(png)} bytes"

"""`nvc play --view`: the local page, its video track, and a real headless Chromium."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
from fractions import Fraction

import aiohttp

from nvc.media import synthetic_clip
from nvc.player.player import Player, PlayerConfig
from nvc.player.source import FileSource
from nvc.player.view import FrameHub, HubTrack, ViewServer, to_video_frame
from tests.player.helpers import Serving, make_file, run

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--allow-loopback-in-peer-connection",
]


def chromium() -> str:
    """Debian's chromium (or $NVC_CHROMIUM). The browser test fails, never skips, without it."""
    path = os.environ.get("NVC_CHROMIUM") or shutil.which("chromium")
    assert path, (
        "the --view test needs a Chromium: apt-get install -y --no-install-recommends chromium "
        "(or set NVC_CHROMIUM to a chromium binary)"
    )
    return path


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


def test_headless_chromium_plays_the_view_page(tmp_path):
    browser = chromium()
    clip = make_file(tmp_path / "view.nvc", frames=50, size=(160, 96), seed=4)

    async def go():
        async with Serving(FileSource(clip, loop=True)) as (server, url):
            hub = FrameHub()
            view = ViewServer(hub)
            page = await view.start()
            async with aiohttp.ClientSession() as http, http.get(page) as r:
                assert r.status == 200 and "<video" in await r.text()
            player = Player(PlayerConfig(url, duration=40), on_frame=hub.publish)
            playing = asyncio.create_task(player.run())
            profile = tempfile.mkdtemp(prefix="nvc-chromium-")
            proc = await asyncio.create_subprocess_exec(
                browser,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                page,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
            reports: list[dict] = []
            try:
                for _ in range(100):  # up to 25 s
                    await asyncio.sleep(0.25)
                    status = view.status
                    if status is not None and (not reports or status is not reports[-1]):
                        reports.append(status)
                    playing_since = [r for r in reports if r.get("currentTime", 0) > 0]
                    if len(playing_since) >= 2:
                        advanced = (
                            playing_since[-1]["currentTime"] - playing_since[0]["currentTime"]
                        )
                        if advanced >= 1.0 and (playing_since[-1].get("sample") or {}).get("std"):
                            break
            finally:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 10)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)  # helpers of the browser we started
                shutil.rmtree(profile, ignore_errors=True)
                player.stop()
                await playing
                await view.close()
            return reports, player.stats

    reports, stats = run(go(), 60)
    assert reports, "the page never reported (did Chromium start?)"
    playing = [r for r in reports if r.get("currentTime", 0) > 0]
    assert len(playing) >= 2, f"the video never played: {reports[-1]}"
    assert playing[-1]["currentTime"] - playing[0]["currentTime"] >= 1.0
    last = playing[-1]
    assert (last["width"], last["height"]) == (160, 96)
    assert last["paused"] is False and last["connection"] == "connected"
    sample = last["sample"]
    assert sample["std"] > 5 and 20 < sample["mean"] < 240, f"blank picture: {sample}"
    assert stats.frames_presented > 25

"""A person orbits a free-viewpoint stream in the `--view` page: a real headless Chromium
(tests/player/browser.py) drags the picture and turns the wheel; the player renders the
3D Gaussians from the page's camera and the page's picture changes."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from tests.player.browser import Browser, chromium
from tests.player.helpers import run
from tests.player.scene_stream import gaussian_scene_file, session
from tests.player.test_view import MAX_SCREENSHOT, _change, _quantized_png


@pytest.fixture(scope="module")
def scene_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny static 3D scene coded by the gaussian codec (3 cameras, 96x64)."""
    return gaussian_scene_file(tmp_path_factory)


async def _drag(b: Browser, dx: float, dy: float, steps: int = 10) -> None:
    """A real mouse drag (press, moves with the button held, release) from the middle of
    the picture."""
    x, y = await b.evaluate(
        "(() => { const r = screenBox.getBoundingClientRect();"
        " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
    )
    await b.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
    await b.send(
        "Input.dispatchMouseEvent",
        type="mousePressed",
        x=x,
        y=y,
        button="left",
        buttons=1,
        clickCount=1,
    )
    for i in range(1, steps + 1):
        await b.send(
            "Input.dispatchMouseEvent",
            type="mouseMoved",
            x=x + dx * i / steps,
            y=y + dy * i / steps,
            button="left",
            buttons=1,
        )
        await asyncio.sleep(0.02)
    await b.send(
        "Input.dispatchMouseEvent",
        type="mouseReleased",
        x=x + dx,
        y=y + dy,
        button="left",
        buttons=0,
        clickCount=1,
    )


async def _settled(b: Browser, seconds: float = 0.6) -> list[int]:
    """The page's picture once it has stopped changing (a luma sample)."""
    last = await b.evaluate("nvcSample()")
    for _ in range(40):
        await asyncio.sleep(seconds / 3)
        now = await b.evaluate("nvcSample()")
        if now and last and _change(now, last) < 0.3:
            return now
        last = now
    return last


def test_headless_chromium_orbits_a_3d_stream_with_the_mouse(scene_file, tmp_path):
    browser = chromium()

    async def go() -> dict:
        seen: dict = {}
        async with session(scene_file) as s, Browser(browser, s.page, size=(960, 640)) as b:
            orbit = s.view.orbit
            await b.wait_for("badge.dataset.state === 'playing'", 30, "playback")
            seen["panel"] = await b.wait_for(
                "!viewPanel.hidden && cameraList.children.length === 3 && "
                "document.getElementById('camera').textContent",
                10,
                "the View panel",
            )
            first = await _settled(b)
            # drag right and down: the camera turns about the rig's centre
            await _drag(b, 150, 50)
            await b.wait_for("chosen && chosen.yaw !== undefined", 5, "the page's pose")
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            moved = first
            while loop.time() - t0 < 15 and _change(first, moved) < 3.0:
                await asyncio.sleep(0.2)
                moved = await b.evaluate("nvcSample()")
            seen["drag"] = (_change(first, moved), loop.time() - t0)
            seen["after_drag"] = (await s.orbit())["chosen"]
            # the wheel moves the camera further away
            x, y = await b.evaluate(
                "(() => { const r = screenBox.getBoundingClientRect();"
                " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
            )
            await b.send(
                "Input.dispatchMouseEvent", type="mouseWheel", x=x, y=y, deltaX=0, deltaY=200
            )
            await asyncio.sleep(0.5)
            farther = await _settled(b)
            seen["wheel"] = ((await s.orbit())["chosen"], _change(moved, farther))
            seen["screenshot"] = await b.screenshot()
            seen["panel_text"] = await b.evaluate("viewPanel.innerText")
            # a malformed camera message from the page itself: refused, counted, harmless
            seen["bad"] = await b.evaluate(
                "fetch('camera', {method: 'POST', headers: {'Content-Type': 'application/json'},"
                ' body: \'{"yaw": NaN, "pitch": 0, "distance": 1}\'}).then((r) => r.status)'
            )
            # the default camera's button: the stream's own picture again
            await b.click('#cameras button[data-index="1"]')
            await b.wait_for("chosen && chosen.camera === 1", 5, "snapping back")
            await asyncio.sleep(0.5)
            back = await _settled(b)
            seen["back"] = (_change(first, back), (await s.orbit())["chosen"])
            # key 1: rig camera 0 as it is
            await b.send("Input.dispatchKeyEvent", type="keyDown", key="1", text="1")
            await b.send("Input.dispatchKeyEvent", type="keyUp", key="1")
            await b.wait_for("chosen && chosen.camera === 0", 5, "key 1")
            seen["key"] = (await s.orbit())["chosen"]
            seen["state"] = await b.evaluate("badge.dataset.state")
            seen["stats"] = orbit.stats.summary()
        return seen

    seen = run(go(), 120)
    assert "cam01 (default)" in seen["panel"]
    change, after = seen["drag"]
    assert change >= 3.0, f"dragging hardly changed the picture ({change:.2f} in {after:.1f} s)"
    pose = seen["after_drag"]
    assert pose["yaw"] == pytest.approx(-60.0, abs=1.0)  # 150 px at 0.4 degree a pixel
    assert pose["distance"] == 1.0 and pose["pitch"] > 20.0
    wheeled, wheel_change = seen["wheel"]
    assert wheeled["distance"] == pytest.approx(1.35, abs=0.01)  # exp(200 * 0.0015)
    assert wheel_change > 1.0, f"the wheel hardly changed the picture ({wheel_change:.2f})"
    assert "orbit -60\u00b0" in seen["panel_text"]
    assert seen["bad"] == 400
    back_change, chosen = seen["back"]
    assert chosen == {"camera": 1}
    assert back_change < 1.5, f"the default view looks different ({back_change:.2f})"
    assert seen["key"] == {"camera": 0} and seen["state"] == "playing"
    stats = seen["stats"]
    assert stats["camera_rejected"] == 1 and stats["render_errors"] == 0
    assert stats["renders"] >= 2

    png = _quantized_png(seen["screenshot"])
    shot = tmp_path / "orbit.png"
    shot.write_bytes(png)
    keep = os.environ.get("NVC_ORBIT_SCREENSHOT")  # where to keep it (docs/player-orbit.png)
    if keep:
        shutil.copyfile(shot, Path(keep))
    assert len(png) < MAX_SCREENSHOT

"""A real headless Chromium for the `--view` tests, driven over the DevTools protocol.

Finding the browser (`chromium_decision`): $NVC_CHROMIUM, else `chromium` on PATH, else
/usr/bin/chromium. Without one, the test is skipped with a one-line reason naming the
install command, except under CI (the environment variable CI set, as CI services do and
.ci/run does), where it fails: CI must never skip the browser test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

DEFAULT_CHROMIUM = "/usr/bin/chromium"
INSTALL = "apt-get install chromium"

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--allow-loopback-in-peer-connection",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]


@dataclass(frozen=True)
class Decision:
    """What the browser test does: "run" (with `path`), "skip" or "fail" (with `reason`)."""

    action: str
    path: str = ""
    reason: str = ""


def under_ci(env: Mapping[str, str]) -> bool:
    return env.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def chromium_decision(
    env: Mapping[str, str],
    which: Callable[[str], str | None] = shutil.which,
    is_file: Callable[[str], bool] = os.path.isfile,
) -> Decision:
    """Where the browser is, or whether the test skips (no browser, not CI) or fails."""
    chosen = env.get("NVC_CHROMIUM")
    if chosen:
        if is_file(chosen):
            return Decision("run", path=chosen)
        return Decision("fail", reason=f"NVC_CHROMIUM={chosen} is not a file")
    found = which("chromium") or (DEFAULT_CHROMIUM if is_file(DEFAULT_CHROMIUM) else None)
    if found:
        return Decision("run", path=found)
    reason = f"no Chromium at {DEFAULT_CHROMIUM}: {INSTALL} (or set NVC_CHROMIUM)"
    if under_ci(env):
        return Decision("fail", reason=reason + "; CI never skips this test")
    return Decision("skip", reason=reason)


def chromium() -> str:
    """The browser's path; skips or fails the calling test as chromium_decision says."""
    decision = chromium_decision(os.environ)
    if decision.action == "skip":
        pytest.skip(decision.reason)
    if decision.action == "fail":
        pytest.fail(decision.reason)
    return decision.path


class Browser:
    """`async with Browser(path, url) as b`: one headless page, commands over CDP."""

    def __init__(self, path: str, url: str, *, size: tuple[int, int] = (960, 540)) -> None:
        self.path, self.url, self.size = path, url, size
        self._profile = tempfile.mkdtemp(prefix="nvc-chromium-")
        self._proc: asyncio.subprocess.Process | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._next_id = 0

    async def __aenter__(self) -> Browser:
        try:
            await self._start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _start(self) -> None:
        width, height = self.size
        self._proc = await asyncio.create_subprocess_exec(
            self.path,
            *FLAGS,
            f"--window-size={width},{height}",
            f"--user-data-dir={self._profile}",
            self.url,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        port_file = Path(self._profile) / "DevToolsActivePort"
        for _ in range(200):  # up to 20 s for the browser to come up
            if port_file.exists() and port_file.read_text().strip():
                break
            if self._proc.returncode is not None:
                raise RuntimeError(f"chromium exited with {self._proc.returncode}")
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        self._http = aiohttp.ClientSession()
        target = None
        for _ in range(100):
            async with self._http.get(f"http://127.0.0.1:{port}/json/list") as r:
                pages = [t for t in await r.json() if t.get("type") == "page"]
            if pages:
                target = pages[0]["webSocketDebuggerUrl"]
                break
            await asyncio.sleep(0.1)
        if target is None:
            raise RuntimeError("chromium opened no page")
        self._ws = await self._http.ws_connect(target, max_msg_size=0)
        self._reader = asyncio.create_task(self._read())
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        await self.wait_for(
            f"location.href === {json.dumps(self.url)} && document.readyState === 'complete'",
            20,
            "the page loading",
        )

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            future = self._pending.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                if "error" in data:
                    future.set_exception(RuntimeError(f"CDP error: {data['error']}"))
                else:
                    future.set_result(data.get("result", {}))
        for future in self._pending.values():
            if not future.done():
                future.set_exception(RuntimeError("the DevTools connection closed"))

    async def send(self, method: str, **params: Any) -> Any:
        """One DevTools command; its result."""
        assert self._ws is not None
        self._next_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = future
        await self._ws.send_str(
            json.dumps({"id": self._next_id, "method": method, "params": params})
        )
        return await asyncio.wait_for(future, 10)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def click(self, selector: str) -> None:
        """A real mouse click (press and release) in the middle of the element."""
        box = await self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        x, y = box
        for kind in ("mousePressed", "mouseReleased"):
            await self.send(
                "Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1
            )

    async def screenshot(self) -> bytes:
        """A PNG of the page as shown."""
        import base64

        result = await self.send("Page.captureScreenshot", format="png")
        return base64.b64decode(result["data"])

    async def wait_for(self, expression: str, timeout: float, what: str) -> Any:
        """Poll `expression` until it is truthy; its value. AssertionError after `timeout`."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        last = None
        while loop.time() < end:
            last = await self.evaluate(expression)
            if last:
                return last
            await asyncio.sleep(0.1)
        raise AssertionError(f"{what}: not within {timeout:g} s (last: {last!r})")

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        if self._http is not None:
            await self._http.close()
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # helpers of the browser we started
        shutil.rmtree(self._profile, ignore_errors=True)

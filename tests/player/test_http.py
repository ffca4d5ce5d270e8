"""The servers' HTTP side under hostile clients, on real loopback sockets: nested JSON,
malformed and slow bodies, idle and half-sent connections, too many connections, DNS
rebinding (Host / Origin), quiet logs, the bind address, and offers that never connect."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import subprocess
import sys
from typing import Any

import aiohttp
import aioice.ice
import pytest

from nvc.player import rtc
from nvc.player.player import Player, PlayerConfig
from nvc.player.server import ServeConfig, StreamServer
from nvc.player.site import HttpLimits, host_allowed
from nvc.player.source import FileSource
from nvc.player.view import FrameHub, ViewServer
from tests.player.helpers import Serving, run

NESTED = b"[" * 60000


async def exchange(port: int, data: bytes, *, timeout: float = 5.0) -> bytes:
    """Send raw bytes to 127.0.0.1:port, return everything until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


def request(
    method: str, path: str, body: bytes = b"", host: str = "127.0.0.1", **headers: str
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
        lines.append("Content-Type: application/json")
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def parse(response: bytes) -> tuple[int, Any]:
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def port_of(url: str) -> int:
    return int(url.rstrip("/").rsplit(":", 1)[1])


class Sites:
    """A StreamServer and a ViewServer on free ports, with the given HTTP limits."""

    def __init__(self, source: FileSource, limits: HttpLimits | None = None, **serve: Any) -> None:
        limits = limits or HttpLimits()
        self.server = StreamServer(source, config=ServeConfig(port=0, http=limits, **serve))
        self.view = ViewServer(FrameHub(), limits=limits)

    async def __aenter__(self) -> tuple[int, int]:
        server_url = await self.server.start()
        view_url = await self.view.start()
        return port_of(server_url), port_of(view_url)

    async def __aexit__(self, *exc: object) -> None:
        await self.view.close()
        await self.server.close()


def test_nested_and_malformed_bodies_are_4xx_with_one_line(lossless_file):
    async def go():
        out = {}
        async with Sites(FileSource(lossless_file)) as (server, view):
            out["offer nested"] = parse(await exchange(server, request("POST", "/offer", NESTED)))
            out["view offer nested"] = parse(
                await exchange(view, request("POST", "/offer", NESTED))
            )
            out["status nested"] = parse(
                await exchange(view, request("POST", "/status", b"[" * 4000))  # under 4 KiB
            )
            out["status nested big"] = parse(
                await exchange(view, request("POST", "/status", NESTED))
            )
            out["status big"] = parse(
                await exchange(view, request("POST", "/status", b"{" + b" " * 5000 + b"}"))
            )
            out["status utf8"] = parse(await exchange(view, request("POST", "/status", b"\xff{")))
            out["status list"] = parse(await exchange(view, request("POST", "/status", b"[1]")))
            chunked = (
                b"POST /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                + b"".join(b"400\r\n" + b" " * 1024 + b"\r\n" for _ in range(6))
                + b"0\r\n\r\n"
            )
            out["status chunked big"] = parse(await exchange(view, chunked))
            for name, port, path in (("offer", server, "/offer"), ("status", view, "/status")):
                bad_chunks = chunked.replace(b"/status", path.encode()).split(b"\r\n\r\n")[0]
                bad_chunks += b"\r\n\r\n5\r\n[1, 2\r\nzz\r\n"  # a chunk size that is not hex
                out[name + " bad chunks"] = parse(await exchange(port, bad_chunks))
            out["offer big"] = parse(
                await exchange(server, request("POST", "/offer", b" " * (70 * 1024)))
            )
            out["bad request line"] = parse(await exchange(server, b"GARBAGE\r\n\r\n"))
            # the servers still answer
            out["info"] = parse(await exchange(server, request("GET", "/")))
            out["page"] = parse(await exchange(view, request("GET", "/stats")))
        return out

    out = run(go(), 30)
    for name in ("offer nested", "view offer nested", "status nested"):
        status, body = out[name]
        assert status == 400, (name, status, body)
        assert "nested too deeply" in body["error"] and "\n" not in body["error"]
    assert out["status nested big"][0] == 413  # over the 4 KiB a status report may take
    assert out["status big"][0] == 413
    assert out["status utf8"][0] == 400 and out["status list"][0] == 400
    assert out["status chunked big"][0] == 413
    assert out["offer bad chunks"][0] == 400 and out["status bad chunks"][0] == 400
    assert out["offer big"][0] == 413
    assert out["bad request line"][0] == 400
    assert out["info"][0] == 200 and out["info"][1]["name"] == "nvc"
    assert out["page"][0] == 200 and out["page"][1]["state"] == "connecting"


def test_a_body_that_does_not_arrive_is_408_and_the_connection_closed(lossless_file):
    limits = HttpLimits(body_timeout=0.5)

    async def go():
        async with Sites(FileSource(lossless_file), limits) as (server, view):
            loop = asyncio.get_running_loop()
            results = {}
            for name, port, path in (("offer", server, "/offer"), ("status", view, "/status")):
                head = request("POST", path, b"x" * 1000)[:-1000]  # claims 1000, sends 10
                t0 = loop.time()
                response = await exchange(port, head + b'{"type": "', timeout=10)
                results[name] = (parse(response), loop.time() - t0)
        return results

    for name, ((status, body), took) in run(go(), 30).items():
        assert status == 408 and "did not arrive" in body["error"], name
        assert 0.4 < took < 4.0, (name, took)  # closed soon after body_timeout


def test_idle_and_half_sent_connections_are_capped_and_closed(lossless_file):
    limits = HttpLimits(header_timeout=1.0, max_connections=64)

    async def go():
        async with Sites(FileSource(lossless_file), limits) as (port, _):
            loop = asyncio.get_running_loop()
            half = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
            writers = []

            async def outcome(k: int, reader: asyncio.StreamReader, writer: Any) -> tuple:
                opened = loop.time()
                if k % 2:  # half the sockets send part of a request, the rest nothing
                    writer.write(half)
                data = await asyncio.wait_for(reader.read(), 10)
                return data, loop.time() - opened  # how long this connection stayed open

            tasks = []
            for k in range(300):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writers.append(writer)
                tasks.append(asyncio.create_task(outcome(k, reader, writer)))
            results = await asyncio.gather(*tasks)
            for writer in writers:
                writer.close()
            # a slow sender that keeps trickling header bytes is closed all the same
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            t1 = loop.time()
            closed_after = None
            for ch in b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100:
                try:
                    writer.write(bytes([ch]))
                    await writer.drain()
                except ConnectionError:
                    break
                if reader.at_eof() or (await _eof_within(reader, 0.1)):
                    closed_after = loop.time() - t1
                    break
            writer.close()
            after = parse(await exchange(port, request("GET", "/")))
        return results, closed_after, after

    results, slow_closed_after, after = run(go(), 40)
    refused = [t for data, t in results if data.startswith(b"HTTP/1.1 503")]
    timed_out = [t for data, t in results if data == b""]
    assert len(refused) == 300 - 64 and len(timed_out) == 64
    assert max(refused) < 1.0  # refused at once
    assert min(timed_out) > 0.5 and max(timed_out) < 3.0  # closed after header_timeout (1 s)
    assert slow_closed_after is not None and slow_closed_after < 3.0
    assert after[0] == 200  # and the server serves on


async def _eof_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        data = await asyncio.wait_for(reader.read(1), seconds)
    except TimeoutError:
        return False
    return data == b""


@pytest.mark.parametrize(
    ("host", "bound", "allowed", "ok"),
    [
        ("127.0.0.1:8080", "127.0.0.1", (), True),
        ("localhost:8080", "127.0.0.1", (), True),
        ("LOCALHOST.", "127.0.0.1", (), True),
        ("[::1]:8080", "127.0.0.1", (), True),
        ("127.0.0.2", "127.0.0.1", (), True),  # loopback
        ("evil.example", "127.0.0.1", (), False),
        ("evil.example:8080", "127.0.0.1", (), False),
        ("localhost.evil.example", "127.0.0.1", (), False),
        ("192.168.1.5:8080", "127.0.0.1", (), False),
        ("192.168.1.5:8080", "192.168.1.5", (), True),  # the bound address
        ("192.168.1.5:8080", "0.0.0.0", (), True),  # any literal address on a wildcard bind
        ("[fe80::1]:8080", "::", (), True),
        ("media.lan:8080", "0.0.0.0", (), False),  # ... but not a name
        ("media.lan:8080", "0.0.0.0", ("media.lan",), True),
        ("anything.example", "0.0.0.0", ("*",), True),
        ("myhost.lan:8080", "myhost.lan", (), True),  # bound by name
    ],
)
def test_host_rule(host, bound, allowed, ok):
    assert host_allowed(host, bound, allowed) is ok


def test_dns_rebinding_hosts_and_foreign_origins_are_refused(lossless_file):
    async def go():
        out = {}
        limits = HttpLimits(allowed_hosts=("media.lan",))
        async with Sites(FileSource(lossless_file), limits) as (server, view):
            for name, port in (("server", server), ("view", view)):
                for host in (
                    "evil.example",
                    f"evil.example:{port}",
                    "localhost",
                    f"[::1]:{port}",
                    f"127.0.0.1:{port}",
                    "media.lan",
                ):
                    out[name, host] = parse(await exchange(port, request("GET", "/", host=host)))[0]
                origin = f"http://127.0.0.1:{port}"
                out[name, "own origin"] = parse(
                    await exchange(port, request("POST", "/offer", b"{}", Origin=origin))
                )[0]
                out[name, "foreign origin"] = parse(
                    await exchange(
                        port, request("POST", "/offer", b"{}", Origin="http://evil.example")
                    )
                )
                out[name, "null origin"] = parse(
                    await exchange(port, request("GET", "/", Origin="null"))
                )[0]
        return out

    out = run(go(), 30)
    for name in ("server", "view"):
        for host, status in out.items():
            if host[0] != name or not isinstance(host[1], str) or "origin" in host[1]:
                continue
            expected = 403 if host[1].startswith("evil.example") else 200
            assert status == expected, (host, status)
        assert out[name, "own origin"] == 400  # got past the check: the body is not an offer
        status, body = out[name, "foreign origin"]
        assert status == 403 and "evil.example" in body["error"]
        assert out[name, "null origin"] == 403


def test_client_errors_are_logged_in_one_line_without_traceback(lossless_file, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    limits = HttpLimits(header_timeout=0.5, body_timeout=0.5)

    async def go():
        statuses = []
        async with Sites(FileSource(lossless_file), limits) as (server, view):
            for port in (server, view):
                for data in (
                    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,  # TLS hello
                    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n",
                    b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\n\r\n",  # request line too long
                    request("POST", "/offer", NESTED),
                    request("POST", "/status", NESTED),
                    request("POST", "/offer", b"x" * 100)[:-60],  # body cut short, then closed
                    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n",  # half a request, then closed
                ):
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.write(data)
                    await writer.drain()
                    if data.endswith(b"\r\n\r\n") or b"\r\n\r\n[" in data:
                        response = await asyncio.wait_for(reader.read(), 5)
                        if response:
                            statuses.append(parse(response)[0])
                    writer.close()
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.7)  # past the timeouts
        return statuses

    statuses = run(go(), 30)
    assert statuses and all(400 <= s < 500 for s in statuses), statuses
    for record in caplog.records:
        assert record.exc_info is None, f"{record.name}: {record.getMessage()}"
        assert "Traceback" not in record.getMessage()
        assert "\n" not in record.getMessage(), record.getMessage()
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err + captured.out


def test_servers_listen_on_127_0_0_1_by_default(lossless_file):
    from nvc.player import cli

    parser = argparse.ArgumentParser()
    cli.add_parsers(parser.add_subparsers())
    assert parser.parse_args(["serve", "x.nvc"]).host == "127.0.0.1"
    assert parser.parse_args(["live", "testsrc"]).host == "127.0.0.1"

    async def go():
        server = StreamServer(FileSource(lossless_file), config=ServeConfig(port=0))
        view = ViewServer(FrameHub())
        await server.start()
        await view.start()
        try:
            assert server.site is not None and view.site is not None
            bound = [s.getsockname() for s in server.site.sockets() + view.site.sockets()]
            # the machine's other addresses (those ICE offers) do not reach the servers
            reached = []
            for address in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True):
                for _, port in bound:
                    try:
                        _, writer = await asyncio.wait_for(
                            asyncio.open_connection(address, port), 2
                        )
                    except (OSError, TimeoutError):
                        continue
                    reached.append((address, port))
                    writer.close()
            return bound, reached
        finally:
            await view.close()
            await server.close()

    bound, reached = run(go(), 20)
    assert len(bound) == 2
    assert all(address[0] == "127.0.0.1" for address in bound), bound
    assert reached == []


async def _channel_offer() -> tuple[Any, str]:
    """An aiortc peer's data-channel offer, as a player makes (it is never completed)."""
    pc = rtc.new_peer()
    pc.createDataChannel(rtc.CHANNEL_LABEL, negotiated=True, id=rtc.CHANNEL_ID)
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


def test_offers_that_never_connect_free_their_slots(lossless_file):
    async def go():
        serve = dict(max_viewers=3, max_connecting=2, open_timeout=2.0)
        clients = []
        async with Serving(FileSource(lossless_file), **serve) as (server, url):
            statuses = []
            offers = [await _channel_offer() for _ in range(3)]
            async with aiohttp.ClientSession() as http:
                for pc, sdp in offers:
                    clients.append(pc)
                    async with http.post(url + "/offer", json={"type": "offer", "sdp": sdp}) as r:
                        statuses.append((r.status, (await r.json()).get("error", "")))
            held = len(server.peers)
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            while server.peers and loop.time() - t0 < 5:
                await asyncio.sleep(0.05)
            freed_after = loop.time() - t0
            left = len(server.peers)
            stats = await Player(PlayerConfig(url, max_frames=3)).run()
            for pc in clients:
                await pc.close()
        return statuses, held, left, freed_after, stats

    statuses, held, left, freed_after, stats = run(go(), 40)
    assert [s for s, _ in statuses] == [200, 200, 503]
    assert "connecting" in statuses[2][1]
    assert held == 2 and left == 0 and 1.0 < freed_after < 3.5  # dropped at open_timeout (2 s)
    assert stats.frames_presented == 3  # a real viewer gets in afterwards


def test_the_serve_command_takes_allow_host_offer_timeout_and_max_connecting(lossless_file):
    cmd = [sys.executable, "-m", "nvc.player", "serve", str(lossless_file), "--loop"]
    cmd += ["--port", "0", "--allow-host", "media.lan", "--offer-timeout", "0.5"]
    cmd += ["--max-connecting", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.split(" at ", 1)[1].split()[0]
        port = port_of(url)

        async def go():
            out = {}
            for host in ("media.lan", "evil.example", "localhost"):
                out[host] = parse(await exchange(port, request("GET", "/", host=host)))[0]
            pc, sdp = await _channel_offer()
            async with aiohttp.ClientSession() as http:
                async with http.post(url + "/offer", json={"type": "offer", "sdp": sdp}) as r:
                    out["offer"] = r.status
                async with http.post(url + "/offer", json={"type": "offer", "sdp": sdp}) as r:
                    out["second offer"] = r.status  # one connecting already
                async with http.get(url + "/") as r:
                    out["peers then"] = (await r.json())["peers"]
                await asyncio.sleep(1.5)
                async with http.get(url + "/") as r:
                    out["peers later"] = (await r.json())["peers"]
            await pc.close()
            return out

        out = run(go(), 30)
    finally:
        proc.terminate()
        proc.wait(10)
    assert out == {
        "media.lan": 200,
        "evil.example": 403,
        "localhost": 200,
        "offer": 200,
        "second offer": 503,
        "peers then": 1,
        "peers later": 0,
    }


def test_play_view_reports_the_player_and_takes_allow_host(lossless_file):
    async def go():
        async with Serving(FileSource(lossless_file, loop=True)) as (_, url):
            cmd = [sys.executable, "-m", "nvc.player", "play", url, "--view", "--view-port", "0"]
            cmd += ["--allow-host", "media.lan", "--duration", "30"]
            proc = await asyncio.create_subprocess_exec(
                *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
            )
            try:
                assert proc.stdout is not None
                line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
                page = line.split(" at ", 1)[1].split()[0]
                port = port_of(page)
                out = {}
                for host in ("media.lan", "evil.example"):
                    out[host] = parse(await exchange(port, request("GET", "/stats", host=host)))[0]
                async with aiohttp.ClientSession() as http:
                    for _ in range(100):
                        async with http.get(page + "stats") as r:
                            report = await r.json()
                        if report["state"] == "playing":
                            break
                        await asyncio.sleep(0.1)
                out["report"] = report
            finally:
                proc.terminate()
                await asyncio.wait_for(proc.wait(), 15)
            return out

    out = run(go(), 40)
    assert out["media.lan"] == 200 and out["evil.example"] == 403
    report = out["report"]
    assert report["state"] == "playing", report
    assert report["stream"]["codec"] == "lossless" and report["stream"]["width"] == 64
    assert report["stats"]["frames_presented"] > 0 and report["live"] is False

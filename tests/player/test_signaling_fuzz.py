"""Fuzzing the signaling entry points: seeded mutations of offers and status reports,
through `parse_offer` in-process and through real HTTP requests on loopback to both
servers. Nothing may escape as anything but a 4xx (or a refused connection for broken
HTTP), no traceback may be logged, and the servers keep serving.

By default a few hundred cases; `-m slow` runs thousands."""

from __future__ import annotations

import asyncio
import json
import logging
import random

import pytest

from nvc.player.signaling import SignalingError, parse_offer
from nvc.player.site import HttpLimits
from nvc.player.source import FileSource
from tests.player.helpers import run
from tests.player.test_http import Sites, parse, request

SDP = (
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "a=group:BUNDLE 0\r\na=msid-semantic: WMS\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
    "c=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\na=setup:actpass\r\na=mid:0\r\n"
    "a=sctp-port:5000\r\na=max-message-size:262144\r\n"
)
OFFER = json.dumps({"type": "offer", "sdp": SDP}).encode()
STATUS = json.dumps(
    {"currentTime": 1.5, "paused": False, "sample": {"mean": 100.0, "std": 20.0}}
).encode()
TOKENS = [
    b"[",
    b"{",
    b"]",
    b"}",
    b'"',
    b"\\",
    b"\\u0000",
    b"\x00",
    b"\xff\xfe",
    b"1e999999",
    b"-0",
    b"null",
    b"\r\n",
    b"=",
    b",",
    b":",
    b"m=video 9 x\r\n",
    b"\xe2\x80\xae",
]


def mutate_sdp(rng: random.Random, sdp: str) -> str:
    """Edits of an SDP that keep it line-shaped, so that more of them reach aiortc."""
    lines = sdp.split("\r\n")
    for _ in range(rng.randint(1, 3)):
        k = rng.randrange(len(lines))
        kind = rng.randrange(5)
        if kind == 0:  # drop a line
            del lines[k]
        elif kind == 1:  # repeat one
            lines.insert(k, lines[rng.randrange(len(lines))])
        elif kind == 2 and "=" in lines[k]:  # another value
            key = lines[k].split("=", 1)[0]
            value = rng.choice(["", "0", "-1", "99999999999999999999", "x" * 300, "a:b:c", " "])
            lines[k] = f"{key}={value}"
        elif kind == 3 and ":" in lines[k]:  # cut a value short
            lines[k] = lines[k][: rng.randrange(lines[k].index(":") + 1, len(lines[k]) + 1)]
        elif kind == 4:  # swap two lines
            j = rng.randrange(len(lines))
            lines[k], lines[j] = lines[j], lines[k]
    return "\r\n".join(lines)


def mutate(rng: random.Random, data: bytes) -> bytes:
    """1 to 4 random edits of `data` (an offer's SDP, or its bytes)."""
    if data == OFFER and rng.random() < 0.5:
        sdp = mutate_sdp(rng, SDP)
        return json.dumps({"type": "offer", "sdp": sdp}).encode()
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(7)
        at = rng.randrange(len(out) + 1)
        if kind == 0 and out:  # flip bytes
            for _ in range(rng.randint(1, 8)):
                out[rng.randrange(len(out))] = rng.randrange(256)
        elif kind == 1:  # cut a slice
            out[at : at + rng.randint(1, 200)] = b""
        elif kind == 2:  # insert tokens
            out[at:at] = b"".join(rng.choice(TOKENS) for _ in range(rng.randint(1, 20)))
        elif kind == 3:  # duplicate a slice
            out[at:at] = out[at : at + rng.randint(1, 2000)]
        elif kind == 4:  # nest it
            depth = rng.choice([10, 1000, 5000, 30000])
            out = bytearray(b"[" * depth) + out + b"]" * rng.choice([0, depth])
        elif kind == 5:  # another JSON value where the SDP was
            value = rng.choice(["1", "[]", "{}", "null", "true", '"v=0"', '"' + "a" * 60000 + '"'])
            out = bytearray(b'{"type": "offer", "sdp": ' + value.encode() + b"}")
        else:  # truncate
            out = out[: rng.randrange(len(out) + 1)]
    return bytes(out)


def fuzz_parse(cases: int, seed: int) -> dict[int, int]:
    rng = random.Random(seed)
    outcomes: dict[int, int] = {}
    for _ in range(cases):
        body = mutate(rng, OFFER)
        try:
            parse_offer(body, need="application")
            status = 200
        except SignalingError as e:
            status = e.status
            assert 400 <= status < 500 and "\n" not in e.message, (body[:200], e.message)
        outcomes[status] = outcomes.get(status, 0) + 1
    return outcomes


def test_parse_offer_fuzzed():
    outcomes = fuzz_parse(500, seed=1)
    assert sum(outcomes.values()) == 500 and set(outcomes) <= {200, 400, 413}
    assert outcomes.get(400, 0) > 250  # the mutations do reach the checks


@pytest.mark.slow
def test_parse_offer_fuzzed_at_scale():
    assert sum(fuzz_parse(20000, seed=2).values()) == 20000


def fuzz_http(lossless_file, cases: int, seed: int) -> tuple[dict[int, int], int, list[int], float]:
    """(responses by status, connections closed without one, statuses after, longest case)"""
    rng = random.Random(seed)
    limits = HttpLimits(header_timeout=0.5, body_timeout=0.5)

    async def go():
        outcomes: dict[int, int] = {}
        closed = 0
        longest = 0.0
        loop = asyncio.get_running_loop()
        async with Sites(FileSource(lossless_file), limits, max_viewers=64, open_timeout=0.5) as (
            server,
            view,
        ):
            for k in range(cases):
                port = server if k % 2 else view
                path, seed_body = rng.choice(
                    [("/offer", OFFER), ("/status", STATUS), ("/stats", b""), ("/", b"")]
                )
                body = mutate(rng, seed_body) if seed_body else b""
                raw = request("POST" if seed_body else "GET", path, body)
                if rng.random() < 0.3:  # break the HTTP itself too
                    raw = mutate(rng, raw)
                started = loop.time()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                try:
                    writer.write(raw)
                    await writer.drain()
                    response = await asyncio.wait_for(reader.read(), 5)
                except ConnectionError:
                    response = b""
                finally:
                    writer.close()
                longest = max(longest, loop.time() - started)
                if not response:
                    closed += 1
                    continue
                status = parse(response)[0]
                outcomes[status] = outcomes.get(status, 0) + 1
            after = [
                parse(await _get(server, "/"))[0],
                parse(await _get(view, "/stats"))[0],
            ]
        return outcomes, closed, after, longest

    return run(go(), 30 + cases * 0.2)


async def _get(port: int, path: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request("GET", path))
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


def _check_http(outcomes, closed, after, longest, cases, caplog):
    assert longest < 3.0  # no request hangs: the body / header timeouts are 0.5 s
    assert sum(outcomes.values()) + closed == cases
    assert all(status < 500 for status in outcomes), outcomes
    assert after == [200, 200]  # both servers still serve
    for record in caplog.records:
        assert record.exc_info is None, f"{record.name}: {record.getMessage()}"
        assert "Traceback" not in record.getMessage()


def test_signaling_over_http_fuzzed(lossless_file, caplog):
    caplog.set_level(logging.INFO)
    outcomes, closed, after, longest = fuzz_http(lossless_file, 150, seed=3)
    _check_http(outcomes, closed, after, longest, 150, caplog)
    assert sum(n for s, n in outcomes.items() if 400 <= s < 500) > 50


@pytest.mark.slow
def test_signaling_over_http_fuzzed_at_scale(lossless_file, caplog):
    caplog.set_level(logging.INFO)
    outcomes, closed, after, longest = fuzz_http(lossless_file, 3000, seed=4)
    _check_http(outcomes, closed, after, longest, 3000, caplog)

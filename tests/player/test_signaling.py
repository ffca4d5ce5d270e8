"""Signaling: malformed requests get 4xx, the server keeps serving, a full server says 503."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from nvc.player.player import Player, PlayerConfig
from nvc.player.signaling import MAX_BODY, SignalingError, parse_offer
from nvc.player.source import FileSource
from tests.player.helpers import Serving, run

GOOD_SDP = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP x\r\n"
    "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\n"
)


def body(**fields) -> bytes:
    return json.dumps(fields).encode()


@pytest.mark.parametrize(
    ("raw", "status", "match"),
    [
        (b"x" * (MAX_BODY + 1), 413, "over"),
        (b"\xff\xfe", 400, "JSON"),
        (b"{not json", 400, "JSON"),
        (b"[]", 400, "object"),
        (b"[" * 60000, 400, "nested too deeply"),
        (b'{"type": "offer", "sdp": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "nested"),
        (body(type="answer", sdp=GOOD_SDP), 400, "offer"),
        (body(type="offer"), 400, "sdp"),
        (body(type="offer", sdp=5), 400, "sdp"),
        (body(type="offer", sdp="hello"), 400, "v=0"),
        (body(type="offer", sdp="v=0\r\nnot a line\r\n"), 400, "line 2"),
        (body(type="offer", sdp="v=0\r\nm=audio 9 RTP/AVP 0\r\n"), 400, "data channel"),
        (body(type="offer", sdp=GOOD_SDP.replace("a=ice-pwd:", "a=x:")), 400, "a=ice-pwd"),
        (body(type="offer", sdp=GOOD_SDP.replace("ufrag:abcd", "ufrag: ")), 400, "a=ice-ufrag"),
        (body(type="offer", sdp=GOOD_SDP.replace("a=fingerprint", "a=f")), 400, "fingerprint"),
        (body(type="offer", sdp="v=0\r\n" + "a=xxxxxxxx\n" * 4500), 400, "over"),
    ],
)
def test_parse_offer_rejects_malformed_bodies(raw, status, match):
    with pytest.raises(SignalingError, match=match) as info:
        parse_offer(raw, need="application")
    assert info.value.status == status


def test_parse_offer_accepts_a_plain_offer():
    offer = parse_offer(body(type="offer", sdp=GOOD_SDP, viewer="x"), need="application")
    assert offer.sdp == GOOD_SDP and offer.extra == {"viewer": "x"}


def test_the_server_answers_malformed_requests_with_4xx_and_keeps_serving(lossless_file):
    async def go():
        async with Serving(FileSource(lossless_file), max_viewers=1) as (server, url):
            statuses = {}
            async with aiohttp.ClientSession() as http:
                cases: dict[str, dict[str, Any]] = {
                    "not json": dict(data=b"{oops", headers={"Content-Type": "application/json"}),
                    "text/plain": dict(data=body(type="offer", sdp=GOOD_SDP)),
                    "too big": dict(
                        data=b" " * (MAX_BODY + 10), headers={"Content-Type": "application/json"}
                    ),
                    "no sdp": dict(json={"type": "offer"}),
                    "unusable sdp": dict(json={"type": "offer", "sdp": GOOD_SDP}),
                }
                for name, kwargs in cases.items():
                    async with http.post(url + "/offer", **kwargs) as r:
                        statuses[name] = (r.status, (await r.json())["error"])
                async with http.get(url + "/offer") as r:
                    statuses["GET /offer"] = (r.status, "")
                async with http.post(url + "/nowhere", json={}) as r:
                    statuses["POST /nowhere"] = (r.status, "")
                async with http.get(url + "/") as r:
                    info = await r.json()
            assert not server.peers  # nothing was left behind
            stats = await Player(PlayerConfig(url, max_frames=3)).run()
            # a full server says so
            hold = Player(PlayerConfig(url, duration=3.0))
            task = asyncio.create_task(hold.run())
            while not server.broadcast.viewers:
                await asyncio.sleep(0.02)
            offer = {"type": "offer", "sdp": GOOD_SDP}
            async with aiohttp.ClientSession() as http, http.post(url + "/offer", json=offer) as r:
                statuses["full"] = (r.status, (await r.json())["error"])
            hold.stop()
            await task
            return statuses, info, stats

    statuses, info, stats = run(go())
    assert statuses["not json"][0] == 400
    assert statuses["text/plain"][0] == 415
    assert statuses["too big"][0] == 413
    assert statuses["no sdp"][0] == 400
    assert (
        statuses["unusable sdp"][0] == 400 and "cannot use the offer" in statuses["unusable sdp"][1]
    )
    assert statuses["GET /offer"][0] == 405
    assert statuses["POST /nowhere"][0] == 404
    assert statuses["full"][0] == 503
    assert info["name"] == "nvc" and info["stream"]["frame_count"] == 25
    assert stats.frames_presented == 3  # served normally after all that

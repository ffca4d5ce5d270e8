"""HTTP signaling: `POST /offer` takes a JSON SDP offer and answers with a JSON SDP answer.

    request:  {"type": "offer", "sdp": "v=0\\r\\n..."}          (Content-Type: application/json)
    answer:   {"type": "answer", "sdp": "v=0\\r\\n...", ...}    (200)
    error:    {"error": "one line"}                            (4xx / 503)

Requests are checked before any peer connection is made: a body over `MAX_BODY` bytes is
413, one that does not arrive in time 408, a Content-Type other than JSON 415 (which also
keeps other web sites from posting offers cross-origin without a CORS preflight),
malformed or too deeply nested JSON or a malformed or unsuitable SDP 400; a full server
answers 503. A rejected request changes nothing and the server keeps serving. The HTTP
limits around this (header timeouts, the connection cap, the Host/Origin check) are in
site.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from nvc.player.site import MAX_BODY, json_error

log = logging.getLogger("nvc.player")

MAX_SDP = 48 * 1024  # largest SDP, characters
_SDP_LINE = re.compile(r"^[a-z]=[^\x00]*$")
_NEEDED = ("ice-ufrag", "ice-pwd", "fingerprint")  # SDP attributes every WebRTC offer has


class SignalingError(Exception):
    """A request the server refuses, with its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Offer:
    """A checked SDP offer."""

    sdp: str  # the session description
    extra: dict[str, Any]  # other fields of the request (ignored by the servers here)


def parse_offer(body: bytes, *, need: str) -> Offer:
    """Check a signaling request body; `need` is the media an offer must have
    ("application" for a data channel, "video" for a video track).

    Raises SignalingError(413 / 400) for anything unacceptable.
    """
    if len(body) > MAX_BODY:
        raise SignalingError(413, f"request body over {MAX_BODY} bytes")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise SignalingError(400, "the body is not valid JSON") from None
    except RecursionError:  # "[[[[..." deeper than the parser's stack
        raise SignalingError(400, "the body's JSON is nested too deeply") from None
    if not isinstance(data, dict):
        raise SignalingError(400, "the body must be a JSON object")
    if data.get("type") != "offer":
        raise SignalingError(400, 'the body needs "type": "offer"')
    sdp = data.get("sdp")
    if not isinstance(sdp, str) or not sdp:
        raise SignalingError(400, 'the body needs "sdp": a session description string')
    if len(sdp) > MAX_SDP:
        raise SignalingError(400, f"the SDP is over {MAX_SDP} characters")
    lines = [line.rstrip("\r") for line in sdp.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    if not lines or lines[0] != "v=0":
        raise SignalingError(400, "the SDP must start with v=0")
    bad = next((i for i, line in enumerate(lines) if not _SDP_LINE.match(line)), None)
    if bad is not None:
        raise SignalingError(400, f"SDP line {bad + 1} is not of the form x=...")
    if not any(line.startswith(f"m={need} ") for line in lines):
        what = "a data channel (m=application)" if need == "application" else f"m={need}"
        raise SignalingError(400, f"the offer has no {what}")
    for attribute in _NEEDED:  # without them aiortc fails later, inside its own tasks
        prefix = f"a={attribute}:"
        if not any(line.startswith(prefix) and line[len(prefix) :].strip() for line in lines):
            raise SignalingError(400, f"the offer has no {prefix} line (ICE and DTLS need it)")
    return Offer(sdp, {k: v for k, v in data.items() if k not in ("type", "sdp")})


OfferHandler = Callable[[Offer], Awaitable[dict[str, Any]]]


async def read_body(request: web.Request, *, limit: int, timeout: float) -> bytes:
    """The request's body: at most `limit` bytes (else 413), within `timeout` seconds of the
    headers (else 408). Raises SignalingError."""
    if request.content_length is not None and request.content_length > limit:
        raise SignalingError(413, f"request body over {limit} bytes")
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            while True:
                chunk = await request.content.read(limit + 1 - len(body))
                if not chunk:
                    break
                body += chunk
                if len(body) > limit:
                    raise SignalingError(413, f"request body over {limit} bytes")
    except TimeoutError:
        raise SignalingError(408, f"the request body did not arrive within {timeout:g} s") from None
    except (web.RequestPayloadError, ConnectionError):
        raise SignalingError(400, "the request body was cut short or malformed") from None
    return bytes(body)


def offer_route(
    handler: OfferHandler, *, need: str, body_timeout: float = 10.0
) -> Callable[[web.Request], Awaitable[Any]]:
    """An aiohttp handler for POST /offer that checks the request, then calls `handler`,
    which returns the answer (a JSON object) or raises SignalingError."""

    async def post_offer(request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            return json_error(415, "Content-Type must be application/json")
        try:
            body = await read_body(request, limit=MAX_BODY, timeout=body_timeout)
            offer = parse_offer(body, need=need)
            answer = await handler(offer)
        except SignalingError as e:
            log.info("signaling: %d %s", e.status, e.message)
            return json_error(e.status, e.message, close=e.status in (408, 413))
        return web.json_response(answer)

    return post_offer

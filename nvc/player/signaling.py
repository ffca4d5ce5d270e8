"""HTTP signaling: `POST /offer` takes a JSON SDP offer and answers with a JSON SDP answer.

    request:  {"type": "offer", "sdp": "v=0\\r\\n..."}          (Content-Type: application/json)
    answer:   {"type": "answer", "sdp": "v=0\\r\\n...", ...}    (200)
    error:    {"error": "one line"}                            (4xx / 503)

Requests are checked before any peer connection is made: a body over `MAX_BODY` bytes is
413, a Content-Type other than JSON 415 (which also keeps other web sites from posting
offers cross-origin without a CORS preflight), malformed JSON or a malformed or unsuitable
SDP 400; a full server answers 503. A rejected request changes nothing and the server
keeps serving. Servers bind to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

log = logging.getLogger("nvc.player")

MAX_BODY = 64 * 1024  # largest signaling request body, bytes
MAX_SDP = 48 * 1024  # largest SDP, characters
_SDP_LINE = re.compile(r"^[a-z]=[^\x00]*$")


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
    return Offer(sdp, {k: v for k, v in data.items() if k not in ("type", "sdp")})


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


OfferHandler = Callable[[Offer], Awaitable[dict[str, Any]]]


def offer_route(handler: OfferHandler, *, need: str) -> Callable[[web.Request], Awaitable[Any]]:
    """An aiohttp handler for POST /offer that checks the request, then calls `handler`,
    which returns the answer (a JSON object) or raises SignalingError."""

    async def post_offer(request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            return json_error(415, "Content-Type must be application/json")
        if request.content_length is not None and request.content_length > MAX_BODY:
            return json_error(413, f"request body over {MAX_BODY} bytes")
        try:
            body = await request.read()
            offer = parse_offer(body, need=need)
            answer = await handler(offer)
        except web.HTTPRequestEntityTooLarge:
            return json_error(413, f"request body over {MAX_BODY} bytes")
        except SignalingError as e:
            log.info("signaling: %d %s", e.status, e.message)
            return json_error(e.status, e.message)
        return web.json_response(answer)

    return post_offer


def new_app() -> web.Application:
    """An aiohttp application with the body size limit set."""
    return web.Application(client_max_size=MAX_BODY)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def start_site(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, str]:
    """Serve `app` on host:port (0: any free port); returns the runner and the base URL."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    bound_port = port
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            bound_port = int(address[1])
            break
    if not is_loopback(host):
        log.warning("serving on %s: reachable from other machines", host)
    shown = f"[{host}]" if ":" in host else host
    return runner, f"http://{shown}:{bound_port}"

"""The HTTP side of the servers (`nvc serve` / `nvc live` and the `--view` page), hardened.

    app = new_app(limits)                      # aiohttp app with the Host/Origin check
    app.router.add_post("/offer", ...)
    runner, url = await start_site(app, "127.0.0.1", 0, limits)

What a client can hold or cause, and where it ends (`HttpLimits`):

- headers: a connection must deliver a request's headers within `header_timeout` of
  opening (or of its previous response); an idle keep-alive connection is closed after the
  same time. A slow or half-sent request is closed, not served.
- bodies: a handler reads its body with `read_body` (signaling.py), bounded in size and in
  time (`body_timeout`: 408, and the connection is closed).
- connections: at most `max_connections` are open at once; one more is answered 503 and
  closed at once, so idle sockets cannot exhaust the process's file descriptors.
- Host and Origin (DNS rebinding): a request whose `Host` (or `Origin`) names something
  other than localhost, a loopback address, the bound address or `allowed_hosts` is 403.
  A web page that rebinds its own name to 127.0.0.1 still sends its own name as Host.
  When bound to a wildcard address (0.0.0.0, ::), any IP-literal Host is accepted (a
  literal address cannot be rebound).
- client errors (bad HTTP, dropped connections) are logged as one line at INFO on the
  "nvc.player" logger, never as a traceback (a fault of the server's own: one line at
  WARNING).

Servers bind to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from nvc.errors import NvcError

log = logging.getLogger("nvc.player")

MAX_BODY = 64 * 1024  # largest request body any route takes, bytes
LINGER = 2.0  # seconds to drain an unread request body before closing the connection


@dataclass(frozen=True)
class HttpLimits:
    """What one HTTP client may hold (see the module docstring)."""

    header_timeout: float = 10.0  # seconds for a request's headers (and idle keep-alive)
    body_timeout: float = 10.0  # seconds to receive a request's body
    max_connections: int = 64  # open connections at once; one more gets 503 and is closed
    allowed_hosts: tuple[str, ...] = ()  # more Host names to accept ("*": any)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def host_name(value: str) -> str:
    """The host part of a Host header value ("[::1]:8080" -> "::1"), lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        name = value[1:end] if end > 0 else value[1:]
    elif value.count(":") == 1:
        name = value.split(":", 1)[0]
    else:
        name = value  # a bare name, or a bare IPv6 address
    return name.rstrip(".")


def host_allowed(name: str, bound: str, allowed: tuple[str, ...] = ()) -> bool:
    """Whether a request naming host `name` may be served by a site bound to `bound`."""
    name = host_name(name)
    extra = {host_name(a) for a in allowed}
    if "*" in extra or name in extra or name == "localhost":
        return True
    address = _ip(name)
    if address is not None and address.is_loopback:
        return True
    bound_name = host_name(bound) if bound else ""
    if name and name == bound_name:
        return True
    bound_address = _ip(bound_name) if bound_name else None
    wildcard = not bound_name or (bound_address is not None and bound_address.is_unspecified)
    if address is not None and wildcard:
        return True
    return address is not None and bound_address is not None and address == bound_address


class HostGuard:
    """The Host/Origin check, as an aiohttp middleware; `bound` is set by start_site."""

    def __init__(self, allowed: tuple[str, ...]) -> None:
        self.allowed = allowed
        self.bound = "127.0.0.1"

    def refusal(self, headers: Mapping[str, str]) -> str | None:
        """Why a request with these headers is refused; None if it is not."""
        host = headers.get("Host")
        if host is not None and not host_allowed(host, self.bound, self.allowed):
            return f"Host {host_name(host)!r} is not served here (allow it with --allow-host)"
        origin = headers.get("Origin")
        if origin is not None:
            try:
                origin_host = urlsplit(origin).netloc
            except ValueError:
                origin_host = ""
            if not origin_host or not host_allowed(origin_host, self.bound, self.allowed):
                return f"requests from the page at {origin[:100]!r} are not served here"
        return None

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        reason = self.refusal(request.headers)
        if reason is not None:
            log.info("http: 403 %s", reason)
            return json_error(403, reason, close=True)
        return await handler(request)


_GUARD = web.AppKey("nvc_host_guard", HostGuard)


def json_error(status: int, message: str, *, close: bool = False) -> web.Response:
    """{"error": message} with `status`; `close` ends the connection after it."""
    response = web.json_response({"error": message}, status=status)
    if close:
        response.force_close()
    return response


def new_app(limits: HttpLimits | None = None) -> web.Application:
    """An aiohttp application with the body size limit and the Host/Origin check."""
    guard = HostGuard((limits or HttpLimits()).allowed_hosts)
    app = web.Application(client_max_size=MAX_BODY, middlewares=[guard.middleware])
    app[_GUARD] = guard
    return app


_CLIENT_ERRORS: tuple[type[BaseException], ...] = (
    HttpProcessingError,  # bad HTTP: request line, headers, TLS on the HTTP port
    web.RequestPayloadError,  # a body cut short or badly chunked
    ConnectionError,
    TimeoutError,
    asyncio.CancelledError,
)


class QuietLog(logging.LoggerAdapter):
    """aiohttp's server logger, in one line and never with a traceback: a client's error
    (bad HTTP, a dropped connection) at INFO, anything else (a fault of ours) at WARNING."""

    def __init__(self) -> None:
        super().__init__(log, {})

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        exc = kwargs.pop("exc_info", None)
        if exc is True:
            exc = sys.exc_info()[1]
        elif isinstance(exc, tuple):
            exc = exc[1]
        text = str(msg) % args if args else str(msg)
        quiet = min(level, logging.INFO)
        if isinstance(exc, BaseException):
            detail = " ".join(str(exc).split())[:200]
            text = f"{text}: {type(exc).__name__}" + (f": {detail}" if detail else "")
            if not isinstance(exc, _CLIENT_ERRORS) and level >= logging.WARNING:
                quiet = logging.WARNING
        self.logger.log(quiet, "http: %s", " ".join(text.split()))

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 (logging's name)
        return self.logger.isEnabledFor(min(level, logging.WARNING))

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return msg, kwargs


_REFUSED_BODY = b'{"error": "too many open connections"}'
_REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_REFUSED_BODY), _REFUSED_BODY)
)


class _Refused(asyncio.Protocol):
    """A connection over the cap: answered 503 and closed at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if isinstance(transport, asyncio.WriteTransport):
            transport.write(_REFUSED)
        transport.close()


class _Counted(asyncio.Protocol):
    """aiohttp's protocol for one connection, counted while it is open."""

    def __init__(self, inner: asyncio.Protocol, site: GuardedSite) -> None:
        self.inner = inner
        self.site = site

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.site.open_connections -= 1
        self.inner.connection_lost(exc)


class GuardedSite(web.BaseSite):
    """A TCP site that keeps at most `max_connections` connections open."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, max_connections: int) -> None:
        super().__init__(runner)
        self.host, self.port = host, port
        self.max_connections = max_connections
        self.open_connections = 0
        self.refused = 0  # connections refused for the cap

    @property
    def name(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _protocol(self) -> asyncio.Protocol:
        if self.open_connections >= self.max_connections:
            self.refused += 1
            if self.refused == 1 or self.refused % 100 == 0:
                log.info(
                    "http: %d open connections: refused one (%d so far)",
                    self.open_connections,
                    self.refused,
                )
            return _Refused()
        server = self._runner.server
        if server is None:
            return _Refused()
        self.open_connections += 1
        return _Counted(server(), self)

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol, self.host, self.port, reuse_address=True
        )

    def sockets(self) -> list[Any]:
        server = self._server
        return list(getattr(server, "sockets", None) or [])


async def start_site(
    app: web.Application, host: str, port: int, limits: HttpLimits | None = None
) -> tuple[web.AppRunner, GuardedSite, str]:
    """Serve `app` on host:port (0: any free port); returns the runner, the site (its
    listening sockets, its connection count) and the base URL."""
    limits = limits or HttpLimits()
    if limits.max_connections < 1 or limits.header_timeout <= 0 or limits.body_timeout <= 0:
        raise NvcError("HTTP limits must be positive")
    app[_GUARD].bound = host
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        keepalive_timeout=limits.header_timeout,
        lingering_time=min(LINGER, limits.body_timeout),
        logger=QuietLog(),
    )
    await runner.setup()
    site = GuardedSite(runner, host, port, limits.max_connections)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    bound_port = port
    for sock in site.sockets():
        bound_port = int(sock.getsockname()[1])
        break
    site.port = bound_port
    if not is_loopback(host):
        log.warning("serving on %s: reachable from other machines", host)
    shown = f"[{host}]" if ":" in host else host
    return runner, site, f"http://{shown}:{bound_port}"

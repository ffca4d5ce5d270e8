"""The streaming subcommands: `nvc serve`, `nvc play`, `nvc live`.

`add_parsers(subparsers)` adds them to the `nvc` command; each sets `run=fn`, where
fn(args) -> exit code raises NvcError subclasses for user errors. Importing this module
is cheap: aiortc and aiohttp are imported when a command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from nvc.argtypes import count as _count
from nvc.argtypes import fps as _fps
from nvc.argtypes import probability as _rate
from nvc.argtypes import seconds as _seconds
from nvc.argtypes import size as _size
from nvc.errors import NvcError
from nvc.fileio import output_path

T = TypeVar("T")


def _add_network(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=_count(0), default=8080, help="TCP port (default: 8080; 0: any)")
    p.add_argument(
        "--max-retransmits",
        type=_count(0),
        metavar="N",
        help="unreliable data channel: retransmit a message at most N times (default: reliable)",
    )
    p.add_argument(
        "--unordered",
        action="store_true",
        help="let the data channel deliver out of order (with --max-retransmits)",
    )
    p.add_argument(
        "--max-viewers", type=_count(1), default=16, help="viewers at once (default: 16)"
    )
    p.add_argument(
        "--offer-timeout",
        type=_seconds,
        default=10.0,
        metavar="S",
        help="drop a viewer whose connection is not open S seconds after its offer (default: 10)",
    )
    p.add_argument(
        "--max-connecting",
        type=_count(1),
        metavar="N",
        help="at most N viewers connecting at once, so connecting ones never take every "
        "--max-viewers slot (default: no separate limit)",
    )
    _add_allow_host(p)
    p.add_argument(
        "--wait-for",
        type=_count(1),
        default=1,
        metavar="N",
        help="start the stream when N viewers are connected (default: 1)",
    )
    p.add_argument(
        "--drop-rate",
        type=_rate,
        default=0.0,
        metavar="F",
        help="TESTING: drop this fraction of unit messages before sending (seeded)",
    )
    p.add_argument("--seed", type=int, default=0, help="TESTING: seed of --drop-rate")
    p.add_argument("--stats", action="store_true", help="print the stream's state every 5 seconds")
    p.add_argument("-v", "--verbose", action="store_true", help="log viewers coming and going")


def _add_allow_host(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests whose Host is NAME (besides localhost, loopback addresses "
        "and the bound address; '*': any); repeatable",
    )


def add_parsers(subparsers: Any) -> None:
    """Add `serve`, `play` and `live` to the `nvc` command's subparsers."""
    p = subparsers.add_parser(
        "serve",
        help="stream a .nvc file to players over WebRTC",
        description="Serve a .nvc file in real time: players POST a WebRTC offer to "
        "URL/offer and receive the units on a data channel, paced by presentation time. "
        "A player that joins mid-stream starts at the latest random-access point; a slow "
        "one is skipped to the next. The stream starts with the first viewer.",
    )
    p.add_argument("input", metavar="FILE", help="the .nvc file")
    p.add_argument(
        "--loop", action="store_true", help="play the file again and again (pts keep growing)"
    )
    _add_network(p)
    p.set_defaults(run=run_serve)

    p = subparsers.add_parser(
        "live",
        help="encode a live source in real time and stream it",
        description="Capture SOURCE in real time, encode it with a causal codec and serve "
        "it like `nvc serve`. SOURCE is 'testsrc' (a moving test pattern), a video file "
        "(played at its own frame rate), or a capture device PyAV can open, as "
        "FORMAT:DEVICE (v4l2:/dev/video0, lavfi:testsrc2=size=640x360:rate=30).",
    )
    p.add_argument("source", metavar="SOURCE", help="testsrc, a video file, or FORMAT:DEVICE")
    p.add_argument("--codec", default="lossless", help="codec to encode with (default: lossless)")
    p.add_argument("--size", type=_size, metavar="WxH", help="testsrc / device size")
    p.add_argument("--fps", type=_fps, help="testsrc / device frame rate (default: 30)")
    p.add_argument(
        "--pix-fmt",
        choices=["yuv420p", "yuv420p10le", "yuv444p", "yuv444p10le", "rgb24", "rgb48le"],
        help="convert captured frames to this format",
    )
    p.add_argument("--loop", action="store_true", help="a file source starts again at its end")
    p.add_argument("--frames", type=_count(1), help="stop capturing after N frames")
    p.add_argument("--q", type=int, metavar="0-63", help="fm: quality index (default 40)")
    p.add_argument(
        "--intra-period",
        type=_count(0),
        metavar="N",
        help="fm: a random-access point every N frames (default 128): late joiners and "
        "lost units wait for the next one",
    )
    p.add_argument(
        "--no-residual",
        dest="residual",
        action="store_const",
        const=False,
        help="fm: no coded residuals on inter frames (encodes faster)",
    )
    p.add_argument(
        "--variant",
        choices=("realtime", "realtime2"),
        help="fm: the shipped model (default: realtime, the fast one; realtime2, the default "
        "of `nvc encode`, has no quality ceiling but decodes ~2.5x slower)",
    )
    _add_network(p)
    p.set_defaults(run=run_live)

    p = subparsers.add_parser(
        "play",
        help="play a stream served by `nvc serve` or `nvc live`",
        description="Connect to a stream server (its base URL, e.g. http://127.0.0.1:8080), "
        "decode the stream in a worker thread and present it on the stream's clock. "
        "Ends with the stream, or on Ctrl-C.",
    )
    p.add_argument("url", metavar="URL", help="the server's URL")
    p.add_argument("-o", "--output", help="record the presented frames (.y4m, .yuv, .mkv, DIR/)")
    p.add_argument("--view", action="store_true", help="watch in a browser: serves a local page")
    p.add_argument(
        "--view-port", type=_count(0), default=8090, help="port of the --view page (default: 8090)"
    )
    _add_allow_host(p)
    p.add_argument("--stats", action="store_true", help="print stats every second and at the end")
    p.add_argument("--stats-json", metavar="FILE", help="write the final stats as JSON")
    p.add_argument(
        "--delay",
        type=_seconds,
        default=0.05,
        help="playout delay in seconds, against network jitter (default: 0.05)",
    )
    p.add_argument(
        "--no-drop",
        action="store_true",
        help="show every decoded frame, even late (default: drop frames over a frame late)",
    )
    p.add_argument(
        "--max-latency",
        type=_seconds,
        default=1.0,
        metavar="S",
        help="when decoding falls S seconds behind, drop to the next random-access point "
        "(default: 1; 0: never; --no-drop never drops)",
    )
    p.add_argument(
        "--max-pixels",
        type=_count(1),
        metavar="N",
        help="refuse frames above N luma pixels (default: 3840x2160 = 8294400), "
        "a guard against streams that ask for huge frames",
    )
    p.add_argument("--frames", type=_count(1), help="stop after presenting N frames")
    p.add_argument("--duration", type=_seconds, help="stop after this many seconds")
    p.add_argument(
        "--decode-threads",
        type=_count(1),
        metavar="N",
        help="compute threads of a neural decoder (torch; default: torch's choice)",
    )
    p.add_argument(
        "--timeout",
        type=_seconds,
        default=15.0,
        help="seconds to wait for the server (default: 15)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    p.set_defaults(run=run_play)


def _logging(verbose: bool) -> None:
    logger = logging.getLogger("nvc.player")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("nvc: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)


async def _until_stopped(main: Awaitable[T], on_stop: Callable[[], None] | None = None) -> T | None:
    """Run `main` until it finishes or SIGINT / SIGTERM arrives. With `on_stop`, a signal
    calls it and `main` is left to wind down (a second signal cancels it); without, the
    signal cancels `main` at once (then None is returned)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    task = asyncio.ensure_future(main)
    try:
        while True:
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if task.done():
                return task.result()
            stop.clear()
            if on_stop is None:
                break
            on_stop()
            on_stop = None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return None
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def _viewer_config(args: argparse.Namespace, live: bool) -> Any:
    from nvc.player.broadcast import ViewerConfig

    if args.unordered and args.max_retransmits is None:
        raise NvcError("--unordered needs --max-retransmits (an unreliable channel)")
    lossy = args.max_retransmits is not None or args.drop_rate > 0
    return ViewerConfig(
        ordered=not args.unordered,
        max_retransmits=args.max_retransmits,
        live=live,
        drop_rate=args.drop_rate,
        seed=args.seed,
        header_every=1.0 if lossy else None,
    )


async def _serve(source: Any, args: argparse.Namespace, what: str) -> int:
    from nvc.player.server import ServeConfig, StreamServer
    from nvc.player.site import HttpLimits

    if not args.offer_timeout > 0:
        raise NvcError("--offer-timeout must be positive")
    config = ServeConfig(
        host=args.host,
        port=args.port,
        max_viewers=args.max_viewers,
        wait_for=args.wait_for,
        open_timeout=args.offer_timeout,
        max_connecting=args.max_connecting,
        http=HttpLimits(allowed_hosts=tuple(args.allow_host)),
    )
    server = StreamServer(source, _viewer_config(args, source.live), config)
    try:
        url = await server.start()
    except OSError as e:
        raise NvcError(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}") from None
    print(f"nvc: serving {what} at {url}  (players: nvc play {url})", flush=True)

    async def watch() -> None:
        while not server.broadcast.failed.is_set():
            try:
                await asyncio.wait_for(server.broadcast.failed.wait(), 5.0)
            except TimeoutError:
                if args.stats:
                    info = server.info()
                    state = {k: v for k, v in info["broadcast"].items() if k != "per_viewer"}
                    if "encoder" in info["source"]:
                        state["encoder"] = info["source"]["encoder"]
                    print("nvc: " + json.dumps(state), flush=True)

    try:
        await _until_stopped(watch())
    finally:
        await server.close()
        describe = source.describe()
        if "encoder" in describe:
            print("nvc: encoder " + json.dumps(describe["encoder"]), flush=True)
    errors = server.broadcast.stats.errors
    if server.broadcast.failed.is_set() and errors:
        raise NvcError(f"the stream failed: {errors[-1]}")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from nvc.player.source import FileSource

    _logging(args.verbose)
    source = FileSource(args.input, loop=args.loop)
    return asyncio.run(_serve(source, args, args.input))


def live_options(args: argparse.Namespace) -> dict[str, Any]:
    """The codec options of `nvc live`: the flags given, and for fm what real time needs."""
    options = {
        k: v for k in ("q", "intra_period", "residual") if (v := getattr(args, k, None)) is not None
    }
    if args.codec == "fm":
        # fm's encoder RD search roughly halves its speed, which a live source cannot afford;
        # and the fast model, not file encoding's default (realtime2 decodes ~2.5x slower)
        options |= {"search": False, "variant": args.variant or "realtime"}
    return options


def run_live(args: argparse.Namespace) -> int:
    from nvc.player.source import LiveConfig, LiveSource

    _logging(args.verbose)
    config = LiveConfig(
        source=args.source,
        codec=args.codec,
        size=args.size,
        fps=args.fps,
        pix_fmt=args.pix_fmt,
        loop=args.loop,
        frames=args.frames,
        options=live_options(args),
    )
    source = LiveSource(config)
    return asyncio.run(_serve(source, args, f"{args.source} ({args.codec})"))


async def _play(args: argparse.Namespace) -> int:
    from nvc.player.player import Player, PlayerConfig, format_stats

    config = PlayerConfig(
        url=args.url,
        output=args.output,
        delay=args.delay,
        drop_late=not args.no_drop,
        max_frames=args.frames,
        duration=args.duration,
        connect_timeout=args.timeout or 15.0,
        stats_every=1.0 if args.stats else None,
        decode_threads=args.decode_threads,
        max_latency=args.max_latency or None,
        max_pixels=args.max_pixels,
    )
    view = None
    on_frame = None
    if args.view:
        from nvc.player.site import HttpLimits
        from nvc.player.view import FrameHub, ViewServer

        hub = FrameHub()
        limits = HttpLimits(allowed_hosts=tuple(args.allow_host))
        view = ViewServer(hub, port=args.view_port, limits=limits)
        try:
            url = await view.start()
        except OSError as e:
            raise NvcError(f"cannot serve the view page: {e.strerror or e}") from None
        print(f"nvc: watch at {url}", flush=True)
        on_frame = hub.publish
    player = Player(config, on_frame=on_frame)
    if view is not None:
        view.watch(player)
    try:
        await _until_stopped(player.run(), lambda: player.stop("interrupted"))
    finally:
        if view is not None:
            await view.close()
    stats = player.stats
    if args.stats:
        print(format_stats(stats), file=sys.stderr)
        print(f"nvc: ended: {stats.end_reason or 'interrupted'}", file=sys.stderr)
    concealed = concealment(stats)
    if concealed:
        print(f"nvc: concealed: {concealed}", file=sys.stderr)
    if len(stats.recordings) > 1:
        segments = ", ".join(stats.recordings)
        print(f"nvc: recorded {len(stats.recordings)} segments: {segments}", file=sys.stderr)
    if args.stats_json:
        with output_path(args.stats_json) as where:  # atomic; a device or FIFO written through
            where.write_text(json.dumps(stats.summary(), indent=2) + "\n", encoding="utf-8")
    if stats.frames_presented == 0 and stats.end_reason not in ("", "duration reached"):
        raise NvcError(f"no frame was presented ({stats.end_reason})")
    return 0


def concealment(stats: Any) -> str:
    """What the player concealed, in words ('' when nothing was)."""
    parts = [
        f"{n} {what}"
        for n, what in (
            (stats.decode_errors, "units that did not decode"),
            (stats.header_errors, "unusable sequence headers"),
            (stats.units_dropped_late, "units dropped to stay within --max-latency"),
            (stats.control_rejected, "malformed control messages"),
        )
        if n
    ]
    return ", ".join(parts)


def run_play(args: argparse.Namespace) -> int:
    _logging(args.verbose)
    return asyncio.run(_play(args))

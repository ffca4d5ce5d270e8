"""Shared pieces of the streaming tests: a codec with non-RAP units, files, runners."""

from __future__ import annotations

import asyncio
import hashlib
import zlib
from collections.abc import Coroutine
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from nvc.bitstream import SequenceHeader, Unit, UnitType
from nvc.codec import registry
from nvc.codec.base import CodecSpec, StreamInfo
from nvc.codec.pipeline import decode_frames, encode_frames
from nvc.media import Frame, synthetic_clip

T = TypeVar("T")

GOP_CODEC_ID = 9001  # test-only codec id
GOP_SIZE = 5  # frames per group in the test codec


@dataclass(frozen=True)
class GopConfig:
    gop: int = GOP_SIZE  # a random-access point every `gop` frames


def _raw(frame: Frame) -> np.ndarray:
    return np.concatenate([p.reshape(-1) for p in frame.planes])


class GopEncoder:
    """A RAP (the frame, zlib'd) every `gop` frames; between them, the XOR with the previous
    frame. A decoder that misses a unit and goes on produces garbage: a player that ever
    shows such a frame fails the tests."""

    codec_params = b"gop1"

    def __init__(self, stream: StreamInfo, config: GopConfig) -> None:
        self.stream, self.gop = stream, config.gop
        self._prev: np.ndarray | None = None
        self._count = 0

    def encode(self, frame: Frame | None) -> list[Unit]:
        if frame is None:
            return []
        raw = _raw(frame)
        rap = self._count % self.gop == 0
        data = raw if rap or self._prev is None else raw ^ self._prev
        self._prev, self._count = raw, self._count + 1
        return [Unit(UnitType.FRAME, zlib.compress(data.tobytes(), 1), frame.pts, rap)]


class GopDecoder:
    def __init__(self, header: SequenceHeader) -> None:
        self.header = header
        self._prev: np.ndarray | None = None

    def decode(self, unit: Unit | None) -> list[Frame]:
        if unit is None or unit.type != UnitType.FRAME:
            return []
        data = np.frombuffer(zlib.decompress(unit.payload), np.uint8)
        if not unit.rap:
            if self._prev is None:
                raise ValueError("a non-RAP unit without its reference")
            data = data ^ self._prev
        self._prev = data
        h = self.header
        w, hh = h.width, h.height
        cw, ch = -(-w // 2), -(-hh // 2)
        y = data[: w * hh].reshape(hh, w)
        u = data[w * hh : w * hh + cw * ch].reshape(ch, cw)
        v = data[w * hh + cw * ch :].reshape(ch, cw)
        return [Frame((y.copy(), u.copy(), v.copy()), "yuv420p", unit.pts, 1 / h.fps)]


GOP_SPEC = CodecSpec(
    GOP_CODEC_ID, "testgop", "test: XOR deltas between RAPs", GopConfig, GopEncoder, GopDecoder
)


def register_gop() -> None:
    registry.register(GOP_SPEC)


def make_file(
    path: Path,
    *,
    frames: int = 25,
    size: tuple[int, int] = (64, 48),
    fps: int = 25,
    codec: str = "lossless",
    seed: int = 0,
    options: dict[str, Any] | None = None,
) -> Path:
    clip = synthetic_clip(size[0], size[1], frames, fps=fps, seed=seed)
    stream = StreamInfo(size[0], size[1], Fraction(fps), "yuv420p", frame_count=frames)
    encode_frames(clip, stream, path, codec=codec, options=options)
    return path


def digest(frame: Frame) -> str:
    h = hashlib.sha256()
    for p in frame.planes:
        h.update(np.ascontiguousarray(p).tobytes())
    return h.hexdigest()


def reference(path: Path) -> list[Frame]:
    """What `nvc decode` gives for the file."""
    return list(decode_frames(path))


def run(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    """Run a coroutine in a fresh event loop, bounded by `timeout` seconds."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Serving:
    """`async with Serving(source, ...) as (server, url)`: a StreamServer on a free port."""

    def __init__(self, source: Any, viewer_config: Any = None, **serve: Any) -> None:
        from nvc.player.server import ServeConfig, StreamServer

        self.server = StreamServer(source, viewer_config, ServeConfig(port=0, **serve))

    async def __aenter__(self) -> tuple[Any, str]:
        url = await self.server.start()
        return self.server, url

    async def __aexit__(self, *exc: object) -> None:
        await self.server.close()


def file_units(path: Path, pts_offset: int = 0) -> tuple[SequenceHeader, list[Unit]]:
    """The header and frame units of a .nvc file (pts moved by `pts_offset`)."""
    from nvc.bitstream import Reader

    with Reader(path) as reader:
        units = [Unit(u.type, u.payload, u.pts + pts_offset, u.rap) for u in reader]
        return reader.header, units


class ScriptedSource:
    """A source that plays a list of units as given, sequence headers included (a stream
    that changes mid-way, or carries damage), each due at pts / fps after the start."""

    live = False

    def __init__(self, header: SequenceHeader, units: list[Unit]) -> None:
        self.header, self.units = header, units

    async def start(self) -> Any:
        from nvc.player.source import TimedUnit

        header, units = self.header, self.units
        fps = float(header.fps)

        class Run:
            async def __aiter__(self) -> Any:
                for u in units:
                    yield TimedUnit(u, u.pts / fps)

            async def aclose(self) -> None:
                pass

        run = Run()
        run.header = header  # type: ignore[attr-defined]
        return run

    def describe(self) -> dict[str, Any]:
        return {"kind": "scripted", "units": len(self.units)}

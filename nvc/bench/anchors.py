"""Traditional codecs as anchors: x264, x265 and SVT-AV1 through PyAV, fixed configurations.

Each anchor encodes the benchmark's 8-bit 4:2:0 frames into a raw elementary stream
file, with no container around it:

    x264     -> .h264  (Annex B byte stream, FFmpeg muxer "h264")
    x265     -> .hevc  (Annex B byte stream, FFmpeg muxer "hevc")
    SVT-AV1  -> .obu   (AV1 low-overhead OBU stream with temporal delimiters, muxer "obu")

so the bytes counted for bpp are exactly the bytes a decoder needs (parameter sets and
sequence headers included, no mp4/mkv/ivf framing). Informational SEI is not counted:
x265 is told not to write its settings (`info=0`), and every user-data-unregistered SEI
message (x264's version and settings, about 0.6 KB) is removed from H.264 and H.265
streams before they are written (`nvc.bench.streams`); SVT-AV1 writes no metadata OBUs.
Decoding reads that file back with FFmpeg's demuxer and a fresh decoder (h264, hevc,
libdav1d).

`encode_anchor(frames, "x264", crf=23)` is the one-call form for other tools: it returns
the stream's bytes and the frames a decoder makes of them.

The configurations are fixed and documented in `ANCHORS` and in benchmarks/README.md:

- rate is set by constant rate factor (CRF) alone; six CRF points per anchor (its list in
  `ANCHORS`), chosen to cover the range of the neural codecs' rate points, about 0.01 to
  0.2 bpp (the spans measured on the reference clip are in benchmarks/README.md);
- presets: x264 `medium`, x265 `medium`, SVT-AV1 preset 6; everything else at the
  encoder's defaults for that preset (no tune);
- GOP: a fixed intra period (`keyint`, 128 frames by default, about one second of UVG's
  120 fps), closed GOPs, no scene-cut intra frames, so every rate point has the same
  frame types. "ra" (random access, the default) keeps the preset's B-frame /
  hierarchical structure (x264 3 B-frames, x265 4 B-frames, SVT-AV1 its hierarchical
  random-access structure); "ld" (low delay) codes in display order with no B-frames
  (x264/x265 bframes=0, SVT-AV1 pred-struct=1);
- threads: `threads` worker threads (x264 threads, x265 pools, SVT-AV1 lp), recorded
  with the results because x264's and x265's output can depend on it.

SVT-AV1 prints a banner to stderr for every encoder it opens; `encode` sets the
environment variable SVT_LOG=1 (errors only) unless the user has set it.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

import av
import numpy as np

from nvc.bench import streams
from nvc.errors import CodecError
from nvc.media import Frame
from nvc.media.pyav_io import av_frame_from, planes_from_av

GOP_MODES = ("ra", "ld")
DEFAULT_KEYINT = 128
X265_MIN_SIZE = (64, 16)  # smallest (width, height) given to libx265 (see encode)

# Called with (frames done, total frames).
ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class AnchorConfig:
    """One traditional codec with its fixed configuration."""

    name: str  # name on the command line and in results
    label: str  # name in plots and tables
    encoder: str  # FFmpeg encoder
    decoder: str  # FFmpeg decoder used to read the stream back
    muxer: str  # FFmpeg muxer / demuxer of the raw elementary stream
    extension: str  # file extension of that stream
    preset: str  # encoder preset
    crf_points: tuple[int, ...]  # rate points, best quality first
    params_option: str  # the encoder's private option taking "key=value:..." params

    def params(self, gop: str, keyint: int, threads: int) -> str:
        """The encoder's private parameter string for a GOP mode."""
        if gop not in GOP_MODES:
            raise CodecError(f"unknown GOP mode {gop!r} (choose from {', '.join(GOP_MODES)})")
        if keyint < 1:
            raise CodecError(f"keyint must be at least 1, got {keyint}")
        if self.encoder == "libx264":
            p = [f"keyint={keyint}", f"min-keyint={keyint}", "scenecut=0", "open-gop=0"]
            p += ["bframes=0"] if gop == "ld" else []
            p += [f"threads={threads}"]
        elif self.encoder == "libx265":
            p = [f"keyint={keyint}", f"min-keyint={keyint}", "scenecut=0", "open-gop=0"]
            p += ["bframes=0"] if gop == "ld" else []
            p += [f"pools={threads}", "log-level=error", "info=0"]
        else:  # libsvtav1
            p = [f"keyint={keyint}", "scd=0", "irefresh-type=2"]
            p += ["pred-struct=1"] if gop == "ld" else ["pred-struct=2"]
            p += [f"lp={threads}"]
        return ":".join(p)

    def options(
        self,
        crf: int | None,
        gop: str,
        keyint: int,
        threads: int,
        *,
        qp: int | None = None,
        preset: str | None = None,
    ) -> dict[str, str]:
        """All encoder options for one rate point (a CRF or a constant QP), as given to FFmpeg."""
        if (crf is None) == (qp is None):
            raise CodecError(f"{self.name}: give exactly one of crf and qp")
        rate = {"crf": str(crf)} if crf is not None else {"qp": str(qp)}
        return {
            "preset": preset or self.preset,
            **rate,
            self.params_option: self.params(gop, keyint, threads),
        }

    def describe(self, gop: str, keyint: int, threads: int) -> dict[str, object]:
        """The configuration as results record it."""
        return {
            "encoder": self.encoder,
            "decoder": self.decoder,
            "stream": f"raw {self.muxer} elementary stream (.{self.extension}), no container"
            + (", user-data-unregistered SEI removed" if self.muxer != "obu" else ""),
            "preset": self.preset,
            "gop": "random access" if gop == "ra" else "low delay",
            "keyint": keyint,
            "threads": threads,
            self.params_option: self.params(gop, keyint, threads),
        }


ANCHORS: dict[str, AnchorConfig] = {
    "x264": AnchorConfig(
        name="x264",
        label="x264 medium",
        encoder="libx264",
        decoder="h264",
        muxer="h264",
        extension="h264",
        preset="medium",
        crf_points=(18, 23, 28, 33, 38, 43),
        params_option="x264-params",
    ),
    "x265": AnchorConfig(
        name="x265",
        label="x265 medium",
        encoder="libx265",
        decoder="hevc",
        muxer="hevc",
        extension="hevc",
        preset="medium",
        crf_points=(17, 22, 27, 32, 37, 42),
        params_option="x265-params",
    ),
    "svtav1": AnchorConfig(
        name="svtav1",
        label="SVT-AV1 preset 6",
        encoder="libsvtav1",
        decoder="libdav1d",
        muxer="obu",
        extension="obu",
        preset="6",
        crf_points=(22, 30, 38, 46, 54, 62),
        params_option="svtav1-params",
    ),
}
ALIASES = {"svt-av1": "svtav1", "av1": "svtav1", "h264": "x264", "hevc": "x265", "h265": "x265"}


def anchor(name: str) -> AnchorConfig | None:
    """The anchor called `name` (or one of its aliases), or None."""
    key = name.lower()
    return ANCHORS.get(ALIASES.get(key, key))


def _check(frames: Sequence[Frame]) -> Frame:
    if not frames:
        raise CodecError("no frames to encode")
    first = frames[0]
    if first.format != "yuv420p" or first.width % 2 or first.height % 2:
        raise CodecError(
            f"anchors take 8-bit 4:2:0 frames of even size, got {first.width}x{first.height} "
            f"{first.format}"
        )
    return first


@dataclass(frozen=True)
class AnchorStream:
    """One coded elementary stream, as counted for bpp."""

    data: bytes  # the stream a decoder gets (informational SEI removed)
    encoder_version: str | None  # x264/x265 version banner found before it was removed
    sei_bytes_removed: int  # bytes of user-data-unregistered SEI taken out


class CodedAnchor(NamedTuple):
    """What `encode_anchor` returns."""

    data: bytes  # the elementary stream (no container, no informational SEI)
    frames: list[Frame]  # what a fresh decoder makes of `data`


# The version banner each anchor's library last wrote, by anchor name (see library_version).
_VERSIONS: dict[str, str | None] = {}


def _encode_raw(
    frames: Sequence[Frame],
    config: AnchorConfig,
    options: dict[str, str],
    *,
    fps: Fraction,
    threads: int,
    progress: ProgressFn | None = None,
) -> bytes:
    """The encoder's output as it comes, informational SEI and all."""
    first = frames[0]
    rate = Fraction(fps)
    time_base = 1 / rate
    buffer = io.BytesIO()
    rate_point = "crf " + options["crf"] if "crf" in options else "qp " + options.get("qp", "?")
    try:
        with av.open(buffer, "w", format=config.muxer) as container:
            stream: Any = container.add_stream(config.encoder, rate=rate)
            stream.width, stream.height, stream.pix_fmt = first.width, first.height, "yuv420p"
            stream.codec_context.thread_count = threads
            stream.codec_context.time_base = time_base
            stream.options = options
            for i, frame in enumerate(frames):
                image = av_frame_from(frame)
                image.pts = i
                image.time_base = time_base
                container.mux(stream.encode(image))
                if progress:
                    progress(i + 1, len(frames))
            container.mux(stream.encode(None))
    except (av.error.FFmpegError, ValueError) as e:
        raise CodecError(f"{config.name} failed at {rate_point}: {e}") from None
    return buffer.getvalue()


def encode_stream(
    frames: Sequence[Frame],
    config: AnchorConfig,
    *,
    crf: int | None = None,
    qp: int | None = None,
    preset: str | None = None,
    fps: Fraction = Fraction(25),
    gop: str = "ra",
    keyint: int = DEFAULT_KEYINT,
    threads: int = 1,
    progress: ProgressFn | None = None,
) -> AnchorStream:
    """Encode `frames` at one rate point (`crf` or constant `qp`) into a raw stream."""
    first = _check(frames)
    if config.encoder == "libx265" and (
        first.width < X265_MIN_SIZE[0] or first.height < X265_MIN_SIZE[1]
    ):
        raise CodecError(
            f"x265 needs frames of at least {X265_MIN_SIZE[0]}x{X265_MIN_SIZE[1]}, got "
            f"{first.width}x{first.height} (libx265 rejects smaller frames, and corrupts "
            f"memory on some widths between 34 and 48)"
        )
    if config.encoder == "libsvtav1":
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints a banner per encoder otherwise
    options = config.options(crf, gop, keyint, threads, qp=qp, preset=preset)
    data = _encode_raw(frames, config, options, fps=fps, threads=threads, progress=progress)
    version = _find_version(data)
    removed = 0
    if config.muxer in ("h264", "hevc"):
        stripped = streams.strip_informational_sei(data, config.muxer)
        data, removed = stripped.data, stripped.removed_bytes
    if version is not None:
        _VERSIONS[config.name] = version
    return AnchorStream(data, version, removed)


def encode(
    frames: Sequence[Frame],
    config: AnchorConfig,
    crf: int,
    path: str | os.PathLike[str],
    *,
    fps: Fraction,
    gop: str = "ra",
    keyint: int = DEFAULT_KEYINT,
    threads: int = 1,
    progress: ProgressFn | None = None,
) -> int:
    """Encode `frames` into the raw stream file `path`; returns its size in bytes.

    The file appears only once the stream is complete (no partial file on failure).
    """
    coded = encode_stream(
        frames,
        config,
        crf=crf,
        fps=fps,
        gop=gop,
        keyint=keyint,
        threads=threads,
        progress=progress,
    )
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(coded.data)
    partial.replace(target)
    return len(coded.data)


def encode_anchor(
    frames: Sequence[Frame],
    codec: str = "x264",
    *,
    crf: int | None = None,
    qp: int | None = None,
    preset: str | None = None,
    gop: str = "ra",
    keyint: int = DEFAULT_KEYINT,
    fps: Fraction = Fraction(25),
    threads: int = 1,
) -> CodedAnchor:
    """Code 8-bit 4:2:0 `frames` with a traditional codec; the stream and its decoded frames.

    `codec`: x264, x265 or svtav1 (or an alias: h264, hevc, av1). Exactly one of `crf`
    (constant rate factor) and `qp` (constant quantiser). `preset` defaults to the
    anchor's (x264/x265 medium, SVT-AV1 6). `gop`: "ra" (random access, the preset's
    B-frames) or "ld" (low delay, no B-frames); `keyint`: the intra period. The bytes are
    exactly what a decoder needs (no container, no informational SEI), so
    8 * len(data) / (frames * width * height) is the bpp to quote.
    """
    config = anchor(codec)
    if config is None:
        raise CodecError(f"unknown anchor {codec!r} (choose from {', '.join(ANCHORS)})")
    coded = encode_stream(
        frames,
        config,
        crf=crf,
        qp=qp,
        preset=preset,
        fps=fps,
        gop=gop,
        keyint=keyint,
        threads=threads,
    )
    decoded = decode_bytes(coded.data, config, fps=fps, threads=threads)
    return CodedAnchor(coded.data, decoded)


def decode_bytes(
    data: bytes,
    config: AnchorConfig,
    *,
    fps: Fraction = Fraction(25),
    threads: int = 1,
    source: str = "stream",
) -> list[Frame]:
    """Decode a raw elementary stream back into 8-bit 4:2:0 frames with a fresh decoder."""
    return _decode(io.BytesIO(data), config, fps=fps, threads=threads, source_name=source)


def decode(
    path: str | os.PathLike[str],
    config: AnchorConfig,
    *,
    fps: Fraction,
    threads: int = 1,
) -> list[Frame]:
    """Decode a stream written by `encode` back into 8-bit 4:2:0 frames."""
    path = os.fspath(path)
    return _decode(path, config, fps=fps, threads=threads, source_name=path)


def _decode(
    source: str | io.BytesIO,
    config: AnchorConfig,
    *,
    fps: Fraction,
    threads: int,
    source_name: str,
) -> list[Frame]:
    time_base = 1 / Fraction(fps)
    out: list[Frame] = []
    try:
        with av.open(source, "r", format=config.muxer) as container:
            decoder: Any = av.CodecContext.create(config.decoder, "r")
            decoder.thread_count = threads
            decoder.thread_type = "AUTO"
            for packet in container.demux(container.streams.video[0]):
                if packet.size:
                    for image in decoder.decode(packet):
                        out.append(_frame(image, len(out), time_base))
            for image in decoder.decode(None):
                out.append(_frame(image, len(out), time_base))
    except (av.error.FFmpegError, ValueError) as e:
        raise CodecError(f"{config.name}: cannot decode {source_name}: {e}") from None
    if not out:
        raise CodecError(f"{config.name}: no frames decoded from {source_name}")
    return out


_VERSION_PATTERNS = (
    re.compile(rb"x264 - core [0-9]+( r[0-9]+ [0-9a-f]+)?"),
    re.compile(rb"x265 \(build [0-9]+\) - [0-9A-Za-z.+-]+"),
)


def _find_version(data: bytes) -> str | None:
    for pattern in _VERSION_PATTERNS:
        m = pattern.search(data[: 1 << 16])
        if m:
            return m.group(0).decode("ascii", errors="replace")
    return None


def library_version(config: AnchorConfig) -> str | None:
    """The version banner of the anchor's library (x264/x265; None for SVT-AV1).

    The banner is part of the informational SEI that the counted streams leave out, so it
    is read from a stream coded before removal (x265 writes it only without `info=0`: a
    two-frame 64x64 clip is coded once to read it).
    """
    if config.name not in _VERSIONS and config.muxer in ("h264", "hevc"):
        gray = np.full((64, 64), 128, np.uint8)
        planes = (gray, gray[:32, :32].copy(), gray[:32, :32].copy())
        clip = [Frame(planes, "yuv420p", i, Fraction(1, 25)) for i in range(2)]
        options = config.options(30, "ld", 2, 1)
        params = [p for p in options[config.params_option].split(":") if p != "info=0"]
        options[config.params_option] = ":".join(params)
        _VERSIONS[config.name] = _find_version(
            _encode_raw(clip, config, options, fps=Fraction(25), threads=1)
        )
    return _VERSIONS.get(config.name)


def encoder_version(path: str | os.PathLike[str]) -> str | None:
    """The version banner x264 and x265 write into their streams (SEI), if present."""
    with open(path, "rb") as f:
        return _find_version(f.read(1 << 16))


def _frame(image: av.VideoFrame, index: int, time_base: Fraction) -> Frame:
    if image.format.name != "yuv420p":
        image = image.reformat(format="yuv420p")
    return Frame(planes_from_av(image, "yuv420p"), "yuv420p", index, time_base)

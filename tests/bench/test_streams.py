"""The anchors count no informational SEI: parsed NAL units / OBUs, and identical decodes."""

from __future__ import annotations

import io
from fractions import Fraction
from typing import Any

import av
import numpy as np
import pytest

from nvc.bench import anchors, streams
from nvc.errors import BitstreamError, CodecError
from nvc.media import Frame, synthetic_clip
from nvc.media.pyav_io import av_frame_from

FPS = Fraction(25)


@pytest.fixture(scope="module")
def qcif() -> list[Frame]:
    return synthetic_clip(176, 144, 10, format="yuv420p", seed=5)


# -- an independent reading of the streams (written for the test, not the library's) ------


def split_annexb(data: bytes) -> list[bytes]:
    """NAL unit bodies (header first) between 0x000001 start codes, trailing zeros removed."""
    parts = data.split(b"\x00\x00\x01")
    assert parts[0].strip(b"\x00") == b""
    return [p.rstrip(b"\x00") for p in parts[1:]]


def sei_payload_types(nal: bytes, header_size: int) -> list[int]:
    rbsp = nal[header_size:].replace(b"\x00\x00\x03", b"\x00\x00")
    types, i = [], 0
    while i < len(rbsp) and rbsp[i:] != b"\x80":
        t = 0
        while rbsp[i] == 0xFF:
            t, i = t + 255, i + 1
        t, i = t + rbsp[i], i + 1
        size = 0
        while rbsp[i] == 0xFF:
            size, i = size + 255, i + 1
        size, i = size + rbsp[i], i + 1
        types.append(t)
        i += size
    return types


def user_data_sei_count(data: bytes, codec: str) -> int:
    count = 0
    for nal in split_annexb(data):
        if codec == "h264" and nal[0] & 0x1F == 6:
            count += sei_payload_types(nal, 1).count(5)
        if codec == "hevc" and (nal[0] >> 1) & 0x3F in (39, 40):
            count += sei_payload_types(nal, 2).count(5)
    return count


def plain_encode(frames: list[Frame], config: anchors.AnchorConfig, crf: int) -> bytes:
    """The encoder's stream as FFmpeg writes it, with the bench's options minus info=0."""
    options = config.options(crf, "ra", anchors.DEFAULT_KEYINT, 1)
    key = config.params_option
    options[key] = ":".join(p for p in options[key].split(":") if p != "info=0")
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=config.muxer) as container:
        stream: Any = container.add_stream(config.encoder, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = frames[0].width, frames[0].height, "yuv420p"
        stream.codec_context.thread_count = 1
        stream.options = options
        for i, frame in enumerate(frames):
            image = av_frame_from(frame)
            image.pts = i
            container.mux(stream.encode(image))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def pyav_decode(data: bytes, muxer: str) -> list[np.ndarray]:
    out = []
    with av.open(io.BytesIO(data), "r", format=muxer) as container:
        for image in container.decode(video=0):
            out.append(image.to_ndarray(format="yuv420p"))
    return out


# -- the tests ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["x264", "x265"])
def test_anchor_streams_hold_no_user_data_sei_and_decode_the_same(
    qcif: list[Frame], name: str
) -> None:
    config = anchors.ANCHORS[name]
    crf = config.crf_points[2]
    plain = plain_encode(qcif, config, crf)
    # What the encoder writes by default carries its settings: the bias being removed.
    assert user_data_sei_count(plain, config.muxer) >= 1
    assert (b"x264 - core" if name == "x264" else b"x265 (build") in plain

    coded = anchors.encode_anchor(qcif, name, crf=crf)
    assert user_data_sei_count(coded.data, config.muxer) == 0
    assert b"x264 - core" not in coded.data and b"x265 (build" not in coded.data
    assert b"options:" not in coded.data
    # x264: the same stream, minus exactly its SEI NAL units; x265 with info=0 never wrote them.
    sei = [n for n in split_annexb(plain) if name == "x264" and n[0] & 0x1F == 6]
    if name == "x264":
        assert len(plain) - len(coded.data) >= sum(len(n) + 3 for n in sei) > 500
    else:
        assert len(plain) - len(coded.data) > 1500  # the ~2.3 KB settings SEI

    # Decoded through PyAV, the counted stream gives exactly the frames the plain one gives.
    reference = pyav_decode(plain, config.muxer)
    decoded = pyav_decode(coded.data, config.muxer)
    assert len(decoded) == len(reference) == len(qcif)
    for a, b in zip(reference, decoded, strict=True):
        np.testing.assert_array_equal(a, b)
    # encode_anchor's frames are those frames.
    assert len(coded.frames) == len(qcif)
    for a, f in zip(decoded, coded.frames, strict=True):
        np.testing.assert_array_equal(a[:144], f.planes[0])


def test_svtav1_stream_has_no_metadata_or_padding_obus(qcif: list[Frame]) -> None:
    coded = anchors.encode_anchor(qcif, "svtav1", crf=38)
    # An independent OBU walk: header byte, LEB128 size, payload.
    types, i = [], 0
    data = coded.data
    while i < len(data):
        header = data[i]
        assert header & 0x02  # obu_has_size_field
        i += 2 if header & 0x04 else 1
        size, shift = 0, 0
        while True:
            b = data[i]
            i += 1
            size |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        types.append((header >> 3) & 0x0F)
        i += size
    assert i == len(data)
    assert streams.obu_types(data) == types
    assert set(types) <= {1, 2, 3, 4, 6}  # sequence header, TD, frame header, tile group, frame
    assert types.count(2) == len(qcif)  # one temporal delimiter per temporal unit


def test_runner_files_are_the_stripped_streams(qcif: list[Frame], tmp_path: Any) -> None:
    path = tmp_path / "a.h264"
    size = anchors.encode(qcif, anchors.ANCHORS["x264"], 28, path, fps=FPS)
    assert path.read_bytes() == anchors.encode_anchor(qcif, "x264", crf=28).data
    assert size == path.stat().st_size
    assert not list(tmp_path.glob("*.partial"))
    assert anchors.encoder_version(path) is None  # the banner is gone from the file ...
    version = anchors.library_version(anchors.ANCHORS["x264"])  # ... but still recorded
    assert version is not None and version.startswith("x264 - core")
    x265 = anchors.library_version(anchors.ANCHORS["x265"])
    assert x265 is not None and x265.startswith("x265 (build")
    assert anchors.library_version(anchors.ANCHORS["svtav1"]) is None


def test_strip_rewrites_a_mixed_sei_and_keeps_the_access_unit_start_code() -> None:
    # An H.264 stream by hand: SPS, SEI with [user data (type 5), recovery point (type 6)],
    # a SEI with only user data in front of an IDR slice whose start code is 3 bytes long.
    user_data = bytes([5, 24]) + bytes(16) + b"x264 opt"  # uuid of zeros: needs escaping
    recovery = bytes([6, 2, 0x84, 0x80])
    sps = b"\x00\x00\x00\x01\x67\x42\x00\x0a"
    mixed = b"\x00\x00\x00\x01\x06" + streams.escape(user_data + recovery + b"\x80")
    only = b"\x00\x00\x00\x01\x06" + streams.escape(user_data + b"\x80")
    idr = b"\x00\x00\x01\x65\x88\x84\x21"
    result = streams.strip_informational_sei(sps + mixed + only + idr, "h264")
    assert result.removed_messages == 2
    assert result.data == sps + b"\x00\x00\x00\x01\x06" + recovery + b"\x80" + (
        b"\x00\x00\x00\x01\x65\x88\x84\x21"
    )
    assert result.removed_bytes == len(sps + mixed + only + idr) - len(result.data)
    # Escaping and unescaping are inverse, and escaped data has no start-code emulation.
    raw = bytes([0, 0, 0, 0, 0, 1, 0, 0, 2, 0, 0, 3, 7])
    assert streams.unescape(streams.escape(raw)) == raw
    assert b"\x00\x00\x01" not in streams.escape(raw)


def test_malformed_streams_are_bitstream_errors() -> None:
    with pytest.raises(BitstreamError, match="start code"):
        streams.strip_informational_sei(b"junk\x00\x00\x01\x06\x05", "h264")
    with pytest.raises(BitstreamError, match="overruns"):
        streams.strip_informational_sei(b"\x00\x00\x01\x06\x05\x40abc\x80", "h264")
    with pytest.raises(BitstreamError, match="overruns"):
        streams.obu_types(b"\x12\x05\x00")


def test_encode_anchor_rate_options(qcif: list[Frame]) -> None:
    fine = anchors.encode_anchor(qcif, "h264", qp=22, gop="ld")
    coarse = anchors.encode_anchor(qcif, "x264", qp=40, gop="ld", preset="veryfast")
    assert len(fine.data) > 2 * len(coarse.data)
    with pytest.raises(CodecError, match="exactly one of crf and qp"):
        anchors.encode_anchor(qcif, "x264", crf=23, qp=23)
    with pytest.raises(CodecError, match="exactly one of crf and qp"):
        anchors.encode_anchor(qcif, "x265")
    with pytest.raises(CodecError, match="unknown anchor 'vp9'"):
        anchors.encode_anchor(qcif, "vp9", crf=30)

import dataclasses
from fractions import Fraction

import numpy as np
import pytest

from nvc.bitstream import SequenceHeader, Unit, UnitType
from nvc.codec import registry
from nvc.codec.base import StreamInfo
from nvc.errors import BitstreamError, CodecError
from nvc.media import Frame, synthetic_clip


def _random_frames(fmt: str, width: int, height: int, n: int, seed: int = 0) -> list[Frame]:
    from nvc.media import pixel_format

    pf = pixel_format(fmt)
    rng = np.random.default_rng(seed)
    return [
        Frame(
            tuple(
                rng.integers(0, pf.max_value + 1, s).astype(pf.dtype)
                for s in pf.plane_shapes(width, height)
            ),
            fmt,
            pts=i,
            time_base=Fraction(1, 25),
        )
        for i in range(n)
    ]


def _roundtrip(frames: list[Frame]) -> list[Frame]:
    spec = registry.get("lossless")
    first = frames[0]
    stream = StreamInfo(first.width, first.height, Fraction(25), first.format)
    enc = spec.create_encoder(stream)
    units = [u for f in frames for u in enc.encode(f)] + enc.encode(None)
    assert all(u.type == UnitType.FRAME and u.rap for u in units)
    header = SequenceHeader(
        1, enc.codec_params, first.width, first.height, Fraction(25), first.format
    )
    dec = spec.create_decoder(header)
    return [f for u in units for f in dec.decode(u)] + dec.decode(None)


@pytest.mark.parametrize(
    "fmt", ["yuv420p", "yuv420p10le", "yuv444p", "yuv444p10le", "rgb24", "rgb48le"]
)
def test_lossless_is_exact_for_every_format_at_odd_sizes(fmt):
    frames = _random_frames(fmt, 33, 17, 3)
    out = _roundtrip(frames)
    assert len(out) == 3
    for a, b in zip(frames, out, strict=True):
        assert a.equal(b)
        assert a.pts == b.pts


def test_every_frame_decodes_on_its_own():
    frames = list(synthetic_clip(48, 32, 4, seed=3))
    spec = registry.get("lossless")
    stream = StreamInfo(48, 32, Fraction(25), "yuv420p")
    enc = spec.create_encoder(stream)
    units = [u for f in frames for u in enc.encode(f)]
    header = SequenceHeader(1, enc.codec_params, 48, 32, Fraction(25), "yuv420p")
    # A decoder that joins at the third frame reproduces it exactly.
    dec = spec.create_decoder(header)
    (third,) = dec.decode(units[2])
    assert third.equal(frames[2])


def test_encoder_rejects_frames_of_another_size():
    enc = registry.get("lossless").create_encoder(StreamInfo(48, 32, Fraction(25), "yuv420p"))
    other = _random_frames("yuv420p", 40, 32, 1)[0]
    with pytest.raises(CodecError, match="40x32"):
        enc.encode(other)


def test_corrupt_frame_payload_is_a_bitstream_error():
    frames = _random_frames("yuv420p", 32, 16, 1)
    spec = registry.get("lossless")
    enc = spec.create_encoder(StreamInfo(32, 16, Fraction(25), "yuv420p"))
    (unit,) = enc.encode(frames[0])
    header = SequenceHeader(1, enc.codec_params, 32, 16, Fraction(25), "yuv420p")
    dec = spec.create_decoder(header)
    broken = Unit(UnitType.FRAME, unit.payload[: len(unit.payload) // 3], pts=0, rap=True)
    with pytest.raises(BitstreamError):
        dec.decode(broken)


def test_decoder_refuses_unknown_parameters():
    header = SequenceHeader(1, b"\x09junk", 32, 16, Fraction(25), "yuv420p")
    with pytest.raises(BitstreamError, match="parameters"):
        registry.get("lossless").create_decoder(header)


def _one_frame_stream(fmt: str = "yuv420p", slices: int = 4):
    frames = _random_frames(fmt, 48, 32, 1, seed=5)
    spec = registry.get("lossless")
    enc = spec.create_encoder(StreamInfo(48, 32, Fraction(25), fmt), {"slices": slices})
    (unit,) = enc.encode(frames[0])
    header = SequenceHeader(1, enc.codec_params, 48, 32, Fraction(25), fmt)
    return frames[0], unit, header


def _decode(header: SequenceHeader, payload: bytes) -> list[Frame]:
    dec = registry.get("lossless").create_decoder(header)
    return dec.decode(Unit(UnitType.FRAME, payload, pts=0, rap=True))


def test_every_bit_flip_in_a_payload_is_refused():
    """FFmpeg only logs a slice CRC mismatch and conceals the slice; nvc refuses it."""
    frame, unit, header = _one_frame_stream()
    payload = unit.payload
    for pos in range(0, len(payload), max(1, len(payload) // 97)):
        for bit in (0, 5):
            damaged = bytearray(payload)
            damaged[pos] ^= 1 << bit
            with pytest.raises(BitstreamError, match="CRC|checksum|slice|decode"):
                _decode(header, bytes(damaged))


def test_a_payload_cut_at_a_slice_boundary_is_refused():
    """The slice chain of the remaining slices is intact: only the frame checksum sees it."""
    from nvc.codec.lossless import check_slices

    frame, unit, header = _one_frame_stream()
    packet, check = unit.payload[:-4], unit.payload[-4:]
    last = int.from_bytes(packet[-8:-5], "big") + 8
    cut = packet[: len(packet) - last]
    check_slices(cut, 0)  # what remains is a valid chain of slices
    with pytest.raises(BitstreamError, match="checksum"):
        _decode(header, cut + check)


def test_version_1_streams_still_decode_with_their_slice_crcs_checked():
    frame, unit, header = _one_frame_stream("yuv444p10le")
    v1 = dataclasses.replace(header, codec_params=b"\x01" + header.codec_params[1:])
    packet = unit.payload[:-4]
    (out,) = _decode(v1, packet)
    for a, b in zip(out.planes, frame.planes, strict=True):
        np.testing.assert_array_equal(a, b)
    damaged = bytearray(packet)
    damaged[len(damaged) // 2] ^= 0x10
    with pytest.raises(BitstreamError, match="slice CRC"):
        _decode(v1, bytes(damaged))


def test_damaged_ffv1_parameters_are_refused():
    frame, unit, header = _one_frame_stream()
    params = bytearray(header.codec_params)
    params[len(params) // 2] ^= 1
    with pytest.raises(BitstreamError, match="CRC"):
        registry.get("lossless").create_decoder(
            dataclasses.replace(header, codec_params=bytes(params))
        )

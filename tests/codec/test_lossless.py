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

"""Rate-distortion rounding of the v2 image codec's latents (codec.RD_ROUNDING): an
encoder decision that the decoder does not see. On a real picture the tests carry
(data/vtest-crop.png, see test_capacity.py), coded intra with the shipped realtime2
weights, it lowers the frame's loss lambda(q) MSE + bpp against plain rounding, and the
stream decodes to the encoder's reconstruction exactly."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest

from nvc.codec.base import StreamInfo
from nvc.codec.conditional import codec as codec_mod
from nvc.codec.conditional import frames as fr
from nvc.codec.conditional.codec import FmConfig, FmDecoder, FmEncoder
from nvc.media import Frame, convert

CROP = Path(__file__).parent / "data" / "vtest-crop.png"


def _picture() -> Frame:
    with av.open(str(CROP)) as c:
        rgb = next(c.decode(video=0)).to_ndarray(format="rgb24")
    return convert(Frame((rgb,), "rgb24", 0, 1 / 25, False), "yuv420p")


def _intra(picture: Frame, q: int) -> tuple[int, float, bool]:
    """(bytes, loss, decodes exactly) of `picture` coded as an intra frame at q."""
    stream = StreamInfo(picture.width, picture.height, Fraction(25), "yuv420p", False, 1)
    enc = FmEncoder(stream, FmConfig(q=q))
    (unit,) = enc.encode(picture)
    recon = enc.last_reconstruction
    assert recon is not None
    codes = fr.frame_to_codes(picture, enc.coder.internal)
    loss = enc._cost(
        codes,
        fr.codes_to_fixed(fr.frame_to_codes(recon, enc.coder.internal), enc.coder.depth),
        len(unit.payload),
        q,
    )
    (decoded,) = FmDecoder(stream.to_header(3, enc.codec_params)).decode(unit)
    return len(unit.payload), loss, decoded.equal(recon)


@pytest.mark.parametrize("q", [8, 40])
def test_rd_rounding_lowers_the_loss_and_decodes_exactly(
    q: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    picture = _picture()
    assert codec_mod.RD_ROUNDING > 0  # on by default
    rd_bytes, rd_loss, rd_exact = _intra(picture, q)
    monkeypatch.setattr(codec_mod, "RD_ROUNDING", 0.0)
    plain_bytes, plain_loss, plain_exact = _intra(picture, q)
    assert rd_exact and plain_exact
    assert rd_bytes < 0.97 * plain_bytes, (rd_bytes, plain_bytes)
    assert rd_loss < plain_loss, (rd_loss, plain_loss)

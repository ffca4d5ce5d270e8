"""DPCM coding of the v2 intra codec's DC planes (dpcm.py, fm parameters version 4)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from nvc.codec.base import StreamInfo
from nvc.codec.conditional import dpcm
from nvc.codec.conditional import frames as fr
from nvc.codec.conditional.codec import FmConfig, FmDecoder, FmEncoder
from nvc.codec.entropy import SymbolReader, SymbolWriter
from nvc.errors import BitstreamError, CodecError
from nvc.media import Frame


@pytest.mark.parametrize("predictor", range(dpcm.PREDICTORS))
def test_errors_invert_exactly(predictor: int) -> None:
    rng = np.random.default_rng(predictor)
    for shape in [(1, 1), (1, 7), (6, 1), (13, 21)]:
        k = rng.integers(-(1 << 20), 1 << 20, shape).astype(np.int64)
        r = dpcm.errors(k, predictor)
        assert np.array_equal(dpcm.integers(r, predictor), k)
    # a plane is predicted exactly by the planar predictor, a row-constant by left
    i, j = np.mgrid[0:9, 0:12]
    plane = (3 * i - 2 * j + 5).astype(np.int64)
    assert not dpcm.errors(plane, 1)[1:, 1:].any()  # all but the first row and column
    assert not dpcm.errors(np.repeat(plane[:, :1], 12, 1), 0)[:, 1:].any()


def test_best_mode_codes_what_it_counts_and_decodes() -> None:
    i, j = np.mgrid[0:30, 0:40]
    k = (0.7 * i + 0.4 * j + 3 * np.sin(j / 5)).round().astype(np.int64)
    mode, bits = dpcm.best_mode(k)
    assert mode != dpcm.CONTEXT and bits < 1.5 * k.size  # a smooth plane is cheap
    w = SymbolWriter()
    dpcm.put_modes(w, [mode, dpcm.CONTEXT])
    dpcm.put_plane(w, k, mode)
    data = w.finish()
    assert len(data) * 8 <= bits + 64
    r = SymbolReader(data)
    assert dpcm.get_modes(r, 2) == [mode, dpcm.CONTEXT]
    assert np.array_equal(dpcm.get_plane(r, k.shape, mode), k)


def test_a_mode_out_of_range_is_refused() -> None:
    w = SymbolWriter()
    w.put_indexed(np.array([10_000], np.int64), np.zeros(1, np.uint8), dpcm.mode_table())
    with pytest.raises(CodecError, match="mode is out of range"):
        dpcm.get_modes(SymbolReader(w.finish()), 1)


def _gradient(width: int, height: int) -> Frame:
    """A smooth picture (the case DPCM is for): slow ramps in luma and chroma."""
    x = np.linspace(0, 1, width)[None, :]
    y = np.linspace(0, 1, height)[:, None]
    luma = (40 + 150 * (0.6 * x + 0.4 * y) + 8 * np.sin(6 * x)).round().astype(np.uint8)
    cb = np.full((height // 2, width // 2), 110, np.uint8) + (30 * x[:, ::2]).astype(np.uint8)
    cr = np.full((height // 2, width // 2), 140, np.uint8) - (20 * y[::2]).astype(np.uint8)
    return Frame(
        (luma, np.ascontiguousarray(cb), np.ascontiguousarray(cr)), "yuv420p", 0, 1 / 25, False
    )


def test_intra_frames_of_a_smooth_picture_are_dpcm_coded_and_decode_exactly() -> None:
    """With the shipped realtime2 weights: the encoder DPCM-codes the DC planes of a
    smooth picture, in fewer bytes than the context model alone; the version 4 decoder
    rebuilds the frame exactly; a decoder reading the stream as version 3 (no modes)
    does not produce that frame."""
    picture = _gradient(128, 96)
    stream = StreamInfo(128, 96, Fraction(25), "yuv420p", False, 1)
    enc = FmEncoder(stream, FmConfig(q=20))
    prior = enc.model.intra.prior
    assert prior.dc_channels == (0, 64, 80)
    x = fr.codes_to_net(fr.frame_to_codes(picture, enc.coder.internal), enc.coder.depth)
    y = enc.model.intra.latent(x, 20).detach()
    sizes = {}
    for dc in (False, True):
        w = SymbolWriter()
        prior.encode(y, None, w, None, dc)
        data = w.finish()
        sizes[dc] = len(data)
        with torch.no_grad():
            again = prior.decode(SymbolReader(data), tuple(y.shape), None, dc)  # type: ignore[arg-type]
        w2 = SymbolWriter()
        assert torch.equal(prior.encode(y, None, w2, None, dc), again)
    assert sizes[True] < 0.9 * sizes[False], sizes
    (unit,) = enc.encode(picture)
    header = stream.to_header(3, enc.codec_params)
    (out,) = FmDecoder(header).decode(unit)
    assert enc.last_reconstruction is not None and out.equal(enc.last_reconstruction)
    old = stream.to_header(3, bytes([3]) + enc.codec_params[1:])
    try:
        (wrong,) = FmDecoder(old).decode(unit)
    except BitstreamError:
        return
    assert not wrong.equal(out)


def test_a_silent_residual_costs_next_to_nothing_with_z_planes() -> None:
    """An all-zero residual through the shipped realtime2 residual codec: its z has
    bias-driven constant channels that the factorized prior finds improbable (hundreds of
    bytes at 640x480); DPCM-coded they cost almost nothing. Both decode exactly."""
    from nvc.codec.conditional import weights as wt

    codec = wt.default_model("realtime2").residual_coder
    with torch.no_grad():
        y = codec.latent(torch.zeros((1, 96, 60, 80)), 20)
    sizes = {}
    for planes in (False, True):
        w = SymbolWriter()
        with torch.no_grad():
            recon = codec.encode(y, 20, w, planes=planes)
        data = w.finish()
        sizes[planes] = len(data)
        with torch.no_grad():
            assert torch.equal(codec.decode(SymbolReader(data), 20, (60, 80), planes), recon)
    assert sizes[False] > 250 and sizes[True] < 80, sizes


def test_a_flagged_z_channel_without_a_mode_is_refused() -> None:
    from nvc.codec.conditional import weights as wt

    prior = wt.default_model("realtime2").residual_coder.prior
    w = SymbolWriter()
    dpcm.put_flags(w, [True] + [False] * (prior.hyper - 1))
    dpcm.put_modes(w, [dpcm.CONTEXT])
    with pytest.raises(CodecError, match="no DPCM mode"):
        prior._get_z(SymbolReader(w.finish()), (1, prior.hyper, 2, 3), True)

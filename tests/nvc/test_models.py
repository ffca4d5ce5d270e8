"""nvc.models: the research loader, with the shipped fm weights."""

from __future__ import annotations

import pytest
import torch

import nvc.models
from nvc.codec.conditional.layers import ONE
from nvc.codec.entropy import SymbolWriter
from nvc.errors import CodecError
from nvc.media import Frame, psnr_yuv, synthetic_clip


@pytest.fixture(scope="module")
def fm() -> nvc.models.FmImageModel:
    return nvc.models.load("fm", variant="realtime", pretrained=True)


@pytest.fixture(scope="module")
def pictures() -> list[Frame]:
    return synthetic_clip(64, 48, 2, seed=5)


def test_forward_gives_likelihoods_of_the_latents(fm, pictures) -> None:
    x = torch.cat([fm.to_tensor(pictures[0])] * 2)  # one picture at two qualities
    assert x.shape == (2, 96, 6, 8)
    fm.train()
    try:
        out = fm.forward(x, q=torch.tensor([10, 50]))
    finally:
        fm.eval()
    y, z = out.likelihoods["y"], out.likelihoods["z"]
    with torch.no_grad():  # the latent's shape, as the codec's analysis makes it
        latent = fm.network.intra.latent(x[:1], 10)
    assert y.shape == (2, *latent.shape[1:]) and z.shape[0] == 2
    assert z.shape[2] < y.shape[2] and z.shape[3] < y.shape[3]  # the hyper-latent is coarser
    assert bool(((y > 0) & (y <= 1)).all()) and bool(((z > 0) & (z <= 1)).all())
    bits = -torch.log2(y).sum(dim=(1, 2, 3)) - torch.log2(z).sum(dim=(1, 2, 3))
    assert torch.allclose(bits, out.bits, rtol=1e-4)
    assert out.x_hat.shape == x.shape
    assert float(out.bits[1].detach()) > float(out.bits[0].detach())  # q 50 costs more than 10
    (out.bits.sum() + out.x_hat.square().sum()).backward()  # trainable: gradients flow
    grads = [p.grad for p in fm.network.intra.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)
    fm.network.zero_grad(set_to_none=True)


def test_compress_decompress_is_bit_exact(fm, pictures) -> None:
    x = torch.cat([fm.to_tensor(f) for f in pictures])
    packed = fm.compress(x, q=30)
    assert len(packed.strings) == 2 and packed.shape == (6, 8) and packed.q == 30
    assert fm.compress(x, q=30).strings == packed.strings  # deterministic
    decoded = fm.decompress(packed.strings, packed.shape, q=30).x_hat
    # the encoder's own reconstruction of picture 0, from the codec's coding path
    codec = fm.network.intra
    with torch.no_grad():
        recon = codec.encode(codec.latent(x[:1], 30), 30, SymbolWriter()) / ONE
    assert torch.equal(decoded[:1], recon.to(torch.float32))
    other = nvc.models.load("fm", variant="realtime")  # another copy decodes the same values
    assert torch.equal(other.decompress(packed.strings, packed.shape, q=30).x_hat, decoded)
    frame = fm.to_frame(decoded[:1], 64, 48)
    assert (frame.width, frame.height, frame.format) == (64, 48, "yuv420p")
    trained = psnr_yuv(pictures[0], frame).weighted
    untrained = nvc.models.load("fm", variant="realtime", pretrained=False)
    packed_u = untrained.compress(x[:1], q=30)
    plain = untrained.to_frame(untrained.decompress(packed_u.strings, (6, 8), 30).x_hat, 64, 48)
    assert trained > psnr_yuv(pictures[0], plain).weighted + 8  # the weights are trained
    assert trained > 25


def test_loaded_weights_are_a_private_copy(fm) -> None:
    from nvc.codec.conditional import weights as wt

    assert fm.network is not wt.default_model("realtime")
    assert fm.pretrained and fm.weights_hash == wt.short_hash(wt.default_model("realtime"))


def test_other_models_and_errors(fm) -> None:
    names = {e.name: e for e in nvc.models.available()}
    assert names["fm"].pretrained and not names["inr"].pretrained
    inr = nvc.models.load("inr", pretrained=False, width=64, height=48)
    assert isinstance(inr.network, torch.nn.Module) and not inr.pretrained
    assert inr.config.stem in ("pe", "embed")
    with pytest.raises(CodecError, match="no pretrained weights"):
        nvc.models.load("inr")
    with pytest.raises(CodecError, match="no learned model"):
        nvc.models.load("lossless")
    with pytest.raises(CodecError, match="no model named"):
        nvc.models.load("bpg")
    with pytest.raises(CodecError, match="unknown fm variant"):
        nvc.models.load("fm", variant="huge")
    with pytest.raises(CodecError, match=r"\(B, 96"):
        fm.compress(torch.zeros(1, 3, 8, 8), q=1)
    with pytest.raises(CodecError, match="0..63"):
        fm.compress(torch.zeros(1, 96, 2, 2), q=64)

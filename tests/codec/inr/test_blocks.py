"""Each building block at tiny sizes: training mode, exact mode, and their agreement."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nvc.codec.inr.blocks import (
    SCRB,
    QConv,
    UpBlock,
    channel_affine,
    hswish,
    positional_encoding,
    positional_encoding_exact,
    relu,
    shuffle,
    sine,
    up2,
)
from nvc.codec.inr.config import ModelConfig
from nvc.codec.inr.model import ContentEncoder, InrNet
from nvc.codec.inr.quant import code_steps, quantize_weight, steps_from_code
from nvc.errors import CodecError


def _cl(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)


def test_positional_encoding_matches_exact_version() -> None:
    t = torch.tensor([0.0, 0.3, 0.99])
    pe = positional_encoding(t, 16)
    assert pe.shape == (3, 32, 1, 1)
    for i, v in enumerate(t.tolist()):
        assert torch.allclose(pe[i : i + 1], positional_encoding_exact(v, 16), atol=1e-6)


def test_activations() -> None:
    x = torch.linspace(-8, 8, 1001)
    assert torch.allclose(hswish(x), F.hardswish(x), atol=1e-6)
    assert torch.equal(relu(x), torch.relu(x))
    assert float((sine(x) - torch.sin(x)).abs().max()) < 0.06


def test_up2_is_bilinear_upsampling() -> None:
    x = torch.randn(2, 3, 5, 7)
    ref = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(up2(x), ref, atol=1e-6)
    one = torch.randn(1, 2, 1, 1)
    assert torch.equal(up2(one), one.expand(1, 2, 2, 2))


def test_shuffle_is_pixel_shuffle_with_its_channel_order() -> None:
    x = torch.randn(2, 12, 3, 4)
    c = 3
    # our channel (2 i + j) C + c is torch's channel 4 c + 2 i + j
    order = [k * c + ch for ch in range(c) for k in range(4)]
    assert torch.equal(shuffle(x), F.pixel_shuffle(x[:, order], 2))
    assert shuffle(_cl(x)).is_contiguous(memory_format=torch.channels_last)


def test_channel_affine_is_the_broadcast_formula() -> None:
    x = _cl(torch.randn(1, 5, 6, 7))
    s, o = torch.randn(5), torch.randn(5)
    assert torch.equal(channel_affine(x, s, o), x * s.reshape(1, -1, 1, 1) + o.reshape(1, -1, 1, 1))


def _code(layer: QConv) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Snap a QConv's steps to coded values (as train.py does); return its integers."""
    base, k = code_steps(layer.w_logstep.detach().exp().numpy())
    steps = steps_from_code(base, k)
    b_step = np.float32(float(layer.b_logstep.detach().exp()))
    with torch.no_grad():
        layer.w_logstep.copy_(torch.from_numpy(np.log(steps.astype(np.float64))).float())
        layer.b_logstep.fill_(float(np.log(np.float64(b_step))))
    w = quantize_weight(layer.weight.detach().numpy(), steps)
    b = quantize_weight(layer.bias.detach().numpy(), np.array([b_step])).astype(np.float32) * b_step
    return w, steps, b


@pytest.mark.parametrize(("k", "groups", "spatial"), [(3, 1, 6), (1, 1, 1), (3, 4, 5), (1, 1, 4)])
def test_qconv_exact_mode_matches_training_mode(k: int, groups: int, spatial: int) -> None:
    torch.manual_seed(0)
    layer = QConv(8, 8, k, groups=groups, act_bits=10)
    x = _cl(torch.randn(1, 8, spatial, spatial))
    layer.init_steps(x)
    layer.eval()
    w, steps, b = _code(layer)
    with torch.no_grad():
        ref = layer(x)
        layer.load_exact(w, steps, np.float32(float(layer.a_step())), b)
        out = layer(x, exact=True)
    assert out.shape == ref.shape == (1, 8, spatial, spatial)
    assert float((out - ref).abs().max()) < 1e-4 * float(ref.abs().max())
    assert layer.macs == 1 * 8 * (8 // groups) * k * k  # pixels defaults to 1


def test_qconv_training_modes() -> None:
    """float: the plain conv; noise: weights off by at most half a step, inputs and bias
    float; ste: everything rounded (the mode the exact decoder matches)."""
    torch.manual_seed(1)
    layer = QConv(6, 5, 3, act_bits=8)
    x = torch.randn(2, 6, 7, 7)
    layer.init_steps(x)
    layer.eval()
    plain = F.conv2d(x, layer.weight, layer.bias, padding=1)
    step = layer.w_step()
    with torch.no_grad():
        layer.mode = "float"
        assert torch.equal(layer(x), plain)
        layer.mode = "noise"
        noisy = layer(x)
        # the difference is a conv of x with noise bounded by half a step per weight
        bound = F.conv2d(x.abs(), (0.5 * step).expand_as(layer.weight), padding=1)
        assert not torch.equal(noisy, plain)
        assert bool(((noisy - plain).abs() <= bound + 1e-5).all())
        layer.mode = "ste"
        wq = torch.round(layer.weight / step) * step
        bq = torch.round(layer.bias / layer.b_logstep.exp()) * layer.b_logstep.exp()
        a = layer.a_step()
        xq = torch.clamp(torch.round(x / a), layer.lo, layer.hi) * a
        assert torch.allclose(layer(x), F.conv2d(xq, wq, bq, padding=1), atol=1e-5)


def test_network_modes_reach_every_layer_and_the_embeddings() -> None:
    cfg = ModelConfig(
        channels=(8, 8),
        kernels=(3,),
        stem="embed",
        pe_levels=4,
        hidden=8,
        embed_dim=2,
        modulation=True,
        sin_blocks=0,
        act="relu",
        scrb=True,
        skip=False,
        head_kernel=1,
        head_shuffle=False,
        act_bits=10,
        per_channel=True,
        group_size=4,
        rap_every=1,
    )
    net = InrNet(cfg, (2, 2))
    emb = torch.randn(1, 2, 2, 2) * 10
    net.set_mode("float")
    assert {layer.mode for layer in net.layers} == {"float"}
    e, q = net.quantize_embedding(emb)
    assert not torch.equal(q, torch.round(q))  # float: not rounded
    net.set_mode("ste")
    e, q = net.quantize_embedding(emb)
    assert torch.equal(q, torch.round(q)) and {layer.mode for layer in net.layers} == {"ste"}
    with pytest.raises(CodecError, match="unknown training mode"):
        net.set_mode("fp16")


def test_qconv_rate_proxy_is_positive_and_differentiable() -> None:
    layer = QConv(4, 6, 3)
    layer.init_steps(torch.randn(1, 4, 3, 3))
    bits = layer.rate_bits()
    bits.backward()
    assert float(bits.detach()) > 0
    assert layer.weight.grad is not None and layer.w_logstep.grad is not None


@pytest.mark.parametrize(
    ("act", "scrb", "skip", "mod"),
    [
        ("relu", False, False, 0),
        ("hswish", True, True, 16),
        ("sine", False, True, 16),
        ("hswish", True, False, 0),
    ],
)
def test_upblock_variants(act: str, scrb: bool, skip: bool, mod: int) -> None:
    torch.manual_seed(1)
    block = UpBlock(6, 4, 3, act, scrb=scrb, skip=skip, mod_dim=mod, act_bits=10, per_channel=True)
    x = _cl(torch.randn(1, 6, 3, 5))
    tfeat = torch.randn(1, mod, 1, 1) if mod else None
    for layer in [m for m in block.modules() if isinstance(m, QConv)]:
        layer.init_steps(torch.randn(1, layer.cin, 2, 2))
    y = block(x, tfeat, exact=False)
    assert y.shape == (1, 4, 6, 10)
    y.sum().backward()
    block.set_pixels(3, 5)
    assert block.conv.macs == 15 * 16 * 6 * 9


def test_scrb_starts_close_to_identity() -> None:
    block = SCRB(8, "hswish", act_bits=10)
    x = torch.randn(1, 8, 4, 4)
    for layer in (block.dw, block.pw):
        layer.init_steps(x)
    with torch.no_grad():
        assert float((block(x, exact=False) - x).abs().mean()) < 0.1 * float(x.abs().mean())


def _model(stem: str = "embed", **kw: object) -> ModelConfig:
    base = dict(
        channels=(8, 6, 4),
        kernels=(3, 3),
        stem=stem,
        pe_levels=8,
        hidden=8,
        embed_dim=2,
        modulation=True,
        sin_blocks=1,
        act="hswish",
        scrb=True,
        skip=True,
        head_kernel=3,
        head_shuffle=False,
        act_bits=10,
        per_channel=True,
        group_size=4,
        rap_every=1,
    )
    base.update(kw)
    return ModelConfig(**base).validate()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("stem", "head_shuffle"), [("pe", False), ("embed", False), ("embed", True)]
)
def test_network_output_covers_the_padded_frame(stem: str, head_shuffle: bool) -> None:
    cfg = _model(stem, head_shuffle=head_shuffle)
    grid = cfg.grid(13, 7)  # stride 4 (8 with the sub-pixel head)
    net = InrNet(cfg, grid)
    t = torch.tensor([0.125, 0.375])
    emb = torch.randn(2, 2, *grid) if stem == "embed" else None
    out = net(net.pe(t), emb)
    assert out.shape == (2, 3, grid[0] * cfg.stride, grid[1] * cfg.stride)
    assert net.macs() > 0
    assert len(net.layers) == len({id(x) for x in net.layers})
    if stem == "pe":  # no embedding stem: asking for one is a typed error, not an assert
        with pytest.raises(CodecError, match="not an embedding stem"):
            net.embed_step()
    else:
        assert net.stem is net.stem_conv
        with pytest.raises(CodecError, match="needs the frame's embedding"):
            net(net.pe(t), None)


def test_content_encoder_reaches_the_stem_grid() -> None:
    enc = ContentEncoder(4, 5)
    assert enc(torch.rand(2, 3, 32, 48)).shape == (2, 5, 2, 3)
    with torch.no_grad():
        assert math.isfinite(float(enc(torch.rand(1, 3, 16, 16)).sum()))


@pytest.mark.parametrize(
    "kw",
    [
        {"stem": "pe"},
        {"stem": "embed", "head_shuffle": True},
        {"stem": "embed", "scrb": False, "modulation": False},
        {"stem": "embed", "grid_channels": (2, 3)},
    ],
)
def test_network_cost_matches_the_network(kw: dict[str, object]) -> None:
    from nvc.codec.inr.model import network_cost

    cfg = _model(**kw)  # type: ignore[arg-type]
    net = InrNet(cfg, (2, 3))
    params = sum(x.weight.numel() + x.bias.numel() for x in net.layers)
    assert network_cost(cfg, (2, 3)) == (params, net.macs())

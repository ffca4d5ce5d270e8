"""Fixed-point networks: exact integer arithmetic, independent of threads and algorithm."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from nvc.codec.entropy.fixed_point import FixedPointLayer, FixedPointNetwork, _exact_conv
from nvc.errors import CodecError


def _random_int_layer(deconv: bool) -> tuple[nn.Module, FixedPointLayer]:
    torch.manual_seed(1)
    if deconv:
        m: nn.Module = nn.ConvTranspose2d(5, 4, 5, stride=2, padding=2, output_padding=1)
    else:
        m = nn.Conv2d(5, 4, 5, stride=2, padding=2)
    net = FixedPointNetwork.from_modules([m], fraction_bits=0)
    return m, net.layers[0]


@pytest.mark.parametrize("deconv", [False, True])
def test_exact_conv_equals_torch_on_integers(deconv: bool) -> None:
    m, layer = _random_int_layer(deconv)
    x = torch.randint(-1000, 1000, (2, 5, 7, 9)).double()
    ours = _exact_conv(x, layer)
    w = layer.weight  # integer weights at 2**weight_bits, conv layout
    if deconv:
        ref_w = w.transpose(0, 1).flip(2, 3)  # back to the transposed-conv layout
        ref = F.conv_transpose2d(x, ref_w, layer.bias, stride=2, padding=2, output_padding=1)
    else:
        ref = F.conv2d(x, w, layer.bias, stride=2, padding=2)
    assert ours.shape == ref.shape
    assert torch.equal(ours, ref)
    assert torch.equal(ours, torch.round(ours))


def test_network_tracks_the_float_network_and_ignores_thread_count() -> None:
    torch.manual_seed(2)
    seq = nn.Sequential(
        nn.ConvTranspose2d(8, 8, 5, 2, 2, 1), nn.ReLU(), nn.Conv2d(8, 6, 3, 1, 1), nn.ReLU()
    )
    net = FixedPointNetwork.from_modules(seq, fraction_bits=12)
    z = torch.randint(-20, 20, (1, 8, 6, 6)).float()
    one = 2.0**12
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = net(z.double() * one)
        torch.set_num_threads(2)
        b = net(z.double() * one)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(a, b)
    with torch.no_grad():
        ref = seq(z).double()
    assert float((a / one - ref).abs().max()) < 1e-2


def test_weight_bits_shrink_for_large_weights_and_bounds_hold() -> None:
    conv = nn.Conv2d(64, 4, 5)
    with torch.no_grad():
        conv.weight.fill_(3.0)
    net = FixedPointNetwork.from_modules([conv], fraction_bits=12)
    layer = net.layers[0]
    assert layer.weight_bits < 16
    worst = float(layer.weight.abs().sum(dim=(1, 2, 3)).max()) * net.limit
    assert worst + float(layer.bias.abs().max()) <= 2.0**52


def test_unsupported_modules_raise() -> None:
    with pytest.raises(CodecError):
        FixedPointNetwork.from_modules([nn.Sigmoid()], 8)
    with pytest.raises(CodecError):
        FixedPointNetwork.from_modules([nn.ReLU()], 8)
    with pytest.raises(CodecError):
        FixedPointNetwork.from_modules([nn.Conv2d(4, 4, 3, groups=2)], 8)
    bad = nn.Conv2d(1, 1, 1)
    with torch.no_grad():
        bad.weight.fill_(float("nan"))
    with pytest.raises(CodecError):
        FixedPointNetwork.from_modules([bad], 8)
    huge = nn.Conv2d(1, 1, 1)
    with torch.no_grad():
        huge.weight.fill_(1e30)
    with pytest.raises(CodecError):
        FixedPointNetwork.from_modules([huge], 8)

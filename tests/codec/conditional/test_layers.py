"""Fixed-point layers: shapes, agreement with the float path, exactness."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from nvc.codec.conditional.layers import (
    ACT_LIMIT,
    ONE,
    WARP_BITS,
    Block,
    Conv,
    Down,
    Seq,
    Up,
    exact_warp,
    from_fixed,
    to_fixed,
    upsample_nearest,
    warp,
)
from nvc.errors import CodecError


def _close(a: torch.Tensor, b: torch.Tensor, tol: float) -> bool:
    return float((a - b).abs().max()) <= tol


def test_shapes_and_agreement() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 8, 6, 10)
    cases = [
        (Conv(8, 12, 1, relu=True), (2, 12, 6, 10)),
        (Conv(8, 12, 3), (2, 12, 6, 10)),
        (Conv(8, 12, 3, 2), (2, 12, 3, 5)),
        (Conv(8, 8, 3, depthwise=True), (2, 8, 6, 10)),
        (Conv(8, 8, 3, 2, depthwise=True, relu=True), (2, 8, 3, 5)),
        (Block(8), (2, 8, 6, 10)),
        (Down(8, 16), (2, 16, 3, 5)),
        (Up(8, 4, 3, relu=True), (2, 4, 12, 20)),
        (Seq(Conv(8, 8, 1, relu=True), Block(8), Down(8, 8)), (2, 8, 3, 5)),
    ]
    for layer, shape in cases:
        with torch.no_grad():
            f = layer(x)
        e = layer.exact(to_fixed(x))
        assert tuple(f.shape) == shape and tuple(e.shape) == shape
        assert e.dtype == torch.float64 and torch.equal(e, torch.round(e))  # integers
        assert _close(from_fixed(e), f, 0.01), type(layer).__name__


def test_exact_is_independent_of_threads_and_layout() -> None:
    torch.manual_seed(1)
    net = Seq(Conv(16, 32, 3, relu=True), Block(32), Conv(32, 16, 1))
    x = to_fixed(torch.randn(1, 16, 20, 24) * 4)
    torch.set_num_threads(1)
    a = net.exact(x)
    torch.set_num_threads(2)
    b = net.exact(x)
    c = net.exact(torch.cat([x, x]))[1:]  # batched: another matmul shape
    torch.set_num_threads(1)
    assert torch.equal(a, b) and torch.equal(a, c)


def test_large_weights_stay_exact() -> None:
    conv = Conv(64, 4, 3)
    with torch.no_grad():
        conv.conv.weight.fill_(30.0)
    x = torch.full((1, 64, 4, 4), 60000.0)  # near the activation clamp
    out = conv.exact(to_fixed(x))
    assert torch.equal(out, torch.round(out))


@pytest.mark.parametrize(
    "conv", [Conv(16, 8, 3), Conv(16, 8, 3, 2, relu=True), Conv(16, 16, 3, depthwise=True)]
)
def test_exact_conv_equals_integer_arithmetic(conv: Conv) -> None:
    """The float64 convolution equals the same sums computed in int64, at magnitudes near
    the limits (activations near the clamp, weights at their largest integer scale)."""
    torch.manual_seed(3)
    with torch.no_grad():
        conv.conv.weight.uniform_(-2.0, 2.0)
        conv.conv.bias.uniform_(-2.0, 2.0)
    x = torch.randint(-int(ACT_LIMIT), int(ACT_LIMIT) + 1, (2, 16, 7, 9)).double()
    out = conv.exact(x)
    iw = conv._ints()
    k, s, c = conv.k, conv.stride, x.shape[1]
    xi = F.pad(x.long(), (k // 2,) * 4)
    w = iw.weight.long().reshape(iw.weight.shape[0], -1, k, k)
    taps = F.unfold(xi.double(), k, stride=s).long()  # (B, C*k*k, L), integers, exact
    if conv.depthwise:
        acc = (taps.reshape(2, c, k * k, -1) * w.reshape(1, c, k * k, 1)).sum(2)
    else:
        acc = torch.matmul(w.reshape(w.shape[0], -1), taps)
    acc = acc + iw.bias.long()[None, :, None]
    acc = torch.div(acc + (1 << (iw.bits - 1)), 1 << iw.bits, rounding_mode="floor")
    ho, wo = out.shape[2], out.shape[3]
    ref = acc.reshape(2, -1, ho, wo).double().clamp(0.0 if conv.relu else -ACT_LIMIT, ACT_LIMIT)
    assert iw.bits > 0 and torch.equal(out, ref)


def test_exact_warp_matches_float_warp() -> None:
    torch.manual_seed(2)
    x = torch.rand(1, 3, 9, 11)
    disp = (torch.rand(1, 2, 9, 11) - 0.5) * 6
    unit = float(1 << WARP_BITS)
    disp_q = torch.floor(disp * unit) / unit
    f = warp(x, disp_q)
    e = exact_warp(to_fixed(x), disp_q.to(torch.float64) * unit)
    assert _close(from_fixed(e), f, 2.0 / ONE)
    # integer displacements move pixels exactly, borders are clamped
    shifted = exact_warp(to_fixed(x), torch.ones(1, 2, 9, 11, dtype=torch.float64) * unit)
    assert torch.equal(shifted[..., :-1, :-1], to_fixed(x)[..., 1:, 1:])
    assert torch.equal(shifted[..., -1, -1], to_fixed(x)[..., -1, -1])


def test_warp_gradients_flow() -> None:
    x = torch.rand(1, 2, 6, 6, requires_grad=True)
    d = (torch.rand(1, 2, 6, 6) * 2).requires_grad_(True)
    warp(x, d).sum().backward()
    assert x.grad is not None and d.grad is not None and d.grad.abs().sum() > 0


def test_upsample_nearest() -> None:
    x = torch.arange(4.0).view(1, 1, 2, 2)
    assert upsample_nearest(x, 2).shape == (1, 1, 4, 4)
    assert upsample_nearest(x, 2)[0, 0, 1, 3] == 1


def test_block_warp_of_the_picture_equals_the_per_pixel_warp() -> None:
    """exact_warp_picture (per block, from the 96-channel layout) gives exactly the integers
    of exact_warp on the planes with the block vectors upsampled, for vectors far outside
    the picture too (clamped borders), and for a zero field."""
    from nvc.codec.conditional import frames as fr
    from nvc.codec.conditional.model import exact_warp_picture

    torch.manual_seed(4)
    ref = torch.randint(-int(ACT_LIMIT), int(ACT_LIMIT) + 1, (2, 96, 3, 5)).double()
    for scale in (0.0, 0.3, 7.0):
        flow = torch.floor(torch.randn(2, 2, 3, 5) * scale * ONE).double()
        y, uv = fr.split_96(ref)
        dy = torch.floor(flow * (8.0 * (1 << WARP_BITS)) / ONE)
        duv = torch.floor(flow * (4.0 * (1 << WARP_BITS)) / ONE)
        expected = fr.planes_to_96(
            exact_warp(y, upsample_nearest(dy, 8)), exact_warp(uv, upsample_nearest(duv, 4))
        )
        assert torch.equal(exact_warp_picture(ref, flow), expected), scale


def test_exact_at_positions_equals_the_full_evaluation() -> None:
    """Conv.exact_at gives the integers of Conv.exact at the chosen positions; with only
    the neighbour taps, the same where the input is zero under the others (a checkerboard's
    non-anchors, whose neighbours are the anchors)."""
    from nvc.codec.conditional.latent import checkerboard

    torch.manual_seed(5)
    x = to_fixed(torch.randn(1, 8, 5, 7) * 3)
    where = torch.tensor([0, 3, 8, 20, 34])
    for conv in (Conv(8, 6, 3, relu=True), Conv(8, 6, 1), Conv(8, 16, 3)):
        full = conv.exact(x).reshape(conv.conv.out_channels, -1)
        assert torch.equal(conv.exact_at(x, where)[0, :, 0], full[:, where])
    conv = Conv(8, 6, 3)
    mask = checkerboard(5, 7)
    anchors_only = x * mask
    rest = torch.nonzero(~mask.reshape(-1)).view(-1)
    taps = ((0, 1), (1, 0), (1, 2), (2, 1))
    full = conv.exact(anchors_only).reshape(6, -1)[:, rest]
    assert torch.equal(conv.exact_at(anchors_only, rest, taps)[0, :, 0], full)
    assert not torch.equal(
        conv.exact_at(x, rest, taps)[0, :, 0], conv.exact(x).reshape(6, -1)[:, rest]
    )


def test_exact_parts_equals_exact_of_the_concatenation() -> None:
    torch.manual_seed(6)
    a = to_fixed(torch.randn(1, 5, 4, 6) * 4)
    b = to_fixed(torch.randn(1, 3, 4, 6) * 4)[..., :4, :6]
    for net in (Seq(Conv(8, 6, 1, relu=True), Block(6)), Seq(Conv(8, 6, 3), Conv(6, 2, 1))):
        assert torch.equal(net.exact_parts([a, b]), net.exact(torch.cat([a, b], 1)))
    with pytest.raises(CodecError, match="channels"):
        Conv(9, 2, 1).exact_parts([a, b])

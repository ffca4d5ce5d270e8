"""Training targets and losses: the sub-pixel loss is the shuffled output's loss."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

from nvc.codec.base import StreamInfo
from nvc.codec.inr.blocks import shuffle
from nvc.codec.inr.config import InrConfig
from nvc.codec.inr.frames import Geometry, plane_loss, subpixel_loss, subpixel_targets
from nvc.codec.inr.plan import make_plan
from nvc.codec.inr.train import group_data
from nvc.media import synthetic_clip


def _targets(geo: Geometry, n: int) -> tuple[torch.Tensor, ...]:
    h, w = geo.height, geo.width
    if not geo.yuv:
        return (torch.rand(n, 3, h, w),)
    ch = (2, h // 2, w // 2) if geo.subsampled else (2, h, w)
    return torch.rand(n, 1, h, w), torch.rand(n, *ch)


@pytest.mark.parametrize("fmt", ["yuv420p", "yuv444p", "rgb24"])
def test_subpixel_loss_and_its_gradient_equal_the_shuffled_outputs(fmt: str) -> None:
    torch.manual_seed(3)
    geo = Geometry(22, 14, fmt, False, 8)  # padded to 24 x 16: the crop is exercised
    hp, wp = geo.padded
    out = torch.rand(3, 12, hp // 2, wp // 2, requires_grad=True)
    targets = _targets(geo, 3)
    sub = subpixel_targets(targets, geo)
    assert sub is not None
    a = plane_loss(shuffle(out), targets, geo)
    (ga,) = torch.autograd.grad(a, out)
    a = a.detach()
    b = subpixel_loss(out, sub, geo)
    (gb,) = torch.autograd.grad(b, out)
    b = b.detach()
    assert abs(a.item() - b.item()) <= 1e-6 * a.item()
    assert torch.allclose(ga, gb, rtol=1e-5, atol=1e-9)
    assert float(gb[:, :, -1].abs().sum()) == 0.0  # the padding row is outside the picture


def test_odd_sizes_have_no_subpixel_targets() -> None:
    geo = Geometry(21, 14, "rgb24", False, 8)
    assert subpixel_targets(_targets(geo, 1), geo) is None


def test_group_data_of_a_shuffling_head_carries_subpixel_targets() -> None:
    clip = synthetic_clip(48, 32, 2, fps=Fraction(25), format="yuv420p", seed=5)
    stream = StreamInfo(48, 32, Fraction(25), "yuv420p", frame_count=2)
    plan = make_plan(stream, InrConfig(preset="quality", bpp=1.0))
    assert plan.model.head_shuffle
    data = group_data(clip, plan.geometry, plan.model, "cpu")
    assert data.subpixel is not None
    assert data.subpixel[0].shape == (2, 4, 1, 16, 24)
    # sub-pixel (i, j) = (1, 0) of frame 1 is the luma's odd rows, even columns
    assert torch.equal(data.subpixel[0][1, 2, 0], data.targets[0][1, 0, 1::2, 0::2])

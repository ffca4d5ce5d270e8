"""The exact 2D renderer: golden tables, order- and chunk-independence, float agreement."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nvc.codec.gaussian import render
from nvc.codec.gaussian import tables as T
from nvc.codec.gaussian.fit import to_float
from nvc.codec.gaussian.render import Canvas, render_exact, render_float, to_planes, windows
from nvc.codec.gaussian.state import Bounds, Gaussians2D
from nvc.errors import BitstreamError


def random_state(n: int, w: int, h: int, seed: int = 0) -> Gaussians2D:
    rng = np.random.default_rng(seed)
    return Gaussians2D(
        rng.integers(-64, w * 16 + 64, n),
        rng.integers(-64, h * 16 + 64, n),
        rng.integers(0, T.SCALE_MAX + 1, n),
        rng.integers(0, T.SCALE_MAX + 1, n),
        rng.integers(0, T.ANGLES, n),
        rng.integers(-3000, 5000, n),
        rng.integers(-2000, 2000, n),
        rng.integers(-2000, 2000, n),
    )


def test_tables_are_the_golden_ones():
    # A change here changes every decoded picture: it is a bitstream change.
    assert T.table_digest() == "a6fbcc862c7d5aa6cce4e7b5bdaf53b7adbab845e8108dfdceb9e1c2c8ae7c5a"


def test_exp_table_shape():
    e = T.exp_table()
    assert e[0] == round(4096 * np.exp(-0.5 / 128)) and e[-1] == 0
    assert np.all(np.diff(e) <= 0)
    cos, sin = T.trig()
    assert cos[0] == 1 << 14 and sin[128] == 1 << 14 and cos[128] == 0
    assert np.all(np.abs(cos**2 + sin**2 - (1 << 28)) < 2**16)


def test_render_does_not_depend_on_order_chunks_or_threads(monkeypatch):
    g = random_state(300, 40, 30)
    cv = Canvas(40, 30, "yuv420p")
    ref = render_exact(g, cv)
    perm = np.random.default_rng(1).permutation(g.count)
    assert torch.equal(render_exact(g.take(perm), cv), ref)
    monkeypatch.setattr(render, "CHUNK", 64)
    old = torch.get_num_threads()
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            assert torch.equal(render_exact(g, cv), ref)
    finally:
        torch.set_num_threads(old)


@pytest.mark.parametrize("fmt", ["yuv420p", "yuv444p10le", "rgb24"])
def test_float_render_agrees_with_the_exact_one(fmt):
    g = Bounds(33, 21).clamp(random_state(120, 33, 21, seed=2))
    cv = Canvas(33, 21, fmt)
    exact = render_exact(g, cv).double() / float(1 << 24)
    approx = render_float(to_float(g, "cpu"), windows(g), cv).double()
    # the table quantizes q to 1/64 and the weights to 2**-12: about 0.1% of the values
    scale = exact.abs().mean()
    assert (exact - approx).abs().max() < 0.02 * exact.abs().max()
    assert (exact - approx).abs().mean() < 2e-3 * scale
    planes = to_planes(render_exact(g, cv), cv)
    from nvc.media import Frame

    Frame(planes, fmt)  # the shapes and dtypes of the format (odd sizes included)


def test_renderer_refuses_too_much_work():
    g = Gaussians2D(*[np.full(10, v, np.int64) for v in (100, 100, 56, 56, 0, 1, 1, 1)])
    with pytest.raises(BitstreamError, match="pixel evaluations"):
        render_exact(g, Canvas(16, 16, "yuv420p"), max_pixels=1000)

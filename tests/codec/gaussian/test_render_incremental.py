"""The incremental 2D renderer: each state drawn from the last one's accumulators is
bit-identical to rendering it whole, and draws only what changed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nvc.codec.gaussian import render
from nvc.codec.gaussian.render import Canvas, IncrementalRenderer, render_exact
from nvc.codec.gaussian.state import Bounds, Gaussians2D
from nvc.errors import BitstreamError
from tests.codec.gaussian.test_render import random_state


def _step(g: Gaussians2D, rng: np.random.Generator, bounds: Bounds) -> Gaussians2D:
    """A P-frame-like change: a few removed, a few moved or recoloured, a few born."""
    keep = rng.random(g.count) > 0.05
    cols = [c[keep].copy() for c in g.columns()]
    n = int(keep.sum())
    touched = rng.choice(n, size=max(1, n // 10), replace=False)
    for i in range(8):
        cols[i][touched] += rng.integers(-20, 21, touched.size)
    born = random_state(int(rng.integers(0, 8)), 64, 40, int(rng.integers(1 << 30)))
    bg = tuple(int(b) + int(rng.integers(-5, 6)) for b in g.background)
    return bounds.clamp(Gaussians2D.from_columns(cols, bg).concat(born))  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["yuv420p", "rgb24"])
def test_incremental_renders_are_bit_identical_to_whole_renders(fmt, monkeypatch):
    drawn: list[int] = []
    accumulate = render._accumulate

    def counting(g, wins, canvas):
        drawn.append(g.count)
        return accumulate(g, wins, canvas)

    monkeypatch.setattr(render, "_accumulate", counting)
    cv, bounds = Canvas(64, 40, fmt), Bounds(64, 40)
    rng = np.random.default_rng(5)
    g = bounds.clamp(random_state(400, 64, 40, 2).with_background((100, -50, 30)))
    r = IncrementalRenderer(cv)
    states = [g]
    for _ in range(6):
        states.append(_step(states[-1], rng, bounds))
    states.append(states[3])  # back to an earlier state
    states.append(states[-1])  # unchanged
    for i, s in enumerate(states):
        drawn.clear()
        got = r.render(s)
        incremental = sum(drawn)
        drawn.clear()
        assert torch.equal(got, render_exact(s, cv))
        if 1 <= i <= 6:  # one P-frame-like step: only the change was drawn
            assert incremental <= 0.5 * s.count
    assert incremental == 0  # the unchanged state drew nothing


def test_duplicates_and_a_new_picture_fall_back_to_whole_renders():
    cv, bounds = Canvas(64, 40, "yuv420p"), Bounds(64, 40)
    g = bounds.clamp(random_state(50, 64, 40, 3))
    twice = g.concat(g.take(np.arange(10)))  # ten Gaussians present twice
    r = IncrementalRenderer(cv)
    for s in (g, twice, g, bounds.clamp(random_state(60, 64, 40, 4)), Gaussians2D.empty()):
        assert torch.equal(r.render(s), render_exact(s, cv))


def test_the_evaluation_limit_holds_for_incremental_renders():
    cv, bounds = Canvas(64, 40, "yuv420p"), Bounds(64, 40)
    g = bounds.clamp(random_state(100, 64, 40, 6))
    r = IncrementalRenderer(cv)
    r.render(g)
    bigger = g.concat(g.take(np.arange(3)))
    limit = render.windows(g).pixels
    with pytest.raises(BitstreamError, match="pixel evaluations per frame"):
        r.render(bigger, limit)


def test_planes_of_an_unchanged_state_are_fresh_copies_of_the_same_picture():
    cv, bounds = Canvas(64, 40, "yuv420p"), Bounds(64, 40)
    g = bounds.clamp(random_state(80, 64, 40, 7))
    want = render.to_planes(render_exact(g, cv), cv)
    r = IncrementalRenderer(cv)
    first = r.planes(g)
    first[0][:] = 0  # a caller's edit must not reach the next frame
    again = r.planes(Gaussians2D.from_columns(g.columns(), g.background))
    for a, b in zip(again, want, strict=True):
        assert np.array_equal(a, b)
    moved = bounds.clamp(Gaussians2D.from_columns([g.x + 16, *g.columns()[1:]], g.background))
    for a, b in zip(r.planes(moved), render.to_planes(render_exact(moved, cv), cv), strict=True):
        assert np.array_equal(a, b)


def test_a_change_outside_the_picture_changes_nothing_and_one_inside_is_exact():
    cv, bounds = Canvas(64, 40, "yuv420p"), Bounds(64, 40)
    g = bounds.clamp(random_state(60, 64, 40, 8))
    r = IncrementalRenderer(cv)
    r.render(g)
    m = bounds.margin
    outside = Gaussians2D.from_columns(
        [np.array([-m]), np.array([-m]), np.array([0]), np.array([0]), np.array([0])]
        + [np.array([4000]), np.array([0]), np.array([0])]
    )
    for s in (g.concat(outside), g, g.concat(g.take(np.arange(3)))):
        assert torch.equal(r.render(s), render_exact(s, cv))


@pytest.mark.parametrize("fmt", ["yuv420p", "yuv444p", "rgb24"])
def test_the_background_added_in_to_planes_is_the_background_added_first(fmt):
    cv, bounds = Canvas(64, 40, fmt), Bounds(64, 40)
    g = bounds.clamp(random_state(90, 64, 40, 9).with_background((700, -300, 250)))
    bare = render_exact(g.with_background((0, 0, 0)), cv)
    want = render.to_planes(render_exact(g, cv), cv)
    got = render.to_planes(bare, cv, g.background)
    for a, b in zip(got, want, strict=True):
        assert np.array_equal(a, b)
    r = IncrementalRenderer(cv)
    for a, b in zip(r.planes(g), want, strict=True):
        assert np.array_equal(a, b)

"""Pinned pictures: speed work on the exact 2D renderer, the state updates or the entropy
decoding must not move a bit.

The streams in data/ were encoded with the code of commit a2f22c9 (synthetic_clip 64x48,
seed 5, 5 frames, 60 Gaussians, group 3, births 0.1, 8 steps per frame); the digests are
of every decoded plane, and equal that encoder's reconstructions. The random states cover
every scale, angle and window size of the ladder, at sizes with a chroma remainder.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from nvc.codec.gaussian import render
from nvc.codec.gaussian import tables as T
from nvc.codec.gaussian.render import Canvas, render_exact, to_planes
from nvc.codec.gaussian.state import Bounds, Gaussians2D
from nvc.codec.pipeline import decode_frames

DATA = Path(__file__).parent / "data"

STREAMS = {
    "yuv420p": "0d5fd23d7322883def67eb80ad2fc4cb176f68ff837f2aaf5fd954e3484b890b",
    "rgb24": "fcc682562e9d9e1ff1b0940e078152cdfe1987aa51767e475a288fd43a48ab88",
    "yuv444p10le": "acd1f489f0e16b666560ccf5a2d8442b43b727c9683dfd6cd96a7f2dd0dad078",
}

RENDERS = {
    # (format, width, height, count, seed): sha256 of the int64 accumulators, of the planes
    ("yuv420p", 97, 61, 700, 11): (
        "02c16e62142e63c1daabbe7b656f0d01bacf93c92babf555b0175ca782fbea1a",
        "f1da2d23f671b7e8d2a1624036823004e6a102bdbdfaf7a45a6e40428facba74",
    ),
    ("rgb24", 64, 40, 300, 12): (
        "f00854c51a71a60158e5b08e9b1e3d234327395ceb28d0d9b210690f2e7294f3",
        "5aba81eae905062dfb51a83aff9e7644649b15da9e694ff056e3ca4bc61b51bb",
    ),
    ("yuv444p10le", 50, 37, 200, 13): (
        "a6f97820d1b8b4fd893af334bcca7c71ac0c91bf1f206c932311c0b16c6e5272",
        "7fcd8bdf60e9fdf0bf77f0ed68c898470cbd674997023525653e4a396b3b2876",
    ),
}


def random_state(n: int, w: int, h: int, seed: int) -> Gaussians2D:
    """Gaussians with every attribute over its whole range (centres up to 8 px outside)."""
    rng = np.random.default_rng(seed)
    m = 8 * T.POS_ONE
    c = T.COLOR_LIMIT
    return Gaussians2D(
        rng.integers(-m, w * T.POS_ONE + m + 1, n),
        rng.integers(-m, h * T.POS_ONE + m + 1, n),
        rng.integers(0, T.SCALE_MAX + 1, n),
        rng.integers(0, T.SCALE_MAX + 1, n),
        rng.integers(0, T.ANGLES, n),
        rng.integers(-c, c + 1, n),
        rng.integers(-c, c + 1, n),
        rng.integers(-c, c + 1, n),
        background=(int(rng.integers(-c, c)), int(rng.integers(-c, c)), int(rng.integers(-c, c))),
    )


def digest(arrays: list[np.ndarray]) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("fmt", sorted(STREAMS))
def test_pinned_streams_decode_to_the_pinned_pictures(fmt):
    frames = list(decode_frames(DATA / f"stream_{fmt}.nvc"))
    assert len(frames) == 5
    assert digest([p for f in frames for p in f.planes]) == STREAMS[fmt]


@pytest.mark.parametrize("key", sorted(RENDERS))
def test_random_states_render_to_the_pinned_pictures(key):
    fmt, w, h, n, seed = key
    g = random_state(n, w, h, seed)
    assert Bounds(w, h).clamp(g).equal(g)
    cv = Canvas(w, h, fmt)
    acc = render_exact(g, cv)
    assert acc.dtype == torch.int64 and tuple(acc.shape) == (3, *cv.padded)
    assert digest([acc.numpy().astype("<i8")]) == RENDERS[key][0]
    assert digest(list(to_planes(acc, cv))) == RENDERS[key][1]


def test_every_bucketing_chunking_and_thread_count_gives_the_pinned_pictures(monkeypatch):
    key = ("yuv420p", 97, 61, 700, 11)
    fmt, w, h, n, seed = key
    g = random_state(n, w, h, seed)
    cv = Canvas(w, h, fmt)
    settings = [
        (T.LADDER, 1 << 16, 1),  # every window on its own block (no padding)
        ((T.MAX_EXTENT,), 1 << 14, 3),  # every window padded to the largest block
        (render.BUCKETS, 300, 2),  # tiny chunks
    ]
    for buckets, chunk, bands in settings:
        monkeypatch.setattr(render, "BUCKETS", buckets)
        monkeypatch.setattr(render, "EXACT_CHUNK", chunk)
        monkeypatch.setattr(render, "BANDS", bands)
        acc = render_exact(g, cv)
        assert digest([acc.numpy().astype("<i8")]) == RENDERS[key][0], (buckets, chunk, bands)


def test_chroma_packing_is_used_where_safe_and_changes_nothing(monkeypatch):
    # every frame a whole render (the decoder's incremental renderer skips unchanged ones)
    monkeypatch.setattr(
        render.IncrementalRenderer,
        "planes",
        lambda self, g, m=None: render.to_planes(render_exact(g, self.canvas, m), self.canvas),
    )
    unpacked = []
    real = render._unpack
    monkeypatch.setattr(render, "_unpack", lambda *a: unpacked.append(1) or real(*a))
    frames = list(decode_frames(DATA / "stream_yuv420p.nvc"))
    assert len(unpacked) == len(frames)  # fitted frames: packed chroma sums
    g = random_state(700, 97, 61, 11)
    render_exact(g, Canvas(97, 61, "yuv420p"))
    assert len(unpacked) == len(frames)  # full-range colours, ~470 deep: not packed
    monkeypatch.setattr(render, "PACK_LIMIT", 0)
    again = list(decode_frames(DATA / "stream_yuv420p.nvc"))
    assert len(unpacked) == len(frames)
    assert digest([p for f in again for p in f.planes]) == STREAMS["yuv420p"]


@pytest.mark.parametrize("cell", [0, 3])
def test_coverage_max_bounds_the_brute_force_one(monkeypatch, cell):
    monkeypatch.setattr(render, "COVER_CELL", cell)
    rng = np.random.default_rng(4)
    h, w, n = 29, 37, 40
    x0, y0 = rng.integers(0, w, n), rng.integers(0, h, n)
    wx, wy = rng.integers(1, w - x0 + 1), rng.integers(1, h - y0 + 1)
    value = rng.integers(0, 1000, n)
    grid = np.zeros((h, w), np.int64)
    for i in range(n):
        grid[y0[i] : y0[i] + wy[i], x0[i] : x0[i] + wx[i]] += value[i]
    bound = render._coverage_max(value, x0, y0, wx, wy, h, w)
    assert bound == grid.max() if cell == 0 else grid.max() <= bound <= value.sum()


def test_a_second_band_only_where_a_core_is_idle(monkeypatch):
    monkeypatch.setattr(render, "BANDS", None)
    monkeypatch.setattr(render.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(render.os, "getloadavg", lambda: (0.3, 0.3, 0.3))
    assert render._bands() == 2
    monkeypatch.setattr(render.os, "getloadavg", lambda: (1.5, 1.0, 1.0))
    assert render._bands() == 1
    monkeypatch.setattr(render, "BANDS", 3)
    assert render._bands() == 3


def test_int64_indices_give_the_pinned_pictures(monkeypatch):
    # the renderer's indices are int32 below 2**31 accumulator cells, int64 above
    assert render._index_type((1 << 31) - 1) is np.int32
    assert render._index_type(1 << 31) is np.int64
    monkeypatch.setattr(render, "_index_type", lambda size: np.int64)
    key = ("rgb24", 64, 40, 300, 12)
    acc = render_exact(random_state(300, 64, 40, 12), Canvas(64, 40, "rgb24"))
    assert digest([acc.numpy().astype("<i8")]) == RENDERS[key][0]

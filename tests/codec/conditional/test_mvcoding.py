"""Block motion of fm inter frames: lossless vector coding (mvcoding) and the encoder's
rate-aware search (mvsearch)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from nvc.codec.conditional import frames as fr
from nvc.codec.conditional import mvcoding as mvc
from nvc.codec.conditional import mvsearch, subpel
from nvc.codec.conditional.layers import ONE
from nvc.codec.entropy import SymbolReader, SymbolWriter
from nvc.errors import BitstreamError

# SHA-256 of every table's integer counts: a change here is a bitstream change
TABLES_DIGEST = "effe8ed7e558c5920d0c5d457f4ef31446d7232847f7130a9338383c5e9abfae"


def _motion(gh: int, gw: int, seed: int, spread: int = 6) -> mvc.BlockMotion:
    rng = np.random.default_rng(seed)
    base = rng.integers(-spread, spread + 1, size=(1, 1, 2))
    v = base + rng.integers(-2, 3, size=(gh, gw, 2)) * (rng.random((gh, gw, 1)) < 0.3)
    split = rng.random((gh // 2, gw // 2)) < 0.4
    # merged macroblocks carry one vector for their four cells
    for r in range(gh // 2):
        for c in range(gw // 2):
            if not split[r, c]:
                v[2 * r : 2 * r + 2, 2 * c : 2 * c + 2] = v[2 * r, 2 * c]
    return mvc.BlockMotion(v.astype(np.int64), split, seed % 2)


def _round_trip(m: mvc.BlockMotion) -> tuple[mvc.BlockMotion, bytes]:
    w = SymbolWriter()
    mvc.encode(m, w)
    data = w.finish()
    gh, gw, _ = m.vectors.shape
    return mvc.decode(SymbolReader(data), (gh, gw), "fm frame 1"), data


@pytest.mark.parametrize(("gh", "gw", "seed"), [(2, 2, 0), (6, 10, 1), (12, 8, 2)])
def test_vectors_round_trip(gh: int, gw: int, seed: int) -> None:
    m = _motion(gh, gw, seed)
    out, _ = _round_trip(m)
    assert np.array_equal(out.vectors, m.vectors) and np.array_equal(out.split, m.split)
    assert out.filter == m.filter


def test_large_vectors_escape_and_round_trip() -> None:
    m = _motion(4, 6, 3)
    v = m.vectors.copy()
    v[1, 1] = (mvc.MAX_VECTOR, -mvc.MAX_VECTOR)  # far outside the tables: escapes
    split = np.ones_like(m.split)
    out, _ = _round_trip(mvc.BlockMotion(v, split))
    assert np.array_equal(out.vectors, v)


def test_smooth_motion_is_cheap() -> None:
    """One vector for the whole picture: each merged macroblock costs well under a bit."""
    v = np.zeros((40, 60, 2), dtype=np.int64) + np.array([5, -3])
    _, data = _round_trip(mvc.BlockMotion(v, np.zeros((20, 30), dtype=bool)))
    assert 8 * len(data) < 0.3 * 600 + 64


def test_subpel_prediction_is_exact_and_shifts_whole_pixels() -> None:
    """Vectors of whole pixels shift every plane exactly (luma by v / 4, chroma by v / 8);
    vectors far outside the picture give its edge; any vectors give the same integers on
    1 and 3 threads, and the encoder's float phases agree with them."""
    g = torch.Generator().manual_seed(9)
    ref = torch.floor(torch.rand(1, 96, 6, 8, generator=g) * 4096) - 2048
    y, uv = fr.split_96(ref)
    v = np.full((6, 8, 2), 8, dtype=np.int64)  # (2, 2) luma pixels, (1, 1) chroma pixel
    for filt in subpel.FILTERS:
        py, puv = fr.split_96(subpel.predict(ref, v, filt))
        assert torch.equal(py[..., :-2, :-2], y[..., 2:, 2:])
        assert torch.equal(puv[..., :-1, :-1], uv[..., 1:, 1:])
    # the smooth filter at half a pixel is the rounded mean of two neighbours
    half = np.zeros((6, 8, 2), dtype=np.int64)
    half[..., 0] = 2
    hy = fr.split_96(subpel.predict(ref, half, subpel.SMOOTH))[0]
    assert torch.equal(hy[..., :-1], torch.floor((y[..., :-1] + y[..., 1:] + 1) / 2))
    far = subpel.predict(ref, np.full((6, 8, 2), 4 * 10_000, dtype=np.int64))
    fy, fuv = fr.split_96(far)
    assert torch.equal(fy, y[..., -1:, -1:].expand_as(fy))
    rnd = np.random.default_rng(1).integers(-70, 70, size=(6, 8, 2))
    one = subpel.predict(ref, rnd)
    torch.set_num_threads(3)
    try:
        assert torch.equal(subpel.predict(ref, rnd), one)
    finally:
        torch.set_num_threads(1)
    assert torch.equal(one, torch.round(one)) and float(one.abs().max()) < 4096
    cur_y = fr.split_96(one)[0]
    sse = mvsearch._Predictor(cur_y, y).sse(torch.from_numpy(rnd).permute(2, 0, 1)[None].double())
    assert float(sse.max()) < 1e-5


def test_tables_are_the_golden_ones() -> None:
    digest = hashlib.sha256()
    for t in (mvc.mvd_tables(), mvc.split_tables(), mvc.param_table()):
        digest.update(t.counts.astype("<i8").tobytes())
    assert digest.hexdigest() == TABLES_DIGEST


def test_corrupt_motion_is_a_bitstream_error_or_bounded() -> None:
    rng = np.random.default_rng(5)
    _, data = _round_trip(_motion(6, 8, 4))
    for trial in range(60):
        bad = bytearray(data)
        if trial % 3 == 0:
            bad = bad[: max(0, len(bad) - 4 * (1 + trial % 5))]
        else:
            for _ in range(1 + trial % 4):
                bad[int(rng.integers(len(bad)))] ^= 1 << int(rng.integers(8))
        try:
            out = mvc.decode(SymbolReader(bytes(bad)), (6, 8), "fm frame 1")
        except BitstreamError as e:
            assert "fm frame 1" in str(e)
        else:
            assert out.vectors.shape == (6, 8, 2)
            assert np.abs(out.vectors).max() <= mvc.MAX_VECTOR
    # parameters out of range
    for params in ([200, 0, 0, 0], [0, 0, 0, 2]):
        w = SymbolWriter()
        w.put_indexed(np.array(params), np.zeros(4, dtype=np.uint8), mvc.param_table())
        with pytest.raises(BitstreamError, match="fm frame 1 has bad motion parameters"):
            mvc.decode(SymbolReader(w.finish()), (2, 2), "fm frame 1")


def _picture(h: int, w: int, seed: int) -> torch.Tensor:
    """A smooth random luma picture in fixed point (1, 1, h, w)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 1, h // 8, w // 8, generator=g)
    x = torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)
    return torch.floor(x.clamp(0, 1) * 255) * (ONE / 256)


def _as96(y: torch.Tensor) -> torch.Tensor:
    """A 96-channel picture with luma y and flat chroma."""
    h, w = y.shape[2], y.shape[3]
    return fr.planes_to_96(y, torch.zeros(1, 2, h // 2, w // 2, dtype=y.dtype))


def _cells(v: torch.Tensor) -> np.ndarray:
    return v[0].permute(1, 2, 0).numpy().astype(np.int64)


def test_search_finds_a_quarter_pixel_shift_and_merges() -> None:
    """The current picture is the reference shifted by (+5, -3) quarter pixels (exactly the
    decoder's prediction): the search finds that vector for the inner cells and merges them."""
    ref = _picture(96, 128, 6)
    true = torch.tensor([5.0, -3.0]).view(1, 2, 1, 1).expand(1, 2, 12, 16)
    cur = fr.split_96(subpel.predict(_as96(ref), _cells(true)))[0]
    init = torch.round(true / 4) * 4 / mvc.QPEL_PER_CELL  # the whole-pixel estimate
    m = mvsearch.search(cur, ref, init, lam=4000.0)
    inner = m.vectors[2:-2, 2:-2].reshape(-1, 2)
    assert (inner == np.array([5, -3])).all(axis=1).mean() > 0.9
    assert m.split.mean() < 0.2
    pred = fr.split_96(subpel.predict(_as96(ref), m.vectors))[0]
    still = float(((cur - ref) ** 2).mean())
    assert float(((cur - pred) ** 2).mean()) < 0.05 * still
    cheap = mvsearch.search(cur, ref, init, lam=4000.0, config=mvsearch.CHEAP)
    near = np.abs(cheap.vectors[2:-2, 2:-2].reshape(-1, 2) - np.array([5, -3])).max(axis=1)
    assert (near <= 1).mean() > 0.8  # (half pixels only)

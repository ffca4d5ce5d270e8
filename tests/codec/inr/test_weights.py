"""MODEL unit serialization: round trips, residual groups, corrupt data."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from nvc.codec.inr.weights import (
    GroupCode,
    LayerCode,
    LayerShape,
    decode_embedding,
    decode_group,
    embedding_bits,
    encode_embedding,
    encode_group,
    fit_embedding_model,
    temporal_residuals,
)
from nvc.errors import BitstreamError

SHAPES = [LayerShape((16, 4, 3, 3), 16), LayerShape((3, 16, 1, 1), 1), LayerShape((8, 2), 8)]


def _group(seed: int, frames: int = 5, residual: bool = False) -> GroupCode:
    rng = np.random.default_rng(seed)
    layers = []
    for s in SHAPES:
        layers.append(
            LayerCode(
                a_step=np.float32(rng.uniform(0.001, 0.01)),
                w_base=np.float32(rng.uniform(0.01, 0.1)),
                w_k=-rng.integers(0, 40, size=s.steps),
                w_ints=np.rint(rng.laplace(scale=2.0, size=s.weight)).astype(np.int64),
                b_step=np.float32(0.001),
                b_ints=rng.integers(-300, 300, size=s.weight[0]),
            )
        )
    return GroupCode(frames, layers, residual)


def _same(a: GroupCode, b: GroupCode) -> bool:
    return a.frames == b.frames and all(
        x.a_step == y.a_step
        and x.w_base == y.w_base
        and x.b_step == y.b_step
        and np.array_equal(x.w_k, y.w_k)
        and np.array_equal(x.w_ints, y.w_ints)
        and np.array_equal(x.b_ints, y.b_ints)
        for x, y in zip(a.layers, b.layers, strict=True)
    )


def test_full_group_round_trip() -> None:
    g = _group(0)
    back = decode_group(encode_group(g), SHAPES, None)
    assert _same(g, back) and not back.residual


def test_residual_group_round_trip_and_needs_its_reference() -> None:
    ref = decode_group(encode_group(_group(0)), SHAPES, None)
    nxt = _group(1, frames=3, residual=True)
    # residual groups keep the reference's steps
    nxt = GroupCode(
        3,
        [
            LayerCode(n.a_step, r.w_base, r.w_k, r.w_ints + (n.w_ints % 2), r.b_step, r.b_ints + 1)
            for n, r in zip(nxt.layers, ref.layers, strict=True)
        ],
        residual=True,
    )
    data = encode_group(nxt, ref)
    assert len(data) < len(encode_group(_group(1)))
    assert _same(nxt, decode_group(data, SHAPES, ref))
    with pytest.raises(BitstreamError, match="reference"):
        decode_group(data, SHAPES, None)


def test_corrupt_payloads_raise_bitstream_errors() -> None:
    data = encode_group(_group(2))
    for bad in (data[:-3], data[:10], b"", bytes([4]) + data[1:], data + b"\x00"):
        with pytest.raises(BitstreamError):
            decode_group(bad, SHAPES, None)


def test_embedding_model_round_trip() -> None:
    rng = np.random.default_rng(3)
    ints = np.rint(rng.laplace(scale=4.0, size=(6, 2, 3, 4))).astype(np.int64)
    model = fit_embedding_model(ints)
    g = GroupCode(6, _group(3).layers, embed_model=model)
    back = decode_group(encode_group(g), SHAPES, None)
    assert back.embed_model is not None
    for i in range(6):
        data = encode_embedding(ints[i], back.embed_model)
        assert np.array_equal(decode_embedding(data, back.embed_model, 24), ints[i].reshape(-1))


def test_temporal_flag_round_trips_and_needs_an_embedding_model() -> None:
    rng = np.random.default_rng(4)
    ints = np.cumsum(rng.integers(-1, 2, size=(6, 2, 3, 4)), axis=0)  # slowly varying
    pred = temporal_residuals(ints)
    assert np.array_equal(np.cumsum(pred, axis=0), ints)
    model = fit_embedding_model(pred)
    # predicted, the values are small: cheaper than each frame alone
    assert embedding_bits(pred, model) < embedding_bits(ints, fit_embedding_model(ints))
    g = GroupCode(6, _group(4).layers, embed_model=model, temporal=True)
    payload = encode_group(g)
    assert decode_group(payload, SHAPES, None).temporal
    assert not decode_group(encode_group(replace(g, temporal=False)), SHAPES, None).temporal
    # the flag without an embedding model is not a stream any encoder writes
    bare = encode_group(GroupCode(6, _group(4).layers))
    with pytest.raises(BitstreamError, match="unknown flags"):
        decode_group(bytes([bare[0] | 4]) + bare[1:], SHAPES, None)

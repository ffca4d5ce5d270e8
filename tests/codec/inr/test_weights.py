"""MODEL unit serialization: round trips, residual groups, corrupt data."""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from nvc.bitstream import decode_uleb128
from nvc.codec.inr.quant import steps_from_code
from nvc.codec.inr.weights import (
    V2,
    GroupCode,
    LayerCode,
    LayerShape,
    decode_embedding,
    decode_group,
    embedding_bits,
    encode_embedding,
    encode_group,
    fit_embedding_model,
    prior,
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


# ------------------------------------------------------------------ weight coding v2


def _splitmix_reference(layer: int, count: int) -> list[float]:
    """weights.prior's first values, computed independently with Python integers."""
    mask = (1 << 64) - 1
    out = []
    for j in range(count):
        z = ((((0x6E7663 + layer) << 32) + j + 1) * 0x9E3779B97F4A7C15) & mask
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        z ^= z >> 31
        out.append(((z >> 11) * 2.0**-53 - 0.5) * 12.0**0.5)
    return out


def test_prior_is_the_specified_generator_and_unit_variance() -> None:
    p = prior(2, (4, 3, 5))
    assert p.shape == (4, 3, 5) and p.dtype == np.float64
    assert p.reshape(-1)[:40].tolist() == _splitmix_reference(2, 40)  # bit for bit
    big = prior(0, (1 << 19,))  # more than one chunk: the chunks join seamlessly
    assert big[:40].tolist() == _splitmix_reference(0, 40)
    assert np.array_equal(
        big[(1 << 18) - 5 : (1 << 18) + 5], prior(0, (1 << 19,))[(1 << 18) - 5 : (1 << 18) + 5]
    )
    assert abs(big.mean()) < 0.01 and abs(big.var() - 1.0) < 0.01
    assert big.min() >= -(3**0.5) and big.max() < 3**0.5
    # layers draw independent values (no shifted copies of each other)
    assert abs(np.corrcoef(prior(0, (5000,)), prior(1, (5000,)))[0, 1]) < 0.05
    assert abs(np.corrcoef(prior(0, (5000,))[1:], prior(1, (5000,))[:-1])[0, 1]) < 0.05


def _near_prior_group(seed: int, source: int = 0) -> GroupCode:
    """_group(seed) with layer 0's weights set to 0.3 x prior(source) in its steps plus
    Laplace noise of one step, as a network trained from its prior looks (source 0: its
    own prior; another layer's prior is noise to the coder)."""
    g = _group(seed)
    first = g.layers[0]
    steps = steps_from_code(first.w_base, first.w_k).astype(np.float64).reshape(-1, 1, 1, 1)
    noise = np.random.default_rng(seed + 100).laplace(scale=1.0, size=first.w_ints.shape)
    ints = np.rint(0.3 * prior(source, first.w_ints.shape) / steps + noise).astype(np.int64)
    return replace(g, layers=[replace(first, w_ints=ints), *g.layers[1:]])


def test_weights_near_their_prior_code_smaller_and_round_trip() -> None:
    near, unrelated = _near_prior_group(5), _near_prior_group(5, source=7)
    data = encode_group(near)
    assert data[0] & V2
    assert _same(near, decode_group(data, SHAPES, None))
    assert _same(unrelated, decode_group(encode_group(unrelated), SHAPES, None))
    # predicted, the 576 values cost about 2 bits each less (one-step noise instead of
    # values of about +-10)
    saved = len(encode_group(unrelated)) - len(data)
    assert saved > 576 * 1.5 / 8


def test_streams_before_weight_coding_v2_still_decode() -> None:
    """data/model_v1.bin: encode_group(_group(0)) as written before weight coding v2."""
    old = (Path(__file__).parent / "data" / "model_v1.bin").read_bytes()
    assert not old[0] & V2
    assert _same(_group(0), decode_group(old, SHAPES, None))


def _prior_field(data: bytes) -> int:
    """Offset of the first [prior] field of a full group's v2 payload without embeddings:
    flags, frames, 3 x 3 float32 steps, group count, then the step exponents' group (its
    model kind, params and data)."""
    pos = 1 + 1 + 36 + 1 + 1
    for _ in range(2):
        n, pos = decode_uleb128(data, pos)
        pos += n
    return pos


def test_corrupt_v2_payloads_raise_bitstream_errors() -> None:
    data = encode_group(_near_prior_group(6))
    at = _prior_field(data)
    assert data[at] == 1  # layer 0 is predicted
    bad_mode = data[:at] + b"\x02" + data[at + 1 :]
    with pytest.raises(BitstreamError, match="prior mode"):
        decode_group(bad_mode, SHAPES, None)
    nan_gain = data[: at + 1] + struct.pack("<f", float("nan")) + data[at + 5 :]
    with pytest.raises(BitstreamError, match="non-finite prior gain"):
        decode_group(nan_gain, SHAPES, None)
    with pytest.raises(BitstreamError, match="unknown flags"):
        decode_group(bytes([data[0] | 16]) + data[1:], SHAPES, None)
    # every truncation, and random damage: a BitstreamError or a group of the right shapes
    rng = np.random.default_rng(7)
    for n in range(len(data)):
        with pytest.raises(BitstreamError):
            decode_group(data[:n], SHAPES, None)
    for _ in range(300):
        damaged = bytearray(data)
        for pos in rng.integers(0, len(data), size=rng.integers(1, 4)):
            damaged[pos] = rng.integers(0, 256)
        try:
            back = decode_group(bytes(damaged), SHAPES, None)
        except BitstreamError:
            continue
        assert [x.w_ints.shape for x in back.layers] == [s.weight for s in SHAPES]


def test_prior_predicted_payload_decodes_the_same_in_a_fresh_process(tmp_path: Path) -> None:
    near = _near_prior_group(8)
    data = encode_group(near)
    (tmp_path / "model.bin").write_bytes(data)
    script = (
        "import hashlib, sys, numpy as np, torch; torch.set_num_threads(3)\n"
        "from nvc.codec.inr.weights import LayerShape, decode_group\n"
        f"shapes = {[(s.weight, s.steps) for s in SHAPES]!r}\n"
        "code = decode_group(open(sys.argv[1], 'rb').read(),"
        " [LayerShape(w, k) for w, k in shapes], None)\n"
        "print(hashlib.sha256(b''.join(x.w_ints.astype('<i8').tobytes()"
        " for x in code.layers)).hexdigest())\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "3"}
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "model.bin")],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.strip()
    mine = hashlib.sha256(b"".join(x.w_ints.astype("<i8").tobytes() for x in near.layers))
    assert out == mine.hexdigest()

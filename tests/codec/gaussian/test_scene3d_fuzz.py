"""3D mode: payload coding round trips, and damaged streams are typed errors, never a
wrong state or a huge allocation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from nvc.bitstream import Reader, UnitType
from nvc.codec.gaussian.codec3d import SceneDecoder, SceneParams
from nvc.codec.gaussian.coding3d import (
    QueenResidualDecoder,
    QueenResidualEncoder,
    decode_base,
    encode_base,
    morton_order,
)
from nvc.codec.gaussian.scene3d import encode_scene
from nvc.codec.gaussian.state3d import LIMITS, WIDTHS, State3D, steps3d_for
from nvc.errors import BitstreamError

from .scene3d_data import FAST3D, procedural, write_colmap_scene


def random_state(rng: np.random.Generator, n: int, steps) -> State3D:
    lim = np.repeat(np.array(LIMITS), WIDTHS)
    m = rng.integers(-lim, lim + 1, size=(n, 14)) // 1024
    k = steps.exponents()
    return State3D.from_matrix((m >> k) << k)


def test_base_round_trip_and_morton_order():
    rng = np.random.default_rng(1)
    steps = steps3d_for(40)
    state = random_state(rng, 500, steps)
    state = state.take(morton_order(state))
    decoded, read_steps = decode_base(encode_base(state, steps), 1 << 20, "base")
    assert decoded.equal(state) and read_steps == steps
    assert (
        decode_base(encode_base(State3D.from_matrix(np.zeros((0, 14))), steps), 10, "b")[0].count
        == 0
    )


def test_queen_residual_round_trip_sends_only_gated_positions():
    rng = np.random.default_rng(2)
    steps = steps3d_for(24)
    prev = random_state(rng, 300, steps)
    k = steps.exponents()
    d = np.zeros((300, 14), np.int64)
    moving = rng.choice(300, 20, replace=False)
    d[moving, 0:3] = rng.integers(-5, 6, (20, 3))
    d[rng.choice(300, 50, replace=False), 13] = 3
    cur = State3D.from_matrix(prev.matrix() + (d << k)).clamp()
    payload, decoded = QueenResidualEncoder(prev, steps).encode_residuals(prev, cur)
    assert decoded.equal(cur)
    assert QueenResidualDecoder(prev, steps).decode_residuals(payload, prev).equal(cur)
    same, _ = QueenResidualEncoder(prev, steps).encode_residuals(prev, prev)
    assert len(same) <= 4  # count and two empty index sets
    assert len(payload) < 300 * 14 // 4  # far below a byte per value


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz3d")
    folder = write_colmap_scene(root / "scene", procedural(frames=3, cameras=2), points=100)
    out = root / "s.nvc"
    encode_scene(folder, out, options={**FAST3D, "gaussians": 60, "max_iterations": 2})
    with Reader(out) as r:
        kinds = (UnitType.GAUSSIAN_BASE, UnitType.GAUSSIAN_RESIDUAL)
        return r.header, [u for u in r if u.type in kinds]


def _states(header, units):
    dec = SceneDecoder(header)
    out = []
    for u in units:
        dec.apply(u)
        out.append(dec.state)
    return out


def _apply_damaged(header, units, index, payload):
    """Decode units[:index], then units[index] with `payload`: the state, or the error."""
    dec = SceneDecoder(header)
    for u in units[:index]:
        dec.apply(u)
    try:
        dec.apply(dataclasses.replace(units[index], payload=payload))
    except BitstreamError as e:
        assert dec.state is None and "\n" not in str(e)
        return None
    return dec.state


def test_truncated_units_are_bitstream_errors(stream):
    header, units = stream
    good = _states(header, units)
    for i, u in enumerate(units):
        step = 1 if len(u.payload) < 300 else 7
        for n in range(0, len(u.payload), step):
            state = _apply_damaged(header, units, i, u.payload[:n])
            assert state is None or state.equal(good[i])


def test_flipped_bits_are_errors_or_the_right_state(stream):
    header, units = stream
    good = _states(header, units)
    rng = np.random.default_rng(5)
    errors = 0
    for case in range(300):
        i = case % len(units)
        data = bytearray(units[i].payload)
        for _ in range(1 + case % 3):
            bit = int(rng.integers(0, 8 * len(data)))
            data[bit // 8] ^= 1 << (bit % 8)
        state = _apply_damaged(header, units, i, bytes(data))
        errors += state is None
        assert state is None or state.equal(good[i])
    assert errors > 250  # the state CRC catches nearly every flip


def test_a_residual_after_a_failed_unit_waits_for_the_next_base(stream):
    header, units = stream
    dec = SceneDecoder(header)
    with pytest.raises(BitstreamError):
        dec.apply(dataclasses.replace(units[0], payload=units[0].payload[:-1]))
    with pytest.raises(BitstreamError, match="has no base to apply to"):
        dec.apply(units[1])
    assert dec.apply(units[0]) and dec.state is not None


def test_damaged_codec_parameters_are_bitstream_errors(stream):
    header, _ = stream
    params = header.codec_params
    w, h = header.width, header.height
    good = SceneParams.from_bytes(params, w, h)
    for n in range(len(params)):
        with pytest.raises(BitstreamError):
            SceneParams.from_bytes(params[:n], w, h)
    rng = np.random.default_rng(7)
    for _ in range(300):
        data = bytearray(params)
        bit = int(rng.integers(0, 8 * len(data)))
        data[bit // 8] ^= 1 << (bit % 8)
        try:
            p = SceneParams.from_bytes(bytes(data), w, h)
        except BitstreamError:
            continue
        assert len(p.rig) == len(good.rig)
    with pytest.raises(BitstreamError, match="size is not the stream's"):
        SceneParams.from_bytes(params, w + 2, h)


def test_a_huge_count_is_refused_before_allocation(stream):
    header, units = stream
    from nvc.bitstream.leb128 import encode_uleb128

    dec = SceneDecoder(header)
    payload = encode_uleb128(1 << 40) + units[0].payload[2:]
    with pytest.raises(BitstreamError):
        dec.apply(dataclasses.replace(units[0], payload=payload))


def test_a_missing_residual_is_detected_by_the_state_checksum(stream):
    header, units = stream
    good = _states(header, units)
    assert not good[1].equal(good[0])  # unit 1 changes the state
    dec = SceneDecoder(header)
    dec.apply(units[0])
    with pytest.raises(BitstreamError, match="state checksum"):
        dec.apply(units[2])  # unit 1 was lost
    assert dec.state is None

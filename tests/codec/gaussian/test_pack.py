"""V^3-style video packing of 3D Gaussian residuals (nvc.codec.gaussian.pack)."""

from __future__ import annotations

import numpy as np
import pytest

from nvc.codec.gaussian import pack
from nvc.codec.gaussian.state3d import State3D, Steps3D, steps3d_for
from nvc.errors import BitstreamError

STEPS = steps3d_for(40)
COUNT = 600  # three 16 x 16 blocks, the last one partly padding


def naive_morton(p: np.ndarray) -> list[int]:
    """Bit b of axis a at bit 3 b + a, one bit at a time."""
    out = []
    for x in p:
        code = 0
        for b in range(21):
            for a in range(3):
                code |= ((int(x[a]) >> b) & 1) << (3 * b + a)
        out.append(code)
    return out


def lattice(m: np.ndarray, steps: Steps3D = STEPS) -> State3D:
    k = steps.exponents()
    return State3D.from_matrix((m >> k) << k).clamp()


def base_state(seed: int = 0, count: int = COUNT) -> State3D:
    rng = np.random.default_rng(seed)
    m = np.zeros((count, 14), np.int64)
    m[:, 0:3] = rng.normal(size=(count, 3)) * 3000
    m[:, 3:6] = rng.integers(-400, -100, (count, 3))
    m[:, 6] = 4000
    m[:, 7:10] = rng.integers(-300, 300, (count, 3))
    m[:, 10] = rng.integers(-200, 200, count)
    m[:, 11:14] = rng.integers(-600, 600, (count, 3))
    return lattice(m)


def moving(base: State3D, t: int) -> State3D:
    """Frame t: the Gaussians with x > 0 move along x, every colour drifts."""
    m = base.matrix().copy()
    m[:, 0] += 37 * t * (m[:, 0] > 0)
    m[:, 11] += 16 * t
    m[:, 4] += 8 * t
    return lattice(m)


def run(qp: int | None, frames: int = 4, base: State3D | None = None, still: bool = False):
    """Payloads and the states the encoder says the decoder holds (qp None: default)."""
    base = base or base_state()
    enc = pack.new_encoder(base, STEPS, None if qp is None else pack.PackConfig(qp=qp))
    prev, payloads, states = base, [], []
    for t in range(1, frames + 1):
        data, state = enc.encode_residuals(prev, base if still else moving(base, t))
        payloads.append(data)
        states.append(state)
        prev = state
    return base, payloads, states


@pytest.fixture(scope="module")
def coded():
    return run(qp=30)


def test_morton_codes_interleave_the_bits():
    rng = np.random.default_rng(1)
    p = rng.integers(0, 1 << 21, (200, 3))
    p[0] = 0  # the bounding box starts at 0, so no shift
    assert pack.morton_codes(p).tolist() == naive_morton(p)
    # a translated copy has the same codes (shifted to the bounding box)
    assert np.array_equal(pack.morton_codes(p - 12345), pack.morton_codes(p))
    # coordinates wider than 21 bits lose their low bits, keeping the order of the high ones
    wide = p << 5
    assert np.array_equal(pack.morton_codes(wide), pack.morton_codes(p))


def test_morton_order_of_a_grid_is_the_z_curve():
    g = np.stack(np.meshgrid(*(np.arange(4),) * 3, indexing="ij"), -1).reshape(-1, 3)
    order = pack.morton_order(g[::-1])  # reversed input: the order does not depend on it
    ranked = g[::-1][order]
    assert ranked[:8].tolist() == [
        [0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 1], [0, 1, 1], [1, 1, 1]
    ]  # fmt: skip
    # every run of 8 is a 2 x 2 x 2 cube
    cubes = ranked.reshape(8, 8, 3)
    assert np.all(cubes.max(1) - cubes.min(1) == 1)
    # ties keep their input order
    assert pack.morton_order(np.zeros((5, 3), np.int64)).tolist() == [0, 1, 2, 3, 4]


def test_pixel_layout_fills_blocks_in_z_order():
    layout = pack.Layout.of(COUNT)
    assert (layout.blocks_x, layout.blocks_y, layout.width, layout.height) == (2, 2, 32, 32)
    pix = pack.pixel_index(layout)
    assert len(set(pix.tolist())) == COUNT  # one pixel each
    rows, cols = np.divmod(pix, layout.width)
    assert (rows[:4].tolist(), cols[:4].tolist()) == ([0, 0, 1, 1], [0, 1, 0, 1])
    for k in range(5):  # runs of 4^k ranks are squares of side 2^k
        side = 1 << k
        r, c = rows[: side * side], cols[: side * side]
        assert r.max() - r.min() == c.max() - c.min() == side - 1
    assert rows[:256].max() == 15 and cols[256:512].min() == 16  # second block right of first


def test_image_neighbours_are_space_neighbours():
    base = base_state(count=4096)
    layout = pack.Layout.of(base.count)
    order = pack.morton_order(base.means)
    image = np.full(layout.width * layout.height, -1)
    image[pack.pixel_index(layout)] = order
    image = image.reshape(layout.height, layout.width)
    left, right = image[:, :-1].reshape(-1), image[:, 1:].reshape(-1)
    ok = (left >= 0) & (right >= 0)
    gap = np.linalg.norm(base.means[left[ok]] - base.means[right[ok]], axis=1).mean()
    shuffled = np.random.default_rng(0).permutation(base.count)
    random_gap = np.linalg.norm(base.means - base.means[shuffled], axis=1).mean()
    assert gap < 0.35 * random_gap


def test_reflected_planes_round_trip_and_step_by_one():
    u = np.arange(0, 1 << 16, dtype=np.int64)
    planes = pack.to_planes(u, 2)
    assert all(p.min() >= 0 and p.max() <= 255 for p in planes)
    assert np.array_equal(pack.from_planes(planes), u)
    step = np.abs(np.diff(np.stack(planes), axis=1)).sum(0)  # u -> u + 1 changes one byte by 1
    assert np.all(step == 1)
    big = np.array([0, 1, 12345678, (1 << 24) - 1], np.int64)
    assert np.array_equal(pack.from_planes(pack.to_planes(big, 3)), big)


def test_columns_hold_every_residual():
    for q in (0, 20, 40, 63):
        for col in pack.columns_for(steps3d_for(q)):
            top = 1 << (8 * col.planes)
            assert col.offset - col.span >= 0 and col.offset + col.span < top


def test_decoder_holds_exactly_what_the_encoder_references(coded):
    base, payloads, states = coded
    dec = pack.new_decoder(base, STEPS)
    prev = base
    for data, state in zip(payloads, states, strict=True):
        got = dec.decode_residuals(data, prev)
        assert got.equal(state) and got.crc() == state.crc()
        prev = got
    # lossy (QP 30), but close: the residual errors are a few steps
    errors = [np.abs(s.matrix() - moving(base, t + 1).matrix()) >> STEPS.exponents()
              for t, s in enumerate(states)]  # fmt: skip
    assert any(e.max() > 0 for e in errors)
    assert max(float(e.mean()) for e in errors) < 2.0


@pytest.mark.parametrize("qp", [0, None])
def test_qp_zero_the_default_is_lossless(qp):
    base, payloads, states = run(qp=qp, frames=3)
    for t, state in enumerate(states):
        assert state.equal(moving(base, t + 1))


def test_lower_qp_costs_more_and_errs_less():
    base = base_state()
    sizes, errors = [], []
    for qp in (20, 38):
        _, payloads, states = run(qp=qp, base=base)
        sizes.append(sum(map(len, payloads)))
        err = [np.abs(s.matrix() - moving(base, t + 1).matrix()).mean() for t, s in
               enumerate(states)]  # fmt: skip
        errors.append(np.mean(err))
    assert sizes[0] > sizes[1] and errors[0] < errors[1]


def nal_units(data: bytes) -> list[bytes]:
    """The NAL units of a payload, through the framing (10 videos)."""
    from nvc.bitstream.leb128 import decode_uleb128

    pos, out = 0, []
    for _ in range(10):
        n, pos = decode_uleb128(data, pos)
        for _ in range(n):
            size, pos = decode_uleb128(data, pos)
            out.append(data[pos : pos + size])
            pos += size
    assert pos == len(data)
    return out


def test_payload_is_only_slices_and_parameter_sets(coded):
    _, payloads, _ = coded
    first = nal_units(payloads[0])
    kinds = [n[0] & 0x1F for n in first]
    assert kinds.count(pack.NAL_SPS) == kinds.count(pack.NAL_PPS) == kinds.count(5) == 10
    for data in payloads:
        assert {n[0] & 0x1F for n in nal_units(data)} <= {1, 5, 7, 8}
        assert b"x264" not in data and b"options:" not in data  # no settings SEI


@pytest.mark.parametrize("qp", [0, 30])
def test_a_still_scene_costs_ten_bytes_a_frame(qp):
    base, payloads, states = run(qp=qp, frames=4, still=True)
    assert len(payloads[0]) < 700  # the IDR pictures
    assert all(p == bytes(10) for p in payloads[1:])  # every video repeats its picture
    dec = pack.new_decoder(base, STEPS)
    for data, state in zip(payloads, states, strict=True):
        assert dec.decode_residuals(data, base).equal(state)
    assert states[-1].equal(states[0])


def test_only_the_changed_videos_are_coded():
    base = base_state()
    enc = pack.new_encoder(base, STEPS)
    first, _ = enc.encode_residuals(base, moving(base, 1))
    m = moving(base, 1).matrix().copy()
    m[:, 10] += 1 << STEPS.opacity  # only the opacity changes
    data, state = enc.encode_residuals(moving(base, 1), lattice(m))
    counts = _nal_counts(data)  # videos: (coarse, fine) of position .. colour
    assert counts[7] > 0  # the fine opacity plane; its upper byte stays the same
    assert counts[:7] == [0] * 7 and counts[8:] == [0, 0]
    assert state.equal(lattice(m))
    with pytest.raises(BitstreamError, match="repeats no picture"):
        pack.new_decoder(base, STEPS).decode_residuals(data, base)


def _nal_counts(data: bytes) -> list[int]:
    from nvc.bitstream.leb128 import decode_uleb128

    pos, out = 0, []
    for _ in range(10):
        n, pos = decode_uleb128(data, pos)
        out.append(n)
        for _ in range(n):
            size, pos = decode_uleb128(data, pos)
            pos += size
    return out


def test_every_truncation_is_refused(coded):
    base, payloads, _ = coded
    for index in (0, 1):
        data = payloads[index]
        for n in range(0, len(data), 3):
            dec = pack.new_decoder(base, STEPS)
            prev = base
            if index:
                prev = dec.decode_residuals(payloads[0], base)
            with pytest.raises(BitstreamError):
                dec.decode_residuals(data[:n], prev)


def test_damaged_payloads_are_refused_or_caught_by_the_crc(coded):
    base, payloads, states = coded
    rng = np.random.default_rng(7)
    refused = 0
    for trial in range(60):
        data = bytearray(payloads[0])
        for _ in range(1 + trial % 3):
            data[rng.integers(len(data))] ^= 1 << int(rng.integers(8))
        dec = pack.new_decoder(base, STEPS)
        try:
            got = dec.decode_residuals(bytes(data), base)
        except BitstreamError:
            refused += 1
            with pytest.raises(BitstreamError, match="damaged"):  # the group stays refused
                dec.decode_residuals(payloads[1], base)
            continue
        # decoded anyway (a slice that still parses): the unit's state CRC tells
        assert got.in_range()
        assert got.equal(states[0]) or got.crc() != states[0].crc()
    assert refused > 10


def test_a_picture_of_another_size_is_refused():
    base = base_state()
    _, payloads, _ = run(qp=30, frames=1, base=base_state(count=300))
    with pytest.raises(BitstreamError, match="SPS has the wrong size"):
        pack.new_decoder(base, STEPS).decode_residuals(payloads[0], base)


def test_a_state_of_another_count_is_refused(coded):
    base, payloads, _ = coded
    other = base_state(count=300)
    with pytest.raises(BitstreamError, match="300 Gaussians"):
        pack.new_decoder(base, STEPS).decode_residuals(payloads[0], other)


def test_sps_parser_reads_the_size():
    base, payloads, _ = run(qp=30, frames=1, base=base_state(count=1000))
    sps = [n for n in nal_units(payloads[0]) if n[0] & 0x1F == pack.NAL_SPS]
    # 1000 Gaussians: 4 blocks, 2 x 2; position's fine video stacks 3 planes
    sizes = {pack.sps_size(n) for n in sps}
    assert (32, 96) in sizes and (32, 32) in sizes

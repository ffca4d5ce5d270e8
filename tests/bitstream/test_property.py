"""Property tests: random unit sequences survive Writer -> Reader and Packetizer ->
(reordered, duplicated, lossy) messages -> Reassembler."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from nvc.bitstream import MESSAGE_HEADER_SIZE, Lost, Packetizer, Reader, Reassembler, Unit, UnitType
from nvc.bitstream.index import IndexEntry, choose_rap
from tests.bitstream.helpers import NonSeekable, write_bytes

_TYPES = st.sampled_from(
    [
        UnitType.MODEL,
        UnitType.FRAME,
        UnitType.GAUSSIAN_BASE,
        UnitType.GAUSSIAN_RESIDUAL,
        8,
        300,
        70000,
    ]
)


@st.composite
def unit_lists(draw: st.DrawFn) -> list[Unit]:
    """Units whose RAP pts never decrease (what Writer requires)."""
    n = draw(st.integers(0, 25))
    units = []
    pts = 0
    for _ in range(n):
        pts += draw(st.integers(0, 3))
        rap = draw(st.booleans())
        payload = draw(st.binary(max_size=draw(st.sampled_from([0, 16, 400]))))
        # non-RAP units may carry any pts
        unit_pts = pts if rap else draw(st.integers(0, pts + 3))
        units.append(Unit(draw(_TYPES), payload, unit_pts, rap))
    return units


FAST = settings(max_examples=100, deadline=None)


@FAST
@given(unit_lists(), st.booleans(), st.integers(0, 80))
def test_writer_reader_round_trip_and_seek(units: list[Unit], index: bool, target: int) -> None:
    data = write_bytes(units, index=index)
    assert list(Reader(data)) == units
    assert list(Reader(NonSeekable(data, piece=13))) == units

    reader = Reader(data)
    entries = list(reader.entries())[1 : len(units) + 1]
    raps = [IndexEntry(e.unit.pts, e.offset) for e in entries if e.unit.rap]
    assert reader.index == (raps if index else None)
    expected = choose_rap(raps, target)
    if expected is None:
        try:
            reader.seek(target)
        except ValueError:
            pass
        else:
            raise AssertionError("seek should fail before the first RAP")
    else:
        assert reader.seek(target) == expected
        start = [e.offset for e in entries].index(expected.offset)
        assert list(reader) == units[start:]


@st.composite
def delivery(draw: st.DrawFn) -> tuple[list[Unit], int, random.Random, int]:
    units = draw(unit_lists())
    max_message = draw(st.integers(MESSAGE_HEADER_SIZE + 8, 300))
    block = draw(st.integers(1, 8))
    return units, max_message, draw(st.randoms(use_true_random=False)), block


@FAST
@given(delivery(), st.integers(0, 1000))
def test_packets_reordered_and_duplicated_within_the_window(
    case: tuple[list[Unit], int, random.Random, int], start_seq: int
) -> None:
    units, max_message, rng, block = case
    packetizer = Packetizer(max_message, start_seq=start_seq)
    groups = [packetizer.packetize(u) for u in units]
    messages = []
    for i in range(0, len(groups), block):  # shuffle blocks of `block` units
        chunk = [m for g in groups[i : i + block] for m in g]
        chunk += rng.sample(chunk, k=len(chunk) // 3)  # duplicates
        rng.shuffle(chunk)
        messages += chunk
    if messages:
        messages.insert(rng.randrange(len(messages)), messages[0])  # a late duplicate
    reassembler = Reassembler(window=8, start_seq=start_seq)
    out: list[Unit | Lost] = []
    for message in messages:
        assert len(message) <= max_message
        out += reassembler.push(message)
        assert reassembler.pending <= 8
    assert out == units
    assert reassembler.flush() == []


@FAST
@given(delivery(), st.data())
def test_lost_units_are_named(
    case: tuple[list[Unit], int, random.Random, int], data: st.DataObject
) -> None:
    units, max_message, rng, _ = case
    packetizer = Packetizer(max_message)
    groups = [packetizer.packetize(u) for u in units]
    dropped = data.draw(st.sets(st.integers(0, max(0, len(units) - 1))))
    partial = data.draw(st.sets(st.integers(0, max(0, len(units) - 1))))
    messages = []
    for seq, group in enumerate(groups):
        if seq in dropped:
            if seq in partial and len(group) > 1:
                messages += group[:-1]  # all but the last fragment
            continue
        messages += group
    reassembler = Reassembler(window=rng.randint(1, 10))
    out: list[Unit | Lost] = []
    for message in messages:
        out += reassembler.push(message)
    out += reassembler.flush()
    delivered = [x for x in out if isinstance(x, Unit)]
    lost = [seq for x in out if isinstance(x, Lost) for seq in x.seqs]
    highest = max((int.from_bytes(m[6:14], "little") for m in messages), default=-1)
    assert delivered == [u for i, u in enumerate(units) if i not in dropped]
    # every dropped unit up to the last one any message arrived for is reported, in order
    assert lost == sorted(s for s in dropped if s <= highest)
    assert len(lost) == len(set(lost))
    for item in out:
        if isinstance(item, Lost) and item.type is not None:
            assert item.count == 1
            unit = units[item.seq]
            assert (item.type, item.pts, item.rap) == (unit.type, unit.pts, unit.rap)

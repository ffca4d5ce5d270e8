"""Packetizer and Reassembler: fragmentation, reordering, duplicates, loss, hostility."""

from __future__ import annotations

import pytest

from nvc.bitstream import (
    DEFAULT_MAX_MESSAGE,
    MESSAGE_HEADER_SIZE,
    Lost,
    Packetizer,
    Reassembler,
    Unit,
    UnitType,
    encode_unit,
)
from nvc.errors import BitstreamError
from tests.bitstream.helpers import make_message, sample_units

UNITS = sample_units(count=16, group=4, seed=3)


def packets(units: list[Unit], max_message: int = 64) -> list[list[bytes]]:
    packetizer = Packetizer(max_message)
    return [packetizer.packetize(u) for u in units]


def push_all(reassembler: Reassembler, messages: list[bytes]) -> list[Unit | Lost]:
    out: list[Unit | Lost] = []
    for message in messages:
        out += reassembler.push(message)
    return out


def test_fragments_respect_the_size_and_carry_the_unit() -> None:
    unit = Unit(UnitType.MODEL, bytes(range(256)) * 200, pts=7, rap=True)
    messages = Packetizer().packetize(unit)
    chunk = DEFAULT_MAX_MESSAGE - MESSAGE_HEADER_SIZE
    assert len(messages) == -(-len(encode_unit(unit)) // chunk) == 4
    assert all(len(m) <= DEFAULT_MAX_MESSAGE for m in messages)
    assert all(len(m) == DEFAULT_MAX_MESSAGE for m in messages[:-1])
    assert b"".join(m[MESSAGE_HEADER_SIZE:] for m in messages) == encode_unit(unit)
    reassembler = Reassembler()
    assert push_all(reassembler, messages[::-1]) == [unit]


def test_sequence_numbers_increase() -> None:
    packetizer = Packetizer(start_seq=41)
    packetizer.packetize(UNITS[0])
    assert packetizer.next_seq == 42
    with pytest.raises(ValueError):
        Packetizer(10)


def test_in_order_round_trip() -> None:
    messages = [m for group in packets(UNITS) for m in group]
    reassembler = Reassembler()
    assert push_all(reassembler, messages) == UNITS
    assert reassembler.flush() == []
    assert reassembler.pending == 0 and reassembler.buffered == 0


def test_reordering_within_the_window_and_duplicates() -> None:
    groups = packets(UNITS)
    messages = []
    for i in range(0, len(groups), 3):  # reverse blocks of three units
        for group in reversed(groups[i : i + 3]):
            messages += group[::-1] + group[:1]  # with a duplicated fragment
    messages += groups[0]  # late duplicates of a delivered unit
    reassembler = Reassembler(window=4)
    assert push_all(reassembler, messages) == UNITS
    assert reassembler.duplicates > 0


def test_lost_unit_is_named_when_the_window_moves_on() -> None:
    groups = packets(UNITS)
    reassembler = Reassembler(window=3)
    out = push_all(reassembler, [m for g in groups[:5] for m in g])
    assert out == UNITS[:5]
    # unit 5: only its first fragment arrives; unit 6 is lost entirely
    assert len(groups[5]) > 1
    out = push_all(reassembler, groups[5][:1] + groups[7])
    assert out == []  # still within the window
    lost5 = Lost(5, UNITS[5].type, UNITS[5].pts, UNITS[5].rap, "missing")
    assert push_all(reassembler, groups[8]) == [lost5]  # 8 - 3 + 1 = 6: unit 5 given up
    out = push_all(reassembler, groups[9])  # 9 - 3 + 1 = 7: unit 6 given up
    assert out == [Lost(6), UNITS[7], UNITS[8], UNITS[9]]
    assert out[0].seqs == range(6, 7)  # type: ignore[union-attr]


def test_flush_reports_everything_pending() -> None:
    units = [Unit(UnitType.FRAME, bytes([i]) * 100, pts=i, rap=True) for i in range(7)]
    groups = packets(units)
    assert len(groups[3]) > 1
    reassembler = Reassembler()
    push_all(reassembler, groups[0] + groups[2] + groups[3][1:] + groups[6])
    out = reassembler.flush()
    assert out == [
        Lost(1),
        units[2],
        Lost(3, UnitType.FRAME, 3, True),
        Lost(4, count=2),
        units[6],
    ]
    assert reassembler.next_seq == 7 and reassembler.flush() == []


def test_late_joiner_starts_at_the_first_message() -> None:
    groups = packets(UNITS)
    reassembler = Reassembler(start_seq=None)
    assert reassembler.next_seq is None
    assert push_all(reassembler, [m for g in groups[4:] for m in g]) == UNITS[4:]


def test_resync_skips_to_the_next_rap() -> None:
    groups = packets(UNITS)
    raps = [i for i, u in enumerate(UNITS) if u.rap]
    first, second = raps[0], raps[1]
    reassembler = Reassembler(resync=True, window=2)
    messages = [m for i, g in enumerate(groups) if i != first + 2 for m in g]
    out = push_all(reassembler, messages) + reassembler.flush()
    assert out[: first + 2] == UNITS[: first + 2]
    assert out[first + 2] == Lost(first + 2, reason="missing")
    skipped = out[first + 3 : second]
    assert all(isinstance(x, Lost) and x.reason == "skipped" for x in skipped)
    assert out[second:] == UNITS[second:]


def test_resync_waits_for_a_rap_at_the_start_but_passes_end() -> None:
    end = Unit(UnitType.END, bytes(8))
    units = [Unit(UnitType.FRAME, b"a", pts=0), Unit(UnitType.FRAME, b"b", pts=1, rap=True), end]
    out = push_all(Reassembler(resync=True), [m for g in packets(units) for m in g])
    assert out == [Lost(0, UnitType.FRAME, 0, False, "skipped"), units[1], end]


def test_corrupt_unit_is_reported_lost() -> None:
    data = bytearray(encode_unit(Unit(UnitType.FRAME, b"payload", pts=4)))
    data[5] ^= 1  # the unit CRC fails, the message CRC is right
    message = make_message(bytes(data), seq=0, pts=4)
    mismatch = make_message(encode_unit(Unit(UnitType.FRAME, b"x", pts=9)), seq=1, pts=4)
    out = push_all(Reassembler(), [message, mismatch])
    assert out == [
        Lost(0, UnitType.FRAME, 4, False, "corrupt"),
        Lost(1, UnitType.FRAME, 4, False, "corrupt"),
    ]


GOOD = encode_unit(Unit(UnitType.FRAME, b"0123456789"))


@pytest.mark.parametrize(
    ("message", "match"),
    [
        (b"", "too short"),
        (make_message(GOOD)[:MESSAGE_HEADER_SIZE], "too short"),
        (make_message(GOOD, version=2), "version"),
        (make_message(GOOD)[:-1] + b"\x00", "CRC"),
        (make_message(GOOD, utype=0), "type 0"),
        (make_message(GOOD, pts=1 << 63), "pts"),
        (make_message(GOOD, unit_size=4), "unit size"),
        (make_message(GOOD, unit_size=1 << 31), "unit size"),
        (make_message(GOOD, count=0), "fragment count"),
        (make_message(GOOD, count=70000, unit_size=100000), "fragment count"),
        (make_message(GOOD, count=len(GOOD) + 1), "fragment count"),
        (make_message(GOOD, index=1), "fragment index"),
        (make_message(GOOD, unit_size=len(GOOD) - 1), "larger than its unit"),
        (make_message(GOOD, seq=1, unit_size=len(GOOD) + 1), "add up"),
    ],
)
def test_hostile_messages_raise_and_change_nothing(message: bytes, match: str) -> None:
    reassembler = Reassembler(max_unit_size=1 << 20)
    assert reassembler.push(make_message(GOOD[:10], unit_size=len(GOOD), count=2)) == []
    with pytest.raises(BitstreamError, match=match):
        reassembler.push(message)
    assert reassembler.pending == 1 and reassembler.buffered == 10
    out = reassembler.push(make_message(GOOD[10:], unit_size=len(GOOD), index=1, count=2))
    assert out == [Unit(UnitType.FRAME, b"0123456789")]


def test_fragments_that_disagree_raise() -> None:
    reassembler = Reassembler()
    reassembler.push(make_message(GOOD[:10], unit_size=len(GOOD), count=2))
    changes: list[dict[str, int]] = [
        {"pts": 1},
        {"utype": 4},
        {"flags": 1},
        {"unit_size": len(GOOD) + 1},
    ]
    for changed in changes:
        fields = {"unit_size": len(GOOD), "index": 1, "count": 2, **changed}
        with pytest.raises(BitstreamError, match="disagrees"):
            reassembler.push(make_message(GOOD[10:], **fields))  # type: ignore[arg-type]
    with pytest.raises(BitstreamError, match="add up"):
        reassembler.push(make_message(GOOD[10:-1], unit_size=len(GOOD), index=1, count=2))


def test_buffer_limits_bound_memory() -> None:
    reassembler = Reassembler(window=8, max_buffered=100, max_buffered_fragments=5)
    big = make_message(b"x" * 60, seq=1, unit_size=200, count=4)
    reassembler.push(big)
    with pytest.raises(BitstreamError, match="limit"):
        reassembler.push(make_message(b"y" * 60, seq=2, unit_size=200, count=4))
    for i in range(4):
        reassembler.push(make_message(b"z", seq=3 + i, unit_size=200, count=4))
    with pytest.raises(BitstreamError, match="limit"):
        reassembler.push(make_message(b"z", seq=8, unit_size=200, count=4))
    # a message far ahead frees the window instead
    out = reassembler.push(make_message(b"w", seq=1000, unit_size=200, count=4))
    assert out[0] == Lost(0)
    assert sum(x.count for x in out if isinstance(x, Lost)) == 1000 - 8 + 1
    assert reassembler.pending == 1 and reassembler.buffered == 1


def test_reassembler_arguments() -> None:
    with pytest.raises(ValueError):
        Reassembler(window=0)
    with pytest.raises(ValueError):
        Reassembler(max_unit_size=1)

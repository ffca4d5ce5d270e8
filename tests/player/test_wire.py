import pytest

from nvc.player import wire


@pytest.mark.parametrize(
    "message",
    [
        wire.Hello(live=True, ordered=False, max_retransmits=0),
        wire.Hello(live=False, ordered=True, max_retransmits=None),
        wire.Timing(seq=3, pts=2, at=1717000000.25, capture=None),
        wire.Timing(seq=0, pts=0, at=1.5, capture=1.25),
        wire.Skip(units=7, reason="slow"),
    ],
)
def test_control_messages_round_trip(message):
    assert wire.decode(wire.encode(message)) == message


def test_unknown_types_are_ignored_and_malformed_ones_rejected():
    assert wire.decode('{"type": "future", "x": 1}') is None
    for bad in [
        "not json",
        "[1, 2]",
        '{"type": "unit", "seq": -1, "pts": 0, "at": 1}',
        '{"type": "unit", "seq": 1, "pts": 0, "at": "soon"}',
        '{"type": "unit", "seq": 1, "pts": 0, "at": NaN}',
        '{"type": "skip", "units": true}',
        '{"type": "skip", "units": 1, "pad": "' + "x" * wire.MAX_TEXT + '"}',
        "[" * 1100,  # json.loads raises RecursionError, which is no ValueError
        '{"a":' * 1000 + "0" + "}" * 1000,
        "9" * 4000,  # int() refuses this many digits
    ]:
        with pytest.raises(ValueError):
            wire.decode(bad)

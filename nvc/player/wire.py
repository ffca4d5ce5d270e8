"""What travels on a viewer's data channel besides the units (see README.md, "Wire").

Binary messages are the bitstream's network messages (SPEC.md section 7), unchanged.
Text messages are small JSON objects with a "type":

    {"type": "hello", "protocol": 1, "live": false, "ordered": true, "max_retransmits": null}
    {"type": "unit", "seq": 12, "pts": 11, "at": 1717171717.123, "capture": null}
    {"type": "skip", "units": 7, "reason": "slow"}

"unit" precedes the messages of unit `seq`: `at` is the sender's wall-clock time
(time.time()) when the stream released the unit, `capture` the wall-clock time its frame
was captured (live sources) or null. "skip" says the sender left out `units` units to
bring a slow viewer back to real time; the next unit it sends is a random-access point.
This module has no dependency on aiortc.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

PROTOCOL = 1  # version of the text messages
MAX_TEXT = 4096  # longest text message a receiver parses


@dataclass(frozen=True)
class Hello:
    """First message on a channel: how the stream is sent."""

    live: bool  # the source is live (encoded as it is captured)
    ordered: bool  # the channel delivers messages in order
    max_retransmits: int | None  # None: reliable; else partial reliability


@dataclass(frozen=True)
class Timing:
    """When a unit left the sender."""

    seq: int  # the unit's sequence number on this channel
    pts: int  # the unit's pts
    at: float  # wall-clock time the stream released the unit
    capture: float | None  # wall-clock capture time of its frame (live sources)


@dataclass(frozen=True)
class Skip:
    """The sender left out units so that a slow viewer catches up."""

    units: int  # how many units were left out
    reason: str  # why ("slow")


Control = Hello | Timing | Skip


def encode(message: Control) -> str:
    """The text form of a control message."""
    body: dict[str, Any]
    if isinstance(message, Hello):
        body = {
            "type": "hello",
            "protocol": PROTOCOL,
            "live": message.live,
            "ordered": message.ordered,
            "max_retransmits": message.max_retransmits,
        }
    elif isinstance(message, Timing):
        body = {
            "type": "unit",
            "seq": message.seq,
            "pts": message.pts,
            "at": message.at,
            "capture": message.capture,
        }
    else:
        body = {"type": "skip", "units": message.units, "reason": message.reason}
    return json.dumps(body, separators=(",", ":"))


def _int(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key!r} must be a non-negative integer")
    return value


def _time(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key!r} must be a finite number")
    return float(value)


def decode(text: str) -> Control | None:
    """Parse a control message; None for a well-formed message of an unknown type.

    Raises ValueError for anything malformed (too long, not JSON, wrong fields).
    """
    if len(text) > MAX_TEXT:
        raise ValueError("control message too long")
    try:
        body = json.loads(text)
    except RecursionError:  # nested too deeply ("[[[[..."): not a control message
        raise ValueError("control message nested too deeply") from None
    if not isinstance(body, dict):
        raise ValueError("control message is not a JSON object")
    kind = body.get("type")
    if kind == "hello":
        retransmits = body.get("max_retransmits")
        if retransmits is not None:
            retransmits = _int(body, "max_retransmits")
        return Hello(bool(body.get("live")), bool(body.get("ordered", True)), retransmits)
    if kind == "unit":
        capture = body.get("capture")
        return Timing(
            _int(body, "seq"),
            _int(body, "pts"),
            _time(body.get("at"), "at"),
            None if capture is None else _time(capture, "capture"),
        )
    if kind == "skip":
        return Skip(_int(body, "units"), str(body.get("reason", "")))
    return None

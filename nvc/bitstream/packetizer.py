"""Cutting units into network messages and putting them back together (SPEC.md section 7).

sender:   Packetizer(16384).packetize(unit) -> [message, ...]
receiver: Reassembler().push(message) -> [Unit | Lost, ...]   (in sequence order)
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Literal

from nvc.bitstream.leb128 import U32_MAX, U64_MAX
from nvc.bitstream.units import FLAG_RAP, MAX_PTS, Unit, UnitType, decode_unit, encode_unit
from nvc.errors import BitstreamError

PACKET_VERSION = 1  # message format version
# version, flags, type, seq, pts, unit_size, fragment_index, fragment_count
_FIELDS = struct.Struct("<BBIQQIII")
_CRC_AT = _FIELDS.size  # 34
MESSAGE_HEADER_SIZE = _FIELDS.size + 4  # 38 bytes, crc included
DEFAULT_MAX_MESSAGE = 16384  # safe message size for WebRTC data channels
MIN_MESSAGE = MESSAGE_HEADER_SIZE + 8  # room for the header and a little data
MIN_ENCODED_UNIT = 8  # 1-byte type, flags, pts and size, no payload, crc

LossReason = Literal["missing", "corrupt", "skipped"]


@dataclass(frozen=True)
class Lost:
    """Units the receiver will never deliver.

    `seq` is the first lost unit's sequence number and `count` how many consecutive units
    are lost (more than 1 only for a run of which nothing arrived). `type`, `pts` and `rap`
    are known when some fragment of the unit arrived, else None. `reason` is "missing"
    (not all fragments arrived in time), "corrupt" (reassembled but invalid) or "skipped"
    (received, but withheld by a resyncing Reassembler until the next RAP).
    """

    seq: int
    type: int | None = None
    pts: int | None = None
    rap: bool | None = None
    reason: LossReason = "missing"
    count: int = 1

    @property
    def seqs(self) -> range:
        """The sequence numbers lost."""
        return range(self.seq, self.seq + self.count)


@dataclass(frozen=True)
class _Message:
    rap: bool
    type: int
    seq: int
    pts: int
    unit_size: int
    index: int
    count: int
    fragment: bytes

    @property
    def key(self) -> tuple[int, int, bool, int, int]:
        """What every fragment of one unit must agree on."""
        return (self.type, self.pts, self.rap, self.unit_size, self.count)


class Packetizer:
    """Cuts units into messages of at most `max_message` bytes, numbering units from
    `start_seq`."""

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE, *, start_seq: int = 0) -> None:
        if max_message < MIN_MESSAGE:
            raise ValueError(f"max_message must be at least {MIN_MESSAGE} bytes")
        if not 0 <= start_seq <= U64_MAX:
            raise ValueError("start_seq must be in 0 .. 2**64 - 1")
        self.max_message = max_message
        self._next_seq = start_seq

    @property
    def next_seq(self) -> int:
        """The sequence number the next unit will get."""
        return self._next_seq

    def packetize(self, unit: Unit) -> list[bytes]:
        """The messages that carry `unit`, in fragment order."""
        if self._next_seq > U64_MAX:
            raise ValueError("sequence numbers exhausted")
        data = encode_unit(unit)
        if len(data) > U32_MAX:
            raise ValueError("unit too large to packetize")
        chunk = self.max_message - MESSAGE_HEADER_SIZE
        count = -(-len(data) // chunk)
        seq = self._next_seq
        self._next_seq += 1
        flags = FLAG_RAP if unit.rap else 0
        messages = []
        for index in range(count):
            fragment = data[index * chunk : (index + 1) * chunk]
            fields = _FIELDS.pack(
                PACKET_VERSION, flags, unit.type, seq, unit.pts, len(data), index, count
            )
            crc = zlib.crc32(fragment, zlib.crc32(fields))
            messages.append(b"".join((fields, crc.to_bytes(4, "little"), fragment)))
        return messages


@dataclass
class _Pending:
    """A unit being reassembled."""

    key: tuple[int, int, bool, int, int]
    type: int
    pts: int
    rap: bool
    unit_size: int
    count: int
    fragments: dict[int, bytes] = field(default_factory=dict)
    received: int = 0  # bytes in fragments

    @property
    def complete(self) -> bool:
        return len(self.fragments) == self.count


class Reassembler:
    """Puts units back together from messages that may arrive lost, duplicated or
    reordered, and delivers them in sequence order.

    push() returns, in sequence order, the units that became deliverable and a `Lost` for
    every unit given up. A unit is given up when a message arrives for a unit `window` or
    more places after it, or at flush(). Messages for units already delivered or given up,
    and repeated fragments, are ignored.

    `start_seq` is the first sequence number expected; None takes the first message's
    (a viewer joining a running stream). With `resync=True` the reassembler withholds the
    units that cannot be decoded: at the start and after each loss it reports non-RAP
    units as Lost(reason="skipped") until a RAP unit arrives (SEQUENCE_HEADER and END
    units always pass).

    Memory stays bounded: at most `window` units are pending, each at most `max_unit_size`
    bytes in at most `max_fragments` fragments, and at most `max_buffered` bytes and
    `max_buffered_fragments` fragments in all. A message that is malformed or would exceed
    a limit raises BitstreamError (offsets are within the message) and changes nothing.
    """

    def __init__(
        self,
        *,
        window: int = 64,
        start_seq: int | None = 0,
        max_unit_size: int = 256 << 20,
        max_fragments: int = 1 << 16,
        max_buffered: int = 512 << 20,
        max_buffered_fragments: int = 1 << 18,
        resync: bool = False,
    ) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        if not MIN_ENCODED_UNIT <= max_unit_size <= U32_MAX:
            raise ValueError("max_unit_size out of range")
        if max_fragments < 1 or max_buffered < 1 or max_buffered_fragments < 1:
            raise ValueError("limits must be positive")
        self.window = window
        self.max_unit_size = max_unit_size
        self.max_fragments = max_fragments
        self.max_buffered = max_buffered
        self.max_buffered_fragments = max_buffered_fragments
        self.resync = resync
        self._next: int | None = start_seq
        self._pending: dict[int, _Pending] = {}
        self._buffered = 0
        self._buffered_fragments = 0
        self._waiting_for_rap = resync
        self.duplicates = 0  # messages ignored as repeated or late

    @property
    def next_seq(self) -> int | None:
        """The sequence number of the next unit to deliver (None before any message when
        start_seq is None)."""
        return self._next

    @property
    def pending(self) -> int:
        """Units partly or completely received but not yet delivered."""
        return len(self._pending)

    @property
    def buffered(self) -> int:
        """Bytes held in pending fragments."""
        return self._buffered

    def _parse(self, message: bytes) -> _Message:
        if len(message) <= MESSAGE_HEADER_SIZE:
            raise BitstreamError(
                f"message of {len(message)} bytes is too short for its header and data",
                len(message),
            )
        version, flags, utype, seq, pts, unit_size, index, count = _FIELDS.unpack_from(message)
        if version != PACKET_VERSION:
            raise BitstreamError(f"unsupported message version {version}", 0)
        stored = int.from_bytes(message[_CRC_AT:MESSAGE_HEADER_SIZE], "little")
        view = memoryview(message)
        if zlib.crc32(view[MESSAGE_HEADER_SIZE:], zlib.crc32(view[:_CRC_AT])) != stored:
            raise BitstreamError("message CRC mismatch", _CRC_AT)
        if utype == 0:
            raise BitstreamError("unit type 0 is invalid", 2)
        if pts > MAX_PTS:
            raise BitstreamError(f"pts {pts} out of range", 14)
        if not MIN_ENCODED_UNIT <= unit_size <= self.max_unit_size:
            raise BitstreamError(
                f"unit size {unit_size} is outside {MIN_ENCODED_UNIT} .. {self.max_unit_size}", 22
            )
        if not 1 <= count <= min(unit_size, self.max_fragments):
            raise BitstreamError(f"fragment count {count} is impossible or above the limit", 30)
        if index >= count:
            raise BitstreamError(f"fragment index {index} is not below the count {count}", 26)
        fragment = bytes(view[MESSAGE_HEADER_SIZE:])
        if len(fragment) > unit_size:
            raise BitstreamError("fragment is larger than its unit", MESSAGE_HEADER_SIZE)
        return _Message(bool(flags & FLAG_RAP), utype, seq, pts, unit_size, index, count, fragment)

    def push(self, message: bytes) -> list[Unit | Lost]:
        """Take one message; return the units it made deliverable and the losses it
        revealed, in sequence order."""
        msg = self._parse(bytes(message))
        if self._next is None:
            self._next = msg.seq
        if msg.seq < self._next:
            self.duplicates += 1
            return []
        pending = self._pending.get(msg.seq)
        size = len(msg.fragment)
        if pending is not None:
            if pending.key != msg.key:
                raise BitstreamError(
                    f"message disagrees with earlier fragments of unit {msg.seq}", 0
                )
            if msg.index in pending.fragments:
                self.duplicates += 1
                return []
            received = pending.received + size
            fragments = len(pending.fragments) + 1
        else:
            received, fragments = size, 1
        if received > msg.unit_size or (fragments == msg.count and received != msg.unit_size):
            raise BitstreamError(
                f"fragments of unit {msg.seq} do not add up to its size {msg.unit_size}",
                MESSAGE_HEADER_SIZE,
            )
        new_next = max(self._next, msg.seq - self.window + 1)
        freed = [p for s, p in self._pending.items() if s < new_next]
        buffered = self._buffered - sum(p.received for p in freed) + size
        buffered_fragments = self._buffered_fragments - sum(len(p.fragments) for p in freed) + 1
        if buffered > self.max_buffered or buffered_fragments > self.max_buffered_fragments:
            raise BitstreamError("reassembly buffer limit reached; message refused", 0)
        # Validated: from here on the state changes.
        out: list[Unit | Lost] = []
        self._release(new_next, out)
        if pending is None:
            pending = _Pending(msg.key, msg.type, msg.pts, msg.rap, msg.unit_size, msg.count)
            self._pending[msg.seq] = pending
        pending.fragments[msg.index] = msg.fragment
        pending.received += size
        self._buffered += size
        self._buffered_fragments += 1
        self._deliver_ready(out)
        return out

    def flush(self) -> list[Unit | Lost]:
        """Give up waiting: deliver or report lost every pending unit (for the end of the
        stream, or after a timeout chosen by the caller)."""
        out: list[Unit | Lost] = []
        if self._pending and self._next is not None:
            self._release(max(self._pending) + 1, out)
        return out

    def _release(self, until: int, out: list[Unit | Lost]) -> None:
        """Deliver or give up every unit before `until`."""
        current = self._next
        if current is None or until <= current:
            return
        for seq in sorted(s for s in self._pending if s < until):
            if seq > current:
                self._emit_lost(Lost(current, count=seq - current), out)
            self._finish(seq, out)
            current = seq + 1
        if until > current:
            self._emit_lost(Lost(current, count=until - current), out)
        self._next = until

    def _deliver_ready(self, out: list[Unit | Lost]) -> None:
        while self._next is not None and (p := self._pending.get(self._next)) and p.complete:
            self._finish(self._next, out)
            self._next += 1

    def _finish(self, seq: int, out: list[Unit | Lost]) -> None:
        """Remove the pending unit `seq` and deliver it, or report it lost."""
        p = self._pending.pop(seq)
        self._buffered -= p.received
        self._buffered_fragments -= len(p.fragments)
        if not p.complete:
            self._emit_lost(Lost(seq, p.type, p.pts, p.rap, "missing"), out)
            return
        data = b"".join(p.fragments[i] for i in range(p.count))
        try:
            unit = decode_unit(data, max_payload=self.max_unit_size)
        except BitstreamError:
            unit = None
        if unit is None or (unit.type, unit.pts, unit.rap) != (p.type, p.pts, p.rap):
            self._emit_lost(Lost(seq, p.type, p.pts, p.rap, "corrupt"), out)
            return
        if self._waiting_for_rap and not unit.rap and unit.type not in _ALWAYS_PASS:
            out.append(Lost(seq, unit.type, unit.pts, False, "skipped"))
            return
        if unit.rap:
            self._waiting_for_rap = False
        out.append(unit)

    def _emit_lost(self, lost: Lost, out: list[Unit | Lost]) -> None:
        self._waiting_for_rap = self.resync
        out.append(lost)


_ALWAYS_PASS = frozenset({UnitType.SEQUENCE_HEADER, UnitType.END})

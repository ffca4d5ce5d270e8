"""Fuzzing: mutated, truncated and spliced files and message streams raise only
BitstreamError, in bounded time and memory, and never yield a unit that was not written.

The default run tries a few hundred cases; `pytest -m slow` tries over 10,000 of each.
The seeds are fixed, so every failure reproduces.
"""

from __future__ import annotations

import contextlib
import os
import random
import resource
import signal
import subprocess
import sys
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nvc.bitstream import (
    Lost,
    Packetizer,
    Reader,
    Reassembler,
    Unit,
    UnitEntry,
    UnitType,
    encode_unit,
)
from nvc.bitstream.packetizer import MESSAGE_HEADER_SIZE
from nvc.errors import BitstreamError
from tests.bitstream.helpers import NonSeekable, make_header, sample_units, write_bytes

SEED = 20240917
CASE_SECONDS = 5  # a case taking longer than this counts as a hang


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Fail a case that runs too long (a hang), where the platform has SIGALRM."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"fuzz case ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ---- the corpus -------------------------------------------------------------------


def _corpus() -> list[bytes]:
    big = [Unit(UnitType.GAUSSIAN_BASE, bytes(range(256)) * 40, 0, True)] + [
        Unit(UnitType.GAUSSIAN_RESIDUAL, bytes([i]) * 300, i) for i in range(1, 6)
    ]
    return [
        write_bytes(sample_units(12, 4, seed=1)),
        write_bytes(sample_units(9, 3, seed=2), index=False),
        write_bytes([], make_header(frame_count=None, codec_params=b"")),
        write_bytes(big, make_header(full_range=True)),
    ]


CORPUS = _corpus()
CORPUS_ENTRIES = [list(Reader(data).entries()) for data in CORPUS]
WRITTEN = {e.unit for entries in CORPUS_ENTRIES for e in entries}


# ---- file mutations -----------------------------------------------------------------


def _flip_bits(rng: random.Random, data: bytearray) -> None:
    for _ in range(rng.randint(1, 8)):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)


def _replace_bytes(rng: random.Random, data: bytearray) -> None:
    for _ in range(rng.randint(1, 8)):
        data[rng.randrange(len(data))] = rng.choice([0x00, 0xFF, 0x80, 0x7F, rng.randrange(256)])


def _truncate(rng: random.Random, data: bytearray) -> None:
    del data[rng.randrange(len(data)) :]


def _splice(rng: random.Random, data: bytearray) -> None:
    other = rng.choice(CORPUS)
    data[rng.randrange(len(data) + 1) :] = other[rng.randrange(len(other) + 1) :]


def _insert(rng: random.Random, data: bytearray) -> None:
    at = rng.randrange(len(data) + 1)
    data[at:at] = rng.randbytes(rng.randint(1, 40))


def _delete(rng: random.Random, data: bytearray) -> None:
    at = rng.randrange(len(data))
    del data[at : at + rng.randint(1, 40)]


def _duplicate(rng: random.Random, data: bytearray) -> None:
    at = rng.randrange(len(data))
    piece = data[at : at + rng.randint(1, 200)]
    to = rng.randrange(len(data) + 1)
    data[to:to] = piece


BLIND = [_flip_bits, _replace_bytes, _truncate, _splice, _insert, _delete, _duplicate]


def _mutate_with_crc(rng: random.Random, data: bytearray, entries: list[UnitEntry]) -> None:
    """Change bytes inside one unit and fix its CRC, so the checks behind it get tested."""
    entry = rng.choice(entries)
    body_end = entry.offset + entry.size - 4
    for _ in range(rng.randint(1, 4)):
        data[rng.randrange(entry.offset, body_end)] = rng.choice(
            [0, 1, 0x7F, 0xFF, rng.randrange(256)]
        )
    crc = zlib.crc32(data[entry.offset : body_end])
    data[body_end : body_end + 4] = crc.to_bytes(4, "little")


def _reencode(rng: random.Random, data: bytearray, entries: list[UnitEntry]) -> None:
    """Replace one unit by a valid unit of another type, size, pts or RAP flag."""
    entry = rng.choice(entries)
    unit = Unit(
        rng.choice([*UnitType, 99]),
        rng.randbytes(rng.choice([0, 8, 9, 30])),
        pts=rng.choice([0, 1, 5, 100, 2**63 - 1]),
        rap=rng.random() < 0.5,
    )
    data[entry.offset : entry.offset + entry.size] = encode_unit(unit)


def mutate_file(rng: random.Random) -> tuple[bytes, bool]:
    """A mutated corpus file, and whether only blind mutations (which cannot forge a
    valid unit) were applied."""
    which = rng.randrange(len(CORPUS))
    data = bytearray(CORPUS[which])
    blind = True
    for step in range(rng.choice([1, 1, 1, 2, 3])):
        if not data:
            break
        roll = rng.random() if step == 0 else 1.0  # unit-aware mutations need the layout
        if roll < 0.15:
            _mutate_with_crc(rng, data, CORPUS_ENTRIES[which])
            blind = False
        elif roll < 0.25:
            _reencode(rng, data, CORPUS_ENTRIES[which])
            blind = False
        else:
            rng.choice(BLIND)(rng, data)
    return bytes(data), blind


def _attempt(step: Callable[[], object]) -> object:
    try:
        return step()
    except BitstreamError:
        return None


def exercise_file(data: bytes, rng: random.Random, blind: bool) -> None:
    """Use the file every way a consumer would; only BitstreamError may come out."""
    seekable = rng.random() < 0.7
    source: object = data if seekable else NonSeekable(data, piece=rng.choice([1, 5, 4096]))
    try:
        reader = Reader(source)  # type: ignore[arg-type]
    except BitstreamError:
        return
    with reader:
        units: list[Unit] = []
        _attempt(lambda: units.extend(reader))
        if blind:
            assert set(units) <= WRITTEN, "a damaged file yielded a unit never written"
        if seekable:
            _attempt(lambda: reader.index)
            _attempt(lambda: sum(1 for _ in reader.entries()))
            pts = rng.choice([0, 1, 3, 7, 50, 2**63])
            if _attempt(lambda: reader.seek(pts)) is not None:
                _attempt(lambda: sum(1 for _ in reader))
        else:
            _attempt(lambda: sum(1 for _ in reader.entries()))


def run_file_cases(count: int, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(count):
        data, blind = mutate_file(rng)
        with time_limit(CASE_SECONDS):
            exercise_file(data, rng, blind)


# ---- message mutations ----------------------------------------------------------


def _message_corpus(rng: random.Random) -> tuple[list[bytes], set[Unit]]:
    units = sample_units(rng.randint(1, 8), rng.randint(1, 4), seed=rng.randrange(1000))
    packetizer = Packetizer(rng.choice([MESSAGE_HEADER_SIZE + 8, 64, 100, 400]))
    return [m for u in units for m in packetizer.packetize(u)], set(units)


def _fix_crc(message: bytearray) -> None:
    crc = zlib.crc32(message[MESSAGE_HEADER_SIZE:], zlib.crc32(message[:34]))
    message[34:MESSAGE_HEADER_SIZE] = crc.to_bytes(4, "little")


def mutate_messages(rng: random.Random) -> tuple[list[bytes], set[Unit]]:
    messages, units = _message_corpus(rng)
    for _ in range(rng.randint(1, 6)):
        i = rng.randrange(len(messages))
        message = bytearray(messages[i])
        if not message:
            continue
        roll = rng.random()
        if roll < 0.3:  # change header or data fields and keep the message CRC valid
            for _ in range(rng.randint(1, 3)):
                at = rng.randrange(len(message))
                if at not in range(34, MESSAGE_HEADER_SIZE):
                    message[at] = rng.choice([0, 1, 2, 0x7F, 0xFF, rng.randrange(256)])
            _fix_crc(message)
            messages[i] = bytes(message)
        elif roll < 0.45:
            _flip_bits(rng, message)
            messages[i] = bytes(message)
        elif roll < 0.55:
            messages[i] = bytes(message[: rng.randrange(len(message))])
        elif roll < 0.65:
            del messages[i]
            if not messages:
                messages.append(b"")
        elif roll < 0.75:
            messages.insert(rng.randrange(len(messages) + 1), messages[i])
        elif roll < 0.85:
            j = rng.randrange(len(messages))
            messages[i], messages[j] = messages[j], messages[i]
        elif roll < 0.95:
            messages.insert(rng.randrange(len(messages) + 1), rng.randbytes(rng.randint(0, 120)))
        else:
            other = messages[rng.randrange(len(messages))]
            messages[i] = (
                bytes(message[: rng.randrange(len(message))])
                + other[rng.randrange(len(other) + 1) :]
            )
    return messages, units


WINDOW = 8
MAX_BUFFERED = 1 << 16


def exercise_messages(messages: list[bytes], units: set[Unit], resync: bool) -> None:
    reassembler = Reassembler(
        window=WINDOW,
        max_unit_size=1 << 15,
        max_fragments=256,
        max_buffered=MAX_BUFFERED,
        max_buffered_fragments=512,
        resync=resync,
    )
    out: list[Unit | Lost] = []
    for message in messages:
        with contextlib.suppress(BitstreamError):
            out += reassembler.push(message)
        assert reassembler.pending <= WINDOW and reassembler.buffered <= MAX_BUFFERED
    out += reassembler.flush()
    assert reassembler.pending == 0 and reassembler.buffered == 0
    for item in out:
        if isinstance(item, Unit):
            assert item in units, "a damaged message stream delivered a unit never sent"


def run_message_cases(count: int, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(count):
        messages, units = mutate_messages(rng)
        with time_limit(CASE_SECONDS):
            exercise_messages(messages, units, resync=rng.random() < 0.3)


# ---- the tests --------------------------------------------------------------------


def test_corpus_is_valid() -> None:
    for data in CORPUS:
        for source in (data, NonSeekable(data)):
            list(Reader(source))


def test_fuzz_files() -> None:
    run_file_cases(400, SEED)


def test_fuzz_messages() -> None:
    run_message_cases(500, SEED)


def test_fuzz_memory_stays_small() -> None:
    """Size fields claiming up to 1 GiB never make the reader allocate much: the peak
    stays within a small multiple of the input."""
    rng = random.Random(SEED + 1)
    tracemalloc.start()
    try:
        for _ in range(40):
            data, blind = mutate_file(rng)
            tracemalloc.reset_peak()
            exercise_file(data, rng, blind)
            _, peak = tracemalloc.get_traced_memory()
            assert peak < 1_000_000 + 20 * len(data), f"peak {peak} bytes for {len(data)}"
            messages, units = mutate_messages(rng)
            tracemalloc.reset_peak()
            exercise_messages(messages, units, resync=False)
            _, peak = tracemalloc.get_traced_memory()
            assert peak < 2_000_000
    finally:
        tracemalloc.stop()


_NATIVE_MEMORY_SCRIPT = """
from tests.bitstream import test_fuzz as t
before = t.peak_rss_kb()
t.run_file_cases(300, t.SEED + 2)
t.run_message_cases(300, t.SEED + 2)
print(before, t.peak_rss_kb())
"""


def peak_rss_kb() -> int:
    """This process's peak RSS in KiB (VmHWM: ru_maxrss would include the parent's RSS
    at fork on Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def test_fuzz_native_memory_in_a_fresh_process() -> None:
    """Native memory (RSS, not only Python's allocations): a fresh process under a 1 GiB
    address-space cap runs file and message cases; its peak RSS grows by a few MB only."""
    root = Path(__file__).resolve().parents[2]
    cap = 1 << 30

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    proc = subprocess.run(
        [sys.executable, "-c", _NATIVE_MEMORY_SCRIPT],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        preexec_fn=limit,  # noqa: PLW1509 - no threads are started in this test
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    before, after = (int(v) for v in proc.stdout.split())
    assert after - before < 32 * 1024, f"peak RSS grew by {(after - before) // 1024} MB"


def test_absurd_size_fields_in_small_inputs() -> None:
    """Hand-made worst cases: a unit claiming 1 GiB, LEB128 runs, huge counts."""
    header = CORPUS[2][: CORPUS_ENTRIES[2][1].offset]  # file + sequence header
    cases = [
        header + b"\x03\x00\x00\x80\x80\x80\x80\x04" + b"x" * 100,  # 1 GiB payload claimed
        header + b"\x03\x00\x00\x81\x80\x80\x80\x04",  # just above 1 GiB
        header + b"\x83" * 5000,
        header + b"\x03\x00" + b"\xff" * 5000,
        header + b"\x06\x00\x00\x04\xff\xff\xff\x0f" + b"\x00" * 4 + bytes(16),
    ]
    for data in cases:
        for source in (data, NonSeekable(data, piece=4096)):
            start = time.perf_counter()
            with pytest.raises(BitstreamError):
                list(Reader(source))
            assert time.perf_counter() - start < 1


@pytest.mark.slow
def test_fuzz_files_at_scale() -> None:
    run_file_cases(12_000, SEED + 100)


@pytest.mark.slow
def test_fuzz_messages_at_scale() -> None:
    run_message_cases(12_000, SEED + 100)

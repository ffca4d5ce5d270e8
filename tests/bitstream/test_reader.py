"""Reader: sources, iteration, entries, index, seeking, structure checks."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from nvc.bitstream import (
    IndexEntry,
    Reader,
    Unit,
    UnitParser,
    UnitType,
    Writer,
    encode_unit,
)
from nvc.bitstream.index import encode_index
from nvc.errors import BitstreamError
from tests.bitstream.helpers import NonSeekable, make_header, raw_file, sample_units, write_bytes

UNITS = sample_units()
DATA = write_bytes(UNITS)


def test_reads_bytes_path_file_object_and_pipe(tmp_path: Path) -> None:
    path = tmp_path / "clip.nvc"
    path.write_bytes(DATA)
    sources: list[object] = [
        DATA,
        bytearray(DATA),
        path,
        str(path),
        io.BytesIO(DATA),
        NonSeekable(DATA),
    ]
    for source in sources:
        with Reader(source) as reader:  # type: ignore[arg-type]
            assert reader.header == make_header()
            assert list(reader) == UNITS
            assert list(reader) == []  # the single pass is over


def test_file_object_is_read_from_its_current_position() -> None:
    stream = io.BytesIO(b"prefix" + DATA)
    stream.seek(6)
    reader = Reader(stream)
    assert reader.length == len(DATA)
    assert reader.index is not None
    assert reader.seek(9).pts == 8
    assert next(iter(reader)).pts == 8
    reader.close()
    assert not stream.closed  # not ours to close


def test_entries_cover_the_file_and_carry_offsets() -> None:
    reader = Reader(DATA)
    entries = list(reader.entries())
    assert entries[0].offset == 8 and entries[0].unit.type == UnitType.SEQUENCE_HEADER
    position = 8
    for entry in entries:
        assert entry.offset == position
        assert DATA[entry.offset : entry.offset + entry.size] == encode_unit(entry.unit)
        position += entry.size
    assert position == len(DATA)
    assert [e.unit for e in entries[1:-2]] == UNITS
    # entries() is an independent pass on a seekable source
    assert list(reader.entries()) == entries
    assert list(reader) == UNITS


def test_entries_on_a_pipe_share_the_single_pass() -> None:
    reader = Reader(NonSeekable(DATA))
    it = iter(reader)
    first = next(it)
    assert first == UNITS[0]
    rest = list(reader.entries())
    assert rest[0].unit.type == UnitType.SEQUENCE_HEADER
    assert [e.unit for e in rest[1:-2]] == UNITS[1:]
    assert reader.index is None and not reader.seekable
    with pytest.raises(BitstreamError, match="not seekable"):
        reader.seek(0)


def test_index_lists_the_raps() -> None:
    reader = Reader(DATA)
    index = reader.index
    assert index is not None
    raps = [e for e in reader.entries() if e.unit.rap]
    assert index == [IndexEntry(e.unit.pts, e.offset) for e in raps]


@pytest.mark.parametrize("with_index", [True, False])
def test_seek(with_index: bool) -> None:
    reader = Reader(write_bytes(UNITS, index=with_index))
    assert (reader.index is not None) is with_index
    for target, rap_pts in [(0, 0), (3, 0), (4, 4), (7, 4), (11, 8), (10**9, 8)]:
        assert reader.seek(target).pts == rap_pts
        units = list(reader)
        assert units[0] == Unit(UnitType.MODEL, units[0].payload, rap_pts, True)
        assert units == UNITS[UNITS.index(units[0]) :]


def test_seek_mid_iteration_takes_effect() -> None:
    reader = Reader(DATA)
    seen = []
    for unit in reader:
        seen.append(unit.pts)
        if len(seen) == 3:
            reader.seek(8)
    assert seen[:4] == [0, 0, 1, 8]


def test_seek_before_the_first_rap_and_bad_arguments() -> None:
    units = [Unit(UnitType.FRAME, b"", pts=0), Unit(UnitType.FRAME, b"", pts=5, rap=True)]
    reader = Reader(write_bytes(units))
    with pytest.raises(BitstreamError, match="no random-access point"):
        reader.seek(4)
    with pytest.raises(ValueError):
        reader.seek(-1)
    with pytest.raises(TypeError):
        reader.seek(1.5)  # type: ignore[arg-type]


def test_same_pts_raps_seek_to_the_first() -> None:
    units = [
        Unit(UnitType.MODEL, b"a", pts=0, rap=True),
        Unit(UnitType.MODEL, b"b", pts=10, rap=True),
        Unit(UnitType.FRAME, b"c", pts=10, rap=True),
    ]
    for with_index in (True, False):
        reader = Reader(write_bytes(units, index=with_index))
        reader.seek(12)
        assert list(reader) == units[1:]


def test_unknown_units_are_yielded() -> None:
    units = list(Reader(DATA))
    unknown = [u for u in units if not isinstance(u.type, UnitType)]
    assert [u.type for u in unknown] == [200]


def test_identical_repeated_sequence_header_is_skipped_and_different_one_rejected() -> None:
    frame = Unit(UnitType.FRAME, b"f", rap=True)
    same = raw_file(frame, make_header().to_unit(), frame)
    assert list(Reader(same)) == [frame, frame]
    different = raw_file(frame, make_header(width=8).to_unit(), frame)
    reader = iter(Reader(different))
    assert next(reader) == frame
    with pytest.raises(BitstreamError, match="differs from the first"):
        next(reader)


def test_truncated_file_yields_what_it_can_then_raises() -> None:
    cut = len(DATA) - 30
    reader = Reader(DATA[:cut])
    assert reader.index is None  # no END at the end
    got = []
    with pytest.raises(BitstreamError) as info:
        for unit in reader:
            got.append(unit)
    assert got == UNITS
    assert info.value.offset is not None and info.value.offset < cut
    with pytest.raises(BitstreamError, match="truncated"):
        reader.seek(0)  # scanning needs the whole file


def test_truncated_pipe_raises() -> None:
    reader = Reader(NonSeekable(DATA[:-5]))
    with pytest.raises(BitstreamError, match="truncated"):
        list(reader)


def test_missing_end_and_data_after_end() -> None:
    frame = Unit(UnitType.FRAME, b"f")
    with pytest.raises(BitstreamError, match="without an END"):
        list(Reader(raw_file(frame, end=None)))
    for source in (DATA + b"\x00", NonSeekable(DATA + b"junk")):
        with pytest.raises(BitstreamError, match="follows the END") as info:
            list(Reader(source))
        assert info.value.offset == len(DATA)


def test_first_unit_must_be_the_sequence_header() -> None:
    data = raw_file()[:8] + encode_unit(Unit(UnitType.FRAME, b""))
    for source in (data, NonSeekable(data)):
        with pytest.raises(BitstreamError, match="not a SEQUENCE_HEADER") as info:
            Reader(source)
        assert info.value.offset == 8
    for short in (b"", raw_file()[:8], raw_file()[:20]):
        with pytest.raises(BitstreamError):
            Reader(short)


def test_index_structure_is_checked() -> None:
    rap = Unit(UnitType.FRAME, b"f", pts=3, rap=True)
    header_end = len(raw_file(end=None))
    good_index = encode_index([IndexEntry(3, header_end)])
    index_offset = header_end + len(encode_unit(rap))
    good = raw_file(rap, good_index, end=index_offset)
    reader = Reader(good)
    assert reader.index == [IndexEntry(3, header_end)]
    assert list(reader) == [rap]

    # END points at the wrong place
    bad = raw_file(rap, good_index, end=header_end)
    with pytest.raises(BitstreamError, match="not an INDEX unit"):
        Reader(bad).index  # noqa: B018
    with pytest.raises(BitstreamError, match="index offset"):
        list(Reader(bad))
    # an INDEX unit not followed by END
    with pytest.raises(BitstreamError, match="not followed by the END"):
        list(Reader(raw_file(good_index, rap, end=0)))
    # INDEX present but END says there is none
    with pytest.raises(BitstreamError, match="does not refer"):
        list(Reader(raw_file(rap, good_index, end=0)))
    # an index entry that points at a non-RAP unit: found when seeking
    lying = encode_index([IndexEntry(3, header_end + 1)])
    reader = Reader(raw_file(rap, lying, end=index_offset))
    assert reader.index == [IndexEntry(3, header_end + 1)]
    with pytest.raises(BitstreamError):
        reader.seek(3)
    # an index entry outside the units
    outside = encode_index([IndexEntry(3, 2)])
    with pytest.raises(BitstreamError, match="outside"):
        Reader(raw_file(rap, outside, end=index_offset)).index  # noqa: B018
    # a malformed INDEX payload is found both ways
    garbage = Unit(UnitType.INDEX, b"\x05\x00")
    with pytest.raises(BitstreamError, match="index count"):
        Reader(raw_file(rap, garbage, end=index_offset)).index  # noqa: B018
    with pytest.raises(BitstreamError, match="index count"):
        list(Reader(raw_file(rap, garbage, end=index_offset)))


def test_corrupt_end_at_the_tail_means_no_index_but_iteration_fails() -> None:
    data = bytearray(DATA)
    data[-1] ^= 1
    reader = Reader(bytes(data))
    assert reader.index is None
    assert reader.seek(5).pts == 4  # found by scanning
    with pytest.raises(BitstreamError, match="CRC"):
        list(reader)


def test_lower_max_unit_size() -> None:
    with pytest.raises(BitstreamError, match="exceeds the maximum 64"):
        list(Reader(DATA, max_unit_size=64))


def test_unit_parser_byte_by_byte_and_deferred_errors() -> None:
    body = DATA[8:]
    parser = UnitParser(8)
    entries = []
    for i in range(len(body)):
        entries += parser.feed(body[i : i + 1])
    parser.finish()
    assert parser.offset == len(DATA) and parser.buffered == 0
    assert [e.unit for e in entries] == [e.unit for e in Reader(DATA).entries()]

    parser = UnitParser(8)
    damaged = bytearray(body)
    damaged[entries[2].offset - 8 + entries[2].size - 1] ^= 0xFF  # third unit's CRC
    got = parser.feed(bytes(damaged))
    assert [e.unit for e in got] == [entries[0].unit, entries[1].unit]
    with pytest.raises(BitstreamError) as info:
        parser.feed(b"")
    assert info.value.offset == entries[2].offset
    with pytest.raises(BitstreamError):
        parser.finish()

    parser = UnitParser()
    parser.feed(encode_unit(Unit(UnitType.FRAME, b"abc"))[:-1])
    with pytest.raises(BitstreamError, match="truncated"):
        parser.finish()


def test_live_stream_through_a_real_pipe() -> None:
    """A unit written to a pipe reaches the reader before the writer closes."""
    import os
    import queue
    import threading

    read_fd, write_fd = os.pipe()
    received: queue.Queue[object] = queue.Queue()

    def consume() -> None:
        try:
            with open(read_fd, "rb") as pipe, Reader(pipe) as reader:
                received.put(reader.header)
                for unit in reader:
                    received.put(unit)
            received.put("done")
        except Exception as exc:  # reported to the main thread
            received.put(exc)

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    with open(write_fd, "wb") as pipe:
        writer = Writer(pipe, make_header())
        assert received.get(timeout=10) == make_header()
        for unit in UNITS[:3]:
            writer.write(unit)
            assert received.get(timeout=10) == unit  # arrives while the writer is open
        writer.close()
    assert received.get(timeout=10) == "done"
    thread.join(timeout=10)

"""Writer: layout, atomic writes to a path, streaming to file objects, misuse."""

from __future__ import annotations

import gc
import io
import os
from pathlib import Path

import pytest

from nvc.bitstream import END_UNIT_SIZE, MAGIC, Reader, Unit, UnitType, Writer
from nvc.errors import NvcError
from tests.bitstream.helpers import make_header, sample_units
from tests.specialfiles import FifoReader, is_null_device, make_null_device


def test_writes_a_readable_file_atomically(tmp_path: Path) -> None:
    path = tmp_path / "clip.nvc"
    units = sample_units()
    with Writer(path, make_header()) as writer:
        for unit in units:
            writer.write(unit)
        assert not path.exists()  # only the temporary file exists while writing
        assert len(os.listdir(tmp_path)) == 1
    assert os.listdir(tmp_path) == ["clip.nvc"]
    data = path.read_bytes()
    assert data.startswith(MAGIC)
    assert writer.bytes_written == len(data)
    with Reader(path) as reader:
        assert reader.header == make_header()
        assert list(reader) == units


def test_exception_inside_with_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "clip.nvc"
    with pytest.raises(RuntimeError), Writer(str(path), make_header()) as writer:
        writer.write(Unit(UnitType.FRAME, b"x", rap=True))
        raise RuntimeError("encoder failed")
    assert os.listdir(tmp_path) == []


def test_abort_keeps_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "clip.nvc"
    path.write_bytes(b"old contents")
    writer = Writer(path, make_header())
    writer.write(Unit(UnitType.FRAME, b"x"))
    writer.abort()
    writer.abort()  # idempotent
    writer.close()  # no effect after abort
    assert path.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["clip.nvc"]


def test_close_replaces_an_existing_file_and_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "clip.nvc"
    path.write_bytes(b"old contents")
    writer = Writer(path, make_header())
    writer.close()
    writer.close()
    assert writer.closed
    assert Reader(path).header == make_header()


def test_forgotten_writer_removes_its_temporary_file(tmp_path: Path) -> None:
    writer = Writer(tmp_path / "clip.nvc", make_header())
    assert len(os.listdir(tmp_path)) == 1
    del writer
    gc.collect()
    assert os.listdir(tmp_path) == []


def test_missing_directory_or_a_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(NvcError, match="directory .*missing does not exist"):
        Writer(tmp_path / "missing" / "clip.nvc", make_header())
    (tmp_path / "dir.nvc").mkdir()
    with pytest.raises(NvcError, match="it is a directory"):
        Writer(tmp_path / "dir.nvc", make_header())
    assert os.listdir(tmp_path) == ["dir.nvc"]


def _write_sample(target: Path | str) -> None:
    with Writer(target, make_header()) as writer:
        for unit in sample_units():
            writer.write(unit)


def _sample_bytes(tmp_path: Path) -> bytes:
    reference = tmp_path / "reference.nvc"
    _write_sample(reference)
    data = reference.read_bytes()
    reference.unlink()
    return data


def test_device_is_written_through_not_replaced(tmp_path: Path) -> None:
    null = make_null_device(tmp_path)
    _write_sample(null)
    assert is_null_device(null)
    if null.parent == tmp_path:
        assert os.listdir(tmp_path) == ["null"]


def test_fifo_receives_the_stream_as_it_is_written(tmp_path: Path) -> None:
    expected = _sample_bytes(tmp_path)
    reader = FifoReader(tmp_path / "live.nvc")
    _write_sample(reader.path)
    assert reader.result() == expected
    assert os.listdir(tmp_path) == ["live.nvc"]


def test_symlink_is_followed_and_kept(tmp_path: Path) -> None:
    expected = _sample_bytes(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "real.nvc").write_bytes(b"old")
    link = tmp_path / "clip.nvc"
    link.symlink_to("out/real.nvc")
    _write_sample(link)
    assert link.is_symlink() and os.readlink(link) == "out/real.nvc"
    assert (tmp_path / "out" / "real.nvc").read_bytes() == expected
    assert os.listdir(tmp_path / "out") == ["real.nvc"]


def test_dash_is_stdout(tmp_path: Path, capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    expected = _sample_bytes(tmp_path)
    capfdbinary.readouterr()
    _write_sample("-")
    assert capfdbinary.readouterr().out == expected
    assert os.listdir(tmp_path) == []


def test_file_object_target_is_flushed_and_left_open() -> None:
    class Recorder(io.BytesIO):
        flushes = 0

        def flush(self) -> None:
            self.flushes += 1
            super().flush()

    target = Recorder()
    writer = Writer(target, make_header())
    after_header = target.flushes
    assert after_header >= 1 and target.getvalue().startswith(MAGIC)
    writer.write(Unit(UnitType.FRAME, b"abc", rap=True))
    assert target.flushes > after_header
    writer.close()
    assert not target.closed
    assert list(Reader(target.getvalue())) == [Unit(UnitType.FRAME, b"abc", rap=True)]


def test_aborted_stream_has_no_end() -> None:
    target = io.BytesIO()
    with pytest.raises(KeyError), Writer(target, make_header()) as writer:
        writer.write(Unit(UnitType.FRAME, b"abc"))
        raise KeyError
    reader = Reader(target.getvalue())
    with pytest.raises(ValueError, match="without an END"):
        list(reader)


def test_index_and_end_layout() -> None:
    target = io.BytesIO()
    with Writer(target, make_header()) as writer:
        writer.write(Unit(UnitType.MODEL, b"m", pts=0, rap=True))
        writer.write(Unit(UnitType.FRAME, b"f", pts=0))
    entries = list(Reader(target.getvalue()).entries())
    types = [e.unit.type for e in entries]
    assert types == [
        UnitType.SEQUENCE_HEADER,
        UnitType.MODEL,
        UnitType.FRAME,
        UnitType.INDEX,
        UnitType.END,
    ]
    assert entries[-1].size == END_UNIT_SIZE
    assert int.from_bytes(entries[-1].unit.payload, "little") == entries[-2].offset

    no_index = io.BytesIO()
    Writer(no_index, make_header(), index=False).close()
    entries = list(Reader(no_index.getvalue()).entries())
    assert [e.unit.type for e in entries] == [UnitType.SEQUENCE_HEADER, UnitType.END]
    assert entries[-1].unit.payload == bytes(8)


@pytest.mark.parametrize("utype", [UnitType.SEQUENCE_HEADER, UnitType.INDEX, UnitType.END])
def test_container_units_are_refused(utype: UnitType) -> None:
    writer = Writer(io.BytesIO(), make_header())
    with pytest.raises(ValueError, match="itself"):
        writer.write(Unit(utype, b""))


def test_rap_pts_must_not_decrease_and_closed_writer_refuses() -> None:
    writer = Writer(io.BytesIO(), make_header(), index=False)
    writer.write(Unit(UnitType.MODEL, b"", pts=5, rap=True))
    writer.write(Unit(UnitType.FRAME, b"", pts=2))  # non-RAP units may go back
    writer.write(Unit(UnitType.MODEL, b"", pts=5, rap=True))
    with pytest.raises(ValueError, match="must not decrease"):
        writer.write(Unit(UnitType.MODEL, b"", pts=4, rap=True))
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write(Unit(UnitType.FRAME, b""))


def test_header_must_be_a_sequence_header(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        Writer(tmp_path / "x.nvc", "header")  # type: ignore[arg-type]
    assert os.listdir(tmp_path) == []

"""nvc.fileio: the output rule every writer follows (regular file, symlink, device, FIFO)."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from nvc.errors import MediaError, NvcError
from nvc.fileio import OutputTarget, descriptor, is_stdio, is_stdout, output_path
from tests.specialfiles import FifoReader, is_null_device, make_null_device


def write(path: Path, data: bytes, **kwargs: object) -> OutputTarget:
    target = OutputTarget(path, **kwargs)  # type: ignore[arg-type]
    with target.open() as f:
        f.write(data)
    target.commit()
    return target


def test_regular_file_is_replaced_atomically(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    target = OutputTarget(path)
    assert not target.streaming and target.write_path.parent == tmp_path
    assert target.write_path.name.startswith(".out.bin.") and target.write_path.exists()
    with target.open() as f:
        f.write(b"new")
    assert path.read_bytes() == b"old"  # nothing moves before commit
    target.commit()
    target.commit()  # idempotent
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_discard_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    target = OutputTarget(path)
    with target.open() as f:
        f.write(b"partial")
    target.discard()
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


@pytest.mark.parametrize("relative", [True, False])
def test_symlink_is_followed_and_kept(tmp_path: Path, relative: bool) -> None:
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    real = real_dir / "data.bin"
    real.write_bytes(b"old")
    link = tmp_path / "link.bin"
    link.symlink_to(Path("real/data.bin") if relative else real)
    before = os.readlink(link)
    target = write(link, b"new")
    assert target.destination == real.resolve()
    assert link.is_symlink() and os.readlink(link) == before
    assert real.read_bytes() == b"new"
    assert sorted(p.name for p in real_dir.iterdir()) == ["data.bin"]  # no temporary left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.bin", "real"]


def test_dangling_symlink_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "link.bin"
    link.symlink_to("made.bin")
    write(link, b"abc")
    assert link.is_symlink() and (tmp_path / "made.bin").read_bytes() == b"abc"


def test_symlink_loop_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(NvcError, match="cannot write"):
        OutputTarget(tmp_path / "a")
    assert (tmp_path / "a").is_symlink() and (tmp_path / "b").is_symlink()


def test_character_device_is_written_through(tmp_path: Path) -> None:
    null = make_null_device(tmp_path)
    target = write(null, b"x" * 100000)
    assert target.streaming and target.write_path == null
    assert is_null_device(null)
    if null.parent == tmp_path:
        assert [p.name for p in tmp_path.iterdir()] == ["null"]


def test_fifo_receives_the_bytes(tmp_path: Path) -> None:
    reader = FifoReader(tmp_path / "pipe")
    target = write(reader.path, b"hello " * 50000)
    assert target.streaming and target.pipe
    assert reader.result() == b"hello " * 50000
    assert stat.S_ISFIFO(os.lstat(reader.path).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]


def test_output_path_context_for_path_based_writers(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    with output_path(path) as where:
        assert where != path
        where.write_text("{}")
    assert path.read_text() == "{}"
    with pytest.raises(RuntimeError), output_path(path) as where:
        where.write_text("partial")
        raise RuntimeError("failed")
    assert path.read_text() == "{}" and [p.name for p in tmp_path.iterdir()] == ["report.json"]
    null = make_null_device(tmp_path)
    with output_path(null) as where:
        assert where == null
        where.write_text("through")
    assert is_null_device(null)


@pytest.mark.parametrize("kind", ["directory", "socket", "missing parent"])
def test_what_cannot_be_written_is_a_typed_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "x"
    sock = None
    if kind == "directory":
        path.mkdir()
        message = "it is a directory"
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        message = "socket"
    else:
        path = tmp_path / "nowhere" / "x"
        message = "does not exist"
    try:
        with pytest.raises(MediaError, match=message) as info:
            OutputTarget(path, error=MediaError)
    finally:
        if sock is not None:
            sock.close()
    assert "\n" not in str(info.value)
    expected = [] if kind == "missing parent" else ["x"]  # nothing created, nothing removed
    assert [p.name for p in tmp_path.iterdir()] == expected


def test_directory_outputs(tmp_path: Path) -> None:
    real = tmp_path / "frames"
    real.mkdir()
    (real / "old.png").write_bytes(b"old")
    link = tmp_path / "link"
    link.symlink_to("frames")
    target = OutputTarget(link, kind="directory")
    (target.write_path / "new.png").write_bytes(b"new")
    target.commit()
    assert link.is_symlink() and [p.name for p in real.iterdir()] == ["new.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames", "link"]
    with pytest.raises(NvcError, match="not a directory"):
        OutputTarget(make_null_device(tmp_path), kind="directory")
    with pytest.raises(NvcError, match="standard output"):
        OutputTarget("-", kind="directory", allow_stdout=True)


def test_stdout_only_where_allowed(capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    assert is_stdio("-") and is_stdio(Path("-")) and not is_stdio("./-")
    with pytest.raises(NvcError, match="standard output"):
        OutputTarget("-")
    target = write(Path("-"), b"\x00stream bytes\xff", allow_stdout=True)
    assert target.stdout and target.streaming
    assert capfdbinary.readouterr().out == b"\x00stream bytes\xff"


def test_descriptor_paths_are_written_through_their_descriptor(tmp_path: Path) -> None:
    assert descriptor("/dev/stdout") == 1 and descriptor("/dev/fd/1") == 1
    assert descriptor(f"/proc/{os.getpid()}/fd/2") == 2 and descriptor("/proc/self/fd/7") == 7
    assert descriptor("/proc/1/fd/1") is None or os.getpid() == 1  # another process's
    assert descriptor(tmp_path / "fd" / "1") is None and descriptor("-") is None
    link = tmp_path / "out"
    link.symlink_to("/dev/stdout")
    assert descriptor(link) == 1 and is_stdout(link) and is_stdout("-")
    rfd, wfd = os.pipe()
    try:
        target = write(Path(f"/dev/fd/{wfd}"), b"through the descriptor")
        assert target.streaming and target.pipe and target.fd == wfd
        os.close(wfd)  # the writer closed only its duplicate
        wfd = -1
        with os.fdopen(rfd, "rb") as r:
            assert r.read() == b"through the descriptor"
    finally:
        if wfd >= 0:
            os.close(wfd)
    with pytest.raises(NvcError, match="not a directory"):
        OutputTarget("/dev/stdout", kind="directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]

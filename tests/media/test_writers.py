"""Every writer is atomic: nothing at the destination until close() succeeds."""

from __future__ import annotations

import gc
import os
from fractions import Fraction
from pathlib import Path

import pytest

from nvc.errors import MediaError
from nvc.media import open_video, open_writer
from tests.specialfiles import FifoReader, is_null_device, make_null_device

from .conftest import frame_payload, leftovers, random_frame

KINDS = ["clip.y4m", "clip.yuv", "clip.mp4", "clip.mkv", "clip.mov", "frames/"]


def _open(tmp_path: Path, name: str, format: str = "yuv420p"):  # noqa: ANN202
    return open_writer(
        str(tmp_path / name) + ("/" if name.endswith("/") else ""),
        width=16,
        height=8,
        fps=Fraction(25),
        format=format,
    )


@pytest.mark.parametrize("name", KINDS)
def test_success_appears_only_on_close(tmp_path: Path, name: str) -> None:
    w = _open(tmp_path, name)
    w.write(random_frame("yuv420p", 16, 8))
    target = name.rstrip("/")
    names = leftovers(tmp_path)
    assert target not in names  # still a temporary
    assert len(names) == 1 and names[0].startswith(f".{target}.")
    w.close()
    w.close()  # idempotent
    assert leftovers(tmp_path) == [target]
    assert w.frames_written == 1 and w.closed


@pytest.mark.parametrize("name", KINDS)
def test_exception_in_context_leaves_nothing(tmp_path: Path, name: str) -> None:
    with pytest.raises(RuntimeError), _open(tmp_path, name) as w:
        w.write(random_frame("yuv420p", 16, 8))
        raise RuntimeError("interrupted")
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("name", KINDS)
def test_abort_leaves_nothing_and_keeps_old_file(tmp_path: Path, name: str) -> None:
    target = tmp_path / name.rstrip("/")
    if not name.endswith("/"):
        target.write_bytes(b"previous")
    w = _open(tmp_path, name)
    w.write(random_frame("yuv420p", 16, 8))
    w.abort()
    w.abort()
    if name.endswith("/"):
        assert leftovers(tmp_path) == []
    else:
        assert leftovers(tmp_path) == [target.name]
        assert target.read_bytes() == b"previous"
    with pytest.raises(MediaError, match="closed"):
        w.write(random_frame("yuv420p", 16, 8))


@pytest.mark.parametrize("name", KINDS)
def test_no_frames_is_an_error_and_leaves_nothing(tmp_path: Path, name: str) -> None:
    with pytest.raises(MediaError, match="no frames were written"), _open(tmp_path, name):
        pass
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("name", KINDS)
def test_wrong_frame_size_aborts_in_context(tmp_path: Path, name: str) -> None:
    with pytest.raises(MediaError, match="frame is 8x8") as info, _open(tmp_path, name) as w:
        w.write(random_frame("yuv420p", 16, 8))
        w.write(random_frame("yuv420p", 8, 8))
    assert "\n" not in str(info.value)
    assert leftovers(tmp_path) == []


def test_existing_file_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "clip.y4m"
    target.write_bytes(b"old")
    with _open(tmp_path, "clip.y4m") as w:
        w.write(random_frame("yuv420p", 16, 8))
    with open_video(target) as r:
        assert r.frame_count == 1


def test_dropped_writer_removes_its_temporary(tmp_path: Path) -> None:
    w = _open(tmp_path, "clip.y4m")
    w.write(random_frame("yuv420p", 16, 8))
    del w
    gc.collect()
    assert leftovers(tmp_path) == []


def test_writer_converts_format(tmp_path: Path) -> None:
    frame = random_frame("rgb24", 16, 8)
    with _open(tmp_path, "clip.yuv", format="yuv444p10le") as w:
        w.write(frame)
    with open_video(tmp_path / "clip.yuv", size=(16, 8), fps=25, pix_fmt="yuv444p10le") as r:
        back = next(r)
    assert back.format == "yuv444p10le"


@pytest.mark.parametrize(
    ("path", "kwargs", "message"),
    [
        ("x.avi", {}, "cannot write .avi"),
        ("missing/x.y4m", {}, "does not exist"),
        ("x.y4m", {"width": 0}, "width 0 is out of range"),
        ("x.y4m", {"height": 16385}, "height 16385 is out of range"),
        ("x.y4m", {"fps": 0}, "frame rate"),
        ("x.mkv", {"fps": Fraction(2**31, 2**31 - 1)}, "term above 2147483647"),
        ("x.y4m", {"width": 16384, "height": 8192}, "too large"),
        ("x.y4m", {"format": "nv12"}, "unsupported pixel format"),
    ],
)
def test_bad_writer_arguments(tmp_path: Path, path: str, kwargs: dict, message: str) -> None:
    args = {"width": 16, "height": 8, "fps": 25, "format": "yuv420p"} | kwargs
    with pytest.raises(MediaError, match=message) as info:
        open_writer(tmp_path / path, **args)
    assert "\n" not in str(info.value)
    assert leftovers(tmp_path) == []


def test_png_destination_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "frames").write_bytes(b"x")
    with pytest.raises(MediaError, match="it is a file"):
        open_writer(str(tmp_path / "frames") + "/", width=4, height=4, fps=25, format="rgb24")
    assert leftovers(tmp_path) == ["frames"]


# -- special destinations: devices, FIFOs, symlinks, stdout (nvc.fileio's rule) ----------

FILE_KINDS = ["clip.y4m", "clip.yuv", "clip.mp4", "clip.mkv", "clip.mov"]


def _write_one(path: Path | str, *, streaming: bool = False) -> bytes:
    """Write one frame to `path`; the payload bytes of the frame."""
    frame = random_frame("yuv420p", 16, 8)
    with open_writer(path, width=16, height=8, fps=Fraction(25), format="yuv420p") as w:
        w.write(frame)
        assert w.streaming == streaming
    return frame_payload(frame)


@pytest.mark.parametrize("name", [*FILE_KINDS, None])
def test_character_device_is_written_through_not_replaced(tmp_path: Path, name: str) -> None:
    null = make_null_device(tmp_path)
    if name is not None:  # a device node whose name has a video extension
        null = null.rename(null.with_name(name)) if null.parent == tmp_path else null
    _write_one(null, streaming=True)  # no extension (plain /dev/null): streamed as y4m
    assert is_null_device(null)
    if null.parent == tmp_path:
        assert leftovers(tmp_path) == [null.name]


@pytest.mark.parametrize("name", ["clip.y4m", "clip.yuv", "clip.mkv", "pipe"])
def test_fifo_receives_the_video(tmp_path: Path, name: str) -> None:
    reader = FifoReader(tmp_path / name)
    payload = _write_one(reader.path, streaming=True)
    data = reader.result()
    if name.endswith(".yuv"):
        assert data == payload
    elif name.endswith(".mkv"):
        assert data.startswith(b"\x1aE\xdf\xa3")  # an EBML (Matroska) stream
    else:  # y4m, also for a FIFO without extension
        assert data.startswith(b"YUV4MPEG2 W16 H8 F25:1") and data.endswith(payload)
    assert leftovers(tmp_path) == [name]


def test_mp4_into_a_fifo_is_a_clear_error(tmp_path: Path) -> None:
    reader = FifoReader(tmp_path / "clip.mp4")
    with pytest.raises(MediaError, match="needs a seekable output, not a pipe"):
        _write_one(reader.path)
    with open(reader.path, "wb"):  # let the reader thread finish
        pass
    assert reader.result() == b""
    assert leftovers(tmp_path) == ["clip.mp4"]


@pytest.mark.parametrize("name", [*FILE_KINDS, "frames"])
def test_symlink_keeps_pointing_where_it_did(tmp_path: Path, name: str) -> None:
    store = tmp_path / "store"
    store.mkdir()
    target = store / name
    if name == "frames":
        target.mkdir()
    else:
        target.write_bytes(b"old")
    link = tmp_path / f"link_{name}"
    link.symlink_to(os.path.join("store", name))
    _write_one(str(link) + ("/" if name == "frames" else ""))
    assert link.is_symlink() and os.readlink(link) == os.path.join("store", name)
    assert leftovers(store) == [name]  # the target was replaced, no temporary left
    with open_video(link, size=(16, 8), fps=25) as r:
        assert r.read() is not None and r.read() is None
    if name != "frames":
        assert target.read_bytes() != b"old"


def test_dash_is_y4m_on_stdout(capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    payload = _write_one("-", streaming=True)
    out = capfdbinary.readouterr().out
    assert out.startswith(b"YUV4MPEG2 W16 H8 F25:1 ") and out.endswith(b"FRAME\n" + payload)


def test_directory_where_a_file_is_expected(tmp_path: Path) -> None:
    (tmp_path / "clip.y4m").mkdir()
    with pytest.raises(MediaError, match="it is a directory"):
        _write_one(tmp_path / "clip.y4m")
    assert leftovers(tmp_path) == ["clip.y4m"]

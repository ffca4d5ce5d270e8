"""open_video dispatch and the errors every reader shares."""

from __future__ import annotations

from pathlib import Path

import pytest

from nvc.errors import MediaError
from nvc.media import open_video, open_writer
from nvc.media.y4m import Y4MReader

from .conftest import random_frame


def test_missing_file() -> None:
    with pytest.raises(MediaError, match="no such file: /nonexistent/clip.mp4"):
        open_video("/nonexistent/clip.mp4")


def test_y4m_found_by_magic(tmp_path: Path) -> None:
    path = tmp_path / "clip.y4m"
    with open_writer(path, width=4, height=4, fps=25, format="yuv420p") as w:
        w.write(random_frame("yuv420p", 4, 4))
    other = tmp_path / "clip.bin"
    path.rename(other)
    with open_video(other) as r:
        assert isinstance(r, Y4MReader)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": (4, 4, 4)}, "size must be"),
        ({"size": (-1, 4)}, "out of range"),
        ({"fps": "fast"}, "bad frame rate"),
        ({"pix_fmt": "yuv422p"}, "unsupported pixel format"),
        ({"size": (8, 8)}, "4x4, not the 8x8"),
    ],
)
def test_bad_open_arguments(tmp_path: Path, kwargs: dict, message: str) -> None:
    path = tmp_path / "clip.y4m"
    with open_writer(path, width=4, height=4, fps=25, format="yuv420p") as w:
        w.write(random_frame("yuv420p", 4, 4))
    with pytest.raises(MediaError, match=message):
        open_video(path, **kwargs)


def test_empty_file_is_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(MediaError) as info:
        open_video(path)
    assert "\n" not in str(info.value)


def test_reader_repr_and_context(tmp_path: Path) -> None:
    path = tmp_path / "clip.y4m"
    with open_writer(path, width=4, height=2, fps=30, format="yuv444p") as w:
        w.write(random_frame("yuv444p", 4, 2))
    with open_video(path) as r:
        assert "4x2 yuv444p 30 fps frames=1" in repr(r)
    assert r.closed

"""The command's warnings: input audio is dropped with one `nvc: warning:` line."""

from __future__ import annotations

from pathlib import Path

import pytest

from nvc.cli import main
from tests.media.test_colorspace import _file_with_audio


def test_encode_warns_once_that_audio_is_dropped(tmp_path: Path, capsys, mp4_file) -> None:
    source = tmp_path / "a.mkv"
    _file_with_audio(source)
    assert main(["encode", str(source), "-o", str(tmp_path / "a.nvc")]) == 0
    err = capsys.readouterr().err
    warning = f"nvc: warning: {source}: the audio is dropped (nvc codes the first video stream"
    assert err.splitlines().count(warning + " only)") == 1
    assert main(["encode", str(mp4_file), "-o", str(tmp_path / "b.nvc")]) == 0
    assert "warning" not in capsys.readouterr().err
    assert (tmp_path / "a.nvc").is_file()


@pytest.fixture(autouse=True)
def _fresh_logger():
    """Leave the nvc.media logger as it was (main() adds its handler once per process)."""
    import logging

    logger = logging.getLogger("nvc.media")
    before = list(logger.handlers)
    yield
    logger.handlers[:] = before

import io
import subprocess
import sys
from fractions import Fraction

import pytest

import nvc
from nvc.errors import MediaError, NvcError
from tests.conftest import write_frames


def test_encode_decode_file_and_open(tmp_path, clip):
    src = write_frames(tmp_path / "in.y4m", clip)
    report = nvc.encode_file(src, tmp_path / "a.nvc")
    assert report.frames == len(clip) and report.codec == "lossless"
    assert report.bytes == (tmp_path / "a.nvc").stat().st_size
    assert report.bpp == pytest.approx(8 * report.bytes / (len(clip) * 67 * 39))
    with nvc.open(tmp_path / "a.nvc") as f:
        assert f.codec == "lossless"
        assert (f.header.width, f.header.height, f.header.pix_fmt) == (67, 39, "yuv420p")
        frames = list(f)
    assert [fr.pts for fr in frames] == list(range(len(clip)))
    assert all(a.equal(b) for a, b in zip(clip, frames, strict=True))
    d = nvc.decode_file(tmp_path / "a.nvc", tmp_path / "b.y4m")
    assert d.frames == len(clip)


def test_open_for_writing_and_reading_from_bytes(tmp_path, clip):
    with nvc.open(
        tmp_path / "w.nvc", "w", width=67, height=39, fps=Fraction(30), format="yuv420p"
    ) as f:
        for frame in clip:
            units = f.encode(frame)
            assert len(units) == 1 and units[0].rap
    data = (tmp_path / "w.nvc").read_bytes()
    with nvc.open(io.BytesIO(data)) as f:
        assert f.header.fps == 30
        assert all(a.equal(b) for a, b in zip(clip, f, strict=True))


def test_a_failed_write_leaves_nothing(tmp_path, clip):
    with (
        pytest.raises(RuntimeError),
        nvc.open(tmp_path / "w.nvc", "w", width=67, height=39, fps=25) as f,
    ):
        f.encode(clip[0])
        raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []
    with (
        pytest.raises(NvcError, match="no frames"),
        nvc.open(tmp_path / "w.nvc", "w", width=67, height=39, fps=25),
    ):
        pass
    assert list(tmp_path.iterdir()) == []


def test_encode_file_errors_are_typed(tmp_path):
    with pytest.raises(MediaError):
        nvc.encode_file(tmp_path / "missing.mp4", tmp_path / "a.nvc")
    with pytest.raises(NvcError, match="at least 1"):
        nvc.encode_file(tmp_path / "missing.mp4", tmp_path / "a.nvc", frames=0)
    assert not (tmp_path / "a.nvc").exists()


def test_importing_the_container_and_media_does_not_import_torch():
    code = (
        "import sys, nvc, nvc.bitstream, nvc.media, nvc.codec.registry, nvc.codec.lossless; "
        "import nvc.info; "
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0

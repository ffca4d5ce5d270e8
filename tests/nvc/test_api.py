import dataclasses
import io
import subprocess
import sys
from fractions import Fraction

import av
import numpy as np
import pytest

import nvc
from nvc.bitstream import Writer
from nvc.codec import registry
from nvc.codec.base import StreamInfo
from nvc.errors import MediaError, NvcError
from nvc.info import describe
from nvc.media import Frame, convert, open_video, open_writer, psnr_yuv, synthetic_clip
from nvc.media.colorspace import BT601, BT709
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


# ---- PyAV interop, the top-level API, seeking, colour through the pipeline ----------------


def test_top_level_exports_what_api_all_lists():
    import nvc.api

    assert set(nvc.api.__all__) <= set(nvc.__all__)
    for name in nvc.api.__all__:
        assert getattr(nvc, name) is getattr(nvc.api, name), name


def _av_frames(path):
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def test_encode_frames_takes_av_frames_of_a_real_file(tmp_path, mp4_file):
    images = _av_frames(mp4_file)
    assert images[1].pts != 1  # PyAV counts in its stream's time base, nvc counts frames
    report = nvc.encode_frames(images, None, tmp_path / "a.nvc", fps=25)
    assert report.frames == len(images) == 10
    decoded = list(nvc.decode_frames(tmp_path / "a.nvc"))
    assert [f.pts for f in decoded] == list(range(10))
    assert all(a.equal(Frame.from_av(b)) for a, b in zip(decoded, images, strict=True))
    with pytest.raises(NvcError, match="needs fps="):
        nvc.encode_frames(images, None, tmp_path / "b.nvc")
    assert not (tmp_path / "b.nvc").exists()


def test_writer_encodes_av_frames_in_another_format(tmp_path, clip):
    with nvc.open(tmp_path / "w.nvc", "w", width=67, height=39, fps=25, format="yuv444p") as f:
        for frame in clip:
            f.encode(frame.to_av())  # yuv420p PyAV frames into a 4:4:4 stream
    with nvc.open(tmp_path / "w.nvc") as f:
        assert f.header.pix_fmt == "yuv444p"
        decoded = list(f)
    assert all(a.equal(convert(b, "yuv444p")) for a, b in zip(decoded, clip, strict=True))
    with pytest.raises(TypeError, match="av.VideoFrame"):
        nvc.encode_frames([object()], None, tmp_path / "x.nvc", fps=25)


def _file_with_raps_every(path, clip, period):
    """A lossless stream whose units are random-access points only every `period` frames."""
    stream = StreamInfo(67, 39, Fraction(25), "yuv420p")
    spec = registry.get("lossless")
    encoder = spec.create_encoder(stream)
    with Writer(path, stream.to_header(spec.id, encoder.codec_params)) as writer:
        for frame in [*clip, None]:
            for unit in encoder.encode(frame):
                writer.write(dataclasses.replace(unit, rap=unit.pts % period == 0))


def test_seek_goes_to_the_previous_random_access_point(tmp_path, clip):
    _file_with_raps_every(tmp_path / "s.nvc", clip, 3)  # points at frames 0, 3, 6
    with nvc.open(tmp_path / "s.nvc") as f:
        first = next(f)
        assert first.pts == 0
        assert f.seek(0.2) == pytest.approx(0.12)  # 0.2 s is frame 5 -> the point at 3
        assert [fr.pts for fr in f] == [3, 4, 5, 6, 7]
        assert f.seek(0.24) == pytest.approx(0.24)  # exactly on the point at 6
        rest = list(f)
        assert [fr.pts for fr in rest] == [6, 7]
        assert all(a.equal(b) for a, b in zip(rest, clip[6:], strict=True))
        assert f.seek(0) == 0.0 and len(list(f)) == 8
        with pytest.raises(ValueError, match=">= 0"):
            f.seek(-1)
    with nvc.open(io.BytesIO((tmp_path / "s.nvc").read_bytes())) as f:
        assert f.seek(100) == pytest.approx(0.24)  # past the end: the last point


def test_colour_metadata_travels_from_input_to_header_to_output(tmp_path, clip):
    bt601 = [dataclasses.replace(f, colorspace=BT601) for f in clip[:4]]
    with open_writer(
        tmp_path / "in.y4m", width=67, height=39, fps=25, format="yuv420p", colorspace=BT601
    ) as w:
        for frame in bt601:
            w.write(frame)
    nvc.encode_file(tmp_path / "in.y4m", tmp_path / "c.nvc")
    with nvc.open(tmp_path / "c.nvc") as f:
        assert (f.header.matrix, f.header.primaries, f.header.transfer) == (6, 6, 6)
        assert f.colorspace == BT601
        assert all(fr.colorspace == BT601 for fr in f)
    assert describe(tmp_path / "c.nvc")["colorspace"] == "smpte170m/smpte170m/smpte170m"
    nvc.decode_file(tmp_path / "c.nvc", tmp_path / "out.y4m")
    assert b"XNVC_COLOR=smpte170m,smpte170m,smpte170m" in (tmp_path / "out.y4m").read_bytes()[:200]
    # PNG output converts with the signalled matrix, not BT.709
    nvc.decode_file(tmp_path / "c.nvc", tmp_path / "png/")
    with open_video(tmp_path / "png") as reader:
        first = next(reader)
    assert np.array_equal(first.planes[0], bt601[0].to_ndarray())


def test_version_1_files_decode_as_bt709(tmp_path, clip):
    nvc.encode_file(write_frames(tmp_path / "in.y4m", clip), tmp_path / "a.nvc")
    data = bytearray((tmp_path / "a.nvc").read_bytes())
    assert data[6:8] == b"\x02\x00"
    data[6:8] = b"\x01\x00"  # as nvc wrote BT.709 files before colour metadata
    with nvc.open(io.BytesIO(bytes(data))) as f:
        assert f.colorspace == BT709
        frames = list(f)
    assert all(a.equal(b) and b.colorspace == BT709 for a, b in zip(clip, frames, strict=True))


@pytest.mark.slow
def test_seek_in_an_fm_stream_decodes_what_a_full_decode_gives(tmp_path):
    clip = list(synthetic_clip(64, 48, 7, seed=1))
    options = {"intra_period": 3, "q": 20}
    report = nvc.encode_frames(
        [f.to_av() for f in clip],
        None,
        tmp_path / "fm.nvc",
        fps=25,
        codec="fm",
        options=options,
        psnr=True,
    )
    full = list(nvc.decode_frames(tmp_path / "fm.nvc"))
    assert report.psnr == pytest.approx(
        np.mean([psnr_yuv(a, b).weighted for a, b in zip(clip, full, strict=True)])
    )
    with nvc.open(tmp_path / "fm.nvc") as f:
        assert f.seek(0.2) == pytest.approx(0.12)  # frame 5 -> the intra frame 3
        after = list(f)
    assert [fr.pts for fr in after] == [3, 4, 5, 6]
    assert all(a.equal(b) for a, b in zip(after, full[3:], strict=True))

"""Colour metadata: the signalled matrix drives conversions; tags survive y4m, mp4, mkv."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from nvc.errors import MediaError
from nvc.media import Frame, convert, open_video, open_writer, rgb_to_yuv, synthetic_clip
from nvc.media.colorspace import BT601, BT601_625, BT709, BT2020, ColorSpace
from nvc.media.y4m import parse_header


def test_colorspace_values_names_and_errors() -> None:
    assert ColorSpace() == BT709 == ColorSpace.from_names("bt709", "bt709", "bt709")
    assert BT601.names == ("smpte170m", "smpte170m", "smpte170m")
    assert str(BT2020) == "bt2020nc/bt2020/bt2020-10"
    assert ColorSpace.from_codes(2, 2, 2) == BT709  # unspecified reads as BT.709
    assert ColorSpace.from_codes(6, 200, 6) == ColorSpace(6, 1, 6)  # unknown code -> BT.709
    assert BT601.luma_weights == BT601_625.luma_weights == (0.299, 0.114)
    with pytest.raises(MediaError, match="code point 3"):
        ColorSpace(3, 1, 1)
    with pytest.raises(MediaError, match="unknown colour primaries"):
        ColorSpace.from_names("bt709", "srgb", "bt709")
    with pytest.raises(MediaError, match="cannot convert"):
        _ = ColorSpace(8, 1, 1).luma_weights  # YCgCo


@pytest.mark.parametrize(
    ("colorspace", "expected"),
    [(BT709, (63, 102, 240)), (BT601, (81, 90, 240)), (BT2020, (74, 97, 240))],
)
def test_pure_red_in_each_matrix(colorspace: ColorSpace, expected: tuple[int, int, int]) -> None:
    red = np.zeros((2, 2, 3), np.uint8)
    red[..., 0] = 255
    y, cb, cr = rgb_to_yuv(red, "yuv444p", colorspace=colorspace)
    assert (int(y[0, 0]), int(cb[0, 0]), int(cr[0, 0])) == expected


@pytest.mark.parametrize("colorspace", [BT601, BT709, BT2020])
def test_yuv_to_rgb_matches_ffmpeg_for_the_signalled_matrix(colorspace: ColorSpace) -> None:
    rng = np.random.default_rng(1)
    planes = tuple(rng.integers(16, 236, (24, 32)).astype(np.uint8) for _ in range(3))
    frame = Frame(planes, "yuv444p", colorspace=colorspace)
    ours = frame.to_ndarray().astype(int)
    # FFmpeg's scaler reads the matrix from the frame's tags (set by to_av)
    theirs = frame.to_av().reformat(format="rgb24").to_ndarray().astype(int)
    assert np.abs(ours - theirs).max() <= 1
    other = dataclasses.replace(frame, colorspace=BT709 if colorspace != BT709 else BT601)
    assert np.abs(other.to_ndarray().astype(int) - ours).max() > 10  # the matrix matters


def test_convert_between_matrices_keeps_the_picture() -> None:
    frame = dataclasses.replace(synthetic_clip(32, 24, 1, seed=3)[0], colorspace=BT601)
    as709 = convert(frame, "yuv420p", colorspace=BT709)
    assert as709.colorspace == BT709
    assert not np.array_equal(as709.planes[0], frame.planes[0])  # the samples changed...
    diff = np.abs(as709.to_ndarray().astype(int) - frame.to_ndarray().astype(int))
    assert diff.max() <= 4  # ... the picture did not (only rounding, in 4:2:0)
    # only primaries / transfer differ: metadata only, the samples are kept
    tagged = convert(frame, "yuv420p", colorspace=BT601_625)
    assert tagged.colorspace == BT601_625 and tagged.planes[0] is frame.planes[0]


def _clip(colorspace: ColorSpace) -> list[Frame]:
    return [dataclasses.replace(f, colorspace=colorspace) for f in synthetic_clip(32, 24, 3)]


def test_y4m_carries_colour_as_an_x_tag(tmp_path: Path) -> None:
    path = tmp_path / "c.y4m"
    with open_writer(
        path, width=32, height=24, fps=25, format="yuv420p", colorspace=BT2020
    ) as writer:
        for frame in _clip(BT2020):
            writer.write(frame)
    line = path.read_bytes().split(b"\n", 1)[0]
    assert line.endswith(b" XNVC_COLOR=bt2020nc,bt2020,bt2020-10")
    with open_video(path) as reader:
        assert reader.colorspace == BT2020
        assert all(f.colorspace == BT2020 for f in reader)
    header = b"YUV4MPEG2 W4 H4 F25:1 C420jpeg"
    assert parse_header(header).colorspace == BT709  # no tag: BT.709, as before
    with pytest.raises(MediaError, match="bad y4m header"):
        parse_header(header + b" XNVC_COLOR=bt709,bt709")
    with pytest.raises(MediaError, match="bad y4m header"):
        parse_header(header + b" XNVC_COLOR=bt709,nope,bt709")


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_containers_are_tagged_and_read_back(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"c{ext}"
    with open_writer(path, width=32, height=24, fps=25, format="yuv420p", colorspace=BT601) as w:
        for frame in _clip(BT601):
            w.write(frame)
    with av.open(str(path)) as container:  # what FFmpeg sees in the file
        ctx = container.streams.video[0].codec_context
        assert (ctx.colorspace, ctx.color_primaries, ctx.color_trc) == (6, 6, 6)
    with open_video(path) as reader:
        assert reader.colorspace == BT601
        assert next(reader).colorspace == BT601


def test_untagged_file_reads_as_bt709(mp4_file: Path) -> None:
    with av.open(str(mp4_file)) as container:
        assert container.streams.video[0].codec_context.colorspace == 2  # unspecified
    with open_video(mp4_file) as reader:
        assert reader.colorspace == BT709


def _file_with_audio(path: Path) -> None:
    container = av.open(str(path), "w")
    video = container.add_stream("libx264", rate=25)
    video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
    audio = container.add_stream("flac", rate=8000)
    audio.layout = "mono"
    for i in range(3):
        image = av.VideoFrame(32, 32, "yuv420p")
        image.pts = i
        container.mux(video.encode(image))
    sound = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.int16), format="s16", layout="mono")
    sound.sample_rate, sound.pts = 8000, 0
    container.mux(audio.encode(sound))
    container.mux(video.encode(None))
    container.mux(audio.encode(None))
    container.close()


def test_dropped_audio_is_one_warning_line_on_stderr(tmp_path: Path, mp4_file: Path) -> None:
    path = tmp_path / "a.mkv"
    _file_with_audio(path)
    code = (
        "import sys; from nvc.media import open_video\n"
        "with open_video(sys.argv[1]) as r: r.seek_frame(2); print(len(list(r)))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    assert run.stdout == "1\n"
    assert run.stderr == f"{path}: the audio is dropped (nvc codes the first video stream only)\n"
    quiet = subprocess.run(
        [sys.executable, "-c", code, str(mp4_file)], capture_output=True, text=True, check=True
    )
    assert quiet.stderr == ""

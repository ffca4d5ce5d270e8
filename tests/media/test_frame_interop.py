"""Frame <-> numpy and PyAV: layouts as PyAV's, exact round trips, colour tags, errors."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import av
import numpy as np
import pytest

from nvc.errors import MediaError
from nvc.media import Frame, synthetic_clip, to_rgb_float
from nvc.media.colorspace import BT601, BT709, BT2020

from .conftest import random_frame

FORMATS = ["yuv420p", "yuv420p10le", "yuv444p", "yuv444p10le", "rgb24", "rgb48le"]
# formats whose array layout PyAV itself can produce (PyAV 18 has none for yuv444p10le)
PYAV_LAYOUTS = ["yuv420p", "yuv420p10le", "yuv444p", "rgb24", "rgb48le"]


@pytest.mark.parametrize("format", FORMATS)
def test_ndarray_round_trip_is_exact(format: str) -> None:
    frame = random_frame(format, 20, 14, seed=4, pts=3)
    array = frame.to_ndarray(format)
    back = Frame.from_ndarray(array, format, pts=3)
    assert back.equal(frame) and back.pts == 3


@pytest.mark.parametrize("format", PYAV_LAYOUTS)
def test_ndarray_layout_is_pyavs(format: str) -> None:
    frame = random_frame(format, 20, 14, seed=5)
    ours = frame.to_ndarray(format)
    theirs = frame.to_av().to_ndarray()
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    assert np.array_equal(ours, theirs)
    # ... and PyAV builds the same picture from our array
    again = Frame.from_av(av.VideoFrame.from_ndarray(ours, format=format))
    assert again.equal(frame)


def test_to_ndarray_defaults_to_rgb24() -> None:
    frame = synthetic_clip(32, 24, 1, seed=2)[0]
    rgb = frame.to_ndarray()
    assert rgb.shape == (24, 32, 3) and rgb.dtype == np.uint8
    # the same picture as nvc's own conversion, quantized
    expected = np.floor(to_rgb_float(frame) * 255 + 0.5)
    assert np.array_equal(rgb, expected.astype(np.uint8))


@pytest.mark.parametrize("format", FORMATS)
def test_av_round_trip_is_exact_with_times_and_tags(format: str) -> None:
    frame = dataclasses.replace(
        random_frame(format, 18, 10, seed=6, full_range=format.startswith("yuv")),
        pts=7,
        time_base=Fraction(1, 30),
        colorspace=BT2020,
    )
    image = frame.to_av()
    assert image.format.name == format
    assert (image.pts, image.time_base) == (7, Fraction(1, 30))
    assert (image.color_primaries, image.color_trc) == (9, 14)
    if format.startswith("yuv"):
        assert image.colorspace == 9 and image.color_range == 2
    else:
        assert image.colorspace == 0  # RGB
    back = Frame.from_av(image)
    assert back.equal(frame)
    assert (back.pts, back.time_base, back.full_range) == (7, Fraction(1, 30), frame.full_range)
    # RGB samples have no matrix: they read back with BT.709's, the one codecs use for RGB
    matrix = 9 if format.startswith("yuv") else 1
    assert back.colorspace == dataclasses.replace(BT2020, matrix=matrix)


def test_from_av_converts_foreign_formats_and_reads_tags() -> None:
    frame = random_frame("yuv444p", 16, 12, seed=8)
    image = frame.to_av().reformat(format="nv12")  # FFmpeg's own 4:2:0 semi-planar
    image.colorspace, image.color_primaries, image.color_trc = 6, 6, 6
    ours = Frame.from_av(image)
    assert ours.format == "yuv420p" and ours.colorspace == BT601
    assert ours.pts == 0 and ours.time_base == Fraction(1, 25)  # unset on the PyAV frame
    y = np.frombuffer(memoryview(image.planes[0]), np.uint8).reshape(12, -1)[:, :16]
    assert np.array_equal(ours.planes[0], y)
    rgb = Frame.from_av(image, format="rgb24")
    assert rgb.format == "rgb24" and rgb.width == 16


def test_unspecified_colour_reads_as_bt709() -> None:
    image = av.VideoFrame(8, 8, "yuv420p")
    assert image.colorspace == 2  # FFmpeg: unspecified
    assert Frame.from_av(image).colorspace == BT709


def test_interop_errors() -> None:
    with pytest.raises(MediaError, match="even width"):
        random_frame("yuv420p", 15, 10).to_ndarray("yuv420p")
    with pytest.raises(MediaError, match=r"\(H, W, 3\)"):
        Frame.from_ndarray(np.zeros((4, 4), np.uint8), "rgb24")
    with pytest.raises(MediaError, match="must be uint8"):
        Frame.from_ndarray(np.zeros((4, 4, 3), np.float32), "rgb24")
    with pytest.raises(MediaError, match="above 1023"):
        Frame.from_ndarray(np.full((6, 4), 1024, np.uint16), "yuv420p10le")
    with pytest.raises(MediaError, match=r"\(3, H, W\)"):
        Frame.from_ndarray(np.zeros((4, 4, 3), np.uint8), "yuv444p")
    with pytest.raises(MediaError, match="unsupported pixel format"):
        random_frame("yuv420p", 8, 8).to_ndarray("bgr24")
    with pytest.raises(TypeError, match="av.VideoFrame"):
        Frame.from_av(np.zeros((4, 4, 3), np.uint8))  # type: ignore[arg-type]

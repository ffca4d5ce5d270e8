"""Fixtures shared across the test packages: small real video files."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from nvc.media import Frame, open_writer, synthetic_clip


def write_frames(path: Path, frames: list[Frame], fps: Fraction = Fraction(25)) -> Path:
    first = frames[0]
    with open_writer(
        path, width=first.width, height=first.height, fps=fps, format=first.format
    ) as w:
        for f in frames:
            w.write(f)
    return path


@pytest.fixture
def clip() -> list[Frame]:
    """Eight frames of natural-looking 4:2:0 video at an odd size."""
    return list(synthetic_clip(67, 39, 8, format="yuv420p", seed=1))


@pytest.fixture
def mp4_file(tmp_path: Path) -> Path:
    """A lossy H.264 mp4 of 10 frames, 96x64, written with PyAV."""
    path = tmp_path / "clip.mp4"
    frames = list(synthetic_clip(96, 64, 10, format="yuv420p", seed=2))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.options = {"crf": "28", "preset": "ultrafast"}
        for f in frames:
            image = av.VideoFrame(96, 64, "yuv420p")
            for plane, data in zip(image.planes, f.planes, strict=True):
                rows = np.frombuffer(plane, np.uint8, count=plane.height * plane.line_size)
                rows.reshape(plane.height, plane.line_size)[: data.shape[0], : data.shape[1]] = data
            container.mux(stream.encode(image))
        container.mux(stream.encode(None))
    return path

"""Shared helpers for the nvc.media tests."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from nvc.media import Frame, pixel_format


def random_frame(
    format: str, width: int, height: int, seed: int = 0, *, pts: int = 0, full_range: bool = False
) -> Frame:
    """A frame of uniformly random samples over the format's whole code range."""
    fmt = pixel_format(format)
    rng = np.random.default_rng(seed)
    planes = tuple(
        rng.integers(0, fmt.max_value + 1, size=shape).astype(fmt.dtype)
        for shape in fmt.plane_shapes(width, height)
    )
    return Frame(planes, format, pts=pts, time_base=Fraction(1, 25), full_range=full_range)


def random_clip(format: str, width: int, height: int, frames: int, seed: int = 0) -> list[Frame]:
    return [random_frame(format, width, height, seed + i, pts=i) for i in range(frames)]


def frame_payload(frame: Frame) -> bytes:
    """The planar raw bytes of a frame (the .yuv / y4m payload)."""
    dtype = frame.pixel_format.dtype
    return b"".join(np.ascontiguousarray(p, dtype=dtype).tobytes() for p in frame.planes)


def leftovers(directory: Path) -> list[str]:
    """Names in `directory` (temporaries included)."""
    return sorted(p.name for p in directory.iterdir())


@pytest.fixture
def clip420() -> list[Frame]:
    return random_clip("yuv420p", 48, 32, 4)

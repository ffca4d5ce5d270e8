"""Small coded gaussian streams shared by the tests (fitted once per session)."""

from __future__ import annotations

import io
from fractions import Fraction

import pytest

from nvc.codec.base import StreamInfo
from nvc.codec.gaussian import GaussianConfig, GaussianEncoder
from nvc.media import Frame
from nvc.media.synth import synthetic_clip

WIDTH, HEIGHT, FRAMES = 48, 32, 5
FAST = {"gaussians": 40, "group": 3, "max_iterations": 6, "frame_budget": 5.0}


def clip(format: str = "yuv420p", frames: int = FRAMES, seed: int = 3) -> list[Frame]:
    return synthetic_clip(WIDTH, HEIGHT, frames, fps=Fraction(25), format=format, seed=seed)


def stream_of(frames: list[Frame]) -> StreamInfo:
    f = frames[0]
    return StreamInfo(f.width, f.height, Fraction(25), f.format, f.full_range, len(frames))


class Coded:
    """A clip, its encoder (with the reconstructions) and the units it wrote."""

    def __init__(self, frames: list[Frame], **options: object) -> None:
        self.frames = frames
        self.stream = stream_of(frames)
        self.encoder = GaussianEncoder(self.stream, GaussianConfig(**{**FAST, **options}))
        self.units = []
        self.recon = []
        for f in frames:
            self.units += self.encoder.encode(f)
            assert self.encoder.last_reconstruction is not None
            self.recon.append(self.encoder.last_reconstruction)
        self.header = self.stream.to_header(4, self.encoder.codec_params)

    def file_bytes(self) -> bytes:
        from nvc.bitstream import Writer

        buf = io.BytesIO()
        with Writer(buf, self.header) as w:
            for u in self.units:
                w.write(u)
        return buf.getvalue()


@pytest.fixture(scope="session")
def coded() -> Coded:
    return Coded(clip())

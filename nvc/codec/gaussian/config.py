"""Options of the gaussian encoder and the codec parameters of its streams."""

from __future__ import annotations

from dataclasses import dataclass

from nvc.bitstream.leb128 import decode_uleb128, encode_uleb128
from nvc.errors import BitstreamError

PARAMS_VERSION = 1  # codec parameters version written and read
MODE_2D = 0  # image-plane Gaussians of an ordinary video
MODE_3D = 1  # 3D Gaussians of a multi-view scene (codec3d.py)
MAX_GROUP = 10_000  # longest group (frames from one base to the next)
MAX_GAUSSIANS = 1 << 20  # most Gaussians a unit may hold (and at most one per pixel)
# Pixel evaluations a frame's Gaussians may ask of the renderer, per pixel of the picture:
# a decoder refuses a state above it before rendering (the encoder stays far below: its
# Gaussians cover each pixel about 5-30 times).
MAX_EVALS_PER_PIXEL = 512
MAX_SHIFT = 8  # largest power-of-two step exponent of an attribute


@dataclass(frozen=True)
class Steps:
    """Power-of-two quantization steps (exponents) of the attributes, in their units."""

    position: int  # step 2**k in 1/16 px
    scale: int  # step 2**k in 1/8 octave
    angle: int  # step 2**k in pi/256
    colour: int  # step 2**k in 2**-12 of full scale

    def exponents(self) -> tuple[int, ...]:
        """Per attribute, in nvc.codec.gaussian.state.ATTRIBUTES order."""
        p, s, a, c = self.position, self.scale, self.angle, self.colour
        return (p, p, s, s, a, c, c, c)

    def to_bytes(self) -> bytes:
        return bytes([self.position, self.scale, self.angle, self.colour])

    @classmethod
    def read(cls, data: bytes, pos: int) -> tuple[Steps, int]:
        if pos + 4 > len(data):
            raise BitstreamError("gaussian unit is truncated (quantization steps)")
        values = data[pos : pos + 4]
        if max(values) > MAX_SHIFT:
            raise BitstreamError(f"gaussian unit has a quantization step above 2**{MAX_SHIFT}")
        return cls(*values), pos + 4


def steps_for(q: int) -> Steps:
    """The steps of quality index q (0 coarsest .. 63 finest): every 16 points of q halve
    the position and colour steps; angle and scale follow more slowly."""
    level = q // 16  # 0..3
    return Steps(
        position=max(0, 3 - level),  # 1/2 px at q < 16 .. 1/16 px at q >= 48
        scale=max(0, 2 - level // 2),  # 1/2 octave .. 1/8 octave
        angle=max(1, 4 - level),  # pi/16 .. pi/128
        colour=max(2, 7 - level - (q % 16) // 8),  # 1/32 .. 1/1024 of full scale
    )


@dataclass(frozen=True)
class GaussianConfig:
    """Options of the gaussian encoder (`nvc encode --codec gaussian`)."""

    gaussians: int | None = None  # Gaussians per frame; None: one per 64 pixels
    q: int = 40  # 0..63: quantization steps (see steps_for); higher is finer and larger
    time_budget: float | None = None  # seconds of fitting for the whole encode (None: none)
    frame_budget: float = 2.0  # seconds of fitting per P-frame (a keyframe gets key_weight x)
    key_weight: float = 4.0  # a keyframe's share of time relative to a P-frame
    group: int = 20  # frames per group: a keyframe (random-access point), then P-frames
    device: str = "cpu"  # where the fitting runs (cpu, cuda[:N]); decoding is on the CPU
    max_iterations: int | None = None  # cap on optimizer steps per frame (None: time decides)
    births: float = 0.02  # fraction of the Gaussians a P-frame may replace (GSVC births)
    rate_weight: float = 1.0  # weight of the residual rate penalty in P-frame fitting
    seed: int = 0  # seed of the keyframe initialisation
    pack: str = "queen"  # 3D: residual coder, "queen" (entropy coded) or "video" (V^3, H.264)
    view: int | None = None  # 3D: the rig camera decoding shows (None: the middle one)
    hold_out: int | None = None  # 3D: a rig camera left out of the fit (for scoring)
    gate_threshold: float = 1.0  # 3D: a position gate opens above this x the mean score
    update_threshold: float = 0.1  # 3D: other attributes change above this x the mean score
    # 3D position gates: "learned" (QUEEN's hard-concrete gates, started from the scores and
    # gate_threshold) or "threshold" (open exactly where the score is above the threshold)
    gates: str = "threshold"

    def __post_init__(self) -> None:
        if self.gaussians is not None and not 1 <= self.gaussians <= MAX_GAUSSIANS:
            raise ValueError(f"gaussians must be in 1..{MAX_GAUSSIANS}, got {self.gaussians}")
        if isinstance(self.q, bool) or not isinstance(self.q, int) or not 0 <= self.q <= 63:
            raise ValueError(f"q must be an integer in 0..63, got {self.q!r}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise ValueError(f"time budget must be positive, got {self.time_budget}")
        if not self.frame_budget > 0 or not self.key_weight > 0:
            raise ValueError("frame_budget and key_weight must be positive")
        if not 1 <= self.group <= MAX_GROUP:
            raise ValueError(f"group must be in 1..{MAX_GROUP}, got {self.group}")
        if self.max_iterations is not None and self.max_iterations < 1:
            raise ValueError(f"max_iterations must be at least 1, got {self.max_iterations}")
        if not 0 <= self.births <= 0.5:
            raise ValueError(f"births must be in 0..0.5, got {self.births}")
        if not self.rate_weight >= 0:
            raise ValueError(f"rate_weight must be >= 0, got {self.rate_weight}")
        if self.pack not in ("queen", "video"):
            raise ValueError(f"pack must be queen or video, got {self.pack!r}")
        if self.gates not in ("learned", "threshold"):
            raise ValueError(f"gates must be learned or threshold, got {self.gates!r}")
        if not self.gate_threshold >= 0 or not self.update_threshold >= 0:
            raise ValueError("gate_threshold and update_threshold must be >= 0")


@dataclass(frozen=True)
class StreamParams:
    """The codec parameters in the sequence header: version, mode, group length."""

    mode: int  # MODE_2D
    group: int  # frames per group (informative: the units say which are bases)

    def to_bytes(self) -> bytes:
        return bytes([PARAMS_VERSION]) + encode_uleb128(self.mode) + encode_uleb128(self.group)

    @classmethod
    def from_bytes(cls, data: bytes) -> StreamParams:
        if not data or data[0] != PARAMS_VERSION:
            raise BitstreamError("gaussian stream has unsupported codec parameters")
        mode, pos = decode_uleb128(data, 1, limit=255, what="gaussian mode")
        group, pos = decode_uleb128(data, pos, limit=MAX_GROUP, what="gaussian group length")
        if pos != len(data):
            raise BitstreamError("gaussian codec parameters have trailing bytes")
        if mode != MODE_2D:
            raise BitstreamError(f"gaussian stream mode {mode} is not supported by this nvc")
        if group < 1:
            raise BitstreamError("gaussian group length must be at least 1")
        return cls(mode, group)

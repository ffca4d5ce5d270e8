"""Configuration of the INR codec: the network's shape, the presets and the user options.

Three layers, from the user down:

- `InrConfig`: the options of `nvc encode --codec inr` (preset, rate target, time budget,
  device, and optional overrides of the preset's architecture).
- `Preset`: a named starting point (architecture at width 1, training schedule, default
  rate). `PRESETS` lists them.
- `ModelConfig`: the resolved network shape, everything the decoder needs to build the
  network. It travels in the sequence header's codec parameters (`to_bytes`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nvc.bitstream import decode_uleb128, encode_uleb128
from nvc.errors import BitstreamError

# First byte of the codec parameters. 3: the version 2 fields, then the feature grids
# (grid_every, grid_down, one channel count per block). 2: FRAME payloads end with the
# decoded frame's checksum. 1: the same fields as 2, no checksum. All three decode;
# networks without grids are written as version 2 (decoders before grids read them).
PARAMS_VERSION = 3
LEGACY_VERSIONS = (1, 2)  # codec parameters without grids
NO_GRIDS_VERSION = 2  # what networks without grids are written as
MAX_GRID_CHANNELS = 64  # channels of one block's feature grid
ACTIVATIONS = ("hswish", "relu")  # activations of the non-sinusoidal blocks (exact ops only)
STEMS = ("pe", "embed")  # "pe": NeRV frame-index MLP; "embed": HNeRV content embedding


@dataclass(frozen=True)
class ModelConfig:
    """The network's shape. Every block doubles the resolution (conv + PixelShuffle(2))."""

    channels: tuple[int, ...]  # stem output width, then each block's output width (coarse -> fine)
    kernels: tuple[int, ...]  # odd conv kernel size of each block's upsampling conv
    stem: str  # "pe" (NeRV: positional encoding -> MLP -> grid) or "embed" (HNeRV embeddings)
    pe_levels: int  # frequencies of the frame-index encoding (NeRV: base 1.25, 80 levels)
    hidden: int  # width of the frame-index MLPs (the "pe" stem and the modulation)
    embed_dim: int  # channels of the per-frame embedding (stem "embed"), sent in FRAME units
    modulation: bool  # Boosting-NeRV: frame-index driven scale/shift of every block's features
    sin_blocks: int  # number of leading blocks with the sinusoidal activation (Boosting-NeRV)
    act: str  # activation of the other blocks: "hswish" or "relu"
    scrb: bool  # NeRV++: separable conv residual blocks before and after each upsampling conv
    skip: bool  # NeRV++: bilinear interpolation skip around each block
    head_kernel: int  # kernel of the final conv to 3 channels (1 or 3)
    head_shuffle: bool  # the head outputs 12 channels at half resolution + PixelShuffle(2)
    act_bits: int  # bits of the signed integer activations every layer consumes (6..12)
    per_channel: bool  # per-output-channel weight steps for convs (else one step per tensor)
    group_size: int  # frames per group; frame i of a group has index t = (i + 0.5) / group_size
    rap_every: int  # every rap_every-th group sends full weights (a RAP); the others residuals
    grid_channels: tuple[int, ...] = ()  # per block: feature grid channels joining its input
    grid_every: int = 8  # frames per temporal slice of the feature grids (grid.py)
    grid_down: int = 1  # the grids are at each block's input resolution / 2^grid_down

    def __post_init__(self) -> None:
        if not any(self.grid_channels):  # no grids: one spelling, so round trips compare equal
            object.__setattr__(self, "grid_channels", ())
            object.__setattr__(self, "grid_every", 8)
            object.__setattr__(self, "grid_down", 1)

    @property
    def has_grids(self) -> bool:
        return bool(self.grid_channels)

    @property
    def blocks(self) -> int:
        return len(self.kernels)

    @property
    def stride(self) -> int:
        return 1 << (self.blocks + int(self.head_shuffle))

    def grid(self, width: int, height: int) -> tuple[int, int]:
        """(rows, cols) of the stem's feature grid for a width x height picture."""
        s = self.stride
        return -(-height // s), -(-width // s)

    def validate(self) -> ModelConfig:
        """Raise ValueError if the shape is not one the codec can build."""
        n = len(self.kernels)
        if not 1 <= n <= 10 or len(self.channels) != n + 1:
            raise ValueError("need 1..10 blocks and one more channel count than blocks")
        if any(not 1 <= c <= 4096 for c in self.channels):
            raise ValueError(f"channel counts must be in 1..4096: {self.channels}")
        if any(k not in (1, 3, 5, 7) for k in self.kernels) or self.head_kernel not in (1, 3):
            raise ValueError("kernels must be 1, 3, 5 or 7 (head: 1 or 3)")
        if self.stem not in STEMS or self.act not in ACTIVATIONS:
            raise ValueError(f"stem must be one of {STEMS}, act one of {ACTIVATIONS}")
        if not 1 <= self.pe_levels <= 256 or not 1 <= self.hidden <= 4096:
            raise ValueError("pe_levels must be in 1..256 and hidden in 1..4096")
        if not 1 <= self.embed_dim <= 256 or not 0 <= self.sin_blocks <= n:
            raise ValueError("embed_dim must be in 1..256 and sin_blocks in 0..blocks")
        if not 6 <= self.act_bits <= 12:
            raise ValueError("act_bits must be in 6..12")
        if not 1 <= self.group_size <= 100_000 or not 1 <= self.rap_every <= 10_000:
            raise ValueError("group_size must be in 1..100000 and rap_every in 1..10000")
        if self.grid_channels and len(self.grid_channels) != n:
            raise ValueError("need one grid channel count per block")
        if any(not 0 <= c <= MAX_GRID_CHANNELS for c in self.grid_channels):
            raise ValueError(f"grid channels must be in 0..{MAX_GRID_CHANNELS}")
        if not 1 <= self.grid_every <= 100_000 or not 0 <= self.grid_down <= 4:
            raise ValueError("grid_every must be in 1..100000 and grid_down in 0..4")
        return self

    def to_bytes(self) -> bytes:
        """The codec parameters: version, then every field as LEB128 (see README.md).
        Version 2 without grids, 3 with them."""
        flags = (
            int(self.modulation)
            | int(self.scrb) << 1
            | int(self.skip) << 2
            | int(self.per_channel) << 3
            | (self.head_kernel == 3) << 4
            | int(self.head_shuffle) << 5
        )
        fields = [
            STEMS.index(self.stem),
            ACTIVATIONS.index(self.act),
            flags,
            self.pe_levels,
            self.hidden,
            self.embed_dim,
            self.sin_blocks,
            self.act_bits,
            self.group_size,
            self.rap_every,
            len(self.kernels),
            *self.kernels,
            *self.channels,
        ]
        version = NO_GRIDS_VERSION
        if self.has_grids:
            version = PARAMS_VERSION
            fields += [self.grid_every, self.grid_down, *self.grid_channels]
        return bytes([version]) + b"".join(encode_uleb128(v) for v in fields)

    @classmethod
    def from_bytes(cls, data: bytes) -> ModelConfig:
        """Codec parameters of any version (1 and 2 have no grids)."""
        if not data or data[0] not in (*LEGACY_VERSIONS, PARAMS_VERSION):
            raise BitstreamError(
                f"inr stream has unsupported codec parameters (version {data[0] if data else '-'}"
                f"; this decoder reads versions 1 to {PARAMS_VERSION})"
            )
        pos = 1

        def read() -> int:
            nonlocal pos
            value, pos = decode_uleb128(data, pos, limit=1 << 20, what="inr parameter")
            return value

        stem, act, flags = read(), read(), read()
        head = [read() for _ in range(7)]
        n = read()
        if not 1 <= n <= 10 or stem >= len(STEMS) or act >= len(ACTIVATIONS):
            raise BitstreamError("inr codec parameters are out of range")
        kernels = tuple(read() for _ in range(n))
        channels = tuple(read() for _ in range(n + 1))
        grid_every, grid_down, grids = 8, 1, tuple[int, ...]()
        if data[0] == PARAMS_VERSION:
            grid_every, grid_down = read(), read()
            grids = tuple(read() for _ in range(n))
        if pos != len(data):
            raise BitstreamError("inr codec parameters have trailing bytes")
        try:
            return cls(
                channels=channels,
                kernels=kernels,
                stem=STEMS[stem],
                pe_levels=head[0],
                hidden=head[1],
                embed_dim=head[2],
                modulation=bool(flags & 1),
                sin_blocks=head[3],
                act=ACTIVATIONS[act],
                scrb=bool(flags & 2),
                skip=bool(flags & 4),
                head_kernel=3 if flags & 16 else 1,
                head_shuffle=bool(flags & 32),
                act_bits=head[4],
                per_channel=bool(flags & 8),
                group_size=head[5],
                rap_every=head[6],
                grid_channels=grids,
                grid_every=grid_every,
                grid_down=grid_down,
            ).validate()
        except ValueError as e:
            raise BitstreamError(f"inr codec parameters are invalid: {e}") from None


@dataclass(frozen=True)
class Preset:
    """A named starting point. Channel counts are for width 1; rate control scales them."""

    name: str
    summary: str  # one line for the README and `--help`
    channels: tuple[int, ...]  # stem width, then block widths at width multiplier 1
    kernels: tuple[int, ...]  # upsampling conv kernel of each block
    stem: str  # see ModelConfig
    embed_dim: int  # see ModelConfig
    modulation: bool  # see ModelConfig
    sin_blocks: int  # see ModelConfig
    act: str  # see ModelConfig
    scrb: bool  # see ModelConfig
    skip: bool  # see ModelConfig
    head_kernel: int  # see ModelConfig
    head_shuffle: bool  # see ModelConfig
    grid_area: int  # largest stem grid (rows * cols); larger frames get extra leading blocks
    max_macs: float | None  # cap on decoder multiply-accumulates per pixel (None: no cap)
    group_size: int  # frames per group
    epochs: int  # training epochs of the first group (later groups: warm_epochs)
    warm_epochs: int  # epochs of a group warm-started from the previous group's network
    lr: float  # peak learning rate (Adam, warm-up then cosine decay)
    batch: int  # frames per training step
    bpp: float  # rate target when neither --bpp nor --quality is given
    bits_per_param: float  # coded bits per weight expected after training (sizing only)
    bits_per_embed: float  # coded bits per embedding value expected (sizing only)
    pe_levels: int = 80  # see ModelConfig
    hidden: int = 64  # see ModelConfig
    act_bits: int = 10  # see ModelConfig
    per_channel: bool = True  # see ModelConfig
    prune: float = 0.0  # fraction of each weight tensor pruned (set to zero) mid-training
    lam: float = 0.5  # initial rate weight, times MSE / target bpp when the rate term starts
    embed_bits: int = 6  # embeddings are signed integers of this many bits (encoder choice)
    # feature grids (grid.py): channels per block, aligned to the last blocks (extra leading
    # blocks of large frames get none); () for none
    grid_channels: tuple[int, ...] = ()
    grid_every: int = 8  # see ModelConfig
    grid_down: int = 1  # see ModelConfig
    bits_per_grid: float = 4.0  # coded bits per grid value expected (sizing; 3.6-4.4 measured)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            name="realtime",
            summary="HNeRV embeddings + frame-index modulation, a sub-pixel head instead of "
            "full-resolution features: at most 4 kMAC/pixel, real time at 640x360 on 2 CPU cores",
            channels=(96, 64, 48, 32, 24),
            kernels=(3, 3, 3, 3),
            stem="embed",
            embed_dim=8,
            modulation=True,
            sin_blocks=1,
            act="relu",
            scrb=False,
            skip=False,
            head_kernel=3,
            head_shuffle=True,
            grid_area=320,
            max_macs=4000.0,
            group_size=120,
            epochs=100,
            warm_epochs=50,
            lr=3e-3,  # measured: 1.5e-3 lost 0.8-1.5 dB at the same CPU; 5e-3+ diverged at times
            batch=2,
            bpp=0.05,
            bits_per_param=4.5,
            bits_per_embed=2.5,
        ),
        Preset(
            name="quality",
            summary="realtime's layout plus NeRV++ separable residual blocks and bilinear "
            "skips, hswish: more capacity per parameter, slower to train and decode",
            channels=(96, 72, 48, 32, 24),
            kernels=(3, 3, 3, 3),
            stem="embed",
            embed_dim=12,
            modulation=True,
            sin_blocks=1,
            act="hswish",
            scrb=True,
            skip=True,
            head_kernel=3,
            head_shuffle=True,
            grid_area=320,
            max_macs=None,
            group_size=120,
            grid_channels=(0, 8, 8, 8),  # measured: 2 / 4 / 8 channels, see grid.GRID_SHARE
            epochs=60,
            warm_epochs=30,
            lr=3e-3,  # measured: 1.5e-3 lost 0.8-1.5 dB at the same CPU; 5e-3+ diverged at times
            batch=2,
            bpp=0.08,
            bits_per_param=4.5,
            bits_per_embed=2.5,
        ),
        Preset(
            name="nerv",
            summary="NeRV: frame-index positional encoding -> MLP -> conv + PixelShuffle blocks",
            channels=(64, 48, 32, 24, 16, 12),
            kernels=(3, 3, 3, 3, 3),
            stem="pe",
            embed_dim=8,
            modulation=False,
            sin_blocks=0,
            act="hswish",
            scrb=False,
            skip=False,
            head_kernel=1,
            head_shuffle=False,
            grid_area=60,
            max_macs=None,
            group_size=120,
            epochs=100,
            warm_epochs=50,
            lr=1.5e-3,
            batch=2,
            bpp=0.05,
            bits_per_param=4.5,
            bits_per_embed=0.0,
            hidden=64,
        ),
        Preset(
            name="hnerv",
            summary="HNeRV: per-frame content embeddings decoded by conv + PixelShuffle blocks "
            "with kernels growing towards the output",
            channels=(64, 48, 32, 24, 16, 12),
            kernels=(1, 3, 3, 3, 5),
            stem="embed",
            embed_dim=8,
            modulation=False,
            sin_blocks=0,
            act="hswish",
            scrb=False,
            skip=False,
            head_kernel=3,
            head_shuffle=False,
            grid_area=320,
            max_macs=None,
            group_size=120,
            epochs=100,
            warm_epochs=50,
            lr=1.5e-3,
            batch=2,
            bpp=0.05,
            bits_per_param=4.5,
            bits_per_embed=2.5,
        ),
    ]
}


def quality_to_bpp(quality: float) -> float:
    """--quality Q (0..100) as a rate target: 0.005 bpp at 0, doubling every 12.5 points."""
    return 0.005 * 2.0 ** (quality / 12.5)


@dataclass(frozen=True)
class TrainStatus:
    """What the encoder reports while it trains (the `on_progress` callback's argument)."""

    group: int  # 0-based group being trained
    groups: int | None  # number of groups when the frame count is known
    epoch: int  # epochs done in this group
    epochs: int  # epochs planned for this group (may shrink under a time budget)
    psnr: float  # training PSNR estimate (dB, quantized network), or the final PSNR when done
    bpp: float  # estimated bits per pixel of this group (weights + embeddings)
    seconds: float  # seconds spent training this group
    done: bool = False  # True once the group is coded: psnr and bpp are then exact


@dataclass(frozen=True)
class InrConfig:
    """Options of the inr encoder (`nvc encode --codec inr`); None means the preset's value."""

    preset: str = "quality"  # starting point: a key of PRESETS (realtime, quality, nerv, hnerv)
    bpp: float | None = None  # rate target in bits per pixel (sets model size and quantization)
    quality: float | None = None  # 0..100 instead of --bpp (see quality_to_bpp)
    time_budget: float | None = None  # seconds for the whole encode, split by group
    cpu_seconds: bool = False  # the time budget counts this process's CPU time, not wall time
    device: str = "cpu"  # where training runs ("cpu", "cuda", "cuda:1"); decoding is on the CPU
    group_size: int | None = None  # frames per group (NIRVANA groups)
    rap_every: int = 1  # 1: every group self-contained (a RAP); N: full weights every N groups
    epochs: int | None = None  # training epochs of the first group
    width: float | None = None  # channel multiplier; None: chosen from the rate target
    stem: str | None = None  # "pe" or "embed"
    modulation: bool | None = None  # frame-index affine modulation (Boosting-NeRV)
    sin_blocks: int | None = None  # leading blocks with the sinusoidal activation
    scrb: bool | None = None  # NeRV++ separable conv residual blocks
    skip: bool | None = None  # NeRV++ bilinear skips
    act_bits: int | None = None  # bits of the integer activations
    per_channel: bool | None = None  # per-channel weight steps
    grids: bool | None = None  # feature grids (the preset's; False: none)
    prune: float | None = None  # fraction of weights pruned mid-training
    lr: float | None = None  # peak learning rate
    batch: int | None = None  # frames per training step
    threads: int | None = None  # torch threads while training (None: one)
    seed: int = 0  # seed of the network initialisation and frame order
    on_progress: Callable[[TrainStatus], Any] | None = None  # called every epoch and per group

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r} (presets: {', '.join(PRESETS)})")
        if self.bpp is not None and self.quality is not None:
            raise ValueError("give --bpp or --quality, not both")
        if self.bpp is not None and not 0.0005 <= self.bpp <= 24:
            raise ValueError(f"bpp must be in 0.0005..24, got {self.bpp}")
        if self.quality is not None and not 0 <= self.quality <= 100:
            raise ValueError(f"quality must be in 0..100, got {self.quality}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise ValueError(f"time budget must be positive, got {self.time_budget}")
        if self.group_size is not None and not 1 <= self.group_size <= 100_000:
            raise ValueError(f"group size must be in 1..100000, got {self.group_size}")
        if not 1 <= self.rap_every <= 10_000:
            raise ValueError(f"rap_every must be in 1..10000, got {self.rap_every}")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.width is not None and not 0.05 <= self.width <= 16:
            raise ValueError(f"width must be in 0.05..16, got {self.width}")
        if self.stem is not None and self.stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}")
        if self.prune is not None and not 0 <= self.prune < 1:
            raise ValueError(f"prune must be in [0, 1), got {self.prune}")
        if self.batch is not None and self.batch < 1:
            raise ValueError(f"batch must be at least 1, got {self.batch}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")
        if not str(self.device).startswith(("cpu", "cuda", "mps")):
            raise ValueError(f"device must be cpu or cuda[:N], got {self.device!r}")

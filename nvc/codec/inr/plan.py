"""From options to a concrete encode: the network's shape, its size and the schedule.

Rate control, before training: the rate target (--bpp, or --quality mapped to bpp, or the
preset's) gives each group a bit budget, bpp * W * H * frames. The channel widths are
scaled by the largest multiplier whose parameter count times the preset's expected bits
per parameter, plus the embeddings, fits that budget (and, for presets with a MAC cap,
whose decoder stays under the cap). Training then steers its rate weight towards the
budget (train.py), and the encoder coarsens the steps if the coded group is still over.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nvc.codec.base import StreamInfo
from nvc.codec.inr.config import PRESETS, InrConfig, ModelConfig, Preset, quality_to_bpp
from nvc.codec.inr.frames import Geometry
from nvc.codec.inr.grid import grid_options, grid_values
from nvc.codec.inr.model import network_cost
from nvc.errors import CodecError

UNIT_OVERHEAD_BYTES = 10  # container bytes per unit (header and CRC), for budgets
EMBED_SHARE = 0.25  # embeddings should take at most this share of a group's bits
MIN_CHANNELS = 8  # thinner layers train poorly; small models thin their early layers instead


@dataclass(frozen=True)
class Plan:
    model: ModelConfig  # the network's shape (sent as codec parameters)
    geometry: Geometry  # the picture as the network sees it
    preset: Preset  # the preset it starts from
    bpp: float  # rate target
    width: float  # channel multiplier chosen
    params: int  # coded parameters of the network
    macs_per_pixel: float  # decoder multiply-accumulates per output pixel
    epochs: int  # epochs of the first group
    warm_epochs: int  # epochs of later (warm-started) groups
    lr: float
    batch: int
    prune: float
    group_frames: int  # frames in a full group (the first group's size for sizing)


def _model(
    preset: Preset,
    cfg: InrConfig,
    width: float,
    blocks: int,
    group_size: int,
    grids: dict[str, object],
) -> ModelConfig:
    base = list(preset.channels)
    kernels = list(preset.kernels)
    while len(kernels) < blocks:  # large frames: extra leading blocks at the stem's width
        base.insert(0, base[0])
        kernels.insert(0, kernels[0])

    def pick(value: object, default: object) -> object:
        return default if value is None else value

    return ModelConfig(
        channels=tuple(max(MIN_CHANNELS, round(c * width / 2) * 2) for c in base),
        kernels=tuple(kernels),
        stem=str(pick(cfg.stem, preset.stem)),
        pe_levels=preset.pe_levels,
        hidden=preset.hidden,
        embed_dim=preset.embed_dim,
        modulation=bool(pick(cfg.modulation, preset.modulation)),
        sin_blocks=min(int(pick(cfg.sin_blocks, preset.sin_blocks)), blocks),  # type: ignore[call-overload]
        act=preset.act,
        scrb=bool(pick(cfg.scrb, preset.scrb)),
        skip=bool(pick(cfg.skip, preset.skip)),
        head_kernel=preset.head_kernel,
        head_shuffle=preset.head_shuffle,
        act_bits=int(pick(cfg.act_bits, preset.act_bits)),  # type: ignore[call-overload]
        per_channel=bool(pick(cfg.per_channel, preset.per_channel)),
        group_size=group_size,
        rap_every=cfg.rap_every,
        **grids,  # type: ignore[arg-type]
    ).validate()


def network_size(model: ModelConfig, width: int, height: int) -> tuple[int, float]:
    """(coded parameters, decoder MACs per pixel) of a model for a picture size."""
    params, macs = network_cost(model, model.grid(width, height))
    return params, macs / (width * height)


def make_plan(stream: StreamInfo, cfg: InrConfig) -> Plan:
    preset = PRESETS[cfg.preset]
    w, h = stream.width, stream.height
    group_size = cfg.group_size or preset.group_size
    frames = min(group_size, stream.frame_count) if stream.frame_count else group_size
    if cfg.bpp is not None:
        bpp = cfg.bpp
    elif cfg.quality is not None:
        bpp = quality_to_bpp(cfg.quality)
    else:
        bpp = preset.bpp
    budget = bpp * w * h * frames - 8 * UNIT_OVERHEAD_BYTES * (frames + 1)
    stem = cfg.stem or preset.stem
    extra = int(preset.head_shuffle)

    def cells(blocks: int) -> int:
        return -(-h >> (blocks + extra)) * -(-w >> (blocks + extra))

    # Larger frames get extra leading blocks until the stem grid is small enough, and
    # (embedding stem) until the embeddings take at most EMBED_SHARE of the budget.
    blocks = len(preset.kernels)
    grid_area = preset.grid_area if stem == preset.stem else (60 if stem == "pe" else 320)
    embed_bits = preset.embed_dim * frames * preset.bits_per_embed
    while blocks < 9 and (
        cells(blocks) > grid_area
        or (
            stem == "embed"
            and cells(blocks) > 1
            and cells(blocks) * embed_bits > EMBED_SHARE * budget
        )
    ):
        blocks += 1

    grids = grid_options(preset, cfg.grids, blocks, w, h, frames, budget)  # grid.py

    def fits(width: float) -> tuple[bool, ModelConfig, int, float]:
        model = _model(preset, cfg, width, blocks, group_size, grids)
        params, macs = network_size(model, w, h)
        embeds = (
            model.embed_dim * model.grid(w, h)[0] * model.grid(w, h)[1]
            if model.stem == "embed"
            else 0
        )
        bits = params * preset.bits_per_param + embeds * frames * preset.bits_per_embed
        bits += grid_values(model, model.grid(w, h), frames) * preset.bits_per_grid
        ok = bits <= budget and (preset.max_macs is None or macs <= preset.max_macs)
        return ok, model, params, macs

    if cfg.width is not None:
        width = cfg.width
    else:
        lo, hi = 0.1, 8.0
        if not fits(lo)[0]:
            hi = lo
        for _ in range(14):
            mid = (lo * hi) ** 0.5
            lo, hi = (mid, hi) if fits(mid)[0] else (lo, mid)
        width = lo
    _, model, params, macs = fits(width)
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise CodecError("--device cuda was asked for but torch sees no CUDA device")
    return Plan(
        model=model,
        geometry=Geometry(w, h, stream.format, stream.full_range, model.stride),
        preset=preset,
        bpp=bpp,
        width=width,
        params=params,
        macs_per_pixel=macs,
        epochs=cfg.epochs or preset.epochs,
        warm_epochs=max(1, (cfg.epochs or preset.epochs) * preset.warm_epochs // preset.epochs),
        lr=cfg.lr or preset.lr,
        batch=cfg.batch or preset.batch,
        prune=preset.prune if cfg.prune is None else cfg.prune,
        group_frames=frames,
    )

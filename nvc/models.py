"""nvc's learned models for research, loaded as in CompressAI's zoo.

    import nvc.models

    m = nvc.models.load("fm", pretrained=True)    # the shipped weights (fm-realtime2)
    x = m.to_tensor(frame)                        # (1, 96, H/8, W/8) network values
    out = m.forward(x, q=40)                      # x_hat, likelihoods {"y", "z"}, bits
    c = m.compress(x, q=40)                       # c.strings: one bytes per picture
    x_hat = m.decompress(c.strings, c.shape, q=40).x_hat   # bit-exact on any machine
    picture = m.to_frame(x_hat, frame.width, frame.height)

What each name gives:

- "fm" (variants: see `available()`; default "realtime2", the model `nvc encode --codec fm`
  uses: no quality ceiling; "realtime" is the faster one of `nvc live`): the image codec of
  the fm video codec (its intra frames), with the whole model (`network`: intra, inter,
  residual codec) for training.
  `pretrained=True` loads a private copy of the shipped weights (training it leaves the
  codec's own copy alone); `weights=PATH` a file from `nvc train fm`; `pretrained=False`
  a freshly initialised network. Pictures are the fm codec's own representation: Y'CbCr
  4:2:0 pixel-unshuffled to 96 channels at 1/8 resolution, values code / 2**bits - 1/2
  (`to_tensor` / `to_frame` convert, padding to multiples of 16 pixels). `forward`
  follows the network's mode (train(): additive noise, as CompressAI's; eval(): rounding);
  `compress` / `decompress` are the codec's exact fixed-point coding path.
- "inr": no trained weights exist, because inr's encoder trains one network per video;
  `load("inr", pretrained=False, width=W, height=H)` returns a preset's untrained decoder
  network and its configuration, sized for that picture.
- "lossless" (FFV1) has no learned model: `load` says so.

Every result is a dataclass; errors are nvc.errors.CodecError.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import torch
from torch import Tensor, nn

from nvc.codec.base import StreamInfo
from nvc.codec.conditional import frames as fr
from nvc.codec.conditional import weights as wt
from nvc.codec.conditional.codec import FmConfig
from nvc.codec.conditional.layers import ONE
from nvc.codec.conditional.model import VARIANTS, FMModel
from nvc.codec.entropy import SymbolReader, SymbolWriter
from nvc.errors import CodecError
from nvc.media import Frame

Q_MAX = 63  # fm's quality indices are 0 .. Q_MAX
FM_VARIANT = FmConfig().variant  # load("fm")'s default: the variant that file encoding uses


@dataclass(frozen=True)
class ModelEntry:
    """One entry of the zoo."""

    name: str  # what load() takes
    variants: tuple[str, ...]  # variant names (for inr: presets)
    pretrained: bool  # whether trained weights ship with nvc
    summary: str  # one line


@dataclass
class ForwardOutput:
    """What `forward` returns (CompressAI's forward contract)."""

    x_hat: Tensor  # (B, 96, h, w) reconstruction, network values
    likelihoods: dict[str, Tensor]  # "y": latent (B, M, h/2, w/2) or as the codec shapes it; "z"
    bits: Tensor  # (B,) the model's rate estimate: the sum of -log2 of the likelihoods


@dataclass(frozen=True)
class CompressedImages:
    """What `compress` returns: everything `decompress` needs besides q."""

    strings: list[bytes]  # one coded string per picture of the batch
    shape: tuple[int, int]  # (rows, cols) of the pictures' 1/8-resolution grid
    q: int  # quality index the strings were coded at


@dataclass
class DecompressedImages:
    """What `decompress` returns."""

    x_hat: Tensor  # (B, 96, rows, cols) reconstruction, network values (float32)


@contextlib.contextmanager
def _recorded(module: nn.Module, method: str, into: list[Tensor]) -> Iterator[None]:
    """Record what `module.method(...)` returns while the block runs (an instance
    attribute shadows the method; removing it restores the method)."""
    original: Callable[..., Tensor] = getattr(module, method)

    def record(*args: Any, **kwargs: Any) -> Tensor:
        out = original(*args, **kwargs)
        into.append(out)
        return out

    object.__setattr__(module, method, record)
    try:
        yield
    finally:
        object.__delattr__(module, method)


def _q_tensor(q: int | Tensor, batch: int, device: torch.device) -> Tensor:
    qt = torch.as_tensor(q, dtype=torch.long, device=device).reshape(-1)
    if qt.numel() == 1:
        qt = qt.expand(batch)
    if qt.numel() != batch or int(qt.min()) < 0 or int(qt.max()) > Q_MAX:
        raise CodecError(f"q must be one index or one per picture, each 0..{Q_MAX}")
    return qt


def _check_q(q: int) -> int:
    if isinstance(q, bool) or not isinstance(q, int) or not 0 <= q <= Q_MAX:
        raise CodecError(f"q must be an int 0..{Q_MAX}, got {q!r}")
    return q


@dataclass
class FmImageModel:
    """fm's image codec, CompressAI-style (see the module docstring)."""

    network: FMModel  # the whole fm model; `network.intra` is the image codec used here
    variant: str  # model variant (nvc.codec.conditional.model.VARIANTS)
    pretrained: bool  # True when trained weights were loaded
    weights_hash: bytes  # the short hash a .nvc stream coded with these weights carries

    def _check(self, x: Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != fr.CHANNELS or x.shape[2] % 2 or x.shape[3] % 2:
            raise CodecError(
                f"fm pictures are (B, {fr.CHANNELS}, rows, cols) with even rows and cols "
                f"(to_tensor makes them), got {tuple(x.shape)}"
            )

    def forward(self, x: Tensor, q: int | Tensor) -> ForwardOutput:
        """Training path: reconstruction, likelihoods of the latent y and hyper-latent z,
        and bits, in the network's current mode (train() or eval())."""
        self._check(x)
        codec = self.network.intra
        ys: list[Tensor] = []
        zs: list[Tensor] = []
        with (
            _recorded(codec.prior.cond, "likelihood", ys),
            _recorded(codec.prior.z_prior, "likelihood", zs),
        ):
            out = codec(x, _q_tensor(q, x.shape[0], x.device))
        if len(ys) != 1 or len(zs) != 1:
            raise CodecError("the fm image codec's entropy model is not the one nvc.models knows")
        return ForwardOutput(out.x_hat, {"y": ys[0], "z": zs[0]}, out.bits)

    __call__ = forward

    def compress(self, x: Tensor, q: int) -> CompressedImages:
        """Code each picture of the batch with the exact coding path; one string each."""
        self._check(x)
        q = _check_q(q)
        codec = self.network.intra
        strings = []
        with torch.no_grad():
            for picture in x.detach().to(torch.float32).split(1):
                writer = SymbolWriter()
                codec.encode(codec.latent(picture, q).cpu(), q, writer)
                strings.append(writer.finish())
        return CompressedImages(strings, (int(x.shape[2]), int(x.shape[3])), q)

    def decompress(
        self, strings: list[bytes], shape: tuple[int, int], q: int
    ) -> DecompressedImages:
        """Decode strings from `compress`: the same values on any machine and thread count."""
        q = _check_q(q)
        rows, cols = (int(v) for v in shape)
        if rows < 2 or cols < 2 or rows % 2 or cols % 2:
            raise CodecError(f"shape must be even (rows, cols) of the 1/8 grid, got {shape}")
        codec = self.network.intra
        pictures = []
        with torch.no_grad():
            for data in strings:
                x_fp = codec.decode(SymbolReader(bytes(data)), q, (rows, cols))
                pictures.append((x_fp / ONE).to(torch.float32))
        return DecompressedImages(torch.cat(pictures))

    def to_tensor(self, frame: Frame) -> Tensor:
        """A frame as network values (1, 96, Hp/8, Wp/8): 4:2:0, padded to 16 pixels."""
        internal = fr.internal_format(frame.format)
        return fr.codes_to_net(fr.frame_to_codes(frame, internal), fr.bit_depth(internal))

    def to_frame(
        self, x_hat: Tensor, width: int, height: int, format: str = "yuv420p", bit_depth: int = 8
    ) -> Frame:
        """Network values (1, 96, rows, cols) -> a width x height frame in `format` (the
        values rounded to `bit_depth`-bit codes as the decoder rounds them)."""
        internal = "yuv420p" if bit_depth <= 8 else "yuv420p10le"
        fixed = x_hat.detach().to("cpu", torch.float64) * ONE
        codes = fr.fixed_to_codes(torch.floor(fixed + 0.5), fr.bit_depth(internal))
        return fr.codes_to_frame(
            codes,
            internal=internal,
            out_format=format,
            width=width,
            height=height,
            pts=0,
            time_base=Fraction(1, 25),
            full_range=False,
        )

    def train(self, mode: bool = True) -> FmImageModel:
        self.network.train(mode)
        return self

    def eval(self) -> FmImageModel:
        return self.train(False)


@dataclass
class InrNetwork:
    """inr's decoder network for one picture size, untrained (see the module docstring)."""

    network: nn.Module  # nvc.codec.inr.model.InrNet: forward(pe, emb, exact=False)
    config: Any  # nvc.codec.inr.config.ModelConfig: the network's shape
    preset: str  # the preset it was sized from
    pretrained: bool = False  # always False: inr trains a network per video when encoding


def available() -> list[ModelEntry]:
    """What `load` can give."""
    from nvc.codec.inr.config import PRESETS

    return [
        ModelEntry(
            "fm",
            tuple(VARIANTS),
            any(wt.shipped_path(v).is_file() for v in VARIANTS),
            "fm's learned image codec (intra frames) and whole video model; weights shipped for "
            + ", ".join(v for v in VARIANTS if wt.shipped_path(v).is_file()),
        ),
        ModelEntry(
            "inr",
            tuple(PRESETS),
            False,
            "inr's decoder network, untrained: encoding a video trains one",
        ),
        ModelEntry("lossless", (), False, "FFV1: no learned model"),
    ]


def _load_fm(variant: str | None, pretrained: bool, weights: str | os.PathLike[str] | None):
    name = variant or FM_VARIANT
    if name not in VARIANTS:
        raise CodecError(f"unknown fm variant {name!r} (variants: {', '.join(VARIANTS)})")
    if weights is not None:
        network = wt.load_weights(weights)
        if variant is not None and network.config.variant != variant:
            raise CodecError(f"{weights} holds fm-{network.config.variant}, not fm-{variant}")
        name, trained = network.config.variant, True
    elif pretrained:
        wt.default_model(name)  # the shipped file exists, or a CodecError that says so
        network = wt.load_weights(wt.shipped_path(name))  # a private copy to train or change
        trained = True
    else:
        network, trained = FMModel(VARIANTS[name]), False
    return FmImageModel(network.eval(), name, trained, wt.short_hash(network))


def _load_inr(variant: str | None, pretrained: bool, width: int | None, height: int | None):
    from nvc.codec.inr.config import PRESETS, InrConfig
    from nvc.codec.inr.model import InrNet
    from nvc.codec.inr.plan import make_plan

    if pretrained:
        raise CodecError(
            "inr has no pretrained weights: encoding a video trains its network; "
            "load('inr', pretrained=False, width=W, height=H) gives a preset's untrained network"
        )
    preset = variant or "realtime"
    if preset not in PRESETS:
        raise CodecError(f"unknown inr preset {preset!r} (presets: {', '.join(PRESETS)})")
    if width is None or height is None:
        raise CodecError("load('inr') needs width= and height=: the network is sized per picture")
    stream = StreamInfo(int(width), int(height), Fraction(25), "yuv420p")
    plan = make_plan(stream, InrConfig(preset=preset))
    config, geometry = plan.model, plan.geometry
    return InrNetwork(InrNet(config, config.grid(geometry.width, geometry.height)), config, preset)


def load(
    name: str,
    variant: str | None = None,
    *,
    pretrained: bool = True,
    weights: str | os.PathLike[str] | None = None,
    width: int | None = None,
    height: int | None = None,
) -> FmImageModel | InrNetwork:
    """A model by name (see `available()` and the module docstring).

    fm: `variant` (default "realtime2", as `nvc encode`), `pretrained` (the shipped
    weights) or `weights` (a file from `nvc train fm`). inr: `variant` is the preset
    (default "realtime"), `pretrained` must be False, `width` and `height` size the network.
    """
    if name == "fm":
        if width is not None or height is not None:
            raise CodecError("fm models take pictures of any size: no width= or height=")
        return _load_fm(variant, pretrained, weights)
    if weights is not None:
        raise CodecError(f"weights= is for fm; {name!r} has no weights files")
    if name == "inr":
        return _load_inr(variant, pretrained, width, height)
    if name == "lossless":
        raise CodecError("the lossless codec (FFV1) has no learned model to load")
    known = ", ".join(e.name for e in available())
    raise CodecError(f"no model named {name!r} (models: {known})")


__all__ = [
    "CompressedImages",
    "DecompressedImages",
    "FmImageModel",
    "ForwardOutput",
    "InrNetwork",
    "ModelEntry",
    "available",
    "load",
]

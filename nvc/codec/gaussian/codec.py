"""The `gaussian` codec (id 4), 2D mode: frames as sums of image-plane Gaussians.

Units (see README.md): every `group` frames a GAUSSIAN_BASE unit (a random-access point:
the frame's Gaussians fitted from scratch), between them one GAUSSIAN_RESIDUAL unit per
frame (gated, quantized residuals of the *decoded* previous state, births and removals).
pts = the frame's index; every unit yields one frame. Payloads (coding.py) end with the
CRC-32 of the decoded Gaussian state; after that the CRC-32 of the decoded frame
(nvc.codec.integrity). A residual without the state it follows is a BitstreamError, and
a failed unit clears the state, so nothing is shown until the next base.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from nvc.bitstream import SequenceHeader, Unit, UnitType
from nvc.codec import integrity
from nvc.codec.base import CodecSpec, StreamInfo, torch_threads
from nvc.codec.gaussian import coding
from nvc.codec.gaussian.codec3d import SceneDecoder, stream_mode
from nvc.codec.gaussian.config import (
    MAX_EVALS_PER_PIXEL,
    MAX_GAUSSIANS,
    MODE_2D,
    MODE_3D,
    GaussianConfig,
    StreamParams,
    steps_for,
)
from nvc.codec.gaussian.fit import (
    P_FRAME_LR,
    Fitter,
    keep_benefit,
    prune,
    quantize,
    residual_bits,
    residual_of,
    target_planes,
    to_float,
)
from nvc.codec.gaussian.render import (
    Canvas,
    FloatGaussians,
    IncrementalRenderer,
    render_exact,
    to_planes,
)
from nvc.codec.gaussian.state import Bounds, Gaussians2D
from nvc.errors import BitstreamError, CodecError
from nvc.media import Frame, psnr_rgb, psnr_yuv

# Torch intra-op threads while the decoder renders (render_frame). The exact renderer's bits
# do not depend on threads (integer sums); it runs its own threads (render.BANDS, one chunk
# share and accumulator each), so torch's own threads inside each band would only compete
# with them on the busy 2-core machine: one.
RENDER_THREADS = 1
PIXELS_PER_GAUSSIAN = 64  # default count: one Gaussian per this many pixels
UNKNOWN_LENGTH_FRAMES = 20  # unknown frame count: a frame gets 1/(1 + this) of what is left


@dataclass(frozen=True)
class Limits:
    """What a decoder accepts for a picture (nvc.codec.limits' rule: refuse, then allocate)."""

    gaussians: int  # most Gaussians in a state
    evaluations: int  # most window pixel evaluations per frame

    @classmethod
    def of(cls, canvas: Canvas) -> Limits:
        h2, w2 = canvas.padded
        return cls(min(MAX_GAUSSIANS, canvas.width * canvas.height), MAX_EVALS_PER_PIXEL * h2 * w2)


def render_frame(
    g: Gaussians2D,
    canvas: Canvas,
    limits: Limits,
    pts: int,
    stream: StreamInfo,
    renderer: IncrementalRenderer | None = None,
) -> Frame:
    """The exact picture of a decoded state, rendered with RENDER_THREADS torch threads
    (by `renderer`, from the state it drew last, where given: the same bits)."""
    with torch_threads(RENDER_THREADS):
        if renderer is None:
            planes = to_planes(render_exact(g, canvas, limits.evaluations), canvas)
        else:
            planes = renderer.planes(g, limits.evaluations)
    return Frame(planes, stream.format, pts, 1 / stream.fps, stream.full_range)


@dataclass
class FrameReport:
    """What the encoder measured for one coded frame."""

    pts: int  # frame index
    base: bool  # a GAUSSIAN_BASE unit (random-access point)
    gaussians: int  # Gaussians in the decoded state
    gated: int  # P-frames: Gaussians with a geometry or colour residual
    births: int  # P-frames: Gaussians born (as many were removed)
    bytes: int  # payload bytes
    psnr: float  # PSNR of the decoded frame (YUV 6:1:1 or RGB)
    iterations: int  # optimizer steps
    seconds: float  # fitting and coding time
    crc: int = field(default=0)  # CRC-32 of the decoded state


class GaussianEncoder:
    """Fits each frame (keyframe from scratch, P-frame from the decoded state) and codes it."""

    def __init__(self, stream: StreamInfo, config: GaussianConfig) -> None:
        self.stream, self.config = stream, config
        self.canvas = Canvas(stream.width, stream.height, stream.format)
        self.bounds = Bounds(stream.width, stream.height)
        self.limits = Limits.of(self.canvas)
        self.renderer = IncrementalRenderer(self.canvas)
        pixels = stream.width * stream.height
        count = config.gaussians or max(16, pixels // PIXELS_PER_GAUSSIAN)
        self.count = min(count, self.limits.gaussians)
        self.steps = steps_for(config.q)
        self.fitter = Fitter(self.canvas, config.device, config.seed)
        self._params = StreamParams(MODE_2D, config.group).to_bytes()
        self.state: Gaussians2D | None = None
        self.index = 0
        self.spent = 0.0
        self.reports: list[FrameReport] = []
        self.last_reconstruction: Frame | None = None
        # one Lagrange multiplier per stream: SSE (full-scale units) per residual bit
        colour_step = float(1 << self.steps.colour) / float(1 << 12)
        self.rate_lambda = config.rate_weight * 64.0 * colour_step**2

    @property
    def codec_params(self) -> bytes:
        return self._params

    def _seconds(self, key: bool) -> float:
        """Fitting time of this frame: frame_budget (x key_weight), within time_budget."""
        cfg = self.config
        weight = cfg.key_weight if key else 1.0
        own = cfg.frame_budget * weight
        if cfg.time_budget is None:
            return own
        left = max(cfg.time_budget - self.spent, 0.0)
        count = self.stream.frame_count
        if count:
            rest = max(count - self.index, 1)
            keys = -(-rest // cfg.group)
            share = left * weight / (rest - keys + keys * cfg.key_weight)
        else:
            share = left * weight / (weight + UNKNOWN_LENGTH_FRAMES)
        return min(own, share)

    def encode(self, frame: Frame | None) -> list[Unit]:
        if frame is None:
            return []
        self.stream.check_frame(frame)
        start = time.perf_counter()
        key = self.state is None or self.index % self.config.group == 0
        target = target_planes(frame, self.config.device)
        with torch.inference_mode(False):
            if key:
                payload, state, gated, born, its = self._key(target)
                out = render_frame(
                    state, self.canvas, self.limits, frame.pts, self.stream, self.renderer
                )
            else:
                payload, state, gated, born, its, out = self._predicted(target, frame)
        self.state = state
        kind = UnitType.GAUSSIAN_BASE if key else UnitType.GAUSSIAN_RESIDUAL
        unit = Unit(kind, integrity.seal(payload, out), pts=frame.pts, rap=key)
        seconds = time.perf_counter() - start
        self.spent += seconds
        self.index += 1
        psnr = psnr_rgb(frame, out) if not self.canvas.yuv else psnr_yuv(frame, out).weighted
        self.reports.append(
            FrameReport(
                frame.pts,
                key,
                state.count,
                gated,
                born,
                len(payload),
                psnr,
                its,
                seconds,
                state.crc(),
            )
        )
        self.last_reconstruction = out
        return [unit]

    def _key(self, target: list[torch.Tensor]) -> tuple[bytes, Gaussians2D, int, int, int]:
        cfg = self.config
        deadline = time.perf_counter() + self._seconds(True)
        p = self.fitter.initial(target, self.count, deadline)
        seconds = max(deadline - time.perf_counter(), 0.0)
        rep = self.fitter.fit(
            p, target, self.steps, seconds=seconds, max_iterations=cfg.max_iterations
        )
        g = quantize(p, self.steps, self.bounds)
        g = g.take(coding.sort_key(g))
        payload = coding.encode_base(g, self.steps)
        state = coding.decode_base(payload, self.bounds, self.limits.gaussians, self.index)
        if not state.equal(g):
            raise CodecError("gaussian: the base does not decode to the encoder's state (a bug)")
        return payload, state, 0, 0, rep.iterations

    def _predicted(
        self, target: list[torch.Tensor], frame: Frame
    ) -> tuple[bytes, Gaussians2D, int, int, int, Frame]:
        """A P-frame's payload, state, gated and born counts, steps and picture: the fitted
        residual, or an empty one (keep the previous state) when that costs less in
        SSE + rate_lambda x bits."""
        cfg, prev = self.config, self.state
        if prev is None:
            raise CodecError("gaussian: a P-frame without a previous state (a bug)")
        n_births = int(round(cfg.births * prev.count))
        removed, born = self.fitter.births(prev, target, n_births)
        keep = np.ones(prev.count, bool)
        keep[removed] = False
        survivors = to_float(prev.take(keep), cfg.device)
        p = _concat(survivors, born)
        anchor = _concat(survivors, _zeros_like(born))
        rep = self.fitter.fit(
            p,
            target,
            self.steps,
            seconds=self._seconds(False),
            max_iterations=cfg.max_iterations,
            anchor=anchor,
            rate_lambda=self.rate_lambda,
            lr_scale=P_FRAME_LR,
        )
        res = residual_of(prev, removed, p, int(keep.sum()), self.steps, self.bounds)
        state = coding.apply_residual(prev, res, self.steps, self.bounds)
        res, state = self._worth_sending(prev.take(keep), res, state, frame)
        payload = coding.encode_residual(prev.count, res, self.steps, state.crc())
        decoded = coding.decode_residual(
            payload, prev, self.bounds, self.limits.gaussians, self.index
        )
        if not decoded.equal(state):
            raise CodecError(
                "gaussian: the residual does not decode to the encoder's state (a bug)"
            )
        gated = int(np.union1d(res.geometry, res.colour).size)
        out = render_frame(decoded, self.canvas, self.limits, frame.pts, self.stream, self.renderer)
        still = render_frame(prev, self.canvas, self.limits, frame.pts, self.stream, self.renderer)
        keep_payload = coding.encode_residual(
            prev.count, coding.no_change(), self.steps, prev.crc()
        )
        cost_new = frame_sse(frame, out) + self.rate_lambda * 8 * len(payload)
        cost_keep = frame_sse(frame, still) + self.rate_lambda * 8 * len(keep_payload)
        if cost_keep <= cost_new:
            return keep_payload, prev, 0, 0, rep.iterations, still
        return payload, decoded, gated, res.births.count, rep.iterations, out

    def _worth_sending(
        self, survivors: Gaussians2D, res: coding.Residual, state: Gaussians2D, frame: Frame
    ) -> tuple[coding.Residual, Gaussians2D]:
        """The residual without the Gaussians whose change lowers the SSE by less than
        rate_lambda x its bits (each judged alone, against the picture with all changes)."""
        gated = np.union1d(res.geometry, res.colour)
        if gated.size == 0:
            return res, state
        out = render_frame(state, self.canvas, self.limits, frame.pts, self.stream, self.renderer)
        gain = keep_benefit(survivors.take(gated), state.take(gated), frame, out, self.canvas)
        drop = gated[gain < self.rate_lambda * residual_bits(res)]
        if drop.size == 0:
            return res, state
        prev = self.state
        if prev is None:
            raise CodecError("gaussian: a P-frame without a previous state (a bug)")
        res = prune(res, drop)
        return res, coding.apply_residual(prev, res, self.steps, self.bounds)

    def psnr(self) -> float:
        return float(np.mean([r.psnr for r in self.reports])) if self.reports else float("nan")


def frame_sse(source: Frame, out: Frame) -> float:
    """Squared error in full-scale units, weighted as the fit's loss (YUV 6:1:1 per luma
    pixel, RGB averaged over the channels)."""
    top = float(source.pixel_format.max_value)
    if source.pixel_format.family == "rgb":
        d = (source.planes[0].astype(np.float64) - out.planes[0]) / top
        return float((d * d).sum()) / 3.0
    luma = source.planes[0].size
    total = 0.0
    for w, a, b in zip((6.0, 1.0, 1.0), source.planes, out.planes, strict=True):
        d = (a.astype(np.float64) - b) / top
        total += w / 8.0 * float((d * d).sum()) * luma / a.size
    return total


def _concat(a: FloatGaussians, b: FloatGaussians) -> FloatGaussians:
    """a's Gaussians then b's, a's background."""
    x, y, s1, s2, ang, colour = (
        torch.cat([u, v]) for u, v in zip(a.tensors()[:6], b.tensors()[:6], strict=True)
    )
    return FloatGaussians(x, y, s1, s2, ang, colour, a.background.clone())


def _zeros_like(p: FloatGaussians) -> FloatGaussians:
    return FloatGaussians(*[torch.zeros_like(t) for t in p.tensors()])


class GaussianDecoder:
    """Holds the decoded Gaussian state; renders one frame per unit."""

    def __init__(self, header: SequenceHeader) -> None:
        self.stream = StreamInfo.from_header(header)
        self.params = StreamParams.from_bytes(header.codec_params)
        self.canvas = Canvas(header.width, header.height, header.pix_fmt)
        self.bounds = Bounds(header.width, header.height)
        self.limits = Limits.of(self.canvas)
        self.renderer = IncrementalRenderer(self.canvas)
        self.state: Gaussians2D | None = None

    def decode(self, unit: Unit | None) -> list[Frame]:
        if unit is None or unit.type not in (UnitType.GAUSSIAN_BASE, UnitType.GAUSSIAN_RESIDUAL):
            return []
        try:
            return integrity.decode_checked(unit, self._decode, what="gaussian")
        except BitstreamError:
            self.state = None  # nothing more until the next base
            raise

    def _decode(self, unit: Unit) -> list[Frame]:
        if unit.type == UnitType.GAUSSIAN_BASE:
            state = coding.decode_base(unit.payload, self.bounds, self.limits.gaussians, unit.pts)
        else:
            if self.state is None:
                raise BitstreamError(
                    f"gaussian residual {unit.pts} has no base to apply to (decoding must start "
                    "at a GAUSSIAN_BASE unit, a random-access point)"
                )
            state = coding.decode_residual(
                unit.payload, self.state, self.bounds, self.limits.gaussians, unit.pts
            )
        frame = render_frame(state, self.canvas, self.limits, unit.pts, self.stream, self.renderer)
        self.state = state
        return [frame]


def make_decoder(header: SequenceHeader) -> GaussianDecoder | SceneDecoder:
    """The decoder of the stream's mode: 2D video, or a free-viewpoint scene (codec3d)."""
    if stream_mode(header.codec_params) == MODE_3D:
        return SceneDecoder(header)
    return GaussianDecoder(header)


SPEC = CodecSpec(
    id=4,
    name="gaussian",
    summary="Gaussians: 2D per frame (GSVC) or a 3D scene (QUEEN); a base every group, "
    "then gated residuals",
    config_type=GaussianConfig,
    make_encoder=GaussianEncoder,
    make_decoder=make_decoder,
)

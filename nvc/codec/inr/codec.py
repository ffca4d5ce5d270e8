"""The `inr` codec: a video is coded as networks trained to output its frames.

Units, per group of frames (see README.md): one MODEL unit (the group's quantized,
entropy-coded network; pts = the group's first frame; a RAP unless it holds residuals),
then one FRAME unit per frame (pts = the frame's index; payload: the frame's coded
embedding, or nothing for NeRV-style streams, then the CRC-32 of the decoded frame, see
nvc.codec.integrity), so a player can pace frames.
The codec parameters are ModelConfig.to_bytes(): version 2, or 3 for networks with
feature grids (grid.py; their MODEL units start with the grid section, gridcode.py).
Version 1, version 2's fields, marks streams written before FRAME payloads carried the
checksum; they still decode, unchecked.

The decoder refuses, before allocating anything, a network above the limits of
nvc.codec.limits (parameters, MACs per pixel, feature map values per pixel).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import numpy as np

from nvc.bitstream import SequenceHeader, Unit, UnitType
from nvc.codec import integrity
from nvc.codec.base import CodecSpec, StreamInfo, torch_threads
from nvc.codec.inr.config import InrConfig, ModelConfig, TrainStatus
from nvc.codec.inr.frames import Geometry
from nvc.codec.inr.grid import grid_values
from nvc.codec.inr.gridcode import encode_grids, join_payload
from nvc.codec.inr.model import network_cost
from nvc.codec.inr.plan import UNIT_OVERHEAD_BYTES, Plan, make_plan
from nvc.codec.inr.render import Renderer
from nvc.codec.inr.train import GroupData, Trainer, group_data
from nvc.codec.inr.weights import (
    GroupCode,
    LayerCode,
    embedding_bits,
    encode_embedding,
    encode_group,
    fit_embedding_model,
    temporal_residuals,
)
from nvc.codec.limits import (
    INR_MAX_MACS_PER_PIXEL,
    INR_MAX_PARAMS,
    INR_MAX_VALUES_PER_PIXEL,
    check_at_most,
)
from nvc.errors import CodecError
from nvc.media import Frame, psnr_rgb, psnr_yuv

CHECKED_VERSIONS = (2, 3)  # codec parameters versions whose FRAME payloads are sealed
MAX_COARSER = 32  # rate control may coarsen steps by up to an octave after training
BUDGET_EPOCHS = 100_000  # the epoch cap of a group trained under a time budget
MAX_FINER = 64  # ... or make them finer by up to two octaves when under budget
RATE_TRIES = 6  # codings of the network tried by that search, at most
RATE_AIM = 0.02  # the search stops once the group is this close to its budget
RATE_SLACK = 0.02  # a coding this far over the budget still counts as within it


@dataclass
class GroupReport:
    """What the encoder measured for one coded group."""

    first: int  # index of the group's first frame
    frames: int  # frames in the group
    rap: bool  # the MODEL unit is a random-access point
    model_bytes: int  # MODEL payload bytes
    frame_bytes: int  # FRAME payload bytes, all frames
    bpp: float  # payloads plus container overhead, per pixel
    psnr: float  # mean per-frame PSNR of the decoded frames (YUV 6:1:1, or RGB)
    epochs: int  # epochs trained
    seconds: float  # training and coding time
    digests: list[str] = field(default_factory=list)  # sha256 of each decoded frame's planes


def frame_digest(frame: Frame) -> str:
    h = hashlib.sha256()
    for p in frame.planes:
        h.update(np.ascontiguousarray(p).tobytes())
    return h.hexdigest()


class InrEncoder:
    """Buffers a group of frames, trains its network, then emits the group's units."""

    def __init__(self, stream: StreamInfo, config: InrConfig) -> None:
        self.stream, self.config = stream, config
        self.clock = time.process_time if config.cpu_seconds else time.perf_counter
        self.born = self.clock()  # the time budget counts from here (planning included)
        self.plan: Plan = make_plan(stream, config)
        self.model: ModelConfig = self.plan.model
        self.geo: Geometry = self.plan.geometry
        self._params = self.model.to_bytes()
        self.renderer = Renderer(self.model, self.geo)
        self.trainer: Trainer | None = None
        self.buffer: list[Frame] = []
        self.frames_done = 0
        self.groups_done = 0
        self.reports: list[GroupReport] = []
        self.time_left = config.time_budget
        # One thread per process by default: the network's ops are small, and each extra
        # OpenMP thread cost 6.4x the CPU per epoch on a busy machine (issue 14).
        self.threads = config.threads or 1

    @property
    def codec_params(self) -> bytes:
        return self._params

    def encode(self, frame: Frame | None) -> list[Unit]:
        if frame is None:
            return self._code_group(last=True) if self.buffer else []
        self.stream.check_frame(frame)
        self.buffer.append(frame)
        if len(self.buffer) == self.model.group_size:
            return self._code_group()
        return []

    def _groups_total(self) -> int | None:
        count = self.stream.frame_count
        return -(-count // self.model.group_size) if count else None

    def _seconds(self, n: int, epochs: int, last: bool) -> float | None:
        """This group's share of the remaining time budget (by frames x epochs). With the
        length unknown: all that is left for the last group (the input has ended), half of
        it for a group that more frames may follow, so the whole encode stays in budget."""
        if self.time_left is None:
            return None
        count = self.stream.frame_count
        if not count:
            return self.time_left if last else 0.5 * self.time_left
        plan, left = self.plan, max(count - self.frames_done - n, 0)
        later = left * plan.warm_epochs
        return max(self.time_left * n * epochs / (n * epochs + later), 0.0)

    def _share(self, seconds: float | None, start: float) -> float | None:
        """A group's share less what the group has spent before training (its tensors)."""
        return None if seconds is None else max(seconds - (self.clock() - start), 0.0)

    def _code_group(self, last: bool = False) -> list[Unit]:
        """Train the buffered group's network, code it, reconstruct it as the decoder will."""
        start = self.clock()
        if self.time_left is not None and self.config.time_budget is not None:
            # what is left of the whole encode's budget (reading the frames included)
            self.time_left = max(self.config.time_budget - (start - self.born), 0.0)
        frames, self.buffer = self.buffer, []
        n, g, plan = len(frames), self.groups_done, self.plan
        if self.trainer is None:
            self.trainer = Trainer(
                self.model,
                self.geo,
                device=self.config.device,
                seed=self.config.seed,
                lam=plan.preset.lam,
                embed_bits=plan.preset.embed_bits,
                clock=self.clock,
            )
        overhead = UNIT_OVERHEAD_BYTES * (n + 1) + (len(self._params) + 64 if g == 0 else 0)
        budget = plan.bpp * self.geo.width * self.geo.height * n - 8 * overhead
        epochs = plan.epochs if g == 0 else plan.warm_epochs
        cb, total = self.config.on_progress, self._groups_total()

        def on_epoch(epoch: int, planned: int, psnr: float, bpp: float) -> None:
            if cb is not None:
                cb(TrainStatus(g, total, epoch, planned, psnr, bpp, self.clock() - start))

        with torch_threads(self.threads):
            data = group_data(frames, self.geo, self.model, self.config.device)
            grids = self.trainer.net.grids
            if grids is not None:
                if g > 0:
                    grids.carry_over()
                grids.use(n)  # this group's temporal slices
            residual = g % self.model.rap_every != 0
            # under a time budget the budget sets the length of training (unless --epochs)
            budgeted = self.time_left is not None and self.config.epochs is None
            ran = self.trainer.fit(
                data,
                epochs=BUDGET_EPOCHS if budgeted else epochs,
                lr=plan.lr,
                batch=plan.batch,
                budget_bits=budget,
                seconds=self._share(self._seconds(n, epochs, last), start),
                residual=residual,
                prune=plan.prune,
                on_epoch=on_epoch,
            )
            payload, fps = self._code(data, n, residual, budget)
            del data
            report, units = self._reconstruct(frames, payload, fps)
        report.epochs = ran
        report.bpp = (
            8
            * (report.model_bytes + report.frame_bytes + overhead)
            / (n * self.geo.width * self.geo.height)
        )
        report.seconds = self.clock() - start
        self.reports.append(report)
        self.frames_done += n
        self.groups_done += 1
        if cb is not None:
            cb(TrainStatus(g, total, ran, ran, report.psnr, report.bpp, report.seconds, done=True))
        return units

    def _code(
        self, data: GroupData, n: int, residual: bool, budget: float
    ) -> tuple[bytes, list[bytes]]:
        """(MODEL payload, FRAME payloads), the weight steps scaled to meet the budget.

        Full groups search the common step offset (1/32 octave units, finer by up to two
        octaves or coarser by one) whose coded size is the largest within RATE_SLACK of the budget,
        like an encoder's search for its quantizer; residual groups keep their steps.
        """
        if self.trainer is None:
            raise CodecError("inr: a group is coded before its network was trained")
        ref = self.renderer.group
        emb_bits, fps, model, temporal = 0, [b""] * n, None, False
        tried: dict[int, tuple[int, bytes, list[LayerCode]]] = {}
        lo, hi, offset = -MAX_FINER, MAX_COARSER, 0
        target = max(budget, 0.0)
        grids = self.trainer.net.grids
        # the grids' section does not depend on the weight steps: coded once
        section = encode_grids(grids.export(), grids.levels) if grids is not None else None
        for _ in range(RATE_TRIES):
            layers, residual = self.trainer.export(residual, ref.layers if ref else None, offset)
            if not tried:  # the embeddings do not depend on the weight steps
                emb = self.trainer.embedding_ints(data, layers)
                if emb is not None:
                    # each frame's embedding alone, or its difference from the previous
                    # frame's: whichever codes smaller (the model sent in MODEL)
                    pred = temporal_residuals(emb)
                    model, temporal = fit_embedding_model(emb), False
                    if n > 1:
                        pred_model = fit_embedding_model(pred)
                        if embedding_bits(pred, pred_model) < embedding_bits(emb, model):
                            model, temporal = pred_model, True
                    fps = [encode_embedding(e, model) for e in (pred if temporal else emb)]
                emb_bits = 8 * sum(map(len, fps))
            code = GroupCode(n, layers, residual, model, temporal)
            payload = encode_group(code, ref if residual else None)
            if section is not None:
                payload = join_payload(section, payload)
            bits = 8 * len(payload) + emb_bits
            tried[offset] = (bits, payload, layers)
            if residual or abs(bits - target) <= RATE_AIM * target:
                break
            if bits > target:
                lo = offset + 1
            else:
                hi = offset - 1
            # 1/32 octave coarser saves about 1/32 bit per weight
            guess = offset + round(32 * (bits - target) / max(self.plan.params, 1))
            offset = min(max(guess, lo), hi)
            if offset in tried or lo > hi:
                offset = (lo + hi) // 2
                if offset in tried or lo > hi:
                    break
        within = [o for o, t in tried.items() if t[0] <= (1 + RATE_SLACK) * target]
        best = (
            max(within, key=lambda o: tried[o][0])
            if within
            else min(tried, key=lambda o: tried[o][0])
        )
        _, payload, layers = tried[best]
        self.trainer.commit(layers)
        return payload, fps

    def _reconstruct(
        self, frames: list[Frame], payload: bytes, fps: list[bytes]
    ) -> tuple[GroupReport, list[Unit]]:
        """Decode the group's own payloads with the decoder's code: units, PSNR, digests."""
        first = self.frames_done
        code = self.renderer.load(payload)
        units = [Unit(UnitType.MODEL, payload, pts=first, rap=not code.residual)]
        report = GroupReport(
            first,
            len(frames),
            not code.residual,
            len(payload),
            sum(map(len, fps)),
            0.0,
            0.0,
            0,
            0.0,
        )
        scores = []
        for i, (src, fp) in enumerate(zip(frames, fps, strict=True)):
            out = Frame(
                self.renderer.render(i, fp), src.format, first + i, src.time_base, src.full_range
            )
            scores.append(psnr_yuv(src, out).weighted if self.geo.yuv else psnr_rgb(src, out))
            report.digests.append(frame_digest(out))
            units.append(Unit(UnitType.FRAME, integrity.seal(fp, out), pts=first + i))
        report.psnr = float(np.mean(scores))
        return report, units


class InrDecoder:
    """Loads each group's network from its MODEL unit and renders its FRAME units."""

    def __init__(self, header: SequenceHeader) -> None:
        self.stream = StreamInfo.from_header(header)
        params = header.codec_params
        self.checked = bool(params) and params[0] in CHECKED_VERSIONS  # FRAME checksums
        self.model = ModelConfig.from_bytes(params)
        _check_network(self.model, header.width, header.height)
        geo = Geometry(
            header.width, header.height, header.pix_fmt, header.full_range, self.model.stride
        )
        self.renderer = Renderer(self.model, geo)
        self.first = 0
        self.time_base = 1 / header.fps

    def decode(self, unit: Unit | None) -> list[Frame]:
        if unit is None:
            return []
        if unit.type == UnitType.MODEL:
            self.renderer.load(unit.payload)
            self.first = unit.pts
            return []
        if unit.type != UnitType.FRAME:
            return []
        return integrity.decode_checked(unit, self._render, what="inr", checked=self.checked)

    def _render(self, unit: Unit) -> list[Frame]:
        planes = self.renderer.render(unit.pts - self.first, unit.payload)
        return [Frame(planes, self.stream.format, unit.pts, self.time_base, self.stream.full_range)]


def _layer_outputs(cfg: ModelConfig, grid: tuple[int, int]) -> int:
    """The largest output (values) of any layer of InrNet(cfg, grid), without building it;
    mirrors nvc.codec.inr.model.network_cost."""
    c, (h, w) = cfg.channels, grid
    largest = max(cfg.hidden, c[0] * h * w)  # the MLPs, the stem's feature grid
    for i in range(cfg.blocks):
        cin, cout = c[i], c[i + 1]
        if cfg.grid_channels:  # the conv reads the block input and its feature grid
            cin += cfg.grid_channels[i]
        largest = max(largest, cin * h * w, 4 * cout * h * w)
        h, w = 2 * h, 2 * w
        largest = max(largest, cout * h * w)
    return max(largest, (12 if cfg.head_shuffle else 3) * h * w)


def _check_network(cfg: ModelConfig, width: int, height: int) -> None:
    """Refuse a network too large to hold or too slow to run for its picture size."""
    grid = cfg.grid(width, height)
    params, macs = network_cost(cfg, grid)
    pixels = width * height
    check_at_most("inr network parameters", params, INR_MAX_PARAMS)
    check_at_most("inr feature grid values", grid_values(cfg, grid, cfg.group_size), INR_MAX_PARAMS)
    check_at_most("inr decoder MACs per pixel", -(-macs // pixels), INR_MAX_MACS_PER_PIXEL)
    values = -(-_layer_outputs(cfg, grid) // pixels)
    check_at_most("inr feature map values per pixel", values, INR_MAX_VALUES_PER_PIXEL)


SPEC = CodecSpec(
    id=2,
    name="inr",
    summary="implicit neural representation: a network per group of frames (NeRV family)",
    config_type=InrConfig,
    make_encoder=InrEncoder,
    make_decoder=InrDecoder,
)

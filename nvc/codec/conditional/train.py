"""Training of the fm model (`nvc train fm`): staged, q-sampled, resumable.

Stages (DCVC-FM trains in stages too; this is the CPU-sized version):

1. intra: the image codec alone, on single frames;
2. inter, one frame: an intra frame, then one inter frame predicted from its
   reconstruction (both losses). The motion coder also gets its own losses here (L1 error
   of the decoded flow against the estimated one, and lambda(q) times the MSE of the
   motion-compensated prediction; DCVC likewise trains its motion path first), and the
   decoder side sees the noisy latents (additive uniform noise) instead of the rounded ones,
   which keeps a latent that the rate term has pushed to zero from staying there;
3. inter, several frames: an intra frame and `frames - 1` inter frames, each predicted from
   the previous reconstruction and temporal feature with gradients flowing through the
   whole chain, so the model learns to live with propagated error (DCVC-FM's cascaded
   training). With probability 1/4 an inter frame takes its temporal feature from the
   adaptor (the periodic refresh), so that path is trained too.
4. residual (optional, `residual_steps`): everything above frozen, a separate image codec
   (the intra architecture, started from the intra codec's weights) learns to code what
   each inter frame of a `frames`-long chain leaves (the corrected picture is the next
   frame's reference): the source minus the frozen model's inter reconstruction, amplified
   as the encoder amplifies it, added back to that reconstruction, with the same
   lambda(q) MSE + bpp loss. The encoder sends such a residual where it pays (codec.py).

`init` starts from a weights file (e.g. the shipped model) instead of random weights, with
a fresh optimizer and step count: `--init fm-realtime.pt --residual-steps N` with the
other stages at 0 adds a trained residual codec to an existing model.

Every sample draws its own q uniformly from 0..63 (DCVC-FM's uniform quantization-parameter
sampling); its loss is lambda(q) * MSE + bits per pixel, lambda log-linear in q, averaged
over frames and samples.

Checkpoints (`DIR/checkpoint.pt`, written atomically every `checkpoint_every` seconds and at
the end) hold the model, the optimizer, the step, the elapsed time, the RNG states and the
configuration; `resume=True` continues from one. `export_weights` writes the model as a
weights file the codec loads (`weights.save_weights`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from nvc.codec.conditional import frames as fr
from nvc.codec.conditional.data import TrainingData
from nvc.codec.conditional.distributed import World
from nvc.codec.conditional.model import (
    Q_LEVELS,
    RESIDUAL_SHIFTS,
    VARIANTS,
    FMModel,
    ModelConfig,
    lambda_of,
)
from nvc.codec.conditional.motion import estimate_motion
from nvc.codec.conditional.weights import save_weights
from nvc.errors import NvcError

CHECKPOINT = "checkpoint.pt"
LOG = "log.jsonl"  # one JSON line per log interval and per run start / stop
REFRESH_PROBABILITY = 0.25
MOTION_WEIGHT = 0.5  # weight of the motion coder's own losses in stage 2
RATE_WARMUP_FROM = 0.05  # weight of the inter rate at the start of the rate warm-up


@dataclass
class TrainConfig:
    """Options of `nvc train fm`."""

    out: str  # directory for checkpoints, the log and exported weights
    variant: str = "realtime"  # model variant (model.VARIANTS)
    videos: list[str] = field(default_factory=list)  # folders (or files) of videos
    images: list[str] = field(default_factory=list)  # folders (or files) of images to animate
    synthetic: bool | None = None  # add synthetic clips (default: only when no folder given)
    intra_steps: int = 2000  # stage 1 steps
    inter_steps: int = 1000  # stage 2 steps
    multi_steps: int = 2000  # stage 3 steps
    residual_steps: int = 0  # stage 4 steps (0: the model has no residual codec)
    # after stage 4: steps that alternate intra (stage 1) and residual (stage 4) steps, for
    # a model whose inter codec comes from `init` (a v2 image codec on the v1 inter codec)
    mixed_steps: int = 0
    init: str | None = None  # start from this weights file instead of random weights
    frames: int = 4  # frames per sample in stage 3 (one intra + frames - 1 inter)
    batch: int = 8  # samples per step
    crop: int = 128  # crop size in pixels (multiple of 16)
    lr: float = 5e-4  # Adam learning rate (cosine decay to lr / 20 over all steps)
    device: str = "cpu"  # "cpu" or "cuda"
    threads: int | None = None  # torch CPU threads (None: leave as is)
    seed: int = 0  # seed of data and model initialisation
    time_limit: float | None = None  # stop (and checkpoint) after this many seconds of this run
    rate_warmup: int = 1000  # steps over which the inter rate weight rises to 1 (0: off)
    rewarm: bool = False  # warm the inter rate up again from where this run resumed
    checkpoint_every: float = 120.0  # seconds between checkpoints
    log_every: int = 20  # steps between log lines
    steps: int | None = None  # stop (and checkpoint) after this many steps of this run

    @property
    def total_steps(self) -> int:
        stages = self.intra_steps + self.inter_steps + self.multi_steps + self.residual_steps
        return stages + self.mixed_steps

    def stage(self, step: int) -> int:
        """The stage of a step; in the mixed stage, even steps are intra (1) steps and odd
        steps residual (4) steps."""
        if step < self.intra_steps:
            return 1
        if step < self.intra_steps + self.inter_steps:
            return 2
        if step < self.intra_steps + self.inter_steps + self.multi_steps:
            return 3
        if step < self.total_steps - self.mixed_steps:
            return 4
        return 1 if step % 2 == 0 else 4

    @property
    def residual_start(self) -> int:
        """The first step that trains the residual codec."""
        if self.residual_steps:
            return self.intra_steps + self.inter_steps + self.multi_steps
        first = self.total_steps - self.mixed_steps
        return first + (1 - first % 2)


@dataclass
class StepStats:
    step: int
    stage: int
    loss: float
    bpp: float
    psnr: float  # mean PSNR (dB) of the step's frames, 4:2:0 samples weighted equally
    seconds: float  # wall time of the step


def _psnr(mse: Tensor) -> float:
    return float(10 * torch.log10(1.0 / mse.clamp_min(1e-10)).mean())


def frame_losses(
    model: FMModel,
    clip: Tensor,
    q: Tensor,
    frames: int,
    rng: np.random.Generator,
    motion_weight: float = 0.0,
    noisy_decoder: bool = False,
    rate_weight: float = 1.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """Run one intra frame and frames - 1 inter frames; returns per-frame
    (loss (B,), bpp (B,), mse (B,)) stacked as (frames, B).

    `motion_weight` > 0 adds, for inter frames, the motion coder's own losses (as DCVC's
    staged training trains motion first): the L1 error of the decoded flow against the
    estimated one (feature-grid units) and lambda(q) times the MSE of the
    motion-compensated prediction, both times `motion_weight`. `rate_weight` scales the
    inter frames' rate in the loss (the rate warm-up)."""
    depth = 8
    x_all = fr.codes_to_net(clip, depth)  # (B, T, 96, h, w)
    b, _, _, h, w = x_all.shape
    pixels = float(h * w * 64)
    lam = lambda_of(q, model.config)
    losses, bpps, mses = [], [], []
    out = model.intra(x_all[:, 0], q)
    ref = fr.net_to_codes_ste(out.x_hat, depth)
    feature: Tensor | None = None
    for t in range(frames):
        x = x_all[:, t]
        if t > 0:
            cur_y = fr.split_96(x)[0] + 0.5
            ref_y = fr.split_96(ref.detach())[0] + 0.5
            flow = estimate_motion(cur_y, ref_y)
            if feature is None or rng.random() < REFRESH_PROBABILITY:
                feature = model.inter.adaptor(ref)
            out = model.inter(x, ref, feature, flow, q, noisy_decoder)
            ref = fr.net_to_codes_ste(out.x_hat, depth)
            feature = out.feature
        mse = torch.mean((out.x_hat - x) ** 2, dim=(1, 2, 3))
        bpp = out.bits / pixels
        loss = lam * mse + (bpp if t == 0 else rate_weight * bpp)
        if t > 0 and motion_weight > 0 and out.flow_hat is not None and out.pred is not None:
            flow_err = (out.flow_hat - flow).abs().mean(dim=(1, 2, 3))
            mc_err = torch.mean((out.pred - x) ** 2, dim=(1, 2, 3))
            loss = loss + motion_weight * (flow_err + lam * mc_err)
        losses.append(loss)
        bpps.append(bpp)
        mses.append(mse)
    return torch.stack(losses), torch.stack(bpps), torch.stack(mses)


def residual_losses(
    model: FMModel, clip: Tensor, q: Tensor, shifts: np.ndarray
) -> tuple[Tensor, Tensor, Tensor]:
    """Stage 4: an intra frame, then inter frames through the frozen model (rounded
    latents, reconstructions rounded to codes, as the codec does), each followed by the
    residual codec on what it left, amplified by 2**shift (shift drawn per sample from the
    encoder's RESIDUAL_SHIFTS) and attenuated back; the corrected picture is the next
    frame's reference (its feature re-derived by the adaptor, as the codec does after a
    residual), so the residual codec sees the errors that accumulate along the chain (meant
    against chroma drift; 3-frame chains did not cure it, see MODEL_CARD.md). `shifts`: the
    amplification per sample (B,), drawn from RESIDUAL_SHIFTS by the caller. Returns
    (loss, bpp, mse), each (frames - 1, B)."""
    if model.residual is None:
        raise NvcError("the model has no residual codec to train")
    depth = 8
    x_all = fr.codes_to_net(clip, depth)  # (B, T, 96, h, w)
    b, frames = x_all.shape[:2]
    pixels = float(x_all.shape[3] * x_all.shape[4] * 64)
    lam = lambda_of(q, model.config)
    gain = torch.from_numpy(np.exp2(shifts)).to(x_all.device, x_all.dtype).view(-1, 1, 1, 1)
    model.intra.eval()
    model.inter.eval()
    with torch.no_grad():
        ref = fr.net_to_codes_ste(model.intra(x_all[:, 0], q).x_hat, depth)
    losses, bpps, mses = [], [], []
    for t in range(1, frames):
        x = x_all[:, t]
        with torch.no_grad():
            flow = estimate_motion(fr.split_96(x)[0] + 0.5, fr.split_96(ref)[0] + 0.5)
            out = model.inter(x, ref, model.inter.adaptor(ref), flow, q)
            pred = fr.net_to_codes_ste(out.x_hat, depth)  # (B, 96, h, w)
        res = model.residual((x - pred) * gain, q)
        corrected = pred + res.x_hat / gain
        mse = torch.mean((corrected - x) ** 2, dim=(1, 2, 3))
        bpp = res.bits / pixels
        losses.append(lam * mse + bpp)
        bpps.append(bpp)
        mses.append(mse)
        ref = fr.net_to_codes_ste(corrected.detach(), depth)
    return torch.stack(losses), torch.stack(bpps), torch.stack(mses)


def _model_config(config: TrainConfig) -> ModelConfig:
    residual = config.residual_steps > 0 or config.mixed_steps > 0
    return dataclasses.replace(VARIANTS[config.variant], residual_codec=residual)


_INTER_FIELDS = (
    "channels",
    "latent",
    "hyper",
    "mv_channels",
    "mv_hidden",
    "mv_hyper",
    "prior_width",
    "blocks",
    "checkerboard",
    "latent_skip",
)  # what the inter codec's shape depends on


def _load_init(model: FMModel, path: str) -> bool:
    """Load a weights file's parameters into `model`. Same design: everything (a residual
    codec the file lacks starts as a copy of its intra codec). Another image codec design
    with the same inter codec (a v1 file into a v2 model): the inter codec only, the image
    codecs keep their initialisation. Returns whether the residual codec was loaded."""
    from nvc.codec.conditional.weights import load_weights

    try:
        src = load_weights(path)
    except NvcError as e:
        raise NvcError(f"--init: {e}") from None
    ours = dataclasses.replace(model.config, residual_codec=False)
    theirs = dataclasses.replace(src.config, residual_codec=False, variant=ours.variant)
    if theirs != ours:
        same_inter = all(getattr(src.config, f) == getattr(ours, f) for f in _INTER_FIELDS)
        if not same_inter or src.config.image == ours.image:
            raise NvcError(
                f"--init: {path} holds another model variant than {model.config.variant!r}"
            )
        inter = {k: v for k, v in src.state_dict().items() if k.startswith("inter.")}
        model.load_state_dict({**model.state_dict(), **inter})
        return False
    state = src.state_dict()
    if model.residual is not None and src.residual is None:
        state.update({f"residual.{k}": v for k, v in src.intra.state_dict().items()})
    if src.residual is not None and model.residual is None:
        state = {k: v for k, v in state.items() if not k.startswith("residual.")}
    model.load_state_dict(state)
    return True


class StageLosses(torch.nn.Module):
    """The model and the losses of one step as one module, so that DistributedDataParallel
    can wrap it (its forward is what DDP synchronises)."""

    def __init__(self, model: FMModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        stage: int,
        clip: Tensor,
        q: Tensor,
        frames: int,
        rng: np.random.Generator,
        shifts: np.ndarray,
        rate_weight: float,
    ) -> tuple[Tensor, Tensor, Tensor]:
        if stage == 4:
            return residual_losses(self.model, clip, q, shifts)
        # stage 2 trains the motion coder with its own losses and the latents with the
        # noise proxy on the decoder side too; stage 3 drops both (rounding, end to end)
        warm = stage == 2
        return frame_losses(
            self.model,
            clip,
            q,
            frames,
            rng,
            MOTION_WEIGHT if warm else 0.0,
            warm,
            rate_weight,
        )


class Trainer:
    """Holds the model, optimizer and data; `run()` trains until done or out of time.
    Under torchrun every process holds one (see distributed.py); rank 0 writes."""

    def __init__(self, config: TrainConfig, resume: bool = False) -> None:
        if config.variant not in VARIANTS:
            raise NvcError(f"unknown variant {config.variant!r} (variants: {', '.join(VARIANTS)})")
        if config.crop % 16 or config.crop < 32:
            raise NvcError(f"crop must be a multiple of 16 and at least 32, got {config.crop}")
        if config.frames < 2:
            raise NvcError("frames must be at least 2")
        if config.device.startswith("cuda") and not torch.cuda.is_available():
            raise NvcError("--device cuda was asked for, but torch sees no CUDA device")
        if config.steps is not None and config.steps < 0:
            raise NvcError("steps must be >= 0")
        if config.threads:
            torch.set_num_threads(config.threads)
        self.world = World.from_env(config.device)
        self.world.share(config.batch)  # the batch must divide among the processes
        self.device = self.world.device(config.device)
        self.config = config
        torch.manual_seed(config.seed)
        self.model = FMModel(_model_config(config))
        # a residual codec that --init does not provide starts, at stage 4, as a copy of
        # the (then trained) intra codec
        self.copy_residual = True
        if config.init:  # before anything is written: a bad --init leaves nothing behind
            self.copy_residual = not _load_init(self.model, config.init)
        self.model.to(self.device)
        self.losses: torch.nn.Module = StageLosses(self.model)
        if self.world.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.world.local_rank] if self.device.startswith("cuda") else None
            self.losses = DistributedDataParallel(
                self.losses, device_ids=ids, find_unused_parameters=True
            )
        self.dir = Path(config.out)
        if self.world.rank == 0:
            self.dir.mkdir(parents=True, exist_ok=True)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.step = 0
        self.elapsed = 0.0  # step time (seconds) of all runs so far
        self.cpu_seconds = 0.0  # CPU time of all runs so far, all processes
        self.rng = np.random.default_rng(config.seed)
        self.data = TrainingData(
            config.videos, config.images, config.synthetic, config.seed, config.crop
        )
        self.history: list[dict[str, float]] = []
        path = self.dir / CHECKPOINT
        if resume:
            if not path.is_file():
                raise NvcError(f"nothing to resume: {path} does not exist")
            self.load(path)
        self.start_step = self.step  # where this run (re)started
        # the trainer's own CPU generator state: set around every step, so that whatever
        # else draws from torch's global generator between steps changes nothing
        self._torch_rng = torch.get_rng_state()

    # ------------------------------------------------------------------ checkpoints

    def save(self) -> Path:
        """Write the checkpoint (rank 0 only; all processes hold the same state)."""
        path = self.dir / CHECKPOINT
        if self.world.rank != 0:
            return path
        tmp = path.with_name(path.name + ".tmp")
        blob = {
            "format": "nvc-fm-checkpoint",
            "config": dataclasses.asdict(self.config),
            "model_config": self.model.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "step": self.step,
            "elapsed": self.elapsed,
            "cpu_seconds": self.cpu_seconds,
            "torch_rng": self._torch_rng,
            "numpy_rng": json.dumps(self.rng.bit_generator.state),
            "data_rng": json.dumps(self.data.rng.bit_generator.state),
            "history": json.dumps(self.history[-2000:]),
        }
        if self.device.startswith("cuda"):
            blob["cuda_rng"] = torch.cuda.get_rng_state()
        torch.save(blob, tmp)
        os.replace(tmp, path)
        return path

    def load(self, path: Path) -> None:
        blob = torch.load(path, map_location=self.device, weights_only=True)
        if blob.get("format") != "nvc-fm-checkpoint":
            raise NvcError(f"{path} is not an fm training checkpoint")
        if ModelConfig.from_dict(dict(blob["model_config"])) != self.model.config:
            raise NvcError(f"{path} holds another model variant than {self.config.variant!r}")
        self.model.load_state_dict(blob["model"])
        self.opt.load_state_dict(blob["optimizer"])
        self.step = int(blob["step"])
        self.elapsed = float(blob["elapsed"])
        self.cpu_seconds = float(blob.get("cpu_seconds", 0.0))
        torch.set_rng_state(blob["torch_rng"].cpu())
        if "cuda_rng" in blob and self.device.startswith("cuda"):
            torch.cuda.set_rng_state(blob["cuda_rng"].cpu())
        self.rng.bit_generator.state = json.loads(blob["numpy_rng"])
        self.data.rng.bit_generator.state = json.loads(blob["data_rng"])
        self.history = json.loads(blob["history"])

    def _log_file(self, entry: dict[str, Any]) -> None:
        """Append one line to DIR/log.jsonl (rank 0): the accumulating record of steps,
        step time and CPU time across runs."""
        if self.world.rank == 0:
            with open(self.dir / LOG, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry, sort_keys=True) + "\n")

    def export_weights(
        self, path: str | os.PathLike[str], extra: dict[str, Any] | None = None
    ) -> bytes:
        info = {
            "steps": self.step,
            "stage_steps": [
                self.config.intra_steps,
                self.config.inter_steps,
                self.config.multi_steps,
                self.config.residual_steps,
                self.config.mixed_steps,
            ],
            "train_seconds": round(self.elapsed, 1),
            "cpu_seconds": round(self.cpu_seconds, 3),
            "data": self.data.describe(),
            "crop": self.config.crop,
            "batch": self.config.batch,
            "frames": self.config.frames,
            "device": self.config.device,
        }
        if self.config.init:  # what the steps above started from, and how that was trained
            from nvc.codec.conditional.weights import load_info

            info["init"] = Path(self.config.init).name
            info["init_info"] = load_info(self.config.init)
        info.update(extra or {})
        model = FMModel(self.model.config)
        model.load_state_dict({k: v.cpu() for k, v in self.model.state_dict().items()})
        return save_weights(model.eval(), path, info)

    # ------------------------------------------------------------------ training

    def _lr(self) -> float:
        c = self.config
        t = min(self.step / max(c.total_steps, 1), 1.0)
        return c.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))

    def _rate_weight(self) -> float:
        """Rate warm-up of the inter frames: their rate counts RATE_WARMUP_FROM times at the
        start of stage 2 and rises linearly to full weight over `rate_warmup` steps, a
        function of the step alone (so a resumed run trains as an uninterrupted one). It
        lets the inter latents come into use before the rate term can pin them to zero next
        to the motion-compensated picture. `rewarm` starts it again where this run resumed."""
        c = self.config
        start = self.start_step if c.rewarm else c.intra_steps
        if c.rate_warmup <= 0 or self.step < start:
            return 1.0
        t = min((self.step - start) / c.rate_warmup, 1.0)
        return RATE_WARMUP_FROM + (1.0 - RATE_WARMUP_FROM) * t

    def train_step(self) -> StepStats:
        c = self.config
        start = time.perf_counter()
        cpu0 = time.process_time()
        stage = c.stage(self.step)
        frames = {1: 1, 2: 2, 3: c.frames, 4: c.frames}[stage]
        # the global batch, drawn identically by every process; each trains on its share
        clip = self.data.batch(c.batch, frames, c.crop)
        q = torch.from_numpy(self.rng.integers(0, Q_LEVELS, size=c.batch))
        shifts = (
            self.rng.choice(np.array(RESIDUAL_SHIFTS), size=c.batch)
            if stage == 4
            else np.zeros(c.batch, dtype=np.int64)
        )
        torch.set_rng_state(self._torch_rng)
        mine = self.world.share(c.batch)
        clip, q, shifts = clip[mine].to(self.device), q[mine].to(self.device), shifts[mine]
        self.model.train()
        for g in self.opt.param_groups:
            g["lr"] = self._lr()
        if stage == 4 and self.step == c.residual_start and self.copy_residual:
            # the residual codec starts as a copy of the intra codec (residual_steps > 0
            # configures the model with one)
            self.model.residual_coder.load_state_dict(self.model.intra.state_dict())
        loss, bpp, mse = self.losses(stage, clip, q, frames, self.rng, shifts, self._rate_weight())
        total = loss.mean()
        self.opt.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self._torch_rng = torch.get_rng_state()
        self.step += 1
        seconds = time.perf_counter() - start
        self.elapsed += seconds
        self.cpu_seconds += self.world.sum(time.process_time() - cpu0)
        return StepStats(
            self.step,
            stage,
            self.world.sum(float(total.detach())) / self.world.size,
            self.world.sum(float(bpp.detach().mean())) / self.world.size,
            self.world.sum(_psnr(mse.detach())) / self.world.size,
            seconds,
        )

    def run(
        self,
        on_step: Callable[[StepStats], None] | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        c = self.config
        started = time.monotonic()
        last_save = started
        window: list[StepStats] = []
        self._log_file(
            {
                "event": "start",
                "step": self.step,
                "lr": c.lr,
                "processes": self.world.size,
                "device": self.device,
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )
        while self.step < c.total_steps:
            if c.steps is not None and self.step - self.start_step >= c.steps:
                break
            late = c.time_limit is not None and time.monotonic() - started >= c.time_limit
            if self.world.any(late and self.world.rank == 0):  # rank 0's clock decides
                if log:
                    log(f"time limit reached at step {self.step}")
                break
            stats = self.train_step()
            window.append(stats)
            if on_step:
                on_step(stats)
            if self.step % c.log_every == 0 or self.step == c.total_steps:
                for stage in sorted({s.stage for s in window}):  # one line per stage
                    part = [s for s in window if s.stage == stage]
                    entry = {
                        "step": stats.step,
                        "stage": stage,
                        "loss": float(np.mean([s.loss for s in part])),
                        "bpp": float(np.mean([s.bpp for s in part])),
                        "psnr": float(np.mean([s.psnr for s in part])),
                        "elapsed": round(self.elapsed, 1),
                        "cpu": round(self.cpu_seconds, 3),
                    }
                    self.history.append(entry)
                    self._log_file(entry)
                    if log:
                        log(
                            f"step {entry['step']} stage {stage} loss {entry['loss']:.4f} "
                            f"bpp {entry['bpp']:.4f} psnr {entry['psnr']:.2f} "
                            f"lr {self._lr():.2e} elapsed {entry['elapsed']:.0f}s"
                        )
                window = []
            if self.world.any(time.monotonic() - last_save >= c.checkpoint_every):
                self.save()
                last_save = time.monotonic()
        self.save()
        self._log_file(
            {
                "event": "stop",
                "step": self.step,
                "elapsed": round(self.elapsed, 1),
                "cpu": round(self.cpu_seconds, 3),
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )

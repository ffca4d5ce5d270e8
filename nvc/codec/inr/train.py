"""Fitting a group's network: quantization-aware training with a rate penalty.

loss = weighted MSE of the decoded planes + lam * estimated bits per pixel, where the
rate is the Laplace proxy of every layer's integers (their change from the previous
group's, for residual groups) plus the embeddings'. `lam` starts at the preset's value
and is steered every epoch so that the group's estimated size (empirical entropy of the
integers, the coder's cost) meets its bit budget. Adam, linear warm-up then cosine decay.

Under a time budget (`seconds`, the group's share of the encode) the number of steps is
re-planned after every step from the median time of the recent steps (the first, slow
with one-time allocations, left out), so that training ends in time for the group to be
coded and reconstructed within the same share. That reserve is the measured time from the
end of the previous group's training to the start of this one's (coding, reconstruction
and reading the next frames); for the first group, CODE_PASSES times a trial coding of
the initial network (timed once) plus RECON_EPOCHS epochs' time for the exact render.
Training may end partway through an epoch.
The network and the content encoder carry over from group to group (NIRVANA's warm start).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from nvc.codec.inr.config import ModelConfig
from nvc.codec.inr.frames import (
    Geometry,
    encoder_input,
    frame_planes,
    frame_psnrs,
    plane_loss,
    subpixel_loss,
    subpixel_targets,
)
from nvc.codec.inr.model import ContentEncoder, InrNet
from nvc.codec.inr.quant import (
    STEP_K_MAX,
    code_steps,
    empirical_bits,
    exactness_violations,
    f32_step,
    laplace_bits,
    quantize_weight,
    steps_from_code,
)
from nvc.codec.inr.weights import GroupCode, LayerCode, encode_group
from nvc.media import Frame

# Called after every epoch with (epoch, epochs, psnr estimate, bpp estimate).
EpochFn = Callable[[int, int, float, float], None]

STEP_WINDOW = 32  # recent steps whose median time predicts the next ones
# The first group's reserve for coding (measured on a 2-core CPU, realtime/quality/nerv/
# hnerv presets, 64x48 to 320x180): the encoder's rate control codes the network about
# two to four times (its step search; entropy-model fitting dominates, about constant
# per network), and the exact
# render of every frame (with the embeddings' coding) took 0.1-0.3 of a training epoch.
CODE_PASSES = 4.0
RECON_EPOCHS = 0.4
# Training phases, as fractions of the planned steps (C3's schedule; blocks.QUANT_MODES):
# float until FLOAT_UNTIL, weight noise until NOISE_UNTIL, then straight-through rounding.
FLOAT_UNTIL = 0.3
NOISE_UNTIL = 0.5
# The rate proxy is evaluated every RATE_EVERY steps, weighted RATE_EVERY times, and the
# layers' input ranges are updated on the same steps.
RATE_EVERY = 4
# An epoch whose training MSE is DIVERGED times the lowest of the phase's last three (or
# not finite) has diverged: training goes back to the previous epoch's state at half the
# learning rate; past MAX_RESTORES restores the group's training ends (without the guard
# one run at lr 5e-3 had collapsed to 11 dB on a QCIF clip).
DIVERGED = 4.0
MAX_RESTORES = 4
# the progress PSNR (_psnr_estimate, ~10% of a short encode's CPU when run every epoch) is
# re-measured once this many clock seconds have passed since the last one, and at the end
PSNR_EVERY_S = 1.0
EVAL_FRAMES = 4  # frames of the end-of-epoch PSNR estimate (quantized network, evenly spaced)


class _StepClock:
    """Times training steps and epoch ends for re-planning under a time budget."""

    def __init__(self) -> None:
        self.steps: list[float] = []  # seconds of each step so far
        self.epoch_ends: list[float] = []  # seconds of each end-of-epoch evaluation

    def step_seconds(self) -> float:
        """Median of the recent steps; the first step counts only while it is alone."""
        recent = self.steps[1:][-STEP_WINDOW:] or self.steps
        return statistics.median(recent) if recent else 0.0

    def epoch_end_seconds(self) -> float:
        return statistics.median(self.epoch_ends) if self.epoch_ends else 0.0


def _clone_state(obj: Any) -> Any:
    """A copy of an optimizer state dict: tensors cloned, dicts and lists rebuilt, other
    values (numbers, strings, None, tuples of them) shared. copy.deepcopy did the same at
    ~120 us of Python per tensor: 12% of a short encode's CPU time, once per epoch."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: _clone_state(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clone_state(v) for v in obj]
    return obj


def _freeze_epoch(planned: int) -> int:
    """The epoch from which the weight steps are frozen and the rate weight is no longer
    steered: the last tenth of the planned epochs, at least the last one."""
    return planned - max(1, planned // 10)


@dataclass
class GroupData:
    """A group's frames as training tensors (on the training device)."""

    t: Tensor  # (N,) frame positions (i + 0.5) / group_size
    targets: tuple[Tensor, ...]  # planes in [0, 1], batch first (see frames.frame_planes)
    inputs: Tensor | None  # (N, 3, H', W') content-encoder input, embed stem only
    pixels: int  # N * W * H
    # the targets in a shuffling head's sub-pixel layout (frames.subpixel_targets): the
    # training loss skips the shuffle (None without one, or for odd picture sizes)
    subpixel: tuple[Tensor, ...] | None = None


def group_data(frames: list[Frame], geo: Geometry, cfg: ModelConfig, device: str) -> GroupData:
    planes = [frame_planes(f, geo) for f in frames]
    targets = tuple(
        torch.from_numpy(np.stack([p[i] if p[i].ndim == 3 else p[i][None] for p in planes])).to(
            device
        )
        for i in range(len(planes[0]))
    )
    inputs = None
    if cfg.stem == "embed":
        stacked = np.stack([encoder_input(p, geo) for p in planes])
        inputs = torch.from_numpy(stacked).to(device).contiguous(memory_format=torch.channels_last)
    n = len(frames)
    t = (torch.arange(n, dtype=torch.float32) + 0.5) / cfg.group_size
    sub = subpixel_targets(targets, geo) if cfg.head_shuffle else None
    return GroupData(t.to(device), targets, inputs, n * geo.width * geo.height, sub)


class Trainer:
    """The encoder's trainable state, kept across groups."""

    def __init__(
        self,
        cfg: ModelConfig,
        geo: Geometry,
        *,
        device: str = "cpu",
        seed: int = 0,
        lam: float = 0.5,
        embed_bits: int = 6,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        torch.manual_seed(seed)
        self.clock = clock  # seconds for the time budget (wall, or this process's CPU time)
        self.cfg, self.geo, self.device = cfg, geo, device
        self.net = InrNet(cfg, cfg.grid(geo.width, geo.height), embed_bits).to(device)
        self.encoder = (
            ContentEncoder(cfg.blocks + int(cfg.head_shuffle), cfg.embed_dim).to(device)
            if cfg.stem == "embed"
            else None
        )
        self.calibrated = False
        self.lam_scale: float | None = lam  # first lam = lam_scale * MSE / target bpp (first group)
        self.lam = 0.0  # current rate weight: loss = MSE + lam * bits per pixel
        self.ref: list[tuple[Tensor, Tensor]] | None = None  # previous group's integers
        self.rng = np.random.default_rng(seed)
        self.fit_ended: float | None = None  # perf_counter() when the last fit returned
        # seconds from the end of the last fit to the start of the next (the previous
        # group's coding and reconstruction, and reading this group's frames)
        self.coding_seconds: float | None = None
        self.code_probe: float | None = None  # seconds of one trial coding of the network
        self.restores = 0  # times training diverged and went back to a good epoch (all groups)

    def _embed(self, inputs: Tensor, quantized: bool = True) -> tuple[Tensor | None, Tensor | None]:
        """(embedding as the stem sees it, its integer values) for a batch of inputs."""
        if self.encoder is None:
            return None, None
        e = self.encoder(inputs)  # (B, d, h0, w0)
        if not quantized:
            return e, None
        return self.net.quantize_embedding(e)

    def _calibrate(self, data: GroupData) -> None:
        hooks = [
            layer.register_forward_pre_hook(lambda m, args: m.init_steps(args[0]))
            for layer in self.net.layers
        ]
        with torch.no_grad():
            idx = torch.arange(min(2, data.t.shape[0]), device=data.t.device)
            emb, _ = (
                self._embed(data.inputs[idx], quantized=False)
                if data.inputs is not None
                else (None, None)
            )
            self.net(self.net.pe(data.t[idx]), emb, t=data.t[idx])
        for h in hooks:
            h.remove()
        self.calibrated = True

    def _weight_bits(self) -> float:
        """Empirical entropy of the current integers (what the coder will spend)."""
        bits = 0.0
        with torch.no_grad():
            for i, layer in enumerate(self.net.layers):
                qw, qb = layer.int_weights()
                if self.ref is not None:
                    qw, qb = qw - self.ref[i][0], qb - self.ref[i][1]
                bits += empirical_bits(qw.cpu().numpy().astype(np.int64))
                bits += empirical_bits(qb.cpu().numpy().astype(np.int64)) + 100.0
        return bits + self.net.grid_bits()

    def fit(
        self,
        data: GroupData,
        *,
        epochs: int,
        lr: float,
        batch: int,
        budget_bits: float,
        seconds: float | None,
        residual: bool,
        prune: float = 0.0,
        on_epoch: EpochFn | None = None,
    ) -> int:
        """Train on one group; returns the number of epochs run (the last may be partial).

        `seconds`: the time this group may take, training, coding and reconstruction
        together (None: no limit, `epochs` epochs).
        """
        entered = self.clock()
        if self.fit_ended is not None:
            self.coding_seconds = entered - self.fit_ended
        try:
            return self._fit(
                data, epochs, lr, batch, budget_bits, seconds, residual, prune, on_epoch, entered
            )
        finally:
            self.fit_ended = self.clock()

    def _replan(
        self, clock: _StepClock, step: int, most: int, steps_per_epoch: int, left: float
    ) -> int:
        """The total number of steps that fits in `left` seconds from now, after `step`."""
        per_step = clock.step_seconds() + clock.epoch_end_seconds() / steps_per_epoch
        if self.coding_seconds is not None:
            reserve = self.coding_seconds
        else:
            probe = self.code_probe or 0.0
            reserve = CODE_PASSES * probe + RECON_EPOCHS * steps_per_epoch * per_step
        affordable = math.floor((left - reserve) / per_step) if per_step > 0 else most
        return max(step, min(most, step + affordable))

    def _fit(
        self,
        data: GroupData,
        epochs: int,
        lr: float,
        batch: int,
        budget_bits: float,
        seconds: float | None,
        residual: bool,
        prune: float,
        on_epoch: EpochFn | None,
        entered: float,
    ) -> int:
        if not self.calibrated:
            self._calibrate(data)
        if seconds is not None and self.coding_seconds is None and self.code_probe is None:
            began = self.clock()
            layers, _ = self.export(False, None)
            encode_group(GroupCode(data.t.shape[0], layers))
            self.code_probe = self.clock() - began
        for layer in self.net.layers:  # residual groups keep the previous group's steps
            layer.w_logstep.requires_grad_(not residual)
            layer.b_logstep.requires_grad_(not residual)
        params = [p for p in self.net.parameters() if p.requires_grad]
        if self.encoder is not None:
            params += list(self.encoder.parameters())
        opt = torch.optim.Adam(params, lr=lr, fused=True)
        n = data.t.shape[0]
        steps_per_epoch = -(-n // batch)
        most = epochs * steps_per_epoch
        total = most  # steps planned (re-planned under a time budget)
        clock = _StepClock()
        step, ran = 0, 0
        pruned = frozen = False
        ref = self.ref if residual else None
        recent: list[float] = []  # training MSE of the last epochs of this phase
        last_mode = self.net.mode
        # The state restored when an epoch diverges: the start of the last epoch that trained
        # well, not its end. An epoch's training MSE is measured before each step's update,
        # so it does not vouch for the state its last steps left (measured: a 10 CPU-s/frame
        # encode whose blow-up began in such steps restored that state five times in a row,
        # ending training after 22 of its 80 CPU-s at 23.8 dB); the next epoch does.
        snapshot = self._snapshot(opt)
        pending = snapshot  # the start of this epoch, vouched for once this epoch trains well
        restores = 0
        psnr: float | None = None  # the last progress PSNR and when it was measured
        psnr_at = 0.0
        self.net.train()
        for epoch in range(epochs):
            if step >= total:
                break
            ran = epoch + 1
            perm = torch.from_numpy(self.rng.permutation(n)).to(data.t.device)
            mse_sum, seen, emb_ints = 0.0, 0, []
            for s in range(steps_per_epoch):
                if step >= total:
                    break
                began = self.clock()
                planned = -(-total // steps_per_epoch)  # epochs, the last maybe partial
                if prune > 0 and not pruned and step >= (planned // 2) * steps_per_epoch:
                    self._prune(prune)
                    pruned = True
                freeze_at = _freeze_epoch(planned) * steps_per_epoch
                if not residual and not frozen and step >= freeze_at:
                    self._freeze_steps()  # the last epochs adapt the weights to the coded steps
                    frozen = True
                phase = step / max(1, total)
                mode = "float" if phase < FLOAT_UNTIL else "noise" if phase < NOISE_UNTIL else "ste"
                if mode != self.net.mode:
                    self.net.set_mode(mode)
                self.net.set_observing(step % RATE_EVERY == 0)
                idx = perm[s * batch : (s + 1) * batch]
                warm = max(1, total // 20)
                frac = min(1.0, step / max(1, total - 1))
                scale = (
                    (step + 1) / warm
                    if step < warm
                    else 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * frac))
                )
                for g in opt.param_groups:
                    g["lr"] = lr * min(1.0, scale)
                emb, eint = (
                    self._embed(data.inputs[idx]) if data.inputs is not None else (None, None)
                )
                if data.subpixel is not None:
                    out = self.net(self.net.pe(data.t[idx]), emb, t=data.t[idx], subpixel=True)
                    dist = subpixel_loss(out, tuple(tg[idx] for tg in data.subpixel), self.geo)
                else:
                    out = self.net(self.net.pe(data.t[idx]), emb, t=data.t[idx])
                    dist = plane_loss(out, tuple(tg[idx] for tg in data.targets), self.geo)
                loss = dist
                if self.lam > 0 and step % RATE_EVERY == 0:
                    bits = sum(
                        (
                            layer.rate_bits(ref[i] if ref else None)
                            for i, layer in enumerate(self.net.layers)
                        ),
                        torch.zeros((), device=out.device),
                    )
                    bits = bits + self.net.grid_rate_bits()
                    if eint is not None:
                        bits = bits + laplace_bits(eint) * (n / idx.numel())
                    loss = loss + (RATE_EVERY * self.lam / data.pixels) * bits
                if eint is not None:
                    e = torch.nan_to_num(torch.round(eint.detach()))  # NaN if diverging
                    emb_ints.append(e.cpu().numpy().astype(np.int64))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                mse_sum += float(dist.detach()) * idx.numel()
                seen += idx.numel()
                step += 1
                now = self.clock()
                clock.steps.append(now - began)
                if seconds is not None:
                    left = seconds - (now - entered)
                    total = self._replan(clock, step, most, steps_per_epoch, left)
            ended = self.clock()
            planned = -(-total // steps_per_epoch)
            target = 0.97 * max(budget_bits, 1.0)
            mse = mse_sum / max(seen, 1)
            if self.net.mode != last_mode:  # a new phase: its first losses are its own
                recent, last_mode = [], self.net.mode
            diverged = not math.isfinite(mse) or bool(recent and mse > DIVERGED * min(recent))
            if diverged:
                # back to the start of the last epoch that trained well (or the start) at
                # half the learning rate; past MAX_RESTORES, training of this group ends there
                self._restore(snapshot, opt)
                pending = snapshot  # the next epoch starts from it
                lr *= 0.5
                restores += 1
                self.restores += 1
                emb_ints = []  # the diverged epoch's embeddings are not the state's
            else:
                recent = (recent + [mse])[-3:]
                snapshot, pending = pending, self._snapshot(opt)
            est = self._weight_bits() + (
                empirical_bits(np.concatenate([e.reshape(-1) for e in emb_ints]))
                if emb_ints
                else 0.0
            )
            if diverged:
                pass
            elif self.lam == 0.0 and epoch + 1 >= planned // 5:  # rate term from 20% on:
                # lam ~ -dD/dR at the target rate (later groups keep the last group's lam)
                self.lam = (self.lam_scale or 0.5) * mse / (target / data.pixels)
            elif self.lam > 0 and epoch + 1 < _freeze_epoch(planned):
                f = min(1.3, 1.0 + 0.006 * steps_per_epoch)  # steer towards the budget
                self.lam *= float(np.clip(est / target, 1.0 / f, f))
            if on_epoch is not None:
                last = epoch + 1 >= planned or restores > MAX_RESTORES or step >= total
                if last or psnr is None or self.clock() - psnr_at >= PSNR_EVERY_S:
                    psnr, psnr_at = self._psnr_estimate(data), self.clock()
                on_epoch(epoch + 1, planned, psnr, est / data.pixels)
            clock.epoch_ends.append(self.clock() - ended)
            if restores > MAX_RESTORES:
                break
        self.net.set_mode("ste")
        self.net.eval()
        return ran

    def _snapshot(self, opt: torch.optim.Optimizer) -> dict[str, Any]:
        """A copy of the trainable state (network, content encoder, optimizer)."""
        return {
            "net": {k: v.detach().clone() for k, v in self.net.state_dict().items()},
            "encoder": {k: v.detach().clone() for k, v in self.encoder.state_dict().items()}
            if self.encoder is not None
            else None,
            "opt": _clone_state(opt.state_dict()),
        }

    def _restore(self, snapshot: dict[str, Any], opt: torch.optim.Optimizer) -> None:
        self.net.load_state_dict(snapshot["net"])
        if self.encoder is not None:
            self.encoder.load_state_dict(snapshot["encoder"])
        opt.load_state_dict(_clone_state(snapshot["opt"]))

    def _psnr_estimate(self, data: GroupData) -> float:
        """Mean PSNR of EVAL_FRAMES evenly spaced frames through the rounded network (the
        decoder's integers up to step coding): what decoding would give, estimated."""
        n = data.t.shape[0]
        idx = torch.linspace(0, n - 1, min(n, EVAL_FRAMES)).round().long().to(data.t.device)
        mode = self.net.mode
        self.net.eval()
        self.net.set_mode("ste")
        with torch.no_grad():
            emb, _ = self._embed(data.inputs[idx]) if data.inputs is not None else (None, None)
            out = self.net(self.net.pe(data.t[idx]), emb, t=data.t[idx])
            scores = frame_psnrs(out, tuple(tg[idx] for tg in data.targets), self.geo)
        self.net.set_mode(mode)
        self.net.train()
        return float(np.mean(scores))

    def _freeze_steps(self) -> None:
        """Snap the weight and bias steps to their coded values and stop learning them."""
        with torch.no_grad():
            for layer in self.net.layers:
                base, k = code_steps(layer.w_logstep.exp().cpu().numpy().astype(np.float64))
                steps = steps_from_code(f32_step(float(base)), k).astype(np.float64)
                layer.w_logstep.copy_(
                    torch.from_numpy(np.log(steps)).float().reshape(layer.w_logstep.shape)
                )
                layer.b_logstep.fill_(math.log(float(f32_step(float(layer.b_logstep.exp())))))
                layer.w_logstep.requires_grad_(False)
                layer.b_logstep.requires_grad_(False)

    def _prune(self, fraction: float) -> None:
        """Zero the smallest `fraction` of every conv weight tensor (kept zero from now on)."""
        with torch.no_grad():
            for layer in self.net.layers:
                w = layer.weight.abs().reshape(-1)
                if w.numel() < 64:
                    continue
                threshold = torch.quantile(w.float().cpu(), fraction).to(w.device)
                layer.mask.copy_((layer.weight.abs() > threshold).float())
                layer.pruned = True

    def export(
        self, residual: bool, ref: list[LayerCode] | None, coarser: int = 0
    ) -> tuple[list[LayerCode], bool]:
        """Code the network: (layers, residual).

        `coarser` raises (negative: lowers) every weight step by coarser/32 octave (full
        groups; rate control).
        A residual group that cannot keep its reference's steps is exported as full.
        """
        codes = []
        for i, layer in enumerate(self.net.layers):
            act_max = int(-layer.lo)
            w = (layer.weight * layer.mask).detach().cpu().numpy()
            b = layer.bias.detach().cpu().numpy()
            is_embed = layer is self.net.stem_conv and self.encoder is not None
            a_step = f32_step(float(self.net.embed_step() if is_embed else layer.a_step()))
            if residual and ref is not None:
                base, k, b_step = ref[i].w_base, ref[i].w_k, ref[i].b_step
            else:
                base, k = code_steps(
                    np.array([f32_step(float(s)) for s in layer.w_logstep.exp().detach().cpu()])
                )
                k = np.clip(k + coarser, -STEP_K_MAX, STEP_K_MAX)
                b_step = f32_step(float(layer.b_logstep.detach().exp()))
            ints = quantize_weight(w, steps_from_code(base, k))
            bad = exactness_violations(ints, act_max)
            while bad.size:
                if residual:
                    return self.export(False, None, coarser)
                k = k.copy()
                k[bad if k.size > 1 else 0] += 1
                ints = quantize_weight(w, steps_from_code(base, k))
                bad = exactness_violations(ints, act_max)
            b_ints = quantize_weight(b, np.array([b_step], dtype=np.float32))
            codes.append(LayerCode(a_step, base, k, ints, b_step, b_ints))
        return codes, residual

    def commit(self, codes: list[LayerCode]) -> None:
        """Make the training state use the coded steps; remember the integers as reference."""
        self.ref = []
        with torch.no_grad():
            for layer, c in zip(self.net.layers, codes, strict=True):
                steps = torch.from_numpy(steps_from_code(c.w_base, c.w_k).astype(np.float32))
                layer.w_logstep.copy_(
                    torch.log(steps.double()).float().reshape(layer.w_logstep.shape)
                )
                layer.b_logstep.fill_(math.log(float(c.b_step)))
                top = (
                    self.net.embed_hi if layer is self.net.stem_conv and self.encoder else layer.hi
                )
                layer.a_max.fill_(float(c.a_step) * top)
                dev = layer.weight.device
                self.ref.append(
                    (
                        torch.from_numpy(c.w_ints.astype(np.float32)).to(dev),
                        torch.from_numpy(c.b_ints.astype(np.float32)).to(dev),
                    )
                )

    def embedding_ints(self, data: GroupData, codes: list[LayerCode]) -> np.ndarray | None:
        """The group's embeddings as the integers FRAME units carry: (N, d, h0, w0)."""
        if self.encoder is None or data.inputs is None:
            return None
        stem = self.net.stem
        step = float(codes[self.net.layers.index(stem)].a_step)
        out = []
        with torch.no_grad():
            for i in range(0, data.inputs.shape[0], 8):
                e = self.encoder(data.inputs[i : i + 8]).double().cpu().numpy()
                top = self.net.embed_hi
                out.append(np.clip(np.rint(e / step), -top - 1, top).astype(np.int64))
        return np.concatenate(out)

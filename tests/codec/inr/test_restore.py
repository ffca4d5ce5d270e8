"""The divergence guard restores a state that trained well, not the end of the epoch
whose last steps began a blow-up (an epoch's training MSE is measured before each
step's update, so it cannot vouch for the state those steps left)."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from nvc.codec.base import StreamInfo
from nvc.codec.inr import train
from nvc.codec.inr.config import InrConfig
from nvc.codec.inr.plan import make_plan
from nvc.codec.inr.train import Trainer, group_data
from nvc.media import synthetic_clip

EPOCHS = 30  # 2 steps each; the float phase (no phase change resets the guard) is epochs 1-9
WRECKED_AT = 8  # the optimizer step after which the weights are wrecked: epoch 4's last


@pytest.fixture(autouse=True)
def _psnr_every_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the progress PSNR of every epoch (not throttled)."""
    monkeypatch.setattr(train, "PSNR_EVERY_S", 0.0)


def test_a_blow_up_in_an_epochs_last_step_is_undone_and_training_goes_on() -> None:
    clip = synthetic_clip(48, 32, 4, fps=Fraction(25), format="yuv420p", seed=13)
    stream = StreamInfo(48, 32, Fraction(25), "yuv420p", frame_count=4)
    plan = make_plan(stream, InrConfig(preset="realtime", bpp=2.0, group_size=4))
    trainer = Trainer(plan.model, plan.geometry)
    data = group_data(clip, plan.geometry, plan.model, "cpu")
    steps = 0

    def wreck(opt: torch.optim.Optimizer, args: object, kwargs: object) -> None:
        nonlocal steps
        steps += 1
        if steps == WRECKED_AT:  # as a blow-up that began in the epoch's last step
            gen = torch.Generator().manual_seed(0)
            with torch.no_grad():
                for layer in trainer.net.layers:
                    w = layer.weight
                    w.add_(torch.randn(w.shape, generator=gen) * 20 * w.std())

    psnrs: list[float] = []
    handle = register_optimizer_step_post_hook(wreck)
    try:
        ran = trainer.fit(
            data,
            epochs=EPOCHS,
            lr=1e-3,
            batch=2,
            budget_bits=1e5,
            seconds=None,
            residual=False,
            on_epoch=lambda e, n, psnr, bpp: psnrs.append(psnr),
        )
    finally:
        handle.remove()
    assert steps >= WRECKED_AT
    # one restore, to the start of epoch 4 (the end of epoch 3), and training went on:
    # restoring epoch 4's end (the wrecked state) again and again ended it at epoch 9
    assert trainer.restores == 1
    assert ran == EPOCHS
    assert psnrs[4] >= psnrs[2] - 1.0, psnrs[:6]  # epoch 5 reports the restored state
    assert psnrs[-1] > psnrs[2]

"""The fitting loop: the divergence guard and the training phases."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

from nvc.codec.base import StreamInfo
from nvc.codec.inr import train
from nvc.codec.inr.config import InrConfig
from nvc.codec.inr.plan import make_plan
from nvc.codec.inr.train import Trainer, group_data
from nvc.media import synthetic_clip


@pytest.fixture(autouse=True)
def _psnr_every_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the progress PSNR of every epoch (not throttled)."""
    monkeypatch.setattr(train, "PSNR_EVERY_S", 0.0)


def _trainer(frames: int = 4) -> tuple[Trainer, object]:
    clip = synthetic_clip(48, 32, frames, fps=Fraction(25), format="yuv420p", seed=13)
    stream = StreamInfo(48, 32, Fraction(25), "yuv420p", frame_count=frames)
    plan = make_plan(stream, InrConfig(preset="realtime", bpp=2.0, group_size=frames))
    trainer = Trainer(plan.model, plan.geometry)
    return trainer, group_data(clip, plan.geometry, plan.model, "cpu")


def _fit(trainer: Trainer, data: object, lr: float, epochs: int, seen: list) -> None:
    trainer.fit(
        data,  # type: ignore[arg-type]
        epochs=epochs,
        lr=lr,
        batch=2,
        budget_bits=1e5,
        seconds=None,
        residual=False,
        on_epoch=lambda e, n, psnr, bpp: seen.append((trainer.net.mode, psnr)),
    )


def test_a_diverging_run_goes_back_to_a_good_state() -> None:
    trainer, data = _trainer()
    seen: list = []
    _fit(trainer, data, lr=3.0, epochs=12, seen=seen)  # far too large: Adam blows up
    assert trainer.restores >= 1
    assert all(torch.isfinite(p).all() for p in trainer.net.parameters())


def test_a_sane_run_is_left_alone_and_goes_through_the_three_phases() -> None:
    trainer, data = _trainer()
    seen: list = []
    _fit(trainer, data, lr=1e-3, epochs=10, seen=seen)
    assert trainer.restores == 0
    modes = [m for m, _ in seen]
    assert modes[0] == "float" and "noise" in modes and modes[-1] == "ste"
    assert modes == sorted(modes, key=["float", "noise", "ste"].index)  # in that order


def test_the_progress_psnr_is_throttled_but_the_last_epoch_is_measured(monkeypatch) -> None:
    monkeypatch.setattr(train, "PSNR_EVERY_S", 1e9)
    trainer, data = _trainer()
    calls: list[int] = []
    estimate = trainer._psnr_estimate
    monkeypatch.setattr(trainer, "_psnr_estimate", lambda d: calls.append(1) or estimate(d))
    seen: list = []
    _fit(trainer, data, lr=1e-3, epochs=6, seen=seen)
    assert len(seen) == 6 and len(calls) == 2  # the first epoch and the last
    assert seen[-1][1] == estimate(data)  # the last report is the final state's

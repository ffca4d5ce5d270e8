"""Training: data sources, the staged loop, checkpoints and resume, weights export, CLI."""

from __future__ import annotations

import argparse
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from nvc.codec.conditional import weights as wt
from nvc.codec.conditional.cli import add_parser
from nvc.codec.conditional.data import ImageAnimator, SyntheticClips, TrainingData, VideoClips
from nvc.codec.conditional.model import FMModel, ModelConfig
from nvc.codec.conditional.train import TrainConfig, Trainer
from nvc.errors import NvcError
from nvc.media import synthetic_clip

from ...conftest import write_frames
from .conftest import TINY


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    d = tmp_path / "photos"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        img = (rng.random((90, 120, 3)) * 255).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        with av.open(str(d / f"p{i}.png"), "w") as c:
            s = c.add_stream("png")
            s.width, s.height, s.pix_fmt = 120, 90, "rgb24"
            for packet in s.encode(frame):
                c.mux(packet)
            for packet in s.encode(None):
                c.mux(packet)
    return d


@pytest.fixture
def video_dir(tmp_path: Path) -> Path:
    d = tmp_path / "videos"
    d.mkdir()
    write_frames(d / "a.y4m", synthetic_clip(64, 48, 12, seed=3))
    return d


def test_sources_give_96_channel_clips(image_dir: Path, video_dir: Path) -> None:
    rng = np.random.default_rng(1)
    for src in (ImageAnimator([image_dir]), VideoClips([video_dir], pool=2), SyntheticClips()):
        clip = src.sample(rng, 3, 32)
        assert clip.shape == (3, 96, 4, 4)
        assert float(clip.min()) >= 0 and float(clip.max()) <= 255
        assert torch.equal(clip, torch.round(clip))
    data = TrainingData([str(video_dir)], [str(image_dir)], synthetic=True, seed=2)
    assert "videos" in data.describe() and "images" in data.describe()
    assert data.batch(3, 2, 32).shape == (3, 2, 96, 4, 4)
    with pytest.raises(NvcError):
        TrainingData(images=[str(image_dir / "missing")])


def _config(out: Path, **kw: object) -> TrainConfig:
    base = dict(
        out=str(out),
        intra_steps=1,
        inter_steps=1,
        multi_steps=1,
        frames=3,
        batch=2,
        crop=32,
        log_every=1,
        checkpoint_every=1e9,
    )
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def test_staged_training_checkpoint_and_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nvc.codec.conditional.train as train_mod

    monkeypatch.setitem(
        train_mod.VARIANTS, "tiny", ModelConfig("tiny", *list(TINY.to_dict().values())[1:])
    )
    lines: list[str] = []
    t = Trainer(_config(tmp_path, variant="tiny", multi_steps=2))
    stages = []
    t.run(on_step=lambda s: stages.append(s.stage), log=lines.append)
    assert stages == [1, 2, 3, 3] and t.step == 4 and len(lines) == 4
    assert (tmp_path / "checkpoint.pt").is_file()
    # stop after 2 steps (a tiny time limit ends the first run), then resume to the end
    out2 = tmp_path / "second"
    a = Trainer(_config(out2, variant="tiny", multi_steps=2, time_limit=0.0))
    a.run()
    assert a.step == 0
    a.train_step()
    a.train_step()
    a.save()
    b = Trainer(_config(out2, variant="tiny", multi_steps=2), resume=True)
    assert b.step == 2 and b.elapsed == pytest.approx(a.elapsed)
    for (k, v), w in zip(a.model.state_dict().items(), b.model.state_dict().values(), strict=True):
        assert torch.equal(v, w), k
    assert b.opt.state_dict()["state"].keys() == a.opt.state_dict()["state"].keys()
    b.run()
    assert b.step == 4
    # a fresh run from the same seed that never stopped reaches the same weights
    c = Trainer(_config(tmp_path / "third", variant="tiny", multi_steps=2))
    c.run()
    for v, w in zip(b.model.state_dict().values(), c.model.state_dict().values(), strict=True):
        assert torch.allclose(v, w, atol=1e-5)
    digest = b.export_weights(tmp_path / "w.pt")
    loaded = wt.load_weights(tmp_path / "w.pt")
    assert isinstance(loaded, FMModel) and wt.weights_hash(loaded) == digest
    assert wt.load_info(tmp_path / "w.pt")["steps"] == 4
    with pytest.raises(NvcError, match="nothing to resume"):
        Trainer(_config(tmp_path / "empty", variant="tiny"), resume=True)


def test_train_command_parses(tmp_path: Path) -> None:
    p = argparse.ArgumentParser(prog="nvc")
    sub = p.add_subparsers(dest="command")
    add_parser(sub)
    args = p.parse_args(
        ["train", "fm", "--out", str(tmp_path), "--images", "a", "--images", "b", "--minutes", "2"]
    )
    assert args.family == "fm" and args.images == ["a", "b"] and args.minutes == 2.0
    assert callable(args.run)
    with pytest.raises(SystemExit):
        p.parse_args(["train", "inr", "--out", "x"])


def test_residual_stage_trains_only_the_residual_codec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nvc.codec.conditional.train as train_mod

    monkeypatch.setitem(
        train_mod.VARIANTS, "tiny", ModelConfig("tiny", *list(TINY.to_dict().values())[1:])
    )
    # from scratch: stages 1, 2, then 4; the residual codec starts as the intra codec
    t = Trainer(_config(tmp_path / "a", variant="tiny", multi_steps=0, residual_steps=2))
    assert t.model.residual is not None and t.model.residual_coder is t.model.residual
    stages = []
    t.run(on_step=lambda s: stages.append(s.stage))
    assert stages == [1, 2, 4, 4]
    base = tmp_path / "base.pt"
    Trainer(_config(tmp_path / "b", variant="tiny", multi_steps=0)).export_weights(base)
    # --init: a model without a residual codec gains one, and only that one learns
    c = Trainer(
        _config(
            tmp_path / "c",
            variant="tiny",
            intra_steps=0,
            inter_steps=0,
            multi_steps=0,
            residual_steps=3,
            init=str(base),
        )
    )
    assert c.model.residual is not None
    start = {k: v.clone() for k, v in c.model.state_dict().items()}
    for k, v in c.model.intra.state_dict().items():
        assert torch.equal(start[f"residual.{k}"], v), k
    c.run()
    after = c.model.state_dict()
    frozen = [k for k in start if not k.startswith("residual.")]
    assert all(torch.equal(after[k], start[k]) for k in frozen)
    learnt = [k for k, _ in c.model.residual.named_parameters()]
    changed = [k for k in learnt if not torch.equal(after[f"residual.{k}"], start[f"residual.{k}"])]
    assert len(changed) >= 0.8 * len(learnt), sorted(set(learnt) - set(changed))
    out = tmp_path / "res.pt"
    digest = c.export_weights(out)
    assert wt.short_hash(wt.load_weights(base)) != digest[:16]
    assert wt.load_weights(out).residual is not None
    info = wt.load_info(out)
    assert info["init"] == "base.pt" and info["init_info"]["stage_steps"] == [1, 1, 0, 0]
    with pytest.raises(NvcError, match="--init"):
        Trainer(_config(tmp_path / "d", variant="realtime", residual_steps=1, init=str(base)))
    with pytest.raises(NvcError, match="--init: cannot read"):
        Trainer(_config(tmp_path / "e", variant="tiny", init=str(tmp_path / "missing.pt")))
    assert not (tmp_path / "d").exists() and not (tmp_path / "e").exists()  # nothing written

"""Training: data sources, the staged loop, checkpoints and resume, weights export, CLI."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from nvc.codec.conditional import export
from nvc.codec.conditional import weights as wt
from nvc.codec.conditional.cli import add_parser
from nvc.codec.conditional.data import (
    ImageAnimator,
    SyntheticClips,
    TrainingData,
    VideoClips,
    parse_span,
)
from nvc.codec.conditional.distributed import World
from nvc.codec.conditional.model import FMModel, ModelConfig
from nvc.codec.conditional.train import TrainConfig, Trainer
from nvc.errors import NvcError
from nvc.media import open_video, synthetic_clip

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
    for src in (ImageAnimator([image_dir]), VideoClips([video_dir]), SyntheticClips()):
        clip = src.sample(rng, 3, 32)
        assert clip.shape == (3, 96, 4, 4)
        assert float(clip.min()) >= 0 and float(clip.max()) <= 255
        assert torch.equal(clip, torch.round(clip))
    data = TrainingData([str(video_dir)], [str(image_dir)], synthetic=True, seed=2)
    assert "videos" in data.describe() and "images" in data.describe()
    assert data.batch(3, 2, 32).shape == (3, 2, 96, 4, 4)
    with pytest.raises(NvcError):
        TrainingData(images=[str(image_dir / "missing")])


def test_video_spans_and_small_clips(video_dir: Path) -> None:
    """FILE@A-B keeps frames A..B-1 (a clip split in time between training and testing);
    clips smaller than the crop are left out by name; samples are a function of the
    generator alone (what exact resume needs)."""
    clip = video_dir / "a.y4m"  # 64x48, 12 frames
    assert parse_span(f"{clip}@2-5") == (clip, 2, 5) and parse_span(clip) == (clip, 0, None)
    assert parse_span(f"{clip}@10-") == (clip, 10, None)
    for bad in ("@5-2", "@x-3", "@4"):
        with pytest.raises(NvcError, match="bad frame span"):
            parse_span(f"{clip}{bad}")
    part = VideoClips([f"{clip}@2-5"])
    assert [len(p) for _, p in part.clips] == [3] and part.files == ["a.y4m@2-5"]
    whole = VideoClips([clip])
    with open_video(clip) as reader:
        frames = list(reader)
    assert np.array_equal(part.clips[0][1][0][0], frames[2].planes[0])
    assert np.array_equal(whole.clips[0][1][11][2], frames[11].planes[2])
    a = whole.sample(np.random.default_rng(5), 3, 32)
    b = whole.sample(np.random.default_rng(5), 3, 32)
    assert torch.equal(a, b) and a.shape == (3, 96, 4, 4)
    mixed = VideoClips([video_dir, f"{clip}@0-4"], crop=48)
    assert mixed.files == ["a.y4m", "a.y4m@0-4"] and not mixed.skipped
    with pytest.raises(NvcError, match="no usable videos"):
        VideoClips([clip], crop=64)  # 64x48 frames cannot give 64x64 crops
    data = TrainingData([str(clip), str(clip) + "@0-3"], synthetic=True, crop=48)
    assert "videos a.y4m, a.y4m@0-3" in data.describe()


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
        assert torch.equal(v, w)  # exactly: a resumed run trains as an uninterrupted one
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
    assert info["init"] == "base.pt" and info["init_info"]["stage_steps"] == [1, 1, 0, 0, 0]
    with pytest.raises(NvcError, match="--init"):
        Trainer(_config(tmp_path / "d", variant="realtime", residual_steps=1, init=str(base)))
    with pytest.raises(NvcError, match="--init: cannot read"):
        Trainer(_config(tmp_path / "e", variant="tiny", init=str(tmp_path / "missing.pt")))
    assert not (tmp_path / "d").exists() and not (tmp_path / "e").exists()  # nothing written


TINY2 = dataclasses.replace(
    TINY,
    variant="tiny2",
    residual_codec=True,
    image="v2",
    image_channels=96,
    image_blocks=1,
    image_hyper=8,
    image_prior=16,
    lambda_min=256.0,
    lambda_max=65536.0,
)


def _tiny_variants(monkeypatch: pytest.MonkeyPatch) -> None:
    import nvc.codec.conditional.train as train_mod

    monkeypatch.setitem(train_mod.VARIANTS, "tiny", dataclasses.replace(TINY, variant="tiny"))
    monkeypatch.setitem(train_mod.VARIANTS, "tiny2", TINY2)


def _base_weights(path: Path) -> Path:
    """A v1 model's weights (its inter codec is what a v2 model starts from)."""
    torch.manual_seed(3)
    wt.save_weights(FMModel(dataclasses.replace(TINY, variant="tiny2")), path)
    return path


def test_mixed_stage_resumes_exactly_and_logs(
    tmp_path: Path, video_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A v2 image codec on a v1 inter codec (--init), real-video windows, the mixed stage:
    a run stopped after 2 steps and resumed ends bit-identical to one that never stopped;
    the inter codec stays frozen; log.jsonl records steps, step time and CPU time."""
    _tiny_variants(monkeypatch)
    base = _base_weights(tmp_path / "base.pt")
    kw = dict(
        variant="tiny2",
        intra_steps=0,
        inter_steps=0,
        multi_steps=0,
        mixed_steps=2,
        frames=2,
        videos=[str(video_dir)],
        init=str(base),
        log_every=1,
    )
    whole = Trainer(_config(tmp_path / "whole", **kw))
    inter0 = {k: v.clone() for k, v in whole.model.inter.state_dict().items()}
    assert all(
        torch.equal(v, wt.load_weights(base).inter.state_dict()[k]) for k, v in inter0.items()
    )
    stages: list[int] = []
    whole.run(on_step=lambda s: stages.append(s.stage))
    assert stages == [1, 4] and whole.step == 2
    assert all(torch.equal(v, inter0[k]) for k, v in whole.model.inter.state_dict().items())
    first = Trainer(_config(tmp_path / "parts", steps=1, **kw))
    first.run()
    assert first.step == 1
    second = Trainer(_config(tmp_path / "parts", **kw), resume=True)
    assert second.step == 1 and second.cpu_seconds == pytest.approx(first.cpu_seconds)
    second.run()
    a, b = whole.model.state_dict(), second.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    lines = [json.loads(x) for x in (tmp_path / "parts" / "log.jsonl").read_text().splitlines()]
    assert [x.get("event") for x in lines if "event" in x] == ["start", "stop", "start", "stop"]
    # each run's start line records its learning rate (runs may continue at another one)
    assert [x["lr"] for x in lines if x.get("event") == "start"] == [first.config.lr] * 2
    steps = [(x["step"], x["stage"]) for x in lines if "event" not in x]
    assert steps == [(1, 1), (2, 4)]
    cpu = [x["cpu"] for x in lines if "cpu" in x]
    assert cpu == sorted(cpu) and second.cpu_seconds > first.cpu_seconds > 0
    digest = second.export_weights(tmp_path / "v2.pt")
    assert wt.short_hash(wt.load_weights(tmp_path / "v2.pt")) == digest[:16]
    # the same weights from the checkpoint alone (python -m nvc.codec.conditional.export)
    ckpt = tmp_path / "parts" / "checkpoint.pt"
    assert export.main([str(ckpt), str(tmp_path / "from-ckpt.pt")]) == 0
    assert wt.short_hash(wt.load_weights(tmp_path / "from-ckpt.pt")) == digest[:16]
    info = wt.load_info(tmp_path / "from-ckpt.pt")
    assert info["steps"] == 2 and info["cpu_seconds"] == pytest.approx(second.cpu_seconds, abs=1e-3)
    assert export.main([str(tmp_path / "v2.pt"), str(tmp_path / "x.pt")]) == 1  # not a checkpoint
    assert export.main([]) == 2 and not (tmp_path / "x.pt").exists()


_DDP_SCRIPT = """
import dataclasses, sys
import nvc.codec.conditional.train as train_mod
from nvc.cli import main
from tests.codec.conditional.test_train import TINY
train_mod.VARIANTS["tiny"] = dataclasses.replace(TINY, variant="tiny")
sys.exit(main(["train", "fm", *sys.argv[1:]]))
"""


def _torchrun(script: Path, args: list[str], nproc: int = 2) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += ["--nproc_per_node", str(nproc), str(script), *args]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).parents[3]))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path: Path) -> None:
    """`nvc train fm` under torchrun with 2 CPU processes (gloo, DistributedDataParallel):
    it trains, rank 0 alone writes, and a run stopped and resumed under torchrun ends with
    exactly the weights of one that never stopped."""
    script = tmp_path / "ddp.py"
    script.write_text(_DDP_SCRIPT)
    common = ["--variant", "tiny", "--intra-steps", "1", "--inter-steps", "1"]
    common += ["--multi-steps", "1", "--frames", "2", "--batch", "4", "--crop", "32"]
    done = _torchrun(script, ["--out", str(tmp_path / "a"), *common])
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("training fm-tiny from step 0") == 1  # rank 0 talks
    assert "x 2 process(es)" in done.stdout
    start = json.loads((tmp_path / "a" / "log.jsonl").read_text().splitlines()[0])
    assert start["processes"] == 2
    part = _torchrun(script, ["--out", str(tmp_path / "b"), "--steps", "2", *common])
    assert part.returncode == 0, part.stderr[-3000:]
    rest = _torchrun(script, ["--out", str(tmp_path / "b"), "--resume", *common])
    assert rest.returncode == 0, rest.stderr[-3000:]
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == 3
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_world_shares_the_batch() -> None:
    """Each of N processes takes every N-th sample; a batch that does not divide is refused."""
    assert World().share(4) == slice(0, 4, 1) and not World().distributed
    two = World(rank=1, size=2)
    assert list(range(6))[two.share(6)] == [1, 3, 5] and two.distributed
    with pytest.raises(NvcError, match="does not divide among 2"):
        two.share(3)
    assert World.from_env("cpu") == World()  # no torchrun variables: a world of one

"""`nvc train fm ...`: train the fm codec's model. Wired into nvc.cli by `add_parser`.

nvc train fm --out runs/fm --images /usr/share/wallpapers --minutes 45
nvc train fm --out runs/fm --resume --minutes 30          # continue the same run
torchrun --nproc_per_node 2 -m nvc.cli train fm --out runs/fm ...   # data parallel (DDP)
nvc train fm --out runs/res --init fm-realtime.pt --intra-steps 0 --inter-steps 0 \
    --multi-steps 0 --residual-steps 8000 --export fm-res.pt   # add a residual codec
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from nvc.argtypes import count, positive_float


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `train` command (first positional: the codec family, `fm`)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "train",
        help="train a learned codec's model (fm)",
        description="Train the fm codec's model in stages (intra, one inter frame, several "
        "inter frames with propagated error), q sampled per sample. Data: folders of videos, "
        "folders of photographs animated into clips with camera motion and moving layers, "
        "and built-in synthetic clips (the default when no folder is given). Checkpoints "
        "go to --out; --resume continues a run.",
    )
    p.add_argument("family", choices=["fm"], help="codec family to train (fm)")
    p.add_argument("--out", required=True, help="directory for checkpoints and the log")
    p.add_argument("--variant", default="realtime", help="model variant: realtime or quality")
    p.add_argument(
        "--videos", action="append", default=[], metavar="DIR", help="video folder (repeatable)"
    )
    p.add_argument(
        "--images", action="append", default=[], metavar="DIR", help="image folder (repeatable)"
    )
    p.add_argument("--synthetic", action="store_true", help="also use synthetic clips")
    p.add_argument("--intra-steps", type=count(0), default=2000, help="stage 1 steps")
    p.add_argument("--inter-steps", type=count(0), default=1000, help="stage 2 steps")
    p.add_argument("--multi-steps", type=count(0), default=2000, help="stage 3 steps")
    p.add_argument(
        "--residual-steps",
        type=count(0),
        default=0,
        help="stage 4 steps: a residual codec for inter frames, the rest frozen (default 0: none)",
    )
    p.add_argument(
        "--mixed-steps",
        type=count(0),
        default=0,
        help="after stage 4: steps alternating intra and residual steps (an image codec "
        "trained on the inter codec of --init)",
    )
    p.add_argument(
        "--init",
        metavar="WEIGHTS",
        help="start from a weights file (e.g. the shipped one) instead of random weights",
    )
    p.add_argument("--frames", type=count(1), default=4, help="frames per stage-3 sample")
    p.add_argument(
        "--rate-warmup",
        type=count(0),
        default=1000,
        help="steps over which the inter frames' rate weight rises from 0.05 to 1 (0: off)",
    )
    p.add_argument(
        "--rewarm",
        action="store_true",
        help="warm the inter rate up again from the resumed step (to wake unused latents)",
    )
    p.add_argument("--batch", type=count(1), default=8, help="samples per step")
    p.add_argument("--crop", type=count(1), default=128, help="crop size (multiple of 16)")
    p.add_argument("--lr", type=float, default=5e-4, help="learning rate")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--threads", type=count(1), help="torch CPU threads")
    p.add_argument("--seed", type=count(0), default=0, help="random seed")
    p.add_argument(
        "--minutes", type=positive_float, help="stop after this many minutes (resumable)"
    )
    p.add_argument(
        "--steps", type=count(1), help="stop after this many steps of this run (resumable)"
    )
    p.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.pt")
    p.add_argument("--export", metavar="FILE", help="write the trained weights to FILE at the end")
    p.set_defaults(run=run_train)
    return p


def run_train(args: argparse.Namespace) -> int:
    from nvc.codec.conditional.train import TrainConfig, Trainer
    from nvc.progress import Progress

    config = TrainConfig(
        out=args.out,
        variant=args.variant,
        videos=list(args.videos),
        images=list(args.images),
        synthetic=True if args.synthetic else None,
        intra_steps=args.intra_steps,
        inter_steps=args.inter_steps,
        multi_steps=args.multi_steps,
        residual_steps=args.residual_steps,
        mixed_steps=args.mixed_steps,
        init=args.init,
        frames=args.frames,
        rate_warmup=args.rate_warmup,
        rewarm=args.rewarm,
        batch=args.batch,
        crop=args.crop,
        lr=args.lr,
        device=args.device,
        threads=args.threads,
        seed=args.seed,
        time_limit=args.minutes * 60 if args.minutes else None,
        steps=args.steps,
    )
    trainer = Trainer(config, resume=args.resume)
    lead = trainer.world.rank == 0  # under torchrun only rank 0 talks and writes
    if lead:
        print(
            f"training fm-{config.variant} from step {trainer.step} to {config.total_steps} on "
            f"{trainer.device} x {trainer.world.size} process(es); data: "
            f"{trainer.data.describe()}",
            flush=True,
        )
    bar = Progress("train") if lead else None
    total = config.total_steps

    def on_step(stats: Any) -> None:
        if bar is not None:
            bar.extra = f"stage {stats.stage} bpp {stats.bpp:.3f} PSNR {stats.psnr:.2f} dB"
            bar.update(stats.step, total)

    def log(line: str) -> None:
        if bar is not None:
            if bar.enabled:
                bar.close()
            print(line, file=sys.stdout, flush=True)

    try:
        trainer.run(on_step=on_step, log=log)
    finally:
        if bar is not None:
            bar.close()
        trainer.world.close()
    if lead:
        print(f"checkpoint: {trainer.dir / 'checkpoint.pt'} (step {trainer.step})", flush=True)
    if lead and args.export:
        digest = trainer.export_weights(args.export)
        print(f"weights: {args.export} (sha256 {digest.hex()[:16]})", flush=True)
    return 0

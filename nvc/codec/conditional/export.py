"""Weights from a training checkpoint, without the training data:

    python -m nvc.codec.conditional.export training/fm/checkpoint.pt fm-realtime2.pt

Writes a weights file (weights.save_weights) whose info records the checkpoint's step,
step time, CPU time and training configuration; prints its hash. Lets a running training
be evaluated (or shipped) from its last checkpoint.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from nvc.codec.conditional.model import FMModel, ModelConfig
from nvc.codec.conditional.weights import save_weights
from nvc.errors import NvcError


def model_from_checkpoint(path: str | Path) -> tuple[FMModel, dict[str, object]]:
    """The checkpoint's model (eval mode, CPU) and what the weights' info should say."""
    try:
        blob = torch.load(Path(path), map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError) as e:
        raise NvcError(f"cannot read checkpoint {path}: {e}") from None
    if not isinstance(blob, dict) or blob.get("format") != "nvc-fm-checkpoint":
        raise NvcError(f"{path} is not an fm training checkpoint")
    model = FMModel(ModelConfig.from_dict(dict(blob["model_config"])))
    model.load_state_dict(blob["model"])
    config = dict(blob["config"])
    info: dict[str, object] = {
        "steps": int(blob["step"]),
        "train_seconds": round(float(blob["elapsed"]), 1),
        "cpu_seconds": round(float(blob.get("cpu_seconds", 0.0)), 3),
        "training": json.dumps(config, sort_keys=True),
        "checkpoint": Path(path).name,
    }
    return model.eval(), info


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m nvc.codec.conditional.export CHECKPOINT WEIGHTS", file=sys.stderr)
        return 2
    try:
        model, info = model_from_checkpoint(args[0])
    except NvcError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    digest = save_weights(model, args[1], info)
    print(f"{args[1]}: step {info['steps']}, sha256 {digest.hex()[:32]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Model weights: files, identity (a hash), and where a decoder finds them.

A weights file is `torch.save` of a plain dict (loaded with `weights_only=True`):

    {"format": "nvc-fm-weights", "version": 1, "config": ModelConfig as a dict,
     "state": the model's state_dict (float32), "info": free-form strings and numbers}

Its identity is `weights_hash`: SHA-256 over the configuration (canonical JSON) and every
tensor of the state in name order (name, shape, float32 little-endian bytes). The
sequence header carries the variant and the first 16 bytes of that hash; a decoder whose
weights hash differently refuses the stream.

A decoder looks weights up by hash: models registered in this process (`register`), the
weights shipped in the package (weights/fm-<variant>.pt), and the files listed in the
environment variable NVC_FM_WEIGHTS (os.pathsep-separated), for models a user trained.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nvc.codec.conditional.model import VARIANTS, FMModel, ModelConfig
from nvc.errors import CodecError

FORMAT = "nvc-fm-weights"
VERSION = 1
HASH_BYTES = 16  # bytes of the SHA-256 written into the sequence header
WEIGHTS_DIR = Path(__file__).parent / "weights"
ENV_VAR = "NVC_FM_WEIGHTS"

_registered: dict[bytes, FMModel] = {}
_cache: dict[str, tuple[float, FMModel, bytes]] = {}  # path -> (mtime, model, hash)


# Configuration fields added after the first weights were published, with the value that
# the older weights implicitly have: hashed only when they differ from it, so adding a
# field never changes the identity of existing weights.
_LATER_FIELDS: dict[str, object] = {
    "latent_skip": False,
    "residual_codec": False,
    "image": "v1",
    "image_channels": 0,
    "image_blocks": 0,
    "image_hyper": 0,
    "image_prior": 0,
    "lambda_min": 16.0,
    "lambda_max": 4096.0,
}


def weights_hash(model: FMModel) -> bytes:
    """SHA-256 of the model's configuration and parameters (32 bytes)."""
    h = hashlib.sha256()
    config = model.config.to_dict()
    for name, old in _LATER_FIELDS.items():
        if config.get(name) == old:
            del config[name]
    h.update(json.dumps(config, sort_keys=True).encode())
    state = model.state_dict()
    for name in sorted(state):
        t = state[name].detach().to("cpu", torch.float32).contiguous()
        h.update(name.encode() + b"\0" + repr(tuple(t.shape)).encode())
        h.update(t.numpy().astype("<f4").tobytes())
    return h.digest()


def short_hash(model: FMModel) -> bytes:
    return weights_hash(model)[:HASH_BYTES]


def save_weights(
    model: FMModel, path: str | os.PathLike[str], info: dict[str, Any] | None = None
) -> bytes:
    """Write a weights file (atomically); returns the model's hash."""
    state = {k: v.detach().to("cpu", torch.float32).clone() for k, v in model.state_dict().items()}
    blob = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config.to_dict(),
        "state": state,
        "info": dict(info or {}),
    }
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)
    return weights_hash(model)


def load_weights(path: str | os.PathLike[str]) -> FMModel:
    """Read a weights file (weights_only=True) into an eval-mode model on the CPU."""
    try:
        blob = torch.load(Path(path), map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError) as e:
        raise CodecError(f"cannot read fm weights {path}: {e}") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CodecError(f"{path} is not an nvc fm weights file")
    if blob.get("version") != VERSION:
        raise CodecError(f"{path}: unsupported fm weights version {blob.get('version')}")
    model = FMModel(ModelConfig.from_dict(dict(blob["config"])))
    try:
        model.load_state_dict(blob["state"])
    except RuntimeError as e:
        raise CodecError(f"{path}: weights do not fit the model: {e}") from None
    return model.eval()


def load_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    blob = torch.load(Path(path), map_location="cpu", weights_only=True)
    return dict(blob.get("info", {}))


def register(model: FMModel) -> bytes:
    """Make a model findable by its hash in this process (tests, custom models)."""
    key = short_hash(model)
    _registered[key] = model.eval()
    return key


def shipped_path(variant: str) -> Path:
    return WEIGHTS_DIR / f"fm-{variant}.pt"


def _cached(path: Path) -> tuple[FMModel, bytes]:
    key = str(path.resolve())
    mtime = path.stat().st_mtime
    hit = _cache.get(key)
    if hit is not None and hit[0] == mtime:
        return hit[1], hit[2]
    model = load_weights(path)
    digest = short_hash(model)
    _cache[key] = (mtime, model, digest)
    return model, digest


def _candidates(variant: str) -> list[Path]:
    paths = [shipped_path(variant)]
    for item in os.environ.get(ENV_VAR, "").split(os.pathsep):
        if item:
            paths.append(Path(item))
    return [p for p in paths if p.is_file()]


def default_model(variant: str) -> FMModel:
    """The shipped model of a variant, or an error saying how to get one."""
    if variant not in VARIANTS:
        raise CodecError(f"unknown fm variant {variant!r} (variants: {', '.join(VARIANTS)})")
    path = shipped_path(variant)
    if not path.is_file():
        raise CodecError(
            f"no shipped weights for the fm {variant!r} variant; train them with "
            f"'nvc train fm --variant {variant}' and pass --weights (encode option 'weights')"
        )
    return _cached(path)[0]


def find_model(variant: str, digest: bytes) -> FMModel:
    """The model with this short hash, or a CodecError that says what is missing."""
    if digest in _registered:
        return _registered[digest]
    seen = []
    for path in _candidates(variant):
        try:
            model, d = _cached(path)
        except CodecError:
            continue
        if d == digest:
            return model
        seen.append(f"{path.name} ({d.hex()[:12]})")
    have = "; available: " + ", ".join(seen) if seen else ""
    raise CodecError(
        f"the stream was coded with fm-{variant} weights {digest.hex()[:12]}, which this "
        f"decoder does not have{have}. Decode with the same nvc version, or list the weights "
        f"file in {ENV_VAR}"
    )


def parameter_count(model: FMModel) -> int:
    return int(sum(int(np.prod(p.shape)) for p in model.parameters()))

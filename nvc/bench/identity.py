"""What decides a codec's coded result at one rate point, beyond its name and the point.

A resumed benchmark (and a resumed `nvc batch`) reuses a stored row only when this
identity is unchanged, so that rows coded with other defaults, another model or another
encoder build are measured again instead of being mixed in:

- nvc codecs: the point's options as the codec resolves them (its config dataclass with
  defaults filled in, e.g. fm's `variant` when the point does not name one);
- fm in addition: the variant and the weights hash (the 16 bytes the stream header
  carries) of the model the encoder will use: the shipped file of the variant, or the
  `weights` file given;
- anchors: every encoder option given to FFmpeg (preset, CRF, GOP params) and the
  library's version banner (x264/x265; SVT-AV1 has none).

Only the codecs of a run are imported: computing an anchor's or the lossless codec's
identity never imports torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nvc.bench import anchors
from nvc.errors import NvcError

# path -> ((mtime_ns, size), weights description): a `weights` file is hashed once per run
_weights_cache: dict[str, tuple[tuple[int, int], dict[str, str]]] = {}


def _plain(value: Any) -> bool:
    """Whether a config value is data (recorded) rather than a callback (not recorded)."""
    if value is None or isinstance(value, str | int | float | bool):
        return True
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    return False


def _fm_weights(config: Any) -> dict[str, str]:
    """The variant and short weights hash of the model fm's encoder will load for `config`."""
    from nvc.codec.conditional import weights as wt

    if not config.weights:
        model = wt.default_model(config.variant)  # cached by nvc.codec.conditional.weights
        path = wt.shipped_path(config.variant)
        return {
            "variant": model.config.variant,
            "hash": wt.short_hash(model).hex(),
            "file": path.name,
        }
    path = Path(config.weights).resolve()
    try:
        stat = path.stat()
    except OSError as e:
        raise NvcError(f"cannot read fm weights {config.weights}: {e.strerror}") from None
    stamp = (stat.st_mtime_ns, stat.st_size)
    hit = _weights_cache.get(str(path))
    if hit is not None and hit[0] == stamp:
        return hit[1]
    model = wt.load_weights(path)
    info = {"variant": model.config.variant, "hash": wt.short_hash(model).hex(), "file": str(path)}
    _weights_cache[str(path)] = (stamp, info)
    return info


# Codecs whose output depends on model weights: name -> the weights' description.
# Stored rows of these codecs without an identity (older state files) are never reused.
MODEL_WEIGHTS: dict[str, Callable[[Any], dict[str, str]]] = {"fm": _fm_weights}


def nvc_identity(codec: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """An nvc codec's resolved options (and model weights, for codecs that have them)."""
    from nvc.codec import registry

    spec = registry.get(codec)
    config = spec.config(dict(options))
    resolved = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if _plain(value):
            resolved[f.name] = list(value) if isinstance(value, tuple) else value
    out: dict[str, Any] = {"codec": codec, "codec_id": spec.id, "options": resolved}
    describe = MODEL_WEIGHTS.get(codec)
    if describe is not None:
        out["weights"] = describe(config)
    return out


def anchor_identity(
    config: anchors.AnchorConfig, point: Mapping[str, Any], gop: str, keyint: int, threads: int
) -> dict[str, Any]:
    """An anchor's FFmpeg encoder options at this point and its library's version."""
    crf = point.get("crf")
    options = config.options(crf if isinstance(crf, int) else None, gop, keyint, threads)
    return {
        "codec": config.name,
        "encoder": config.encoder,
        "options": options,
        "library": anchors.library_version(config),
    }


def needs_identity(codec: str) -> bool:
    """Whether a stored row of `codec` without an identity must be measured again."""
    return codec in MODEL_WEIGHTS


def fingerprint(identity: Mapping[str, Any]) -> str:
    """A short stable hash of an identity (what state files store and compare)."""
    text = json.dumps(dict(identity), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]

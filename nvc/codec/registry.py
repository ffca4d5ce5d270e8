"""The one registry of codecs, keyed by fixed numeric ids and by names.

Built-in codecs are listed here with their ids, so an id never depends on import or
dict order, and a codec's module (and torch) is imported only when it is used.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from nvc.codec.base import CodecSpec
from nvc.errors import CodecError


@dataclass(frozen=True)
class _Builtin:
    id: int  # fixed numeric id, written into bitstreams
    name: str  # user-facing name
    module: str  # module that defines SPEC, imported on first use


# Ids are permanent: a retired codec keeps its id, a new codec takes a new one.
_BUILTINS: tuple[_Builtin, ...] = (
    _Builtin(1, "lossless", "nvc.codec.lossless"),
    _Builtin(2, "inr", "nvc.codec.inr"),
    _Builtin(3, "fm", "nvc.codec.conditional"),
    _Builtin(4, "gaussian", "nvc.codec.gaussian"),
)

_loaded: dict[int, CodecSpec] = {}


def register(spec: CodecSpec) -> None:
    """Add a codec (a plugin, or a test's). Its id and name must both be new."""
    for b in _BUILTINS:
        if spec.id == b.id or spec.name == b.name:
            if b.id in _loaded and _loaded[b.id] is spec:
                return
            raise CodecError(f"codec id {spec.id} / name {spec.name!r} is taken by {b.name!r}")
    for s in _loaded.values():
        if s is not spec and (s.id == spec.id or s.name == spec.name):
            raise CodecError(f"codec id {spec.id} / name {spec.name!r} is taken by {s.name!r}")
    _loaded[spec.id] = spec


def unregister(spec: CodecSpec) -> None:
    """Remove a codec added with register() (tests use this to clean up)."""
    if _loaded.get(spec.id) is spec and all(b.id != spec.id for b in _BUILTINS):
        del _loaded[spec.id]


def names() -> list[str]:
    """Names of all codecs, built-in ones first in id order."""
    extra = sorted(s.name for i, s in _loaded.items() if all(b.id != i for b in _BUILTINS))
    return [b.name for b in _BUILTINS] + extra


def name_of(codec_id: int) -> str | None:
    """The name of a codec id without importing the codec; None if unknown."""
    for b in _BUILTINS:
        if b.id == codec_id:
            return b.name
    spec = _loaded.get(codec_id)
    return spec.name if spec else None


def get(key: str | int) -> CodecSpec:
    """Look a codec up by name or id; CodecError if there is none."""
    for b in _BUILTINS:
        if key in (b.id, b.name):
            if b.id not in _loaded:
                spec = importlib.import_module(b.module).SPEC
                if (spec.id, spec.name) != (b.id, b.name):
                    raise CodecError(f"codec module {b.module} declares {spec.name}/{spec.id}")
                _loaded[b.id] = spec
            return _loaded[b.id]
    for spec in _loaded.values():
        if key in (spec.id, spec.name):
            return spec
    if isinstance(key, int):
        raise CodecError(f"unknown codec id {key}: this nvc knows {', '.join(names())}")
    raise CodecError(f"unknown codec {key!r} (available: {', '.join(names())})")

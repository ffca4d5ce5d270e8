from dataclasses import dataclass

import pytest

from nvc.codec import registry
from nvc.codec.base import CodecSpec
from nvc.errors import CodecError


def test_builtin_codecs_have_fixed_ids():
    assert registry.get("lossless").id == 1
    assert registry.get(1).name == "lossless"
    assert registry.name_of(1) == "lossless"
    assert registry.name_of(999) is None
    assert registry.names()[0] == "lossless"


def test_unknown_codec_is_a_codec_error_naming_the_choices():
    with pytest.raises(CodecError, match="unknown codec 'nope'.*lossless"):
        registry.get("nope")
    with pytest.raises(CodecError, match="unknown codec id 77"):
        registry.get(77)


@dataclass(frozen=True)
class _Cfg:
    level: int = 1


def _spec(id: int, name: str) -> CodecSpec:
    return CodecSpec(id, name, "test codec", _Cfg, lambda s, c: None, lambda h: None)  # type: ignore[arg-type,return-value]


def test_register_rejects_taken_ids_and_names():
    with pytest.raises(CodecError, match="taken"):
        registry.register(_spec(1, "other"))
    with pytest.raises(CodecError, match="taken"):
        registry.register(_spec(900, "lossless"))
    spec = _spec(900, "plugin")
    registry.register(spec)
    try:
        assert registry.get("plugin") is spec
        assert "plugin" in registry.names()
    finally:
        registry.unregister(spec)
    with pytest.raises(CodecError):
        registry.get("plugin")


def test_codec_options_are_checked():
    spec = _spec(901, "opts")
    assert spec.config({"level": 3}) == _Cfg(3)
    with pytest.raises(CodecError, match="no option 'speed'.*level"):
        spec.config({"speed": 2})

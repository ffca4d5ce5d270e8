"""The `gaussian` codec family: frames as image-plane Gaussians with a fitted base per
group and gated, quantized residuals between (GaussianImage, GSVC; QUEEN's residual idea).
See README.md in this package.

Importing the package is cheap: the codec (and torch) loads on first use of SPEC or the
encoder/decoder, so `nvc info` reads a stream's parameters (config, params3d) without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nvc.codec.gaussian.config import GaussianConfig

if TYPE_CHECKING:
    from nvc.codec.gaussian.codec import SPEC, GaussianDecoder, GaussianEncoder

# names loaded from nvc.codec.gaussian.codec on first use
_CODEC = {"SPEC", "GaussianDecoder", "GaussianEncoder"}


def __getattr__(name: str) -> Any:
    if name in _CODEC:
        from nvc.codec.gaussian import codec

        return getattr(codec, name)
    raise AttributeError(f"module 'nvc.codec.gaussian' has no attribute {name!r}")


__all__ = ["SPEC", "GaussianConfig", "GaussianDecoder", "GaussianEncoder"]

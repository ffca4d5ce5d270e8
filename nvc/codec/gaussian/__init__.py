"""The `gaussian` codec family: frames as image-plane Gaussians with a fitted base per
group and gated, quantized residuals between (GaussianImage, GSVC; QUEEN's residual idea).
See README.md in this package."""

from nvc.codec.gaussian.codec import SPEC, GaussianDecoder, GaussianEncoder
from nvc.codec.gaussian.config import GaussianConfig

__all__ = ["SPEC", "GaussianConfig", "GaussianDecoder", "GaussianEncoder"]

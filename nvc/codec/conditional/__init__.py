"""The `fm` codec family: learned causal video coding with feature modulation
(the DCVC-FM line). See README.md in this package."""

from nvc.codec.conditional.codec import SPEC, FmConfig, FmDecoder, FmEncoder, FmParams
from nvc.codec.conditional.model import VARIANTS, FMModel, ModelConfig

__all__ = [
    "SPEC",
    "VARIANTS",
    "FMModel",
    "FmConfig",
    "FmDecoder",
    "FmEncoder",
    "FmParams",
    "ModelConfig",
]

"""The `inr` codec family: implicit neural representations of video (NeRV, HNeRV,
Boosting-NeRV, NeRV++ blocks, NIRVANA groups). See README.md in this package."""

from nvc.codec.inr.codec import SPEC, InrDecoder, InrEncoder
from nvc.codec.inr.config import PRESETS, InrConfig, ModelConfig, TrainStatus

__all__ = ["PRESETS", "SPEC", "InrConfig", "InrDecoder", "InrEncoder", "ModelConfig", "TrainStatus"]

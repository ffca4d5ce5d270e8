"""nvc's entropy-coding library: probability models for training and exact coding.

See README.md in this package for the models, the API and the determinism guarantees.
"""

from nvc.codec.entropy.coder import (
    SymbolReader,
    SymbolWriter,
    decode_indexed,
    encode_indexed,
    indexed_cost_bits,
    rows_cost_bits,
)
from nvc.codec.entropy.conditional import (
    ConditionalConfig,
    ConditionalOutput,
    GaussianConditional,
    LaplaceConditional,
    MeanScaleConditional,
)
from nvc.codec.entropy.factorized import FactorizedOutput, FactorizedPrior
from nvc.codec.entropy.fixed_point import FixedPointNetwork
from nvc.codec.entropy.hyperprior import (
    HyperAnalysis,
    Hyperprior,
    HyperpriorConfig,
    HyperpriorEncoding,
    HyperpriorOutput,
    HyperpriorStreams,
    HyperSynthesis,
)
from nvc.codec.entropy.likelihood import bits, lower_bound, quantize
from nvc.codec.entropy.mixture import (
    GaussianMixtureConditional,
    MixtureConfig,
    MixtureOutput,
    QuantizedMixture,
)
from nvc.codec.entropy.tables import PRECISION, CodingTables, ScaleTable
from nvc.codec.entropy.weights import (
    CategoricalWeightModel,
    CategoricalWeightParams,
    ParametricWeightModel,
    ParametricWeightParams,
    WeightParams,
)

__all__ = [
    "PRECISION",
    "CategoricalWeightModel",
    "CategoricalWeightParams",
    "CodingTables",
    "ConditionalConfig",
    "ConditionalOutput",
    "FactorizedOutput",
    "FactorizedPrior",
    "FixedPointNetwork",
    "GaussianConditional",
    "GaussianMixtureConditional",
    "HyperAnalysis",
    "HyperSynthesis",
    "Hyperprior",
    "HyperpriorConfig",
    "HyperpriorEncoding",
    "HyperpriorOutput",
    "HyperpriorStreams",
    "LaplaceConditional",
    "MeanScaleConditional",
    "MixtureConfig",
    "MixtureOutput",
    "ParametricWeightModel",
    "ParametricWeightParams",
    "QuantizedMixture",
    "ScaleTable",
    "SymbolReader",
    "SymbolWriter",
    "WeightParams",
    "bits",
    "decode_indexed",
    "encode_indexed",
    "indexed_cost_bits",
    "lower_bound",
    "quantize",
    "rows_cost_bits",
]

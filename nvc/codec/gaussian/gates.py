"""Learned hard-concrete position gates for 3D P-frames (QUEEN's, after Louizos et al.).

QUEEN (Girish et al., NeurIPS 2024) lets a Gaussian's position change in a frame only
through a gate z in [0, 1] that is learned with the residual: the fitted mean is
previous + z x delta, z is drawn from a hard-concrete distribution during the fit (so the
gradient reaches the gate's logit through a stretched, clipped sigmoid of a logistic
sample) and an L0 penalty, the probability that the gate is open, makes every open gate
pay for itself. The gates start from the view-space gradient signal (fit3d.gate_scores):
a Gaussian whose score is GATE_INIT_SPAN x the threshold starts with logit +INIT_LOGIT,
one at the threshold at 0, a score of 0 at -INIT_LOGIT (all but closed).

Written from the papers: C. Louizos, M. Welling, D. Kingma, "Learning Sparse Neural
Networks through L0 Regularization", ICLR 2018 (the distribution, with their beta = 2/3,
gamma = -0.1, zeta = 1.1); QUEEN for its use on position residuals.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

BETA = 2.0 / 3.0  # temperature of the concrete distribution
GAMMA, ZETA = -0.1, 1.1  # the stretch interval (then clipped to [0, 1])
INIT_LOGIT = 4.0  # |initial logit| of a gate far above or at zero score
GATE_INIT_SPAN = 4.0  # score / threshold ratio that maps to +INIT_LOGIT (log scale)
GATE_LR = 0.1  # Adam step of the gate logits


def initial_logits(scores: Tensor, threshold: float) -> Tensor:
    """(N,) gate logits from gate_scores and the absolute threshold where a gate opens
    (log-linear in the score: 0 at the threshold, clipped to +-INIT_LOGIT)."""
    ratio = scores.double() / max(float(threshold), 1e-30)
    logit = INIT_LOGIT * torch.log(ratio.clamp_min(1e-30)) / math.log(GATE_INIT_SPAN)
    return logit.clamp(-INIT_LOGIT, INIT_LOGIT).float()


def sample(logits: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """(N,) a hard-concrete draw of the gates (differentiable in the logits)."""
    u = torch.rand(logits.shape, generator=generator).clamp(1e-6, 1.0 - 1e-6)
    s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + logits) / BETA)
    return (s * (ZETA - GAMMA) + GAMMA).clamp(0.0, 1.0)


def deterministic(logits: Tensor) -> Tensor:
    """(N,) the gates after the fit (the distribution's median: no noise)."""
    return (torch.sigmoid(logits) * (ZETA - GAMMA) + GAMMA).clamp(0.0, 1.0)


def open_probability(logits: Tensor) -> Tensor:
    """(N,) P(z != 0), the L0 penalty's differentiable count of open gates."""
    return torch.sigmoid(logits - BETA * math.log(-GAMMA / ZETA))


__all__ = ["deterministic", "initial_logits", "open_probability", "sample"]

"""Loss terms shared by several algorithms, as pure functions.

Each objective is written as the paper writes it and negated once on the return line, so
that minimising the loss ascends the objective. Weights such as returns and advantages are
constants: the caller computes them under ``torch.no_grad()`` (the functions in
:mod:`pgrl.returns` already do).

``mask`` arguments (same shape as the per-sample terms, 1.0 for a real transition and 0.0
for a placeholder such as the reset step of next-step autoreset) turn every mean into a
mean over real transitions.
"""

from __future__ import annotations

from typing import Literal, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

ArrayT = TypeVar("ArrayT", Tensor, np.ndarray)

__all__ = [
    "entropy_bonus",
    "masked_mean",
    "mean_weights",
    "policy_gradient_loss",
    "reinforce_loss",
    "soft_update_",
    "value_loss",
    "value_loss_terms",
]


def masked_mean(x: ArrayT, mask: ArrayT | None = None) -> ArrayT:
    """Mean of ``x`` over the entries where ``mask`` is 1 (all entries when mask is None).

    Works on tensors and NumPy arrays alike.

    Example:
        >>> masked_mean(torch.tensor([1.0, 2.0, 9.0]), torch.tensor([1.0, 1.0, 0.0])).item()
        1.5
    """
    if mask is None:
        return x.mean()
    return (x * mask).sum() / mask.sum().clip(min=1.0)


def policy_gradient_loss(log_prob: Tensor, weight: Tensor, mask: Tensor | None = None) -> Tensor:
    """Score-function surrogate whose gradient is the policy gradient estimate.

    ∇J ≈ mean_t[ Ψ_t ∇log π(a_t|s_t) ], with Ψ_t = r(τ), G_t, G_t − b(s_t) or an advantage.

    Args:
        log_prob: ``(...)`` log π(a_t|s_t) of the actions taken, with gradient.
        weight: ``(...)`` Ψ_t, a constant (no gradient flows through it).
        mask: optional ``(...)`` 1 for real transitions.

    Example:
        >>> policy_gradient_loss(torch.tensor([-1.0, -2.0]), torch.tensor([1.0, 2.0])).item()
        2.5
    """
    objective = log_prob * weight.detach()
    return -masked_mean(objective, mask)


def reinforce_loss(
    log_prob: Tensor, returns: Tensor, baseline: Tensor | float = 0.0, mask: Tensor | None = None
) -> Tensor:
    """REINFORCE with a baseline: −mean_t[ log π(a_t|s_t) (G_t − b(s_t)) ].

    Its gradient estimates ∇J = E[Σ_t (G_t − b(s_t)) ∇log π(a_t|s_t)]. Any baseline that does
    not depend on the action keeps the estimate unbiased, because
    E_a[b(s) ∇log π(a|s)] = b(s) ∇Σ_a π(a|s) = b(s) ∇1 = 0; a good one (V(s)) lowers its
    variance. The caller passes the baseline already detached: the baseline is fitted by
    its own loss, never by the policy gradient.

    Example:
        >>> reinforce_loss(torch.tensor([-1.0, -2.0]), torch.tensor([3.0, 1.0]), 2.0).item()
        -0.5
    """
    return policy_gradient_loss(log_prob, returns - baseline, mask)


def value_loss(
    value: Tensor,
    target: Tensor,
    kind: Literal["mse", "huber"] = "mse",
    mask: Tensor | None = None,
) -> Tensor:
    """Critic regression loss: ½ (y − V(s))² (MSE) or the Huber loss with δ = 1.

    The ½ makes the gradient the TD error itself, as in the article's critic objective.
    ``target`` is a constant.

    Example:
        >>> value_loss(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 3.0])).item()
        2.5
        >>> value_loss(torch.tensor([0.0]), torch.tensor([3.0]), "huber").item()
        2.5
    """
    target = target.detach()
    if kind == "mse":
        per_sample = 0.5 * (target - value) ** 2
    elif kind == "huber":
        per_sample = F.huber_loss(value, target, reduction="none", delta=1.0)
    else:
        raise ValueError(f"value loss must be 'mse' or 'huber', got {kind!r}")
    return masked_mean(per_sample, mask)


def mean_weights(mask: Tensor) -> np.ndarray:
    """m_t / Σ m as a flat NumPy array: the weights that turn a sum into a mean over the real
    transitions (the closed-form gradients' :func:`masked_mean`).

    Example:
        >>> mean_weights(torch.tensor([[1.0, 1.0], [1.0, 0.0]])).tolist()
        [0.3333333432674408, 0.3333333432674408, 0.3333333432674408, 0.0]
    """
    flat = mask.numpy().reshape(-1)
    return flat / max(float(flat.sum()), 1.0)


def value_loss_terms(
    value: np.ndarray, target: np.ndarray, kind: Literal["mse", "huber"] = "mse"
) -> tuple[np.ndarray, np.ndarray]:
    """Per sample, the critic loss of :func:`value_loss` and its derivative ∂/∂V, on arrays.

    MSE: ½ (y − V)² and V − y.  Huber (δ = 1): ½ (y − V)² and V − y where |y − V| ≤ 1,
    |y − V| − ½ and sign(V − y) beyond. For the closed-form gradients of A2C and REINFORCE.

    Example:
        >>> loss, slope = value_loss_terms(np.zeros(2), np.array([0.5, 3.0]), "huber")
        >>> loss.tolist(), slope.tolist()
        ([0.125, 2.5], [-0.5, -1.0])
    """
    error = value - target
    if kind == "mse":
        return 0.5 * error * error, error
    distance = np.abs(error)
    loss = np.where(distance <= 1.0, 0.5 * error * error, distance - 0.5)
    return loss, error.clip(-1.0, 1.0)


def entropy_bonus(entropy: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean policy entropy H[π(·|s_t)]; algorithms subtract ``entropy_coef`` times it."""
    return masked_mean(entropy, mask)


@torch.no_grad()
def soft_update_(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging in place: θ' ← τ θ + (1 − τ) θ'.

    Reference: Lillicrap et al. (2016), algorithm 1.
    """
    for target_param, param in zip(target.parameters(), source.parameters(), strict=True):
        target_param.lerp_(param, tau)

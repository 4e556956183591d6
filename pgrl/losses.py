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

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "combined_loss",
    "entropy_bonus",
    "masked_mean",
    "normalize_advantages",
    "policy_gradient_loss",
    "reinforce_loss",
    "soft_update_",
    "twin_value_loss",
    "value_loss",
]


def masked_mean(x: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean of ``x`` over the entries where ``mask`` is 1 (all entries when mask is None).

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


def normalize_advantages(advantage: Tensor, mask: Tensor | None = None) -> Tensor:
    """(A − mean A) / (std A + 1e-8) over the real transitions: zero mean, unit scale.

    The sample std (divide by n − 1, Bessel's correction; 0 for a single entry), over the
    entries where ``mask`` is 1, as Stable-Baselines3 and CleanRL compute it, so that PPO's
    update equals theirs on the same batch (``tests/test_peer_equivalence.py``); placeholders
    keep a finite value and are masked out by the loss. A variance trick of OpenAI
    Baselines, not in the article or the papers' estimators (it rescales the step size per
    batch).

    Example:
        >>> [round(a, 4) for a in normalize_advantages(torch.tensor([1.0, 3.0])).tolist()]
        [-0.7071, 0.7071]
    """
    mean = masked_mean(advantage, mask)
    squares = (advantage - mean) ** 2
    if mask is not None:
        squares = squares * mask
    count = advantage.numel() if mask is None else mask.sum()
    std = (squares.sum() / (torch.as_tensor(count) - 1.0).clip(min=1.0)).sqrt()
    return (advantage - mean) / (std + 1e-8)


def twin_value_loss(
    q1: Tensor, q2: Tensor, target: Tensor, kind: Literal["mse", "huber"] = "mse"
) -> Tensor:
    """Both critics of a twin pair regress on the same target y: loss(Q_1, y) + loss(Q_2, y).

    TD3 and SAC (Fujimoto et al. 2018, Haarnoja et al. 2018b): each critic has its own
    gradient; the sum lets one backward pass compute both.

    Example:
        >>> twin_value_loss(torch.tensor([0.0]), torch.tensor([2.0]), torch.tensor([1.0])).item()
        1.0
    """
    return value_loss(q1, target, kind) + value_loss(q2, target, kind)


def combined_loss(
    policy_loss: Tensor,
    critic_loss: Tensor | None = None,
    entropy: Tensor | None = None,
    value_coef: float = 1.0,
    entropy_coef: float = 0.0,
) -> Tensor:
    """L = L_π + c_V L_V − c_H H: one loss for one backward pass through actor and critic.

    A term whose coefficient is 0 is left out rather than multiplied by 0: the gradient is
    the same, and its part of the graph is never differentiated (at classic-control sizes
    every autograd node costs microseconds).

    Example:
        >>> combined_loss(torch.tensor(1.0), torch.tensor(2.0), torch.tensor(3.0), 0.5, 0.1).item()
        1.7000000476837158
    """
    loss = policy_loss
    if critic_loss is not None and value_coef != 0.0:
        loss = loss + (critic_loss if value_coef == 1.0 else value_coef * critic_loss)
    if entropy is not None and entropy_coef != 0.0:
        loss = loss - entropy_coef * entropy
    return loss


def entropy_bonus(entropy: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean policy entropy H[π(·|s_t)]; algorithms subtract ``entropy_coef`` times it."""
    return masked_mean(entropy, mask)


@torch.no_grad()
def soft_update_(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging in place: θ' ← τ θ + (1 − τ) θ'.

    Reference: Lillicrap et al. (2016), algorithm 1.
    """
    targets: list[Tensor] = list(target.parameters())
    sources: list[Tensor] = list(source.parameters())
    if len(targets) != len(sources):
        raise ValueError("soft_update_: target and source have different parameters")
    # one foreach call instead of a Python loop over the parameters
    torch._foreach_lerp_(targets, sources, tau)

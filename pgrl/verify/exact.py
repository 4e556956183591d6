"""Exact values and policy gradients of a tabular softmax policy on a finite MDP.

The policy is π_θ(a|s) = softmax(θ[s])_a with θ of shape ``(S, A)``. Everything is float64
and closed form:

    P_π(s'|s) = Σ_a π(a|s) P(s'|s, a)          (terminal rows and columns zeroed)
    r_π(s)    = Σ_a π(a|s) r(s, a)
    V^π       = (I − γ P_π)⁻¹ r_π               Bellman equation as a linear system
    Q^π(s, a) = r(s, a) + γ Σ_s' P(s'|s, a) V^π(s')
    J(θ)      = ρ₀ᵀ V^π
    d^π       = (I − γ P_πᵀ)⁻¹ ρ₀               d^π(s) = Σ_t γ^t Pr(s_t = s)

and the gradient two ways that must agree:

* the policy gradient theorem (Sutton et al. 1999, theorem 1):
  ∇J = Σ_s d^π(s) Σ_a π(a|s) Q^π(s, a) ∇log π(a|s); for the tabular softmax
  ∂log π(a|s)/∂θ[s, b] = 1[a = b] − π(b|s), so ∂J/∂θ[s, b] = d^π(s) π(b|s) A^π(s, b);
* autograd through ``torch.linalg.solve`` of the Bellman system.

Zeroing the rows and columns of terminal states makes V = 0 there and keeps I − P_π
invertible for γ = 1 when every policy terminates (a proper episodic MDP).
"""

from __future__ import annotations

import torch
from torch import Tensor

from pgrl.verify.mdp import FiniteMDP

__all__ = [
    "action_values",
    "advantages",
    "autograd_gradient",
    "finite_difference_gradient",
    "finite_horizon_gradient",
    "finite_horizon_objective",
    "objective",
    "policy",
    "policy_gradient_theorem",
    "state_values",
    "visitation",
]


def policy(theta: Tensor) -> Tensor:
    """π_θ(a|s) = softmax(θ[s])_a, ``(S, A)``, in float64."""
    return torch.softmax(theta.to(torch.float64), dim=-1)


def _live(mdp: FiniteMDP) -> Tensor:
    return (~mdp.terminal).to(torch.float64)


def _state_transitions(mdp: FiniteMDP, pi: Tensor) -> Tensor:
    """P_π(s'|s) among non-terminal states (terminal rows and columns zeroed), ``(S, S)``."""
    live = _live(mdp)
    p_pi = torch.einsum("sa,sat->st", pi, mdp.transitions)
    return p_pi * live[:, None] * live[None, :]


def state_values(mdp: FiniteMDP, theta: Tensor) -> Tensor:
    """V^π = (I − γ P_π)⁻¹ r_π, ``(S,)``; differentiable in θ.

    Example:
        >>> from pgrl.verify.mdp import chain_mdp
        >>> mdp = chain_mdp(2, slip=0.0, step_cost=0.0)
        >>> state_values(mdp, torch.zeros(2, 2)).tolist()  # 0.5·1 + 0.5·0.9·V(0)
        [0.9090909090909091, 0.0]
    """
    pi = policy(theta)
    r_pi = (pi * mdp.rewards).sum(-1) * _live(mdp)
    eye = torch.eye(mdp.num_states, dtype=torch.float64)
    return torch.linalg.solve(eye - mdp.gamma * _state_transitions(mdp, pi), r_pi)


def action_values(mdp: FiniteMDP, theta: Tensor) -> Tensor:
    """Q^π(s, a) = r(s, a) + γ Σ_s' P(s'|s, a) V^π(s'), ``(S, A)``."""
    return mdp.rewards + mdp.gamma * mdp.transitions @ state_values(mdp, theta)


def advantages(mdp: FiniteMDP, theta: Tensor) -> Tensor:
    """A^π(s, a) = Q^π(s, a) − V^π(s), ``(S, A)``."""
    return action_values(mdp, theta) - state_values(mdp, theta)[:, None]


def objective(mdp: FiniteMDP, theta: Tensor) -> Tensor:
    """J(θ) = ρ₀ᵀ V^π, the expected discounted return from the start distribution."""
    return mdp.start @ state_values(mdp, theta)


def visitation(
    mdp: FiniteMDP,
    theta: Tensor,
    *,
    discount_weighting: bool = True,
    horizon: int | None = None,
) -> Tensor:
    """State weights w(s) = Σ_{t<H} c_t Pr(s_t = s), ``(S,)``, with c_t = γ^t or 1.

    With ``discount_weighting`` (c_t = γ^t) and no horizon this is the discounted visitation
    d^π = (I − γ P_πᵀ)⁻¹ ρ₀ of the policy gradient theorem. Without it (c_t = 1) it is the
    expected number of visits, (I − P_πᵀ)⁻¹ ρ₀, finite for episodic MDPs only: the state
    weighting of the usual estimator Σ_t G_t ∇log π (Nota & Thomas 2020). With a horizon H
    the sum stops at t = H − 1 (episodes cut by a time limit).
    """
    pi = policy(theta)
    p_pi = _state_transitions(mdp, pi)
    factor = mdp.gamma if discount_weighting else 1.0
    start = mdp.start * _live(mdp)
    if horizon is None:
        eye = torch.eye(mdp.num_states, dtype=torch.float64)
        return torch.linalg.solve(eye - factor * p_pi.T, start)
    weights = torch.zeros_like(start)
    occupancy = start
    for _ in range(horizon):
        weights = weights + occupancy
        occupancy = factor * p_pi.T @ occupancy
    return weights


def policy_gradient_theorem(
    mdp: FiniteMDP, theta: Tensor, state_weights: Tensor | None = None
) -> Tensor:
    """∇J by the policy gradient theorem: ∂J/∂θ[s, b] = d(s) π(b|s) A^π(s, b), ``(S, A)``.

    Args:
        mdp: the MDP.
        theta: ``(S, A)`` softmax logits.
        state_weights: ``(S,)`` d(s); default the discounted visitation d^π (the exact
            gradient). Other weights give the expectation of other estimators, e.g.
            ``visitation(..., discount_weighting=False)`` for Σ_t G_t ∇log π.

    Reference: Sutton, McAllester, Singh & Mansour (1999), theorem 1.
    """
    theta = theta.detach()
    if state_weights is None:
        state_weights = visitation(mdp, theta)
    return state_weights[:, None] * policy(theta) * advantages(mdp, theta)


def autograd_gradient(mdp: FiniteMDP, theta: Tensor) -> Tensor:
    """∇J by differentiating ρ₀ᵀ (I − γ P_π)⁻¹ r_π with autograd, ``(S, A)``."""
    theta = theta.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(mdp, theta), theta)
    return grad


def finite_difference_gradient(mdp: FiniteMDP, theta: Tensor, eps: float = 1e-5) -> Tensor:
    """∇J by central differences (J(θ + ε e_i) − J(θ − ε e_i)) / 2ε, ``(S, A)``."""
    theta = theta.detach()
    grad = torch.zeros_like(theta)
    for index in range(theta.numel()):
        step = torch.zeros_like(theta).view(-1)
        step[index] = eps
        step = step.view_as(theta)
        grad.view(-1)[index] = (objective(mdp, theta + step) - objective(mdp, theta - step)) / (
            2 * eps
        )
    return grad


def finite_horizon_objective(mdp: FiniteMDP, theta: Tensor, horizon: int) -> Tensor:
    """J_H(θ) = E[Σ_{t<H} γ^t r_t]: the objective of episodes cut after H steps.

    V_0 = 0, V_{k+1} = r_π + γ P_π V_k, J_H = ρ₀ᵀ V_H. Monte-Carlo estimators that do not
    bootstrap at a time limit are unbiased for ∇J_H; J_H → J as γ^H → 0 (or as the
    probability of surviving H steps → 0).
    """
    pi = policy(theta)
    r_pi = (pi * mdp.rewards).sum(-1) * _live(mdp)
    p_pi = _state_transitions(mdp, pi)
    values = torch.zeros_like(r_pi)
    for _ in range(horizon):
        values = r_pi + mdp.gamma * p_pi @ values
    return mdp.start @ values


def finite_horizon_gradient(mdp: FiniteMDP, theta: Tensor, horizon: int) -> Tensor:
    """∇J_H by autograd through :func:`finite_horizon_objective`, ``(S, A)``."""
    theta = theta.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(finite_horizon_objective(mdp, theta, horizon), theta)
    return grad

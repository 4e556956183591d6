"""Policy-gradient estimators built from pgrl's own return and loss functions.

Every estimator here is a *loss*: a function of sampled :class:`Episodes`, the log
probabilities log π_θ(a_t|s_t) of the actions taken (with gradient) and the available
:class:`Critics`, that returns the scalar pgrl training loss, computed by exactly the calls
the algorithms make (:mod:`pgrl.returns`, :mod:`pgrl.losses`,
:func:`pgrl.algos.a2c.bootstrapped_targets`). A bug in a training loss therefore shows up
as a bias here.

Normalisation. pgrl's losses are means over the real (mask = 1) steps of a batch:
loss = −Σ_t mask_t log π(a_t|s_t) Ψ_t / Σ_t mask_t. The policy gradient theorem is a
per-trajectory *sum*, ∇J = E_τ[Σ_t Ψ_t ∇log π(a_t|s_t)]. :func:`batch_gradients` multiplies
the loss by (number of real steps) / (trajectories per batch) before differentiating, so
−∇(scaled loss) = (1/n) Σ_{τ in batch} Σ_t Ψ_t ∇log π, the unbiased estimate of ∇J. The
training losses are not changed: the rescaling is a positive constant per batch and only
sets the step size.

One backward pass gives every batch's estimate: each batch b differentiates its own copy
θ_b of the logits, and the loss over all batches is the step-weighted mean of the batch
losses, so ∂loss/∂θ_b involves batch b's steps only.

Discount weighting. The exact gradient of the discounted objective weights step t by γ^t
(Sutton & Barto 2018, section 13.3). Estimators that take ``discount_weighting=True``
multiply their weight by :func:`pgrl.returns.discount_powers`, exactly as
``ReinforceConfig(discount_weighting=True)`` does; pgrl's training losses drop the factor
by default (see docs/verify.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

import torch
from torch import Tensor

from pgrl.algos.a2c import bootstrapped_targets
from pgrl.losses import policy_gradient_loss, reinforce_loss
from pgrl.returns import discount_powers, discounted_returns, episode_returns, gae
from pgrl.verify.exact import state_values
from pgrl.verify.mdp import FiniteMDP
from pgrl.verify.rollouts import Episodes, sample_episodes

__all__ = [
    "TERMINAL_POISON",
    "Critics",
    "Estimator",
    "action_dependent_baseline",
    "actor_critic",
    "batch_gradients",
    "fit_critics",
    "gae_estimator",
    "reward_to_go",
    "sample_estimates",
    "total_return",
    "with_terminated_dropped",
    "with_termination_as_truncation",
    "with_truncation_as_termination",
    "wrong_sign",
]


@dataclass(frozen=True)
class Critics:
    """Value functions an estimator may use, exact or fitted on *separate* batches.

    Shapes: ``exact`` ``(S,)`` V^π; ``fitted_mc``, ``fitted_td`` ``(M, S)``, one table per
    batch; ``fitted_constant`` ``(M,)``; ``rewards`` ``(S, A)`` r(s, a).
    """

    gamma: float
    exact: Tensor
    fitted_mc: Tensor
    """V̂(s) regressed on Monte-Carlo returns G_t (REINFORCE's value baseline)"""
    fitted_td: Tensor
    """V̂(s) at the batch TD(0) fixed point (A2C's critic: regression on r + γV̂(s'))"""
    fitted_constant: Tensor
    """the mean return G_t of the separate batch (a constant baseline)"""
    rewards: Tensor
    """r(s, a), used only by the deliberately broken action-dependent baseline"""


Estimator = Callable[[Episodes, Tensor, Critics], Tensor]
"""(episodes, log π(a_t|s_t) ``(T, N)``, critics) → scalar pgrl loss."""

CriticKind = Literal["exact", "fitted", "constant"]


def _lookup(table: Tensor, data: Episodes, states: Tensor) -> Tensor:
    """V(s) at ``states`` ``(T, N)`` from an ``(S,)`` table or per-batch ``(M, S)`` tables."""
    if table.dim() == 1:
        return table[states]
    return table[data.batch.expand_as(states), states]


def _critic(critics: Critics, kind: CriticKind, td: bool = False) -> Tensor:
    if kind == "exact":
        return critics.exact
    if kind == "constant":
        return critics.fitted_constant[:, None].expand_as(critics.fitted_mc)
    return critics.fitted_td if td else critics.fitted_mc


def _powers(data: Episodes, gamma: float, discount_weighting: bool) -> Tensor | float:
    return discount_powers(data.terminated, data.truncated, gamma) if discount_weighting else 1.0


def total_return() -> Estimator:
    """r(τ) Σ_t ∇log π(a_t|s_t): the log-derivative trick on the whole trajectory.

    Unbiased for ∇J_H (the time-limited objective) with no discount weighting: r(τ)
    already holds γ^k on every reward.
    """

    def loss(data: Episodes, log_prob: Tensor, critics: Critics) -> Tensor:
        weight = episode_returns(data.rewards, data.terminated, data.truncated, critics.gamma)
        return reinforce_loss(log_prob, weight, 0.0, data.mask)

    return loss


def reward_to_go(
    baseline: Literal["none", "constant", "batch_mean", "fitted", "exact"] = "none",
    *,
    discount_weighting: bool = True,
) -> Estimator:
    """Σ_t γ^t (G_t − b(s_t)) ∇log π(a_t|s_t), following ``Reinforce.update`` step by step.

    ``baseline``: none; a constant (the mean return of a separate batch); ``batch_mean``
    (the mean G_t of the same batch, own episode included: the common implementation,
    biased for small batches; pgrl's ``baseline="mean"`` leaves the episode out); a tabular V̂ fitted on a
    separate batch; or the exact V^π. As in ``Reinforce.update``, when a V baseline exists
    the return bootstraps from V(s'_t) at a time limit.
    """

    def loss(data: Episodes, log_prob: Tensor, critics: Critics) -> Tensor:
        value: Tensor | None = None
        if baseline in ("fitted", "exact"):
            value = _critic(critics, "exact" if baseline == "exact" else "fitted")
        next_values = None if value is None else _lookup(value, data, data.next_states)
        returns = discounted_returns(
            data.rewards, data.terminated, data.truncated, critics.gamma, next_values
        )
        b: Tensor | float = 0.0
        if value is not None:
            b = _lookup(value, data, data.states)
        elif baseline == "constant":
            b = critics.fitted_constant[data.batch].expand_as(returns)
        elif baseline == "batch_mean":
            # the plain batch mean (own episode included), kept to show its small-batch bias
            sums = torch.zeros(data.num_batches, dtype=returns.dtype)
            counts = torch.zeros(data.num_batches, dtype=returns.dtype)
            sums.index_add_(0, data.batch, (returns * data.mask).sum(0))
            counts.index_add_(0, data.batch, data.mask.sum(0))
            b = (sums / counts.clamp_min(1.0))[data.batch].expand_as(returns)
        advantage = (returns - b) * _powers(data, critics.gamma, discount_weighting)
        return reinforce_loss(log_prob, advantage, 0.0, data.mask)

    return loss


def actor_critic(
    critic: CriticKind = "exact", *, n_step: int = 1, discount_weighting: bool = True
) -> Estimator:
    """Σ_t γ^t (y_t − V(s_t)) ∇log π with A2C's target y_t, e.g. r_t + γ(1 − terminated_t) V(s'_t).

    The target is :func:`pgrl.algos.a2c.bootstrapped_targets` (``n_step=1``: the article's
    one-step return; more: the n-step return). The critic is the exact V^π (unbiased), a
    tabular V̂ at the TD(0) fixed point of a separate batch, or a constant V̂ (a critic that
    cannot represent V^π). For n = 1 the bias is
    γ Σ_s d(s) Σ_a ∇π(a|s) Σ_s' P(s'|s, a) (E[V̂] − V^π)(s'): it vanishes only where the
    critic is right on average, unlike a baseline's, which vanishes for any V̂.
    """

    def loss(data: Episodes, log_prob: Tensor, critics: Critics) -> Tensor:
        value = _critic(critics, critic, td=True)
        next_values = _lookup(value, data, data.next_states)
        target = bootstrapped_targets(data.rollout(), next_values, critics.gamma, n_step)
        advantage = target - _lookup(value, data, data.states)
        advantage = advantage * _powers(data, critics.gamma, discount_weighting)
        return policy_gradient_loss(log_prob, advantage, data.mask)

    return loss


def gae_estimator(
    gae_lambda: float, critic: CriticKind = "exact", *, discount_weighting: bool = True
) -> Estimator:
    """Σ_t γ^t A_t^{GAE(γ, λ)} ∇log π (:func:`pgrl.returns.gae`); unbiased for all λ if V = V^π."""

    def loss(data: Episodes, log_prob: Tensor, critics: Critics) -> Tensor:
        value = _critic(critics, critic, td=True)
        advantage, _ = gae(
            data.rewards,
            _lookup(value, data, data.states),
            _lookup(value, data, data.next_states),
            data.terminated,
            data.truncated,
            critics.gamma,
            gae_lambda,
        )
        advantage = advantage * _powers(data, critics.gamma, discount_weighting)
        return policy_gradient_loss(log_prob, advantage, data.mask)

    return loss


def wrong_sign(estimator: Estimator) -> Estimator:
    """Broken on purpose: the loss with its sign flipped (gradient descent on J)."""

    def loss(data: Episodes, log_prob: Tensor, critics: Critics) -> Tensor:
        return -estimator(data, log_prob, critics)

    return loss


def action_dependent_baseline(*, discount_weighting: bool = True) -> Estimator:
    """Broken on purpose: G_t − b(s_t, a_t) with b = r(s_t, a_t), a baseline that sees the action.

    E_a[b(s, a) ∇log π(a|s)] = Σ_a ∇π(a|s) r(s, a) ≠ 0, so the estimate is biased.
    """

    def loss(data: Episodes, log_prob: Tensor, critics: Critics) -> Tensor:
        returns = discounted_returns(data.rewards, data.terminated, data.truncated, critics.gamma)
        baseline = critics.rewards[data.states, data.actions]
        advantage = (returns - baseline) * _powers(data, critics.gamma, discount_weighting)
        return reinforce_loss(log_prob, advantage, 0.0, data.mask)

    return loss


def with_terminated_dropped(estimator: Estimator) -> Estimator:
    """Broken on purpose: ``terminated`` flags cleared, so returns leak into the next episode."""

    def loss(data: Episodes, log_prob: Tensor, critics: Critics) -> Tensor:
        broken = replace(data, terminated=torch.zeros_like(data.terminated))
        return estimator(broken, log_prob, critics)

    return loss


def with_termination_as_truncation(estimator: Estimator) -> Estimator:
    """Broken on purpose: a true end treated as a time limit (bootstraps V(s') of a terminal s')."""

    def loss(data: Episodes, log_prob: Tensor, critics: Critics) -> Tensor:
        broken = replace(
            data,
            terminated=torch.zeros_like(data.terminated),
            truncated=data.truncated | data.terminated,
        )
        return estimator(broken, log_prob, critics)

    return loss


def with_truncation_as_termination(estimator: Estimator) -> Estimator:
    """Broken on purpose: a time-limit cut treated as a true end (no bootstrap from V(s'))."""

    def loss(data: Episodes, log_prob: Tensor, critics: Critics) -> Tensor:
        cut = data.truncated & data.mask.bool()
        broken = replace(data, terminated=data.terminated | cut, truncated=data.truncated & ~cut)
        return estimator(broken, log_prob, critics)

    return loss


def batch_gradients(
    data: Episodes, theta: Tensor, estimators: Mapping[str, Estimator], critics: Critics
) -> dict[str, Tensor]:
    """Each estimator's gradient estimate for every batch, ``(M, S, A)`` per name.

    The estimate of batch b is (1/n) Σ_{τ in b} Σ_t Ψ_t ∇_θ log π_θ(a_t|s_t), obtained as
    −∂/∂θ_b of the estimator's pgrl loss scaled by (real steps) / n (see the module
    docstring).
    """
    thetas = theta.detach().expand(data.num_batches, *theta.shape).clone().requires_grad_(True)
    logits = thetas[data.batch.expand_as(data.states), data.states]  # (T, N, A)
    log_prob = torch.log_softmax(logits, -1).gather(-1, data.actions.unsqueeze(-1)).squeeze(-1)
    scale = data.mask.sum() / data.trajectories_per_batch
    out: dict[str, Tensor] = {}
    for name, estimator in estimators.items():
        loss = estimator(data, log_prob, critics) * scale
        (grad,) = torch.autograd.grad(loss, thetas, retain_graph=True)
        out[name] = -grad
    return out


TERMINAL_POISON = 3.0
"""The value every critic table holds at terminal states: a correct estimator never reads it.

About the size of the values themselves, like an untrained critic's output at a terminal
state: large enough to make bootstrapping through a terminal state visible, small enough not
to drown the other effects of a dropped flag in variance."""


def fit_critics(
    fit_data: Episodes,
    mdp: FiniteMDP,
    exact: Tensor,
    *,
    ridge: float = 1e-9,
    poison: float = TERMINAL_POISON,
) -> Critics:
    """Fit per-batch tabular critics on ``fit_data`` (batches independent of the estimation data).

    * Monte-Carlo: V̂_b(s) = mean of G_t over the visits of s, the minimiser of pgrl's
      ``value_loss(V(s_t), G_t)`` for a tabular V (states never visited get the batch's mean
      return, which also serves as the constant baseline).
    * TD(0): the batch fixed point V̂ = mean over visits of r_t + γ(1 − terminated_t)V̂(s'_t),
      solved as the linear system (C − γN)V̂ = R (LSTD(0), Bradtke & Barto 1996), with a tiny
      ridge so that unvisited states get V̂ = 0.

    Every table, the exact V^π included, holds ``poison`` at terminal states instead of 0.
    A correct estimator multiplies V(s'_t) by (1 − terminated_t) and never evaluates V at a
    terminal s_t, so the poison changes nothing; an estimator that bootstraps through a
    terminal state (a dropped ``terminated`` flag) picks it up and shows a large bias. A
    neural critic is not 0 at terminal states either.

    Args:
        fit_data: episodes with the same number of batches M as the estimation data.
        mdp: the MDP (γ, r(s, a) and the terminal states).
        exact: ``(S,)`` V^π.
        ridge: added to the diagonal of the TD system.
        poison: the value written at terminal states.
    """
    gamma = mdp.gamma
    num_states = exact.shape[0]
    m = fit_data.num_batches
    mask = fit_data.mask
    returns = discounted_returns(fit_data.rewards, fit_data.terminated, fit_data.truncated, gamma)
    cell = fit_data.batch.expand_as(fit_data.states) * num_states + fit_data.states
    flat = cell.reshape(-1)
    visits = torch.zeros(m * num_states, dtype=torch.float64).index_add_(0, flat, mask.reshape(-1))
    sums = torch.zeros(m * num_states, dtype=torch.float64).index_add_(
        0, flat, (returns * mask).reshape(-1)
    )
    column_sums = torch.zeros(m, dtype=torch.float64).index_add_(
        0, fit_data.batch, (returns * mask).sum(0)
    )
    column_steps = torch.zeros(m, dtype=torch.float64).index_add_(0, fit_data.batch, mask.sum(0))
    constant = column_sums / column_steps.clamp_min(1.0)
    visits, sums = visits.view(m, num_states), sums.view(m, num_states)
    fitted_mc = torch.where(visits > 0, sums / visits.clamp_min(1.0), constant[:, None])

    # LSTD(0): Σ_t x_t (x_t − γ(1 − term_t) x'_t)ᵀ V = Σ_t x_t r_t with one-hot x
    batch = fit_data.batch.expand_as(fit_data.states).reshape(-1)
    s = fit_data.states.reshape(-1)
    s_next = fit_data.next_states.reshape(-1)
    weight = mask.reshape(-1)
    follow = gamma * (1.0 - fit_data.terminated.reshape(-1).double()) * weight
    system = torch.zeros(m, num_states, num_states, dtype=torch.float64)
    system.index_put_((batch, s, s), weight, accumulate=True)
    system.index_put_((batch, s, s_next), -follow, accumulate=True)
    system = system + ridge * torch.eye(num_states, dtype=torch.float64)
    target = torch.zeros(m, num_states, dtype=torch.float64)
    target.index_put_((batch, s), fit_data.rewards.reshape(-1) * weight, accumulate=True)
    fitted_td = torch.linalg.solve(system, target)
    terminal = mdp.terminal
    exact, fitted_mc, fitted_td = (
        torch.where(terminal, poison, table) for table in (exact, fitted_mc, fitted_td)
    )
    return Critics(gamma, exact, fitted_mc, fitted_td, constant, mdp.rewards)


def sample_estimates(
    mdp: FiniteMDP,
    theta: Tensor,
    estimators: Mapping[str, Estimator],
    *,
    num_batches: int,
    trajectories_per_batch: int,
    generator: torch.Generator,
    horizon: int | None = None,
) -> dict[str, Tensor]:
    """Sample M batches of n episodes, fit critics on M other batches, estimate with each.

    Returns:
        ``(M, S, A)`` batch estimates per estimator name.
    """

    def draw() -> Episodes:
        return sample_episodes(
            mdp,
            theta,
            num_batches=num_batches,
            trajectories_per_batch=trajectories_per_batch,
            horizon=horizon,
            generator=generator,
        )

    data, fit = draw(), draw()
    critics = fit_critics(fit, mdp, state_values(mdp, theta))
    return batch_gradients(data, theta, estimators, critics)

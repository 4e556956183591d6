"""Returns, targets and advantages as pure functions of time-major tensors.

Every function takes rollouts shaped ``(T, N)`` (T steps of N environments) and two flags:

* ``terminated[t]``: the episode truly ended at step t, so nothing is bootstrapped past it;
* ``truncated[t]``: the episode was cut at step t (a time limit) but did not end, so the
  return is completed with ``next_values[t]`` = V(s'_t) of the true final observation.

The last row of a rollout is treated as a truncation (the rollout cut an episode that goes
on), so it bootstraps from ``next_values[T - 1]`` unless it terminated. When no critic exists
(plain REINFORCE), pass ``next_values=None``: the bootstrap is then 0, which is exact for
episodes that terminate and a documented approximation for those cut by a time limit.

Returns are constants for every loss (no gradient flows through them). The functions take
and return tensors, and compute on NumPy views of them: at rollout sizes (a few hundred
numbers) each torch operation costs microseconds of dispatch, several times its arithmetic,
and a return is a dozen such operations.

References: Sutton & Barto (2018), ch. 3 (G_t), ch. 7 (n-step), ch. 12 (λ-returns);
Schulman et al. (2016), "High-Dimensional Continuous Control Using GAE", section 3.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor


def _numpy_call(kernel: Callable[..., Any], *args: Any) -> Any:
    """``kernel`` on NumPy views of the tensor arguments; the results as tensors.

    Results land on the device of the first tensor argument (through the CPU if that is
    not the CPU).
    """
    device = next((a.device for a in args if isinstance(a, Tensor)), None)
    out = kernel(*(a.detach().cpu().numpy() if isinstance(a, Tensor) else a for a in args))

    def tensor(array: np.ndarray) -> Tensor:
        t = torch.from_numpy(array)
        return t if device is None or device.type == "cpu" else t.to(device)

    return tuple(map(tensor, out)) if isinstance(out, tuple) else tensor(out)


def _zeros_if_none(next_values: np.ndarray | None, like: np.ndarray) -> np.ndarray:
    return np.zeros_like(like) if next_values is None else next_values


def _reverse_scan(u: np.ndarray, w: np.ndarray) -> np.ndarray:
    """y_t = u_t + w_t y_{t+1} for t = T−1 … 0, with y_T = 0. Shapes ``(T, ...)``.

    Every return and advantage here is one such recursion.
    """
    out = np.empty_like(u)
    following = np.zeros_like(u[0])
    for t in range(u.shape[0] - 1, -1, -1):
        following = u[t] + w[t] * following
        out[t] = following
    return out


def discounted_returns(
    rewards: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: float,
    next_values: Tensor | None = None,
) -> Tensor:
    """Reward-to-go G_t = r_t + γ r_{t+1} + γ² r_{t+2} + ... until the episode ends.

    G_t = r_t + γ (1 − terminated_t) · (V(s'_t) if truncated_t else G_{t+1}),
    with the step after the last row read as a truncation (bootstrap from V(s'_{T-1})).

    Args:
        rewards: ``(T, N)`` rewards r_t (the article's R_{t+1}).
        terminated: ``(T, N)`` bool, the episode ended at t.
        truncated: ``(T, N)`` bool, the episode was cut at t.
        gamma: discount γ in [0, 1].
        next_values: ``(T, N)`` V(s'_t), used only where an episode is cut; None means 0.

    Returns:
        ``(T, N)`` returns G_t.

    Example:
        >>> r = torch.tensor([[1.0], [1.0], [1.0]])
        >>> done = torch.tensor([[False], [False], [True]])
        >>> discounted_returns(r, done, torch.zeros_like(done), 0.5).squeeze(1).tolist()
        [1.75, 1.5, 1.0]
    """
    return _numpy_call(_discounted_returns, rewards, terminated, truncated, gamma, next_values)


def _discounted_returns(
    rewards: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    gamma: float,
    next_values: np.ndarray | None = None,
) -> np.ndarray:
    next_values = _zeros_if_none(next_values, rewards)
    cut = truncated.astype(rewards.dtype)
    cut[-1] = 1.0  # the rollout's end is a cut: bootstrap from V(s'_{T-1})
    discount = gamma * (1.0 - terminated.astype(rewards.dtype))
    # G_t = (r_t + γ(1 − term_t) cut_t V(s'_t)) + γ(1 − term_t)(1 − cut_t) G_{t+1}
    return _reverse_scan(rewards + discount * cut * next_values, discount * (1.0 - cut))


def episode_returns(
    rewards: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: float,
    next_values: Tensor | None = None,
) -> Tensor:
    """The whole-trajectory return r(τ) = Σ_k γ^k r_k, repeated at every step of its episode.

    This is the weight of the policy gradient theorem before the reward-to-go step:
    ∇J = E[r(τ) Σ_t ∇log π(a_t|s_t)]. An episode that started before the rollout counts
    from the first step the rollout holds.

    Args:
        rewards, terminated, truncated, gamma, next_values: as in :func:`discounted_returns`.

    Returns:
        ``(T, N)`` with r(τ) of the episode that step t belongs to.

    Example:
        >>> r = torch.tensor([[1.0], [2.0], [4.0]])
        >>> term = torch.tensor([[False], [True], [True]])
        >>> episode_returns(r, term, torch.zeros_like(term), 1.0).squeeze(1).tolist()
        [3.0, 3.0, 4.0]
    """
    return _numpy_call(_episode_returns, rewards, terminated, truncated, gamma, next_values)


def _episode_returns(
    rewards: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    gamma: float,
    next_values: np.ndarray | None = None,
) -> np.ndarray:
    returns = _discounted_returns(rewards, terminated, truncated, gamma, next_values)
    done = terminated | truncated
    total = np.empty_like(returns)
    current = returns[0]
    for t in range(returns.shape[0]):
        if t > 0:
            current = np.where(done[t - 1], returns[t], current)
        total[t] = current
    return total


def discount_powers(terminated: Tensor, truncated: Tensor, gamma: float) -> Tensor:
    """γ^k where k counts steps since the start of the episode (within the rollout).

    The exact gradient of the discounted objective weights step t by γ^t (the discounted
    state visitation, Sutton & Barto 2018, section 13.3); most implementations drop it.

    Example:
        >>> term = torch.tensor([[False], [True], [False]])
        >>> discount_powers(term, torch.zeros_like(term), 0.5).squeeze(1).tolist()
        [1.0, 0.5, 1.0]
    """
    return _numpy_call(_discount_powers, terminated, truncated, gamma)


def _discount_powers(terminated: np.ndarray, truncated: np.ndarray, gamma: float) -> np.ndarray:
    done = terminated | truncated
    powers = np.empty(done.shape, dtype=np.float32)
    current = np.ones(done.shape[1:], dtype=np.float32)
    for t in range(done.shape[0]):
        if t > 0:
            current = np.where(done[t - 1], np.float32(1.0), current * np.float32(gamma))
        powers[t] = current
    return powers


def td_targets(rewards: Tensor, next_values: Tensor, terminated: Tensor, gamma: float) -> Tensor:
    """One-step bootstrapped return y_t = r_t + γ (1 − terminated_t) V(s'_t).

    A truncated step bootstraps like any other, because ``next_values`` holds V of the true
    final observation.

    Example:
        >>> td_targets(torch.tensor([1.0, 1.0]), torch.tensor([10.0, 10.0]),
        ...            torch.tensor([False, True]), 0.9).tolist()
        [10.0, 1.0]
    """
    return _numpy_call(_td_targets, rewards, next_values, terminated, gamma)


def _td_targets(
    rewards: np.ndarray, next_values: np.ndarray, terminated: np.ndarray, gamma: float
) -> np.ndarray:
    return rewards + gamma * (1.0 - terminated.astype(rewards.dtype)) * next_values


def td_errors(
    rewards: Tensor, values: Tensor, next_values: Tensor, terminated: Tensor, gamma: float
) -> Tensor:
    """TD error δ_t = r_t + γ (1 − terminated_t) V(s'_t) − V(s_t).

    The target is a constant (computed under no_grad); gradients flow only through
    ``values``, so δ² is the semi-gradient critic loss of the article.

    Example:
        >>> td_errors(torch.tensor([1.0]), torch.tensor([2.0]), torch.tensor([3.0]),
        ...           torch.tensor([False]), 0.5).tolist()
        [0.5]
    """
    return td_targets(rewards, next_values, terminated, gamma).to(values.dtype) - values


def nstep_returns(
    rewards: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: float,
    n: int,
) -> Tensor:
    """n-step bootstrapped return G_t^(n) = Σ_{k<m} γ^k r_{t+k} + γ^m (1 − term) V(s'_{t+m−1}).

    m = min(n, steps until the episode ends or the rollout is cut); the bootstrap is dropped
    only when the episode terminated. n = 1 gives :func:`td_targets`; n ≥ T gives
    :func:`discounted_returns` with bootstrapping.

    Example:
        >>> r = torch.ones(3, 1); v = torch.full((3, 1), 10.0); f = torch.zeros(3, 1).bool()
        >>> nstep_returns(r, v, f, f, 0.5, 2).squeeze(1).tolist()
        [4.0, 4.0, 6.0]
    """
    return _numpy_call(_nstep_returns, rewards, next_values, terminated, truncated, gamma, n)


def _nstep_returns(
    rewards: np.ndarray,
    next_values: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    gamma: float,
    n: int,
) -> np.ndarray:
    if n < 1:
        raise ValueError(f"n-step returns need n >= 1, got {n}")
    length = rewards.shape[0]
    if n >= length:  # no window reaches past the rollout: one reverse recursion suffices
        return _discounted_returns(rewards, terminated, truncated, gamma, next_values)
    not_terminal = 1.0 - terminated.astype(rewards.dtype)
    done = terminated | truncated
    returns = np.empty_like(rewards)
    for t in range(length):
        total = np.zeros_like(rewards[t])
        discount = np.ones_like(rewards[t])
        alive = np.ones_like(rewards[t], dtype=bool)  # episode not ended before t+k
        bootstrap = np.zeros_like(rewards[t])
        for k in range(min(n, length - t)):
            step = t + k
            total = total + np.where(alive, discount * rewards[step], 0.0)
            discount_next = discount * gamma
            last = alive & (done[step] | (k == n - 1) | (step == length - 1))
            bootstrap = np.where(
                last, discount_next * not_terminal[step] * next_values[step], bootstrap
            )
            alive = alive & ~done[step]
            discount = discount_next
        returns[t] = total + bootstrap
    return returns


def gae(
    rewards: Tensor,
    values: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[Tensor, Tensor]:
    """Generalized advantage estimation.

    δ_t = r_t + γ (1 − terminated_t) V(s'_t) − V(s_t)
    A_t = δ_t + γ λ (1 − done_t) A_{t+1},   done = terminated ∨ truncated

    λ = 0 gives the TD error; λ = 1 gives the bootstrapped Monte-Carlo return minus V(s_t).
    Because V(s'_t) comes in as ``next_values``, a truncated step bootstraps from the true
    final observation with no special case.

    Args:
        rewards, values, next_values: ``(T, N)`` r_t, V(s_t), V(s'_t).
        terminated, truncated: ``(T, N)`` bool flags.
        gamma: discount γ; gae_lambda: λ in [0, 1].

    Returns:
        ``(advantages, returns)`` both ``(T, N)``, with returns = advantages + values (the
        λ-return, the critic's regression target).

    Reference: Schulman et al. (2016), equations 11-16.

    Example:
        >>> r = torch.ones(3, 1); v = torch.zeros(3, 1); f = torch.zeros(3, 1).bool()
        >>> gae(r, v, v, f, f, 1.0, 1.0)[0].squeeze(1).tolist()
        [3.0, 2.0, 1.0]
    """
    return _numpy_call(_gae, rewards, values, next_values, terminated, truncated, gamma, gae_lambda)


def _gae(
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    gamma: float,
    gae_lambda: float,
) -> tuple[np.ndarray, np.ndarray]:
    delta = rewards + gamma * (1.0 - terminated.astype(rewards.dtype)) * next_values - values
    carry = 1.0 - (terminated | truncated).astype(rewards.dtype)
    advantages = _reverse_scan(delta, gamma * gae_lambda * carry)
    return advantages, advantages + values

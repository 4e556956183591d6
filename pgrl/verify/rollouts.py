"""Vectorised sampling of whole episodes from a finite MDP, in pgrl's time-major layout.

All trajectories are sampled at once: column n of the ``(T, N)`` tensors is one environment
that plays ``episodes_per_column`` whole episodes back to back (same-step autoreset: the row
after a finished episode holds the first step of the next one) and then idles. Idle rows are
placeholders exactly as in pgrl's episodic collection (:class:`pgrl.types.Rollout`): mask 0,
reward 0, ``truncated=True`` so that no return crosses them.

An episode ends with ``terminated`` when it enters a terminal state and with ``truncated``
when it reaches the time limit H (``mdp.horizon``) first; ``next_states`` holds the true
next state s'_t in both cases, so a critic can bootstrap from V(s'_t) at a time limit.

Columns are grouped into batches: column n belongs to batch ``batch[n]``, and every batch
holds the same number of episodes (trajectories), so one batch gives one gradient estimate.
Putting more than one episode in a column is what lets a return that ignores ``terminated``
leak from one episode into the next, the bug the verification must be able to catch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from pgrl.errors import ConfigError
from pgrl.types import Rollout
from pgrl.verify.exact import policy
from pgrl.verify.mdp import FiniteMDP

__all__ = ["Episodes", "sample_episodes"]


@dataclass(frozen=True)
class Episodes:
    """Sampled episodes, time-major. States and actions are indices.

    Shapes: states, actions, next_states ``(T, N)`` int64; rewards, mask ``(T, N)`` float64;
    terminated, truncated ``(T, N)`` bool; batch ``(N,)`` int64 in [0, num_batches).
    """

    states: Tensor
    actions: Tensor
    rewards: Tensor
    next_states: Tensor
    terminated: Tensor
    truncated: Tensor
    mask: Tensor
    batch: Tensor
    num_batches: int
    trajectories_per_batch: int

    def rollout(self) -> Rollout:
        """The same data as a :class:`pgrl.types.Rollout` (the state index as a 1-d observation)."""
        return Rollout(
            obs=self.states.unsqueeze(-1).to(torch.float64),
            actions=self.actions,
            rewards=self.rewards,
            next_obs=self.next_states.unsqueeze(-1).to(torch.float64),
            terminated=self.terminated,
            truncated=self.truncated,
            mask=self.mask,
        )


def _categorical(cdf: Tensor, generator: torch.Generator) -> Tensor:
    """One index per row of ``cdf`` ``(N, K)`` by inverting the CDF with a uniform draw."""
    u = torch.rand(cdf.shape[0], 1, generator=generator, dtype=cdf.dtype)
    return (u > cdf[:, :-1]).sum(-1)


def sample_episodes(
    mdp: FiniteMDP,
    theta: Tensor,
    *,
    num_batches: int,
    trajectories_per_batch: int,
    episodes_per_column: int = 2,
    horizon: int | None = None,
    generator: torch.Generator,
) -> Episodes:
    """Sample ``num_batches × trajectories_per_batch`` episodes of π_θ in parallel.

    Args:
        mdp: the MDP; episodes start from ρ₀.
        theta: ``(S, A)`` softmax logits of the policy.
        num_batches: M, independent batches.
        trajectories_per_batch: n, episodes per batch; a multiple of ``episodes_per_column``.
        episodes_per_column: K, whole episodes each column plays back to back.
        horizon: time limit H (default ``mdp.horizon``); an episode that reaches it is
            truncated.
        generator: the random stream (the only source of randomness).

    Returns:
        :class:`Episodes` with N = M n / K columns.
    """
    if trajectories_per_batch % episodes_per_column:
        raise ConfigError(
            f"trajectories_per_batch ({trajectories_per_batch}) must be a multiple of "
            f"episodes_per_column ({episodes_per_column})"
        )
    horizon = mdp.horizon if horizon is None else horizon
    columns_per_batch = trajectories_per_batch // episodes_per_column
    num_columns = num_batches * columns_per_batch
    policy_cdf = policy(theta.detach()).cumsum(-1)
    transition_cdf = mdp.transitions.cumsum(-1)
    start_cdf = mdp.start.cumsum(-1).expand(num_columns, -1)

    state = _categorical(start_cdf, generator)
    steps_in_episode = torch.zeros(num_columns, dtype=torch.int64)
    episodes_done = torch.zeros(num_columns, dtype=torch.int64)
    rows: list[tuple[Tensor, ...]] = []
    while True:
        active = episodes_done < episodes_per_column
        if not bool(active.any()):
            break
        action = _categorical(policy_cdf[state], generator)
        next_state = _categorical(transition_cdf[state, action], generator)
        reward = mdp.rewards[state, action]
        steps_in_episode = steps_in_episode + 1
        terminated = mdp.terminal[next_state] & active
        truncated = ((steps_in_episode >= horizon) & ~terminated) | ~active
        rows.append(
            (
                torch.where(active, state, 0),
                torch.where(active, action, 0),
                torch.where(active, reward, 0.0),
                torch.where(active, next_state, 0),
                terminated,
                truncated,
                active.to(torch.float64),
            )
        )
        done = (terminated | truncated) & active
        episodes_done = episodes_done + done.long()
        state = torch.where(done, _categorical(start_cdf, generator), next_state)
        steps_in_episode = torch.where(done, 0, steps_in_episode)
    states, actions, rewards, next_states, terminated, truncated, mask = (
        torch.stack(column) for column in zip(*rows, strict=True)
    )
    batch = torch.arange(num_batches).repeat_interleave(columns_per_batch)
    return Episodes(
        states,
        actions,
        rewards,
        next_states,
        terminated,
        truncated,
        mask,
        batch,
        num_batches,
        trajectories_per_batch,
    )

"""Typed containers of tensors that flow from collection to the algorithms."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass(frozen=True)
class Rollout:
    """T steps of N environments, time-major, collected with the current policy.

    Every row is a transition (s_t, a_t, r_t, s'_t, terminated_t, truncated_t) where s'_t is the
    true next observation (the final observation when an episode ended). ``mask`` is 1.0 for
    a real transition and 0.0 for a placeholder that must not be learned from: the reset step
    of next-step autoreset, or steps an environment takes after it finished its episodes in
    episodic collection. Placeholders carry ``truncated=True`` so that no return crosses them.

    Shapes: obs, next_obs ``(T, N, O)``; actions ``(T, N)`` (Discrete, int64) or
    ``(T, N, A)`` (Box); rewards, mask ``(T, N)`` float32; terminated, truncated ``(T, N)`` bool.
    """

    obs: Tensor
    actions: Tensor
    rewards: Tensor
    next_obs: Tensor
    terminated: Tensor
    truncated: Tensor
    mask: Tensor

    @property
    def loss_mask(self) -> Tensor | None:
        """``mask`` for the losses' masked means, or None when every step is real.

        With None a loss takes a plain mean: the same value in fewer operations (at the
        sizes of classic control each costs microseconds forward and backward).
        """
        return None if bool(self.mask.all()) else self.mask


@dataclass(frozen=True)
class Batch:
    """B transitions sampled from a replay buffer, flat.

    Shapes: obs, next_obs ``(B, O)``; actions ``(B,)`` or ``(B, A)``; rewards ``(B,)``;
    terminated, truncated ``(B,)`` float32 (1.0 or 0.0, ready for arithmetic).
    """

    obs: Tensor
    actions: Tensor
    rewards: Tensor
    next_obs: Tensor
    terminated: Tensor
    truncated: Tensor

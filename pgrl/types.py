"""Typed containers of tensors that flow from collection to the algorithms."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor


def _moved(data: Rollout | Batch, device: torch.device | str | None) -> dict[str, Tensor] | None:
    """The fields of ``data`` moved to ``device``, or None when every field is already there."""
    if device is None:
        return None
    device = torch.device(device)
    fields = {f.name: getattr(data, f.name) for f in dataclasses.fields(data)}
    if all(_same_device(t.device, device) for t in fields.values()):
        return None
    return {name: t.to(device) for name, t in fields.items()}


def _same_device(have: torch.device, want: torch.device) -> bool:
    # "cuda" means the current CUDA device: a tensor on cuda:0 is already there
    if have.type != want.type:
        return False
    return want.index is None or have.index == want.index


@dataclass(frozen=True)
class Rollout:
    """T steps of N environments, time-major, collected with the current policy.

    Every row is a transition (s_t, a_t, r_t, s'_t, terminated_t, truncated_t) where s'_t is the
    true next observation (the final observation when an episode ended). ``mask`` is 1.0 for
    a real transition and 0.0 for a placeholder that must not be learned from: the reset step
    of next-step autoreset, or steps an environment takes after it finished its episodes in
    episodic collection. Placeholders carry ``truncated=True`` so that no return crosses them.

    Shapes: obs, next_obs ``(T, N, O)`` float32, the flat observation
    (:func:`pgrl.spaces.flatten_obs`); actions ``(T, N)`` (Discrete, int64) or ``(T, N, A)``
    (Box and MultiBinary float32, MultiDiscrete int64), as the networks produce them (Discrete
    from 0, whatever the space's start); rewards, mask ``(T, N)`` float32; terminated,
    truncated ``(T, N)`` bool.
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

    def to(self, device: torch.device | str | None) -> Rollout:
        """The rollout with every tensor on ``device`` (itself when they already are)."""
        moved = _moved(self, device)
        return self if moved is None else Rollout(**moved)


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

    def to(self, device: torch.device | str | None) -> Batch:
        """The batch with every tensor on ``device`` (itself when they already are)."""
        moved = _moved(self, device)
        return self if moved is None else Batch(**moved)

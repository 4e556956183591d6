"""The small interface every algorithm implements, and helpers they share."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, Protocol

import torch
from torch import Tensor, nn

from pgrl.envs import SpaceInfo
from pgrl.errors import EnvError

Collection = Literal["rollout", "episodes", "replay"]


class Algorithm(Protocol):
    """What the generic loop needs from an algorithm.

    The algorithm owns its networks and optimizers; the loop owns environments, storage,
    logging, evaluation and checkpoints.
    """

    collection: Collection
    """how the loop feeds it: fixed-length rollouts, whole episodes, or replay minibatches"""

    def act(self, obs: Tensor, *, deterministic: bool = False) -> Tensor:
        """Actions ``(N,)`` or ``(N, A)`` for observations ``(N, O)``."""
        ...

    def update(self, data: Any) -> dict[str, Tensor]:
        """One update from a Rollout or a Batch; returns metrics as 0-d tensors."""
        ...

    def modules(self) -> dict[str, nn.Module]:
        """Every network, by name (for checkpoints and weight transfer)."""
        ...

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimizer, by name (for checkpoints)."""
        ...


def require_box(name: str, spaces: SpaceInfo, env_id: str = "this environment") -> None:
    """Raise a helpful error when a continuous-only algorithm meets a Discrete space."""
    if spaces.discrete:
        raise EnvError(
            f"{name} needs a continuous (Box) action space; {env_id} has "
            f"{spaces.act_space}. Try 'a2c' or 'reinforce' (or 'ppo')."
        )


def make_adam(params: Iterable[nn.Parameter], learning_rate: float) -> torch.optim.Adam:
    """Adam with eps 1e-5 (OpenAI Baselines) and the fused kernel.

    On CPU with small networks the optimizer's per-tensor Python loop costs more than the
    arithmetic: the fused step measured 72 µs against 219 µs (foreach) and 298 µs (default)
    for A2C's 64x64 actor and critic.
    """
    return torch.optim.Adam(list(params), lr=learning_rate, eps=1e-5, fused=True)


def clip_grad(params: Iterable[nn.Parameter], max_grad_norm: float | None) -> Tensor | None:
    """Clip the global gradient norm when ``max_grad_norm`` is set; return the norm."""
    if max_grad_norm is None:
        return None
    return nn.utils.clip_grad_norm_(list(params), max_grad_norm, foreach=True)

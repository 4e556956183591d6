"""The small interface every algorithm implements, and helpers they share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch
from torch import Tensor, nn

from pgrl.envs import SpaceInfo
from pgrl.errors import EnvError

Collection = Literal["rollout", "episodes", "replay"]


@dataclass(frozen=True, kw_only=True)
class LoopSettings:
    """How much the generic loop collects, stores and samples for one algorithm.

    Each algorithm builds it from its config (:meth:`Algorithm.loop_settings`), so the loop
    reads these numbers and nothing else of a config. A field a collection does not use is 0.
    """

    rollout_steps: int = 0
    """"rollout": vector steps T per update (a rollout of N environments × T steps)"""
    episodes_per_env: int = 0
    """"episodes": whole episodes each environment runs per update"""
    buffer_size: int = 0
    """"replay": capacity of the replay buffer (transitions)"""
    learning_starts: int = 0
    """"replay": environment steps of uniformly random actions before the first update"""
    minibatch_size: int = 0
    """"replay": transitions B sampled from the buffer for one update"""
    updates_per_step: int = 0
    """"replay": updates per collected transition"""
    lr_schedule: Literal["constant", "linear"] = "constant"
    """step sizes: constant, or decayed linearly to 0 over the run's budget"""

    @classmethod
    def replay(cls, config: Any) -> LoopSettings:
        """The settings of a replay-buffer algorithm, read from the fields its config shares
        with DDPG's (buffer_size, learning_starts, minibatch_size, updates_per_step)."""
        return cls(
            buffer_size=config.buffer_size,
            learning_starts=config.learning_starts,
            minibatch_size=config.minibatch_size,
            updates_per_step=config.updates_per_step,
        )


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
        """Every optimizer, by name (for checkpoints and learning-rate schedules)."""
        ...

    def loop_settings(self) -> LoopSettings:
        """How much the loop collects, stores and samples per update, from the config."""
        ...

    def exploration_state(self) -> Tensor:
        """The state of the exploration-noise process (for checkpoints); empty if none."""
        ...

    def load_exploration_state(self, state: Tensor) -> None:
        """Continue the exploration-noise process from :meth:`exploration_state`'s tensor."""
        ...


def require_box(name: str, spaces: SpaceInfo, env_id: str = "this environment") -> None:
    """Raise a helpful error when a continuous-only algorithm meets a Discrete space."""
    if spaces.discrete:
        raise EnvError(
            f"{name} needs a continuous (Box) action space; {env_id} has "
            f"{spaces.act_space}. Try 'a2c' or 'reinforce' (or 'ppo')."
        )

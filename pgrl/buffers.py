"""Replay buffer: a preallocated ring of tensors with uniform sampling."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from pgrl.collect import Step
from pgrl.errors import ConfigError
from pgrl.types import Batch


class ReplayBuffer:
    """Stores transitions (s, a, r, s', terminated, truncated) in a fixed-size ring.

    Storage is allocated once: observations and next observations as float32, actions as
    float32 (Box) or int64 (Discrete), rewards as float32 and both flags as bool, so the
    memory per transition is the raw size of the data (see :attr:`bytes_per_transition`).
    Placeholders (``valid == False``, e.g. the reset step of next-step autoreset) are never
    stored.
    """

    def __init__(self, capacity: int, obs_dim: int, act_shape: tuple[int, ...], discrete: bool):
        if capacity < 1:
            raise ConfigError(f"buffer_size must be >= 1, got {capacity}")
        self.capacity = capacity
        self.obs = torch.zeros((capacity, obs_dim), dtype=torch.float32)
        self.next_obs = torch.zeros((capacity, obs_dim), dtype=torch.float32)
        self.actions = torch.zeros(
            (capacity, *act_shape), dtype=torch.int64 if discrete else torch.float32
        )
        self.rewards = torch.zeros(capacity, dtype=torch.float32)
        self.terminated = torch.zeros(capacity, dtype=torch.bool)
        self.truncated = torch.zeros(capacity, dtype=torch.bool)
        self.position = 0  # next slot to write
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def _tensors(self) -> dict[str, Tensor]:
        return {
            "obs": self.obs,
            "next_obs": self.next_obs,
            "actions": self.actions,
            "rewards": self.rewards,
            "terminated": self.terminated,
            "truncated": self.truncated,
        }

    @property
    def bytes_per_transition(self) -> int:
        """Bytes of storage per stored transition (all arrays / capacity)."""
        total = sum(t.element_size() * t.numel() for t in self._tensors().values())
        return total // self.capacity

    @staticmethod
    def raw_bytes_per_transition(obs_dim: int, act_dim: int) -> int:
        """Size of one transition as data: s, s', a, r as float32 and two bool flags."""
        return 4 * (2 * obs_dim + act_dim + 1) + 2

    def add(self, step: Step) -> None:
        """Append the valid rows of one vector step (overwriting the oldest when full)."""
        rows = np.flatnonzero(step.valid)
        for i in rows:
            p = self.position
            self.obs[p] = torch.from_numpy(step.obs[i])
            self.next_obs[p] = torch.from_numpy(step.next_obs[i])
            self.actions[p] = torch.as_tensor(step.actions[i])
            self.rewards[p] = float(step.rewards[i])
            self.terminated[p] = bool(step.terminated[i])
            self.truncated[p] = bool(step.truncated[i])
            self.position = (p + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)

    def sample(self, minibatch_size: int) -> Batch:
        """A minibatch of ``minibatch_size`` transitions drawn uniformly with replacement."""
        if self.size == 0:
            raise ConfigError("cannot sample from an empty replay buffer")
        index = torch.randint(0, self.size, (minibatch_size,))
        return Batch(
            obs=self.obs[index],
            actions=self.actions[index],
            rewards=self.rewards[index],
            next_obs=self.next_obs[index],
            terminated=self.terminated[index].float(),
            truncated=self.truncated[index].float(),
        )

    def state_dict(self) -> dict[str, Tensor]:
        """The stored part of the ring (for checkpoints) with position and size."""
        state = {name: t[: self.size].clone() for name, t in self._tensors().items()}
        state["position_size"] = torch.tensor([self.position, self.size], dtype=torch.int64)
        return state

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        position, size = (int(v) for v in state["position_size"])
        if size > self.capacity:
            raise ConfigError(
                f"checkpoint buffer holds {size} transitions, more than buffer_size {self.capacity}"
            )
        for name, tensor in self._tensors().items():
            tensor[:size] = state[name]
        self.position, self.size = position, size

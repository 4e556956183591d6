"""Shared test settings: one torch thread (the fastest for small networks, and the benchmarks'
setting) and a registered toy environment for truncation tests."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

torch.set_num_threads(1)


class ConstantRewardEnv(gym.Env):
    """Reward 1 every step, a constant observation, and no terminal state.

    With a time limit of H steps, the right value of every state is 1/(1 − γ): the limit is
    a truncation. ``limit_as_terminal=True`` makes the environment (wrongly) report the limit
    as a termination, which is what a library that conflates the two would learn from.
    """

    def __init__(self, limit_as_terminal: bool = False, horizon: int = 5) -> None:
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.limit_as_terminal, self.horizon = limit_as_terminal, horizon

    def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
        super().reset(seed=seed)
        self.t = 0
        return np.ones(1, np.float32), {}

    def step(self, action):  # type: ignore[no-untyped-def]
        self.t += 1
        terminated = self.limit_as_terminal and self.t >= self.horizon
        return np.ones(1, np.float32), 1.0, terminated, False, {}


for _id, _kwargs, _limit in (
    ("pgrl-test/ConstantReward-v0", {}, 5),
    ("pgrl-test/ConstantRewardLimitAsTerminal-v0", {"limit_as_terminal": True}, 5),
):
    if _id not in gym.registry:
        gym.register(_id, entry_point=ConstantRewardEnv, kwargs=_kwargs, max_episode_steps=_limit)

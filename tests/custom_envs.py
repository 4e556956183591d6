"""Environments a user would write: not part of Gymnasium, registered on import.

``custom_envs:CustomLine-v0`` (Gymnasium's "module:EnvId") imports this module, which
registers the id. The tests also use the class, the factory and the wrapper directly.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class LineEnv(gym.Env):
    """Walk on a line from 0 to ``goal``: actions -1, 0, +1 (``Discrete(3, start=-1)``).

    Reward -0.1 per step and +1 on reaching the goal (terminal); 20 steps at most. The
    environment refuses actions outside its space, so an agent that sent 0..2 instead of
    -1..1 fails at once.
    """

    def __init__(self, goal: int = 5, max_steps: int = 20) -> None:
        self.goal = goal
        self.max_steps = max_steps
        self.observation_space = gym.spaces.Box(-50.0, 50.0, (2,), np.float32)
        self.action_space = gym.spaces.Discrete(3, start=-1)

    def _obs(self) -> np.ndarray:
        return np.array([self.position, self.goal - self.position], np.float32)

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.position = 0
        self.t = 0
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if not self.action_space.contains(action):
            raise ValueError(f"LineEnv got action {action!r}, outside {self.action_space}")
        self.position += int(action)
        self.t += 1
        reached = self.position >= self.goal
        reward = 1.0 if reached else -0.1
        return self._obs(), reward, reached, self.t >= self.max_steps, {}


def make_line_env(goal: int = 5) -> LineEnv:
    """A factory, as a user would pass it: ``pgrl.train(env=make_line_env)``."""
    return LineEnv(goal=goal)


class DoubleReward(gym.RewardWrapper):
    """Rewards × 2: a wrapper with a name the run can record."""

    def reward(self, reward: Any) -> float:
        return 2.0 * float(reward)


if "CustomLine-v0" not in gym.registry:
    gym.register("CustomLine-v0", entry_point=LineEnv)

"""Small environments with structured observations, for the encoder and learning tests.

Both are the same task: an agent on a track of ``size`` cells moves left, stays or moves
right, and is rewarded for reaching a target cell and staying there. The reward is

    r = (d − d') + [d' = 0]

with d, d' the distance to the target before and after the step: +1 per step towards the
target, −1 per step away, and +1 for every step that ends on it. The target never starts
under the agent, so from any start the best return over an episode of ``horizon`` steps is
exactly ``horizon + 1`` (d for the approach, then a bonus on each of the horizon − d + 1
steps that end on the target), a policy that stays put scores 0, and a random one about 1
(PixelTarget: 0.96, DictTarget: 1.47 over 1000 episodes; it rarely reaches the target).

* :class:`PixelTarget`: the observation is a 12x12 grayscale image (uint8, HWC with one
  channel) centred on the agent: the target is a vertical bar at column 6 + (g − a), clipped
  to the edge of the view when farther, the agent a short bar at the bottom of column 6.
  Actions are Discrete(3): left, stay, right; or, with ``actions=``, MultiDiscrete([3, 2],
  start=[−1, 0]) (the first component is the step −1, 0, +1; the second is ignored) or
  MultiBinary(2) (step = bit 1 − bit 0), for the other action spaces of the on-policy
  algorithms.
* :class:`DictTarget`: the observation is a Dict {"offset": Discrete(2·size − 1, start=−(size
  − 1)) (the target's cell minus the agent's), "position": Box (the agent's cell scaled to
  [−1, 1])}, which pgrl flattens to the one-hot of offset − start followed by the position.
  Actions are Discrete(3, start=−1): the step itself (−1, 0, +1). Both starts are negative,
  so a run that learns checks that pgrl shifts observations and actions by them.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

VIEW = 12  # side of PixelTarget's image
CENTRE = VIEW // 2


class _Track(gym.Env[Any, Any]):
    """The shared dynamics: positions, reward and time limit (a truncation)."""

    def __init__(self, size: int = 10, horizon: int = 15) -> None:
        self.size, self.horizon = size, horizon

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        self.agent = int(self.np_random.integers(self.size))
        # any cell but the agent's: the target never starts under it
        self.target = (self.agent + 1 + int(self.np_random.integers(self.size - 1))) % self.size
        self.t = 0
        return self._obs(), {}

    def _move(self, step: int) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        before = abs(self.agent - self.target)
        self.agent = int(np.clip(self.agent + step, 0, self.size - 1))
        after = abs(self.agent - self.target)
        self.t += 1
        reward = float(before - after) + (1.0 if after == 0 else 0.0)
        return self._obs(), reward, False, self.t >= self.horizon, {}

    def _obs(self) -> Any:
        raise NotImplementedError


class PixelTarget(_Track):
    """The track seen as a 12x12x1 uint8 image centred on the agent (see the module doc)."""

    def __init__(self, size: int = 10, horizon: int = 15, actions: str = "discrete") -> None:
        super().__init__(size, horizon)
        self.observation_space = gym.spaces.Box(0, 255, (VIEW, VIEW, 1), np.uint8)
        self.actions = actions
        self.action_space: gym.Space[Any] = {
            "discrete": gym.spaces.Discrete(3),
            "multidiscrete": gym.spaces.MultiDiscrete([3, 2], start=[-1, 0]),
            "multibinary": gym.spaces.MultiBinary(2),
        }[actions]

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} outside {self.action_space}")
        if self.actions == "multidiscrete":
            return self._move(int(action[0]))
        if self.actions == "multibinary":
            return self._move(int(action[1]) - int(action[0]))
        return self._move(int(action) - 1)

    def _obs(self) -> np.ndarray:
        image = np.zeros((VIEW, VIEW, 1), np.uint8)
        column = int(np.clip(CENTRE + self.target - self.agent, 0, VIEW - 1))
        image[: VIEW - 3, column] = 255  # the target: a tall bar
        image[VIEW - 2 :, CENTRE] = 128  # the agent: a short, dimmer bar at the bottom
        return image


class DictTarget(_Track):
    """The track as a Dict of the offset to the target (Discrete) and the position (Box)."""

    def __init__(self, size: int = 8, horizon: int = 15) -> None:
        super().__init__(size, horizon)
        self.observation_space = gym.spaces.Dict(
            {
                "offset": gym.spaces.Discrete(2 * size - 1, start=-(size - 1)),
                "position": gym.spaces.Box(-1.0, 1.0, (1,), np.float32),
            }
        )
        self.action_space = gym.spaces.Discrete(3, start=-1)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} outside {self.action_space}")
        return self._move(int(action))

    def _obs(self) -> dict[str, Any]:
        position = 2.0 * self.agent / (self.size - 1) - 1.0
        return {
            "offset": self.target - self.agent,
            "position": np.array([position], np.float32),
        }


def register() -> None:
    """Register the pgrl-test/*Target* environments (once)."""
    for env_id, entry_point, kwargs in (
        ("pgrl-test/PixelTarget-v0", PixelTarget, {}),
        ("pgrl-test/PixelTargetMultiDiscrete-v0", PixelTarget, {"actions": "multidiscrete"}),
        ("pgrl-test/PixelTargetMultiBinary-v0", PixelTarget, {"actions": "multibinary"}),
        ("pgrl-test/DictTarget-v0", DictTarget, {}),
    ):
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=entry_point, kwargs=kwargs)


register()

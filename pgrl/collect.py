"""Collection: the only code in pgrl that knows Gymnasium's autoreset rules.

Gymnasium 1.x vector environments reset finished sub-environments by themselves, in one of
two modes:

* **next-step** (Gymnasium's default, and the only mode of the numpy-vectorized classic
  control environments): the step that ends an episode returns the true final observation;
  the *following* step ignores its action, resets, and returns the reset observation with
  reward 0. That following step is not a transition. The collector records it as a
  placeholder (``mask = 0``, ``truncated = True``) so that no return or loss ever uses it,
  and does not count it as an environment step.
* **same-step**: the step that ends an episode returns the reset observation and puts the
  true final observation in ``info["final_obs"]``. The collector puts that final observation
  in ``next_obs``, so a truncated episode bootstraps from V(s') of the right state.

Either way the algorithms receive clean transitions (s, a, r, s', terminated, truncated).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from torch import Tensor

from pgrl.checkpoint import generator_state, set_generator_state
from pgrl.envs import autoreset_mode, space_info
from pgrl.errors import CheckpointError, EnvError, NonFiniteError, PgrlError
from pgrl.nets import row_generators
from pgrl.spaces import SpaceInfo, flatten_obs, from_env_actions, to_env_actions
from pgrl.types import Rollout

ActFn = Callable[[Tensor], Tensor]
"""Maps observations ``(N, O)`` to actions ``(N,)`` (Discrete) or ``(N, A)`` (Box)."""

ACTING_STREAM = 0x61637421
"""The third word of every acting generator's seed (see :func:`acting_generators`)."""


def acting_generators(seed: int, first_env: int, count: int) -> list[np.random.Generator]:
    """One generator per environment ``first_env … first_env + count − 1`` of run ``seed``.

    Environment i's action noise and random warm-up actions come from
    PCG64(SeedSequence([seed, i, ACTING_STREAM])) and from nothing else, so they do not
    depend on which process acts for environment i or on the other environments beside it.

    Example:
        >>> a = acting_generators(0, 0, 3)[2].random()
        >>> b = acting_generators(0, 2, 1)[0].random()
        >>> a == b
        True
    """
    return [
        np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, i, ACTING_STREAM])))
        for i in range(first_env, first_env + count)
    ]


@dataclass
class EpisodeStats:
    """Returns and lengths of the episodes that finished since the last :meth:`pop`."""

    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    keys: list[tuple[int, int]] = field(default_factory=list)
    """(vector step, environment index) of each episode's end: the order one process sees"""

    def pop(self) -> tuple[list[float], list[int]]:
        out = (self.returns, self.lengths)
        self.returns, self.lengths, self.keys = [], [], []
        return out

    def merge(self, parts: Sequence[EpisodeStats]) -> None:
        """Add the episodes of ``parts`` (shares of the environments), in one process's order."""
        rows = sorted(
            (key, ret, length)
            for part in parts
            for key, ret, length in zip(part.keys, part.returns, part.lengths, strict=True)
        )
        for key, ret, length in rows:
            self.keys.append(key)
            self.returns.append(ret)
            self.lengths.append(length)


@dataclass
class Step:
    """One vector step as clean transitions, all arrays with leading dimension N."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    valid: np.ndarray  # False for the reset step of next-step autoreset


class Collector:
    """Steps a vector environment with a policy and returns clean transitions.

    Args:
        envs: a Gymnasium vector environment with next-step or same-step autoreset.
        seed: seeds the first reset (sub-environment i gets ``seed + i``) and the acting
            generators (:func:`acting_generators`): action noise and random warm-up actions.
        first_env: the run's index of ``envs``' first sub-environment (a rollout worker
            steps a share of the run's environments; their seeds keep the run's numbering).
    """

    def __init__(
        self, envs: VectorEnv, seed: int, name: str | None = None, *, first_env: int = 0
    ) -> None:
        self.envs = envs
        self.first_env = first_env
        self.name = name or _env_name(envs)
        self.mode = autoreset_mode(envs)
        self.spaces = space_info(envs)
        self.num_envs = envs.num_envs
        self._obs_shape = (self.num_envs, self.spaces.obs_dim)
        self.seed = seed
        self.stats = EpisodeStats()
        self.env_steps = 0  # real transitions collected, placeholders excluded
        self._vector_steps = 0
        self._all_valid = np.ones(self.num_envs, dtype=bool)
        self._all_valid.flags.writeable = False
        self.generators = acting_generators(seed, first_env, self.num_envs)
        self._sampling_space = copy.deepcopy(self.spaces.action_space)
        self.reset(seed=seed)

    def reset(self, seed: int | None = None) -> None:
        """Reset every sub-environment; episodes in progress are dropped from the stats.

        With ``seed``, sub-environment i (the run's ``first_env + i``) gets ``seed + first_env + i``.
        """
        try:
            obs, _ = self.envs.reset(seed=None if seed is None else seed + self.first_env)
        except PgrlError:
            raise
        except Exception as exc:
            raise self._fault("reset", exc) from exc
        self.obs = self._flat(obs)
        self._check_finite(self.obs, "observation")
        self._pending_reset = np.zeros(self.num_envs, dtype=bool)
        self._ep_return = np.zeros(self.num_envs, dtype=np.float64)
        self._ep_length = np.zeros(self.num_envs, dtype=np.int64)

    def reseed(self, seed: int) -> None:
        """Reset every sub-environment with ``seed`` (sub-environment i: ``seed + i``).

        A checkpoint boundary does this, so a resumed run continues as the uninterrupted one;
        the acting generators continue (a checkpoint carries their states).
        """
        self.reset(seed=seed)

    def generator_states(self) -> list[dict[str, Any]]:
        """The acting generators' states, as JSON data (one per environment)."""
        return [generator_state(generator) for generator in self.generators]

    def set_generator_states(self, states: Sequence[Mapping[str, Any]]) -> None:
        """Continue the acting generators from :meth:`generator_states`' output."""
        if len(states) != self.num_envs:
            raise CheckpointError(
                f"the checkpoint holds {len(states)} acting generators for {self.num_envs} "
                "environments"
            )
        for generator, state in zip(self.generators, states, strict=True):
            set_generator_state(generator, state)

    @property
    def vector_steps(self) -> int:
        """Vector steps taken, reset placeholders included (a checkpoint carries it)."""
        return self._vector_steps

    def restore_counts(self, env_steps: int, vector_steps: int) -> None:
        """Continue counting from a checkpoint's ``env_steps`` and ``vector_steps``."""
        self.env_steps = env_steps
        self._vector_steps = vector_steps

    def random_actions(self) -> Tensor:
        """Uniform random actions from the action space (for warm-up), as a tensor: row i
        from environment i's acting generator."""
        space = self._sampling_space
        assert space is not None  # (space_info of a vector environment keeps its spaces)
        samples = []
        for generator in self.generators:
            space._np_random = generator  # sample() draws from space.np_random
            samples.append(space.sample())
        sample = from_env_actions(self.spaces, np.stack(samples))
        return torch.as_tensor(sample, dtype=torch.int64 if self.spaces.discrete else None)

    def metrics(self) -> dict[str, float]:
        """Columns of the metrics rows about collection itself: none in one process."""
        return {}

    def act(self, act: ActFn) -> Tensor:
        """``act`` on the current observations, each row's noise from its environment's
        acting generator (:func:`pgrl.nets.row_generators`)."""
        with torch.inference_mode(), row_generators(self.generators):
            return act(torch.from_numpy(self.obs))

    def policy_step(self, act: ActFn | None) -> Step:
        """One vector step with ``act``'s actions, or random warm-up actions for None."""
        with torch.inference_mode():
            actions = self.random_actions() if act is None else self.act(act)
        return self.step(actions)

    def env_actions(self, actions: Tensor | np.ndarray) -> np.ndarray:
        """The copy of the actions sent to the environment, in its own form (Box: clipped)."""
        array = actions if isinstance(actions, np.ndarray) else actions.detach().cpu().numpy()
        return to_env_actions(self.spaces, array)

    def _flat(self, obs: object) -> np.ndarray:
        """A batch of raw observations as flat float32 vectors ``(N, O)``, or one line saying
        that the environment returned something its observation space does not describe."""
        problem = ""
        try:
            if self.spaces.flat_obs:
                flat = np.asarray(obs, dtype=np.float32)
            else:
                flat = flatten_obs(self.spaces, obs)
            if flat.shape == self._obs_shape:
                return flat
            problem = f"shape {flat.shape}, expected {self._obs_shape}"
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        raise EnvError(
            f"environment {self.name} returned an observation that does not fit its "
            f"observation space {self.spaces.obs_space} at vector step {self._vector_steps} "
            f"({problem}). Check the environment's reset/step or its wrappers."
        )

    def _fault(self, call: str, exc: Exception) -> EnvError:
        """One line for an exception the environment raised."""
        text = str(exc).split("\n")[0]
        return EnvError(
            f"environment {self.name} raised {type(exc).__name__} in {call}() at vector step "
            f"{self._vector_steps} (env steps so far {self.env_steps}): {text}"
        )

    def step(self, actions: Tensor, active: np.ndarray | None = None) -> Step:
        """Send ``actions`` (N, ...) and return the resulting transitions.

        ``active`` (N,) bool marks the environments whose transitions count; the others step
        too (a vector environment steps all of them) but yield placeholders.
        """
        obs = self.obs
        step_actions = actions.detach().cpu().numpy()
        try:
            next_obs, rewards, terminated, truncated, info = self.envs.step(
                self.env_actions(step_actions)
            )
        except PgrlError:
            raise
        except Exception as exc:
            raise self._fault("step", exc) from exc
        self._vector_steps += 1
        next_obs = self._flat(next_obs)
        rewards = np.asarray(rewards, dtype=np.float32)
        terminated = np.asarray(terminated, dtype=bool)
        truncated = np.asarray(truncated, dtype=bool)
        if not math.isfinite(float(rewards.sum()) + float(next_obs.sum())):
            self._check_finite(rewards, "reward")  # (a finite sum that overflowed passes)
            self._check_finite(next_obs, "observation")
        done = terminated | truncated
        pending = self._pending_reset
        any_pending = bool(pending.any())
        # valid: the step is a transition (not a reset placeholder) of an active environment
        all_valid = active is None and not any_pending
        valid = self._all_valid if all_valid else ~pending
        if active is not None:
            valid = valid & active
        transition_next_obs = next_obs
        if self.mode is AutoresetMode.NEXT_STEP:
            # placeholders: the reset step carries no transition and must cut every return
            if any_pending:
                truncated = truncated | pending
                self._pending_reset = done & ~pending
            else:
                self._pending_reset = done
        elif done.any():
            transition_next_obs = next_obs.copy()
            final_obs = info["final_obs"]
            space = self.spaces.observation_space
            for i in np.flatnonzero(done):
                if self.spaces.flat_obs or space is None:
                    transition_next_obs[i] = final_obs[i]
                else:
                    transition_next_obs[i] = gym.spaces.flatten(space, final_obs[i])
            self._check_finite(transition_next_obs, "observation")
        self._track_episodes(rewards, done, valid, all_valid)
        self.obs = next_obs
        return Step(obs, step_actions, rewards, transition_next_obs, terminated, truncated, valid)

    def _track_episodes(
        self, rewards: np.ndarray, done: np.ndarray, valid: np.ndarray, all_valid: bool
    ) -> None:
        if all_valid:
            self._ep_return += rewards
            self._ep_length += 1
            self.env_steps += self.num_envs
            finished = done
        else:
            self._ep_return += rewards * valid
            self._ep_length += valid
            self.env_steps += int(np.count_nonzero(valid))
            finished = done & valid
        if finished.any():
            for i in np.flatnonzero(finished):
                self.stats.returns.append(float(self._ep_return[i]))
                self.stats.lengths.append(int(self._ep_length[i]))
                self.stats.keys.append((self._vector_steps, self.first_env + int(i)))
            self._ep_return[finished] = 0.0
            self._ep_length[finished] = 0

    def _check_finite(self, values: np.ndarray, quantity: str) -> None:
        if not np.isfinite(values).all():
            bad = np.argwhere(~np.isfinite(values))[0]
            raise NonFiniteError(
                f"non-finite {quantity} from environment {int(bad[0])} at vector step "
                f"{self._vector_steps} (env steps so far {self.env_steps}): "
                f"{values[tuple(bad)]}. Check the environment or its wrappers."
            )

    def rollout(self, act: ActFn, steps: int) -> Rollout:
        """The next ``steps`` vector steps as a time-major :class:`Rollout` ``(T, N)``.

        Episodes continue across rollouts; the last row is read as a truncation by the
        return functions (the rollout cut an episode that goes on).
        """
        return self.rollout_arrays(act, steps).to_rollout()

    def rollout_arrays(self, act: ActFn, steps: int) -> RolloutArrays:
        """:meth:`rollout` as NumPy arrays (what a rollout worker sends back)."""
        buffers = RolloutArrays(steps, self.num_envs, self.obs.shape[1:], self.spaces)
        with torch.inference_mode():
            for t in range(steps):
                buffers.put(t, self.step(self.act(act)))
        return buffers

    def episodes(self, act: ActFn, episodes_per_env: int = 1, max_steps: int = 100_000) -> Rollout:
        """Reset, then run each sub-environment for exactly ``episodes_per_env`` episodes.

        Running every environment for the same number of complete episodes keeps the batch
        an unbiased sample of episodes (stopping at a step count would favour short ones).
        Steps an environment takes after its last episode are placeholders (mask 0). An
        episode still running after ``max_steps`` vector steps is cut there (truncated).
        """
        return self.episode_arrays(act, episodes_per_env, max_steps).to_rollout()

    def episode_arrays(
        self, act: ActFn, episodes_per_env: int = 1, max_steps: int = 100_000
    ) -> RolloutArrays:
        """:meth:`episodes` as NumPy arrays (what a rollout worker sends back)."""
        self.reset()
        remaining = np.full(self.num_envs, episodes_per_env, dtype=np.int64)
        rows: list[Step] = []
        for _ in range(max_steps):
            actions = self.act(act)
            active = remaining > 0
            step = self.step(actions, active)
            step.truncated = step.truncated | ~active
            rows.append(step)
            remaining -= (step.terminated | step.truncated) & step.valid
            if not (remaining > 0).any():
                break
        else:
            rows[-1].truncated = rows[-1].truncated | (remaining > 0)
        # the stats of placeholder steps after an environment's last episode are not real
        self._ep_return[:] = 0.0
        self._ep_length[:] = 0
        return self._arrays(rows)

    def placeholder_arrays(self, act: ActFn, steps: int) -> RolloutArrays:
        """``steps`` more vector steps of environments whose episodes are all done.

        What :meth:`episodes` does for an environment that finished before the others:
        act (drawing its noise) and step, recording placeholders (mask 0, truncated). A
        rollout worker whose environments finished first takes these steps, so that every
        environment's generators advance as in one process.
        """
        rows = []
        inactive = np.zeros(self.num_envs, dtype=bool)
        for _ in range(steps):
            step = self.step(self.act(act), inactive)
            step.truncated = np.ones_like(step.truncated)
            rows.append(step)
        self._ep_return[:] = 0.0
        self._ep_length[:] = 0
        return self._arrays(rows)

    def _arrays(self, rows: Sequence[Step]) -> RolloutArrays:
        buffers = RolloutArrays(len(rows), self.num_envs, self.obs.shape[1:], self.spaces)
        for t, row in enumerate(rows):
            buffers.put(t, row)
        return buffers


class CollectorLike(Protocol):
    """What the loop needs from a collector: :class:`Collector` in this process, or
    :class:`pgrl.workers.RayCollector` on Ray workers."""

    env_steps: int
    stats: EpisodeStats
    spaces: SpaceInfo
    num_envs: int

    @property
    def vector_steps(self) -> int: ...

    def rollout(self, act: ActFn, steps: int) -> Rollout: ...

    def episodes(self, act: ActFn, episodes_per_env: int = 1) -> Rollout: ...

    def policy_step(self, act: ActFn | None) -> Step: ...

    def reseed(self, seed: int) -> None: ...

    def restore_counts(self, env_steps: int, vector_steps: int) -> None: ...

    def generator_states(self) -> list[dict[str, Any]]: ...

    def set_generator_states(self, states: Sequence[Mapping[str, Any]]) -> None: ...

    def metrics(self) -> dict[str, float]: ...


def _env_name(envs: VectorEnv) -> str:
    spec = envs.spec
    return spec.id if spec is not None else type(envs.unwrapped).__name__


class RolloutArrays:
    """Preallocated numpy arrays for one rollout; converted to tensors once at the end."""

    def __init__(
        self, steps: int, num_envs: int, obs_shape: tuple[int, ...], spaces: SpaceInfo
    ) -> None:
        act_shape = spaces.action_shape
        act_dtype = spaces.action_dtype
        self.obs = np.empty((steps, num_envs, *obs_shape), dtype=np.float32)
        self.next_obs = np.empty_like(self.obs)
        self.actions = np.empty((steps, num_envs, *act_shape), dtype=act_dtype)
        self.rewards = np.empty((steps, num_envs), dtype=np.float32)
        self.terminated = np.empty((steps, num_envs), dtype=bool)
        self.truncated = np.empty((steps, num_envs), dtype=bool)
        self.mask = np.empty((steps, num_envs), dtype=np.float32)

    def put(self, t: int, step: Step) -> None:
        self.obs[t] = step.obs
        self.next_obs[t] = step.next_obs
        self.actions[t] = step.actions
        self.rewards[t] = step.rewards
        self.terminated[t] = step.terminated
        self.truncated[t] = step.truncated
        self.mask[t] = step.valid

    def to_rollout(self) -> Rollout:
        return Rollout(**{name: torch.from_numpy(getattr(self, name)) for name in ROLLOUT_FIELDS})

    @staticmethod
    def join(parts: Sequence[RolloutArrays]) -> Rollout:
        """The rollout ``(T, N)`` of shares ``(T, N_w)`` of the environments, in their order."""
        return Rollout(
            **{
                name: torch.from_numpy(np.concatenate([getattr(p, name) for p in parts], axis=1))
                for name in ROLLOUT_FIELDS
            }
        )


ROLLOUT_FIELDS = ("obs", "actions", "rewards", "next_obs", "terminated", "truncated", "mask")

"""Callbacks: your code at fixed points of the training loop.

A callback is any object with some of these methods; the loop calls each one it has:

* ``on_start(agent)``: before the first iteration (also of ``agent.learn`` and resume);
* ``on_update(agent, data)``: with each batch (a ``Rollout`` or a replay ``Batch``) just
  before the algorithm updates on it, parameters as they were when it was collected;
* ``on_step(agent, env_steps) -> bool | None``: after every iteration (collect and update);
  returning ``False`` stops training there, as the end of the budget does (final
  checkpoint, evaluation and model);
* ``on_log(agent, env_steps, row) -> Mapping[str, float] | None``: at each metrics row; the
  returned metrics are logged with it (``metrics.csv``, TensorBoard, ``agent.history``);
* ``on_end(agent)``: after the last iteration.

Callbacks only read the agent: they never draw from the training run's generators, so a run
with callbacks equals the same run without them (until one stops it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from pgrl.errors import ConfigError

_HOOKS = ("on_start", "on_update", "on_step", "on_log", "on_end")


class Callback(Protocol):
    """Anything with one or more of ``on_start``, ``on_update``, ``on_step``, ``on_log``,
    ``on_end``."""


def check_callbacks(callbacks: Sequence[Any]) -> None:
    """Each callback has at least one hook (a common slip: passing the class, or a function)."""
    if isinstance(callbacks, (str, bytes)) or not isinstance(callbacks, Sequence):
        raise ConfigError(f"callbacks must be a list of callback objects, got {callbacks!r}")
    for callback in callbacks:
        if isinstance(callback, type) or not any(hasattr(callback, h) for h in _HOOKS):
            raise ConfigError(
                f"{callback!r} is not a callback: it needs one of the methods {', '.join(_HOOKS)}"
            )


class Callbacks:
    """The loop's view of a list of callbacks: calls the hooks each one has."""

    def __init__(self, callbacks: Sequence[Any]) -> None:
        self.callbacks = list(callbacks)
        # looked up once: on_update runs with every minibatch of the off-policy algorithms
        self._hooks = {
            hook: [getattr(c, hook) for c in self.callbacks if hasattr(c, hook)] for hook in _HOOKS
        }

    def _each(self, hook: str) -> list[Callable[..., Any]]:
        return self._hooks[hook]

    def start(self, agent: Any) -> None:
        for fn in self._each("on_start"):
            fn(agent)

    def update(self, agent: Any, data: Any) -> None:
        for fn in self._each("on_update"):
            fn(agent, data)

    def step(self, agent: Any, env_steps: int) -> bool:
        """True to go on; False when a callback asks to stop."""
        go_on = True
        for fn in self._each("on_step"):
            if fn(agent, env_steps) is False:
                go_on = False
        return go_on

    def log(self, agent: Any, env_steps: int, row: Mapping[str, float]) -> dict[str, float]:
        extra: dict[str, float] = {}
        for fn in self._each("on_log"):
            metrics = fn(agent, env_steps, dict(row))
            if metrics:
                extra.update({str(k): float(v) for k, v in metrics.items()})
        return extra

    def end(self, agent: Any) -> None:
        for fn in self._each("on_end"):
            fn(agent)


class EvalCallback:
    """Evaluate every ``every`` environment steps; keep the results and the best model.

    Args:
        every: environment steps between evaluations.
        episodes: deterministic episodes per evaluation.
        env: the evaluation environment (any form ``pgrl.train`` takes); None: the agent's.
        best_model: a path (``.safetensors`` file or directory) to save the best agent to.
        seed: the evaluation episodes' seed (apart from training seeds).

    After training, ``results`` holds ``(env_steps, mean return)`` pairs and ``best`` the
    best mean; each evaluation is also logged as ``callback_eval_return_mean``.
    """

    def __init__(
        self,
        every: int,
        episodes: int = 10,
        env: Any = None,
        best_model: str | Path | None = None,
        seed: int = 2_000_003,
    ) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ConfigError(f"EvalCallback: every must be an integer >= 1, got {every!r}")
        self.every = every
        self.episodes = episodes
        self.env = env
        self.best_model = None if best_model is None else Path(best_model)
        self.seed = seed
        self.results: list[tuple[int, float]] = []
        self.best = -math.inf
        self._next = every
        self._pending: dict[str, float] = {}

    def on_start(self, agent: Any) -> None:
        self._next = (agent.env_steps // self.every + 1) * self.every

    def on_step(self, agent: Any, env_steps: int) -> None:
        if env_steps < self._next:
            return
        self._next = (env_steps // self.every + 1) * self.every
        result = agent.evaluate(self.episodes, seed=self.seed, env=self.env)
        self.results.append((env_steps, result.mean))
        self._pending = {"callback_eval_return_mean": result.mean}
        if result.mean > self.best:
            self.best = result.mean
            if self.best_model is not None:
                agent.save(self.best_model)

    def on_log(self, agent: Any, env_steps: int, row: Mapping[str, float]) -> dict[str, float]:
        pending, self._pending = self._pending, {}
        return pending


class StopOnReturn:
    """Stop training once a metric reaches ``threshold``.

    ``metric`` is a column of the metrics rows (default: the mean return of the last 100
    training episodes), or an :class:`EvalCallback` whose latest evaluation is read.
    """

    def __init__(self, threshold: float, metric: str | EvalCallback = "episode_return_mean"):
        self.threshold = float(threshold)
        self.metric = metric
        self.stopped_at: int | None = None
        self._last = -math.inf

    def on_log(self, agent: Any, env_steps: int, row: Mapping[str, float]) -> None:
        if isinstance(self.metric, str) and self.metric in row:
            self._last = row[self.metric]

    def on_step(self, agent: Any, env_steps: int) -> bool:
        if isinstance(self.metric, EvalCallback):
            value = self.metric.results[-1][1] if self.metric.results else -math.inf
        else:
            value = self._last
        if value >= self.threshold:
            self.stopped_at = env_steps
            return False
        return True


__all__ = ["Callback", "Callbacks", "EvalCallback", "StopOnReturn", "check_callbacks"]

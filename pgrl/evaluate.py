"""Deterministic evaluation: the mean and spread of the return over whole episodes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from pgrl.collect import ActFn, Collector
from pgrl.envs import make_vec_env


@dataclass(frozen=True)
class EvalResult:
    """Returns and lengths of ``episodes`` evaluation episodes."""

    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return sum(self.returns) / len(self.returns) if self.returns else math.nan

    @property
    def std(self) -> float:
        if not self.returns:
            return math.nan
        mean = self.mean
        return math.sqrt(sum((r - mean) ** 2 for r in self.returns) / len(self.returns))


def evaluate(act: ActFn, env_id: str, episodes: int = 10, seed: int = 1_000_003) -> EvalResult:
    """Run ``episodes`` episodes, one per sub-environment, acting with ``act``.

    ``act`` should be deterministic (the policy's mode) for a reproducible score. The seed is
    kept apart from training seeds so evaluation episodes are not training episodes.
    """
    envs = make_vec_env(env_id, episodes)
    try:
        collector = Collector(envs, seed)
        with torch.inference_mode():
            collector.episodes(act, episodes_per_env=1)
        returns, lengths = collector.stats.pop()
    finally:
        envs.close()
    return EvalResult(returns, lengths)


def deterministic(algorithm) -> ActFn:  # type: ignore[no-untyped-def]
    """The algorithm's deterministic action function."""

    def act(obs: Tensor) -> Tensor:
        return algorithm.act(obs, deterministic=True)

    return act

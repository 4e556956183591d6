"""Deterministic evaluation: the mean and spread of the return over whole episodes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from pgrl.collect import ActFn, Collector
from pgrl.envs import EnvLike, resolve_env
from pgrl.errors import PgrlError


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


def evaluate(act: ActFn, env: EnvLike, episodes: int = 10, seed: int = 1_000_003) -> EvalResult:
    """Run ``episodes`` episodes, one per sub-environment, acting with ``act``.

    ``env`` is anything :func:`pgrl.envs.resolve_env` takes (new copies are built; a ready
    vector environment is copied, not stepped). ``act`` should be deterministic (the
    policy's mode) for a reproducible score. The seed is kept apart from training seeds so
    evaluation episodes are not training episodes.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise PgrlError(f"episodes must be an integer >= 1, got {episodes!r}")
    envs = resolve_env(env).make_vec(episodes)
    try:
        collector = Collector(envs, seed)
        with torch.inference_mode():
            collector.episodes(act, episodes_per_env=1)
        returns, lengths = collector.stats.pop()
    finally:
        envs.close()
    return EvalResult(returns, lengths)


def deterministic(algorithm: Any) -> ActFn:
    """The algorithm's deterministic action function."""

    def act(obs: Tensor) -> Tensor:
        return algorithm.act(obs, deterministic=True)

    return act


def record_video(
    act: ActFn,
    env: EnvLike,
    out_dir: str | Path,
    episodes: int = 1,
    seed: int = 1_000_003,
    name_prefix: str = "eval",
) -> list[Path]:
    """Record ``episodes`` episodes as MP4 files with Gymnasium's ``RecordVideo`` wrapper.

    Needs moviepy (``pip install 'pgrl[video]'``); the error says so when it is missing.
    Returns the paths of the written videos.
    """
    import importlib.util

    import gymnasium as gym
    import numpy as np

    from pgrl.spaces import space_info, to_env_actions

    missing = [m for m in ("moviepy", "pygame") if importlib.util.find_spec(m) is None]
    if missing:
        raise PgrlError(
            f"--video needs {' and '.join(missing)} to render and write MP4 files; install "
            f"them with pip install 'pgrl[video]' (pygame comes as pygame-ce, through "
            f"gymnasium[classic-control])"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    import os
    import warnings

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # render off-screen, no display needed
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    for old in out.glob(f"{name_prefix}*.mp4"):
        old.unlink()
    source = resolve_env(env)
    env = source.make(render_mode="rgb_array")
    info = space_info(env.observation_space, env.action_space)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "overwriting existing videos": we cleared ours above
        env = gym.wrappers.RecordVideo(
            env,
            str(out),
            episode_trigger=lambda _: True,
            name_prefix=name_prefix,
            disable_logger=True,
        )
    try:
        for episode in range(episodes):
            try:
                obs, _ = env.reset(seed=seed + episode)
            except gym.error.DependencyNotInstalled as exc:
                raise PgrlError(f"cannot render {source.name}: {exc}") from None
            done = False
            while not done:
                flat = gym.spaces.flatten(info.observation_space, obs)  # type: ignore[arg-type]
                with torch.inference_mode():
                    action = act(torch.as_tensor(np.asarray(flat, np.float32)).unsqueeze(0))
                env_action = to_env_actions(info, action.cpu().numpy())[0]
                obs, _, terminated, truncated, _ = env.step(env_action)
                done = bool(terminated or truncated)
    finally:
        env.close()
    return sorted(out.glob(f"{name_prefix}*.mp4"))

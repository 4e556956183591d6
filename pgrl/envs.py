"""Building vector environments, checking their spaces, and describing them.

pgrl always builds its vector environments with an explicit autoreset mode, and the
collector reads the mode back from ``envs.metadata["autoreset_mode"]`` so that it also
handles vector environments a user built.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Literal, get_args

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv

from pgrl.errors import EnvError

Vectorization = Literal["auto", "sync", "async", "vector_entry_point"]
VECTORIZATIONS: tuple[str, ...] = get_args(Vectorization)
Autoreset = Literal["auto", "next_step", "same_step"]

_AUTORESET = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP}


@dataclass(frozen=True)
class SpaceInfo:
    """What the networks need to know about an environment's spaces."""

    obs_dim: int
    discrete: bool
    act_dim: int  # number of actions (Discrete) or action dimensions (Box)
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    obs_space: str = ""
    act_space: str = ""


def check_env_id(env_id: str) -> gym.envs.registration.EnvSpec:
    """The registered spec for ``env_id``, or an error that suggests close names."""
    try:
        return gym.spec(env_id)
    except Exception as exc:  # gymnasium raises several error types here
        known = list(gym.registry.keys())
        close = difflib.get_close_matches(env_id, known, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        extra = ""
        if "Box2D" in str(exc) or "box2d" in str(exc) or "mujoco" in str(exc).lower():
            extra = f" ({exc})"
        raise EnvError(f"unknown environment id {env_id!r}.{hint}{extra}") from None


def make_vec_env(
    env_id: str,
    num_envs: int,
    *,
    vectorization: Vectorization = "auto",
    autoreset: Autoreset = "auto",
    env_kwargs: dict[str, Any] | None = None,
) -> VectorEnv:
    """Build ``num_envs`` copies of ``env_id`` as one vector environment.

    ``vectorization="auto"`` uses the environment's own vectorized implementation where
    Gymnasium has one (CartPole: several times faster than SyncVectorEnv) and SyncVectorEnv
    otherwise; AsyncVectorEnv only pays off when one step is slow. ``autoreset="auto"`` picks
    same-step autoreset for Sync/Async (no wasted step) and next-step where the environment's
    own implementation supports only that.
    """
    spec = check_env_id(env_id)
    if num_envs < 1:
        raise EnvError(f"num_envs must be >= 1, got {num_envs}")
    if vectorization not in VECTORIZATIONS:
        raise EnvError(
            f"vectorization must be one of {', '.join(VECTORIZATIONS)}; got {vectorization!r}"
        )
    mode = vectorization
    if mode == "auto":
        mode = "vector_entry_point" if spec.vector_entry_point is not None else "sync"
    if mode == "vector_entry_point" and spec.vector_entry_point is None:
        raise EnvError(f"{env_id} has no vectorized implementation; use 'sync' or 'async'")
    if autoreset == "auto":
        autoreset = "next_step" if mode == "vector_entry_point" else "same_step"
    vector_kwargs: dict[str, Any] = {}
    if mode in ("sync", "async"):
        vector_kwargs["autoreset_mode"] = _AUTORESET[autoreset]
    elif autoreset != "next_step":
        raise EnvError(f"{env_id}'s vectorized implementation supports only next-step autoreset")
    try:
        envs = gym.make_vec(
            env_id,
            num_envs=num_envs,
            vectorization_mode=mode,
            vector_kwargs=vector_kwargs,
            **(env_kwargs or {}),
        )
    except gym.error.DependencyNotInstalled as exc:
        raise EnvError(f"{env_id} needs an extra package: {exc}") from None
    return envs


def space_info(envs: VectorEnv) -> SpaceInfo:
    """Dimensions of a vector environment's single observation and action spaces."""
    obs_space = envs.single_observation_space
    act_space = envs.single_action_space
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise EnvError(
            f"pgrl's networks take flat Box observations; this environment has {obs_space}. "
            "Wrap it with gymnasium.wrappers.FlattenObservation."
        )
    if isinstance(act_space, gym.spaces.Discrete):
        return SpaceInfo(
            obs_dim=obs_space.shape[0],
            discrete=True,
            act_dim=int(act_space.n),
            obs_space=str(obs_space),
            act_space=str(act_space),
        )
    if isinstance(act_space, gym.spaces.Box) and len(act_space.shape) == 1:
        if not (np.all(np.isfinite(act_space.low)) and np.all(np.isfinite(act_space.high))):
            raise EnvError(f"pgrl needs finite action bounds; this environment has {act_space}")
        return SpaceInfo(
            obs_dim=obs_space.shape[0],
            discrete=False,
            act_dim=act_space.shape[0],
            low=act_space.low.astype(np.float32),
            high=act_space.high.astype(np.float32),
            obs_space=str(obs_space),
            act_space=str(act_space),
        )
    raise EnvError(f"pgrl supports Discrete and 1-D Box action spaces; got {act_space}")


def autoreset_mode(envs: VectorEnv) -> AutoresetMode:
    """The autoreset mode a vector environment declares (Gymnasium's default: next step)."""
    mode = envs.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    if isinstance(mode, str):
        mode = AutoresetMode(mode)
    if mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
        raise EnvError(
            f"pgrl collects from vector environments with next-step or same-step autoreset; "
            f"this one uses {mode}"
        )
    return mode

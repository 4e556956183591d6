"""The algorithms, one file each, and the registry the loop and the CLI build them from."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from pgrl.algos.a2c import A2C, A2CConfig
from pgrl.algos.base import Algorithm, NetworkFactory, require_box
from pgrl.algos.ddpg import DDPG, DDPGConfig
from pgrl.algos.ppo import PPO, PPOConfig
from pgrl.algos.reinforce import Reinforce, ReinforceConfig
from pgrl.algos.sac import SAC, SACConfig
from pgrl.algos.td3 import TD3, TD3Config
from pgrl.errors import ConfigError
from pgrl.spaces import SpaceInfo


@dataclass(frozen=True)
class AlgoSpec:
    """How to build one algorithm, and what it can handle."""

    name: str
    algorithm: Callable[..., Algorithm]
    """the class, called with (config, spaces, device=..., networks=...); mypy checks it
    implements :class:`Algorithm`"""
    config: type
    discrete: bool
    continuous: bool
    summary: str

    @property
    def action_kinds(self) -> tuple[str, ...]:
        """The action spaces it takes (:attr:`pgrl.spaces.SpaceInfo.action_kind`)."""
        if self.discrete:
            return ("discrete", "box", "multidiscrete", "multibinary")
        return ("box",)


ALGORITHMS: dict[str, AlgoSpec] = {
    "reinforce": AlgoSpec(
        "reinforce",
        Reinforce,
        ReinforceConfig,
        True,
        True,
        "REINFORCE: r(τ) or reward-to-go G_t, with a learned V(s), mean or no baseline",
    ),
    "a2c": AlgoSpec(
        "a2c",
        A2C,
        A2CConfig,
        True,
        True,
        "synchronous actor-critic with one-step (or n-step) bootstrapped advantages",
    ),
    "ddpg": AlgoSpec(
        "ddpg",
        DDPG,
        DDPGConfig,
        False,
        True,
        "deep deterministic policy gradient: target networks, replay, exploration noise",
    ),
    "ppo": AlgoSpec(
        "ppo",
        PPO,
        PPOConfig,
        True,
        True,
        "proximal policy optimization: clipped surrogate, GAE(λ), minibatch epochs",
    ),
    "td3": AlgoSpec(
        "td3",
        TD3,
        TD3Config,
        False,
        True,
        "twin delayed DDPG: clipped double Q, target policy smoothing, delayed actor",
    ),
    "sac": AlgoSpec(
        "sac",
        SAC,
        SACConfig,
        False,
        True,
        "soft actor-critic: squashed Gaussian policy, twin soft critics, automatic temperature",
    ),
}


def get_spec(name: str) -> AlgoSpec:
    """The registry entry for ``name``, or an error listing the known algorithms."""
    key = name.lower()
    if key not in ALGORITHMS:
        close = difflib.get_close_matches(key, list(ALGORITHMS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"unknown algorithm {name!r}.{hint} Known: {', '.join(sorted(ALGORITHMS))}"
        )
    return ALGORITHMS[key]


def build_algorithm(
    name: str,
    config: Any,
    spaces: SpaceInfo,
    env_name: str = "this environment",
    *,
    device: torch.device | str | None = None,
    networks: Mapping[str, NetworkFactory] | None = None,
) -> Algorithm:
    """Instantiate algorithm ``name`` after checking it can handle the action space.

    Args:
        name: a key of :data:`ALGORITHMS`.
        config: its config dataclass.
        spaces: the environment's spaces (:func:`pgrl.spaces.space_info`).
        env_name: what error messages call the environment.
        device: where the networks live and update (None: where they are built, the CPU).
            ``act`` takes and returns CPU tensors; ``update`` takes data on this device.
        networks: custom networks by role (the keys of ``algorithm.modules()`` that train,
            e.g. ``"policy"``, ``"value"``) and/or ``"encoder"``; see docs/networks.md.
    """
    spec = get_spec(name)
    if not spec.discrete:
        require_box(name.upper(), spaces, env_name)
    if not isinstance(config, spec.config):
        raise ConfigError(f"{name} expects a {spec.config.__name__}, got {type(config).__name__}")
    # only what is set: a wrapper of spec.algorithm written for (config, spaces) keeps working
    extra: dict[str, Any] = {}
    if device is not None:
        extra["device"] = device
    if networks:
        extra["networks"] = networks
    algorithm: Algorithm = spec.algorithm(config, spaces, **extra)
    return algorithm


__all__ = ["ALGORITHMS", "AlgoSpec", "Algorithm", "NetworkFactory", "build_algorithm", "get_spec"]

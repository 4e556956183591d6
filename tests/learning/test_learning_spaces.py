"""Learning tests on structured observations: images (a CNN encoder) and Dict observations.

The environments are in ``tests/pixel_envs.py``: an agent on a track is rewarded for reaching
a target and staying on it; the best return of an episode is exactly 16, a policy that
stays put scores 0 and a random one about 1 to 2. Each test asserts that a deterministic
evaluation over 10 episodes (what ``pgrl.train`` returns) reaches 14 within its budget.

Measured when the budgets were set (preset-free defaults, one torch thread): PPO on
PixelTarget with 10k steps scored 16.0 on seeds 0-4 (about 8 s each); A2C on DictTarget with
10k steps 16.0 on seeds 0-5 (about 1 s); PPO on DictTarget with 30k steps 16.0 on seeds 0
and 2 (14.7-16.0 on seeds 0-4 with 20k). A2C on PixelTarget with MultiDiscrete actions and
5k steps: 16.0 on seeds 0-4 (about 2 s); with MultiBinary actions and 10k steps: 16.0 on
seeds 0-3 (about 4 s; 10.1 on seed 1 with 5k).

The last test trains a user-defined policy module (its own layers, torch.distributions) on
CartPole through ``build_algorithm(..., networks=...)`` and the collector directly: the mean
of its last 20 training episodes after 40 PPO rollouts (about 20k steps) was 152, 140 and 202
on seeds 0-2 (a random policy: about 22).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pixel_envs  # registers pgrl-test/PixelTarget-v0 and pgrl-test/DictTarget-v0
import pytest
import torch
from user_networks import TinyPolicy

import pgrl
from pgrl.algos import build_algorithm
from pgrl.algos.ppo import PPOConfig
from pgrl.collect import Collector
from pgrl.spaces import space_info

pytestmark = pytest.mark.learning

THRESHOLD = 14.0  # of a best possible 16


def final_return(algo: str, env: str, steps: int, seed: int = 0) -> float:
    agent = pgrl.train(algo, env, steps=steps, seed=seed, save=False)
    assert agent.evaluation is not None and len(agent.evaluation.returns) == 10
    return agent.evaluation.mean


def test_ppo_learns_pixel_target_from_12x12_images_within_10k_steps() -> None:
    assert pixel_envs.PixelTarget().observation_space.shape == (12, 12, 1)
    assert final_return("ppo", "pgrl-test/PixelTarget-v0", 10_000) >= THRESHOLD


def test_a2c_learns_pixel_target_with_multidiscrete_actions_within_5k_steps() -> None:
    assert final_return("a2c", "pgrl-test/PixelTargetMultiDiscrete-v0", 5_000) >= THRESHOLD


def test_a2c_learns_pixel_target_with_multibinary_actions_within_10k_steps() -> None:
    assert final_return("a2c", "pgrl-test/PixelTargetMultiBinary-v0", 10_000) >= THRESHOLD


def test_a2c_learns_dict_target_within_10k_steps() -> None:
    assert final_return("a2c", "pgrl-test/DictTarget-v0", 10_000) >= THRESHOLD


def test_ppo_learns_dict_target_within_30k_steps() -> None:
    assert final_return("ppo", "pgrl-test/DictTarget-v0", 30_000) >= THRESHOLD


def test_a_custom_policy_module_learns_cartpole_through_build_algorithm() -> None:
    torch.manual_seed(0)
    np.random.seed(0)
    envs = gym.make_vec("CartPole-v1", num_envs=4)
    spaces = space_info(envs.single_observation_space, envs.single_action_space)
    config = PPOConfig(num_envs=4, rollout_steps=128, learning_rate=1e-3)
    algo = build_algorithm("ppo", config, spaces, "CartPole-v1", networks={"policy": TinyPolicy})
    assert isinstance(algo.policy, TinyPolicy)  # type: ignore[attr-defined]
    collector = Collector(envs, seed=0)
    returns: list[float] = []
    for _ in range(40):
        algo.update(collector.rollout(algo.act, config.rollout_steps))
        returns += collector.stats.pop()[0]
    envs.close()
    assert np.mean(returns[-20:]) >= 100.0

"""The presets beyond CartPole, Acrobot and Pendulum: present, sourced, and fit for their env.

Which tasks have presets is a promise made in README's algorithm table and docs; these tests
keep it. Each environment is built (Box2D and MuJoCo come with the ``dev`` extra) so that a
misspelled id or a version that Gymnasium does not register fails here, not in a user's run.
"""

from __future__ import annotations

import gymnasium as gym
import pytest

from pgrl.algos import ALGORITHMS
from pgrl.config import build_config, preset, preset_source, preset_steps
from pgrl.train import resolve_config

REAL_TASKS = {
    "LunarLander-v3": ("ppo", "a2c"),
    "LunarLanderContinuous-v3": ("sac", "td3", "ppo"),
    "MountainCarContinuous-v0": ("sac", "td3", "ppo"),
    "BipedalWalker-v3": ("ppo", "sac", "td3"),
    "HalfCheetah-v5": ("ppo", "td3", "sac"),
    "Hopper-v5": ("ppo", "td3", "sac"),
    "Walker2d-v5": ("ppo", "td3", "sac"),
    "Ant-v5": ("ppo", "td3", "sac"),
}
CASES = [(algo, env) for env, algos in REAL_TASKS.items() for algo in algos]


@pytest.mark.parametrize(("algo", "env_id"), CASES)
def test_each_real_task_has_a_sourced_preset_with_a_budget(algo: str, env_id: str) -> None:
    values = preset(algo, env_id)
    assert values, f"no {algo} preset for {env_id}"
    source = preset_source(algo, env_id)
    assert source is not None
    assert any(name in source for name in ("rl-baselines3-zoo", "CleanRL")), source
    assert preset_steps(algo, env_id, default=-1) >= 50_000
    build_config(ALGORITHMS[algo].config, values)  # valid values of the right types


@pytest.mark.parametrize("env_id", sorted(REAL_TASKS))
def test_each_real_task_is_registered_and_its_presets_fit_its_action_space(env_id: str) -> None:
    env = gym.make(env_id)
    discrete = isinstance(env.action_space, gym.spaces.Discrete)
    env.close()
    for algo in REAL_TASKS[env_id]:
        assert not (discrete and algo in ("ddpg", "td3", "sac")), (algo, env_id)


def test_mountain_car_presets_keep_exploring_without_gsde() -> None:
    # the exploration problem: a policy that has never reached the flag learns to stand still
    ppo = resolve_config("ppo", "MountainCarContinuous-v0", {})
    assert ppo.log_std_init == 0.0 and ppo.entropy_coef > 0 and ppo.gamma == 0.9999
    sac = resolve_config("sac", "MountainCarContinuous-v0", {})
    assert sac.noise_correlation >= 0.9 and not sac.auto_alpha and sac.alpha == 0.1
    td3 = resolve_config("td3", "MountainCarContinuous-v0", {})
    assert td3.noise == "ou" and td3.ou_theta < 0.01 and td3.learning_starts >= 1_000

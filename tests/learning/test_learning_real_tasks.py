"""Learning tests on tasks beyond CartPole, Acrobot and Pendulum, at their presets' budgets.

Fixed seed 0; each asserts the deterministic 10-episode evaluation that ``pgrl.train``
returns. The thresholds are the tasks' own "solved" marks: 200 for LunarLander, 90 for
MountainCarContinuous (Gymnasium's documentation of both). Other real-task presets are rows of
the results table (docs/results-table.md), not tests: their budgets do not fit CI.
"""

from __future__ import annotations

import pytest

import pgrl

pytestmark = pytest.mark.learning


def final_return(algo: str, env: str, steps: int, seed: int = 0) -> float:
    agent = pgrl.train(algo, env, steps=steps, seed=seed, save=False)
    assert agent.evaluation is not None and len(agent.evaluation.returns) == 10
    return agent.evaluation.mean


def test_ppo_lands_the_lunar_lander_within_1m_steps() -> None:
    # the preset (rl-baselines3-zoo's): about 2.5 min on 2 cores
    assert final_return("ppo", "LunarLander-v3", 1_000_000) >= 200


def test_ppo_reaches_the_mountain_car_flag_within_100k_steps() -> None:
    # the exploration problem: a policy that stands still scores about 0
    assert final_return("ppo", "MountainCarContinuous-v0", 100_000) >= 90


def test_sac_with_correlated_noise_reaches_the_mountain_car_flag_within_20k_steps() -> None:
    # independent sampling stood still (about 0 at 50k steps); seeds 0-2 evaluate 93.6-94.0
    assert final_return("sac", "MountainCarContinuous-v0", 20_000) >= 90

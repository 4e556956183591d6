"""Learning tests: fixed seeds, real Gymnasium environments, step budgets.

Each asserts that a deterministic evaluation over 10 episodes reaches a return within a
budget of environment steps. Budgets are about 1.5-2x what the presets needed on seeds 0-5
when they were tuned, so a pass is not luck and a regression that halves sample efficiency
fails.
"""

from __future__ import annotations

import pytest

import pgrl

pytestmark = pytest.mark.learning


def final_return(algo: str, env: str, steps: int, seed: int = 0, **config) -> float:  # type: ignore[no-untyped-def]
    agent = pgrl.train(algo, env, steps=steps, seed=seed, save=False, config=config)
    assert agent.evaluation is not None and len(agent.evaluation.returns) == 10
    return agent.evaluation.mean


def test_reinforce_with_value_baseline_solves_cartpole() -> None:
    assert final_return("reinforce", "CartPole-v1", 150_000) >= 475


def test_reinforce_reward_to_go_without_baseline_learns_cartpole() -> None:
    # a random policy scores about 22
    assert final_return("reinforce", "CartPole-v1", 150_000, baseline="none") >= 150


def test_a2c_solves_cartpole() -> None:
    assert final_return("a2c", "CartPole-v1", 150_000) >= 475


def test_ddpg_solves_pendulum_within_20k_steps() -> None:
    assert final_return("ddpg", "Pendulum-v1", 20_000) >= -200

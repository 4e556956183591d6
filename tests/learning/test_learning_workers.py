"""Off-policy learning with two rollout workers: the one-process budgets still suffice.

DDPG, TD3 and SAC with two environments, one per Ray worker, reach -200 on Pendulum-v1 within
the budgets of their one-process learning tests (tests/learning/test_learning*.py). The
workers collect synchronously, one vector step per call (docs/distributed.md), so the run is
the one-process run up to float rounding in the acting forward pass.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import pgrl

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.learning


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.parametrize(("algo", "steps"), [("ddpg", 20_000), ("td3", 20_000), ("sac", 12_000)])
def test_off_policy_with_two_workers_solves_pendulum(
    ray_session: None, algo: str, steps: int
) -> None:
    agent = pgrl.train(
        algo, "Pendulum-v1", steps, seed=0, config={"num_envs": 2}, workers=2, save=False
    )
    assert agent.evaluation is not None
    assert agent.evaluation.mean >= -200


@pytest.mark.parametrize(("algo", "steps"), [("ppo", 100_000), ("a2c", 150_000)])
def test_on_policy_with_two_workers_solves_cartpole(
    ray_session: None, algo: str, steps: int
) -> None:
    # the one-process learning tests' budgets and presets (8 environments, 4 per worker)
    agent = pgrl.train(algo, "CartPole-v1", steps, seed=0, workers=2, save=False)
    assert agent.evaluation is not None
    assert agent.evaluation.mean >= 475

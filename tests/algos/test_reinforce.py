"""REINFORCE's update on fixed episodes: the weights it uses and where gradients flow."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch.testing import assert_close

import pgrl
from pgrl.algos.reinforce import Reinforce, ReinforceConfig, policy_weights
from pgrl.envs import SpaceInfo
from pgrl.types import Rollout


def episodes() -> Rollout:
    """Two environments; env 0 runs 3 steps and terminates, env 1 runs 2 and then waits."""
    t, n = 3, 2
    return Rollout(
        obs=torch.arange(t * n * 2, dtype=torch.float32).reshape(t, n, 2) / 10,
        actions=torch.tensor([[0, 1], [1, 1], [0, 0]]),
        rewards=torch.tensor([[1.0, 1.0], [1.0, 2.0], [1.0, 0.0]]),
        next_obs=torch.zeros(t, n, 2),
        terminated=torch.tensor([[False, False], [False, True], [True, False]]),
        truncated=torch.tensor([[False, False], [False, False], [False, True]]),
        mask=torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]]),
    )


def test_weights_reward_to_go_and_total_by_hand() -> None:
    r = episodes()
    # γ = 0.5. env 0: G = [1 + .5(1 + .5) = 1.75, 1.5, 1]; env 1: G = [1 + .5*2 = 2, 2]
    reward_to_go = policy_weights(r, ReinforceConfig(gamma=0.5), None)
    assert_close(reward_to_go[:, 0], torch.tensor([1.75, 1.5, 1.0]))
    assert_close(reward_to_go[:2, 1], torch.tensor([2.0, 2.0]))
    total = policy_weights(r, ReinforceConfig(gamma=0.5, weight="total"), None)
    assert_close(total[:, 0], torch.tensor([1.75, 1.75, 1.75]))
    assert_close(total[:2, 1], torch.tensor([2.0, 2.0]))


def test_policy_gradient_matches_the_estimator_by_hand() -> None:
    torch.manual_seed(0)
    spaces = SpaceInfo(obs_dim=2, discrete=True, act_dim=2)
    config = ReinforceConfig(gamma=0.5, baseline="none", learning_rate=1e-9)
    algo = Reinforce(config, spaces)
    r = episodes()
    # expected gradient of the loss: −(1/5) Σ_valid G_t ∇log π(a_t|s_t)
    g = policy_weights(r, algo.config, None)
    log_prob, _ = algo.policy.log_prob_entropy(r.obs, r.actions)
    expected = torch.autograd.grad(
        -(log_prob * g * r.mask).sum() / 5, list(algo.policy.parameters())
    )
    algo.policy_optimizer.optimizer.step = lambda *a, **k: None  # type: ignore[method-assign]
    algo.update(r)
    for p, e in zip(algo.policy.parameters(), expected, strict=True):
        assert_close(p.grad, e)


def test_value_baseline_is_detached_from_the_policy_gradient() -> None:
    torch.manual_seed(0)
    algo = Reinforce(ReinforceConfig(), SpaceInfo(obs_dim=2, discrete=True, act_dim=2))
    r = episodes()
    baseline = algo._baseline(r, policy_weights(r, algo.config, None))
    assert isinstance(baseline, torch.Tensor) and not baseline.requires_grad
    # and a policy update with a frozen value optimizer leaves V untouched
    before = [p.clone() for p in algo.value.parameters()]  # type: ignore[union-attr]
    algo.value_optimizer.optimizer.step = lambda *a, **k: None  # type: ignore[method-assign]
    algo.update(r)
    for p, q in zip(algo.value.parameters(), before, strict=True):  # type: ignore[union-attr]
        assert torch.equal(p, q)


def test_value_steps_lower_the_regression_loss() -> None:
    torch.manual_seed(0)
    algo = Reinforce(
        ReinforceConfig(critic_learning_rate=1e-2, gamma=0.5),
        SpaceInfo(obs_dim=2, discrete=True, act_dim=2),
    )
    r = episodes()
    first = algo.update(r)["value_loss"].item()
    for _ in range(10):
        last = algo.update(r)["value_loss"].item()
    assert last < 0.5 * first


def test_same_seed_gives_identical_parameters() -> None:
    a = pgrl.train("reinforce", "CartPole-v1", steps=3_000, seed=2, save=False, eval_episodes=2)
    b = pgrl.train("reinforce", "CartPole-v1", steps=3_000, seed=2, save=False, eval_episodes=2)
    for p, q in zip(a.algorithm.policy.parameters(), b.algorithm.policy.parameters(), strict=True):  # type: ignore[attr-defined]
        assert torch.equal(p, q)
    assert a.evaluation.returns == b.evaluation.returns  # type: ignore[union-attr]


@pytest.mark.parametrize("discrete", [True, False])
@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"value_loss": "huber", "entropy_coef": 0.2, "normalize_advantages": True},
        {"baseline": "mean", "weight": "total", "discount_weighting": True},
    ],
)
def test_policy_step_uses_autograd_gradient_for_every_parameter(discrete: bool, overrides) -> None:  # type: ignore[no-untyped-def]
    r = episodes()
    if not discrete:
        actions = torch.randn(3, 2, 2, generator=torch.Generator().manual_seed(0))
        r = dataclasses.replace(r, actions=actions)
    bounds = {} if discrete else {"low": -np.ones(2, np.float32), "high": np.ones(2, np.float32)}
    spaces = SpaceInfo(obs_dim=2, discrete=discrete, act_dim=2, **bounds)
    torch.manual_seed(0)
    algo = Reinforce(ReinforceConfig(gamma=0.9, **overrides), spaces)
    captured = {}
    step = algo.policy_optimizer.step

    def spy(loss):  # type: ignore[no-untyped-def]
        params = algo.policy_optimizer.params
        captured["expected"] = torch.autograd.grad(loss, params, retain_graph=True)
        return step(loss)

    algo.policy_optimizer.step = spy  # type: ignore[method-assign]
    algo.policy_optimizer.optimizer.step = lambda *a, **k: None  # type: ignore[method-assign]
    algo.update(r)
    params = algo.policy_optimizer.params
    assert len(params) == len(list(algo.policy.parameters()))  # log σ included for Box
    for p, e in zip(params, captured["expected"], strict=True):
        assert_close(p.grad, e)


def test_reported_value_mse_and_explained_variance_are_sb3s() -> None:
    torch.manual_seed(0)
    config = ReinforceConfig(gamma=0.5, value_epochs=1)
    algo = Reinforce(config, SpaceInfo(obs_dim=2, discrete=True, act_dim=2))
    r = episodes()
    real = r.mask.bool()
    with torch.no_grad():
        _, returns = algo.advantages(r)
        values = algo.value(r.obs)  # type: ignore[misc]
    metrics = algo.update(r)
    # one value epoch: the regression's MSE over the real steps, pgrl's value_loss its half
    mse = ((returns - values)[real] ** 2).mean()
    assert_close(metrics["value_mse"], mse)
    assert_close(metrics["value_loss"], 0.5 * mse)
    g, v = returns[real].double().numpy(), values[real].double().numpy()
    expected = 1.0 - np.var(g - v) / np.var(g)
    assert metrics["explained_variance"].item() == pytest.approx(expected, rel=1e-5)
    assert metrics["learning_rate"].item() == config.learning_rate
    assert "std" not in metrics


def test_without_a_value_baseline_no_critic_metrics_are_reported() -> None:
    torch.manual_seed(0)
    algo = Reinforce(
        ReinforceConfig(baseline="mean"), SpaceInfo(obs_dim=2, discrete=True, act_dim=2)
    )
    metrics = algo.update(episodes())
    assert not {"value_loss", "value_mse", "explained_variance"} & set(metrics)
    assert "learning_rate" in metrics

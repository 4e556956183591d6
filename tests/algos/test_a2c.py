"""A2C's update: where gradients flow, one step on a fixed batch, and truncation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import pgrl
from pgrl.algos.a2c import A2C, A2CConfig
from pgrl.envs import SpaceInfo
from pgrl.nets import CategoricalPolicy
from pgrl.types import Rollout


def fixed_rollout(seed: int = 0) -> Rollout:
    gen = torch.Generator().manual_seed(seed)
    t, n, o = 5, 4, 3
    terminated = torch.zeros(t, n, dtype=torch.bool)
    terminated[2, 1] = True
    truncated = torch.zeros(t, n, dtype=torch.bool)
    truncated[3, 2] = True
    return Rollout(
        obs=torch.randn(t, n, o, generator=gen),
        actions=torch.randint(0, 2, (t, n), generator=gen),
        rewards=torch.randn(t, n, generator=gen),
        next_obs=torch.randn(t, n, o, generator=gen),
        terminated=terminated,
        truncated=truncated,
        mask=torch.ones(t, n),
    )


def make(**kw) -> A2C:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    return A2C(A2CConfig(**kw), SpaceInfo(obs_dim=3, discrete=True, act_dim=2))


def test_critic_loss_leaves_actor_gradients_at_none() -> None:
    algo = make()
    _, critic_loss, _ = algo.losses(fixed_rollout())
    critic_loss.backward()
    assert all(p.grad is None for p in algo.policy.parameters())
    assert all(p.grad is not None for p in algo.value.parameters())


def test_policy_loss_leaves_critic_gradients_at_none() -> None:
    algo = make()
    policy_loss, _, _ = algo.losses(fixed_rollout())
    policy_loss.backward()
    assert all(p.grad is None for p in algo.value.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in algo.policy.parameters())


def test_updates_lower_the_critic_loss_on_a_fixed_batch() -> None:
    # γ = 0 fixes the regression targets (y = r); with γ > 0 the semi-gradient target moves
    # with V(s') and the TD error on random data may legitimately grow
    algo = make(learning_rate=1e-3, gamma=0.0)
    rollout = fixed_rollout()
    _, before, _ = algo.losses(rollout)
    for _ in range(5):
        algo.update(rollout)
    _, after, _ = algo.losses(rollout)
    assert after.item() < before.item()


def test_same_seed_gives_identical_parameters() -> None:
    runs = [
        pgrl.train("a2c", "CartPole-v1", steps=2_000, seed=3, save=False, eval_episodes=2)
        for _ in range(2)
    ]
    for a, b in zip(
        runs[0].algorithm.policy.parameters(), runs[1].algorithm.policy.parameters(), strict=True
    ):
        assert torch.equal(a, b)
    assert runs[0].evaluation.returns == runs[1].evaluation.returns  # type: ignore[union-attr]
    other = pgrl.train("a2c", "CartPole-v1", steps=2_000, seed=4, save=False, eval_episodes=0)
    assert not torch.equal(
        next(other.algorithm.policy.parameters()), next(runs[0].algorithm.policy.parameters())
    )


def _start_value(env_id: str) -> float:
    agent = pgrl.train(
        "a2c",
        env_id,
        steps=30_000,
        seed=0,
        save=False,
        eval_episodes=0,
        config={"gamma": 0.9, "learning_rate": 3e-3, "num_envs": 4, "max_grad_norm": None},
    )
    with torch.no_grad():
        return agent.algorithm.value(torch.ones(1, 1)).item()  # type: ignore[attr-defined]


def test_truncation_learns_the_infinite_horizon_value() -> None:
    # reward 1 forever, cut by a 5-step time limit: V = 1/(1 − 0.9) = 10
    assert _start_value("pgrl-test/ConstantReward-v0") == pytest.approx(10.0, rel=0.10)


def test_treating_the_limit_as_terminal_would_not() -> None:
    # the same task with the limit reported as a termination learns about 2.6, not 10
    assert _start_value("pgrl-test/ConstantRewardLimitAsTerminal-v0") < 5.0


def masked_rollout(discrete: bool) -> Rollout:
    """fixed_rollout with a placeholder step (mask 0), and Box actions when not discrete."""
    rollout = fixed_rollout()
    mask = torch.ones(5, 4)
    mask[4, 3] = 0.0
    truncated = rollout.truncated.clone()
    truncated[4, 3] = True
    actions = rollout.actions if discrete else torch.randn(5, 4, 2)
    return Rollout(
        obs=rollout.obs,
        actions=actions,
        rewards=rollout.rewards,
        next_obs=rollout.next_obs,
        terminated=rollout.terminated,
        truncated=truncated,
        mask=mask,
    )


def _make_algo(discrete: bool, config: A2CConfig, networks=None) -> A2C:  # type: ignore[no-untyped-def]
    import numpy as np

    torch.manual_seed(0)
    bounds = {} if discrete else {"low": -np.ones(2, np.float32), "high": np.ones(2, np.float32)}
    spaces = SpaceInfo(obs_dim=3, discrete=discrete, act_dim=2, **bounds)
    return A2C(config, spaces, networks=networks)


@pytest.mark.parametrize("discrete", [True, False])
@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"value_loss": "huber", "entropy_coef": 0.3, "value_coef": 0.7},
        {"n_step": 5, "normalize_advantages": True, "entropy_coef": 0.01},
        {"n_step": 2, "hidden_sizes": (7,)},
    ],
)
def test_update_steps_on_autograd_gradient_of_the_losses(discrete: bool, overrides) -> None:  # type: ignore[no-untyped-def]
    # the update (flat parameters, one Adam) steps on the gradient autograd gives the losses,
    # for every parameter
    config = A2CConfig(**overrides)
    rollout = masked_rollout(discrete)
    reference = _make_algo(discrete, config)
    policy_loss, critic_loss, entropy = reference.losses(rollout)
    loss = policy_loss + config.value_coef * critic_loss - config.entropy_coef * entropy
    params = [p for m in reference.modules().values() for p in m.parameters()]
    expected = torch.autograd.grad(loss, params)
    algo = _make_algo(discrete, config)
    algo.optimizer.optimizer.step = lambda *a, **k: None  # type: ignore[method-assign]
    algo.optimizer.max_grad_norm = None
    metrics = algo.update(rollout)
    got = [p.grad for m in algo.modules().values() for p in m.parameters()]
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(metrics["policy_loss"], policy_loss.detach())
    torch.testing.assert_close(metrics["value_loss"], critic_loss.detach())


class TemperaturePolicy(CategoricalPolicy):
    """π(a|s) = softmax(logits(s) / T) with a learnable temperature T: a parameter outside
    the MLP, in a policy that overrides log_prob_entropy."""

    def __init__(self, obs_dim: int, n_actions: int, hidden=(64, 64)) -> None:  # type: ignore[no-untyped-def]
        super().__init__(obs_dim, n_actions, hidden)
        self.temperature = torch.nn.Parameter(torch.tensor(1.3))

    def log_prob_entropy(self, obs, action):  # type: ignore[no-untyped-def]
        log_probs = torch.log_softmax(self(obs) / self.temperature, dim=-1)
        log_prob = log_probs.gather(-1, action.long().unsqueeze(-1)).squeeze(-1)
        return log_prob, -(log_probs.exp() * log_probs).sum(-1)


def test_a_learnable_temperature_gets_its_autograd_gradient() -> None:
    def make_temperature_policy(spaces, config):  # type: ignore[no-untyped-def]
        return TemperaturePolicy(spaces.obs_dim, spaces.act_dim, config.hidden_sizes)

    networks = {"policy": make_temperature_policy}
    config = A2CConfig(entropy_coef=0.1, max_grad_norm=None)
    rollout = masked_rollout(True)
    reference = _make_algo(True, config, networks)
    policy_loss, critic_loss, entropy = reference.losses(rollout)
    loss = policy_loss + critic_loss - 0.1 * entropy
    (expected,) = torch.autograd.grad(loss, [reference.policy.temperature])  # type: ignore[attr-defined]
    algo = _make_algo(True, config, networks)
    assert any(p is algo.policy.temperature for p in algo.optimizer.params)  # type: ignore[attr-defined]
    algo.optimizer.optimizer.step = lambda *a, **k: None  # type: ignore[method-assign]
    algo.update(rollout)
    got = algo.policy.temperature.grad  # type: ignore[attr-defined]
    assert expected.abs() > 1e-5  # a real gradient, not a zero one
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_a_rollout_without_placeholders_takes_plain_means_of_equal_value() -> None:
    rollout = fixed_rollout()
    assert rollout.loss_mask is None and masked_rollout(True).loss_mask is not None
    from pgrl.losses import policy_gradient_loss, value_loss

    gen = torch.Generator().manual_seed(0)
    log_prob, weight = torch.randn(5, 4, generator=gen), torch.randn(5, 4, generator=gen)
    ones = torch.ones(5, 4)
    torch.testing.assert_close(
        policy_gradient_loss(log_prob, weight, ones), policy_gradient_loss(log_prob, weight)
    )
    torch.testing.assert_close(
        value_loss(log_prob, weight, "huber", ones), value_loss(log_prob, weight, "huber")
    )


def test_reported_value_mse_is_sb3s_mse_of_targets_and_values_on_a_fixed_rollout() -> None:
    # SB3's A2C logs train/value_loss = F.mse_loss(returns, values) and explained_variance
    # over the rollout; pgrl's value_loss is ½·MSE. Targets by hand: y = r + γ(1 − term)V(s′)
    algo = make(gamma=0.9)
    rollout = fixed_rollout()
    with torch.no_grad():
        values, next_values = algo.value(rollout.obs), algo.value(rollout.next_obs)
    targets = rollout.rewards + 0.9 * (~rollout.terminated).float() * next_values
    metrics = algo.update(rollout)
    torch.testing.assert_close(metrics["value_mse"], F.mse_loss(values, targets))
    torch.testing.assert_close(metrics["value_loss"], 0.5 * F.mse_loss(values, targets))
    y = targets.flatten().double().numpy()
    v = values.flatten().double().numpy()
    expected_ev = 1.0 - np.var(y - v) / np.var(y)  # SB3's common/utils.explained_variance
    assert metrics["explained_variance"].item() == pytest.approx(expected_ev, rel=1e-5)
    assert metrics["learning_rate"].item() == 7e-4  # the optimizer's step size
    assert "std" not in metrics  # a categorical policy has no σ


def test_reported_metrics_leave_out_placeholder_steps() -> None:
    rollout = masked_rollout(discrete=True)
    algo = _make_algo(True, A2CConfig())
    with torch.no_grad():
        values, next_values = algo.value(rollout.obs), algo.value(rollout.next_obs)
    targets = rollout.rewards + 0.99 * (~rollout.terminated).float() * next_values
    real = rollout.mask.bool()
    metrics = algo.update(rollout)
    torch.testing.assert_close(metrics["value_mse"], F.mse_loss(values[real], targets[real]))
    y, v = targets[real].double().numpy(), values[real].double().numpy()
    assert metrics["explained_variance"].item() == pytest.approx(
        1.0 - np.var(y - v) / np.var(y), rel=1e-5
    )


def test_a_gaussian_policy_reports_sb3s_std_after_the_step() -> None:
    algo = _make_algo(False, A2CConfig(log_std_init=-0.5))
    metrics = algo.update(masked_rollout(discrete=False))
    std = algo.policy.log_std.detach().exp().mean()  # type: ignore[union-attr]
    assert metrics["std"].item() == std.item()
    assert std.item() != pytest.approx(float(np.exp(-0.5)), abs=0.0)  # the step moved σ


def test_reported_learning_rate_follows_the_annealed_step_size() -> None:
    algo = make()
    for group in algo.optimizer.optimizer.param_groups:
        group["lr"] = 1.75e-4  # what pgrl.loop.anneal_learning_rates sets
    assert algo.update(fixed_rollout())["learning_rate"].item() == 1.75e-4


def test_update_metrics_are_finite_when_the_targets_are_constant() -> None:
    # γ = 0 and equal rewards: Var(y) = 0. SB3 logs nan there; pgrl's loop stops on a
    # non-finite metric, so explained variance takes scikit-learn's finite value
    rollout = fixed_rollout()
    constant = dataclasses.replace(rollout, rewards=torch.ones_like(rollout.rewards))
    metrics = make(gamma=0.0).update(constant)
    assert all(bool(torch.isfinite(value)) for value in metrics.values())
    assert metrics["explained_variance"].item() == 0.0


def test_explained_variance_agrees_with_stable_baselines3() -> None:
    sb3_utils = pytest.importorskip("stable_baselines3.common.utils")
    from pgrl.algos.base import explained_variance

    gen = torch.Generator().manual_seed(3)
    returns = torch.randn(40, generator=gen) * 2 + 1
    values = returns + torch.randn(40, generator=gen)
    expected = sb3_utils.explained_variance(values.numpy(), returns.numpy())
    assert explained_variance(values, returns).item() == pytest.approx(expected, rel=1e-5)

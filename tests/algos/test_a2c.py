"""A2C's update: where gradients flow, one step on a fixed batch, and truncation."""

from __future__ import annotations

import pytest
import torch

import pgrl
from pgrl.algos.a2c import A2C, A2CConfig
from pgrl.envs import SpaceInfo
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
def test_closed_form_gradients_equal_autograd_of_the_losses(discrete: bool, overrides) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    torch.manual_seed(0)
    config = A2CConfig(**overrides)
    bounds = {} if discrete else {"low": -np.ones(2, np.float32), "high": np.ones(2, np.float32)}
    algo = A2C(config, SpaceInfo(obs_dim=3, discrete=discrete, act_dim=2, **bounds))
    rollout = masked_rollout(discrete)
    policy_loss, critic_loss, entropy = algo.losses(rollout)
    (policy_loss + config.value_coef * critic_loss - config.entropy_coef * entropy).backward()
    pairs, closed_losses = algo.closed_form_gradients(rollout)
    assert {id(p) for p, _ in pairs} == {id(p) for p in algo.params}
    for param, grad in pairs:
        torch.testing.assert_close(torch.from_numpy(grad), param.grad, rtol=1e-4, atol=1e-6)
    for autograd_value, closed_value in zip(
        (policy_loss, critic_loss, entropy), closed_losses, strict=True
    ):
        torch.testing.assert_close(closed_value, autograd_value.detach(), rtol=1e-5, atol=1e-6)


def test_one_update_is_the_same_either_way() -> None:
    rollout = fixed_rollout()
    after = []
    for gradients in ("autograd", "closed_form"):
        algo = make(gradients=gradients)
        algo.update(rollout)
        after.append(torch.cat([p.detach().flatten() for p in algo.params]))
    torch.testing.assert_close(after[0], after[1], rtol=1e-4, atol=1e-6)

"""DDPG's update: the critic step, the actor step, and the target networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

import pgrl
from pgrl.algos.ddpg import DDPG, DDPGConfig, OUNoise, actor_loss, critic_target
from pgrl.envs import SpaceInfo
from pgrl.errors import ConfigError, EnvError
from pgrl.types import Batch

SPACES = SpaceInfo(
    obs_dim=3,
    discrete=False,
    act_dim=2,
    low=np.array([-2.0, -1.0], np.float32),
    high=np.array([2.0, 1.0], np.float32),
)


def make(**kw) -> DDPG:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    return DDPG(DDPGConfig(hidden_sizes=(16, 16), **kw), SPACES)


def batch(seed: int = 0, size: int = 32) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    return Batch(
        obs=torch.randn(size, 3, generator=gen),
        actions=torch.rand(size, 2, generator=gen) * 2 - 1,
        rewards=torch.randn(size, generator=gen),
        next_obs=torch.randn(size, 3, generator=gen),
        terminated=(torch.rand(size, generator=gen) < 0.2).float(),
        truncated=torch.zeros(size),
    )


def test_critic_target_by_hand() -> None:
    # y = r + γ(1 − terminated) Q' = [1 + .9*2, 1 + 0, -1 + .9*(-1)]
    y = critic_target(
        torch.tensor([1.0, 1.0, -1.0]),
        torch.tensor([2.0, 2.0, -1.0]),
        torch.tensor([0.0, 1.0, 0.0]),
        0.9,
    )
    assert_close(y, torch.tensor([2.8, 1.0, -1.9]))


def test_actor_loss_gradient_is_the_deterministic_policy_gradient() -> None:
    # Q(s, a) = -(a − 1)², μ_θ(s) = θ: ∇_θ J = ∇_a Q |_{a=θ} = -2(θ − 1)
    theta = torch.tensor([0.25], requires_grad=True)
    actor_loss(-((theta - 1.0) ** 2)).backward()
    assert_close(theta.grad, torch.tensor([2.0 * (0.25 - 1.0)]))  # loss = −J


def test_actor_step_leaves_critic_gradients_none_and_critic_unchanged() -> None:
    algo = make()
    before = [p.clone() for p in algo.critic.parameters()]
    algo.actor_step(batch())
    assert all(p.grad is None for p in algo.critic.parameters())
    for p, q in zip(algo.critic.parameters(), before, strict=True):
        assert torch.equal(p, q)
    assert all(p.requires_grad for p in algo.critic.parameters())  # unfrozen afterwards


def test_critic_step_leaves_the_actor_alone() -> None:
    algo = make()
    before = [p.clone() for p in algo.actor.parameters()]
    algo.critic_step(batch())
    assert all(p.grad is None for p in algo.actor.parameters())
    for p, q in zip(algo.actor.parameters(), before, strict=True):
        assert torch.equal(p, q)


def test_target_networks_move_only_by_polyak_averaging() -> None:
    algo = make(tau=0.1)
    old_actor_t = [p.clone() for p in algo.actor_target.parameters()]
    old_critic_t = [p.clone() for p in algo.critic_target.parameters()]
    algo.update(batch())
    for new, old, src in zip(
        algo.actor_target.parameters(), old_actor_t, algo.actor.parameters(), strict=True
    ):
        assert_close(new, 0.1 * src + 0.9 * old)
    for new, old, src in zip(
        algo.critic_target.parameters(), old_critic_t, algo.critic.parameters(), strict=True
    ):
        assert_close(new, 0.1 * src + 0.9 * old)
    assert all(not p.requires_grad for p in algo.critic_target.parameters())


def test_critic_steps_lower_the_critic_loss_on_a_fixed_batch() -> None:
    algo = make(gamma=0.0, critic_learning_rate=1e-2)  # γ = 0: fixed targets y = r
    b = batch()
    first, first_mse = algo.critic_step(b)
    for _ in range(20):
        last, last_mse = algo.critic_step(b)
    assert last.item() < 0.5 * first.item()
    # SB3's critic_loss is the MSE, twice pgrl's ½·MSE loss
    assert_close(first_mse, 2 * first)
    assert_close(last_mse, 2 * last)


def test_ou_noise_is_mean_reverting_and_correlated() -> None:
    torch.manual_seed(0)
    noise = OUNoise((1, 1), torch.tensor([0.2]), theta=0.15)
    xs = torch.stack([noise.sample().clone() for _ in range(5000)]).flatten()
    assert abs(xs.mean().item()) < 0.15
    lag1 = torch.corrcoef(torch.stack([xs[:-1], xs[1:]]))[0, 1].item()
    assert lag1 == pytest.approx(0.85, abs=0.05)  # 1 − θ


def test_ddpg_refuses_discrete_actions_with_a_clear_message() -> None:
    with pytest.raises(
        EnvError,
        match=r"DDPG needs a continuous \(Box\) action space; CartPole-v1 has Discrete\(2\)",
    ):
        pgrl.train("ddpg", "CartPole-v1", steps=10, save=False)


def test_minibatch_larger_than_buffer_is_refused() -> None:
    with pytest.raises(ConfigError, match="minibatch_size"):
        DDPGConfig(minibatch_size=512, buffer_size=100)


def test_same_seed_gives_identical_parameters() -> None:
    kw = {
        "steps": 600,
        "seed": 1,
        "save": False,
        "eval_episodes": 1,
        "config": {"learning_starts": 300, "minibatch_size": 32, "hidden_sizes": (16, 16)},
    }
    a, b = pgrl.train("ddpg", "Pendulum-v1", **kw), pgrl.train("ddpg", "Pendulum-v1", **kw)  # type: ignore[arg-type]
    for p, q in zip(a.algorithm.actor.parameters(), b.algorithm.actor.parameters(), strict=True):  # type: ignore[attr-defined]
        assert torch.equal(p, q)
    assert a.evaluation.returns == b.evaluation.returns  # type: ignore[union-attr]


def test_reported_critic_mse_is_sb3s_f_mse_loss_of_q_and_target() -> None:
    algo = make(gamma=0.9)
    b = batch()
    with torch.no_grad():  # y = r + γ(1 − terminated)Q′(s′, μ′(s′)), before the update
        next_q = algo.critic_target(b.next_obs, algo.actor_target(b.next_obs))
        target = b.rewards + 0.9 * (1.0 - b.terminated) * next_q
        q = algo.critic(b.obs, b.actions)
    metrics = algo.update(b)
    assert_close(metrics["value_mse"], F.mse_loss(q, target))
    assert_close(metrics["value_loss"], 0.5 * F.mse_loss(q, target))
    assert metrics["learning_rate"].item() == algo.config.learning_rate

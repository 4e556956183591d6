"""TD3's three changes to DDPG: the clipped double-Q target, target policy smoothing and
delayed actor updates; plus gradient routing, Polyak targets and determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor, nn
from torch.testing import assert_close

import pgrl
from pgrl.algos.td3 import (
    TD3,
    TD3Config,
    clipped_double_q_target,
    policy_update_due,
    target_policy_smoothing,
)
from pgrl.envs import SpaceInfo
from pgrl.errors import EnvError
from pgrl.types import Batch

SPACES = SpaceInfo(
    obs_dim=3,
    discrete=False,
    act_dim=2,
    low=np.array([-2.0, -1.0], np.float32),
    high=np.array([2.0, 1.0], np.float32),
)


def make(**kw) -> TD3:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    return TD3(TD3Config(hidden_sizes=(16, 16), **kw), SPACES)


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


class KnownCritics(nn.Module):
    """Q1(s, a) = 10 Σa + 1, Q2(s, a) = −Σa + 2; records the actions it is asked about."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Tensor] = []

    def forward(self, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        self.seen.append(action.clone())
        total = action.sum(-1)
        return 10.0 * total + 1.0, -total + 2.0


class ConstantActor(nn.Module):
    def __init__(self, action: Tensor) -> None:
        super().__init__()
        self.action = action

    def forward(self, obs: Tensor) -> Tensor:
        return self.action.expand(obs.shape[0], -1)


def test_clipped_double_q_target_by_hand() -> None:
    # y = r + γ(1 − term) min(Q1', Q2'): [1 + .9·min(5, 3), 1 + 0, −1 + .9·min(−2, 4)]
    y = clipped_double_q_target(
        torch.tensor([1.0, 1.0, -1.0]),
        torch.tensor([5.0, 5.0, -2.0]),
        torch.tensor([3.0, 3.0, 4.0]),
        torch.tensor([0.0, 1.0, 0.0]),
        0.9,
    )
    assert_close(y, torch.tensor([3.7, 1.0, -2.8]))


def test_target_policy_smoothing_clips_the_noise_then_the_action() -> None:
    low, high, clip = torch.tensor([-2.0, -1.0]), torch.tensor([2.0, 1.0]), torch.tensor([1.0, 0.5])
    action = torch.tensor([[1.5, 0.0], [0.0, 0.9], [-1.9, -0.2]])
    noise = torch.tensor([[3.0, -0.1], [-0.4, 0.3], [-0.5, -9.0]])
    # noise → [[1, −.1], [−.4, .3], [−.5, −.5]]; sums [[2.5, −.1], [−.4, 1.2], [−2.4, −.7]]
    expected = torch.tensor([[2.0, -0.1], [-0.4, 1.0], [-2.0, -0.7]])
    assert_close(target_policy_smoothing(action, noise, clip, low, high), expected)


def test_target_uses_the_smaller_target_critic_at_the_target_actors_action() -> None:
    algo = make(target_noise=0.0, gamma=0.5)
    critics = KnownCritics()
    algo.critic_target = critics  # type: ignore[assignment]
    algo.actor_target = ConstantActor(torch.tensor([[0.5, -0.25]]))  # type: ignore[assignment]
    b = batch()
    y = algo.target(b)
    # Σa = 0.25: Q1' = 3.5, Q2' = 1.75 → min 1.75
    assert_close(y, b.rewards + 0.5 * (1.0 - b.terminated) * 1.75)
    assert_close(critics.seen[0], torch.tensor([[0.5, -0.25]]).expand(32, 2))


def test_target_actions_are_smoothed_within_the_clip_and_the_bounds() -> None:
    algo = make(target_noise=0.5, target_noise_clip=0.25)  # σ̃, c as fractions of (2, 1)
    critics = KnownCritics()
    algo.critic_target = critics  # type: ignore[assignment]
    mu = torch.tensor([[1.9, 0.0]])
    algo.actor_target = ConstantActor(mu)  # type: ignore[assignment]
    b = batch(size=2000)
    y = algo.target(b)
    smoothed = critics.seen[0]
    offset = smoothed - mu
    assert offset.std(0).min() > 0.1  # noise is applied, per sample
    assert (offset[:, 0] <= 0.1 + 1e-6).all() and (offset[:, 0] >= -0.5 - 1e-6).all()  # bound 2
    assert (offset[:, 1].abs() <= 0.25 + 1e-6).all()  # clip c = 0.25 × 1
    assert (smoothed[:, 0] == 2.0).any()  # μ' + noise above the bound is clipped to it
    q1, q2 = 10.0 * smoothed.sum(-1) + 1.0, -smoothed.sum(-1) + 2.0
    assert_close(y, b.rewards + 0.99 * (1.0 - b.terminated) * torch.min(q1, q2))


def test_actor_and_targets_move_only_every_policy_delay_updates() -> None:
    algo = make(policy_delay=3, tau=0.1)
    b = batch()

    def snapshot(module: nn.Module) -> list[Tensor]:
        return [p.detach().clone() for p in module.parameters()]

    for update in range(1, 7):
        actor, actor_t, critic_t = (
            snapshot(m) for m in (algo.actor, algo.actor_target, algo.critic_target)
        )
        critic = snapshot(algo.critic)
        algo.update(b)
        moved = [
            any(not torch.equal(p, q) for p, q in zip(m.parameters(), old, strict=True))
            for m, old in (
                (algo.actor, actor),
                (algo.actor_target, actor_t),
                (algo.critic_target, critic_t),
                (algo.critic, critic),
            )
        ]
        due = update % 3 == 0
        assert moved == [due, due, due, True], f"update {update}"
        if due:  # and then only by Polyak averaging
            for new, old, src in zip(
                algo.actor_target.parameters(), actor_t, algo.actor.parameters(), strict=True
            ):
                assert_close(new, 0.1 * src + 0.9 * old)
            for new, old, src in zip(
                algo.critic_target.parameters(), critic_t, algo.critic.parameters(), strict=True
            ):
                assert_close(new, 0.1 * src + 0.9 * old)
    assert [policy_update_due(t, 3) for t in range(1, 7)] == [False, False, True] * 2
    assert int(algo.delay.count) == 6 and "delay" in algo.modules()  # the phase is checkpointed


def test_actor_step_leaves_critic_gradients_none_and_critic_unchanged() -> None:
    algo = make()
    before = [p.clone() for p in algo.critic.parameters()]
    algo.actor_step(batch())
    assert all(p.grad is None for p in algo.critic.parameters())
    for p, q in zip(algo.critic.parameters(), before, strict=True):
        assert torch.equal(p, q)
    assert all(p.requires_grad for p in algo.critic.parameters())


def test_critic_step_trains_both_critics_and_leaves_the_actor_alone() -> None:
    algo = make()
    before = [p.clone() for p in algo.actor.parameters()]
    algo.critic_step(batch())
    assert all(p.grad is None for p in algo.actor.parameters())
    for p, q in zip(algo.actor.parameters(), before, strict=True):
        assert torch.equal(p, q)
    assert all(p.grad is not None for p in algo.critic.q1.parameters())
    assert all(p.grad is not None for p in algo.critic.q2.parameters())


def test_td3_refuses_discrete_actions_with_a_clear_message() -> None:
    with pytest.raises(
        EnvError,
        match=r"TD3 needs a continuous \(Box\) action space; CartPole-v1 has Discrete\(2\)",
    ):
        pgrl.train("td3", "CartPole-v1", steps=10, save=False)


def test_same_seed_gives_identical_parameters() -> None:
    kw = {
        "steps": 600,
        "seed": 1,
        "save": False,
        "eval_episodes": 1,
        "config": {"learning_starts": 300, "minibatch_size": 32, "hidden_sizes": (16, 16)},
    }
    a, b = pgrl.train("td3", "Pendulum-v1", **kw), pgrl.train("td3", "Pendulum-v1", **kw)  # type: ignore[arg-type]
    for p, q in zip(a.algorithm.actor.parameters(), b.algorithm.actor.parameters(), strict=True):  # type: ignore[attr-defined]
        assert torch.equal(p, q)
    assert a.evaluation.returns == b.evaluation.returns  # type: ignore[union-attr]


def test_reported_critic_loss_is_sb3s_sum_of_the_two_mses() -> None:
    # SB3's TD3: critic_loss = Σ_i F.mse_loss(Q_i, y); pgrl's loss Σ_i ½ MSE_i is half of it
    algo = make(learning_starts=0)
    metrics = algo.update(batch())
    assert_close(metrics["value_mse"], 2 * metrics["value_loss"])
    assert metrics["learning_rate"].item() == algo.config.learning_rate

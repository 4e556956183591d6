"""Twin Delayed DDPG (Fujimoto et al. 2018), built from DDPG's pieces plus three changes.

TD3 is DDPG (:mod:`pgrl.algos.ddpg`: the critic target y = r + γ(1 − terminated)Q'(s', a'),
the actor loss −mean Q(s, μ(s)), replay, Polyak-averaged target networks, exploration noise)
with three changes, each a function below:

1. **Clipped double-Q learning** (paper, section 4.2, equation 10): two critics, and the
   target uses the smaller of the two target critics,
   y = r + γ (1 − terminated) min_{i=1,2} Q'_i(s', ã).
2. **Target policy smoothing** (section 5.3, equation 15): the target action is the target
   policy's plus clipped noise, ã = clip(μ'(s') + clip(ε, −c, c), low, high), ε ~ N(0, σ̃²).
3. **Delayed policy updates** (section 5.2): the actor and the target networks are updated
   once every ``policy_delay`` critic updates.

The actor ascends Q_1 alone, as in the paper.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from pgrl.algos.base import (
    Collection,
    LoopSettings,
    NetworkFactory,
    check_networks,
    current_learning_rate,
    encoder_maker,
    place,
    require_box,
    role_network,
    to_cpu,
    to_device,
    value_mse,
)
from pgrl.algos.ddpg import actor_loss, batch_rows, critic_target, exploration_noise
from pgrl.config import check_choice, check_range
from pgrl.errors import ConfigError
from pgrl.losses import soft_update_, twin_value_loss
from pgrl.nets import DeterministicActor, FlatAdam, TwinQ, frozen
from pgrl.spaces import SpaceInfo
from pgrl.types import Batch


@dataclass(frozen=True, kw_only=True)
class TD3Config:
    num_envs: int = 1
    """parallel environments N"""
    buffer_size: int = 1_000_000
    """replay buffer capacity (transitions)"""
    minibatch_size: int = 256
    """minibatch size B: transitions sampled from the replay buffer for one gradient step"""
    learning_starts: int = 25_000
    """uniformly random warm-up steps before the first update"""
    updates_per_step: int = 1
    """critic updates per environment step"""
    gamma: float = 0.99
    """discount γ"""
    tau: float = 0.005
    """Polyak averaging coefficient τ of the target networks"""
    learning_rate: float = 3e-4
    """actor step size (Adam)"""
    critic_learning_rate: float = 3e-4
    """critic step size (Adam)"""
    exploration_noise: float = 0.1
    """std of the exploration noise, as a fraction of the half action range"""
    noise: Literal["gaussian", "ou"] = "gaussian"
    """exploration noise process: independent Gaussian or Ornstein-Uhlenbeck"""
    ou_theta: float = 0.15
    """mean reversion θ of the Ornstein-Uhlenbeck process"""
    target_noise: float = 0.2
    """std σ̃ of the target policy smoothing noise, as a fraction of the half action range"""
    target_noise_clip: float = 0.5
    """clip c of the target policy smoothing noise, as a fraction of the half action range"""
    policy_delay: int = 2
    """critic updates per actor and target update d"""
    value_loss: Literal["mse", "huber"] = "mse"
    """critic loss: ½(y − Q)² or Huber"""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """hidden layer widths of actor and critics"""

    def __post_init__(self) -> None:
        check_range("num_envs", self.num_envs, 1)
        check_range("buffer_size", self.buffer_size, 1)
        check_range("minibatch_size", self.minibatch_size, 1)
        check_range("learning_starts", self.learning_starts, 0)
        check_range("updates_per_step", self.updates_per_step, 1)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_range("tau", self.tau, 0.0, 1.0, low_open=True)
        check_range("learning_rate", self.learning_rate, 0.0, low_open=True)
        check_range("critic_learning_rate", self.critic_learning_rate, 0.0, low_open=True)
        check_range("exploration_noise", self.exploration_noise, 0.0)
        check_range("target_noise", self.target_noise, 0.0)
        check_range("target_noise_clip", self.target_noise_clip, 0.0)
        check_range("policy_delay", self.policy_delay, 1)
        check_range("ou_theta", self.ou_theta, 0.0, 1.0)
        check_choice("noise", self.noise, ("gaussian", "ou"))
        check_choice("value_loss", self.value_loss, ("mse", "huber"))
        if self.minibatch_size > self.buffer_size:
            raise ConfigError(
                f"minibatch_size ({self.minibatch_size}) must not exceed "
                f"buffer_size ({self.buffer_size})"
            )


@torch.no_grad()
def clipped_double_q_target(
    reward: Tensor, next_q1: Tensor, next_q2: Tensor, terminated: Tensor, gamma: float
) -> Tensor:
    """Change 1, clipped double Q: y = r + γ (1 − terminated) min(Q'_1, Q'_2). All ``(B,)``.

    Taking the minimum of two independently trained critics counters the overestimation that
    maximising a noisy critic builds up. Reference: Fujimoto et al. (2018), equation 10.

    Example:
        >>> clipped_double_q_target(torch.tensor([1.0]), torch.tensor([5.0]),
        ...                         torch.tensor([3.0]), torch.tensor([0.0]), 0.5).tolist()
        [2.5]
    """
    return critic_target(reward, torch.min(next_q1, next_q2), terminated, gamma)


@torch.no_grad()
def target_policy_smoothing(
    next_action: Tensor, noise: Tensor, noise_clip: Tensor, low: Tensor, high: Tensor
) -> Tensor:
    """Change 2, target policy smoothing: ã = clip(μ'(s') + clip(ε, −c, c), low, high).

    Similar actions should have similar values; averaging the target over a small clipped
    neighbourhood of μ'(s') keeps the critic from fitting narrow peaks the actor could exploit.

    Args:
        next_action: ``(B, A)`` μ'(s') of the target actor.
        noise: ``(B, A)`` ε ~ N(0, σ̃²), drawn by the caller.
        noise_clip: ``(A,)`` c.
        low, high: ``(A,)`` the action bounds.

    Reference: Fujimoto et al. (2018), equation 15.

    Example:
        >>> one = torch.ones(1)
        >>> target_policy_smoothing(torch.tensor([[0.9, 0.0]]), torch.tensor([[0.3, -2.0]]),
        ...                         0.5 * one, -one, one).tolist()
        [[1.0, -0.5]]
    """
    clipped_noise = torch.maximum(torch.minimum(noise, noise_clip), -noise_clip)
    return torch.maximum(torch.minimum(next_action + clipped_noise, high), low)


def policy_update_due(critic_updates: int, policy_delay: int) -> bool:
    """Change 3, delayed policy updates: actor and targets move when t mod d = 0.

    Updating the policy less often than the critic lets the critic's error shrink before the
    policy follows it. ``critic_updates`` counts critic updates from 1, as in the authors'
    code, so the first actor update comes after d critic updates.
    Reference: Fujimoto et al. (2018), section 5.2 and algorithm 1.

    Example:
        >>> [policy_update_due(t, 2) for t in (1, 2, 3, 4)]
        [False, True, False, True]
    """
    return critic_updates % policy_delay == 0


class DelayState(nn.Module):
    """The critic updates so far and the latest actor loss, as buffers.

    Buffers land in checkpoints, so a resumed run keeps the phase of the delayed updates
    (and reports the same metrics) as the run it continues.
    """

    count: Tensor
    policy_loss: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))
        self.register_buffer("policy_loss", torch.zeros(()))


class TD3:
    """TD3: DDPG with twin critics, target policy smoothing and delayed policy updates."""

    collection: Collection = "replay"

    def __init__(
        self,
        config: TD3Config,
        spaces: SpaceInfo,
        *,
        device: torch.device | str | None = None,
        networks: Mapping[str, NetworkFactory] | None = None,
    ) -> None:
        require_box("TD3", spaces)
        assert spaces.low is not None and spaces.high is not None
        self.config = config
        self.device = None if device is None else torch.device(device)
        factories = check_networks("td3", networks, ("actor", "critic"))
        encoder = encoder_maker(spaces, factories)
        low, high = torch.as_tensor(spaces.low), torch.as_tensor(spaces.high)
        half_range = (high - low) / 2.0
        self.actor = role_network(
            "actor",
            factories,
            spaces,
            config,
            lambda: DeterministicActor(
                spaces.obs_dim, spaces.act_dim, low, high, config.hidden_sizes, encoder=encoder()
            ),
        )
        # the critic: forward(obs, action) -> (Q1, Q2) and q1(obs, action) -> Q1
        self.critic = role_network(
            "critic",
            factories,
            spaces,
            config,
            lambda: TwinQ(
                spaces.obs_dim, spaces.act_dim, config.hidden_sizes, make_encoder=encoder
            ),
            ("forward", "q1"),
        )
        place([self.actor, self.critic], self.device)
        # constants of the update live where the batches do; exploration noise on the CPU
        self.low, self.high = to_device(low, self.device), to_device(high, self.device)
        self.target_sigma = to_device(config.target_noise * half_range, self.device)
        self.target_clip = to_device(config.target_noise_clip * half_range, self.device)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_optimizer = FlatAdam([self.actor], config.learning_rate)
        self.critic_optimizer = FlatAdam([self.critic], config.critic_learning_rate)
        self.noise = exploration_noise(config, spaces.act_dim, half_range)
        self.delay = DelayState()
        place([self.delay], self.device)

    def act(self, obs: Tensor, *, deterministic: bool = False) -> Tensor:
        action = to_cpu(self.actor(to_device(obs, self.device)))
        if deterministic:
            return action
        # unclipped: the collector clips only the copy it sends to the environment
        return action + self.noise.sample(action.shape[0])

    def modules(self) -> dict[str, nn.Module]:
        return {
            "actor": self.actor,
            "critic": self.critic,
            "actor_target": self.actor_target,
            "critic_target": self.critic_target,
            "delay": self.delay,
        }

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.actor_optimizer.optimizer, "critic": self.critic_optimizer.optimizer}

    def loop_settings(self) -> LoopSettings:
        return LoopSettings.replay(self.config)

    def exploration_state(self) -> Tensor:
        return self.noise.state()

    def load_exploration_state(self, state: Tensor) -> None:
        self.noise.load_state(state)

    @torch.no_grad()
    def target(self, batch: Batch) -> Tensor:
        """y from the smoothed target action and the smaller target critic (changes 1 and 2)."""
        next_action = self.actor_target(batch.next_obs)
        noise = torch.randn_like(next_action) * self.target_sigma
        smoothed = target_policy_smoothing(
            next_action, noise, self.target_clip, self.low, self.high
        )
        next_q1, next_q2 = self.critic_target(batch.next_obs, smoothed)
        return clipped_double_q_target(
            batch.rewards, next_q1, next_q2, batch.terminated, self.config.gamma
        )

    def critic_step(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Regress both critics on the same target y.

        Returns the loss and SB3's ``critic_loss``, mean (y − Q_1)² + mean (y − Q_2)², both
        detached.
        """
        target = self.target(batch)
        q1, q2 = self.critic(batch.obs, batch.actions)
        loss = twin_value_loss(q1, q2, target, self.config.value_loss)
        self.critic_optimizer.step(loss)
        return loss.detach(), value_mse(q1, target) + value_mse(q2, target)

    def policy_objective(self, batch: Batch, masks: Tensor | None = None) -> Tensor:
        """The actor loss −mean Q_1(s, μ(s)) that :meth:`actor_step` differentiates.

        Args:
            batch: the replay minibatch ``(B, ...)``.
            masks: None for the scalar loss; or ``(K, B)`` 0/1 row selections, for a ``(K,)``
                tensor whose entry k is the loss on the rows of mask k. Used by
                :mod:`pgrl.diagnostics`.
        """
        if masks is None:
            return actor_loss(self.critic.q1(batch.obs, self.actor(batch.obs)))
        return torch.stack([self.policy_objective(batch_rows(batch, m)) for m in masks])

    def actor_step(self, batch: Batch) -> Tensor:
        """Ascend Q_1(s, μ(s)), DDPG's actor loss; the critics are frozen."""
        with frozen(self.critic):
            loss = self.policy_objective(batch)
            self.actor_optimizer.step(loss)
        return loss.detach()

    def update(self, batch: Batch) -> dict[str, Tensor]:
        # critic gradient every update; policy gradient and targets every policy_delay updates
        critic_loss, critic_mse = self.critic_step(batch)
        self.delay.count += 1
        if policy_update_due(int(self.delay.count), self.config.policy_delay):
            self.delay.policy_loss.copy_(self.actor_step(batch))
            soft_update_(self.actor_target, self.actor, self.config.tau)
            soft_update_(self.critic_target, self.critic, self.config.tau)
        # the latest actor loss on every update, so the loop's per-update mean stays honest
        return {
            "value_loss": critic_loss,
            "policy_loss": self.delay.policy_loss.clone(),
            "value_mse": critic_mse,
            "learning_rate": current_learning_rate(self.actor_optimizer.optimizer),
        }

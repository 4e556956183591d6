"""Deep Deterministic Policy Gradient (Lillicrap et al. 2016).

The deterministic policy gradient theorem (Silver et al. 2014):

    ∇J(θ) = E_s[ ∇_θ μ_θ(s) ∇_a Q(s, a)|_{a = μ_θ(s)} ]

is what autograd computes for the actor loss −mean Q(s, μ_θ(s)). The critic regresses on

    y = r + γ (1 − terminated) Q'(s', μ'(s'))

with target networks μ', Q' that trail the learned ones by Polyak averaging (τ). Transitions
come from a replay buffer; exploration adds Gaussian (or Ornstein-Uhlenbeck) noise to μ(s),
after ``learning_starts`` uniformly random warm-up steps.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

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
from pgrl.config import check_choice, check_range
from pgrl.errors import ConfigError
from pgrl.losses import soft_update_, value_loss
from pgrl.nets import DeterministicActor, FlatAdam, QNet, frozen, normal_noise
from pgrl.spaces import SpaceInfo
from pgrl.types import Batch

if TYPE_CHECKING:
    from pgrl.algos.td3 import TD3Config


@dataclass(frozen=True, kw_only=True)
class DDPGConfig:
    num_envs: int = 1
    """parallel environments N"""
    buffer_size: int = 100_000
    """replay buffer capacity (transitions)"""
    minibatch_size: int = 256
    """minibatch size B: transitions sampled from the replay buffer for one gradient step"""
    learning_starts: int = 1_000
    """uniformly random warm-up steps before the first update"""
    updates_per_step: int = 1
    """gradient updates per environment step"""
    gamma: float = 0.99
    """discount γ"""
    tau: float = 0.005
    """Polyak averaging coefficient τ of the target networks"""
    learning_rate: float = 1e-3
    """actor step size (Adam)"""
    critic_learning_rate: float = 1e-3
    """critic step size (Adam)"""
    exploration_noise: float = 0.1
    """std of the exploration noise, as a fraction of the half action range"""
    noise: Literal["gaussian", "ou"] = "gaussian"
    """exploration noise process: independent Gaussian or Ornstein-Uhlenbeck"""
    ou_theta: float = 0.15
    """mean reversion θ of the Ornstein-Uhlenbeck process"""
    value_loss: Literal["mse", "huber"] = "mse"
    """critic loss: ½(y − Q)² or Huber"""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """hidden layer widths of actor and critic"""

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
        check_range("ou_theta", self.ou_theta, 0.0, 1.0)
        check_choice("noise", self.noise, ("gaussian", "ou"))
        check_choice("value_loss", self.value_loss, ("mse", "huber"))
        if self.minibatch_size > self.buffer_size:
            raise ConfigError(
                f"minibatch_size ({self.minibatch_size}) must not exceed "
                f"buffer_size ({self.buffer_size})"
            )


@torch.no_grad()
def critic_target(reward: Tensor, next_q: Tensor, terminated: Tensor, gamma: float) -> Tensor:
    """y = r + γ (1 − terminated) Q'(s', μ'(s')), a constant. All ``(B,)``.

    Truncated transitions bootstrap like any other: s' is the true final observation.

    Example:
        >>> critic_target(torch.tensor([1.0, 1.0]), torch.tensor([2.0, 2.0]),
        ...               torch.tensor([0.0, 1.0]), 0.5).tolist()
        [2.0, 1.0]
    """
    return reward + gamma * (1.0 - terminated) * next_q


def actor_loss(q_of_policy_action: Tensor) -> Tensor:
    """−mean_s Q(s, μ(s)); its gradient in θ is the deterministic policy gradient.

    Example:
        >>> actor_loss(torch.tensor([1.0, 3.0])).item()
        -2.0
    """
    return -q_of_policy_action.mean()


class GaussianNoise:
    """ε ~ N(0, σ²) per action dimension, independent across steps."""

    def __init__(self, shape: tuple[int, ...], sigma: Tensor) -> None:
        self.shape, self.sigma = shape, sigma

    def sample(self, rows: int | None = None) -> Tensor:
        """``(rows, A)`` noise (all ``shape[0]`` rows by default), from the acting generators."""
        rows = self.shape[0] if rows is None else rows
        return normal_noise((rows, *self.shape[1:])) * self.sigma

    def state(self) -> Tensor:
        return torch.zeros(0)

    def load_state(self, state: Tensor) -> None:
        pass


class OUNoise:
    """Ornstein-Uhlenbeck noise x ← x − θ x + σ ε (dt = 1), as in Lillicrap et al. (2016)."""

    def __init__(self, shape: tuple[int, ...], sigma: Tensor, theta: float) -> None:
        self.sigma, self.theta = sigma, theta
        self.x = torch.zeros(shape)

    def sample(self, rows: int | None = None) -> Tensor:
        """Advance every row's process one step; return the first ``rows`` (all by default)."""
        self.x = self.x - self.theta * self.x + self.sigma * normal_noise(tuple(self.x.shape))
        return self.x[:rows]

    def state(self) -> Tensor:
        return self.x.clone()

    def load_state(self, state: Tensor) -> None:
        self.x = state.clone()


def exploration_noise(
    config: DDPGConfig | TD3Config, act_dim: int, half_range: Tensor
) -> GaussianNoise | OUNoise:
    """The exploration process of DDPG and TD3, one row per environment, σ in action units."""
    sigma = config.exploration_noise * half_range
    shape = (config.num_envs, act_dim)
    if config.noise == "ou":
        return OUNoise(shape, sigma, config.ou_theta)
    return GaussianNoise(shape, sigma)


class DDPG:
    """DDPG: deterministic actor, Q critic, target networks, replay and exploration noise."""

    collection: Collection = "replay"

    def __init__(
        self,
        config: DDPGConfig,
        spaces: SpaceInfo,
        *,
        device: torch.device | str | None = None,
        networks: Mapping[str, NetworkFactory] | None = None,
    ) -> None:
        require_box("DDPG", spaces)
        assert spaces.low is not None and spaces.high is not None
        self.config = config
        self.device = None if device is None else torch.device(device)
        factories = check_networks("ddpg", networks, ("actor", "critic"))
        encoder = encoder_maker(spaces, factories)
        low, high = torch.as_tensor(spaces.low), torch.as_tensor(spaces.high)
        self.actor = role_network(
            "actor",
            factories,
            spaces,
            config,
            lambda: DeterministicActor(
                spaces.obs_dim, spaces.act_dim, low, high, config.hidden_sizes, encoder=encoder()
            ),
        )
        self.critic = role_network(
            "critic",
            factories,
            spaces,
            config,
            lambda: QNet(spaces.obs_dim, spaces.act_dim, config.hidden_sizes, encoder=encoder()),
        )
        place([self.actor, self.critic], self.device)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_optimizer = FlatAdam([self.actor], config.learning_rate)
        self.critic_optimizer = FlatAdam([self.critic], config.critic_learning_rate)
        # the exploration noise is drawn and added on the CPU, where the collector acts
        self.noise = exploration_noise(config, spaces.act_dim, (high - low) / 2.0)

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
        }

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.actor_optimizer.optimizer, "critic": self.critic_optimizer.optimizer}

    def loop_settings(self) -> LoopSettings:
        return LoopSettings.replay(self.config)

    def exploration_state(self) -> Tensor:
        return self.noise.state()

    def load_exploration_state(self, state: Tensor) -> None:
        self.noise.load_state(state)

    def critic_step(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Regress Q(s, a) on y = r + γ(1 − terminated) Q'(s', μ'(s')).

        Returns the loss (½(y − Q)² or Huber) and mean (y − Q)², SB3's ``critic_loss``,
        both detached.
        """
        with torch.no_grad():
            next_q = self.critic_target(batch.next_obs, self.actor_target(batch.next_obs))
        target = critic_target(batch.rewards, next_q, batch.terminated, self.config.gamma)
        q = self.critic(batch.obs, batch.actions)
        loss = value_loss(q, target, self.config.value_loss)
        self.critic_optimizer.step(loss)
        return loss.detach(), value_mse(q, target)

    def policy_objective(self, batch: Batch, masks: Tensor | None = None) -> Tensor:
        """The actor loss −mean Q(s, μ(s)) that :meth:`actor_step` differentiates.

        Args:
            batch: the replay minibatch ``(B, ...)``.
            masks: None for the scalar loss; or ``(K, B)`` 0/1 row selections, for a ``(K,)``
                tensor whose entry k is the loss on the rows of mask k. Used by
                :mod:`pgrl.diagnostics`.
        """
        if masks is None:
            return actor_loss(self.critic(batch.obs, self.actor(batch.obs)))
        return torch.stack([self.policy_objective(batch_rows(batch, m)) for m in masks])

    def actor_step(self, batch: Batch) -> Tensor:
        """Ascend Q(s, μ(s)); the critic is frozen so it receives no gradient."""
        with frozen(self.critic):
            loss = self.policy_objective(batch)
            self.actor_optimizer.step(loss)
        return loss.detach()

    def update(self, batch: Batch) -> dict[str, Tensor]:
        # critic gradient, then policy gradient, then the target networks trail by τ
        critic_loss, critic_mse = self.critic_step(batch)
        policy_loss = self.actor_step(batch)
        soft_update_(self.actor_target, self.actor, self.config.tau)
        soft_update_(self.critic_target, self.critic, self.config.tau)
        return {
            "value_loss": critic_loss,
            "policy_loss": policy_loss,
            "value_mse": critic_mse,  # SB3's DDPG critic_loss: F.mse_loss(Q, y)
            "learning_rate": current_learning_rate(self.actor_optimizer.optimizer),
        }


def batch_rows(batch: Batch, mask: Tensor) -> Batch:
    """The rows of ``batch`` where ``mask`` ``(B,)`` is 1."""
    keep = mask.bool()
    return Batch(
        batch.obs[keep],
        batch.actions[keep],
        batch.rewards[keep],
        batch.next_obs[keep],
        batch.terminated[keep],
        batch.truncated[keep],
    )

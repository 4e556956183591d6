"""Soft Actor-Critic with automatic temperature (Haarnoja et al. 2018, "SAC: Algorithms and
Applications", arXiv:1812.05905).

SAC maximises the return plus the policy's entropy, weighted by a temperature α:
J(π) = Σ_t E[r_t + α H(π(·|s_t))]. The pieces, each a function below:

* soft critic target (equations 2-3, with clipped double Q from TD3):
  y = r + γ (1 − terminated) (min_i Q'_i(s', a') − α log π(a'|s')),  a' ~ π(·|s');
* critics: J_Q = ½ (Q_i(s, a) − y)² for i = 1, 2 (equation 5);
* policy, reparameterised a = f(ε; s) (equation 7 / 9):
  J_π = mean[α log π(a|s) − min_i Q_i(s, a)];
* temperature (equation 18): J(α) = mean[−α (log π(a|s) + H̄)], target entropy H̄ = −|A|,
  optimised through log α so that α stays positive.

The policy is a tanh-squashed Gaussian (:class:`pgrl.nets.SquashedGaussianPolicy`) whose
log-probability carries the change-of-variables correction (appendix C). Only the critics
have target networks, trailing by Polyak averaging. Continuous actions only.
"""

from __future__ import annotations

import copy
import math
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
from pgrl.algos.ddpg import batch_rows, critic_target
from pgrl.config import check_choice, check_range
from pgrl.errors import ConfigError
from pgrl.losses import soft_update_, twin_value_loss
from pgrl.nets import FlatAdam, SquashedGaussianPolicy, TwinQ, frozen, normal_noise
from pgrl.spaces import SpaceInfo
from pgrl.types import Batch


@dataclass(frozen=True, kw_only=True)
class SACConfig:
    num_envs: int = 1
    """parallel environments N"""
    buffer_size: int = 1_000_000
    """replay buffer capacity (transitions)"""
    minibatch_size: int = 256
    """minibatch size B: transitions sampled from the replay buffer for one gradient step"""
    learning_starts: int = 5_000
    """uniformly random warm-up steps before the first update"""
    updates_per_step: int = 1
    """gradient updates per environment step"""
    gamma: float = 0.99
    """discount γ"""
    tau: float = 0.005
    """Polyak averaging coefficient τ of the target critics"""
    learning_rate: float = 3e-4
    """policy step size (Adam)"""
    critic_learning_rate: float = 1e-3
    """critic step size (Adam)"""
    alpha_learning_rate: float = 1e-3
    """temperature step size (Adam, on log α)"""
    alpha: float = 1.0
    """temperature α: its initial value, or its fixed value when auto_alpha is off"""
    auto_alpha: bool = True
    """tune α so that the policy's entropy tracks target_entropy"""
    target_entropy: float | None = None
    """target entropy H̄ (None: −|A|, the number of action dimensions)"""
    value_loss: Literal["mse", "huber"] = "mse"
    """critic loss: ½(y − Q)² or Huber"""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """hidden layer widths of policy and critics"""
    noise_correlation: float = 0.0
    """ρ of the acting noise ε_t = ρ ε_(t−1) + √(1 − ρ²) ξ_t (0: independent at every step)"""

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
        check_range("alpha_learning_rate", self.alpha_learning_rate, 0.0, low_open=True)
        check_range("alpha", self.alpha, 0.0, low_open=True)
        check_range("noise_correlation", self.noise_correlation, 0.0, 1.0, high_open=True)
        check_choice("value_loss", self.value_loss, ("mse", "huber"))
        if self.minibatch_size > self.buffer_size:
            raise ConfigError(
                f"minibatch_size ({self.minibatch_size}) must not exceed "
                f"buffer_size ({self.buffer_size})"
            )


class CorrelatedNoise:
    """ε_t = ρ ε_(t−1) + √(1 − ρ²) ξ_t with ξ_t ~ N(0, I) from the acting generators, ε_0 = ξ_0.

    Every ε_t is N(0, I), so each action a_t = tanh(μ(s_t) + σ(s_t) ε_t) still follows
    π(·|s_t); only successive actions are correlated (for about 1 / (1 − ρ) steps), like the
    temporally coherent exploration of gSDE (Raffin et al. 2022) or coloured noise (Eberhard
    et al. 2023). The policy's loss never sees ε_t: SAC is off-policy and samples its own.
    """

    def __init__(self, shape: tuple[int, ...], rho: float) -> None:
        self.shape, self.rho = shape, rho
        self.eps: Tensor | None = None

    def sample(self) -> Tensor:
        xi = normal_noise(self.shape)
        if self.eps is None:
            self.eps = xi
        else:
            self.eps = self.rho * self.eps + math.sqrt(1.0 - self.rho**2) * xi
        return self.eps

    def state(self) -> Tensor:
        return torch.zeros(0) if self.eps is None else self.eps.clone()

    def load_state(self, state: Tensor) -> None:
        self.eps = None if state.numel() == 0 else state.clone()


@torch.no_grad()
def soft_q_target(
    reward: Tensor,
    next_q1: Tensor,
    next_q2: Tensor,
    next_log_prob: Tensor,
    terminated: Tensor,
    gamma: float,
    alpha: Tensor | float,
) -> Tensor:
    """y = r + γ (1 − terminated) (min(Q'_1, Q'_2)(s', a') − α log π(a'|s')), a' ~ π(·|s').

    The bracket is the soft value V(s') = E_a'[Q(s', a') − α log π(a'|s')] estimated with one
    sampled action. All ``(B,)``. Reference: Haarnoja et al. (2018b), equations 2-3.

    Example:
        >>> soft_q_target(torch.tensor([1.0]), torch.tensor([4.0]), torch.tensor([3.0]),
        ...               torch.tensor([-1.0]), torch.tensor([0.0]), 0.5, 2.0).tolist()
        [3.5]
    """
    soft_value = torch.min(next_q1, next_q2) - alpha * next_log_prob
    return critic_target(reward, soft_value, terminated, gamma)


def sac_actor_loss(q: Tensor, log_prob: Tensor, alpha: Tensor | float) -> Tensor:
    """−mean[Q(s, a) − α log π(a|s)], a = f_θ(ε; s) reparameterised (equation 7).

    Example:
        >>> sac_actor_loss(torch.tensor([2.0, 4.0]), torch.tensor([-1.0, 1.0]), 0.5).item()
        -3.0
    """
    objective = q - alpha * log_prob
    return -objective.mean()


def temperature_loss(log_alpha: Tensor, log_prob: Tensor, target_entropy: float) -> Tensor:
    """J(α) = mean[−α (log π(a|s) + H̄)], minimised over log α (equation 18).

    Its gradient in log α is −α (mean log π + H̄) = α (H − H̄) with H = −mean log π the
    policy's entropy estimate: α shrinks when the entropy is above the target and grows
    when it is below. ``log_prob`` is a constant here.

    Example:
        >>> temperature_loss(torch.tensor(0.0), torch.tensor([-3.0, -1.0]), -1.0).item()
        3.0
    """
    alpha = log_alpha.exp()
    return -(alpha * (log_prob.detach() + target_entropy)).mean()


@torch.no_grad()
def sb3_ent_coef_loss(log_alpha: Tensor, log_prob: Tensor, target_entropy: float) -> Tensor:
    """−mean[log α (log π(a|s) + H̄)], the number SB3 logs as ``train/ent_coef_loss``.

    A report, not a loss: pgrl descends :func:`temperature_loss` (α, not log α, in front; the
    same sign of gradient in log α). Detached, for the metrics only.

    Example:
        >>> sb3_ent_coef_loss(torch.tensor(0.5), torch.tensor([-3.0, -1.0]), -1.0).item()
        1.5
    """
    return -(log_alpha.detach() * (log_prob.detach() + target_entropy)).mean()


class Temperature(nn.Module):
    """The entropy temperature α = exp(log α), a module so that it is saved with the model."""

    def __init__(self, alpha: float, trainable: bool) -> None:
        super().__init__()
        self.log_alpha = nn.Parameter(torch.tensor(math.log(alpha)), requires_grad=trainable)

    @property
    def alpha(self) -> Tensor:
        """α, detached: the value the critic and policy losses use."""
        return self.log_alpha.detach().exp()


class SAC:
    """SAC: squashed Gaussian policy, twin soft critics with targets, automatic temperature."""

    collection: Collection = "replay"

    def __init__(
        self,
        config: SACConfig,
        spaces: SpaceInfo,
        *,
        device: torch.device | str | None = None,
        networks: Mapping[str, NetworkFactory] | None = None,
    ) -> None:
        require_box("SAC", spaces)
        assert spaces.low is not None and spaces.high is not None
        self.config = config
        self.device = None if device is None else torch.device(device)
        factories = check_networks("sac", networks, ("policy", "critic"))
        encoder = encoder_maker(spaces, factories)
        low, high = torch.as_tensor(spaces.low), torch.as_tensor(spaces.high)
        # the policy: rsample(obs) -> (action, log π) differentiable, sample(obs), mode(obs)
        self.policy = role_network(
            "policy",
            factories,
            spaces,
            config,
            lambda: SquashedGaussianPolicy(
                spaces.obs_dim, spaces.act_dim, low, high, config.hidden_sizes, encoder=encoder()
            ),
            ("rsample", "sample", "mode"),
        )
        self.critic = role_network(
            "critic",
            factories,
            spaces,
            config,
            lambda: TwinQ(
                spaces.obs_dim, spaces.act_dim, config.hidden_sizes, make_encoder=encoder
            ),
        )
        self.temperature = Temperature(config.alpha, config.auto_alpha)
        place([self.policy, self.critic, self.temperature], self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.target_entropy = (
            -float(spaces.act_dim) if config.target_entropy is None else config.target_entropy
        )
        self.policy_optimizer = FlatAdam([self.policy], config.learning_rate)
        self.critic_optimizer = FlatAdam([self.critic], config.critic_learning_rate)
        self.alpha_optimizer = (
            FlatAdam([self.temperature], config.alpha_learning_rate) if config.auto_alpha else None
        )
        if config.noise_correlation > 0 and not isinstance(self.policy, SquashedGaussianPolicy):
            raise ConfigError(
                "noise_correlation feeds the noise to pgrl's SquashedGaussianPolicy.sample(obs, "
                "noise=...); with your own policy network leave it at 0"
            )
        # independent sampling of π (None), or temporally correlated noise fed to its sample
        self.noise = (
            CorrelatedNoise((config.num_envs, spaces.act_dim), config.noise_correlation)
            if config.noise_correlation > 0
            else None
        )

    def act(self, obs: Tensor, *, deterministic: bool = False) -> Tensor:
        # the mode tanh(μ(s)) for evaluation; a sample inside the bounds for exploration
        obs = to_device(obs, self.device)
        if deterministic:
            return to_cpu(self.policy.mode(obs))
        if self.noise is None:
            return to_cpu(self.policy.sample(obs))
        return to_cpu(self.policy.sample(obs, noise=self.noise.sample()))

    def modules(self) -> dict[str, nn.Module]:
        return {
            "policy": self.policy,
            "critic": self.critic,
            "critic_target": self.critic_target,
            "temperature": self.temperature,
        }

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        out: dict[str, torch.optim.Optimizer] = {
            "policy": self.policy_optimizer.optimizer,
            "critic": self.critic_optimizer.optimizer,
        }
        if self.alpha_optimizer is not None:
            out["alpha"] = self.alpha_optimizer.optimizer
        return out

    def loop_settings(self) -> LoopSettings:
        return LoopSettings.replay(self.config)

    def exploration_state(self) -> Tensor:
        # independent sampling carries nothing; correlated noise carries ε_(t−1)
        return torch.zeros(0) if self.noise is None else self.noise.state()

    def load_exploration_state(self, state: Tensor) -> None:
        if self.noise is not None:
            self.noise.load_state(state)

    @torch.no_grad()
    def target(self, batch: Batch) -> Tensor:
        """y with a' ~ π(·|s') from the current policy and the smaller target critic."""
        next_action, next_log_prob = self.policy.rsample(batch.next_obs)
        next_q1, next_q2 = self.critic_target(batch.next_obs, next_action)
        return soft_q_target(
            batch.rewards,
            next_q1,
            next_q2,
            next_log_prob,
            batch.terminated,
            self.config.gamma,
            self.temperature.alpha,
        )

    def critic_step(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Regress both soft critics on the same target y.

        Returns the loss and SB3's ``critic_loss``, ½[mean (y − Q_1)² + mean (y − Q_2)²],
        both detached.
        """
        target = self.target(batch)
        q1, q2 = self.critic(batch.obs, batch.actions)
        loss = twin_value_loss(q1, q2, target, self.config.value_loss)
        self.critic_optimizer.step(loss)
        return loss.detach(), 0.5 * (value_mse(q1, target) + value_mse(q2, target))

    def policy_step(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Descend α log π − min Q through the reparameterised action; critics frozen.

        Returns the loss and log π(a|s) of the sampled actions (detached), which the
        temperature step reuses.
        """
        with frozen(self.critic):
            loss, log_prob = self.policy_terms(batch)
            self.policy_optimizer.step(loss)
        return loss.detach(), log_prob.detach()

    def policy_terms(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """(α log π − min Q through a reparameterised action a ~ π(·|s), log π(a|s))."""
        action, log_prob = self.policy.rsample(batch.obs)
        q1, q2 = self.critic(batch.obs, action)
        return sac_actor_loss(torch.min(q1, q2), log_prob, self.temperature.alpha), log_prob

    def policy_objective(self, batch: Batch, masks: Tensor | None = None) -> Tensor:
        """The policy loss that :meth:`policy_step` differentiates (it draws fresh actions
        from torch's global generator: save and restore it around a call that must not
        change a run).

        Args:
            batch: the replay minibatch ``(B, ...)``.
            masks: None for the scalar loss; or ``(K, B)`` 0/1 row selections, for a ``(K,)``
                tensor whose entry k is the loss on the rows of mask k. Used by
                :mod:`pgrl.diagnostics`.
        """
        if masks is None:
            return self.policy_terms(batch)[0]
        return torch.stack([self.policy_objective(batch_rows(batch, m)) for m in masks])

    def temperature_step(self, log_prob: Tensor) -> Tensor:
        """Move log α along −∇J(α): down when the entropy exceeds H̄, up when it falls short."""
        loss = temperature_loss(self.temperature.log_alpha, log_prob, self.target_entropy)
        if self.alpha_optimizer is not None:
            self.alpha_optimizer.step(loss)
        return loss.detach()

    def update(self, batch: Batch) -> dict[str, Tensor]:
        # critic gradient, policy gradient, temperature, then the target critics trail by τ
        # (Haarnoja et al. 2018b, algorithm 1)
        critic_loss, critic_mse = self.critic_step(batch)
        policy_loss, log_prob = self.policy_step(batch)
        metrics = {"value_mse": critic_mse}
        if self.alpha_optimizer is not None:  # SB3 logs ent_coef_loss only when α learns
            metrics["ent_coef_loss"] = sb3_ent_coef_loss(
                self.temperature.log_alpha, log_prob, self.target_entropy
            )
        alpha_loss = self.temperature_step(log_prob)
        soft_update_(self.critic_target, self.critic, self.config.tau)
        return {
            "value_loss": critic_loss,
            "policy_loss": policy_loss,
            "alpha_loss": alpha_loss,
            "alpha": self.temperature.alpha,
            "entropy": -log_prob.mean(),
            **metrics,
            "learning_rate": current_learning_rate(self.policy_optimizer.optimizer),
        }

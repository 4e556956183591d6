"""Synchronous advantage actor-critic (A2C) with bootstrapped returns.

The critic V_ω(s) replaces the Monte-Carlo return by a bootstrapped one. With the article's
one-step return (``n_step=1``):

    actor:  ∇J(θ) ≈ mean_t[ (r_t + γ V_ω(s'_t) − V_ω(s_t)) ∇log π_θ(a_t|s_t) ]
    critic: J(ω) = mean_t[ ½ (r_t + γ V_ω(s'_t) − V_ω(s_t))² ]   (or Huber)

``n_step > 1`` uses the n-step return; with n ≥ ``rollout_steps`` every step bootstraps at
the end of the rollout, as in Mnih et al. (2016) and Stable-Baselines3's A2C.
N environments step in lockstep; every ``rollout_steps`` steps one update is made.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from pgrl.algos.base import (
    Collection,
    LoopSettings,
    NetworkFactory,
    current_learning_rate,
    explained_variance,
    gaussian_std,
    place,
    policy_and_value,
    to_cpu,
    to_device,
    value_mse,
)
from pgrl.config import check_choice, check_range
from pgrl.losses import (
    combined_loss,
    entropy_bonus,
    normalize_advantages,
    policy_gradient_loss,
    value_loss,
)
from pgrl.nets import FlatAdam
from pgrl.returns import nstep_returns, td_targets
from pgrl.spaces import SpaceInfo
from pgrl.types import Rollout


@dataclass(frozen=True, kw_only=True)
class A2CConfig:
    num_envs: int = 8
    """parallel environments N"""
    rollout_steps: int = 5
    """steps T per environment between updates"""
    gamma: float = 0.99
    """discount γ"""
    n_step: int = 1
    """bootstrap after n steps: 1 is the article's R + γV(s'); n >= rollout_steps is Mnih et al."""
    learning_rate: float = 7e-4
    """step size (Adam) for actor and critic"""
    value_coef: float = 1.0
    """weight of the critic loss ½(y − V)² in the summed loss (1.0 here = Baselines' 0.5 × MSE)"""
    entropy_coef: float = 0.0
    """entropy bonus coefficient"""
    value_loss: Literal["mse", "huber"] = "mse"
    """critic loss: ½(y − V)² or Huber"""
    normalize_advantages: bool = False
    """scale advantages to zero mean, unit std per batch (not in the article)"""
    max_grad_norm: float | None = 0.5
    """clip the global gradient norm (OpenAI Baselines: 0.5; None: no clipping)"""
    lr_schedule: Literal["constant", "linear"] = "constant"
    """learning rate schedule: constant, or linear decay to 0 over the training budget"""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """hidden layer widths of the policy and critic"""
    log_std_init: float = 0.0
    """initial log σ of the Gaussian policy (Box actions)"""

    def __post_init__(self) -> None:
        check_range("num_envs", self.num_envs, 1)
        check_range("rollout_steps", self.rollout_steps, 1)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_range("n_step", self.n_step, 1)
        check_range("learning_rate", self.learning_rate, 0.0, low_open=True)
        check_range("value_coef", self.value_coef, 0.0)
        check_range("entropy_coef", self.entropy_coef, 0.0)
        check_choice("value_loss", self.value_loss, ("mse", "huber"))
        check_choice("lr_schedule", self.lr_schedule, ("constant", "linear"))
        if self.max_grad_norm is not None:
            check_range("max_grad_norm", self.max_grad_norm, 0.0, low_open=True)

    @property
    def batch_size(self) -> int:
        """Transitions per update: num_envs × rollout_steps."""
        return self.num_envs * self.rollout_steps


def bootstrapped_targets(
    rollout: Rollout, next_values: Tensor, gamma: float, n_step: int
) -> Tensor:
    """y_t: the one-step target r + γ(1 − term)V(s') or the n-step return, ``(T, N)``."""
    if n_step == 1:
        return td_targets(rollout.rewards, next_values, rollout.terminated, gamma)
    return nstep_returns(
        rollout.rewards, next_values, rollout.terminated, rollout.truncated, gamma, n_step
    )


class A2CLosses(NamedTuple):
    """The three losses of one rollout, with gradients, and the critic's V(s) and y they
    were computed from (V with its gradient, y a constant), ``(T, N)``."""

    policy_loss: Tensor
    critic_loss: Tensor
    entropy: Tensor
    value: Tensor
    target: Tensor


class A2C:
    """Synchronous actor-critic: one update per rollout of N environments × T steps."""

    collection: Collection = "rollout"

    def __init__(
        self,
        config: A2CConfig,
        spaces: SpaceInfo,
        *,
        device: torch.device | str | None = None,
        networks: Mapping[str, NetworkFactory] | None = None,
    ) -> None:
        self.config = config
        self.device = None if device is None else torch.device(device)
        self.policy, self.value = policy_and_value("a2c", spaces, config, networks)
        place([self.policy, self.value], self.device)
        # one Adam on actor and critic together, as in OpenAI Baselines' A2C
        self.optimizer = FlatAdam(
            [self.policy, self.value], config.learning_rate, config.max_grad_norm
        )

    def act(self, obs: Tensor, *, deterministic: bool = False) -> Tensor:
        obs = to_device(obs, self.device)
        actions = self.policy.mode(obs) if deterministic else self.policy.sample(obs)
        return to_cpu(actions)

    def modules(self) -> dict[str, nn.Module]:
        return {"policy": self.policy, "value": self.value}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"optimizer": self.optimizer.optimizer}

    def loop_settings(self) -> LoopSettings:
        config = self.config
        return LoopSettings(rollout_steps=config.rollout_steps, lr_schedule=config.lr_schedule)

    def exploration_state(self) -> Tensor:
        return torch.zeros(0)  # it explores by sampling its policy: no noise process to carry

    def load_exploration_state(self, state: Tensor) -> None:
        pass

    def terms(self, rollout: Rollout) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """(log π(a|s), A, entropy, V(s), y) of one rollout, each ``(T, N)``, with gradients."""
        config = self.config
        # critic: one forward pass for V(s) and V(s'); only V(s) keeps its gradient
        both = self.value(torch.cat([rollout.obs, rollout.next_obs]))
        value, next_value = both[: len(rollout.obs)], both[len(rollout.obs) :].detach()
        target = bootstrapped_targets(rollout, next_value, config.gamma, config.n_step)
        # A_t = y_t − V(s_t), a constant weight of ∇log π
        advantage = target - value.detach()
        if config.normalize_advantages:
            advantage = normalize_advantages(advantage, rollout.loss_mask)
        log_prob, entropy = self.policy.log_prob_entropy(rollout.obs, rollout.actions)
        return log_prob, advantage, entropy, value, target

    def losses(self, rollout: Rollout) -> tuple[Tensor, Tensor, Tensor]:
        """(policy loss, critic loss, mean entropy) of one rollout, with gradients."""
        return self.losses_and_values(rollout)[:3]

    def losses_and_values(self, rollout: Rollout) -> A2CLosses:
        """:meth:`losses`, and the V(s) and y the critic loss compares."""
        mask = rollout.loss_mask
        log_prob, advantage, entropy, value, target = self.terms(rollout)
        # actor: ascend mean_t[A_t ∇log π(a_t|s_t)]
        policy_loss = policy_gradient_loss(log_prob, advantage, mask)
        critic_loss = value_loss(value, target, self.config.value_loss, mask)
        return A2CLosses(policy_loss, critic_loss, entropy_bonus(entropy, mask), value, target)

    def policy_objective(self, rollout: Rollout, masks: Tensor | None = None) -> Tensor:
        """The policy loss that :meth:`update` differentiates, at the current parameters.

        Args:
            rollout: the batch ``(T, N)``.
            masks: None for the scalar loss of the whole rollout; or ``(K, T, N)`` 0/1 row
                selections, for a ``(K,)`` tensor whose entry k is the same loss with its
                mean over the rows of mask k (advantages, and their normalisation, still
                come from the whole rollout). Used by :mod:`pgrl.diagnostics`.
        """
        log_prob, advantage, _, _, _ = self.terms(rollout)
        if masks is None:
            return policy_gradient_loss(log_prob, advantage, rollout.loss_mask)
        return torch.stack([policy_gradient_loss(log_prob, advantage, m) for m in masks])

    def update(self, rollout: Rollout) -> dict[str, Tensor]:
        config = self.config
        policy_loss, critic_loss, entropy, value, target = self.losses_and_values(rollout)
        loss = combined_loss(
            policy_loss, critic_loss, entropy, config.value_coef, config.entropy_coef
        )
        metrics = {
            "policy_loss": policy_loss.detach(),
            "value_loss": critic_loss.detach(),
            "entropy": entropy.detach(),
            # Stable-Baselines3's definitions, from the tensors the loss used: the MSE of
            # y against V(s) (value_loss is ½·MSE), and V's explained variance over the
            # rollout, V as it was when the rollout was collected
            "value_mse": value_mse(value, target, rollout.loss_mask),
            "explained_variance": explained_variance(value, target, rollout.loss_mask),
            "learning_rate": current_learning_rate(self.optimizer.optimizer),
        }
        self.optimizer.step(loss)
        std = gaussian_std(self.policy)  # after the step, as SB3 logs it
        if std is not None:
            metrics["std"] = std
        return metrics

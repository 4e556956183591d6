"""REINFORCE, with the whole-trajectory return or the reward-to-go, with or without a baseline.

The policy gradient theorem gives ∇J(θ) = E[r(τ) Σ_t ∇log π(a_t|s_t)]. Past rewards do not
depend on later actions, so r(τ) can be replaced by the reward-to-go G_t (Williams 1992),
and any baseline b(s_t) that does not depend on the action can be subtracted:

    ∇J(θ) ≈ mean_t[ (G_t − b(s_t)) ∇log π(a_t|s_t) ]

With ``baseline="value"`` a critic V(s) is fitted to G_t by regression and used as b(s_t);
``baseline="mean"`` uses the batch's mean return (a constant, for comparison).
Each update uses whole episodes: every environment runs ``episodes_per_env`` episodes.
"""

from __future__ import annotations

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
    explained_variance,
    gaussian_std,
    place,
    policy_and_value,
    to_cpu,
    to_device,
    value_mse,
)
from pgrl.config import check_choice, check_range
from pgrl.errors import ConfigError
from pgrl.losses import (
    combined_loss,
    entropy_bonus,
    normalize_advantages,
    reinforce_loss,
    value_loss,
)
from pgrl.nets import FlatAdam
from pgrl.returns import discount_powers, discounted_returns, episode_returns
from pgrl.spaces import SpaceInfo
from pgrl.types import Rollout


@dataclass(frozen=True, kw_only=True)
class ReinforceConfig:
    num_envs: int = 8
    """parallel environments N"""
    episodes_per_env: int = 1
    """whole episodes each environment runs per update"""
    gamma: float = 0.99
    """discount γ"""
    learning_rate: float = 1e-3
    """policy step size (Adam)"""
    weight: Literal["reward_to_go", "total"] = "reward_to_go"
    """the return that weights ∇log π: reward-to-go G_t, or the whole-trajectory r(τ)"""
    baseline: Literal["value", "mean", "none"] = "value"
    """baseline b(s): a learned V(s), the mean return of the batch's other episodes, or none"""
    critic_learning_rate: float = 1e-3
    """critic step size (Adam), used with baseline=value"""
    value_epochs: int = 5
    """critic regression steps per update on the same episodes"""
    value_loss: Literal["mse", "huber"] = "mse"
    """critic loss: ½(G − V)² or Huber"""
    entropy_coef: float = 0.0
    """entropy bonus coefficient"""
    normalize_advantages: bool = False
    """scale G_t − b to zero mean, unit std per batch (a common variance trick; not in the article)"""
    discount_weighting: bool = False
    """multiply step t by γ^t: the exact gradient of the discounted objective (see docs/verify.md)"""
    max_grad_norm: float | None = None
    """clip the global gradient norm (None: no clipping)"""
    lr_schedule: Literal["constant", "linear"] = "constant"
    """learning rate schedule: constant, or linear decay to 0 over the training budget"""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """hidden layer widths of the policy and critic"""
    log_std_init: float = 0.0
    """initial log σ of the Gaussian policy (Box actions)"""

    def __post_init__(self) -> None:
        check_range("num_envs", self.num_envs, 1)
        check_range("episodes_per_env", self.episodes_per_env, 1)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_range("learning_rate", self.learning_rate, 0.0, low_open=True)
        check_range("critic_learning_rate", self.critic_learning_rate, 0.0, low_open=True)
        check_range("value_epochs", self.value_epochs, 1)
        check_range("entropy_coef", self.entropy_coef, 0.0)
        check_choice("weight", self.weight, ("reward_to_go", "total"))
        check_choice("baseline", self.baseline, ("value", "mean", "none"))
        check_choice("value_loss", self.value_loss, ("mse", "huber"))
        check_choice("lr_schedule", self.lr_schedule, ("constant", "linear"))
        if self.max_grad_norm is not None:
            check_range("max_grad_norm", self.max_grad_norm, 0.0, low_open=True)


def policy_weights(rollout: Rollout, config: ReinforceConfig, next_values: Tensor | None) -> Tensor:
    """The return that weights ∇log π before the baseline: G_t or r(τ). Shapes ``(T, N)``."""
    args = (rollout.rewards, rollout.terminated, rollout.truncated, config.gamma, next_values)
    if config.weight == "total":
        return episode_returns(*args)
    return discounted_returns(*args)


class Reinforce:
    """REINFORCE (Williams 1992) with the variants of the article."""

    collection: Collection = "episodes"

    def __init__(
        self,
        config: ReinforceConfig,
        spaces: SpaceInfo,
        *,
        device: torch.device | str | None = None,
        networks: Mapping[str, NetworkFactory] | None = None,
    ) -> None:
        self.config = config
        self.device = None if device is None else torch.device(device)
        factories = check_networks("reinforce", networks, ("policy", "value"))
        if "value" in factories and config.baseline != "value":
            raise ConfigError(
                f"networks['value'] is unused with baseline={config.baseline!r}; "
                "REINFORCE has a value network only with baseline='value'"
            )
        self.policy, value = policy_and_value(
            "reinforce", spaces, config, networks, with_value=config.baseline == "value"
        )
        self.value: nn.Module | None = value
        place([m for m in (self.policy, self.value) if m is not None], self.device)
        self.policy_optimizer = FlatAdam([self.policy], config.learning_rate, config.max_grad_norm)
        if self.value is not None:
            self.value_optimizer = FlatAdam(
                [self.value], config.critic_learning_rate, config.max_grad_norm
            )

    def act(self, obs: Tensor, *, deterministic: bool = False) -> Tensor:
        obs = to_device(obs, self.device)
        actions = self.policy.mode(obs) if deterministic else self.policy.sample(obs)
        return to_cpu(actions)

    def modules(self) -> dict[str, nn.Module]:
        out: dict[str, nn.Module] = {"policy": self.policy}
        if self.value is not None:
            out["value"] = self.value
        return out

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        out: dict[str, torch.optim.Optimizer] = {"policy": self.policy_optimizer.optimizer}
        if self.value is not None:
            out["value"] = self.value_optimizer.optimizer
        return out

    def loop_settings(self) -> LoopSettings:
        config = self.config
        return LoopSettings(
            episodes_per_env=config.episodes_per_env, lr_schedule=config.lr_schedule
        )

    def exploration_state(self) -> Tensor:
        return torch.zeros(0)  # it explores by sampling its policy: no noise process to carry

    def load_exploration_state(self, state: Tensor) -> None:
        pass

    def advantages(self, rollout: Rollout) -> tuple[Tensor, Tensor]:
        """(the weight G_t − b of ∇log π, the returns G_t the baseline regresses on), ``(T, N)``.

        G_t (or r(τ)); a time-limit cut bootstraps from V(s') when V exists.
        """
        config = self.config
        next_values = None
        if self.value is not None:
            with torch.no_grad():
                next_values = self.value(rollout.next_obs)
        weight = policy_weights(rollout, config, next_values)
        returns = discounted_returns(
            rollout.rewards, rollout.terminated, rollout.truncated, config.gamma, next_values
        )
        baseline = self._baseline(rollout, weight)
        advantage = weight - baseline
        if config.discount_weighting:
            advantage = advantage * discount_powers(
                rollout.terminated, rollout.truncated, config.gamma
            )
        if config.normalize_advantages:
            advantage = normalize_advantages(advantage, rollout.loss_mask)
        return advantage, returns

    def policy_objective(self, rollout: Rollout, masks: Tensor | None = None) -> Tensor:
        """The policy loss that :meth:`update` differentiates, at the current parameters.

        Args:
            rollout: the batch of episodes ``(T, N)``.
            masks: None for the scalar loss; or ``(K, T, N)`` 0/1 row selections, for a
                ``(K,)`` tensor whose entry k is the same loss with its mean over the rows of
                mask k (weights from the whole batch). Used by :mod:`pgrl.diagnostics`.
        """
        advantage, _ = self.advantages(rollout)
        log_prob, _ = self.policy.log_prob_entropy(rollout.obs, rollout.actions)
        if masks is None:
            return reinforce_loss(log_prob, advantage, 0.0, rollout.loss_mask)
        return torch.stack([reinforce_loss(log_prob, advantage, 0.0, m) for m in masks])

    def update(self, rollout: Rollout) -> dict[str, Tensor]:
        config = self.config
        mask = rollout.loss_mask
        # 1. returns: G_t (or r(τ)) and the baseline b(s_t)
        advantage, returns = self.advantages(rollout)

        # 2. the policy step: ascend mean_t[(G_t − b) ∇log π(a_t|s_t)]
        log_prob, entropy = self.policy.log_prob_entropy(rollout.obs, rollout.actions)
        policy_loss = reinforce_loss(log_prob, advantage, 0.0, mask)
        entropy_mean = entropy_bonus(entropy, mask)
        self.policy_optimizer.step(
            combined_loss(policy_loss, entropy=entropy_mean, entropy_coef=config.entropy_coef)
        )

        metrics = {
            "policy_loss": policy_loss.detach(),
            "entropy": entropy_mean.detach(),
            "learning_rate": current_learning_rate(self.policy_optimizer.optimizer),
        }
        std = gaussian_std(self.policy)
        if std is not None:
            metrics["std"] = std
        # 3. the baseline step: regress V(s_t) on G_t, value_epochs times on the same episodes
        if self.value is not None:
            for epoch in range(config.value_epochs):
                value = self.value(rollout.obs)
                if epoch == 0:  # V as it was when the episodes were collected, as in SB3
                    metrics["explained_variance"] = explained_variance(value, returns, mask)
                critic_loss = value_loss(value, returns, config.value_loss, mask)
                self.value_optimizer.step(critic_loss)
            metrics["value_loss"] = critic_loss.detach()
            metrics["value_mse"] = value_mse(value, returns, mask)  # SB3's definition
        return metrics

    @torch.no_grad()
    def _baseline(self, rollout: Rollout, weight: Tensor) -> Tensor | float:
        """b(s_t), detached: V(s_t), the batch's mean return, or 0."""
        if self.value is not None:
            return self.value(rollout.obs)
        if self.config.baseline == "mean":
            return leave_one_out_mean(weight, rollout.mask, rollout.terminated, rollout.truncated)
        return 0.0


@torch.no_grad()
def leave_one_out_mean(
    weight: Tensor, mask: Tensor, terminated: Tensor, truncated: Tensor
) -> Tensor:
    """For each step, the mean weight over the real steps of the *other* episodes in the batch.

    A batch mean that includes an episode's own return correlates with that episode's
    actions and biases the gradient (by about 1/number of episodes; measured by
    ``pgrl verify`` at −29% for 2 episodes). Leaving the episode out keeps the baseline
    independent of its actions, hence unbiased. Shapes ``(T, N)``.

    Example:
        >>> w = torch.tensor([[1.0, 5.0], [3.0, 5.0]])
        >>> done = torch.tensor([[False, False], [True, True]])
        >>> leave_one_out_mean(w, torch.ones(2, 2), done, torch.zeros_like(done)).tolist()
        [[5.0, 2.0], [5.0, 2.0]]
    """
    done = (terminated | truncated).long()
    # episode number within each column: episodes end where done is set
    within = torch.cumsum(done, 0) - done
    episode = within + torch.arange(weight.shape[1], device=weight.device) * (weight.shape[0] + 1)
    flat_ids, flat_mask = episode.flatten(), mask.flatten()
    size = int(flat_ids.max()) + 1
    zeros = torch.zeros(size, dtype=weight.dtype, device=weight.device)
    sums = zeros.index_add(0, flat_ids, (weight * mask).flatten())
    counts = zeros.index_add(0, flat_ids, flat_mask)
    total, count = sums.sum(), counts.sum()
    others = (count - counts[episode]).clamp_min(1.0)
    return (total - sums[episode]) / others

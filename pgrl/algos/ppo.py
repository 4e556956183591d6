"""Proximal Policy Optimization with the clipped surrogate objective (Schulman et al. 2017).

Each update reuses one rollout of N environments × T steps for several epochs of minibatch
steps. The policy π_θ that collected the rollout is π_old; the probability ratio

    ρ_t(θ) = π_θ(a_t|s_t) / π_old(a_t|s_t)

enters the clipped surrogate (PPO paper, equation 7)

    L^CLIP(θ) = mean_t[ min(ρ_t A_t, clip(ρ_t, 1 − ε, 1 + ε) A_t) ]

which removes the incentive to move ρ_t outside [1 − ε, 1 + ε] in the direction the
advantage favours. Advantages are GAE(λ) (Schulman et al. 2016) with V(s') of the true next
observation, so a time-limit cut bootstraps. The summed loss of each minibatch is

    −L^CLIP + c_V · ½ (V(s_t) − G^λ_t)² − c_H · H[π(·|s_t)]

For Box actions the ratio uses the joint density of the whole action vector (the Gaussian
log-probability summed over dimensions).
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
from pgrl.encoders import normalizable_mask
from pgrl.errors import ConfigError
from pgrl.losses import combined_loss, masked_mean, normalize_advantages
from pgrl.nets import FlatAdam
from pgrl.normalize import ObsNormalizer, RewardScaler
from pgrl.returns import gae
from pgrl.spaces import SpaceInfo
from pgrl.types import Rollout


@dataclass(frozen=True, kw_only=True)
class PPOConfig:
    num_envs: int = 4
    """parallel environments N"""
    rollout_steps: int = 128
    """steps T per environment between updates"""
    minibatch_size: int = 128
    """transitions per gradient step; must divide num_envs × rollout_steps"""
    update_epochs: int = 4
    """passes over each rollout"""
    gamma: float = 0.99
    """discount γ"""
    gae_lambda: float = 0.95
    """GAE λ"""
    clip_eps: float = 0.2
    """clip range ε of the probability ratio"""
    clip_value: bool = True
    """also clip the value update to ±clip_eps around the old value (OpenAI Baselines)"""
    learning_rate: float = 2.5e-4
    """step size (Adam) for policy and critic"""
    value_coef: float = 0.5
    """weight of the critic loss ½(G^λ − V)² (0.5 = CleanRL's vf_coef 0.5; SB3's 0.5 is 1.0 here)"""
    entropy_coef: float = 0.01
    """entropy bonus coefficient c_H"""
    max_grad_norm: float | None = 0.5
    """clip the global gradient norm (OpenAI Baselines: 0.5; None: no clipping)"""
    target_kl: float | None = None
    """stop the update's epochs once an epoch's mean approximate KL exceeds this (None: never)"""
    normalize_advantages: bool = True
    """scale advantages to zero mean, unit std (over advantage_scope's transitions)"""
    advantage_scope: Literal["rollout", "minibatch"] = "rollout"
    """normalize over each rollout's real transitions, or over each minibatch (SB3, CleanRL)"""
    normalize_obs: bool = False
    """normalize observations by running mean and std (clipped to ±10); saved with the model"""
    normalize_reward: bool = False
    """scale rewards by the running std of the discounted return (clipped to ±10)"""
    lr_schedule: Literal["constant", "linear"] = "linear"
    """learning rate schedule: constant, or linear decay to 0 over the training budget"""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """hidden layer widths of the policy and critic"""
    log_std_init: float = 0.0
    """initial log σ of the Gaussian policy (Box actions)"""

    def __post_init__(self) -> None:
        check_range("num_envs", self.num_envs, 1)
        check_range("rollout_steps", self.rollout_steps, 1)
        check_range("minibatch_size", self.minibatch_size, 1)
        check_range("update_epochs", self.update_epochs, 1)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_range("gae_lambda", self.gae_lambda, 0.0, 1.0)
        check_range("clip_eps", self.clip_eps, 0.0, low_open=True)
        check_range("learning_rate", self.learning_rate, 0.0, low_open=True)
        check_range("value_coef", self.value_coef, 0.0)
        check_range("entropy_coef", self.entropy_coef, 0.0)
        check_choice("lr_schedule", self.lr_schedule, ("constant", "linear"))
        check_choice("advantage_scope", self.advantage_scope, ("rollout", "minibatch"))
        if self.max_grad_norm is not None:
            check_range("max_grad_norm", self.max_grad_norm, 0.0, low_open=True)
        if self.target_kl is not None:
            check_range("target_kl", self.target_kl, 0.0, low_open=True)
        if self.batch_size % self.minibatch_size != 0:
            raise ConfigError(
                f"minibatch_size ({self.minibatch_size}) must divide num_envs × rollout_steps "
                f"= {self.num_envs} × {self.rollout_steps} = {self.batch_size}; "
                f"legal values are the divisors of {self.batch_size}"
            )

    @property
    def batch_size(self) -> int:
        """Transitions per rollout: num_envs × rollout_steps."""
        return self.num_envs * self.rollout_steps

    @property
    def num_minibatches(self) -> int:
        """Gradient steps per epoch: batch_size / minibatch_size."""
        return self.batch_size // self.minibatch_size


def clipped_surrogate(
    ratio: Tensor, advantage: Tensor, clip_eps: float, mask: Tensor | None = None
) -> Tensor:
    """PPO's clipped objective, negated: −mean[min(ρ A, clip(ρ, 1 − ε, 1 + ε) A)].

    Where A > 0 and ρ > 1 + ε, or A < 0 and ρ < 1 − ε, the clipped term is the minimum and
    is constant in θ: those samples give no gradient. Everywhere else the gradient is that of
    ρ A, the importance-sampled policy gradient.

    Args:
        ratio: ``(B,)`` ρ = π_θ(a|s) / π_old(a|s), with gradient.
        advantage: ``(B,)`` A, a constant.
        clip_eps: ε.
        mask: optional ``(B,)`` 1 for real transitions.

    Reference: Schulman et al. (2017), "Proximal Policy Optimization Algorithms", eq. 7.

    Example:
        >>> # ε = 0.5: min(2 · 1, 1.5 · 1) = 1.5 and min(0.25 · −1, 0.5 · −1) = −0.5
        >>> clipped_surrogate(torch.tensor([2.0, 0.25]), torch.tensor([1.0, -1.0]), 0.5).item()
        -0.5
    """
    advantage = advantage.detach()
    unclipped = ratio * advantage
    clipped = ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps) * advantage
    objective = torch.min(unclipped, clipped)
    return -masked_mean(objective, mask)


def clipped_value_loss(
    value: Tensor, old_value: Tensor, returns: Tensor, clip_eps: float | None
) -> Tensor:
    """PPO2's clipped critic loss ½ max((V − G)², (V_clip − G)²); ½ (V − G)² when ε is None.

    V_clip = V_old + clip(V − V_old, −ε, ε).

    The clipped form keeps the critic, like the policy, near the parameters that collected the
    data; it is in OpenAI Baselines' PPO2, not in the paper, and Engstrom et al. (2020) and
    Andrychowicz et al. (2021) found it neutral to harmful, so presets may turn it off.

    Args:
        value: ``(B,)`` V_θ(s), with gradient.
        old_value: ``(B,)`` V_old(s) from before the update, a constant.
        returns: ``(B,)`` G^λ, a constant.
        clip_eps: ε, or None for the plain squared error.

    Example:
        >>> v, old, g = torch.tensor([2.0]), torch.tensor([0.0]), torch.tensor([3.0])
        >>> clipped_value_loss(v, old, g, None).item(), clipped_value_loss(v, old, g, 0.5).item()
        (0.5, 3.125)
    """
    returns = returns.detach()
    unclipped = (value - returns).pow(2)
    if clip_eps is None:
        return 0.5 * unclipped.mean()
    old_value = old_value.detach()
    clipped_value = old_value + (value - old_value).clamp(-clip_eps, clip_eps)
    clipped = (clipped_value - returns).pow(2)
    return 0.5 * torch.max(unclipped, clipped).mean()


@torch.no_grad()
def approx_kl(log_ratio: Tensor) -> Tensor:
    """KL(π_old ‖ π_θ) ≈ mean[(ρ − 1) − log ρ], an unbiased, non-negative estimator.

    Reference: J. Schulman (2020), "Approximating KL divergence" (the k3 estimator).

    Example:
        >>> approx_kl(torch.zeros(3)).item()
        0.0
    """
    return ((log_ratio.exp() - 1.0) - log_ratio).mean()


class PPOData(NamedTuple):
    """One rollout's real transitions, flat ``(M, ...)``, ready to be cut into minibatches.

    ``obs`` is normalized with the statistics that acted; ``log_prob`` and ``value`` are
    π_old's log-probabilities and V_old, computed once before any gradient step.
    """

    obs: Tensor
    actions: Tensor
    log_prob: Tensor
    value: Tensor
    advantage: Tensor
    returns: Tensor


class MinibatchTerms(NamedTuple):
    """The loss of one minibatch and the terms it is made of."""

    loss: Tensor
    policy_loss: Tensor
    value_loss: Tensor
    entropy: Tensor
    ratio: Tensor
    approx_kl: Tensor
    clip_fraction: Tensor
    value_mse: Tensor
    """mean (G^λ − V_θ(s))², SB3's value_loss (its default, unclipped critic), detached"""


def obs_normalizer(spaces: SpaceInfo) -> ObsNormalizer:
    """The running normalizer of ``normalize_obs``, over the non-image Box parts only.

    Images are scaled by their encoder and one-hot or binary parts are already in [0, 1]:
    those entries of the flat observation pass through unchanged.

    Raises:
        ConfigError: the observation has no Box part to normalize.
    """
    space = spaces.observation_space
    if space is None or spaces.flat_obs:
        return ObsNormalizer(spaces.obs_dim)
    mask = normalizable_mask(space)
    if not mask.any():
        raise ConfigError(
            f"normalize_obs: the observation {spaces.obs_space} has no Box part to normalize "
            "(images are scaled by their encoder, one-hot and binary parts are in [0, 1]); "
            "set normalize_obs=False"
        )
    return ObsNormalizer(spaces.obs_dim, mask=torch.from_numpy(mask))


class PPO:
    """PPO-Clip: several epochs of minibatch steps on each rollout."""

    collection: Collection = "rollout"

    def __init__(
        self,
        config: PPOConfig,
        spaces: SpaceInfo,
        *,
        device: torch.device | str | None = None,
        networks: Mapping[str, NetworkFactory] | None = None,
    ) -> None:
        self.config = config
        self.device = None if device is None else torch.device(device)
        self.policy, self.value = policy_and_value("ppo", spaces, config, networks)
        self.obs_normalizer = obs_normalizer(spaces) if config.normalize_obs else None
        self.reward_scaler = (
            RewardScaler(config.num_envs, config.gamma) if config.normalize_reward else None
        )
        place(list(self.modules().values()), self.device)
        self.optimizer = FlatAdam(
            [self.policy, self.value], config.learning_rate, config.max_grad_norm
        )

    def normalize(self, obs: Tensor) -> Tensor:
        """The observation the networks see: normalized when ``normalize_obs`` is on."""
        return obs if self.obs_normalizer is None else self.obs_normalizer(obs)

    def act(self, obs: Tensor, *, deterministic: bool = False) -> Tensor:
        # reads the normalizer's statistics, never updates them (they move only in update)
        obs = self.normalize(to_device(obs, self.device))
        actions = self.policy.mode(obs) if deterministic else self.policy.sample(obs)
        return to_cpu(actions)

    def modules(self) -> dict[str, nn.Module]:
        out: dict[str, nn.Module] = {"policy": self.policy, "value": self.value}
        if self.obs_normalizer is not None:
            out["obs_normalizer"] = self.obs_normalizer
        if self.reward_scaler is not None:
            out["reward_scaler"] = self.reward_scaler
        return out

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"optimizer": self.optimizer.optimizer}

    def loop_settings(self) -> LoopSettings:
        config = self.config
        return LoopSettings(rollout_steps=config.rollout_steps, lr_schedule=config.lr_schedule)

    def exploration_state(self) -> Tensor:
        return torch.zeros(0)  # it explores by sampling its policy: no noise process to carry

    def load_exploration_state(self, state: Tensor) -> None:
        pass

    @torch.no_grad()
    def prepare(self, rollout: Rollout) -> PPOData:
        """π_old's log-probabilities, V_old, GAE advantages and λ-returns of the real steps.

        Observations are normalized with the statistics that acted (so the first minibatch
        has ρ = 1 exactly); the statistics then absorb this rollout, for the next one.
        """
        config = self.config
        steps, envs = rollout.rewards.shape
        obs, next_obs = self.normalize(rollout.obs), self.normalize(rollout.next_obs)
        rewards = rollout.rewards
        if self.reward_scaler is not None:
            self.reward_scaler.update(rewards, rollout.terminated | rollout.truncated, rollout.mask)
            rewards = self.reward_scaler(rewards)
        # V(s) and V(s') in one forward pass
        both = self.value(torch.cat([obs, next_obs]))
        values, next_values = both[:steps], both[steps:]
        advantages, returns = gae(
            rewards,
            values,
            next_values,
            rollout.terminated,
            rollout.truncated,
            config.gamma,
            config.gae_lambda,
        )
        # keep only real transitions: placeholders (mask 0) never enter a minibatch
        real = rollout.mask.reshape(-1).bool()
        flat_obs = obs.reshape(steps * envs, -1)[real]
        actions = rollout.actions.reshape(steps * envs, *rollout.actions.shape[2:])[real]
        log_prob, _ = self.policy.log_prob_entropy(flat_obs, actions)
        advantage = advantages.reshape(-1)[real]
        if config.normalize_advantages and config.advantage_scope == "rollout":
            advantage = normalize_advantages(advantage)
        if self.obs_normalizer is not None:
            self.obs_normalizer.update(rollout.obs.reshape(steps * envs, -1)[real])
        return PPOData(
            flat_obs,
            actions,
            log_prob,
            values.reshape(-1)[real],
            advantage,
            returns.reshape(-1)[real],
        )

    def minibatch_terms(self, data: PPOData, index: Tensor) -> MinibatchTerms:
        """The clipped surrogate, the critic loss and the entropy on the rows ``index``."""
        config = self.config
        obs, actions = data.obs[index], data.actions[index]
        log_prob, entropy = self.policy.log_prob_entropy(obs, actions)
        log_ratio = log_prob - data.log_prob[index]
        ratio = log_ratio.exp()
        advantage = data.advantage[index]
        if config.normalize_advantages and config.advantage_scope == "minibatch":
            advantage = normalize_advantages(advantage)
        policy_loss = clipped_surrogate(ratio, advantage, config.clip_eps)
        value, returns = self.value(obs), data.returns[index]
        critic_loss = clipped_value_loss(
            value,
            data.value[index],
            returns,
            config.clip_eps if config.clip_value else None,
        )
        entropy_mean = entropy.mean()
        loss = combined_loss(
            policy_loss, critic_loss, entropy_mean, config.value_coef, config.entropy_coef
        )
        with torch.no_grad():
            clip_fraction = ((ratio - 1.0).abs() > config.clip_eps).float().mean()
        return MinibatchTerms(
            loss,
            policy_loss,
            critic_loss,
            entropy_mean,
            ratio,
            approx_kl(log_ratio.detach()),
            clip_fraction,
            value_mse(value, returns),
        )

    def policy_objective(self, rollout: Rollout, masks: Tensor | None = None) -> Tensor:
        """The clipped-surrogate loss that :meth:`update` differentiates, at the current θ.

        At the parameters that collected the rollout ρ = 1, so its gradient is the first
        minibatch step's, −mean[A ∇log π], over the whole rollout. The rollout is prepared
        as :meth:`update` prepares it (:meth:`prepare`), then the normalizers' statistics are
        put back: calling this changes nothing.

        Args:
            rollout: the batch ``(T, N)``.
            masks: None for the scalar loss of the whole rollout; or ``(K, T, N)`` 0/1 row
                selections, for a ``(K,)`` tensor whose entry k is the loss on the rows of
                mask k (advantages normalized over the whole rollout, as in the update).
                Used by :mod:`pgrl.diagnostics`.
        """
        statistics = [m for m in (self.obs_normalizer, self.reward_scaler) if m is not None]
        saved = [{k: v.clone() for k, v in m.state_dict().items()} for m in statistics]
        data = self.prepare(rollout)
        for module, state in zip(statistics, saved, strict=True):
            module.load_state_dict(state)
        count = data.advantage.shape[0]
        if masks is None:
            return self.minibatch_terms(data, torch.arange(count)).policy_loss
        real = rollout.mask.reshape(-1).bool()
        rows = [m.reshape(-1)[real].nonzero().squeeze(1) for m in masks]
        return torch.stack([self.minibatch_terms(data, index).policy_loss for index in rows])

    def update(self, rollout: Rollout) -> dict[str, Tensor]:
        config = self.config
        data = self.prepare(rollout)
        count = data.advantage.shape[0]
        # per step: policy loss, value loss, entropy, approx KL, clip fraction, value MSE
        terms: list[Tensor] = []
        # SB3's step size of this update and explained variance of V_old over the rollout
        learning_rate = current_learning_rate(self.optimizer.optimizer)
        value_fit = explained_variance(data.value, data.returns)
        for _ in range(config.update_epochs):
            epoch_terms: list[Tensor] = []
            # a fresh shuffle each epoch, cut into num_minibatches nearly equal parts (equal
            # when the rollout holds no placeholders)
            for index in torch.randperm(count).tensor_split(config.num_minibatches):
                if index.numel() == 0:  # fewer real transitions than minibatches
                    continue
                minibatch = self.minibatch_terms(data, index)
                self.optimizer.step(minibatch.loss)
                epoch_terms.append(
                    torch.stack(
                        [
                            minibatch.policy_loss.detach(),
                            minibatch.value_loss.detach(),
                            minibatch.entropy.detach(),
                            minibatch.approx_kl,
                            minibatch.clip_fraction,
                            minibatch.value_mse,
                        ]
                    )
                )
            terms += epoch_terms
            target_kl = config.target_kl
            if target_kl is not None and epoch_terms:
                # one .item() per epoch, only when early stopping asks for it
                epoch_kl = float(torch.stack(epoch_terms)[:, 3].sum())
                if epoch_kl / config.num_minibatches > target_kl:
                    break
        means = torch.stack(terms).mean(0) if terms else torch.zeros(6, device=data.obs.device)
        metrics = {
            "policy_loss": means[0],
            "value_loss": means[1],
            "entropy": means[2],
            "approx_kl": means[3],
            "clip_fraction": means[4],
            "value_mse": means[5],
            "explained_variance": value_fit,
            "learning_rate": learning_rate,
            "clip_range": torch.tensor(config.clip_eps, dtype=torch.float64),
        }
        std = gaussian_std(self.policy)  # after the epochs, as SB3 logs it
        if std is not None:
            metrics["std"] = std
        return metrics

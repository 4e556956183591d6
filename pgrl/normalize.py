"""Observation normalization and reward scaling whose statistics live in the policy artifact.

Both normalizers are ``nn.Module``s whose statistics are *buffers*, so they land in the state
dict: pgrl's saved model and checkpoints carry them, and evaluation or deployment normalizes
with exactly the statistics training used (DESIGN.md, decision 5).

Statistics move only when an algorithm calls ``update`` with training data (inside its own
``update``); calling a normalizer (``forward``) never changes it. Acting, deterministic
evaluation included, therefore reads training's statistics frozen.

* :class:`ObsNormalizer`: ô = clip((o − μ) / √(σ² + ε), −10, 10), with μ, σ² the running
  mean and variance of the observations seen in training.
* :class:`RewardScaler`: r̂ = clip(r / √(Var[R] + ε), −10, 10), where R_t = γ R_{t−1} + r_t is
  a per-environment discounted return, reset at episode ends. Dividing by its standard
  deviation, not the reward's, keeps the scale of the value targets near 1 (Engstrom et al.
  2020, "Implementation Matters in Deep Policy Gradients", section 3; OpenAI Baselines'
  ``VecNormalize``). The reward is scaled, never shifted: a shift would change which policy
  is optimal when episodes have different lengths.

Reference for the parallel variance update: Chan, Golub & LeVeque (1979), "Updating formulae
and a pairwise algorithm for computing sample variances".
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["ObsNormalizer", "RewardScaler", "RunningMeanStd", "discounted_return_trace"]


class RunningMeanStd(nn.Module):
    """Running mean and (population) variance of a stream of batches, as buffers.

    Merging a batch of n samples with mean m_b and variance v_b into (μ, σ², c):

        δ = m_b − μ,  c' = c + n
        μ' = μ + δ n / c'
        σ²' = (σ² c + v_b n + δ² c n / c') / c'

    The statistics are float64 (a long run sums millions of samples). ``epsilon`` is the
    initial pseudo-count (with μ = 0, σ² = 1), as in OpenAI Baselines; 0 makes the
    statistics exactly those of the data.

    Example:
        >>> rms = RunningMeanStd((), epsilon=0.0)
        >>> rms.update(torch.tensor([1.0, 2.0])); rms.update(torch.tensor([3.0, 4.0, 5.0]))
        >>> round(rms.mean.item(), 6), round(rms.var.item(), 6), rms.count.item()
        (3.0, 2.0, 5.0)
    """

    mean: Tensor
    var: Tensor
    count: Tensor

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(float(epsilon), dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        """Merge a batch ``(B, *shape)``; an empty batch changes nothing."""
        if x.shape[0] == 0:
            return
        x = x.to(torch.float64)
        batch_mean = x.mean(0)
        batch_var = x.var(0, correction=0)
        self.update_from_moments(batch_mean, batch_var, x.shape[0])

    @torch.no_grad()
    def update_from_moments(self, batch_mean: Tensor, batch_var: Tensor, batch_count: int) -> None:
        """Merge a batch given by its mean, population variance and size (Chan et al.)."""
        total = self.count + batch_count
        delta = batch_mean - self.mean
        m2 = self.var * self.count + batch_var * batch_count
        m2 = m2 + delta.pow(2) * self.count * batch_count / total
        self.mean.add_(delta * batch_count / total)
        self.var.copy_(m2 / total)
        self.count.copy_(total)


class ObsNormalizer(nn.Module):
    """ô = clip((o − μ) / √(σ² + ε), −clip, clip) with running μ, σ² of training observations.

    Shapes: ``(..., O)`` in, the same shape out (float32). With ``mask`` (``(O,)`` bool) only
    the entries where it is True are normalized; the others (image pixels, one-hot parts of a
    structured observation) pass through unchanged. The mask follows from the observation
    space, so it is not saved (the state dict is the same with and without one).

    Example:
        >>> norm = ObsNormalizer(2)
        >>> norm.update(torch.tensor([[0.0, 10.0], [2.0, 30.0]]))
        >>> [round(v, 3) for v in norm(torch.tensor([[1.0, 20.0]]))[0].tolist()]
        [0.0, 0.0]
    """

    mask: Tensor | None

    def __init__(
        self,
        obs_dim: int,
        clip: float = 10.0,
        epsilon: float = 1e-8,
        *,
        mask: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.rms = RunningMeanStd((obs_dim,))
        self.clip, self.epsilon = clip, epsilon
        if mask is not None and bool(mask.all()):
            mask = None  # every entry: the plain path
        self.register_buffer("mask", None if mask is None else mask.bool(), persistent=False)

    def forward(self, obs: Tensor) -> Tensor:
        scaled = (obs - self.rms.mean) / torch.sqrt(self.rms.var + self.epsilon)
        normalized = scaled.clamp(-self.clip, self.clip).to(torch.float32)
        if self.mask is None:
            return normalized
        return torch.where(self.mask, normalized, obs)

    def update(self, obs: Tensor) -> None:
        """Merge training observations ``(B, O)`` (real transitions only) into the statistics."""
        self.rms.update(obs.reshape(-1, obs.shape[-1]))


@torch.no_grad()
def discounted_return_trace(
    rewards: Tensor, done: Tensor, gamma: float, initial: Tensor
) -> tuple[Tensor, Tensor]:
    """The running discounted return R_t = γ R_{t−1} + r_t, reset to 0 after an episode ends.

    R_{−1} = ``initial`` (the accumulator carried over from the previous rollout). After a
    step with done_t (terminated or truncated) the next step starts again from 0.

    Args:
        rewards: ``(T, N)`` rewards r_t.
        done: ``(T, N)`` bool, the episode ended at t.
        gamma: discount γ.
        initial: ``(N,)`` R_{−1}.

    Returns:
        ``(trace, carry)``: R_t ``(T, N)`` and the accumulator for the next rollout ``(N,)``.

    Example:
        >>> r = torch.ones(3, 1); d = torch.tensor([[False], [True], [False]])
        >>> trace, carry = discounted_return_trace(r, d, 0.5, torch.zeros(1))
        >>> trace.squeeze(1).tolist(), carry.tolist()
        ([1.0, 1.5, 1.0], [1.0])
    """
    trace = torch.empty(rewards.shape, dtype=initial.dtype, device=rewards.device)
    current = initial
    keep = 1.0 - done.to(initial.dtype)
    for t in range(rewards.shape[0]):
        current = gamma * current + rewards[t]
        trace[t] = current
        current = current * keep[t]
    return trace, current


class RewardScaler(nn.Module):
    """r̂ = clip(r / √(Var[R] + ε), −clip, clip), R the per-environment discounted return.

    The accumulator R (one per environment, a buffer) continues across rollouts and is reset
    at episode ends, as in OpenAI Baselines' and Stable-Baselines3's ``VecNormalize``.

    Example:
        >>> scaler = RewardScaler(num_envs=1, gamma=0.0)
        >>> r = torch.tensor([[2.0], [-2.0]]); f = torch.zeros(2, 1, dtype=torch.bool)
        >>> scaler.update(r, f, torch.ones(2, 1))
        >>> [round(v, 3) for v in scaler(r).squeeze(1).tolist()]
        [1.0, -1.0]
    """

    returns: Tensor

    def __init__(
        self, num_envs: int, gamma: float, clip: float = 10.0, epsilon: float = 1e-8
    ) -> None:
        super().__init__()
        self.rms = RunningMeanStd(())
        self.register_buffer("returns", torch.zeros(num_envs, dtype=torch.float64))
        self.gamma, self.clip, self.epsilon = gamma, clip, epsilon

    def forward(self, rewards: Tensor) -> Tensor:
        scaled = rewards / torch.sqrt(self.rms.var + self.epsilon)
        return scaled.clamp(-self.clip, self.clip).to(torch.float32)

    @torch.no_grad()
    def update(self, rewards: Tensor, done: Tensor, mask: Tensor) -> None:
        """Advance R over a rollout ``(T, N)`` and merge its real steps into Var[R]."""
        trace, carry = discounted_return_trace(rewards, done, self.gamma, self.returns)
        self.returns.copy_(carry)
        self.rms.update(trace[mask.bool()])

"""Calibration: the diagnostics' estimates against exact values on a finite MDP.

On a finite MDP of :mod:`pgrl.verify` the gradient ∇J is exact (policy gradient theorem).
One trajectory's gradient estimate ĝ_τ = Σ_t γ^t (G_t − V^π(s_t)) ∇log π(a_t|s_t) is computed
by pgrl's own loss (:func:`pgrl.verify.estimators.reward_to_go` with the exact V^π, unbiased),
and its covariance Σ by a very large sample (``reference_trajectories``). The exact values at
a batch of n trajectories are then

    SNR = n ‖∇J‖² / tr Σ,     B_simple = tr Σ / ‖∇J‖²  (in trajectories),

and E cos(ĝ_n, ∇J), the cosine of a batch with the true gradient, the quantity that the
fresh-sample cosine of :class:`pgrl.diagnostics.GradientDiagnostics` approximates
(Ilyas et al. 2020) by replacing ∇J with a gradient of ``fresh_multiple`` × n trajectories.

:func:`calibrate` runs the diagnostics ``repeats`` times on independent batches of n
trajectories cut into K chunks (:func:`pgrl.diagnostics.stats.gradient_stats`), exactly as
the callback does, and returns both sides with their standard errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from pgrl.diagnostics.stats import gradient_stats
from pgrl.verify import exact
from pgrl.verify.estimators import TERMINAL_POISON, Critics, batch_gradients, reward_to_go
from pgrl.verify.mdp import FiniteMDP, make_mdp, random_policy
from pgrl.verify.rollouts import sample_episodes

__all__ = ["Calibration", "calibrate", "trajectory_gradients"]


@dataclass(frozen=True)
class Calibration:
    """Exact values and the diagnostics' estimates (means over repeats, with standard errors)."""

    mdp: str
    batch_trajectories: int
    chunks: int
    repeats: int
    fresh_multiple: int
    exact_signal: float
    """‖∇J‖², exact"""
    exact_trace: float
    """tr Σ of one trajectory's gradient, from the large sample"""
    exact_trace_se: float
    exact_snr: float
    """n ‖∇J‖² / tr Σ"""
    exact_noise_scale: float
    """tr Σ / ‖∇J‖², trajectories"""
    exact_cosine: float
    """E cos(ĝ_n, ∇J), over the repeats' batches (Monte Carlo, ``exact_cosine_se``)"""
    exact_cosine_se: float
    signal: float
    """mean over repeats of the unbiased ‖G‖²^ of the chunks"""
    signal_se: float
    trace: float
    """mean over repeats of b·S, the per-trajectory tr Σ estimate"""
    trace_se: float
    snr: float
    """pooled SNR: n · mean ‖G‖²^ / mean b·S"""
    noise_scale: float
    """pooled B_simple: mean b·S / mean ‖G‖²^"""
    fresh_cosine: float
    """mean over repeats of cos(ĝ_n, ĝ_{m n}), the diagnostic's cosine"""
    fresh_cosine_se: float
    fresh_cosine_predicted: float
    """the fresh cosine predicted from the exact values: E cos(ĝ_n, ∇J) × E cos(ĝ_{mn}, ∇J)"""


def trajectory_gradients(
    mdp: FiniteMDP, theta: Tensor, count: int, generator: torch.Generator, block: int = 20_000
) -> Tensor:
    """``(count, S·A)`` independent one-trajectory estimates Σ_t γ^t (G_t − V^π) ∇log π."""
    values = exact.state_values(mdp, theta)
    poisoned = torch.where(mdp.terminal, TERMINAL_POISON, values)
    critics = Critics(
        gamma=mdp.gamma,
        exact=poisoned,
        fitted_mc=poisoned[None],
        fitted_td=poisoned[None],
        fitted_constant=torch.zeros(1, dtype=torch.float64),
        rewards=mdp.rewards,
    )
    estimator = {"g": reward_to_go("exact")}
    out = []
    for start in range(0, count, block):
        size = min(block, count - start)
        data = sample_episodes(
            mdp,
            theta,
            num_batches=size,
            trajectories_per_batch=1,
            episodes_per_column=1,
            generator=generator,
        )
        out.append(batch_gradients(data, theta, estimator, critics)["g"].reshape(size, -1))
    return torch.cat(out)


def _mean_se(x: Tensor) -> tuple[float, float]:
    return float(x.mean()), float(x.std()) / math.sqrt(x.numel())


def calibrate(
    mdp: FiniteMDP | None = None,
    theta: Tensor | None = None,
    *,
    batch_trajectories: int = 32,
    chunks: int = 8,
    repeats: int = 500,
    fresh_multiple: int = 4,
    reference_trajectories: int = 200_000,
    seed: int = 0,
) -> Calibration:
    """The diagnostics on ``repeats`` batches of n trajectories against the exact values.

    Args:
        mdp: a finite MDP (default: :func:`pgrl.verify.mdp.make_mdp` at ``seed``).
        theta: ``(S, A)`` softmax logits (default :func:`pgrl.verify.mdp.random_policy`).
        batch_trajectories: n, trajectories per batch (a multiple of ``chunks``).
        chunks: K, chunks per batch.
        repeats: independent batches the diagnostics run on.
        fresh_multiple: m, the fresh sample's size in batches.
        reference_trajectories: the large sample that gives tr Σ.
        seed: seeds the MDP, the policy and the sampling.
    """
    mdp = make_mdp(None, seed) if mdp is None else mdp
    theta = random_policy(mdp, seed) if theta is None else theta
    generator = torch.Generator().manual_seed(seed + 1)
    n, k, m = batch_trajectories, chunks, fresh_multiple
    if n % k:
        raise ValueError(f"batch_trajectories ({n}) must be a multiple of chunks ({k})")
    target = exact.policy_gradient_theorem(mdp, theta).reshape(-1)
    exact_signal = float(target.square().sum())

    reference = trajectory_gradients(mdp, theta, reference_trajectories, generator)
    trace_terms = (reference - reference.mean(0)).square().sum(1)
    exact_trace, exact_trace_se = _mean_se(trace_terms * len(reference) / (len(reference) - 1))

    batches = trajectory_gradients(mdp, theta, repeats * n * (1 + m), generator)
    batches = batches.reshape(repeats, n * (1 + m), -1)
    signal, trace, fresh, true_cos, fresh_true_cos = [], [], [], [], []
    for draw in batches:
        batch, extra = draw[:n], draw[n:]
        chunk_grads = batch.reshape(k, n // k, -1).mean(1)
        stats = gradient_stats(chunk_grads, batch_size=n)
        signal.append(stats.signal)
        trace.append(stats.per_sample_trace)
        mean, big = batch.mean(0), extra.mean(0)
        fresh.append(float(torch.nn.functional.cosine_similarity(mean, big, dim=0)))
        true_cos.append(float(torch.nn.functional.cosine_similarity(mean, target, dim=0)))
        fresh_true_cos.append(float(torch.nn.functional.cosine_similarity(big, target, dim=0)))
    signal_mean, signal_se = _mean_se(torch.tensor(signal))
    trace_mean, trace_se = _mean_se(torch.tensor(trace))
    fresh_mean, fresh_se = _mean_se(torch.tensor(fresh))
    cos_mean, cos_se = _mean_se(torch.tensor(true_cos))
    return Calibration(
        mdp=mdp.name,
        batch_trajectories=n,
        chunks=k,
        repeats=repeats,
        fresh_multiple=m,
        exact_signal=exact_signal,
        exact_trace=exact_trace,
        exact_trace_se=exact_trace_se,
        exact_snr=n * exact_signal / exact_trace,
        exact_noise_scale=exact_trace / exact_signal,
        exact_cosine=cos_mean,
        exact_cosine_se=cos_se,
        signal=signal_mean,
        signal_se=signal_se,
        trace=trace_mean,
        trace_se=trace_se,
        snr=n * signal_mean / trace_mean,
        noise_scale=trace_mean / signal_mean,
        fresh_cosine=fresh_mean,
        fresh_cosine_se=fresh_se,
        fresh_cosine_predicted=cos_mean * float(torch.tensor(fresh_true_cos).mean()),
    )

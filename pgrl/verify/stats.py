"""Bias, variance and alignment of a gradient estimator from M independent batch estimates.

The unbiasedness check is a per-coordinate t-test with a Bonferroni correction: with
ĝ_1..ĝ_M the batch estimates, bias b̂ = mean(ĝ) − ∇J and standard error se_i = sd_i / √M,
the estimator passes when max_i |b̂_i / se_i| ≤ t_{1 − α/(2D), M − 1}, D being the number of
coordinates that vary. Under the null hypothesis (an unbiased estimator) the family-wise
false-alarm rate is at most α; with α = 10⁻³ a seeded test is far from the edge unless the
estimator is biased. Coordinates that never vary (states never visited) must match exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["BiasCheck", "EstimatorSummary", "bias_check", "summarize", "t_quantile"]


def t_quantile(p: float, dof: int) -> float:
    """The p-quantile of Student's t with ``dof`` degrees of freedom (Cornish-Fisher, ν ≥ 30).

    The normal quantile z is corrected by the first three terms of the Cornish-Fisher
    expansion (Abramowitz & Stegun 26.7.5); for ν ≥ 30 and 0.5 ≤ p ≤ 1 − 10⁻⁶ the tail
    probability at the returned point is off by less than 10⁻⁶ (checked by integrating the
    density).

    Example:
        >>> round(t_quantile(0.975, 100), 3)
        1.984
    """
    z = float(torch.special.ndtri(torch.tensor(p, dtype=torch.float64)))
    nu = float(dof)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / nu + g2 / nu**2 + g3 / nu**3


@dataclass(frozen=True)
class BiasCheck:
    """The Bonferroni t-test of "mean estimate = target", coordinate by coordinate."""

    bias: Tensor
    """mean(ĝ) − target, flattened ``(D,)``"""
    stderr: Tensor
    """standard error of each coordinate of the mean ``(D,)``"""
    max_abs_z: float
    """max_i |bias_i / stderr_i| (inf when a constant coordinate is off)"""
    threshold: float
    """t_{1 − α/(2D), M − 1}"""

    @property
    def unbiased(self) -> bool:
        """True when no coordinate is off by more than the threshold."""
        return self.max_abs_z <= self.threshold


def bias_check(estimates: Tensor, target: Tensor, alpha: float = 1e-3) -> BiasCheck:
    """Test whether the mean of the ``(M, ...)`` batch estimates equals ``target`` ``(...)``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(400, 3, generator=g, dtype=torch.float64)
        >>> bias_check(x, torch.zeros(3)).unbiased, bias_check(x + 0.5, torch.zeros(3)).unbiased
        (True, False)
    """
    flat = estimates.reshape(estimates.shape[0], -1).to(torch.float64)
    num = flat.shape[0]
    bias = flat.mean(0) - target.reshape(-1).to(torch.float64)
    stderr = flat.std(0) / math.sqrt(num)
    scale = 1e-12 * (1.0 + target.reshape(-1).abs())
    varies = stderr > scale
    z = torch.where(
        varies,
        bias.abs() / stderr.clamp_min(1e-300),
        torch.where(bias.abs() <= scale, 0.0, math.inf),
    )
    dims = max(int(varies.sum()), 1)
    threshold = t_quantile(1.0 - alpha / (2 * dims), num - 1)
    return BiasCheck(bias, stderr, float(z.max()), threshold)


@dataclass(frozen=True)
class EstimatorSummary:
    """Bias, variance and cosine of one estimator at one batch size n, from M batches.

    Bias figures are relative to ‖∇J‖. ``bias_along`` is the component of the bias along
    ∇J: +0.1 means the mean estimate is 10% longer than ∇J in its direction.
    """

    trajectories_per_batch: int
    num_batches: int
    bias_along: float
    """(mean ĝ − ∇J)·∇J / ‖∇J‖²"""
    bias_along_ci: float
    """half-width of the 95% confidence interval of ``bias_along``"""
    bias_norm: float
    """‖mean ĝ − ∇J‖ / ‖∇J‖"""
    noise_norm: float
    """√(tr Cov(ĝ) / M) / ‖∇J‖: the typical ``bias_norm`` of an unbiased estimator"""
    max_abs_z: float
    """Bonferroni t statistic of :func:`bias_check`"""
    z_threshold: float
    """its threshold"""
    variance: float
    """tr Cov(ĝ_b): the total variance of one batch estimate"""
    cosine: float
    """mean over batches of cos(ĝ_b, ∇J)"""

    @property
    def unbiased(self) -> bool:
        """The bias check passes."""
        return self.max_abs_z <= self.z_threshold


def summarize(estimates: Tensor, target: Tensor, trajectories_per_batch: int) -> EstimatorSummary:
    """Summarise ``(M, S, A)`` batch estimates of the gradient ``target`` ``(S, A)``."""
    flat = estimates.reshape(estimates.shape[0], -1).to(torch.float64)
    goal = target.reshape(-1).to(torch.float64)
    num = flat.shape[0]
    norm = float(goal.norm())
    check = bias_check(flat, goal)
    along = (flat - goal) @ goal / norm**2
    variance = float(flat.var(0).sum())
    cosine = torch.nn.functional.cosine_similarity(flat, goal.expand_as(flat), dim=1, eps=1e-300)
    return EstimatorSummary(
        trajectories_per_batch=trajectories_per_batch,
        num_batches=num,
        bias_along=float(along.mean()),
        bias_along_ci=t_quantile(0.975, num - 1) * float(along.std()) / math.sqrt(num),
        bias_norm=float(check.bias.norm()) / norm,
        noise_norm=math.sqrt(variance / num) / norm,
        max_abs_z=check.max_abs_z,
        z_threshold=check.threshold,
        variance=variance,
        cosine=float(cosine.mean()),
    )

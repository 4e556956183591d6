"""Statistics of K chunk gradients: signal, noise, SNR, noise scale, agreement.

Pure functions of tensors (no state, no environment), shared by the training callback
(:class:`pgrl.diagnostics.GradientDiagnostics`), the ladder (:func:`pgrl.diagnostics.ladder`)
and the calibration on finite MDPs (:mod:`pgrl.diagnostics.calibration`).

Notation. A batch of B samples is cut into K disjoint chunks of b = B/K samples; chunk k gives
the gradient estimate g_k (the same loss, its mean over chunk k). With ḡ = mean_k g_k (the
batch's gradient when the chunks are equal) and S = Σ_k ‖g_k − ḡ‖² / (K − 1) the trace of
the chunk covariance (unbiased):

    E‖ḡ‖² = ‖G‖² + S/K          so  ‖G‖²^ = ‖ḡ‖² − S/K  is unbiased for the true ‖G‖²
    SNR  = ‖G‖²^ / (S/K)        signal over noise of the *batch* gradient ḡ
    B_simple = b S / ‖G‖²^ = B / SNR

B_simple is McCandlish et al. (2018, arXiv 1812.06162, eq. 2.8 and appendix A)'s simple
noise scale tr(Σ)/‖G‖², with Σ the covariance of one sample's gradient estimated as b·S: the
batch size, in the units of the samples (transitions for a rollout, episodes for the ladder),
at which the noise of the gradient equals its signal. It assumes the samples of a chunk are
independent; steps of one episode are not, so on a rollout it is an *effective* noise scale.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "GradientStats",
    "chunk_masks",
    "completed_steps",
    "correlation",
    "gradient_stats",
    "paired_gain",
    "surrogate_correlation",
    "value_fit",
]


@dataclass(frozen=True)
class GradientStats:
    """The statistics of K chunk gradients of one batch (see the module docstring)."""

    chunks: int
    """K"""
    batch_size: float
    """B, samples in the batch (the chunks together)"""
    grad_norm: float
    """‖ḡ‖, the norm of the mean gradient"""
    cov_trace: float
    """S = tr Cov(g_k), the total variance of one chunk's gradient"""
    signal: float
    """‖G‖²^ = ‖ḡ‖² − S/K, unbiased for ‖E g‖² (may be negative when noise dominates)"""
    snr: float
    """‖G‖²^ / (S/K): signal-to-noise ratio of the batch gradient"""
    noise_scale: float
    """B_simple = b·S / ‖G‖²^ = B / SNR, in samples (negative when SNR < 0)"""
    pairwise_cosine: float
    """mean over pairs k ≠ l of cos(g_k, g_l)"""

    @property
    def per_sample_trace(self) -> float:
        """b·S, tr Σ of one sample's gradient (numerator of B_simple)."""
        return self.batch_size / self.chunks * self.cov_trace


def gradient_stats(grads: Tensor, batch_size: float) -> GradientStats:
    """Signal, noise, SNR, noise scale and pairwise cosine of ``(K, P)`` chunk gradients.

    SNR = (‖ḡ‖² − S/K) / (S/K) and B_simple = B / SNR, with S the unbiased trace of the
    chunks' covariance (McCandlish et al. 2018, appendix A).

    Args:
        grads: ``(K, P)`` one flat gradient per chunk, K >= 2.
        batch_size: B, the samples of all K chunks together.

    Example:
        >>> g = torch.tensor([[1.0, 0.0], [3.0, 0.0], [1.0, 2.0], [3.0, -2.0]])
        >>> s = gradient_stats(g, batch_size=8)
        >>> (s.grad_norm, s.cov_trace, s.signal, s.snr, s.noise_scale)
        (2.0, 4.0, 3.0, 3.0, 2.6666666666666665)
    """
    grads = grads.detach().to(torch.float64)
    k = grads.shape[0]
    if k < 2:
        raise ValueError(f"gradient_stats needs K >= 2 chunk gradients, got {k}")
    mean = grads.mean(0)
    # Σ_k ‖g_k − ḡ‖² / (K − 1); torch's var over dim 0 is ~20× slower at these shapes
    cov_trace = float((grads - mean).square().sum()) / (k - 1)
    mean_sq = float(mean.square().sum())
    noise = cov_trace / k
    signal = mean_sq - noise
    snr = signal / noise if noise > 0 else math.inf
    noise_scale = batch_size / snr if snr != 0 else math.inf
    unit = torch.nn.functional.normalize(grads, dim=1)
    gram = unit @ unit.T
    pairwise = float((gram.sum() - gram.diagonal().sum()) / (k * (k - 1)))
    return GradientStats(
        chunks=k,
        batch_size=float(batch_size),
        grad_norm=math.sqrt(mean_sq),
        cov_trace=cov_trace,
        signal=signal,
        snr=snr,
        noise_scale=noise_scale,
        pairwise_cosine=pairwise,
    )


def chunk_masks(mask: Tensor, chunks: int) -> tuple[Tensor, str]:
    """Split the rows of a batch into K disjoint chunks: ``(K, *mask.shape)`` 0/1 masks.

    * a rollout ``(T, N)`` with N >= K: K groups of environments (whole columns), nearly
      equal; each chunk's steps come from other environments, so the chunks are independent
      given the starting states;
    * a rollout with N < K: K contiguous blocks of time. Neighbouring blocks share episodes,
      so chunk gradients correlate positively: the chunk covariance, hence the noise and
      B_simple, are *under*-estimated and the SNR and the pairwise cosine over-estimated;
    * a replay batch ``(B,)``: K contiguous groups of rows (the rows are drawn independently).

    Each chunk mask is multiplied by ``mask`` (placeholders stay out).

    Returns:
        The masks and the axis split: ``"env"``, ``"time"`` or ``"row"``.

    Example:
        >>> masks, axis = chunk_masks(torch.ones(2, 4), 4)
        >>> axis, masks[1].tolist()
        ('env', [[0.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    """
    mask = mask.to(torch.float32)
    if mask.dim() == 1:
        axis, length = 0, mask.shape[0]
        name = "row"
    elif mask.shape[1] >= chunks:
        axis, length, name = 1, mask.shape[1], "env"
    else:
        axis, length, name = 0, mask.shape[0], "time"
    k = min(chunks, length)
    out = torch.zeros(k, *mask.shape, device=mask.device)
    for i, index in enumerate(torch.arange(length).tensor_split(k)):
        out[i].index_fill_(axis, index.to(mask.device), 1.0)
    return out * mask, name


def completed_steps(terminated: Tensor, truncated: Tensor, mask: Tensor) -> Tensor:
    """Steps whose episode terminates inside the rollout: their G_t is an exact Monte-Carlo
    return (no cut, no bootstrap). ``(T, N)`` bool.

    Example:
        >>> term = torch.tensor([[False], [True], [False]])
        >>> completed_steps(term, torch.zeros_like(term), torch.ones(3, 1)).squeeze(1).tolist()
        [True, True, False]
    """
    steps = terminated.shape[0]
    out = torch.zeros_like(terminated)
    following = torch.zeros_like(terminated[0])
    for t in range(steps - 1, -1, -1):
        following = terminated[t] | (following & ~truncated[t])
        out[t] = following
    return out & mask.bool()


def value_fit(value: Tensor, returns: Tensor) -> tuple[float, float]:
    """(explained variance, relative error) of predictions V(s_t) against returns G_t.

    EV = 1 − Var(G − V) / Var(G) (1: perfect, 0: no better than the mean, < 0: worse);
    relative error = ‖G − V‖ / ‖G‖ (root mean squares).

    Example:
        >>> value_fit(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 5.0]))
        (0.6923076923076923, 0.3651483716701107)
    """
    value, returns = value.detach().double().reshape(-1), returns.detach().double().reshape(-1)
    error = returns - value
    var = float(returns.var(unbiased=False))
    ev = 1.0 - float(error.var(unbiased=False)) / var if var > 0 else math.nan
    relative = float(error.norm() / returns.norm()) if float(returns.norm()) > 0 else math.nan
    return ev, relative


def paired_gain(after: Tensor, before: Tensor) -> tuple[float, float]:
    """The mean of paired differences d_i = after_i − before_i and its standard error.

    gain = mean_i d_i,  se = std(d) / √n  (std with n − 1)

    With common random numbers (pair i shares its start state and its random draws) the
    variance of d is that of the *change*, far below that of either side.

    Args:
        after: ``(n,)`` e.g. episode returns after an update, n >= 2.
        before: ``(n,)`` the same episodes' returns before it.

    Example:
        >>> gain, se = paired_gain(torch.tensor([3.0, 5.0, 4.0]), torch.tensor([2.0, 2.0, 2.0]))
        >>> gain, round(se, 4)  # d = 1, 3, 2: std 1, se 1/√3
        (2.0, 0.5774)
    """
    d = after.double() - before.double()
    n = d.numel()
    se = float(d.std(unbiased=True)) / math.sqrt(n) if n >= 2 else math.nan
    return float(d.mean()), se


def correlation(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's correlation of paired values; nan with fewer than 3 pairs or no spread.

    r = Σ (x_i − x̄)(y_i − ȳ) / √(Σ (x_i − x̄)² Σ (y_i − ȳ)²)

    Example:
        >>> correlation([1.0, 2.0, 3.0], [2.0, 4.0, 7.0]) > 0.99, correlation([1, 2, 3], [3, 2, 1])
        (True, -1.0)
    """
    if len(x) != len(y):
        raise ValueError(f"correlation: {len(x)} x values against {len(y)} y values")
    if len(x) < 3:
        return math.nan
    a = torch.tensor(x, dtype=torch.float64)
    b = torch.tensor(y, dtype=torch.float64)
    a, b = a - a.mean(), b - b.mean()
    scale = float((a.square().sum() * b.square().sum()).sqrt())
    # clamped: rounding can put a perfect correlation a hair beyond ±1
    return max(-1.0, min(1.0, float(a @ b) / scale)) if scale > 0 else math.nan


def surrogate_correlation(records: Sequence[Mapping[str, float]]) -> float:
    """The correlation, over a run, of PPO's surrogate gain with its measured return gain.

    Reads ``diag/surrogate_gain`` and ``diag/return_gain`` from the records of
    :class:`pgrl.diagnostics.GradientDiagnostics` (its ``records``, one per diagnosed update)
    that hold both, finite; nan with fewer than 3 such records.

    Example:
        >>> rows = [{"diag/surrogate_gain": g, "diag/return_gain": 2 * g} for g in (1.0, 2.0, 4.0)]
        >>> surrogate_correlation(rows + [{"diag/snr": 1.0}])
        1.0
    """
    pairs = [
        (r["diag/surrogate_gain"], r["diag/return_gain"])
        for r in records
        if "diag/surrogate_gain" in r
        and "diag/return_gain" in r
        and math.isfinite(r["diag/surrogate_gain"])
        and math.isfinite(r["diag/return_gain"])
    ]
    return correlation([p[0] for p in pairs], [p[1] for p in pairs])

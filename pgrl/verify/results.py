"""What ``pgrl verify`` measured: one row per estimator, the exact and DPG checks, the report.

Plain data classes, with the verdicts (:attr:`Row.ok`, :attr:`VerifyReport.failures`) and the
JSON form (:meth:`VerifyReport.to_dict`). :mod:`pgrl.verify.checks` fills them in,
:mod:`pgrl.verify.render` and :mod:`pgrl.verify.figures` present them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pgrl.verify.stats import EstimatorSummary

__all__ = ["DPGCheck", "ExactCheck", "Expectation", "Row", "VerifyReport"]

Expectation = Literal["unbiased", "biased"] | None
"""What a check should find for an estimator; None: nothing expected (reported only)."""


@dataclass(frozen=True)
class Row:
    """One estimator at one batch size, with its expectation and verdict."""

    name: str
    description: str
    expected: Expectation
    summary: EstimatorSummary
    relative_variance: float
    """variance over the variance of r(τ) REINFORCE at the same n (NaN when not comparable)"""
    predicted_bias_along: float | None = None
    """exact (E ĝ − ∇J)·∇J/‖∇J‖², when the estimator's expectation is known in closed form"""
    predicted_bias_norm: float | None = None
    """exact ‖E ĝ − ∇J‖/‖∇J‖, likewise"""
    predicted_cosine: float | None = None
    """exact cos(E ĝ, ∇J), likewise"""

    @property
    def verdict(self) -> str:
        """``unbiased`` or ``BIASED``, from the Bonferroni t-test."""
        return "unbiased" if self.summary.unbiased else "BIASED"

    @property
    def ok(self) -> bool:
        """The verdict matches the expectation (always true when nothing is expected)."""
        if self.expected is None:
            return True
        return (self.expected == "unbiased") == self.summary.unbiased


@dataclass(frozen=True)
class ExactCheck:
    """Agreement of the exact gradients, and the size of the sampling time limit's effect."""

    objective: float
    gradient_norm: float
    theorem_vs_autograd: float
    """max |PGT − autograd|"""
    theorem_vs_finite_differences: float
    """max |PGT − central differences|"""
    horizon: int
    horizon_gap: float
    """‖∇J_H − ∇J‖ / ‖∇J‖ for the sampling time limit H"""

    @property
    def ok(self) -> bool:
        """Both agreements within 1e-8 (differences: 1e-6)."""
        return self.theorem_vs_autograd < 1e-8 and self.theorem_vs_finite_differences < 1e-6


@dataclass(frozen=True)
class DPGCheck:
    """The deterministic policy gradient on a linear-quadratic system."""

    system: str
    gradient: list[list[float]]
    closed_form_vs_autograd: float
    """max |closed form − autograd through the Lyapunov solve|"""
    sigma_point_error: float
    """relative error of the DPG/actor-loss gradient on exact second-moment points, exact Q"""
    sampled: EstimatorSummary
    """DPG with exact Q on sampled states (bias check over batches)"""
    learned_relative_error: float
    """‖ĝ − ∇J‖/‖∇J‖ with the learned quadratic critic on exact second-moment points"""
    learned_cosine: float
    learned_sampled_relative_error: float
    """the same with sampled states (critic error plus state sampling noise)"""

    @property
    def ok(self) -> bool:
        """Exact pieces agree; sampled DPG unbiased; learned critic within 20% and cos > 0.98."""
        return (
            self.closed_form_vs_autograd < 1e-8
            and self.sigma_point_error < 1e-8
            and self.sampled.unbiased
            and self.learned_relative_error < 0.2
            and self.learned_cosine > 0.98
        )


@dataclass
class VerifyReport:
    """Everything :func:`pgrl.verify.report.run_verify` measured."""

    mdp: str
    seed: int
    gamma: float
    num_states: int
    num_actions: int
    quick: bool
    num_batches: int
    batch_sizes: list[int]
    exact: ExactCheck
    ladder: list[Row]
    """the ladder and the usual (no γ^t) estimators at the largest batch size"""
    curves: dict[str, list[EstimatorSummary]]
    """per estimator, one summary per batch size"""
    discount: list[Row]
    broken: list[Row]
    broken_horizon: int
    dpg: DPGCheck
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        """What did not come out as expected (empty when the report passes)."""
        out = [] if self.exact.ok else ["exact gradients disagree"]
        for section, rows in (("ladder", self.ladder), ("discount", self.discount),
                              ("broken", self.broken)):  # fmt: skip
            out += [
                f"{section}: {row.name} expected {row.expected}, found {row.verdict}"
                for row in rows
                if not row.ok
            ]
        if not self.dpg.ok:
            out.append("deterministic policy gradient check failed")
        return out

    @property
    def passed(self) -> bool:
        """Every expectation held."""
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (non-finite numbers become null)."""
        data = asdict(self)
        data["passed"] = self.passed
        data["failures"] = self.failures
        for key in ("ladder", "discount", "broken"):
            for row, raw in zip(getattr(self, key), data[key], strict=True):
                raw["verdict"] = row.verdict
                raw["ok"] = row.ok
        return _finite(data)


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no NaN or inf)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value

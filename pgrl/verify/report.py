"""``pgrl verify``: every estimator against the exact policy gradient: table, figure, report.

:func:`run_verify` runs five checks and collects them in a :class:`VerifyReport`:

1. exact gradients: the policy gradient theorem, autograd through the Bellman solve and
   finite differences of J agree;
2. the estimator ladder: r(τ), reward-to-go, baselines, actor-critic and GAE, each built from
   pgrl's own losses on sampled episodes, at several numbers of trajectories per batch;
3. the discount: the γ^t-weighted estimator against the usual one (pgrl's default), on the
   discounted MDP, on its γ = 1 version and on the "γ as termination" construction;
4. estimators broken on purpose, which the same test must flag;
5. the deterministic policy gradient on a linear-quadratic system.

Every row says what it expects (unbiased or biased); the report passes when every
expectation holds, and ``main`` then returns 0.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from pgrl.verify import exact, lqr
from pgrl.verify.estimators import (
    Estimator,
    action_dependent_baseline,
    actor_critic,
    gae_estimator,
    reward_to_go,
    sample_estimates,
    total_return,
    with_terminated_dropped,
    with_termination_as_truncation,
    with_truncation_as_termination,
    wrong_sign,
)
from pgrl.verify.mdp import (
    MDP_NAMES,
    FiniteMDP,
    discount_as_termination,
    make_mdp,
    random_policy,
    undiscounted,
)
from pgrl.verify.stats import EstimatorSummary, summarize

__all__ = ["DPGCheck", "ExactCheck", "Row", "VerifyReport", "main", "run_verify"]

Expectation = Literal["unbiased", "biased"] | None


@dataclass(frozen=True)
class Spec:
    """An estimator of the ladder: its pgrl loss and what the check should find."""

    name: str
    description: str
    estimator: Estimator
    expected: Expectation


def ladder_specs() -> list[Spec]:
    """The article's ladder, every weight γ^t-weighted (the exact discounted gradient)."""
    return [
        Spec("r(τ)", "whole-trajectory return, REINFORCE", total_return(), "unbiased"),
        Spec("G_t", "reward-to-go (×γ^t)", reward_to_go(), "unbiased"),
        Spec("G_t − b", "constant baseline: mean return of a separate batch",
             reward_to_go("constant"), "unbiased"),
        Spec("G_t − mean(G)", "pgrl baseline='mean': the same batch's mean return",
             reward_to_go("batch_mean"), None),
        Spec("G_t − V̂(s)", "learned tabular V (MC regression, separate batch)",
             reward_to_go("fitted"), "unbiased"),
        Spec("G_t − V(s)", "exact V^π baseline", reward_to_go("exact"), "unbiased"),
        Spec("AC V̂", "one-step actor-critic, learned V (TD(0), separate batch)",
             actor_critic("fitted"), None),
        Spec("AC V", "one-step actor-critic r + γV(s') − V(s), exact V",
             actor_critic("exact"), "unbiased"),
        Spec("AC const V̂", "one-step actor-critic, a constant critic (cannot represent V)",
             actor_critic("constant"), "biased"),
        Spec("AC V, 5-step", "A2C n-step target (n_step=5), exact V",
             actor_critic("exact", n_step=5), "unbiased"),
        *[
            Spec(f"GAE λ={lam:g}", f"GAE(γ, λ={lam:g}) advantage, exact V",
                 gae_estimator(lam), "unbiased")
            for lam in (0.0, 0.5, 0.95, 1.0)
        ],
    ]  # fmt: skip


def usual_specs() -> list[Spec]:
    """pgrl's default training losses: no γ^t (biased for the discounted objective if γ < 1)."""
    return [
        Spec("G_t, no γ^t", "usual REINFORCE (pgrl default, discount_weighting=False)",
             reward_to_go(discount_weighting=False), "biased"),
        Spec("AC V, no γ^t", "usual A2C advantage (pgrl default), exact V",
             actor_critic(discount_weighting=False), "biased"),
    ]  # fmt: skip


def leak_specs() -> list[Spec]:
    """Deliberate bugs checked on the ladder's episodes (every episode ends by termination)."""
    return [
        Spec("wrong sign", "G_t − V(s) with the loss negated", wrong_sign(reward_to_go("exact")),
             "biased"),
        Spec("b(s, a) = r(s, a)", "a baseline that depends on the action",
             action_dependent_baseline(), "biased"),
        Spec("G_t − V(s), terminated dropped", "returns leak into the next episode",
             with_terminated_dropped(reward_to_go("exact")), "biased"),
        Spec("GAE λ=0.95, terminated dropped", "advantages leak into the next episode",
             with_terminated_dropped(gae_estimator(0.95)), "biased"),
        Spec("AC V, terminated as truncated", "bootstraps V(s') from a terminal state",
             with_termination_as_truncation(actor_critic("exact")), "biased"),
    ]  # fmt: skip


def cut_specs() -> list[Spec]:
    """Episodes cut by a short time limit: the correct bootstrap, and the bug that drops it."""
    return [
        Spec("G_t − V(s), cut", "correct: bootstraps V(s') at the time limit",
             reward_to_go("exact"), "unbiased"),
        Spec("AC V, cut", "correct: A2C one-step advantage", actor_critic("exact"), "unbiased"),
        Spec("G_t − V(s), truncated as terminated", "no bootstrap at the time limit",
             with_truncation_as_termination(reward_to_go("exact")), "biased"),
        Spec("AC V, truncated as terminated", "A2C target without the bootstrap at a cut",
             with_truncation_as_termination(actor_critic("exact")), "biased"),
    ]  # fmt: skip


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
    """Everything :func:`run_verify` measured."""

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

    def table(self) -> str:
        """The ladder as a fixed-width text table."""
        return _text_table(self.ladder)

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

    def markdown(self, figure: str | None = None) -> str:
        """The report as markdown."""
        return _markdown(self, figure)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _rows(
    specs: Sequence[Spec],
    estimates: Mapping[str, Tensor],
    target: Tensor,
    n: int,
    reference_variance: float = math.nan,
    predicted: Tensor | None = None,
) -> list[Row]:
    """Summarise each spec's ``(M, S, A)`` estimates against ``target``."""
    along = norm = cosine = None
    if predicted is not None:
        goal, mean = target.reshape(-1), predicted.reshape(-1)
        along = float((mean - goal) @ goal / goal.norm() ** 2)
        norm = float((mean - goal).norm() / goal.norm())
        cosine = float(torch.nn.functional.cosine_similarity(mean, goal, dim=0))
    rows = []
    for spec in specs:
        summary = summarize(estimates[spec.name], target, n)
        rows.append(
            Row(
                spec.name,
                spec.description,
                spec.expected,
                summary,
                summary.variance / reference_variance,
                along if spec.expected == "biased" else None,
                norm if spec.expected == "biased" else None,
                cosine if spec.expected == "biased" else None,
            )
        )
    return rows


def _estimate(
    mdp: FiniteMDP,
    theta: Tensor,
    specs: Sequence[Spec],
    *,
    num_batches: int,
    n: int,
    generator: torch.Generator,
    horizon: int | None = None,
) -> dict[str, Tensor]:
    return sample_estimates(
        mdp,
        theta,
        {spec.name: spec.estimator for spec in specs},
        num_batches=num_batches,
        trajectories_per_batch=n,
        generator=generator,
        horizon=horizon,
    )


def _exact_check(mdp: FiniteMDP, theta: Tensor) -> ExactCheck:
    theorem = exact.policy_gradient_theorem(mdp, theta)
    horizon_gradient = exact.finite_horizon_gradient(mdp, theta, mdp.horizon)
    return ExactCheck(
        objective=float(exact.objective(mdp, theta)),
        gradient_norm=float(theorem.norm()),
        theorem_vs_autograd=float((theorem - exact.autograd_gradient(mdp, theta)).abs().max()),
        theorem_vs_finite_differences=float(
            (theorem - exact.finite_difference_gradient(mdp, theta)).abs().max()
        ),
        horizon=mdp.horizon,
        horizon_gap=float((horizon_gradient - theorem).norm() / theorem.norm()),
    )


def _dpg_check(quick: bool, generator: torch.Generator) -> DPGCheck:
    system = lqr.double_integrator()
    gradient = lqr.exact_gradient(system)
    norm = float(gradient.norm())
    second_moment = lqr.state_second_moment(system)
    points = torch.linalg.cholesky(second_moment).T  # Σ_i x_i x_iᵀ = Σ_K
    ones = torch.ones(points.shape[0], dtype=torch.float64)
    sigma_point = lqr.dpg_estimate(system, points, discount_weights=ones, trajectories=1)

    batches, per_batch, horizon = (100, 20, 100) if quick else (200, 50, 150)
    states, *_ = lqr.sample_states(system, batches * per_batch, horizon, generator)
    per_batch_estimates = torch.stack(
        [
            lqr.dpg_estimate(system, chunk)
            for chunk in states.split(per_batch, dim=1)  # (H, per_batch, n) each
        ]
    )
    critic = lqr.fit_quadratic_critic(system, generator)
    learned = lqr.dpg_estimate(system, points, critic, discount_weights=ones, trajectories=1)
    learned_sampled = lqr.dpg_estimate(system, states, critic)
    return DPGCheck(
        system=system.name,
        gradient=gradient.tolist(),
        closed_form_vs_autograd=float((gradient - lqr.exact_gradient_autograd(system)).abs().max()),
        sigma_point_error=float((sigma_point - gradient).norm()) / norm,
        sampled=summarize(per_batch_estimates, gradient, per_batch),
        learned_relative_error=float((learned - gradient).norm()) / norm,
        learned_cosine=float(
            torch.nn.functional.cosine_similarity(learned.reshape(-1), gradient.reshape(-1), dim=0)
        ),
        learned_sampled_relative_error=float((learned_sampled - gradient).norm()) / norm,
    )


CUT_HORIZON = 2
"""Time limit of the truncation checks: short, so that most episodes are cut."""


def _ladder(
    problem: FiniteMDP,
    theta: Tensor,
    sizes: Sequence[int],
    num_batches: int,
    generator: torch.Generator,
) -> tuple[list[Row], dict[str, list[EstimatorSummary]], list[Row]]:
    """The ladder, the usual estimators and the leak bugs at every batch size n.

    Returns the rows at the largest n, the curves (one summary per n) and the bug rows.
    """
    target = exact.policy_gradient_theorem(problem, theta)
    usual_expectation = exact.policy_gradient_theorem(
        problem, theta, exact.visitation(problem, theta, discount_weighting=False)
    )
    ladder, usual, leaks = ladder_specs(), usual_specs(), leak_specs()
    curves: dict[str, list[EstimatorSummary]] = {spec.name: [] for spec in ladder + usual}
    rows: list[Row] = []
    bugs: list[Row] = []
    for n in sizes:
        specs = ladder + usual + (leaks if n == sizes[-1] else [])
        estimates = _estimate(
            problem, theta, specs, num_batches=num_batches, n=n, generator=generator
        )
        for spec in ladder + usual:
            curves[spec.name].append(summarize(estimates[spec.name], target, n))
        if n == sizes[-1]:
            reference = curves["r(τ)"][-1].variance
            rows = _rows(ladder, estimates, target, n, reference)
            rows += _rows(usual, estimates, target, n, reference, usual_expectation)
            bugs = _rows(leaks, estimates, target, n, reference)
    return rows, curves, bugs


def _discount(
    problem: FiniteMDP,
    theta: Tensor,
    ladder_rows: Sequence[Row],
    n: int,
    num_batches: int,
    generator: torch.Generator,
) -> list[Row]:
    """The γ^t-weighted and the usual estimator, on γ < 1, on γ = 1 and on γ as termination."""
    by_name = {row.name: row for row in ladder_rows}
    rows = [
        replace(by_name[name], name=f"{name} (γ={problem.gamma:g})")
        for name in ("G_t", "G_t, no γ^t", "AC V, no γ^t")
    ]
    reference = by_name["r(τ)"].summary.variance
    # (a) the same episodic MDP with γ = 1: γ^t ≡ 1, both estimators are the same and unbiased
    plain = undiscounted(problem)
    plain_specs = [
        Spec("G_t (γ=1)", "undiscounted episodic MDP: γ^t ≡ 1, usual = exact",
             reward_to_go(discount_weighting=False), "unbiased"),
    ]  # fmt: skip
    estimates = _estimate(
        plain, theta, plain_specs, num_batches=num_batches, n=n, generator=generator
    )
    rows += _rows(plain_specs, estimates, exact.policy_gradient_theorem(plain, theta), n)
    # (b) γ as a termination probability: γ = 1 returns, no γ^t, unbiased for the discounted ∇J
    ended = discount_as_termination(problem)
    theta_ended = torch.cat([theta, torch.zeros(1, problem.num_actions, dtype=torch.float64)])
    ended_specs = [
        Spec("G_t, γ as termination", "ends w.p. 1−γ per step, γ=1 returns, no γ^t",
             reward_to_go(discount_weighting=False), "unbiased"),
        Spec("AC V, γ as termination", "the same with the one-step advantage",
             actor_critic(discount_weighting=False), "unbiased"),
    ]  # fmt: skip
    estimates = _estimate(
        ended, theta_ended, ended_specs, num_batches=num_batches, n=n, generator=generator
    )
    original = {name: value[:, : problem.num_states] for name, value in estimates.items()}
    target = exact.policy_gradient_theorem(problem, theta)
    rows += _rows(ended_specs, original, target, n, reference)
    return rows


def _cuts(
    problem: FiniteMDP, theta: Tensor, n: int, num_batches: int, generator: torch.Generator
) -> list[Row]:
    """Bootstrapping at a time limit, done right and done wrong, with H = :data:`CUT_HORIZON`.

    The target is the exact expectation of a correct estimator on cut episodes,
    Σ_{t<H} γ^t E[A^π(s_t, a_t) ∇log π(a_t|s_t)].
    """
    specs = cut_specs()
    visits = exact.visitation(problem, theta, horizon=CUT_HORIZON)
    target = exact.policy_gradient_theorem(problem, theta, visits)
    estimates = _estimate(
        problem, theta, specs, num_batches=num_batches, n=n, generator=generator,
        horizon=CUT_HORIZON,
    )  # fmt: skip
    return _rows(specs, estimates, target, n)


def run_verify(
    mdp: str | None = None, seed: int = 0, out: Path | None = None, quick: bool = False
) -> VerifyReport:
    """Check every estimator against the exact policy gradient; print the table.

    Args:
        mdp: an MDP name from :data:`pgrl.verify.mdp.MDP_NAMES`; None is the random MDP
            drawn from ``seed``.
        seed: seeds the random MDP, the policy θ where gradients are checked, and sampling.
        out: directory for ``report.md``, ``report.json`` and ``verify.png`` (None: no files).
        quick: fewer batches and batch sizes (a smoke run, about a second).

    Raises:
        ConfigError: ``mdp`` is not a known name.
    """
    started = time.perf_counter()
    problem = make_mdp(mdp, seed)  # raises ConfigError for an unknown name
    theta = random_policy(problem, seed)
    generator = torch.Generator().manual_seed(seed)
    num_batches = 200 if quick else 500
    sizes = [8, 128] if quick else [2, 8, 32, 128]
    rows, curves, bugs = _ladder(problem, theta, sizes, num_batches, generator)
    discount = _discount(problem, theta, rows, sizes[-1], num_batches, generator)
    # cut episodes are at most CUT_HORIZON steps long: twice the data costs little
    broken = bugs + _cuts(problem, theta, 2 * sizes[-1], 2 * num_batches, generator)
    report = VerifyReport(
        mdp=problem.name,
        seed=seed,
        gamma=problem.gamma,
        num_states=problem.num_states,
        num_actions=problem.num_actions,
        quick=quick,
        num_batches=num_batches,
        batch_sizes=list(sizes),
        exact=_exact_check(problem, theta),
        ladder=rows,
        curves=curves,
        discount=discount,
        broken=broken,
        broken_horizon=CUT_HORIZON,
        dpg=_dpg_check(quick, generator),
    )
    report.seconds = time.perf_counter() - started
    print(_console(report))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        figure = out / "verify.png"
        _figure(report, figure)
        (out / "report.md").write_text(report.markdown(figure.name), encoding="utf-8")
        report.files = [str(figure), str(out / "report.md"), str(out / "report.json")]
        (out / "report.json").write_text(
            json.dumps(report.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8"
        )
        print(f"wrote {', '.join(report.files)}")
    return report


def _fmt_z(summary: EstimatorSummary) -> str:
    return "inf" if not math.isfinite(summary.max_abs_z) else f"{summary.max_abs_z:.1f}"


def _fmt_ratio(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{value:.3f}"


def _text_table(rows: Sequence[Row]) -> str:
    width = max(len("estimator"), *(len(row.name) for row in rows))
    header = (
        f"{'estimator':<{width}} {'bias ∥∇J (%) ± 95% CI':>22} {'max|z|':>7} {'verdict':>9} "
        f"{'variance':>10} {'rel.var':>8} {'cosine':>7}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        s = row.summary
        lines.append(
            f"{row.name:<{width}} {100 * s.bias_along:>+11.2f} ± {100 * s.bias_along_ci:<8.2f} "
            f"{_fmt_z(s):>7} {row.verdict:>9} {s.variance:>10.4g} "
            f"{_fmt_ratio(row.relative_variance):>8} {s.cosine:>7.3f}"
            + ("" if row.ok else f"   <-- expected {row.expected}")
        )
    return "\n".join(lines)


def _console(report: VerifyReport) -> str:
    e = report.exact
    n_ref = report.batch_sizes[-1]
    threshold = report.ladder[0].summary.z_threshold
    parts = [
        f"pgrl verify: MDP {report.mdp!r} (S={report.num_states}, A={report.num_actions}, "
        f"γ={report.gamma:g}), seed {report.seed}, {report.num_batches} batches per size",
        f"exact ∇J: ‖∇J‖ = {e.gradient_norm:.4g}; PGT vs autograd {e.theorem_vs_autograd:.1e}, "
        f"vs finite differences {e.theorem_vs_finite_differences:.1e}; "
        f"time limit H={e.horizon} changes ∇J by {e.horizon_gap:.1e} (relative)",
        "",
        f"estimators, n = {n_ref} trajectories per batch "
        f"(unbiased when max|z| ≤ {threshold:.2f}, Bonferroni α = 1e-3)",
        _text_table(report.ladder),
        "",
        "the discount",
        _text_table(report.discount),
        "",
        f"broken on purpose (the last {len(cut_specs())} rows: time limit H = "
        f"{report.broken_horizon}, n = {2 * n_ref}, {2 * report.num_batches} batches)",
        _text_table(report.broken),
        "",
        _dpg_lines(report.dpg),
        "",
        ("PASSED" if report.passed else "FAILED: " + "; ".join(report.failures))
        + f" in {report.seconds:.1f} s",
    ]
    return "\n".join(parts)


def _dpg_lines(dpg: DPGCheck) -> str:
    s = dpg.sampled
    gradient = ", ".join(
        f"{value:.4f}" for value in torch.tensor(dpg.gradient).reshape(-1).tolist()
    )
    return (
        f"deterministic policy gradient ({dpg.system}): ∇_K J = [{gradient}]; closed form vs "
        f"autograd {dpg.closed_form_vs_autograd:.1e}; DDPG actor loss with exact Q on exact "
        f"second-moment points: relative error {dpg.sigma_point_error:.1e}\n"
        f"  sampled states, exact Q: bias ∥∇J {100 * s.bias_along:+.2f} ± "
        f"{100 * s.bias_along_ci:.2f} %, max|z| {_fmt_z(s)} "
        f"({'unbiased' if s.unbiased else 'BIASED'}), cosine {s.cosine:.4f} "
        f"({s.trajectories_per_batch} trajectories per batch)\n"
        f"  learned quadratic critic: relative error {dpg.learned_relative_error:.3f}, "
        f"cosine {dpg.learned_cosine:.4f} (with sampled states: relative error "
        f"{dpg.learned_sampled_relative_error:.3f})"
    )


def _md_table(rows: Sequence[Row], predicted: bool = False) -> str:
    head = (
        "| estimator | what | bias ∥∇J (%) ± 95% CI | ‖bias‖/‖∇J‖ (noise) | max\\|z\\| | "
        "verdict | variance | rel. variance | cosine |"
    )
    sep = "|---|---|---|---|---|---|---|---|---|"
    if predicted:
        head += " exact bias ∥∇J (%) | exact ‖bias‖/‖∇J‖ |"
        sep += "---|---|"
    lines = [head, sep]
    for row in rows:
        s = row.summary
        verdict = row.verdict if row.ok else f"**{row.verdict}** (expected {row.expected})"
        line = (
            f"| {row.name} | {row.description} | {100 * s.bias_along:+.2f} ± "
            f"{100 * s.bias_along_ci:.2f} | {s.bias_norm:.4f} ({s.noise_norm:.4f}) | {_fmt_z(s)} | "
            f"{verdict} | {s.variance:.4g} | {_fmt_ratio(row.relative_variance)} | "
            f"{s.cosine:.3f} |"
        )
        if predicted:
            along, norm = row.predicted_bias_along, row.predicted_bias_norm
            line += " " + ("" if along is None else f"{100 * along:+.2f}") + " |"
            line += " " + ("" if norm is None else f"{norm:.4f}") + " |"
        lines.append(line)
    return "\n".join(lines)


def _markdown(report: VerifyReport, figure: str | None) -> str:
    e = report.exact
    n_ref = report.batch_sizes[-1]
    threshold = report.ladder[0].summary.z_threshold
    command = "pgrl verify" + (f" --mdp {report.mdp}" if report.mdp != "random" else "")
    command += f" --seed {report.seed}" + (" --quick" if report.quick else "")
    curve_head = "| estimator | " + " | ".join(f"n={n}" for n in report.batch_sizes) + " |"
    curve_sep = "|---|" + "---|" * len(report.batch_sizes)
    variance_lines = [curve_head, curve_sep]
    bias_lines = [curve_head, curve_sep]
    for name, summaries in report.curves.items():
        variance_lines.append(
            f"| {name} | " + " | ".join(f"{s.variance:.4g}" for s in summaries) + " |"
        )
        bias_lines.append(
            f"| {name} | "
            + " | ".join(
                f"{s.bias_norm:.3f} ({s.noise_norm:.3f}){'' if s.unbiased else ' ✗'}"
                for s in summaries
            )
            + " |"
        )
    parts = [
        f"# pgrl verify: MDP `{report.mdp}`, seed {report.seed}",
        "",
        f"Command: `{command}` ({'PASSED' if report.passed else 'FAILED'}, "
        f"{report.seconds:.1f} s). S = {report.num_states}, A = {report.num_actions}, "
        f"γ = {report.gamma:g}; {report.num_batches} independent batches per batch size.",
        "",
        "## Exact gradient",
        "",
        f"J(θ) = {e.objective:.6f}, ‖∇J‖ = {e.gradient_norm:.6f}. Policy gradient theorem vs "
        f"autograd through the Bellman solve: max difference {e.theorem_vs_autograd:.1e}; vs "
        f"central finite differences: {e.theorem_vs_finite_differences:.1e}. Episodes are "
        f"sampled with a time limit H = {e.horizon}; the gradient of the time-limited "
        f"objective differs from ∇J by {e.horizon_gap:.1e} (relative), far below the "
        "sampling noise.",
        "",
        f"## Estimators (n = {n_ref} trajectories per batch)",
        "",
        f"Bias is mean(ĝ) − ∇J. `bias ∥∇J` is its component along ∇J as a percentage of "
        f"‖∇J‖; `noise` is the ‖bias‖ an unbiased estimator shows by chance (√(tr Σ/M)). "
        f"An estimator counts as unbiased when every coordinate's t statistic is below "
        f"{threshold:.2f} (Bonferroni, family-wise α = 10⁻³). Variance is tr Cov(ĝ) of one "
        "batch estimate; `rel. variance` is relative to r(τ) REINFORCE. Every estimator except "
        "r(τ) and the rows marked `no γ^t` multiplies its weight by γ^t.",
        "",
        _md_table(report.ladder, predicted=True),
        "",
        "### Variance against batch size",
        "",
        *variance_lines,
        "",
        "### ‖bias‖/‖∇J‖ against batch size (noise level in brackets, ✗ = flagged biased)",
        "",
        *bias_lines,
        "",
    ]
    if figure is not None:
        parts += [f"![variance, bias and cosine against batch size]({figure})", ""]
    parts += [
        "## The discount",
        "",
        _md_table(report.discount, predicted=True),
        "",
        "## Broken on purpose",
        "",
        f"The first rows use the ladder's episodes (n = {n_ref}, target ∇J). The last "
        f"{len(cut_specs())} cut every episode at the time limit H = {report.broken_horizon} "
        f"(n = {2 * n_ref}, {2 * report.num_batches} batches); their target is "
        "the exact expectation of a correct estimator that bootstraps V(s') at the cut, "
        "Σ_{t<H} γ^t E[A^π(s_t, a_t) ∇log π(a_t|s_t)].",
        "",
        _md_table(report.broken),
        "",
        "## Deterministic policy gradient",
        "",
        _dpg_lines(report.dpg).replace("\n  ", "\n\n"),
        "",
    ]
    if not report.passed:
        parts += ["## Failures", "", *[f"- {item}" for item in report.failures], ""]
    return "\n".join(parts)


def _figure(report: VerifyReport, path: Path) -> None:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(16, 4.8))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    cmap = matplotlib.colormaps["tab20"]
    order = [*range(0, 20, 2), *range(1, 20, 2)]  # ten distinct hues first, then light ones
    colors = [cmap(order[i % 20]) for i in range(len(report.curves))]
    markers = "osD^v<>pP*Xhd"
    sizes = report.batch_sizes
    for index, (name, summaries) in enumerate(report.curves.items()):
        style = "--" if "no γ^t" in name else "-"
        kwargs = {
            "color": colors[index],
            "marker": markers[index % len(markers)],
            "linestyle": style,
            "label": name,
            "markersize": 4,
        }
        axes[0].plot(sizes, [s.variance for s in summaries], **kwargs)
        axes[1].plot(sizes, [s.bias_norm for s in summaries], **kwargs)
        axes[2].plot(sizes, [s.cosine for s in summaries], **kwargs)
    noise = [s.noise_norm for s in report.curves["r(τ)"]]
    axes[1].plot(sizes, noise, color="black", linestyle=":", label="noise level of r(τ)")
    titles = (
        "variance tr Cov(ĝ) of one batch estimate",
        "‖mean ĝ − ∇J‖ / ‖∇J‖ (over batches)",
        "mean cos(ĝ, ∇J)",
    )
    for ax, title in zip(axes, titles, strict=True):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("trajectories per batch n")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_yscale("log")
    axes[1].set_yscale("log")
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8, frameon=False)
    fig.suptitle(
        f"pgrl verify: MDP '{report.mdp}', seed {report.seed}, γ={report.gamma:g}, "
        f"{report.num_batches} batches per n; dashed: pgrl's default (no γ^t)",
        fontsize=11,
    )
    fig.tight_layout(rect=(0.0, 0.0, 0.875, 1.0))
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    """``pgrl verify [--mdp NAME | --seed S] [--out DIR] [--quick]``; 0 when every check passes.

    Raises:
        ConfigError: an unknown ``--mdp`` name.
    """
    parser = argparse.ArgumentParser(
        prog="pgrl verify",
        description="Check every policy-gradient estimator of pgrl against the exact gradient "
        "of a finite MDP (and DDPG's actor loss against a linear-quadratic system).",
    )
    parser.add_argument(
        "--mdp",
        default=None,
        metavar="NAME",
        help=f"the MDP: {', '.join(MDP_NAMES)} (default: random, drawn from --seed)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seeds the MDP, the policy and sampling"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="write report.md, report.json, verify.png here"
    )
    parser.add_argument("--quick", action="store_true", help="fewer samples: a smoke run")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # tensors are small: extra threads cost more than they give
    report = run_verify(args.mdp, args.seed, args.out, args.quick)
    return 0 if report.passed else 1

"""The checks of ``pgrl verify``: sample the estimators, compare them with exact gradients.

* :func:`exact_check`: the policy gradient theorem against autograd and finite differences;
* :func:`ladder_rows`: the ladder, the usual (no γ^t) estimators and the leak bugs, at every
  batch size;
* :func:`discount_rows`: the discount, on γ < 1, on γ = 1 and on "γ as termination";
* :func:`cut_rows`: bootstrapping at a time limit, done right and done wrong;
* :func:`dpg_check`: the deterministic policy gradient on a linear-quadratic system.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

import torch
from torch import Tensor

from pgrl.verify import exact, lqr
from pgrl.verify.estimators import actor_critic, reward_to_go, sample_estimates
from pgrl.verify.mdp import FiniteMDP, discount_as_termination, undiscounted
from pgrl.verify.results import DPGCheck, ExactCheck, Row
from pgrl.verify.specs import Spec, cut_specs, ladder_specs, leak_specs, usual_specs
from pgrl.verify.stats import EstimatorSummary, summarize

__all__ = ["CUT_HORIZON", "cut_rows", "discount_rows", "dpg_check", "exact_check", "ladder_rows"]

CUT_HORIZON = 2
"""Time limit of the truncation checks: short, so that most episodes are cut."""


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
    """Each spec's ``(M, S, A)`` batch estimates, all from the same sampled episodes."""
    return sample_estimates(
        mdp,
        theta,
        {spec.name: spec.estimator for spec in specs},
        num_batches=num_batches,
        trajectories_per_batch=n,
        generator=generator,
        horizon=horizon,
    )


def exact_check(mdp: FiniteMDP, theta: Tensor) -> ExactCheck:
    """PGT against autograd and finite differences, and the sampling time limit's effect on ∇J."""
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


def dpg_check(quick: bool, generator: torch.Generator) -> DPGCheck:
    """DDPG's actor gradient on the double integrator: exact Q, sampled states, learned critic."""
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


def ladder_rows(
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


def discount_rows(
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


def cut_rows(
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

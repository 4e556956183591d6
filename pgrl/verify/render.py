"""The ``pgrl verify`` report as text: the console summary and ``report.md``."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from pgrl.verify.results import DPGCheck, Row, VerifyReport
from pgrl.verify.specs import cut_specs
from pgrl.verify.stats import EstimatorSummary

__all__ = ["console", "markdown"]


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


def console(report: VerifyReport) -> str:
    """The summary ``pgrl verify`` prints: the exact check, the three tables, DPG, the verdict."""
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


def markdown(report: VerifyReport, figure: str | None) -> str:
    """``report.md``; ``figure`` is the figure's path relative to it (None: no figure)."""
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

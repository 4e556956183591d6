"""The policy-gradient math of pgrl against exact gradients (pgrl.verify).

Every statistical test uses fixed seeds and the Bonferroni t-test of
:func:`pgrl.verify.stats.bias_check` at family-wise α = 10⁻³, so an unbiased estimator
fails it with probability below 10⁻³ for a fresh seed, and a seeded run is deterministic.
The broken estimators below show that the same test does fail when the math is wrong.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import pytest
import torch
from torch import Tensor

from pgrl.errors import ConfigError
from pgrl.losses import value_loss
from pgrl.returns import discounted_returns
from pgrl.verify import exact, lqr
from pgrl.verify.estimators import (
    Estimator,
    action_dependent_baseline,
    actor_critic,
    fit_critics,
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
    FiniteMDP,
    chain_mdp,
    discount_as_termination,
    gridworld_mdp,
    make_mdp,
    random_mdp,
    random_policy,
    undiscounted,
)
from pgrl.verify.report import main, run_verify
from pgrl.verify.rollouts import sample_episodes
from pgrl.verify.stats import bias_check, t_quantile

torch.set_num_threads(1)

RANDOM_SEEDS = (0, 1, 2)


def _estimates(
    mdp: FiniteMDP,
    theta: Tensor,
    estimators: Mapping[str, Estimator],
    seed: int,
    *,
    num_batches: int = 200,
    n: int = 16,
    horizon: int | None = None,
) -> dict[str, Tensor]:
    generator = torch.Generator().manual_seed(1000 + seed)
    return sample_estimates(
        mdp,
        theta,
        estimators,
        num_batches=num_batches,
        trajectories_per_batch=n,
        generator=generator,
        horizon=horizon,
    )


def _variance(estimates: Tensor) -> float:
    """tr Cov of the batch estimates."""
    return float(estimates.reshape(estimates.shape[0], -1).var(0).sum())


# --- exact gradients ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "mdp",
    [
        *[random_mdp(seed=s) for s in RANDOM_SEEDS],
        random_mdp(4, 2, seed=3, terminal_prob=None, gamma=0.8),
        undiscounted(random_mdp(seed=4)),
        chain_mdp(),
        gridworld_mdp(),
    ],
    ids=lambda m: m.name,
)
def test_policy_gradient_theorem_equals_autograd_and_finite_differences(mdp: FiniteMDP) -> None:
    theta = random_policy(mdp, seed=5)
    theorem = exact.policy_gradient_theorem(mdp, theta)
    torch.testing.assert_close(theorem, exact.autograd_gradient(mdp, theta), rtol=0, atol=1e-10)
    torch.testing.assert_close(
        theorem, exact.finite_difference_gradient(mdp, theta), rtol=0, atol=1e-8
    )
    assert theorem.norm() > 1e-3  # not trivially zero


def test_bellman_solution_satisfies_bellman_equation_and_visitation_sums_to_horizon() -> None:
    mdp = random_mdp(seed=0)
    theta = random_policy(mdp, 0)
    pi = exact.policy(theta)
    values, q = exact.state_values(mdp, theta), exact.action_values(mdp, theta)
    torch.testing.assert_close(values, (pi * q).sum(-1))
    # Σ_s d^π(s) = Σ_t γ^t Pr(alive at t); for a continuing MDP that is 1 / (1 − γ)
    continuing = random_mdp(seed=0, terminal_prob=None, gamma=0.8)
    total = exact.visitation(continuing, random_policy(continuing, 0)).sum()
    torch.testing.assert_close(total, torch.tensor(5.0, dtype=torch.float64))


def test_finite_horizon_gradient_converges_to_exact_gradient() -> None:
    mdp = random_mdp(seed=1)
    theta = random_policy(mdp, 1)
    full = exact.policy_gradient_theorem(mdp, theta)
    gaps = [
        float((exact.finite_horizon_gradient(mdp, theta, h) - full).norm()) for h in (2, 10, 100)
    ]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-10
    # the state weighting of a horizon-H time limit grows to the discounted visitation
    torch.testing.assert_close(
        exact.visitation(mdp, theta, horizon=300), exact.visitation(mdp, theta)
    )


def test_discount_as_termination_keeps_values_and_gradient() -> None:
    mdp = random_mdp(seed=2, terminal_prob=None)
    ended = discount_as_termination(mdp)
    theta = random_policy(mdp, 2)
    theta_ended = torch.cat([theta, torch.zeros(1, mdp.num_actions, dtype=torch.float64)])
    assert ended.gamma == 1.0
    torch.testing.assert_close(exact.objective(ended, theta_ended), exact.objective(mdp, theta))
    torch.testing.assert_close(
        exact.policy_gradient_theorem(ended, theta_ended)[: mdp.num_states],
        exact.policy_gradient_theorem(mdp, theta),
    )


# --- sampling -----------------------------------------------------------------------------


def test_sampled_returns_average_to_exact_objective_and_columns_hold_whole_episodes() -> None:
    mdp = random_mdp(seed=0)
    theta = random_policy(mdp, 0)
    generator = torch.Generator().manual_seed(0)
    data = sample_episodes(
        mdp, theta, num_batches=50, trajectories_per_batch=40, generator=generator
    )
    done = (data.terminated | data.truncated) & data.mask.bool()
    assert done.sum(0).eq(2).all()  # two whole episodes per column
    assert data.truncated[data.mask == 0].all()  # placeholders stop every return
    first = torch.ones_like(done)
    first[1:] = done[:-1]
    first &= data.mask.bool()
    returns = discounted_returns(data.rewards, data.terminated, data.truncated, mdp.gamma)
    start_returns = returns[first].view(-1, 100)  # 2000 episodes as 20 batches of 100
    assert bias_check(start_returns.mean(1, keepdim=True), exact.objective(mdp, theta)).unbiased


def test_fitted_critics_minimise_value_loss_and_approach_exact_values() -> None:
    mdp = random_mdp(seed=1)
    theta = random_policy(mdp, 1)
    generator = torch.Generator().manual_seed(1)
    fit = sample_episodes(
        mdp, theta, num_batches=2, trajectories_per_batch=4000, generator=generator
    )
    values = exact.state_values(mdp, theta)
    critics = fit_critics(fit, mdp, values)
    live = ~mdp.terminal
    for table in (critics.fitted_mc, critics.fitted_td):
        assert (table[:, live] - values[live]).abs().max() < 0.1
    # the Monte-Carlo table is the minimiser of pgrl's value_loss on G_t (zero gradient)
    batch0 = fit.batch == 0
    states = fit.states[:, batch0]
    mask = fit.mask[:, batch0]
    returns = discounted_returns(
        fit.rewards[:, batch0], fit.terminated[:, batch0], fit.truncated[:, batch0], mdp.gamma
    )
    table = critics.fitted_mc[0].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(value_loss(table[states], returns, mask=mask), table)
    assert grad.abs().max() < 1e-12


# --- unbiased estimators ------------------------------------------------------------------

UNBIASED: dict[str, Estimator] = {
    "r(τ)": total_return(),
    "G_t γ^t": reward_to_go(),
    "G_t − b": reward_to_go("constant"),
    "G_t − V̂": reward_to_go("fitted"),
    "G_t − V": reward_to_go("exact"),
    "AC V": actor_critic("exact"),
    "AC V 3-step": actor_critic("exact", n_step=3),
    "GAE 0.5": gae_estimator(0.5),
    "GAE 0.95": gae_estimator(0.95),
    "GAE 1": gae_estimator(1.0),
}


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_unbiased_estimators_mean_matches_exact_gradient(seed: int) -> None:
    mdp = random_mdp(seed=seed)
    theta = random_policy(mdp, seed)
    target = exact.policy_gradient_theorem(mdp, theta)
    estimates = _estimates(mdp, theta, UNBIASED, seed)
    for name, value in estimates.items():
        check = bias_check(value, target)
        assert check.unbiased, f"{name}: max|z| {check.max_abs_z:.2f} > {check.threshold:.2f}"


def test_usual_estimator_is_unbiased_in_undiscounted_episodic_mdp() -> None:
    mdp = undiscounted(random_mdp(seed=3))
    theta = random_policy(mdp, 3)
    target = exact.policy_gradient_theorem(mdp, theta)
    usual = {"G_t": reward_to_go(discount_weighting=False), "AC": actor_critic()}
    for name, value in _estimates(mdp, theta, usual, 3).items():
        assert bias_check(value, target).unbiased, name


def test_unbiased_estimators_on_named_mdps() -> None:
    for mdp in (chain_mdp(), gridworld_mdp()):
        theta = random_policy(mdp, 0)
        target = exact.policy_gradient_theorem(mdp, theta)
        estimators = {"G_t γ^t": reward_to_go(), "G_t − V": reward_to_go("exact"),
                      "AC V": actor_critic()}  # fmt: skip
        for name, value in _estimates(mdp, theta, estimators, 0, n=8).items():
            assert bias_check(value, target).unbiased, f"{mdp.name}: {name}"


# --- variance ---------------------------------------------------------------------------


def test_reward_to_go_has_lower_variance_than_whole_return() -> None:
    for seed in RANDOM_SEEDS:
        mdp = random_mdp(seed=seed)
        theta = random_policy(mdp, seed)
        est = _estimates(mdp, theta, {"r": total_return(), "G": reward_to_go()}, seed)
        assert _variance(est["G"]) < 0.8 * _variance(est["r"])


def test_exact_value_baseline_lowers_variance_without_moving_the_mean() -> None:
    # rewards N(1, 1): returns share a large common part, the case a baseline is for. With
    # N(0, 1) rewards V^π is not always better than no baseline (random_mdp(seed=1): +10%
    # variance): V is a good baseline, not the variance-minimising one (Greensmith et al. 2004).
    for seed in RANDOM_SEEDS:
        mdp = random_mdp(seed=seed, reward_mean=1.0)
        theta = random_policy(mdp, seed)
        est = _estimates(mdp, theta, {"G": reward_to_go(), "G-V": reward_to_go("exact")}, seed)
        assert _variance(est["G-V"]) < 0.6 * _variance(est["G"])
        # the difference of the two estimators (same episodes) has mean zero
        assert bias_check(est["G-V"] - est["G"], torch.zeros_like(est["G"][0])).unbiased


# --- the check can fail -------------------------------------------------------------------


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_broken_estimators_are_detected_as_biased(seed: int) -> None:
    mdp = random_mdp(seed=seed)
    theta = random_policy(mdp, seed)
    target = exact.policy_gradient_theorem(mdp, theta)
    broken = {
        "wrong sign": wrong_sign(reward_to_go("exact")),
        "b(s, a) = r(s, a)": action_dependent_baseline(),
        "terminated dropped (returns)": with_terminated_dropped(reward_to_go("exact")),
        "terminated dropped (GAE)": with_terminated_dropped(gae_estimator(0.95)),
        "terminated as truncated (AC)": with_termination_as_truncation(actor_critic()),
        "terminated as truncated (GAE)": with_termination_as_truncation(gae_estimator(0.5)),
    }
    for name, value in _estimates(mdp, theta, broken, seed, num_batches=200, n=32).items():
        check = bias_check(value, target)
        assert not check.unbiased, f"{name} passed: max|z| {check.max_abs_z:.2f}"


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_truncation_treated_as_termination_is_detected_as_biased(seed: int) -> None:
    mdp = random_mdp(seed=seed)
    theta = random_policy(mdp, seed)
    horizon = 1  # every episode is cut after one step: only the bootstrap carries the future
    target = exact.policy_gradient_theorem(
        mdp, theta, exact.visitation(mdp, theta, horizon=horizon)
    )
    estimators = {
        "G_t − V": reward_to_go("exact"),
        "AC V": actor_critic(),
        "GAE 0.95": gae_estimator(0.95),
        "G_t − V, cut as end": with_truncation_as_termination(reward_to_go("exact")),
        "AC V, cut as end": with_truncation_as_termination(actor_critic()),
    }
    est = _estimates(mdp, theta, estimators, seed, n=64, horizon=horizon)
    assert bias_check(est["G_t − V"], target).unbiased
    assert bias_check(est["AC V"], target).unbiased
    assert bias_check(est["GAE 0.95"], target).unbiased
    assert not bias_check(est["G_t − V, cut as end"], target).unbiased
    assert not bias_check(est["AC V, cut as end"], target).unbiased


# --- the discount -------------------------------------------------------------------------


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_usual_estimator_is_biased_for_discounted_objective_and_discount_weighted_is_not(
    seed: int,
) -> None:
    mdp = random_mdp(seed=seed)
    theta = random_policy(mdp, seed)
    target = exact.policy_gradient_theorem(mdp, theta)
    estimators = {
        "weighted": reward_to_go(),
        "usual": reward_to_go(discount_weighting=False),
        "usual AC": actor_critic(discount_weighting=False),
    }
    est = _estimates(mdp, theta, estimators, seed, n=32)
    assert bias_check(est["weighted"], target).unbiased
    assert not bias_check(est["usual"], target).unbiased
    assert not bias_check(est["usual AC"], target).unbiased
    # ... and its mean is exactly what the undiscounted state weighting predicts
    predicted = exact.policy_gradient_theorem(
        mdp, theta, exact.visitation(mdp, theta, discount_weighting=False)
    )
    assert bias_check(est["usual"], predicted).unbiased
    assert bias_check(est["usual AC"], predicted).unbiased


def test_usual_estimator_is_unbiased_when_discount_is_a_termination_probability() -> None:
    mdp = random_mdp(seed=4, terminal_prob=None, gamma=0.8)
    ended = discount_as_termination(mdp)
    theta = random_policy(mdp, 4)
    theta_ended = torch.cat([theta, torch.zeros(1, mdp.num_actions, dtype=torch.float64)])
    estimators = {"usual": reward_to_go(discount_weighting=False)}
    est = _estimates(ended, theta_ended, estimators, 4, n=32)["usual"]
    target = exact.policy_gradient_theorem(mdp, theta)
    assert bias_check(est[:, : mdp.num_states], target).unbiased


# --- deterministic policy gradient --------------------------------------------------------

SYSTEMS = [lqr.double_integrator(), lqr.random_lqr(seed=0), lqr.random_lqr(2, 1, seed=1)]


@pytest.mark.parametrize("system", SYSTEMS, ids=lambda s: s.name)
def test_lqr_closed_form_gradient_equals_autograd_and_actor_loss_on_exact_moments(
    system: lqr.LinearQuadratic,
) -> None:
    gradient = lqr.exact_gradient(system)
    scale = float(gradient.abs().max())
    torch.testing.assert_close(
        gradient, lqr.exact_gradient_autograd(system), rtol=0, atol=1e-10 * scale
    )
    # Σ_i x_i x_iᵀ = Σ_K for the columns of the Cholesky factor: the DPG expectation exactly
    points = torch.linalg.cholesky(lqr.state_second_moment(system)).T
    weights = torch.ones(points.shape[0], dtype=torch.float64)
    dpg = lqr.dpg_estimate(system, points, discount_weights=weights, trajectories=1)
    torch.testing.assert_close(dpg, gradient, rtol=0, atol=1e-10 * scale)


def test_lqr_gain_moves_objective_as_gradient_predicts() -> None:
    system = lqr.double_integrator()
    direction = torch.randn(system.gain.shape, generator=torch.Generator().manual_seed(0))
    direction = direction.to(torch.float64)
    eps = 1e-6
    up = lqr.objective(system, system.gain + eps * direction)
    down = lqr.objective(system, system.gain - eps * direction)
    slope = float((up - down) / (2 * eps))
    assert math.isclose(slope, float((lqr.exact_gradient(system) * direction).sum()), rel_tol=1e-6)


@pytest.mark.parametrize("system", SYSTEMS[:2], ids=lambda s: s.name)
def test_dpg_with_exact_critic_matches_closed_form_gradient(system: lqr.LinearQuadratic) -> None:
    generator = torch.Generator().manual_seed(0)
    states, *_ = lqr.sample_states(system, 200 * 20, 150, generator)
    estimates = torch.stack([lqr.dpg_estimate(system, c) for c in states.split(20, dim=1)])
    gradient = lqr.exact_gradient(system)
    assert bias_check(estimates, gradient).unbiased
    assert (estimates.mean(0) - gradient).norm() < 0.05 * gradient.norm()


def test_dpg_with_myopic_critic_is_detected_as_biased() -> None:
    system = lqr.double_integrator()

    def myopic(states: Tensor, actions: Tensor) -> Tensor:  # r(x, u) only: drops γE[V(x')]
        return -((states @ system.Q) * states).sum(-1) - ((actions @ system.R) * actions).sum(-1)

    generator = torch.Generator().manual_seed(0)
    states, *_ = lqr.sample_states(system, 200 * 20, 150, generator)
    estimates = torch.stack([lqr.dpg_estimate(system, c, myopic) for c in states.split(20, dim=1)])
    assert not bias_check(estimates, lqr.exact_gradient(system)).unbiased


@pytest.mark.parametrize("system", SYSTEMS[:2], ids=lambda s: s.name)
def test_dpg_with_learned_quadratic_critic_is_close_to_closed_form(
    system: lqr.LinearQuadratic,
) -> None:
    generator = torch.Generator().manual_seed(1)
    critic = lqr.fit_quadratic_critic(system, generator)
    points = torch.linalg.cholesky(lqr.state_second_moment(system)).T
    weights = torch.ones(points.shape[0], dtype=torch.float64)
    learned = lqr.dpg_estimate(system, points, critic, discount_weights=weights, trajectories=1)
    gradient = lqr.exact_gradient(system)
    assert (learned - gradient).norm() < 0.2 * gradient.norm()
    cosine = torch.nn.functional.cosine_similarity(learned.reshape(-1), gradient.reshape(-1), dim=0)
    assert cosine > 0.98


# --- statistics and the command -----------------------------------------------------------


def test_t_quantile_matches_tables() -> None:
    # t_{0.975, 30} = 2.0423, t_{0.995, 60} = 2.6603 (standard tables)
    assert abs(t_quantile(0.975, 30) - 2.0423) < 1e-3
    assert abs(t_quantile(0.995, 60) - 2.6603) < 1e-3


def test_bias_check_false_alarm_rate_is_near_alpha() -> None:
    # 2000 unbiased Gaussian experiments with 18 coordinates and 100 batches each
    generator = torch.Generator().manual_seed(0)
    samples = torch.randn(2000, 100, 18, generator=generator, dtype=torch.float64)
    alarms = sum(not bias_check(x, torch.zeros(18), alpha=0.05).unbiased for x in samples)
    assert alarms / 2000 < 0.08


def test_unknown_mdp_name_raises_config_error_listing_names() -> None:
    with pytest.raises(ConfigError, match="chain, gridworld"):
        make_mdp("nope")
    with pytest.raises(ConfigError, match="known MDPs"):
        main(["--mdp", "nope"])


def test_verify_command_writes_report_and_passes(tmp_path: Path) -> None:
    assert main(["--quick", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert data["passed"] and data["mdp"] == "random"
    assert (tmp_path / "verify.png").stat().st_size > 10_000
    assert "| r(τ) |" in (tmp_path / "report.md").read_text(encoding="utf-8")


def test_run_verify_report_rows_match_expectations() -> None:
    report = run_verify(seed=1, quick=True)
    assert report.passed, report.failures
    names = [row.name for row in report.ladder]
    assert names[0] == "r(τ)" and "GAE λ=0.95" in names
    usual = next(row for row in report.ladder if row.name == "G_t, no γ^t")
    assert usual.predicted_bias_along is not None
    # the measured bias along ∇J agrees with the closed-form prediction
    assert abs(usual.summary.bias_along - usual.predicted_bias_along) < 2 * (
        usual.summary.bias_along_ci + 1e-9
    )

"""Tests of pgrl.plot: confidence bands, grouping of seeds and the learning-curve figure."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from pgrl.errors import PgrlError
from pgrl.plot import (
    SCORE_RANGES,
    AggregateScores,
    aggregate_figure,
    aggregate_intervals,
    aggregate_scores,
    column_label,
    common_grid,
    confidence_band,
    evaluation_grid,
    expand_runs,
    group_runs,
    iqm,
    learning_curve_figure,
    performance_profile,
    plot_aggregate,
    plot_runs,
    stratified_bootstrap_ci,
    t_quantile_975,
)


def write_run(
    run_dir: Path,
    steps: list[float],
    returns: list[float],
    config: dict[str, object] | None,
    eval_returns: list[float] | None = None,
) -> Path:
    """Write a metrics.csv (and config.json) the way RunLogger lays them out."""
    run_dir.mkdir(parents=True)
    header = "env_steps,time_s,episode_return_mean"
    if eval_returns is not None:
        header += ",eval_return_mean"
    lines = [header]
    for i, (step, ret) in enumerate(zip(steps, returns, strict=True)):
        cells = [str(int(step)), f"{0.1 * i:.3f}", repr(ret)]
        if eval_returns is not None:
            cells.append("" if math.isnan(eval_returns[i]) else repr(eval_returns[i]))
        lines.append(",".join(cells))
    (run_dir / "metrics.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if config is not None:
        (run_dir / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return run_dir


def legend_labels(fig: Figure) -> list[str]:
    legend = fig.axes[0].get_legend()
    assert legend is not None
    return [text.get_text() for text in legend.get_texts()]


def ppo_config(seed: int) -> dict[str, object]:
    return {"algo": "ppo", "env": "CartPole-v1", "seed": seed, "learning_rate": 3e-4}


def student_t_cdf(t: float, df: int) -> float:
    """P(T ≤ t) for t ≥ 0 by the trapezoid rule on the Student-t density."""
    x = np.linspace(0.0, t, 200_001)
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    density = np.exp(log_c - (df + 1) / 2 * np.log1p(x * x / df))
    return 0.5 + float(np.trapezoid(density, x))


@pytest.mark.parametrize("df", [1, 2, 3, 5, 10, 20, 29, 30, 31, 45, 100])
def test_t_quantile_975_has_upper_tail_probability_2_5_percent(df: int) -> None:
    assert student_t_cdf(t_quantile_975(df), df) == pytest.approx(0.975, abs=1e-7)


def test_confidence_band_two_seeds_matches_hand_computation() -> None:
    values = np.array([[1.0, 2.0], [3.0, 6.0]])
    # Column 0: mean 2; s² = ((1-2)² + (3-2)²)/1 = 2; s/√2 = 1; t_{0.975,1} = 12.706204736.
    # Column 1: mean 4; s² = ((2-4)² + (6-4)²)/1 = 8; s/√2 = 2; half-width 25.412409472.
    mean, lo, hi = confidence_band(values)
    np.testing.assert_allclose(mean, [2.0, 4.0])
    np.testing.assert_allclose(lo, [2.0 - 12.706204736, 4.0 - 25.412409472])
    np.testing.assert_allclose(hi, [2.0 + 12.706204736, 4.0 + 25.412409472])


def test_confidence_band_three_seeds_matches_hand_computation() -> None:
    values = np.array([[1.0], [2.0], [6.0]])
    # mean 3; s² = (4 + 1 + 9)/2 = 7; s/√3 = √(7/3) = 1.527525232;
    # t_{0.975,2} = 4.302652730; half-width 4.302652730 · 1.527525232 = 6.572411...
    half = 4.302652730 * math.sqrt(7 / 3)
    assert half == pytest.approx(6.5724, abs=1e-4)
    mean, lo, hi = confidence_band(values)
    np.testing.assert_allclose(mean, [3.0])
    np.testing.assert_allclose(lo, [3.0 - half])
    np.testing.assert_allclose(hi, [3.0 + half])


def test_confidence_band_of_one_seed_has_zero_width() -> None:
    mean, lo, hi = confidence_band(np.array([[1.0, 5.0]]))
    np.testing.assert_array_equal(mean, [1.0, 5.0])
    np.testing.assert_array_equal(lo, mean)
    np.testing.assert_array_equal(hi, mean)


def test_group_runs_joins_configs_that_differ_only_in_seed() -> None:
    configs = [
        ppo_config(0),
        {"algo": "a2c", "env": "CartPole-v1", "seed": 0, "learning_rate": 3e-4},
        ppo_config(1),
        {**ppo_config(0), "learning_rate": 1e-3},
        ppo_config(2),
    ]
    assert group_runs(configs) == [[0, 2, 4], [1], [3]]


def test_group_runs_ignores_key_order() -> None:
    a = {"algo": "ppo", "env": "Pendulum-v1", "seed": 0}
    b = {"seed": 1, "env": "Pendulum-v1", "algo": "ppo"}
    assert group_runs([a, b]) == [[0, 1]]


def test_group_runs_keeps_runs_without_config_apart() -> None:
    assert group_runs([None, None, ppo_config(0)]) == [[0], [1], [2]]


def test_common_grid_interpolates_onto_the_overlap_of_step_ranges() -> None:
    steps = [np.array([0.0, 10.0, 20.0]), np.array([5.0, 15.0, 25.0])]
    values = [np.array([0.0, 10.0, 20.0]), np.array([0.0, 10.0, 20.0])]
    grid, curves = common_grid(steps, values)
    # Overlap [5, 20]; grid = the logged steps inside it. Run 0 is y = x, run 1 is y = x - 5.
    np.testing.assert_array_equal(grid, [5.0, 10.0, 15.0, 20.0])
    np.testing.assert_array_equal(curves, [[5.0, 10.0, 15.0, 20.0], [0.0, 5.0, 10.0, 15.0]])


def test_common_grid_without_overlap_raises_pgrl_error() -> None:
    with pytest.raises(PgrlError, match="no range"):
        common_grid([np.array([0.0, 10.0]), np.array([20.0, 30.0])], [np.zeros(2), np.zeros(2)])


@pytest.fixture
def three_seeds_and_one_other(tmp_path: Path) -> list[Path]:
    steps = [1000.0, 2000.0, 3000.0]
    return [
        # Seed 0 has no finished episode at the first log: its return is nan there.
        write_run(tmp_path / "ppo-0", steps, [math.nan, 20.0, 30.0], ppo_config(0)),
        write_run(tmp_path / "ppo-1", steps, [12.0, 22.0, 32.0], ppo_config(1)),
        write_run(tmp_path / "ppo-2", steps, [14.0, 24.0, 34.0], ppo_config(2)),
        write_run(
            tmp_path / "a2c-0",
            steps,
            [5.0, 6.0, 7.0],
            {"algo": "a2c", "env": "CartPole-v1", "seed": 0},
            eval_returns=[math.nan, 8.0, 9.0],
        ),
    ]


def test_plot_runs_writes_a_nonempty_png(three_seeds_and_one_other: list[Path]) -> None:
    out = three_seeds_and_one_other[0].parent / "plots" / "curve.png"
    assert plot_runs(three_seeds_and_one_other, out) == out
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 1000


def test_figure_draws_three_seeds_as_one_iqm_line_and_single_run_as_its_own(
    three_seeds_and_one_other: list[Path],
) -> None:
    fig = learning_curve_figure(three_seeds_and_one_other)
    ax = fig.axes[0]
    assert legend_labels(fig) == [
        "ppo CartPole-v1: IQM, 95% stratified bootstrap CI, n=3 seeds",
        "a2c CartPole-v1, seed 0",
        "evaluation return (points; IQM over a group's seeds)",
    ]
    iqm_line = ax.get_lines()[0]
    # Seed 0 starts at 2000 (nan before), so the common grid is [2000, 3000]; with 3 seeds
    # the IQM cuts int(0.75) = 0 runs at each end: mean(20, 22, 24) = 22, mean(30, 32, 34) = 32.
    np.testing.assert_array_equal(iqm_line.get_xdata(), [2000.0, 3000.0])
    np.testing.assert_array_equal(iqm_line.get_ydata(), [22.0, 32.0])
    assert len(ax.collections) == 1  # one shaded band, for the group only
    # the band stays inside the seeds' range at each point: [20, 24] and [30, 34]
    band = ax.collections[0].get_paths()[0].vertices
    assert band[:, 1].min() >= 20.0 and band[:, 1].max() <= 34.0
    assert ax.get_title() == "CartPole-v1"
    assert ax.get_xlabel() == "environment steps"
    assert ax.get_ylabel() == "training episode return (mean of the last 100 episodes)"


def test_figure_marks_eval_returns_as_points(three_seeds_and_one_other: list[Path]) -> None:
    fig = learning_curve_figure(three_seeds_and_one_other[3:])
    lines = fig.axes[0].get_lines()
    eval_points = [line for line in lines if line.get_linestyle() == "None"]
    assert len(eval_points) == 1
    np.testing.assert_array_equal(eval_points[0].get_xdata(), [2000.0, 3000.0])
    np.testing.assert_array_equal(eval_points[0].get_ydata(), [8.0, 9.0])


def test_plot_runs_accepts_a_metrics_csv_path(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", [0.0, 100.0], [1.0, 2.0], config=None)
    fig = learning_curve_figure([run / "metrics.csv"])
    assert legend_labels(fig) == ["run"]
    assert fig.axes[0].get_ylabel().startswith("training episode return")


def test_plot_runs_with_no_runs_raises_pgrl_error(tmp_path: Path) -> None:
    with pytest.raises(PgrlError, match="No runs"):
        plot_runs([], tmp_path / "out.png")


def test_plot_runs_missing_metrics_csv_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "empty-run").mkdir()
    with pytest.raises(PgrlError, match=r"empty-run.metrics\.csv"):
        plot_runs([tmp_path / "empty-run"], tmp_path / "out.png")


def test_plot_runs_missing_metric_lists_the_available_ones(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", [0.0, 100.0], [1.0, 2.0], ppo_config(0))
    with pytest.raises(PgrlError, match=r"'value_loss'.*available: episode_return_mean"):
        plot_runs([run], tmp_path / "out.png", metric="value_loss")
    assert not (tmp_path / "out.png").exists()


def test_plot_runs_rejects_a_config_that_is_not_a_json_object(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", [0.0, 100.0], [1.0, 2.0], config=None)
    (run / "config.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(PgrlError, match="JSON object"):
        plot_runs([run], tmp_path / "out.png")


# -- IQM and the stratified bootstrap (issue 14) --------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # n = 3: int(0.25 * 3) = 0 cut at each end (scipy's trim_mean, rliable): the mean
        ([6.0, 1.0, 2.0], 3.0),
        # n = 4: 1 cut at each end: mean(1, 2) = 1.5
        ([10.0, 0.0, 2.0, 1.0], 1.5),
        # n = 5: int(1.25) = 1 cut: mean(1, 2, 3) = 2
        ([100.0, 3.0, 0.0, 2.0, 1.0], 2.0),
        # n = 8: 2 cut at each end: mean(3, 4, 5, 6) = 4.5
        ([8.0, 1.0, 7.0, 2.0, 6.0, 3.0, 5.0, 4.0], 4.5),
    ],
)
def test_iqm_is_the_mean_of_the_middle_half_by_hand(values: list[float], expected: float) -> None:
    assert float(iqm(np.array(values))) == expected


def test_iqm_works_along_the_seed_axis_of_curves() -> None:
    curves = np.array([[0.0, 10.0], [1.0, 20.0], [2.0, 30.0], [100.0, 40.0]])
    # column 0: mean(1, 2) = 1.5; column 1: mean(20, 30) = 25
    np.testing.assert_array_equal(iqm(curves, axis=0), [1.5, 25.0])


@pytest.mark.parametrize("statistic", ["iqm", "mean", "median"])
def test_bootstrap_interval_of_two_seeds_is_their_range(statistic: str) -> None:
    # Resamples of (a, b): (a, a), (a, b), (b, a), (b, b), each with probability 1/4. A quarter
    # of the bootstrap statistics equal a and a quarter b, so the 2.5th and 97.5th
    # percentiles are a and b themselves.
    point, lo, hi = stratified_bootstrap_ci(np.array([3.0, 7.0]), statistic)
    assert (float(point), float(lo), float(hi)) == (5.0, 3.0, 7.0)


def test_bootstrap_interval_of_three_seeds_is_their_range() -> None:
    # 27 equally likely resamples; (a, a, a) alone has probability 1/27 = 3.7% > 2.5%, so the
    # 2.5th percentile is min = 1 and, likewise, the 97.5th is max = 6: three seeds cannot
    # narrow a 95% interval below their range.
    point, lo, hi = stratified_bootstrap_ci(np.array([1.0, 2.0, 6.0]), "iqm")
    assert (float(point), float(lo), float(hi)) == (3.0, 1.0, 6.0)


def test_bootstrap_interval_of_equal_seeds_has_zero_width() -> None:
    point, lo, hi = stratified_bootstrap_ci(np.full((5, 1, 4), 2.5))
    np.testing.assert_array_equal(point, np.full(4, 2.5))
    np.testing.assert_array_equal(lo, point)
    np.testing.assert_array_equal(hi, point)


def test_bootstrap_resamples_runs_within_each_task() -> None:
    # Task 0 scored 0 in every run, task 1 scored 100. Drawn within each task, every sample
    # holds three 0s and three 100s, so its mean is 50 every time: a zero-width interval. Runs
    # drawn from the pooled six scores would vary from 0 to 100.
    scores = np.array([[0.0, 100.0], [0.0, 100.0], [0.0, 100.0]])
    point, lo, hi = stratified_bootstrap_ci(scores, "mean")
    assert (float(point), float(lo), float(hi)) == (50.0, 50.0, 50.0)


def test_bootstrap_interval_stays_inside_the_range_of_the_data() -> None:
    rng = np.random.default_rng(1)
    # 5 seeds × 40 curve points of a skewed score (a CartPole-like 10..500 return): the
    # Student-t band of such data leaves [min, max]; the percentile interval cannot.
    scores = np.clip(rng.lognormal(4.0, 1.2, size=(5, 1, 40)), 10.0, 500.0)
    for statistic in ("iqm", "mean", "median"):
        point, lo, hi = stratified_bootstrap_ci(scores, statistic, reps=500)
        low, high = scores.min(axis=(0, 1)), scores.max(axis=(0, 1))
        assert np.all(low <= lo) and np.all(lo <= point) and np.all(point <= hi)
        assert np.all(hi <= high)
    _, t_lo, t_hi = confidence_band(scores[:, 0, :])
    assert np.any(t_lo < scores.min(axis=(0, 1))) or np.any(t_hi > scores.max(axis=(0, 1)))


def test_bootstrap_is_reproducible_by_seed() -> None:
    scores = np.arange(12.0).reshape(6, 1, 2) ** 2
    first = stratified_bootstrap_ci(scores, reps=300, seed=7)
    again = stratified_bootstrap_ci(scores, reps=300, seed=7)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)


# -- alignment, grouping and options of the figure ------------------------------------------


def test_evaluation_grid_pairs_the_kth_evaluations_of_each_seed() -> None:
    grid, curves = evaluation_grid(
        [np.array([2536.0, 5040.0]), np.array([2520.0, 5008.0])],
        [np.array([10.0, 50.0]), np.array([12.0, 40.0])],
    )
    np.testing.assert_array_equal(grid, [2528.0, 5024.0])
    np.testing.assert_array_equal(curves, [[10.0, 50.0], [12.0, 40.0]])


def test_group_runs_joins_runs_that_differ_only_in_budget() -> None:
    configs = [
        {**ppo_config(0), "steps": 10_000, "log_interval": 100},
        {**ppo_config(1), "steps": 20_000, "log_interval": 200},
        {**ppo_config(2), "steps": 10_000, "log_interval": 100, "learning_rate": 1e-3},
    ]
    assert group_runs(configs) == [[0, 1], [2]]
    assert group_runs(configs, by=("algo", "env")) == [[0, 1, 2]]


def test_seeds_evaluating_at_slightly_different_steps_keep_their_points(tmp_path: Path) -> None:
    steps_a, steps_b = [1000.0, 2536.0, 3000.0], [1000.0, 2520.0, 3000.0]
    runs = [
        write_run(tmp_path / "s0", steps_a, [1.0, 2.0, 3.0], ppo_config(0), [math.nan, 8.0, 9.0]),
        write_run(tmp_path / "s1", steps_b, [1.0, 2.0, 3.0], ppo_config(1), [math.nan, 6.0, 7.0]),
    ]
    fig = learning_curve_figure(runs)
    points = [line for line in fig.axes[0].get_lines() if line.get_linestyle() == "None"]
    assert len(points) == 1
    np.testing.assert_array_equal(points[0].get_xdata(), [2528.0, 3000.0])
    np.testing.assert_array_equal(points[0].get_ydata(), [7.0, 8.0])


def test_per_seed_lines_and_seconds_on_x(three_seeds_and_one_other: list[Path]) -> None:
    fig = learning_curve_figure(three_seeds_and_one_other[:3], x="seconds", per_seed=True)
    ax = fig.axes[0]
    solid = [line for line in ax.get_lines() if line.get_linestyle() != "None"]
    assert len(solid) == 4  # the IQM and one thin line per seed
    assert ax.get_xlabel() == "wall-clock time (s)"
    assert legend_labels(fig)[-1] == "single seeds"
    # time_s is 0.0, 0.1, 0.2 in every run; seed 0 has no return at 0.0
    np.testing.assert_allclose(solid[0].get_xdata(), [0.1, 0.2])


def test_compare_puts_one_curve_per_algorithm_in_one_panel_per_env(tmp_path: Path) -> None:
    steps = [1000.0, 2000.0]
    runs = []
    for algo, lr in (("ppo", 3e-4), ("a2c", 7e-4)):
        for seed in (0, 1):
            for env in ("CartPole-v1", "Acrobot-v1"):
                config = {"algo": algo, "env": env, "seed": seed, "config": {"lr": lr * (seed + 1)}}
                name = f"{algo}-{env}-{seed}"
                runs.append(write_run(tmp_path / name, steps, [1.0 + seed, 2.0], config))
    fig = learning_curve_figure(runs, compare=True)
    assert [ax.get_title() for ax in fig.axes] == ["CartPole-v1", "Acrobot-v1"]
    for ax in fig.axes:
        labels = [text.get_text() for text in ax.get_legend().get_texts()]
        assert labels == [
            "ppo: IQM, 95% stratified bootstrap CI, n=2 seeds",
            "a2c: IQM, 95% stratified bootstrap CI, n=2 seeds",
        ]


def test_groups_of_one_algorithm_are_labelled_by_what_differs(tmp_path: Path) -> None:
    steps = [1000.0, 2000.0]
    runs = [
        write_run(
            tmp_path / f"ppo-{lr}-{seed}",
            steps,
            [1.0, 2.0],
            {**ppo_config(seed), "config": {"learning_rate": lr, "gamma": 0.99}},
        )
        for lr in (0.001, 0.0003)
        for seed in (0, 1)
    ]
    labels = legend_labels(learning_curve_figure(runs))
    assert labels[0].startswith("ppo CartPole-v1 (learning_rate=0.001): IQM")
    assert labels[1].startswith("ppo CartPole-v1 (learning_rate=0.0003): IQM")


def test_a_group_directory_expands_to_its_seeds(tmp_path: Path) -> None:
    group = tmp_path / "group"
    for seed in (10, 2, 0):
        write_run(group / f"seed-{seed}", [0.0, 100.0], [1.0, 2.0], ppo_config(seed))
    (group / "group.json").write_text("{}", encoding="utf-8")
    assert [p.name for p in expand_runs([group])] == ["seed-0", "seed-2", "seed-10"]
    out = plot_runs([group], group / "learning-curve.png")
    assert out.read_bytes().startswith(b"\x89PNG")
    assert legend_labels(learning_curve_figure([group]))[0].endswith("n=3 seeds")


def test_plot_runs_rejects_an_unknown_x_axis(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", [0.0, 100.0], [1.0, 2.0], ppo_config(0))
    with pytest.raises(PgrlError, match="steps, seconds"):
        plot_runs([run], tmp_path / "out.png", x="minutes")


def test_column_labels_are_words() -> None:
    assert column_label("env_steps") == "environment steps"
    assert column_label("value_loss") == "value loss (½·MSE)"
    assert column_label("custom_metric") == "custom metric"


# -- Aggregates across environments: rliable's bars and performance profile (issue 14) ------


def final_eval_run(run_dir: Path, algo: str, env: str, seed: int, final: float | None) -> Path:
    """A run whose last evaluation return is ``final``; None: a run that never evaluated,
    whose final training return is -400."""
    config = {"algo": algo, "env": env, "seed": seed}
    if final is None:
        return write_run(run_dir, [1000.0, 2000.0], [-450.0, -400.0], config)
    # the last row has no evaluation: the score is the last *finite* evaluation
    return write_run(
        run_dir,
        [1000.0, 2000.0, 3000.0],
        [1.0, 2.0, 3.0],
        config,
        eval_returns=[-1.0, final, math.nan],
    )


@pytest.fixture
def two_algos_two_envs(tmp_path: Path) -> list[Path]:
    # ppo  CartPole-v1 (0, 500):    500, 450, 100  -> 1.0, 0.9, 0.2
    # ppo  Acrobot-v1 (-500, 0):   -100, -500, -250 -> 0.8, 0.0, 0.5
    # a2c  CartPole-v1:              50, 400, 450  -> 0.1, 0.8, 0.9
    # a2c  Acrobot-v1:              -50, -300, (no eval: training return -400) -> 0.9, 0.4, 0.2
    table: dict[tuple[str, str], list[float | None]] = {
        ("ppo", "CartPole-v1"): [500.0, 450.0, 100.0],
        ("ppo", "Acrobot-v1"): [-100.0, -500.0, -250.0],
        ("a2c", "CartPole-v1"): [50.0, 400.0, 450.0],
        ("a2c", "Acrobot-v1"): [-50.0, -300.0, None],
    }
    return [
        final_eval_run(tmp_path / f"{algo}-{env}-{seed}", algo, env, seed, final)
        for (algo, env), finals in table.items()
        for seed, final in enumerate(finals)
    ]


def test_aggregate_scores_normalizes_by_the_known_range_by_hand(
    two_algos_two_envs: list[Path],
) -> None:
    scores = aggregate_scores(two_algos_two_envs)
    assert scores.groups == ("ppo", "a2c")
    assert scores.envs == ("CartPole-v1", "Acrobot-v1")
    assert scores.ranges == {"CartPole-v1": (0.0, 500.0), "Acrobot-v1": (-500.0, 0.0)}
    assert scores.ranges_from_runs == ()
    np.testing.assert_allclose(scores.raw["ppo"]["Acrobot-v1"], [-100.0, -500.0, -250.0])
    np.testing.assert_allclose(scores.normalized["ppo"]["CartPole-v1"], [1.0, 0.9, 0.2])
    np.testing.assert_allclose(scores.normalized["ppo"]["Acrobot-v1"], [0.8, 0.0, 0.5])
    np.testing.assert_allclose(scores.normalized["a2c"]["CartPole-v1"], [0.1, 0.8, 0.9])
    # (R, T) = (3 seeds, 2 environments), columns in the order of scores.envs
    np.testing.assert_allclose(
        scores.matrix("a2c"), [[0.1, 0.9], [0.8, 0.4], [0.9, 0.2]], atol=1e-12
    )
    assert scores.clipped == 0


def test_a_run_without_evaluations_is_scored_by_its_final_training_return(
    two_algos_two_envs: list[Path],
) -> None:
    scores = aggregate_scores(two_algos_two_envs)
    # a2c Acrobot seed 2 never evaluated: training return -400 -> (-400 + 500) / 500 = 0.2
    np.testing.assert_allclose(scores.normalized["a2c"]["Acrobot-v1"], [0.9, 0.4, 0.2])
    assert scores.fallback_runs == 1


def test_unknown_environment_is_normalized_by_min_and_max_of_its_runs(tmp_path: Path) -> None:
    runs = [
        final_eval_run(tmp_path / "ppo-0", "ppo", "MyEnv-v0", 0, 10.0),
        final_eval_run(tmp_path / "ppo-1", "ppo", "MyEnv-v0", 1, 20.0),
        final_eval_run(tmp_path / "a2c-0", "a2c", "MyEnv-v0", 0, 30.0),
        final_eval_run(tmp_path / "a2c-1", "a2c", "MyEnv-v0", 1, 50.0),
    ]
    scores = aggregate_scores(runs)
    # min 10 and max 50 over both algorithms: (s - 10) / 40
    assert scores.ranges == {"MyEnv-v0": (10.0, 50.0)}
    assert scores.ranges_from_runs == ("MyEnv-v0",)
    np.testing.assert_allclose(scores.normalized["ppo"]["MyEnv-v0"], [0.0, 0.25])
    np.testing.assert_allclose(scores.normalized["a2c"]["MyEnv-v0"], [0.5, 1.0])
    fig = aggregate_figure(scores, reps=200)
    assert "MyEnv-v0 [10, 50] = min and max over its runs (no known range)" in (fig.get_supxlabel())


def test_a_given_range_replaces_the_table(tmp_path: Path) -> None:
    runs = [final_eval_run(tmp_path / "r", "ppo", "CartPole-v1", 0, 100.0)]
    scores = aggregate_scores(runs, normalize={"CartPole-v1": (0.0, 200.0)})
    np.testing.assert_allclose(scores.normalized["ppo"]["CartPole-v1"], [0.5])
    assert SCORE_RANGES["CartPole-v1"] == (0.0, 500.0)


def test_scores_outside_the_known_range_are_clipped_and_counted(tmp_path: Path) -> None:
    # Pendulum's -1600 is a chosen floor, not a bound: -2000 normalizes to -0.25, clipped to 0
    runs = [
        final_eval_run(tmp_path / "a", "sac", "Pendulum-v1", 0, -2000.0),
        final_eval_run(tmp_path / "b", "sac", "Pendulum-v1", 1, -400.0),
    ]
    scores = aggregate_scores(runs)
    np.testing.assert_allclose(scores.normalized["sac"]["Pendulum-v1"], [0.0, 0.75])
    assert scores.clipped == 1
    assert (
        "1 score(s) outside the range clipped" in aggregate_figure(scores, reps=50).get_supxlabel()
    )


def test_aggregate_iqm_median_and_mean_match_hand_values(two_algos_two_envs: list[Path]) -> None:
    intervals = aggregate_intervals(aggregate_scores(two_algos_two_envs), reps=500)
    # ppo's six scores sorted: 0, 0.2, 0.5, 0.8, 0.9, 1.0
    # IQM cuts int(6/4) = 1 at each end: mean(0.2, 0.5, 0.8, 0.9) = 0.6
    # median: (0.5 + 0.8) / 2 = 0.65; mean: 3.4 / 6
    ppo = intervals["ppo"]
    assert ppo["iqm"][0] == pytest.approx(0.6)
    assert ppo["median"][0] == pytest.approx(0.65)
    assert ppo["mean"][0] == pytest.approx(3.4 / 6)
    for group in intervals.values():
        for point, lo, hi in group.values():
            assert 0.0 <= lo <= point <= hi <= 1.0


def test_performance_profile_is_non_increasing_and_matches_hand_counts(
    two_algos_two_envs: list[Path],
) -> None:
    scores = aggregate_scores(two_algos_two_envs)
    taus, profiles = performance_profile(scores, reps=500)
    fraction, lo, hi = profiles["ppo"]
    assert taus[0] == 0.0 and taus[-1] == 1.0
    assert np.all(np.diff(fraction) <= 0.0)
    assert np.all((lo <= fraction + 1e-12) & (fraction <= hi + 1e-12))
    assert lo.min() >= 0.0 and hi.max() <= 1.0
    # ppo's scores 0, 0.2, 0.5, 0.8, 0.9, 1.0; strictly above τ:
    #   τ = 0: five of six; τ = 0.5: 0.8, 0.9, 1.0; τ = 0.85: 0.9, 1.0; τ = 1: none
    at = np.array([0.0, 0.5, 0.85, 1.0])
    _, hand = performance_profile(scores, at, reps=10)
    np.testing.assert_allclose(hand["ppo"][0], [5 / 6, 3 / 6, 2 / 6, 0.0])


def test_plot_aggregate_writes_the_figure_with_labels_in_words(
    two_algos_two_envs: list[Path],
) -> None:
    out = two_algos_two_envs[0].parent / "plots" / "agg.png"
    assert plot_aggregate(two_algos_two_envs, out, reps=200) == out
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000

    fig = aggregate_figure(aggregate_scores(two_algos_two_envs), reps=200)
    bars, profile = fig.axes[:3], fig.axes[3]
    assert [ax.get_title() for ax in bars] == ["IQM", "median", "mean"]
    assert all(ax.get_xlabel() == "normalized score" for ax in bars)
    assert profile.get_xlabel() == "normalized score τ"
    assert profile.get_ylabel() == "fraction of runs with score > τ"
    legend = profile.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == [
        "ppo: n=6 runs on 2 environments",
        "a2c: n=6 runs on 2 environments",
    ]
    footer = fig.get_supxlabel()
    assert "final evaluation return (final training return for 1 run(s)" in footer
    assert "CartPole-v1 [0, 500]; Acrobot-v1 [-500, 0]" in footer


def test_unequal_runs_per_environment_raise_pgrl_error(tmp_path: Path) -> None:
    runs = [
        final_eval_run(tmp_path / "a", "ppo", "CartPole-v1", 0, 100.0),
        final_eval_run(tmp_path / "b", "ppo", "CartPole-v1", 1, 200.0),
        final_eval_run(tmp_path / "c", "ppo", "Acrobot-v1", 0, -100.0),
    ]
    with pytest.raises(PgrlError, match="2 on CartPole-v1, 1 on Acrobot-v1"):
        aggregate_intervals(aggregate_scores(runs))


def test_equal_scores_on_an_unknown_environment_raise_pgrl_error(tmp_path: Path) -> None:
    runs = [final_eval_run(tmp_path / "a", "ppo", "MyEnv-v0", 0, 3.0)]
    with pytest.raises(PgrlError, match="pass normalize="):
        aggregate_scores(runs)


def test_aggregate_needs_each_runs_algorithm_and_environment(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", [0.0, 100.0], [1.0, 2.0], config=None)
    with pytest.raises(PgrlError, match="algorithm and environment"):
        aggregate_scores([run])


def test_aggregate_scores_is_a_frozen_record(two_algos_two_envs: list[Path]) -> None:
    scores = aggregate_scores(two_algos_two_envs)
    assert isinstance(scores, AggregateScores)
    with pytest.raises(AttributeError):
        scores.metric = "x"  # type: ignore[misc]

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
    common_grid,
    confidence_band,
    group_runs,
    learning_curve_figure,
    plot_runs,
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


def test_figure_draws_three_seeds_as_one_mean_line_and_single_run_as_its_own(
    three_seeds_and_one_other: list[Path],
) -> None:
    fig = learning_curve_figure(three_seeds_and_one_other)
    ax = fig.axes[0]
    assert legend_labels(fig) == ["ppo CartPole-v1 (3 seeds)", "a2c CartPole-v1 seed 0"]
    mean_line = ax.get_lines()[0]
    # Seed 0 starts at 2000 (nan before), so the common grid is [2000, 3000]:
    # mean(20, 22, 24) = 22, mean(30, 32, 34) = 32.
    np.testing.assert_array_equal(mean_line.get_xdata(), [2000.0, 3000.0])
    np.testing.assert_array_equal(mean_line.get_ydata(), [22.0, 32.0])
    assert len(ax.collections) == 1  # one shaded band, for the group only
    assert ax.get_title() == "CartPole-v1"


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

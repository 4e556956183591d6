"""Learning curves from run directories, with 95% confidence bands across seeds.

Each run directory holds the ``metrics.csv`` written by :class:`pgrl.logger.RunLogger` and,
usually, the run's ``config.json``. Runs whose configs differ only in ``seed`` are repeats of
one experiment: they are drawn as their mean with a Student-t confidence band, the way
Henderson et al. (2018), "Deep Reinforcement Learning that Matters", ask results to be shown.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pgrl.errors import PgrlError
from pgrl.logger import METRICS_FILE, read_metrics

CONFIG_FILE = "config.json"
"""Name of the run's configuration file inside a run directory."""

EVAL_METRIC = "eval_return_mean"

# t_{0.975, ν}: the two-sided 95% Student-t quantile for ν = 1..30 degrees of freedom
# (standard tables; test_plot.py checks each against a numerical integral of the density).
_T_975 = (
    12.706204736,
    4.302652730,
    3.182446305,
    2.776445105,
    2.570581836,
    2.446911851,
    2.364624252,
    2.306004135,
    2.262157163,
    2.228138852,
    2.200985160,
    2.178812830,
    2.160368656,
    2.144786688,
    2.131449546,
    2.119905299,
    2.109815578,
    2.100922040,
    2.093024054,
    2.085963447,
    2.079613845,
    2.073873068,
    2.068657610,
    2.063898562,
    2.059538553,
    2.055529439,
    2.051830516,
    2.048407142,
    2.045229642,
    2.042272456,
)
_Z_975 = 1.959963984540054

# A grid with more points than this is thinned to this many evenly spaced steps.
_MAX_GRID_POINTS = 1000


def t_quantile_975(df: int) -> float:
    """Two-sided 95% Student-t quantile t_{0.975, df}, without scipy.

    For df ≤ 30 it is a table lookup. Beyond, the Cornish-Fisher expansion of the t quantile
    in powers of 1/df around the normal quantile z (Abramowitz & Stegun 26.7.5) is accurate to
    about 1e-6.

    Args:
        df: degrees of freedom, at least 1.

    Returns:
        The quantile t with P(T ≤ t) = 0.975.

    >>> round(t_quantile_975(2), 4), round(t_quantile_975(1000), 4)
    (4.3027, 1.9623)
    """
    if df < 1:
        raise ValueError(f"degrees of freedom must be at least 1, got {df}")
    if df <= len(_T_975):
        return _T_975[df - 1]
    z = _Z_975
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def confidence_band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and 95% confidence interval of the mean over axis 0 (the seeds).

    mean ± t_{0.975, n−1} · s / √n, with s the sample standard deviation (ddof = 1). With a
    single seed there is no spread to estimate, so the band has zero width.

    Args:
        values: shape (n, ...): n seeds, each a curve on the same grid.

    Returns:
        ``(mean, lo, hi)``, each of shape ``values.shape[1:]``.

    >>> mean, lo, hi = confidence_band(np.array([[1.0], [3.0]]))
    >>> float(mean[0]), round(float(lo[0]), 4), round(float(hi[0]), 4)
    (2.0, -10.7062, 14.7062)
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    if n == 0:
        raise ValueError("confidence_band needs at least one row")
    mean = values.mean(axis=0)
    if n == 1:
        return mean, mean.copy(), mean.copy()
    half_width = t_quantile_975(n - 1) * values.std(axis=0, ddof=1) / math.sqrt(n)
    return mean, mean - half_width, mean + half_width


def group_runs(configs: Sequence[Mapping[str, Any] | None]) -> list[list[int]]:
    """Group runs whose configs are equal except for ``seed``.

    A run without a config (``None``) cannot be matched and forms its own group.

    Args:
        configs: each run's config, in order.

    Returns:
        Groups of run indices, in order of each group's first run.

    >>> group_runs([{"algo": "ppo", "seed": 0}, {"algo": "a2c", "seed": 0},
    ...             {"algo": "ppo", "seed": 1}, None])
    [[0, 2], [1], [3]]
    """
    groups: dict[str, list[int]] = {}
    for i, config in enumerate(configs):
        if config is None:
            key = f"\0run {i}"  # cannot collide with JSON text, which never holds a NUL
        else:
            rest = {k: v for k, v in config.items() if k != "seed"}
            key = json.dumps(rest, sort_keys=True, default=str)
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def common_grid(
    steps: Sequence[np.ndarray], values: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate several curves linearly onto one grid of steps over their common range.

    The grid is every step any curve was logged at within the overlap [max of the first
    steps, min of the last steps], thinned to evenly spaced points if there are too many.
    Restricting to the overlap avoids extrapolating a seed that stopped early.

    Args:
        steps: per curve, increasing environment steps.
        values: per curve, the metric at those steps.

    Returns:
        ``(grid, curves)`` with shapes (G,) and (n, G).

    Raises:
        PgrlError: the curves share no step range.

    >>> grid, curves = common_grid([np.array([0.0, 10.0, 20.0]), np.array([5.0, 25.0])],
    ...                            [np.array([0.0, 10.0, 20.0]), np.array([0.0, 20.0])])
    >>> grid.tolist(), curves.tolist()
    ([5.0, 10.0, 20.0], [[5.0, 10.0, 20.0], [0.0, 5.0, 15.0]])
    """
    lo = max(float(s[0]) for s in steps)
    hi = min(float(s[-1]) for s in steps)
    if hi < lo:
        raise PgrlError(
            f"The runs share no range of environment steps (latest start {lo:g}, earliest "
            f"end {hi:g}); plot them separately."
        )
    all_steps = np.unique(np.concatenate([np.asarray(s, dtype=np.float64) for s in steps]))
    grid = all_steps[(all_steps >= lo) & (all_steps <= hi)]
    if len(grid) > _MAX_GRID_POINTS:
        grid = np.linspace(lo, hi, _MAX_GRID_POINTS)
    curves = np.stack([np.interp(grid, s, v) for s, v in zip(steps, values, strict=True)])
    return grid, curves


@dataclass(frozen=True)
class Run:
    """One run's curves as read from disk."""

    name: str
    """directory name, the label of last resort"""
    config: dict[str, Any] | None
    """contents of config.json, or None when the run has none"""
    metrics: dict[str, np.ndarray]
    """columns of metrics.csv"""


def load_run(path: str | Path) -> Run:
    """Read a run directory, or a ``metrics.csv`` path, with its ``config.json`` if any.

    Raises:
        PgrlError: ``metrics.csv`` is missing or unreadable, or ``config.json`` is not a JSON
            object.
    """
    path = Path(path)
    if path.is_file():
        run_dir, csv_path = path.parent, path
    else:
        run_dir, csv_path = path, path / METRICS_FILE
    if not csv_path.is_file():
        raise PgrlError(f"No metrics file at {csv_path}; is {path} a pgrl run directory?")
    metrics = read_metrics(csv_path)
    config: dict[str, Any] | None = None
    config_path = run_dir / CONFIG_FILE
    if config_path.is_file():
        try:
            loaded = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PgrlError(f"Cannot read run config {config_path}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise PgrlError(f"Run config {config_path} must hold a JSON object.")
        config = loaded
    return Run(name=run_dir.resolve().name, config=config, metrics=metrics)


def _finite_curve(run: Run, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """The (steps, values) of a run's metric, sorted by step, without nan or inf rows.

    Rows without the metric are common: the episode return is nan until an episode ends, and
    eval columns are empty between evaluations.
    """
    steps, values = run.metrics["env_steps"], run.metrics[metric]
    keep = np.isfinite(steps) & np.isfinite(values)
    order = np.argsort(steps[keep], kind="stable")
    return steps[keep][order], values[keep][order]


def _run_label(run: Run) -> str:
    """``algo env seed S`` from the config, else the directory name."""
    config = run.config or {}
    parts = [str(config[k]) for k in ("algo", "env") if k in config]
    if not parts:
        return run.name
    if "seed" in config:
        parts.append(f"seed {config['seed']}")
    return " ".join(parts)


def _group_label(runs: Sequence[Run]) -> str:
    """``algo env (n seeds)``; says runs, not seeds, when seeds repeat or are unknown."""
    config = runs[0].config or {}
    parts = [str(config[k]) for k in ("algo", "env") if k in config] or [runs[0].name]
    seeds = [(r.config or {}).get("seed") for r in runs]
    distinct = None not in seeds and len({json.dumps(s, default=str) for s in seeds}) == len(runs)
    return " ".join(parts) + f" ({len(runs)} {'seeds' if distinct else 'runs'})"


def learning_curve_figure(
    run_dirs: Sequence[str | Path],
    *,
    metric: str = "episode_return_mean",
    title: str | None = None,
) -> Figure:
    """Build the learning-curve figure that :func:`plot_runs` saves; see there."""
    if not run_dirs:
        raise PgrlError("No runs to plot; pass one or more run directories.")
    runs = [load_run(path) for path in run_dirs]
    for path, run in zip(run_dirs, runs, strict=True):
        if metric not in run.metrics:
            available = ", ".join(k for k in run.metrics if k not in ("env_steps", "time_s"))
            raise PgrlError(
                f"Metric {metric!r} is not in the metrics of {path}; available: "
                f"{available or '(none)'}."
            )
        if "env_steps" not in run.metrics:
            raise PgrlError(f"The metrics of {path} have no env_steps column.")
        if not np.isfinite(run.metrics[metric]).any():
            raise PgrlError(f"Run {path} has no finite value of {metric!r} to plot.")

    # A figure that no pyplot state knows about, on the Agg canvas: the caller's matplotlib
    # backend and open figures stay untouched.
    fig = Figure(figsize=(8, 5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    show_eval = metric != EVAL_METRIC
    for indices in group_runs([run.config for run in runs]):
        group = [runs[i] for i in indices]
        curves = [_finite_curve(run, metric) for run in group]
        if len(group) == 1:
            (line,) = ax.plot(*curves[0], label=_run_label(group[0]))
        else:
            grid, values = common_grid(*zip(*curves, strict=True))
            mean, lo, hi = confidence_band(values)
            (line,) = ax.plot(grid, mean, label=_group_label(group))
            ax.fill_between(grid, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
        if show_eval:
            _draw_eval_points(ax, group, line.get_color())
    ax.set_xlabel("environment steps")
    ax.set_ylabel(metric)
    if title is None:
        envs = {(run.config or {}).get("env") for run in runs}
        if len(envs) == 1 and None not in envs:
            title = str(envs.pop())
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best")
    return fig


def _draw_eval_points(ax: Any, group: Sequence[Run], color: Any) -> None:
    """Mark the mean evaluation return at the steps where every run of the group evaluated."""
    curves = [_finite_curve(run, EVAL_METRIC) for run in group if EVAL_METRIC in run.metrics]
    if len(curves) < len(group) or any(len(steps) == 0 for steps, _ in curves):
        return
    shared = curves[0][0]
    for steps, _ in curves[1:]:
        shared = np.intersect1d(shared, steps)
    if len(shared) == 0:
        return
    means = np.mean([v[np.searchsorted(s, shared)] for s, v in curves], axis=0)
    ax.plot(shared, means, linestyle="none", marker="o", markersize=4, color=color)


def plot_runs(
    run_dirs: Sequence[str | Path],
    out: str | Path,
    *,
    metric: str = "episode_return_mean",
    title: str | None = None,
) -> Path:
    """Plot a metric of one or more runs against environment steps and save the figure.

    Runs whose ``config.json`` agree on everything but ``seed`` form a group, drawn as the
    mean over seeds with a shaded 95% confidence band (mean ± t_{0.975, n−1}·s/√n) on a common
    grid of steps, restricted to the steps every seed reached. A group of one run is drawn as
    its own line. Where runs logged ``eval_return_mean``, the (mean) evaluation returns are
    marked as points in the same colour.

    Args:
        run_dirs: run directories, or paths of ``metrics.csv`` files.
        out: the image file to write (PNG unless the suffix names another format); parent
            directories are created.
        metric: the column of ``metrics.csv`` to plot.
        title: the figure title; by default the environment, when all runs share one.

    Returns:
        The path written.

    Raises:
        PgrlError: no runs are given, a ``metrics.csv`` is missing, the metric is not in a run
            (the message lists the available ones), or a group of seeds shares no step range.
    """
    fig = learning_curve_figure(run_dirs, metric=metric, title=title)
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=120)
    except (OSError, ValueError) as exc:  # ValueError: a suffix matplotlib cannot write
        raise PgrlError(f"Cannot write the plot to {out}: {exc}") from exc
    return out

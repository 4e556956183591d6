"""Learning curves from run directories: the interquartile mean over seeds, with stratified
bootstrap 95% confidence intervals.

Each run directory holds the ``metrics.csv`` written by :class:`pgrl.logger.RunLogger` and,
usually, the run's ``config.json``. Runs whose configs differ only in ``seed`` (or in their
step budget) are repeats of one experiment. Following rliable (Agarwal et al., "Deep
Reinforcement Learning at the Edge of the Statistical Precipice", NeurIPS 2021), a group is
drawn as the interquartile mean (IQM) of its seeds at each point of a common grid, with a
percentile interval from a stratified bootstrap over the seeds. Unlike a mean ± t·s/√n band,
that interval never leaves the range the returns took. ``docs/results.md`` explains how to
read the figures.

The statistics are plain NumPy (:func:`iqm`, :func:`stratified_bootstrap_ci`), computed as
rliable computes them (``scipy.stats.trim_mean(x, 0.25)`` and percentile intervals over
bootstrap resamples of runs drawn within each task); pgrl does not depend on rliable.

Across environments, :func:`plot_aggregate` draws rliable's other two figures from each run's
final score normalized to [0, 1] (:func:`aggregate_scores`): intervals of the IQM, median and
mean over all runs and environments of an algorithm, and the performance profile, the
fraction of runs scoring above τ.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from pgrl.errors import PgrlError
from pgrl.logger import METRICS_FILE, read_metrics

CONFIG_FILE = "config.json"
"""Name of the run's configuration file inside a run directory."""

GROUP_FILE = "group.json"
"""Name of the summary file of a group of seeds (:func:`pgrl.seeds.train_seeds`)."""

EVAL_METRIC = "eval_return_mean"

Statistic = Literal["iqm", "mean", "median"]

X_COLUMNS = {"steps": "env_steps", "seconds": "time_s"}
"""The x axes :func:`plot_runs` offers, and the ``metrics.csv`` column each one reads."""

COLUMN_LABELS = {
    "env_steps": "environment steps",
    "time_s": "wall-clock time (s)",
    "train_seconds": "training time (s)",
    "episode_return_mean": "training episode return (mean of the last 100 episodes)",
    "episode_length_mean": "training episode length (mean of the last 100 episodes)",
    "eval_return_mean": "evaluation return (deterministic policy, mean over episodes)",
    "eval_return_std": "evaluation return, standard deviation over episodes",
    "steps_per_second": "environment steps per second",
    "policy_loss": "policy loss",
    "value_loss": "value loss (½·MSE)",
    "value_mse": "value loss (MSE)",
    "entropy": "policy entropy (nats)",
    "approx_kl": "approximate KL divergence",
    "clip_fraction": "fraction of clipped ratios",
    "explained_variance": "explained variance of the value",
    "learning_rate": "learning rate",
    "alpha": "entropy temperature α",
    "alpha_loss": "temperature loss",
    "std": "policy standard deviation",
}
"""Axis labels in words for the columns pgrl writes; any other column is shown by name."""

STATISTIC_NAMES = {"iqm": "IQM", "mean": "mean", "median": "median"}

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

# Bootstrap resamples are drawn in chunks of grid points so that memory stays near
# reps × runs × this many floats (2000 × 10 × 100 × 8 bytes = 16 MB).
_GRID_CHUNK = 100

# Keys of config.json that do not make two runs different experiments: the seed, and the
# budget (with the logging interval derived from it), so that a run extended to more steps
# still joins its siblings.
_REPEAT_KEYS = ("seed", "steps", "log_interval")


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
    """Mean and 95% Student-t confidence interval of the mean over axis 0 (the seeds).

    mean ± t_{0.975, n−1} · s / √n, with s the sample standard deviation (ddof = 1). With a
    single seed there is no spread to estimate, so the band has zero width. The figures use
    :func:`stratified_bootstrap_ci` instead: on 3 to 5 seeds this band is wide and symmetric,
    and leaves the range the returns can take.

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


def iqm(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Interquartile mean: the mean of the values left after cutting a quarter at each end.

    IQM = mean of x_(k+1) … x_(n−k) with k = ⌊n/4⌋ and x_(i) the sorted values: exactly
    ``scipy.stats.trim_mean(x, 0.25)``, rliable's ``aggregate_iqm`` (Agarwal et al. 2021,
    section 4.2). With fewer than 4 values nothing is cut and the IQM is the mean.

    Args:
        values: any shape; the statistic is taken along ``axis``.
        axis: the axis of the runs.

    Returns:
        ``values`` with ``axis`` removed.

    >>> float(iqm(np.array([0.0, 1.0, 2.0, 10.0]))), float(iqm(np.array([1.0, 2.0, 6.0])))
    (1.5, 3.0)
    """
    values = np.sort(np.asarray(values, dtype=np.float64), axis=axis)
    n = values.shape[axis]
    if n == 0:
        raise ValueError("iqm needs at least one value")
    cut = int(0.25 * n)
    return np.take(values, np.arange(cut, n - cut), axis=axis).mean(axis=axis)


_STATISTICS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "iqm": iqm,
    "mean": lambda values, axis: np.mean(values, axis=axis),
    "median": lambda values, axis: np.median(values, axis=axis),
}


def _statistic(name: str) -> Callable[[np.ndarray, int], np.ndarray]:
    if name not in _STATISTICS:
        raise PgrlError(f"statistic must be one of {', '.join(_STATISTICS)}; got {name!r}")
    return _STATISTICS[name]


def stratified_bootstrap_ci(
    scores: np.ndarray,
    statistic: str = "iqm",
    *,
    confidence: float = 0.95,
    reps: int = 2000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point estimate and percentile confidence interval from a stratified bootstrap.

    ``scores`` are R runs (seeds) × T tasks (environments), possibly × more axes (points of
    a learning curve). One bootstrap sample draws, for each task separately, R runs with
    replacement (the strata are the tasks), and computes the statistic over all R·T scores
    of the sample; the same draw of runs serves every point of a curve, so a resampled curve
    is a curve of real seeds. The interval is the [(1−c)/2, (1+c)/2] percentiles of ``reps``
    such samples (the percentile bootstrap, rliable's default). Each sample statistic (IQM,
    mean or median) lies between the least and the greatest score, so the interval does too.

    Args:
        scores: shape (R,), (R, T) or (R, T, ...).
        statistic: ``"iqm"`` (:func:`iqm`), ``"mean"`` or ``"median"``.
        confidence: the coverage c of the interval, in (0, 1).
        reps: bootstrap samples.
        seed: seed of the resampling, so that a figure is reproducible.

    Returns:
        ``(point, lo, hi)``, each of shape ``scores.shape[2:]`` (a float array of shape ()
        for (R,) or (R, T) scores).

    >>> point, lo, hi = stratified_bootstrap_ci(np.array([1.0, 3.0]))
    >>> float(point), float(lo), float(hi)
    (2.0, 1.0, 3.0)
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if reps < 1:
        raise ValueError(f"reps must be at least 1, got {reps}")
    stat = _statistic(statistic)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:
        scores = scores[:, None]
    runs, tasks = scores.shape[:2]
    if runs == 0 or tasks == 0:
        raise ValueError("stratified_bootstrap_ci needs at least one run and one task")
    rest = scores.shape[2:]
    flat = scores.reshape(runs, tasks, -1)  # (R, T, P)
    point = stat(flat.reshape(runs * tasks, -1), 0)

    rng = np.random.default_rng(seed)
    picks = rng.integers(0, runs, size=(reps, runs, tasks))  # run drawn per task
    task_index = np.arange(tasks)[None, None, :]
    tail = 100.0 * (1.0 - confidence) / 2.0
    lo = np.empty(flat.shape[2])
    hi = np.empty(flat.shape[2])
    for start in range(0, flat.shape[2], _GRID_CHUNK):
        chunk = flat[:, :, start : start + _GRID_CHUNK]
        sample = chunk[picks, task_index]  # (reps, R, T, P')
        boot = stat(sample.reshape(reps, runs * tasks, -1), 1)  # (reps, P')
        lo[start : start + _GRID_CHUNK], hi[start : start + _GRID_CHUNK] = np.percentile(
            boot, [tail, 100.0 - tail], axis=0
        )
    return point.reshape(rest), lo.reshape(rest), hi.reshape(rest)


def group_runs(
    configs: Sequence[Mapping[str, Any] | None], *, by: Sequence[str] | None = None
) -> list[list[int]]:
    """Group runs that repeat one experiment.

    By default, runs whose configs are equal except for ``seed`` and the step budget
    (``steps``, and ``log_interval`` derived from it) form a group. With ``by``, runs are
    grouped by those keys only (``by=("algo", "env")`` puts every run of an algorithm on an
    environment together, whatever its hyperparameters). A run without a config (``None``)
    cannot be matched and forms its own group.

    Args:
        configs: each run's config, in order.
        by: the keys that define a group; None: all but the seed and the budget.

    Returns:
        Groups of run indices, in order of each group's first run.

    >>> group_runs([{"algo": "ppo", "seed": 0}, {"algo": "a2c", "seed": 0},
    ...             {"algo": "ppo", "seed": 1, "steps": 2000}, None])
    [[0, 2], [1], [3]]
    """
    groups: dict[str, list[int]] = {}
    for i, config in enumerate(configs):
        if config is None:
            key = f"\0run {i}"  # cannot collide with JSON text, which never holds a NUL
        else:
            if by is None:
                rest = {k: v for k, v in config.items() if k not in _REPEAT_KEYS}
            else:
                rest = {k: config.get(k) for k in by}
            key = json.dumps(rest, sort_keys=True, default=str)
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def common_grid(
    steps: Sequence[np.ndarray], values: Sequence[np.ndarray], *, unit: str = "environment steps"
) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate several curves linearly onto one grid of steps over their common range.

    The grid is every step any curve was logged at within the overlap [max of the first
    steps, min of the last steps], thinned to evenly spaced points if there are too many.
    Restricting to the overlap avoids extrapolating a seed that stopped early.

    Args:
        steps: per curve, increasing environment steps.
        values: per curve, the metric at those steps.
        unit: what the steps count, for the error message ("seconds" for time on x).

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
            f"The runs share no range of {unit} (latest start {lo:g}, earliest "
            f"end {hi:g}); plot them separately."
        )
    all_steps = np.unique(np.concatenate([np.asarray(s, dtype=np.float64) for s in steps]))
    grid = all_steps[(all_steps >= lo) & (all_steps <= hi)]
    if len(grid) > _MAX_GRID_POINTS:
        grid = np.linspace(lo, hi, _MAX_GRID_POINTS)
    curves = np.stack([np.interp(grid, s, v) for s, v in zip(steps, values, strict=True)])
    return grid, curves


def evaluation_grid(
    steps: Sequence[np.ndarray], values: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Align evaluation points of several seeds that evaluated at slightly different steps.

    Seeds evaluate "every N steps" at the first update boundary past each multiple of N, so
    seed 0 may evaluate at 2,536 and seed 1 at 2,520. When every seed evaluated the same
    number of times, the k-th evaluations are one point: its x is the mean of the seeds' k-th
    steps, and each seed contributes its own k-th value. Otherwise the curves are
    interpolated onto :func:`common_grid`.

    Args:
        steps: per seed, increasing steps (or seconds) of its evaluations.
        values: per seed, the evaluation returns there.

    Returns:
        ``(grid, curves)`` with shapes (G,) and (n, G).

    >>> grid, curves = evaluation_grid([np.array([2536.0, 5040.0]), np.array([2520.0, 5008.0])],
    ...                                [np.array([10.0, 50.0]), np.array([12.0, 40.0])])
    >>> grid.tolist(), curves.tolist()
    ([2528.0, 5024.0], [[10.0, 50.0], [12.0, 40.0]])
    """
    counts = {len(s) for s in steps}
    if len(counts) == 1:
        grid = np.mean(np.stack([np.asarray(s, dtype=np.float64) for s in steps]), axis=0)
        return grid, np.stack([np.asarray(v, dtype=np.float64) for v in values])
    return common_grid(steps, values)


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


def expand_runs(paths: Sequence[str | Path]) -> list[Path]:
    """Replace each group directory among ``paths`` by the run directories inside it.

    A group directory (``pgrl train ALGO --seeds 0 1 2`` writes one) holds no
    ``metrics.csv`` itself but sub-directories that do, such as ``seed-0/``; they are taken in
    the order of the numbers in their names. Any other path is kept as it is.
    """
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir() and not (path / METRICS_FILE).exists():
            members = [p for p in path.iterdir() if p.is_dir() and (p / METRICS_FILE).is_file()]
            if members:
                out.extend(sorted(members, key=_natural_key))
                continue
        out.append(path)
    return out


def _natural_key(path: Path) -> list[Any]:
    """Sort key that puts seed-2 before seed-10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _finite_curve(run: Run, metric: str, x: str = "env_steps") -> tuple[np.ndarray, np.ndarray]:
    """The (x, values) of a run's metric, sorted by x, without nan or inf rows.

    Rows without the metric are common: the episode return is nan until an episode ends, and
    eval columns are empty between evaluations.
    """
    xs, values = run.metrics[x], run.metrics[metric]
    keep = np.isfinite(xs) & np.isfinite(values)
    order = np.argsort(xs[keep], kind="stable")
    return xs[keep][order], values[keep][order]


def column_label(name: str) -> str:
    """The axis label of a ``metrics.csv`` column, in words (:data:`COLUMN_LABELS`).

    >>> column_label("eval_return_mean"), column_label("my_metric")
    ('evaluation return (deterministic policy, mean over episodes)', 'my metric')
    """
    return COLUMN_LABELS.get(name, name.replace("_", " "))


def _base_label(config: Mapping[str, Any] | None, name: str, with_env: bool) -> str:
    config = config or {}
    keys = ("algo", "env") if with_env else ("algo",)
    parts = [str(config[k]) for k in keys if k in config]
    return " ".join(parts) if parts else name


def _hyperparameters(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The hyperparameters of a run: config.json's ``config`` entry, flattened to text."""
    inner = (config or {}).get("config")
    if not isinstance(inner, Mapping):
        return {}
    return {str(k): json.dumps(v, sort_keys=True, default=str) for k, v in inner.items()}


def _distinguishing(configs: Sequence[Mapping[str, Any] | None]) -> list[str]:
    """For groups that share an algorithm and environment, the hyperparameters that differ
    between them, as ``name=value`` text; empty for a group that needs no such suffix."""
    out = [""] * len(configs)
    by_base: dict[str, list[int]] = {}
    for i, config in enumerate(configs):
        base = json.dumps([(config or {}).get("algo"), (config or {}).get("env")], default=str)
        by_base.setdefault(base, []).append(i)
    for members in by_base.values():
        if len(members) < 2:
            continue
        params = [_hyperparameters(configs[i]) for i in members]
        names = sorted(set().union(*params))
        differing = [n for n in names if len({p.get(n) for p in params}) > 1]
        for i, p in zip(members, params, strict=True):
            out[i] = ", ".join(f"{n}={json.loads(p[n]) if n in p else '-'}" for n in differing)
    return out


def _seed_count_text(runs: Sequence[Run]) -> str:
    """``n=3 seeds``; says runs when seeds repeat or are unknown."""
    seeds = [(r.config or {}).get("seed") for r in runs]
    distinct = None not in seeds and len({json.dumps(s, default=str) for s in seeds}) == len(runs)
    return f"n={len(runs)} {'seeds' if distinct else 'runs'}"


def statistic_text(statistic: str, confidence: float = 0.95) -> str:
    """What a band shows, for a legend: ``IQM, 95% stratified bootstrap CI``.

    >>> statistic_text("iqm")
    'IQM, 95% stratified bootstrap CI'
    """
    return f"{STATISTIC_NAMES[statistic]}, {confidence:.0%} stratified bootstrap CI"


def learning_curve_figure(
    run_dirs: Sequence[str | Path],
    *,
    metric: str = "episode_return_mean",
    title: str | None = None,
    x: str = "steps",
    per_seed: bool = False,
    compare: bool = False,
    statistic: str = "iqm",
    reps: int = 2000,
    seed: int = 0,
) -> Figure:
    """Build the learning-curve figure that :func:`plot_runs` saves; see there."""
    if x not in X_COLUMNS:
        raise PgrlError(f"x must be one of {', '.join(X_COLUMNS)}; got {x!r}")
    _statistic(statistic)
    x_column = X_COLUMNS[x]
    paths = expand_runs(run_dirs)
    if not paths:
        raise PgrlError("No runs to plot; pass one or more run directories.")
    runs = [load_run(path) for path in paths]
    for path, run in zip(paths, runs, strict=True):
        if metric not in run.metrics:
            available = ", ".join(k for k in run.metrics if k not in ("env_steps", "time_s"))
            raise PgrlError(
                f"Metric {metric!r} is not in the metrics of {path}; available: "
                f"{available or '(none)'}."
            )
        if x_column not in run.metrics:
            raise PgrlError(f"The metrics of {path} have no {x_column} column.")
        if not np.isfinite(run.metrics[metric]).any():
            raise PgrlError(f"Run {path} has no finite value of {metric!r} to plot.")

    groups = [
        [runs[i] for i in indices]
        for indices in group_runs(
            [run.config for run in runs], by=("algo", "env") if compare else None
        )
    ]
    envs: list[Any] = []
    for group in groups:
        env = (group[0].config or {}).get("env")
        if env not in envs:
            envs.append(env)
    suffixes = [""] * len(groups) if compare else _distinguishing([g[0].config for g in groups])

    # A figure that no pyplot state knows about, on the Agg canvas: the caller's matplotlib
    # backend and open figures stay untouched.
    columns = min(len(envs), 3)
    rows = math.ceil(len(envs) / columns)
    fig = Figure(figsize=(8 if columns == 1 else 5.5 * columns, 5 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(rows, columns, k + 1) for k in range(len(envs))]
    # colours by algorithm label, so an algorithm keeps its colour in every panel
    colours: dict[str, Any] = {}
    palette = [f"C{k}" for k in range(10)]
    show_eval = metric != EVAL_METRIC
    eval_drawn = False
    seeds_drawn = False
    for group, suffix in zip(groups, suffixes, strict=True):
        ax = axes[envs.index((group[0].config or {}).get("env"))]
        label = _base_label(group[0].config, group[0].name, with_env=not compare)
        if suffix:
            label += f" ({suffix})"
        colour = colours.setdefault(label, palette[len(colours) % len(palette)])
        curves = [_finite_curve(run, metric, x_column) for run in group]
        if len(group) == 1:
            config = group[0].config or {}
            if "seed" in config:
                label += f", seed {config['seed']}"
            ax.plot(*curves[0], label=label, color=colour)
        else:
            # evaluations are sparse: the seeds' k-th evaluations are one point
            xs, ys = zip(*curves, strict=True)
            if metric.startswith("eval_"):
                grid, values = evaluation_grid(xs, ys)
            else:
                grid, values = common_grid(xs, ys, unit=column_label(x_column))
            center, lo, hi = stratified_bootstrap_ci(
                values[:, None, :], statistic, reps=reps, seed=seed
            )
            text = f"{statistic_text(statistic)}, {_seed_count_text(group)}"
            ax.plot(grid, center, label=f"{label}: {text}", color=colour, linewidth=2)
            ax.fill_between(grid, lo, hi, color=colour, alpha=0.2, linewidth=0)
            if per_seed:
                seeds_drawn = True
                for xs, ys in curves:
                    ax.plot(xs, ys, color=colour, alpha=0.35, linewidth=0.8)
        if show_eval:
            eval_drawn |= _draw_eval_points(ax, group, colour, x_column, statistic)
    for ax, env in zip(axes, envs, strict=True):
        ax.set_xlabel(column_label(x_column))
        if x_column == "env_steps":  # 100,000 rather than 100000 or 1e5
            ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
        ax.set_ylabel(column_label(metric))
        panel_title = title if title is not None and len(envs) == 1 else env
        if panel_title:
            ax.set_title(str(panel_title))
        ax.grid(True, alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        if seeds_drawn:
            handles.append(Line2D([], [], color="0.4", alpha=0.5, linewidth=0.8))
            labels.append("single seeds")
        if eval_drawn:
            handles.append(Line2D([], [], color="0.4", marker="o", linestyle="none", markersize=4))
            labels.append(
                f"evaluation return (points; {STATISTIC_NAMES[statistic]} over a group's seeds)"
            )
        ax.legend(handles, labels, loc="best", fontsize="small")
    if title is not None and len(envs) > 1:
        fig.suptitle(title)
    return fig


def _draw_eval_points(
    ax: Any, group: Sequence[Run], colour: Any, x_column: str, statistic: str
) -> bool:
    """Mark the evaluation return of a group (its statistic over seeds, each seed's k-th
    evaluation aligned by :func:`evaluation_grid`); True when something was drawn."""
    curves = [
        _finite_curve(run, EVAL_METRIC, x_column) for run in group if EVAL_METRIC in run.metrics
    ]
    if len(curves) < len(group) or any(len(xs) == 0 for xs, _ in curves):
        return False
    try:
        grid, values = evaluation_grid(*zip(*curves, strict=True))
    except PgrlError:
        return False
    ax.plot(
        grid,
        _STATISTICS[statistic](values, 0),
        linestyle="none",
        marker="o",
        markersize=4,
        color=colour,
    )
    return True


def plot_runs(
    run_dirs: Sequence[str | Path],
    out: str | Path,
    *,
    metric: str = "episode_return_mean",
    title: str | None = None,
    x: str = "steps",
    per_seed: bool = False,
    compare: bool = False,
    statistic: str = "iqm",
    reps: int = 2000,
    seed: int = 0,
) -> Path:
    """Plot a metric of one or more runs and save the figure.

    Runs whose ``config.json`` agree on everything but ``seed`` and the step budget form a
    group. A group is drawn as the interquartile mean over its seeds (``statistic``) on a
    common grid restricted to the range every seed reached, with a shaded 95% interval from
    a stratified bootstrap over the seeds (:func:`stratified_bootstrap_ci`); the legend says
    so and gives the number of seeds. A group of one run is drawn as its own line. Where
    runs logged ``eval_return_mean``, the evaluation returns are marked as points in the
    same colour, the seeds' k-th evaluations aligned (:func:`evaluation_grid`). Runs on
    several environments get one panel each.

    Args:
        run_dirs: run directories, group directories (their ``seed-*`` runs), or paths of
            ``metrics.csv`` files.
        out: the image file to write (PNG unless the suffix names another format, e.g.
            ``.pdf`` or ``.svg`` for a paper); parent directories are created.
        metric: the column of ``metrics.csv`` to plot.
        title: the figure title; by default the environment, when all runs share one.
        x: ``"steps"`` (environment steps) or ``"seconds"`` (wall-clock time of the run).
        per_seed: also draw each seed's own curve, thin, in its group's colour.
        compare: group by algorithm and environment only, whatever the hyperparameters, and
            label curves by algorithm: one curve per algorithm in each environment's panel.
        statistic: ``"iqm"`` (default), ``"mean"`` or ``"median"`` over seeds.
        reps: bootstrap resamples of the interval.
        seed: seed of the bootstrap, so that the same runs give the same figure.

    Returns:
        The path written.

    Raises:
        PgrlError: no runs are given, a ``metrics.csv`` is missing, the metric is not in a run
            (the message lists the available ones), or a group of seeds shares no step range.
    """
    fig = learning_curve_figure(
        run_dirs,
        metric=metric,
        title=title,
        x=x,
        per_seed=per_seed,
        compare=compare,
        statistic=statistic,
        reps=reps,
        seed=seed,
    )
    return _save(fig, out)


SCORE_RANGES: dict[str, tuple[float, float]] = {
    # +1 per step until the pole falls; Gymnasium truncates the episode at 500 steps.
    "CartPole-v1": (0.0, 500.0),
    # −1 per step until the tip swings up; truncated at 500 steps, so −500 is a policy that
    # never succeeds; 0 is unreachable (the best policies take about 60 steps).
    "Acrobot-v1": (-500.0, 0.0),
    # a chosen reference, not a bound: the cost per step is at most π² + 0.1·8² + 0.001·2²
    # ≈ 16.27 over 200 steps (≈ −3,254); −1,600 is the floor chosen in issue 14, below
    # which a return is clipped to 0.
    "Pendulum-v1": (-1600.0, 0.0),
    # −0.1·a² per step over at most 999 steps (≥ −99.9 with |a| ≤ 1), +100 at the goal.
    "MountainCarContinuous-v0": (-100.0, 100.0),
}
"""Known score ranges (lowest, highest return) per environment, for normalizing final scores
to [0, 1] in :func:`aggregate_scores`; ``docs/results.md`` gives the sources. An environment
not listed is normalized by the least and greatest final score over all runs on it."""

AGGREGATE_STATISTICS: tuple[Statistic, ...] = ("iqm", "median", "mean")
"""The aggregates :func:`aggregate_figure` draws, in rliable's order of preference."""


@dataclass(frozen=True)
class AggregateScores:
    """Final scores of runs, per algorithm group and environment, raw and normalized."""

    groups: tuple[str, ...]
    """algorithm groups (the ``algo`` of config.json), in order of first appearance"""
    envs: tuple[str, ...]
    """environments, in order of first appearance"""
    raw: dict[str, dict[str, np.ndarray]]
    """group → environment → final score of each run, shape (R,)"""
    normalized: dict[str, dict[str, np.ndarray]]
    """the same, (score − low) / (high − low), clipped to [0, 1]"""
    ranges: dict[str, tuple[float, float]]
    """environment → the (low, high) used to normalize it"""
    ranges_from_runs: tuple[str, ...]
    """environments without a known range, normalized by the min and max over their runs"""
    metric: str
    """the metrics.csv column the scores were read from"""
    fallback_runs: int
    """runs with no finite value of that column, scored by their final training return"""
    clipped: int
    """normalized scores that fell outside [0, 1] and were clipped to it"""

    def matrix(self, group: str) -> np.ndarray:
        """The normalized scores of ``group`` as a (runs R, environments T) array, the
        environments in the order of :attr:`envs`.

        Raises:
            PgrlError: the group has a different number of runs on different environments;
                the stratified bootstrap draws the same number of runs in every environment,
                as rliable's score matrices do.
        """
        per_env = self.normalized[group]
        counts = {env: len(values) for env, values in per_env.items()}
        if len(set(counts.values())) > 1:
            listed = ", ".join(f"{n} on {env}" for env, n in counts.items())
            raise PgrlError(
                f"{group} has {listed}; the stratified bootstrap needs the same number of "
                "runs (seeds) on each environment. Run the missing seeds or leave extra "
                "ones out."
            )
        return np.stack([per_env[env] for env in self.envs if env in per_env], axis=1)


def _final_score(run: Run, metric: str) -> tuple[float, bool] | None:
    """The last finite value of ``metric`` in a run, or of the training return when the run
    has no evaluation (the bool says so); None when neither is there."""
    candidates = [metric]
    if metric == EVAL_METRIC:
        candidates.append("episode_return_mean")
    for k, column in enumerate(candidates):
        if column in run.metrics:
            _, values = _finite_curve(run, column)
            if len(values):
                return float(values[-1]), k > 0
    return None


def aggregate_scores(
    runs: Sequence[str | Path | Run],
    metric: str = EVAL_METRIC,
    normalize: Mapping[str, tuple[float, float]] | None = None,
) -> AggregateScores:
    """Final score of every run, grouped by algorithm and environment, normalized to [0, 1].

    A run's score is the last finite value of ``metric`` (by default its final evaluation
    return; a run that never evaluated is scored by its final training return,
    ``episode_return_mean``). Per environment, score s becomes (s − low) / (high − low),
    clipped to [0, 1], with (low, high) from ``normalize``, or, for an environment it does
    not list, the least and greatest score over all runs on that environment (every
    algorithm's). This is the normalization of Agarwal et al. 2021 (section 2, "normalized
    scores") with a chosen range in place of random and human scores.

    Args:
        runs: run directories, group directories (their ``seed-*`` runs), ``metrics.csv``
            paths, or :class:`Run` objects. Each needs a config.json naming ``algo``
            and ``env``.
        metric: the metrics.csv column to score.
        normalize: environment id → (low, high); None: :data:`SCORE_RANGES`. Pass
            ``{**SCORE_RANGES, "MyEnv-v0": (0, 1)}`` to extend the table, ``{}`` to
            normalize every environment by its runs.

    Returns:
        The scores, raw and normalized, with the ranges used.

    >>> run = Run("r", {"algo": "ppo", "env": "CartPole-v1", "seed": 0},
    ...           {"env_steps": np.array([1e3, 2e3]), "eval_return_mean": np.array([50.0, 400.0])})
    >>> aggregate_scores([run]).normalized["ppo"]["CartPole-v1"].tolist()  # 400 / 500
    [0.8]

    Raises:
        PgrlError: no runs, a run without config, algorithm, environment or score, a known
            range with low ≥ high, or an environment whose runs all scored the same (its
            range is then unknown: pass one).
    """
    table = SCORE_RANGES if normalize is None else normalize
    loaded: list[Run] = []
    for r in runs:
        if isinstance(r, Run):
            loaded.append(r)
        else:
            loaded.extend(load_run(path) for path in expand_runs([r]))
    if not loaded:
        raise PgrlError("No runs to aggregate; pass one or more run directories.")

    raw: dict[str, dict[str, list[float]]] = {}
    envs: list[str] = []
    fallback = 0
    for run in loaded:
        config = run.config or {}
        if "algo" not in config or "env" not in config:
            raise PgrlError(
                f"Run {run.name} has no config.json with its algorithm and environment; "
                "aggregating across environments needs both."
            )
        algo, env = str(config["algo"]), str(config["env"])
        score = _final_score(run, metric)
        if score is None:
            raise PgrlError(f"Run {run.name} has no finite value of {metric!r} to score.")
        fallback += score[1]
        raw.setdefault(algo, {}).setdefault(env, []).append(score[0])
        if env not in envs:
            envs.append(env)

    ranges: dict[str, tuple[float, float]] = {}
    from_runs: list[str] = []
    for env in envs:
        if env in table:
            low, high = (float(v) for v in table[env])
            if not low < high:
                raise PgrlError(f"The score range of {env} must have low < high; got {table[env]}.")
        else:
            scores = [s for per_env in raw.values() for s in per_env.get(env, [])]
            low, high = min(scores), max(scores)
            if not low < high:
                raise PgrlError(
                    f"Every run on {env} scored {low:g} and its score range is unknown, so "
                    f"it cannot be normalized; pass normalize={{..., {env!r}: (low, high)}}."
                )
            from_runs.append(env)
        ranges[env] = (low, high)

    normalized: dict[str, dict[str, np.ndarray]] = {}
    clipped = 0
    for algo, per_env in raw.items():
        for env, scores in per_env.items():
            low, high = ranges[env]
            values = (np.asarray(scores) - low) / (high - low)
            clipped += int(((values < 0.0) | (values > 1.0)).sum())
            normalized.setdefault(algo, {})[env] = np.clip(values, 0.0, 1.0)
    return AggregateScores(
        groups=tuple(raw),
        envs=tuple(envs),
        raw={a: {e: np.asarray(s) for e, s in pe.items()} for a, pe in raw.items()},
        normalized=normalized,
        ranges=ranges,
        ranges_from_runs=tuple(from_runs),
        metric=metric,
        fallback_runs=fallback,
        clipped=clipped,
    )


def aggregate_intervals(
    scores: AggregateScores, *, reps: int = 2000, seed: int = 0
) -> dict[str, dict[str, tuple[float, float, float]]]:
    """IQM, median and mean of each group's normalized scores over all its runs and
    environments, with 95% stratified bootstrap intervals (strata: the environments).

    Returns:
        group → statistic → ``(point, lo, hi)``, from :func:`stratified_bootstrap_ci` on the
        group's (R, T) score matrix (:meth:`AggregateScores.matrix`).
    """
    out: dict[str, dict[str, tuple[float, float, float]]] = {}
    for group in scores.groups:
        matrix = scores.matrix(group)
        out[group] = {}
        for stat in AGGREGATE_STATISTICS:
            point, lo, hi = stratified_bootstrap_ci(matrix, stat, reps=reps, seed=seed)
            out[group][stat] = (float(point), float(lo), float(hi))
    return out


def performance_profile(
    scores: AggregateScores,
    taus: np.ndarray | None = None,
    *,
    reps: int = 2000,
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Run-score performance profile: the fraction of runs with normalized score > τ.

    F(τ) = (1 / RT) Σ_{r,t} 1[x_{r,t} > τ] over a group's R runs on T environments (Agarwal
    et al. 2021, section 4.1, eq. 1), non-increasing in τ. The band is the 95% stratified
    bootstrap interval of F(τ): the mean of the indicators under
    :func:`stratified_bootstrap_ci`, one draw of runs serving every τ.

    Args:
        scores: from :func:`aggregate_scores`.
        taus: thresholds; default 101 points from 0 to 1.

    Returns:
        ``(taus, {group: (fraction, lo, hi)})``, each array of shape (len(taus),).
    """
    taus = np.linspace(0.0, 1.0, 101) if taus is None else np.asarray(taus, dtype=np.float64)
    out: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for group in scores.groups:
        above = (scores.matrix(group)[:, :, None] > taus).astype(np.float64)  # (R, T, τ)
        out[group] = stratified_bootstrap_ci(above, "mean", reps=reps, seed=seed)
    return taus, out


def _score_text(scores: AggregateScores) -> str:
    """What a score is and how it was normalized, in words, for the figure's footer."""
    what = (
        "score: each run's final evaluation return"
        if scores.metric == EVAL_METRIC
        else f"score: each run's final {column_label(scores.metric)}"
    )
    if scores.fallback_runs:
        what += f" (final training return for {scores.fallback_runs} run(s) without evaluations)"
    known = [e for e in scores.envs if e not in scores.ranges_from_runs]
    parts = [f"{e} [{scores.ranges[e][0]:g}, {scores.ranges[e][1]:g}]" for e in known]
    parts += [
        f"{e} [{scores.ranges[e][0]:g}, {scores.ranges[e][1]:g}] = min and max over its runs "
        "(no known range)"
        for e in scores.ranges_from_runs
    ]
    text = f"{what}; normalized to [0, 1] by (score − low) / (high − low): {'; '.join(parts)}"
    if scores.clipped:
        text += f"; {scores.clipped} score(s) outside the range clipped to it"
    return text


def aggregate_figure(
    scores: AggregateScores,
    out: str | Path | None = None,
    *,
    title: str | None = None,
    reps: int = 2000,
    seed: int = 0,
) -> Figure:
    """rliable-style figure across environments: aggregate intervals and a performance profile.

    Top row: per algorithm group, the IQM, median and mean of its normalized scores over all
    runs and environments, each a bar spanning the 95% stratified bootstrap interval (strata:
    the environments) with a tick at the point estimate (:func:`aggregate_intervals`).
    Bottom: the performance profile, the fraction of runs scoring above τ for τ in [0, 1],
    with its 95% band (:func:`performance_profile`). The legend gives each group's runs and
    environments; the footer says how scores were normalized, and which environments were
    normalized by their own runs.

    Args:
        scores: from :func:`aggregate_scores`.
        out: if given, the image file to write (parent directories are created).
        title: the figure title.
        reps: bootstrap resamples.
        seed: seed of the bootstrap.

    Returns:
        The figure.
    """
    intervals = aggregate_intervals(scores, reps=reps, seed=seed)
    taus, profiles = performance_profile(scores, reps=reps, seed=seed)
    fig = Figure(figsize=(13, 8), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, len(AGGREGATE_STATISTICS), height_ratios=(1, 1.4))
    colours = {g: f"C{k % 10}" for k, g in enumerate(scores.groups)}
    labels = {}
    for group in scores.groups:
        runs = sum(len(v) for v in scores.normalized[group].values())
        n_envs = len(scores.normalized[group])
        labels[group] = f"{group}: n={runs} runs on {n_envs} environment{'s' * (n_envs != 1)}"
    positions = np.arange(len(scores.groups))[::-1]  # first group on top
    for k, stat in enumerate(AGGREGATE_STATISTICS):
        ax = fig.add_subplot(grid[0, k])
        for y, group in zip(positions, scores.groups, strict=True):
            point, low, high = intervals[group][stat]
            # a zero-width interval still shows as a thin bar
            width = max(high - low, 0.005)
            ax.barh(y, width, left=low, height=0.6, color=colours[group], alpha=0.7)
            ax.vlines(point, y - 0.3, y + 0.3, color="black", linewidth=2)
        ax.set_yticks(positions, scores.groups if k == 0 else [""] * len(scores.groups))
        ax.set_xlim(-0.02, 1.02)
        ax.set_title(STATISTIC_NAMES[stat])
        ax.set_xlabel("normalized score")
        ax.grid(True, axis="x", alpha=0.3)
    ax = fig.add_subplot(grid[1, :])
    for group in scores.groups:
        fraction, lo, hi = profiles[group]
        # F(τ) counts scores strictly above τ: it drops at each score and holds until the next
        ax.plot(
            taus,
            fraction,
            color=colours[group],
            linewidth=2,
            label=labels[group],
            drawstyle="steps-post",
        )
        ax.fill_between(taus, lo, hi, color=colours[group], alpha=0.2, linewidth=0, step="post")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("normalized score τ")
    ax.set_ylabel("fraction of runs with score > τ")
    ax.set_title("performance profile (bands: 95% stratified bootstrap CI)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.suptitle(
        title
        or f"Across {len(scores.envs)} environment{'s' * (len(scores.envs) != 1)}: bars are 95% stratified bootstrap CIs "
        "(strata: environments), ticks the point estimates"
    )
    fig.supxlabel(_score_text(scores), fontsize="small", wrap=True)
    if out is not None:
        _save(fig, out)
    return fig


def plot_aggregate(
    run_dirs: Sequence[str | Path],
    out: str | Path,
    *,
    metric: str = EVAL_METRIC,
    normalize: Mapping[str, tuple[float, float]] | None = None,
    title: str | None = None,
    reps: int = 2000,
    seed: int = 0,
) -> Path:
    """Score runs across environments and save the aggregate figure.

    :func:`aggregate_scores` then :func:`aggregate_figure`; see there. ``pgrl plot RUN...
    --aggregate`` calls this.

    Returns:
        The path written.
    """
    aggregate_figure(
        aggregate_scores(run_dirs, metric, normalize), out, title=title, reps=reps, seed=seed
    )
    return Path(out)


def _save(fig: Figure, out: str | Path) -> Path:
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=150)
    except (OSError, ValueError) as exc:  # ValueError: a suffix matplotlib cannot write
        raise PgrlError(f"Cannot write the plot to {out}: {exc}") from exc
    return out

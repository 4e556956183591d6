"""Many seeds of one experiment in one command: parallel runs into one group directory.

:func:`train_seeds` trains the same algorithm, environment, budget and config once per seed,
each seed in its own process (at most one per core, one torch thread each), into

    GROUP/
      seed-0/        a normal run directory (config.json, metrics.csv, model, checkpoints)
      seed-1/
      ...
      group.json     per-seed figures and their aggregate
      learning-curve.png

It prints one line per seed as each finishes, then the aggregate: the interquartile mean
(IQM) of the seeds' final evaluation returns with a 95% stratified bootstrap interval
(:func:`pgrl.plot.stratified_bootstrap_ci`). ``pgrl plot GROUP`` draws the group again.
``pgrl train ALGO --env ID --seeds 0 1 2`` is this function.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import pickle
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from pgrl.errors import ConfigError, PgrlError
from pgrl.rundir import write_text_atomically

GROUP_FILE = "group.json"
"""Name of the group's summary inside a group directory."""

FIGURE_FILE = "learning-curve.png"
"""Name of the group's figure inside a group directory."""


@dataclass(frozen=True)
class SeedResult:
    """The figures of one seed's run (``agent.summary()``), or the error that stopped it."""

    seed: int
    """the run's seed"""
    run_dir: Path
    """``GROUP/seed-<seed>``"""
    env_steps: int = 0
    """environment steps taken"""
    train_seconds: float = math.nan
    """training wall time, evaluation left out"""
    eval_return_mean: float | None = None
    """mean return of the final deterministic evaluation; None without one"""
    eval_return_std: float | None = None
    """standard deviation of those returns over the evaluation episodes"""
    eval_episodes: int | None = None
    """episodes of the final evaluation"""
    error: str | None = None
    """one line saying why the run failed; None when it finished"""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``run_dir`` relative to the group directory."""
        return {
            "seed": self.seed,
            "run_dir": self.run_dir.name,
            "env_steps": self.env_steps,
            "train_seconds": None if math.isnan(self.train_seconds) else self.train_seconds,
            "eval_return_mean": self.eval_return_mean,
            "eval_return_std": self.eval_return_std,
            "eval_episodes": self.eval_episodes,
            "error": self.error,
        }

    def line(self) -> str:
        """One line for the terminal, e.g. ``seed 1: evaluation return 500.0 (std 0.0 over
        10 episodes), 100,000 steps in 41.3 s -> runs/g/seed-1``."""
        if self.error is not None:
            return f"seed {self.seed}: failed: {self.error}"
        if self.eval_return_mean is None:
            result = "no final evaluation"
        else:
            result = (
                f"evaluation return {self.eval_return_mean:.1f} (std {self.eval_return_std:.1f} "
                f"over {self.eval_episodes} episodes)"
            )
        return (
            f"seed {self.seed}: {result}, {self.env_steps:,} steps in "
            f"{self.train_seconds:.1f} s -> {self.run_dir}"
        )


@dataclass(frozen=True)
class GroupResult:
    """The runs of :func:`train_seeds` and the aggregate of their final evaluations."""

    group_dir: Path
    """the group directory"""
    algo: str
    """the algorithm's name"""
    env: str
    """the environment's name"""
    runs: tuple[SeedResult, ...]
    """one result per seed, in the order the seeds were given"""
    statistic: str
    """the aggregate over seeds: ``"iqm"``"""
    eval_return: float | None
    """the statistic of the seeds' final evaluation returns; None without evaluations"""
    eval_return_ci: tuple[float, float] | None
    """its 95% stratified bootstrap interval"""
    figure: Path | None
    """the learning-curve figure, or None when the runs were too short to draw one"""

    @property
    def seeds(self) -> list[int]:
        """The seeds, in order."""
        return [run.seed for run in self.runs]

    @property
    def failed(self) -> list[SeedResult]:
        """The runs that stopped with an error."""
        return [run for run in self.runs if run.error is not None]

    def to_dict(self) -> dict[str, Any]:
        """The contents of ``group.json`` (and of ``pgrl train --seeds ... --json``)."""
        ci = self.eval_return_ci
        return {
            "algo": self.algo,
            "env": self.env,
            "group_dir": str(self.group_dir),
            "seeds": self.seeds,
            "runs": [run.to_dict() for run in self.runs],
            "aggregate": {
                "metric": "final evaluation return (mean over each seed's episodes)",
                "statistic": self.statistic,
                "eval_return": self.eval_return,
                "ci_low": None if ci is None else ci[0],
                "ci_high": None if ci is None else ci[1],
                "interval": "95% stratified bootstrap (percentile) over seeds",
                "seeds_aggregated": sum(run.eval_return_mean is not None for run in self.runs),
            },
            "figure": None if self.figure is None else self.figure.name,
        }

    def line(self) -> str:
        """The aggregate as one line for the terminal."""
        done = [run for run in self.runs if run.eval_return_mean is not None]
        head = f"{self.algo} on {self.env}, {len(done)} of {len(self.runs)} seeds"
        if self.eval_return is None or self.eval_return_ci is None:
            return f"{head}: no final evaluation to aggregate"
        lo, hi = self.eval_return_ci
        return (
            f"{head}: final evaluation return {self.statistic.upper()} {self.eval_return:.1f}, "
            f"95% stratified bootstrap CI [{lo:.1f}, {hi:.1f}]"
        )


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the system tells it)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # macOS, Windows
        return max(os.cpu_count() or 1, 1)


def default_group_dir(algo: str, env_name: str, root: str | Path = "runs") -> Path:
    """``runs/<algo>-<env>-seeds-<time>`` (characters a path cannot hold become ``_``)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in env_name)
    return Path(root) / f"{algo}-{safe}-seeds-{stamp}"


def train_seeds(
    algo: str,
    env: Any,
    seeds: Sequence[int],
    *,
    steps: int | None = None,
    config: Mapping[str, Any] | None = None,
    group_dir: str | Path | None = None,
    processes: int | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    wrappers: Sequence[Callable[[Any], Any]] | None = None,
    device: str = "cpu",
    eval_episodes: int = 10,
    eval_every: int = 0,
    checkpoint_every: int | None = None,
    vectorization: str = "auto",
    overwrite: bool = False,
    plot: bool = True,
    stream: TextIO | None = None,
    **train_kwargs: Any,
) -> GroupResult:
    """Train ``algo`` on ``env`` once per seed, in parallel processes, into one group.

    Each seed runs :func:`pgrl.train` with ``run_dir=GROUP/seed-<seed>`` and one torch
    thread, in a process of its own (the ``spawn`` start method: no state is shared with the
    caller); ``processes=1`` runs the seeds one after the other in this process. A seed that
    fails does not stop the others: its line says why, ``group.json`` records the error, and
    :class:`PgrlError` is raised at the end.

    Args:
        algo: a name from :data:`pgrl.ALGORITHMS`.
        env: what :func:`pgrl.train` takes; with more than one process it must pickle (an id
            such as ``"CartPole-v1"`` or ``"module:EnvId"``, a class defined in a module).
        seeds: distinct seeds, each an integer >= 0.
        steps: environment steps per seed; None uses the preset's budget.
        config: hyperparameter overrides, as :func:`pgrl.train` takes them.
        group_dir: the group directory; default ``runs/<algo>-<env>-seeds-<time>``.
        processes: processes at once; default the number of seeds, at most the cores this
            process may use.
        env_kwargs, wrappers, device, eval_episodes, eval_every, checkpoint_every,
            vectorization: passed to :func:`pgrl.train` for every seed.
        overwrite: replace runs already in ``GROUP/seed-<seed>`` (otherwise an error, before
            any training starts).
        plot: draw ``GROUP/learning-curve.png`` (:func:`pgrl.plot.plot_runs`).
        stream: where the per-seed lines and the aggregate go; ``sys.stdout`` by default.
        **train_kwargs: more keyword arguments of :func:`pgrl.train` for every seed (e.g.
            ``log_interval``); they must pickle when ``processes > 1``.

    Returns:
        The :class:`GroupResult`; ``group.json`` holds its :meth:`GroupResult.to_dict`.

    Raises:
        ConfigError: bad seeds or processes, an environment that cannot go to another
            process, or a seed directory that already holds something.
        PgrlError: one or more seeds failed (after every seed has run and ``group.json`` is
            written).
    """
    import inspect

    from pgrl.algos import get_spec
    from pgrl.train import check_seed, resolve_config, train

    spec = get_spec(algo)
    seeds = list(seeds)
    if not seeds:
        raise ConfigError("seeds must name at least one seed")
    for seed in seeds:
        check_seed(seed)
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct, got {seeds}")
    if processes is None:
        processes = min(len(seeds), available_cores())
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ConfigError(f"processes must be an integer >= 1, got {processes!r}")
    processes = min(processes, len(seeds))
    clash = sorted(set(train_kwargs) & {"seed", "run_dir", "save", "threads", "progress"})
    if clash:
        raise ConfigError(f"train_seeds sets {', '.join(clash)} of each run itself")
    unknown = sorted(set(train_kwargs) - set(inspect.signature(train).parameters))
    if unknown:
        raise ConfigError(f"pgrl.train takes no argument {', '.join(unknown)}")
    env_name = env if isinstance(env, str) else getattr(env, "__name__", type(env).__name__)
    if isinstance(env, str):
        # a bad hyperparameter is one error here, not one per process after they all started
        resolve_config(spec.name, env, config)
    out = Path(group_dir) if group_dir is not None else default_group_dir(spec.name, env_name)
    if not str(out).strip():
        raise ConfigError("group_dir must name a directory, got an empty string")
    jobs = [
        {
            "algo": spec.name,
            "env": env,
            "steps": steps,
            "seed": seed,
            "config": dict(config or {}),
            "env_kwargs": dict(env_kwargs or {}),
            "wrappers": list(wrappers or []),
            "device": device,
            "run_dir": out / f"seed-{seed}",
            "eval_episodes": eval_episodes,
            "eval_every": eval_every,
            "checkpoint_every": checkpoint_every,
            "vectorization": vectorization,
            "overwrite": overwrite,
            "more": dict(train_kwargs),
        }
        for seed in seeds
    ]
    if not overwrite:
        for job in jobs:
            run_dir = job["run_dir"]
            if run_dir.is_dir() and any(run_dir.iterdir()):
                raise ConfigError(
                    f"{run_dir} already holds something; choose another group directory or "
                    "pass overwrite=True (--overwrite)"
                )
    if processes > 1:
        try:
            pickle.dumps(jobs[0])
        except Exception as exc:
            raise ConfigError(
                f"the environment, wrappers or config cannot be sent to another process "
                f"({exc}); pass an environment id or a class defined in a module, or "
                "processes=1"
            ) from None
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"could not create {out}: {exc.strerror or exc}") from None

    stream = stream if stream is not None else sys.stdout
    results: dict[int, SeedResult] = {}

    def report(summary: dict[str, Any]) -> None:
        result = _seed_result(summary, out)
        results[result.seed] = result
        print(result.line(), file=stream, flush=True)

    print(
        f"training {spec.name} on {env_name}: seeds {', '.join(map(str, seeds))} in "
        f"{processes} process{'es' if processes > 1 else ''} -> {out}",
        file=stream,
        flush=True,
    )
    if processes == 1:
        for job in jobs:
            report(_train_one(job))
    else:
        context = multiprocessing.get_context("spawn")
        with context.Pool(processes, initializer=_init_worker) as pool:
            try:
                for summary in pool.imap_unordered(_train_one, jobs):
                    report(summary)
            except KeyboardInterrupt:
                pool.terminate()
                raise

    group = _aggregate(spec.name, env_name, out, [results[s] for s in seeds], plot)
    write_text_atomically(out / GROUP_FILE, json.dumps(group.to_dict(), indent=2) + "\n")
    print(group.line(), file=stream, flush=True)
    if group.failed:
        failed = ", ".join(str(run.seed) for run in group.failed)
        error = PgrlError(f"seed(s) {failed} failed; see their lines above and {out / GROUP_FILE}")
        error.exit_code = 1  # type: ignore[attr-defined]  # a failed run, not a usage mistake
        raise error
    return group


def _init_worker() -> None:
    """One torch thread per process: the processes, not the threads, use the cores."""
    import torch

    torch.set_num_threads(1)


def _train_one(job: dict[str, Any]) -> dict[str, Any]:
    """Train one seed (in a worker process); its ``agent.summary()``, or the error."""
    from pgrl.train import train

    try:
        agent = train(
            job["algo"],
            job["env"],
            job["steps"],
            job["seed"],
            config=job["config"],
            env_kwargs=job["env_kwargs"] or None,
            wrappers=job["wrappers"] or None,
            device=job["device"],
            threads=1,
            run_dir=job["run_dir"],
            overwrite=job["overwrite"],
            eval_episodes=job["eval_episodes"],
            eval_every=job["eval_every"],
            checkpoint_every=job["checkpoint_every"],
            progress=False,
            vectorization=job["vectorization"],
            **job["more"],
        )
    except Exception as exc:  # one seed's failure is reported; the others go on
        text = str(exc) if isinstance(exc, PgrlError) else f"{type(exc).__name__}: {exc}"
        return {"seed": job["seed"], "run_dir": str(job["run_dir"]), "error": text}
    return agent.summary()


def _seed_result(summary: Mapping[str, Any], group_dir: Path) -> SeedResult:
    seed = int(summary["seed"])
    run_dir = Path(summary.get("run_dir") or group_dir / f"seed-{seed}")
    if summary.get("error") is not None:
        return SeedResult(seed=seed, run_dir=run_dir, error=str(summary["error"]))
    raw = summary.get("eval_return_mean")
    mean = None if raw is None or not math.isfinite(raw) else float(raw)
    usable = mean is not None
    return SeedResult(
        seed=seed,
        run_dir=run_dir,
        env_steps=int(summary["env_steps"]),
        train_seconds=float(summary["train_seconds"]),
        eval_return_mean=mean,
        eval_return_std=summary.get("eval_return_std") if usable else None,
        eval_episodes=summary.get("eval_episodes") if usable else None,
    )


def _aggregate(
    algo: str, env: str, group_dir: Path, runs: list[SeedResult], plot: bool
) -> GroupResult:
    """The IQM and its interval over the seeds' final evaluations, and the group's figure."""
    import numpy as np

    from pgrl.plot import plot_runs, stratified_bootstrap_ci

    returns = [run.eval_return_mean for run in runs if run.eval_return_mean is not None]
    value: float | None = None
    interval: tuple[float, float] | None = None
    if returns:
        point, lo, hi = stratified_bootstrap_ci(np.array(returns), "iqm")
        value, interval = float(point), (float(lo), float(hi))
    figure = None
    finished = [run.run_dir for run in runs if run.error is None]
    if plot and finished:
        try:
            figure = plot_runs(finished, group_dir / FIGURE_FILE)
        except PgrlError:
            figure = None  # runs too short to have a curve have none
    return GroupResult(
        group_dir=group_dir,
        algo=algo,
        env=env,
        runs=tuple(runs),
        statistic="iqm",
        eval_return=value,
        eval_return_ci=interval,
        figure=figure,
    )


__all__ = ["GroupResult", "SeedResult", "available_cores", "default_group_dir", "train_seeds"]

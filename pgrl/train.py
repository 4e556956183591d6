"""Train an agent, or resume its training: the public entry points.

:func:`train` resolves the config, builds the environments, the algorithm and the run
directory, and hands them to the generic loop (:func:`pgrl.loop.run_loop`); :func:`resume`
rebuilds the same from a checkpoint (:mod:`pgrl.run_state`). Loading a trained agent is
:func:`pgrl.agent.load_agent` (``pgrl.load``).
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from gymnasium.vector import VectorEnv

from pgrl import checkpoint
from pgrl.agent import CHECKPOINT_FILE, Agent, check_spaces, config_dict, save_agent
from pgrl.algos import build_algorithm, get_spec
from pgrl.collect import Collector
from pgrl.config import build_config, preset, preset_source, preset_steps
from pgrl.envs import Vectorization, check_env_id, make_vec_env
from pgrl.errors import CheckpointError, ConfigError, PgrlError
from pgrl.loop import make_buffer, run_loop
from pgrl.run_state import LoopState, RunSpec, cross_boundary, restore_state


def train(
    algo: str = "a2c",
    env: str = "CartPole-v1",
    steps: int | None = None,
    seed: int = 0,
    *,
    config: Mapping[str, Any] | None = None,
    run_dir: str | Path | None = None,
    eval_episodes: int = 10,
    eval_every: int = 0,
    log_interval: int | None = None,
    checkpoint_every: int | None = None,
    progress: bool | None = False,
    save: bool = True,
    overwrite: bool = False,
    vectorization: str = "auto",
) -> Agent:
    """Train ``algo`` on Gymnasium environment ``env`` for ``steps`` environment steps.

    Args:
        algo: a name from :data:`pgrl.ALGORITHMS` (``"reinforce"``, ``"a2c"``, ``"ddpg"``, ...).
        env: a registered Gymnasium id.
        steps: environment steps (transitions) to train for; None uses the preset's budget.
        seed: seeds every generator; the same seed gives the same parameters on CPU.
        config: hyperparameter overrides by name, applied on top of the preset.
        run_dir: where to save the run (config, metrics, TensorBoard, checkpoints, weights).
            None with ``save=True`` makes ``runs/<algo>-<env>-<seed>-<time>``.
        eval_episodes: deterministic evaluation episodes at the end (0: none).
        eval_every: also evaluate every this many environment steps (0: never).
        log_interval: environment steps between metric rows (default: about 100 rows).
        checkpoint_every: environment steps between periodic checkpoints (default 0: only
            the final one and one on Ctrl-C, SIGTERM or SIGHUP). Each periodic checkpoint is a boundary that
            every run with these settings shares:
            episodes in progress are cut there (truncated, so they bootstrap) and the
            environments are reseeded, which makes a resumed run equal the uninterrupted one.
        progress: True for a progress display, None for automatic, False for none.
        save: write the run directory.
        overwrite: replace a run already in ``run_dir`` (otherwise that is an error, so a
            finished or interrupted run is never wiped by mistake).
        vectorization: the vector environment: ``"auto"`` (the environment's own
            numpy-vectorized implementation where Gymnasium has one, e.g. CartPole;
            SyncVectorEnv otherwise), ``"sync"`` (SyncVectorEnv: the copies stepped one after
            another in this process), ``"async"`` (AsyncVectorEnv: one process per copy; pays off
            only when a step is slow) or ``"vector_entry_point"`` (the environment's own
            implementation, an error where there is none). Stored with the run, so
            :func:`resume` builds the same kind.

    Returns:
        The trained :class:`~pgrl.agent.Agent`.
    """
    spec = get_spec(algo)
    check_env_id(env)
    cfg = resolve_config(spec.name, env, config)
    if steps is None:
        steps = preset_steps(spec.name, env)
    run = RunSpec(
        steps=steps,
        eval_episodes=eval_episodes,
        eval_every=eval_every,
        log_interval=log_interval or max(steps // 100, 1),
        checkpoint_every=0 if checkpoint_every is None else checkpoint_every,
        vectorization=vectorization,
    )
    seed_everything(seed)
    envs = _make_envs(env, cfg.num_envs, run)
    try:
        collector = Collector(envs, seed)
        spaces = collector.spaces
        algorithm = build_algorithm(spec.name, cfg, spaces, env)
        out_dir = None
        if save:
            out_dir = (
                Path(run_dir) if run_dir is not None else default_run_dir(spec.name, env, seed)
            )
            if (out_dir / "config.json").exists() and not overwrite:
                raise ConfigError(
                    f"{out_dir} already holds a run; continue it with `pgrl resume {out_dir}`, "
                    "choose another run directory, or pass overwrite=True (--overwrite)"
                )
            out_dir.mkdir(parents=True, exist_ok=True)
            run_info = {
                "algo": spec.name,
                "env": env,
                "seed": seed,
                "steps": steps,
                "preset_source": preset_source(spec.name, env),
                "config": config_dict(cfg),
                "obs_space": spaces.obs_space,
                "act_space": spaces.act_space,
                **dataclasses.asdict(run),
            }
            (out_dir / "config.json").write_text(json.dumps(run_info, indent=2))
        agent = Agent(spec.name, env, seed, cfg, algorithm, spaces, run_dir=out_dir)
        buffer = make_buffer(algorithm, spaces)
        state = LoopState(
            next_log=run.log_interval,
            next_eval=run.eval_every if run.eval_every > 0 else None,
            next_checkpoint=run.checkpoint_every if run.checkpoint_every > 0 else None,
        )
        run_loop(agent, collector, buffer, run, state, progress)
    finally:
        envs.close()
    return _finish(agent, run)


def resume(
    run_dir: str | Path, *, steps: int | None = None, progress: bool | None = False
) -> Agent:
    """Continue a run from its last checkpoint (``RUN/checkpoints/last.safetensors``).

    A run interrupted at a checkpoint and resumed here gives the same parameters and metrics
    (bit for bit on CPU, wall-clock columns aside) as the same run uninterrupted. ``steps``
    extends (or shortens) the total budget.
    """
    run_dir = Path(run_dir)
    file = run_dir / CHECKPOINT_FILE if run_dir.is_dir() else run_dir
    if file.is_file() and not run_dir.is_dir():
        run_dir = file.parent.parent
    tensors, meta = checkpoint.load_checkpoint(file)
    if meta.get("kind") != "checkpoint":
        raise CheckpointError(f"{file} is not a training checkpoint (kind {meta.get('kind')!r})")
    spec = get_spec(meta["algo"])
    cfg: Any = build_config(spec.config, meta["config"])
    run = RunSpec(**meta["run"])
    if steps is not None:
        run = dataclasses.replace(run, steps=steps)
    envs = _make_envs(meta["env"], cfg.num_envs, run)
    try:
        collector = Collector(envs, meta["seed"])
        spaces = collector.spaces
        check_spaces(file, meta, spaces, meta["env"])
        algorithm = build_algorithm(spec.name, cfg, spaces, meta["env"])
        agent = Agent(spec.name, meta["env"], meta["seed"], cfg, algorithm, spaces, run_dir=run_dir)
        buffer = make_buffer(algorithm, spaces)
        state = restore_state(agent, collector, buffer, tensors, meta, file)
        # the checkpoint was saved just before a boundary: cross it as the saving run did
        cross_boundary(agent.seed, collector, state)
        run_loop(agent, collector, buffer, run, state, progress, resumed=True)
    finally:
        envs.close()
    return _finish(agent, run)


def resolve_config(algo: str, env_id: str, overrides: Mapping[str, Any] | None = None) -> Any:
    """The algorithm's config: defaults, then the (algo, env) preset, then ``overrides``."""
    spec = get_spec(algo)
    values = {**preset(spec.name, env_id), **dict(overrides or {})}
    return build_config(spec.config, values)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_run_dir(algo: str, env_id: str, seed: int, root: str | Path = "runs") -> Path:
    """``runs/<algo>-<env>-<seed>-<time>``."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{algo}-{env_id}-{seed}-{stamp}"


def _make_envs(env_id: str, num_envs: int, run: RunSpec) -> VectorEnv:
    """The run's vector environment, of the kind the run records (checked by RunSpec)."""
    return make_vec_env(env_id, num_envs, vectorization=cast(Vectorization, run.vectorization))


def _finish(agent: Agent, run: RunSpec) -> Agent:
    """Evaluate at the end, save the model and draw the learning curve."""
    if run.eval_episodes > 0:
        start = time.perf_counter()
        agent.evaluation = agent.evaluate(run.eval_episodes, seed=agent.seed + 1_000_003)
        agent.eval_seconds += time.perf_counter() - start
    if agent.run_dir is not None:
        save_agent(agent, agent.run_dir)
        _plot_curve(agent.run_dir)
    return agent


def _plot_curve(run_dir: Path) -> None:
    """Draw the run's learning curve; a run too short to have one simply has none."""
    from pgrl.plot import plot_runs  # matplotlib: imported only when a run is saved

    try:
        plot_runs([run_dir], run_dir / "learning-curve.png")
    except PgrlError:
        pass

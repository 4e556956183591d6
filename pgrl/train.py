"""Train an agent, continue it, or resume its training: the public entry points.

:func:`train` resolves the environment (:func:`pgrl.envs.resolve_env`) and the config, builds
the algorithm and the run directory, and hands them to the generic loop
(:func:`pgrl.loop.run_loop`); :func:`resume` rebuilds the same from a checkpoint
(:mod:`pgrl.run_state`); :func:`learn_more` continues an agent still in memory
(``agent.learn``). Loading a trained agent is :func:`pgrl.agent.load_agent` (``pgrl.load``).
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from pgrl import checkpoint
from pgrl.agent import (
    CHECKPOINT_FILE,
    Agent,
    Session,
    check_spaces,
    config_dict,
    resolve_device,
    save_agent,
    spaces_record,
)
from pgrl.algos import build_algorithm, get_spec
from pgrl.callbacks import Callback, check_callbacks
from pgrl.collect import Collector, CollectorLike
from pgrl.config import build_config, fallback_preset, preset, preset_source, preset_steps
from pgrl.envs import EnvLike, EnvSource, Vectorization, env_from_record, resolve_env
from pgrl.errors import CheckpointError, ConfigError, PgrlError
from pgrl.loop import make_buffer, run_loop
from pgrl.run_state import LoopState, RunSpec, cross_boundary, restore_state
from pgrl.rundir import RunDir, write_text_atomically

DEFAULT_THREADS = 1
"""torch threads while training, in the API as in the CLI (``--threads``): the networks of
classic control are small enough that one thread is fastest, and more threads only contend
with the environments."""


def train(
    algo: str = "a2c",
    env: EnvLike = "CartPole-v1",
    steps: int | None = None,
    seed: int = 0,
    *,
    config: Mapping[str, Any] | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    wrappers: Sequence[Callable[[Any], Any]] | None = None,
    networks: Mapping[str, Callable[..., torch.nn.Module]] | None = None,
    device: str = "cpu",
    threads: int | None = DEFAULT_THREADS,
    run_dir: str | Path | None = None,
    save: bool | None = None,
    overwrite: bool = False,
    callbacks: Sequence[Callback] = (),
    diagnostics_every: int = 0,
    diagnostics_surrogate: int = 0,
    eval_episodes: int = 10,
    eval_every: int = 0,
    log_interval: int | None = None,
    checkpoint_every: int | None = None,
    progress: bool | None = False,
    vectorization: str = "auto",
    workers: int | None = None,
    ray_address: str | None = None,
    max_worker_failures: int = 3,
    worker_timeout: float | None = None,
) -> Agent:
    """Train ``algo`` on environment ``env`` for ``steps`` environment steps.

    Args:
        algo: a name from :data:`pgrl.ALGORITHMS` (``"reinforce"``, ``"a2c"``, ``"ddpg"``, ...).
        env: a registered Gymnasium id, ``"module:EnvId"``, a ``gymnasium.Env`` subclass, a
            factory, an instance or a ready vector environment (:func:`pgrl.envs.resolve_env`).
        steps: environment steps (transitions) to train for; None uses the preset's budget.
        seed: seeds every generator; the same seed gives the same parameters on CPU.
        config: hyperparameter overrides by name, applied on top of the preset.
        env_kwargs: keyword arguments of the environment's constructor (``gym.make(id, **kw)``).
        wrappers: callables ``env -> env`` applied to every copy of the environment, in order.
        networks: your own networks: factories by network name (see ``docs/networks.md``).
        device: ``"cpu"``, ``"cuda"`` (``"cuda:1"``...) or ``"auto"`` (CUDA where there is
            one). The networks and updates run there; environments and acting stay on the CPU.
        threads: torch threads while training (restored afterwards); 1 by default, as the CLI.
            None leaves torch's setting alone.
        run_dir: where to save the run (config, metrics, TensorBoard, checkpoints, weights).
        save: write a run directory. None (default): only when ``run_dir`` is given, so that
            ``pgrl.train`` called from a library writes nothing unless asked. True without
            ``run_dir`` makes ``runs/<algo>-<env>-<seed>-<time>`` in the working directory.
        overwrite: replace a run already in ``run_dir`` (otherwise that is an error, so a
            finished or interrupted run is never wiped by mistake).
        callbacks: :class:`pgrl.callbacks.Callback` objects: periodic evaluation, early stop,
            custom metrics.
        diagnostics_every: every this many updates, measure the policy gradient's noise
            (SNR, noise scale, cosine to a larger fresh sample, value fit) into ``diag/...``
            metrics (:class:`pgrl.diagnostics.GradientDiagnostics`); 0: never. The run's
            parameters are the same with or without.
        diagnostics_surrogate: PPO with diagnostics: also measure the return gain of each
            diagnosed update on this many paired episodes, against the surrogate's gain
            (0: off; each costs 2 × this many episodes).
        eval_episodes: deterministic evaluation episodes at the end (0: none).
        eval_every: also evaluate every this many environment steps (0: never).
        log_interval: environment steps between metric rows (default: about 100 rows).
        checkpoint_every: environment steps between periodic checkpoints (default 0: only
            the final one and one on Ctrl-C, SIGTERM or SIGHUP). Each periodic checkpoint is a
            boundary that every run with these settings shares: episodes in progress are cut
            there (truncated, so they bootstrap) and the environments are reseeded, which makes
            a resumed run equal the uninterrupted one.
        progress: True for a progress display, None for automatic, False for none.
        vectorization: the vector environment: ``"auto"`` (the environment's own
            numpy-vectorized implementation where Gymnasium has one, e.g. CartPole;
            SyncVectorEnv otherwise), ``"sync"``, ``"async"`` (one process per copy; pays off
            only when a step is slow) or ``"vector_entry_point"``. Stored with the run. With
            workers, ``"auto"`` is ``"sync"`` (each copy seeded on its own).
        workers: step the environments on this many Ray actors (``pgrl[ray]``), each a
            contiguous share of the ``num_envs`` copies; None: in this process. The same seed
            gives the same run whatever the workers (``docs/distributed.md``).
        ray_address: the Ray cluster to join (``ray start --head`` prints it); None starts
            Ray on this machine unless this process already called ``ray.init``.
        max_worker_failures: failures of one worker the run survives (each restarts it and
            re-collects its share); one more stops the run, with a checkpoint.
        worker_timeout: seconds one call to a worker (a rollout, or one vector step
            off-policy) may take; past it the worker counts as failed (an environment that
            hangs), is killed and restored from its last result like a dead one. None (the
            default): no limit.

    Returns:
        The trained :class:`~pgrl.agent.Agent`; ``agent.learn(more_steps)`` continues it.
    """
    spec = get_spec(algo)
    check_seed(seed)
    callbacks = with_diagnostics(callbacks, diagnostics_every, diagnostics_surrogate)
    source = resolve_env(env, env_kwargs, wrappers)
    torch_device = resolve_device(device)
    key = source.preset_id or source.name
    if steps is None:
        steps = preset_steps(spec.name, key)
    check_worker_args(workers, ray_address, max_worker_failures)
    kind = None if preset_source(spec.name, key) else source.spaces().action_kind
    cfg = resolve_config(spec.name, key, config, action_kind=kind, steps=steps)
    defaults = defaults_applied(spec.name, key, kind, config, cfg)
    if source.num_envs is not None and cfg.num_envs != source.num_envs:
        if config is not None and "num_envs" in config:
            raise ConfigError(
                f"num_envs={cfg.num_envs} but the vector environment passed has "
                f"{source.num_envs} copies"
            )
        cfg = dataclasses.replace(cfg, num_envs=source.num_envs)
    run = RunSpec(
        steps=steps,
        eval_episodes=eval_episodes,
        eval_every=eval_every,
        log_interval=log_interval or max(steps // 100, 1),
        checkpoint_every=0 if checkpoint_every is None else checkpoint_every,
        vectorization="sync" if workers and vectorization == "auto" else vectorization,
        workers=workers or 0,
        max_worker_failures=max_worker_failures,
        worker_timeout=worker_timeout,
    )
    if workers is not None:
        from pgrl.workers import check_workers

        check_workers(workers, cfg.num_envs, run.vectorization)
    out_dir = _output_dir(spec.name, source, seed, run_dir, save, overwrite)
    with ExitStack() as stack:
        if out_dir is not None:  # checked, locked, an old run moved aside with overwrite
            stack.enter_context(RunDir(out_dir, overwrite=overwrite))
        stack.enter_context(torch_threads(threads))
        seed_everything(seed)
        collector = _open_collector(stack, source, spec.name, cfg, run, seed, networks, ray_address)
        spaces = collector.spaces
        algorithm = build_algorithm(
            spec.name, cfg, spaces, source.name, device=torch_device, networks=networks
        )
        _attach(collector, algorithm)
        if out_dir is not None:
            run_info = {
                "algo": spec.name,
                "env": source.name,
                "env_source": source.record,
                "env_why_not": source.why_not,
                "seed": seed,
                "steps": steps,
                "device": str(torch_device),
                "custom_networks": sorted(networks or {}),
                "preset_source": preset_source(spec.name, key),
                "defaults": defaults,
                "config": config_dict(cfg),
                "obs_space": spaces.obs_space,
                "act_space": spaces.act_space,
                **dataclasses.asdict(run),
            }
            write_text_atomically(out_dir / "config.json", json.dumps(run_info, indent=2))
        agent = Agent(spec.name, source.name, seed, cfg, algorithm, spaces, run_dir=out_dir)
        agent.attach_env(source)
        agent.networks = dict(networks or {})
        agent.defaults = defaults
        buffer = make_buffer(algorithm, spaces)
        state = LoopState(
            next_log=run.log_interval,
            next_eval=run.eval_every if run.eval_every > 0 else None,
            next_checkpoint=run.checkpoint_every if run.checkpoint_every > 0 else None,
        )
        run_loop(agent, collector, buffer, run, state, progress, callbacks=callbacks)
        return _finish(agent, run)


def resume(
    run_dir: str | Path,
    *,
    steps: int | None = None,
    progress: bool | None = False,
    env: EnvLike | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    wrappers: Sequence[Callable[[Any], Any]] | None = None,
    networks: Mapping[str, Callable[..., torch.nn.Module]] | None = None,
    device: str | None = None,
    threads: int | None = DEFAULT_THREADS,
    callbacks: Sequence[Callback] = (),
    workers: int | None = None,
    ray_address: str | None = None,
) -> Agent:
    """Continue a run from its last checkpoint (``RUN/checkpoints/last.safetensors``).

    A run interrupted at a checkpoint and resumed here gives the same parameters and metrics
    (bit for bit on CPU, wall-clock columns aside) as the same run uninterrupted. ``steps``
    extends (or shortens) the total budget. The environment is rebuilt as the run recorded
    it; ``env`` (with ``env_kwargs``, ``wrappers``) replaces it, for a run whose environment
    was an instance or a lambda. ``device`` defaults to the run's own (the CPU when that one
    is not here); ``networks`` must be given again for a run trained with custom networks.
    ``workers`` (default: the run's own; 0: in this process) and ``ray_address`` as in
    :func:`train`: the result is the same whatever the workers.
    """
    run_dir = Path(run_dir)
    file = run_dir / CHECKPOINT_FILE if run_dir.is_dir() else run_dir
    if file.is_file() and not run_dir.is_dir():
        run_dir = file.parent.parent
    with RunDir(run_dir, resume=True):  # nobody else writes into it meanwhile
        return _resume(
            run_dir,
            file,
            steps=steps,
            progress=progress,
            env=env,
            env_kwargs=env_kwargs,
            wrappers=wrappers,
            networks=networks,
            device=device,
            threads=threads,
            callbacks=callbacks,
            workers=workers,
            ray_address=ray_address,
        )


def _resume(
    run_dir: Path,
    file: Path,
    *,
    steps: int | None,
    progress: bool | None,
    env: EnvLike | None,
    env_kwargs: Mapping[str, Any] | None,
    wrappers: Sequence[Callable[[Any], Any]] | None,
    networks: Mapping[str, Callable[..., torch.nn.Module]] | None,
    device: str | None,
    threads: int | None,
    callbacks: Sequence[Callback],
    workers: int | None = None,
    ray_address: str | None = None,
) -> Agent:
    if not file.exists() and (run_dir / "config.json").exists():
        raise CheckpointError(
            f"{run_dir} holds a run that stopped before its first checkpoint: there is nothing "
            "to resume; train it again with overwrite=True (pgrl train ... --overwrite)"
        )
    tensors, meta = checkpoint.load_checkpoint(file)
    if meta.get("kind") != "checkpoint":
        raise CheckpointError(f"{file} is not a training checkpoint (kind {meta.get('kind')!r})")
    check_callbacks(callbacks)
    custom = meta.get("custom_networks") or []
    if custom and not networks:
        raise CheckpointError(
            f"{file} was trained with custom networks ({', '.join(map(str, custom))}): "
            "pass the same factories again, networks={...}"
        )
    spec = get_spec(meta["algo"])
    cfg: Any = build_config(spec.config, meta["config"])
    run = RunSpec(**meta["run"])
    if steps is not None:
        run = dataclasses.replace(run, steps=steps)
    source = _recorded_env(meta, env, env_kwargs, wrappers)
    if workers is not None:
        if workers != 0:
            check_worker_args(workers, ray_address, run.max_worker_failures)
            from pgrl.workers import check_workers

            # what the run collected with: "auto" in one process may have been numpy-vectorized
            check_workers(workers, cfg.num_envs, source.vectorization_for(run.vectorization))
        run = dataclasses.replace(run, workers=workers)
    torch_device = resolve_device(device if device is not None else _usable(meta.get("device")))
    with ExitStack() as stack:
        stack.enter_context(torch_threads(threads))
        collector = _open_collector(
            stack, source, spec.name, cfg, run, meta["seed"], networks, ray_address
        )
        spaces = collector.spaces
        check_spaces(file, meta, spaces, source.name)
        algorithm = build_algorithm(
            spec.name, cfg, spaces, source.name, device=torch_device, networks=networks
        )
        _attach(collector, algorithm)
        agent = Agent(spec.name, source.name, meta["seed"], cfg, algorithm, spaces, run_dir=run_dir)
        agent.attach_env(source)
        agent.networks = dict(networks or {})
        buffer = make_buffer(algorithm, spaces)
        state = restore_state(agent, collector, buffer, tensors, meta, file)
        # the checkpoint was saved just before a boundary: cross it as the saving run did
        cross_boundary(agent.seed, collector, state)
        run_loop(agent, collector, buffer, run, state, progress, resumed=True, callbacks=callbacks)
        return _finish(agent, run)


def learn_more(
    agent: Agent,
    steps: int,
    *,
    progress: bool | None = False,
    callbacks: Sequence[Callback] = (),
    threads: int | None = DEFAULT_THREADS,
) -> Agent:
    """Train an agent still in memory for ``steps`` more environment steps.

    Continues exactly where :func:`train` (or an earlier call) stopped, as :func:`resume`
    continues from the final checkpoint: the same optimizer states, replay buffer, counters
    and generators, schedules computed over the new total budget; the episodes in progress
    are cut (a checkpoint boundary). With a run directory the run's files are extended.
    """
    session = agent.session
    if session is None:
        raise PgrlError(
            "this agent cannot continue training in memory (it was loaded from a file or "
            "its training stopped early); use pgrl.resume(run_dir, steps=...) instead"
        )
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps must be an integer >= 1, got {steps!r}")
    check_callbacks(callbacks)
    source = agent.environment()
    run = dataclasses.replace(session.run, steps=session.env_steps + steps)
    with ExitStack() as stack:
        if agent.run_dir is not None:
            stack.enter_context(RunDir(agent.run_dir, resume=True))
        stack.enter_context(torch_threads(threads))
        collector = _open_collector(
            stack,
            source,
            agent.algo,
            agent.config,
            run,
            agent.seed,
            agent.networks,
            session.ray_address,
        )
        _attach(collector, agent.algorithm)
        collector.restore_counts(session.env_steps, session.vector_steps)
        checkpoint.restore_rng(session.rng)
        if session.acting_rngs:
            collector.set_generator_states(session.acting_rngs)
        state = session.state
        cross_boundary(agent.seed, collector, state)
        run_loop(
            agent,
            collector,
            session.buffer,
            run,
            state,
            progress,
            resumed=True,
            callbacks=callbacks,
        )
        return _finish(agent, run)


def with_diagnostics(
    callbacks: Sequence[Callback], every: int, surrogate_episodes: int = 0
) -> list[Any]:
    """``callbacks``, checked, plus gradient diagnostics every ``every`` updates (0: none)."""
    check_callbacks(callbacks)
    if isinstance(every, bool) or not isinstance(every, int) or every < 0:
        raise ConfigError(f"diagnostics_every must be an integer >= 0, got {every!r}")
    if surrogate_episodes and not every:
        raise ConfigError("diagnostics_surrogate needs diagnostics_every (--diagnostics EVERY)")
    if not every:
        return list(callbacks)
    from pgrl.diagnostics import GradientDiagnostics

    diagnostics = GradientDiagnostics(every=every, surrogate_episodes=surrogate_episodes)
    return [*callbacks, diagnostics]


def resolve_config(
    algo: str,
    env_id: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    action_kind: str | None = None,
    steps: int | None = None,
) -> Any:
    """The algorithm's config: defaults, then the (algo, env) preset, then ``overrides``.

    An environment without a preset gets the defaults for its ``action_kind`` where the
    presets give some (``*box`` entries: e.g. PPO's continuous-control settings) instead of
    settings tuned for another kind of task. With the budget ``steps``, a random warm-up
    (``learning_starts``) that ``overrides`` does not set, the default's or the preset's, is
    at most a tenth of the budget, so that a short run learns at all (a preset's warm-up is
    chosen for the preset's own budget: CleanRL's 25k random steps of a 1M-step TD3 run).
    Only a warm-up the caller sets is kept as given.
    """
    spec = get_spec(algo)
    if overrides is not None and not isinstance(overrides, Mapping):
        raise ConfigError(f"config must be a mapping of names to values, got {overrides!r}")
    base = preset(spec.name, env_id)
    if not base and action_kind is not None:
        base = fallback_preset(spec.name, action_kind)[0]
    values = {**base, **dict(overrides or {})}
    fields = {f.name: f for f in dataclasses.fields(spec.config)}
    if (
        steps is not None
        and "learning_starts" in fields
        and "learning_starts" not in (overrides or {})
    ):
        warmup = values.get("learning_starts", fields["learning_starts"].default)
        if isinstance(warmup, int) and warmup > steps // 10:
            values["learning_starts"] = steps // 10
    return build_config(spec.config, values)


def defaults_applied(
    algo: str,
    env_id: str,
    action_kind: str | None,
    overrides: Mapping[str, Any] | None,
    config: Any,
) -> str:
    """In words, where the run's hyperparameters come from (``config.json``'s ``defaults``)."""
    if preset_source(algo, env_id):
        where = f"the preset for {env_id} (pgrl/presets/{algo}.yaml)"
    else:
        source = fallback_preset(algo, action_kind)[1] if action_kind else None
        where = f"no preset for {env_id}: "
        where += (
            f"the defaults for {action_kind} actions ({source})"
            if source
            else f"{algo}'s own defaults (pgrl train {algo} --help)"
        )
    given = sorted(overrides or {})
    if given:
        where += f"; set by you: {', '.join(given)}"
    warmup = getattr(config, "learning_starts", None)
    if warmup is not None and "learning_starts" not in (overrides or {}):
        where += f"; learning_starts {warmup}"
    return where


def check_seed(seed: Any) -> None:
    """A seed is an integer >= 0 (NumPy's SeedSequence refuses negative ones)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` torch threads, then restore the caller's setting (None: leave it)."""
    if threads is None:
        yield
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads must be an integer >= 1, got {threads!r}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def default_run_dir(algo: str, env_name: str, seed: int, root: str | Path = "runs") -> Path:
    """``runs/<algo>-<env>-<seed>-<time>`` (characters a path cannot hold become ``_``)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in env_name)
    return Path(root) / f"{algo}-{safe}-{seed}-{stamp}"


def _output_dir(
    algo: str,
    source: EnvSource,
    seed: int,
    run_dir: str | Path | None,
    save: bool | None,
    overwrite: bool,
) -> Path | None:
    """The run directory to write, or None (:class:`pgrl.rundir.RunDir` checks and locks it)."""
    if save is None:
        save = run_dir is not None
    if not save:
        return None
    if run_dir is not None and not str(run_dir).strip():
        raise ConfigError("run_dir must name a directory, got an empty string")
    out_dir = Path(run_dir) if run_dir is not None else default_run_dir(algo, source.name, seed)
    return out_dir


def _recorded_env(
    meta: Mapping[str, Any],
    env: EnvLike | None,
    env_kwargs: Mapping[str, Any] | None,
    wrappers: Sequence[Callable[[Any], Any]] | None,
) -> EnvSource:
    """The environment a run recorded, or the one given in its place."""
    if env is not None:
        return resolve_env(env, env_kwargs, wrappers)
    if "env_source" not in meta:  # runs from before environments were recorded: an id
        return resolve_env(str(meta["env"]))
    return env_from_record(meta["env_source"], str(meta["env"]), str(meta.get("env_why_not", "")))


def _usable(device: Any) -> str:
    """A run's recorded device where it exists here, else the CPU."""
    if isinstance(device, str) and device.startswith("cuda") and torch.cuda.is_available():
        return device
    return "cpu"


def _make_envs(source: EnvSource, num_envs: int, run: RunSpec) -> Any:
    """The run's vector environment: a ready one as given, else new copies of the kind recorded."""
    if source.vector is not None:
        return source.vector
    return source.make_vec(num_envs, vectorization=cast(Vectorization, run.vectorization))


def _open_envs(stack: ExitStack, source: EnvSource, num_envs: int, run: RunSpec) -> Any:
    """:func:`_make_envs`, closed when ``stack`` closes unless the user passed them ready."""
    envs = _make_envs(source, num_envs, run)
    if source.vector is None:
        stack.callback(envs.close)
    return envs


def _open_collector(
    stack: ExitStack,
    source: EnvSource,
    algo: str,
    config: Any,
    run: RunSpec,
    seed: int,
    networks: Mapping[str, Callable[..., torch.nn.Module]] | None,
    ray_address: str | None,
) -> CollectorLike:
    """The run's collector: in this process, or on ``run.workers`` Ray actors (closed with
    ``stack``: the workers stop, and Ray too where this run started it)."""
    if not run.workers:
        return Collector(_open_envs(stack, source, config.num_envs, run), seed, source.name)
    from pgrl.workers import RayCollector, WorkerPlan

    plan = WorkerPlan(
        algo=algo,
        config=config,
        env=source,
        seed=seed,
        vectorization=run.vectorization,
        networks=dict(networks or {}),
    )
    rng = checkpoint.capture_rng()  # starting Ray draws nothing from the run's generators
    collector = RayCollector(
        plan,
        config.num_envs,
        run.workers,
        max_failures=run.max_worker_failures,
        timeout=run.worker_timeout,
        address=ray_address,
    )
    checkpoint.restore_rng(rng)
    stack.callback(collector.close)
    return collector


def _attach(collector: CollectorLike, algorithm: Any) -> None:
    """Give Ray workers the algorithm whose networks they act with (nothing in one process)."""
    attach = getattr(collector, "attach", None)
    if attach is not None:
        attach(algorithm)


def check_worker_args(workers: Any, ray_address: Any, max_worker_failures: Any) -> None:
    """One line for a bad ``workers``, ``ray_address`` or ``max_worker_failures``
    (``worker_timeout`` is checked by :class:`~pgrl.run_state.RunSpec`)."""
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise ConfigError(
            f"workers must be an integer >= 1 (leave it out to collect in this process), "
            f"got {workers!r}"
        )
    if ray_address is not None and workers is None:
        raise ConfigError("ray_address needs workers (--workers W): the Ray actors to start there")
    if ray_address is not None and (not isinstance(ray_address, str) or not ray_address.strip()):
        raise ConfigError(
            f"ray_address must be a Ray address such as 'HOST:6379', got {ray_address!r}"
        )
    if (
        isinstance(max_worker_failures, bool)
        or not isinstance(max_worker_failures, int)
        or max_worker_failures < 0
    ):
        raise ConfigError(
            f"max_worker_failures must be an integer >= 0, got {max_worker_failures!r}"
        )


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


__all__ = ["Session", "learn_more", "resume", "spaces_record", "train"]

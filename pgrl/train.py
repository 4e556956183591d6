"""The generic loop that every algorithm runs on.

    collect transitions (s, a, r, s', terminated, truncated)
    → store them (a rollout for on-policy methods, a replay buffer for off-policy ones)
    → sample a minibatch
    → policy gradient → critic gradient → update        (inside ``algorithm.update``)
    → log, evaluate, checkpoint

On-policy and off-policy are two configurations of this one loop: the algorithm's
``collection`` says whether it learns from fixed-length rollouts, whole episodes, or
minibatches sampled from a replay buffer.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from gymnasium.vector import VectorEnv
from threadpoolctl import threadpool_limits
from torch import Tensor

from pgrl.algos import Algorithm, build_algorithm, get_spec
from pgrl.buffers import ReplayBuffer
from pgrl.collect import Collector
from pgrl.config import build_config, preset, preset_source, preset_steps
from pgrl.envs import (
    VECTORIZATIONS,
    SpaceInfo,
    Vectorization,
    check_env_id,
    make_vec_env,
    space_info,
)
from pgrl.errors import CheckpointError, ConfigError, NonFiniteError, PgrlError
from pgrl.evaluate import EvalResult, deterministic, evaluate


@dataclass
class Agent:
    """A trained algorithm with what it takes to act in its environment and to report."""

    algo: str
    env_id: str
    seed: int
    config: Any
    algorithm: Algorithm
    spaces: SpaceInfo
    env_steps: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    evaluation: EvalResult | None = None
    run_dir: Path | None = None
    history: list[dict[str, float]] = field(default_factory=list)

    def act(self, obs: np.ndarray | Tensor, deterministic: bool = True) -> np.ndarray:
        """Actions for a batch ``(N, O)`` (or one ``(O,)``) of observations, ready for env.step."""
        single = np.ndim(obs) == 1
        obs_t = torch.as_tensor(np.asarray(obs, dtype=np.float32))
        if single:
            obs_t = obs_t.unsqueeze(0)
        with torch.inference_mode():
            action = self.algorithm.act(obs_t, deterministic=deterministic).numpy()
        if self.spaces.discrete:
            action = action.astype(np.int64)
        else:
            action = np.clip(action, self.spaces.low, self.spaces.high)
        return action[0] if single else action

    def evaluate(self, episodes: int = 10, seed: int = 1_000_003) -> EvalResult:
        """Deterministic evaluation over ``episodes`` episodes."""
        return evaluate(deterministic(self.algorithm), self.env_id, episodes, seed)

    def summary(self) -> dict[str, Any]:
        """The figures of a run, as printed by ``pgrl train --json``."""
        ev = self.evaluation
        return {
            "algo": self.algo,
            "env": self.env_id,
            "seed": self.seed,
            "env_steps": self.env_steps,
            "train_seconds": round(self.train_seconds, 3),
            "eval_seconds": round(self.eval_seconds, 3),
            "eval_return_mean": None if ev is None else ev.mean,
            "eval_return_std": None if ev is None else ev.std,
            "eval_episodes": None if ev is None else len(ev.returns),
            "run_dir": None if self.run_dir is None else str(self.run_dir),
        }


def resolve_config(algo: str, env_id: str, overrides: Mapping[str, Any] | None = None) -> Any:
    """The algorithm's config: defaults, then the (algo, env) preset, then ``overrides``."""
    spec = get_spec(algo)
    values = {**preset(spec.name, env_id), **dict(overrides or {})}
    return build_config(spec.config, values)


def config_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_run_dir(algo: str, env_id: str, seed: int, root: str | Path = "runs") -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{algo}-{env_id}-{seed}-{stamp}"


@dataclass
class LoopState:
    """Counters of the loop that a checkpoint must carry to continue exactly."""

    next_log: int
    next_eval: int | None
    next_checkpoint: int | None
    boundary: int = 0
    count: int = 0
    recent_returns: list[float] = field(default_factory=list)
    sums: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class RunSpec:
    """What defines a run besides the algorithm's config."""

    steps: int
    eval_episodes: int
    eval_every: int
    log_interval: int
    checkpoint_every: int
    # the kind of vector environment (pgrl.envs.make_vec_env); runs saved before it was
    # recorded used "auto"
    vectorization: str = "auto"


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
            the final one and one on Ctrl-C). Each periodic checkpoint is a boundary that
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
        The trained :class:`Agent`.
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
    _check_run(run)
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
        buffer = _make_buffer(agent)
        state = LoopState(
            next_log=run.log_interval,
            next_eval=run.eval_every if run.eval_every > 0 else None,
            next_checkpoint=run.checkpoint_every if run.checkpoint_every > 0 else None,
        )
        _loop(agent, collector, buffer, run, state, progress)
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
    from pgrl.checkpoint import load_checkpoint

    run_dir = Path(run_dir)
    file = run_dir / CHECKPOINT_FILE if run_dir.is_dir() else run_dir
    if file.is_file() and not run_dir.is_dir():
        run_dir = file.parent.parent
    tensors, meta = load_checkpoint(file)
    if meta.get("kind") != "checkpoint":
        raise CheckpointError(f"{file} is not a training checkpoint (kind {meta.get('kind')!r})")
    spec = get_spec(meta["algo"])
    cfg: Any = build_config(spec.config, meta["config"])
    run = RunSpec(**meta["run"])
    if steps is not None:
        run.steps = steps
    _check_run(run)
    envs = _make_envs(meta["env"], cfg.num_envs, run)
    try:
        collector = Collector(envs, meta["seed"])
        spaces = collector.spaces
        _check_spaces(file, meta, spaces, meta["env"])
        algorithm = build_algorithm(spec.name, cfg, spaces, meta["env"])
        agent = Agent(spec.name, meta["env"], meta["seed"], cfg, algorithm, spaces, run_dir=run_dir)
        buffer = _make_buffer(agent)
        state = _restore(agent, collector, buffer, tensors, meta, file)
        _boundary(agent, collector, state)
        _loop(agent, collector, buffer, run, state, progress, resumed=True)
    finally:
        envs.close()
    return _finish(agent, run)


CHECKPOINT_FILE = Path("checkpoints") / "last.safetensors"


def _check_run(run: RunSpec) -> None:
    if run.steps < 1:
        raise ConfigError(f"steps must be >= 1, got {run.steps}")
    for name in ("eval_episodes", "eval_every", "checkpoint_every"):
        if getattr(run, name) < 0:
            raise ConfigError(f"{name} must be >= 0, got {getattr(run, name)}")
    if run.log_interval < 1:
        raise ConfigError(f"log_interval must be >= 1, got {run.log_interval}")
    if run.vectorization not in VECTORIZATIONS:
        raise ConfigError(
            f"vectorization must be one of {', '.join(VECTORIZATIONS)}; got {run.vectorization!r}"
        )


def _make_envs(env_id: str, num_envs: int, run: RunSpec) -> VectorEnv:
    """The run's vector environment, of the kind the run records (checked by _check_run)."""
    return make_vec_env(env_id, num_envs, vectorization=cast(Vectorization, run.vectorization))


def _check_spaces(file: Path, meta: Mapping[str, Any], spaces: SpaceInfo, env_id: str) -> None:
    if (spaces.obs_space, spaces.act_space) != (meta["obs_space"], meta["act_space"]):
        raise CheckpointError(
            f"{file} was made for observation space {meta['obs_space']} and action space "
            f"{meta['act_space']}, but {env_id} has observation space {spaces.obs_space} and "
            f"action space {spaces.act_space}"
        )


def _make_buffer(agent: Agent) -> ReplayBuffer | None:
    if agent.algorithm.collection != "replay":
        return None
    act_shape = () if agent.spaces.discrete else (agent.spaces.act_dim,)
    cfg = agent.config
    return ReplayBuffer(cfg.buffer_size, agent.spaces.obs_dim, act_shape, agent.spaces.discrete)


def _finish(agent: Agent, run: RunSpec) -> Agent:
    if run.eval_episodes > 0:
        start = time.perf_counter()
        agent.evaluation = agent.evaluate(run.eval_episodes, seed=agent.seed + 1_000_003)
        agent.eval_seconds += time.perf_counter() - start
    if agent.run_dir is not None:
        save_agent(agent, agent.run_dir)
        _plot_curve(agent.run_dir)
    return agent


def _boundary_seed(seed: int, boundary: int) -> int:
    return int(np.random.SeedSequence([seed, boundary]).generate_state(1)[0])


def _boundary(agent: Agent, collector: Collector, state: LoopState) -> None:
    """Cut every episode in progress and reseed the environments (a checkpoint boundary)."""
    state.boundary += 1
    new_seed = _boundary_seed(agent.seed, state.boundary)
    collector.envs.action_space.seed(new_seed)
    collector.reset(seed=new_seed)


class _Interrupt:
    """Turns Ctrl-C into a flag the loop checks between iterations (a consistent state)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _Interrupt:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _loop(
    agent: Agent,
    collector: Collector,
    buffer: ReplayBuffer | None,
    run: RunSpec,
    state: LoopState,
    progress: bool | None,
    resumed: bool = False,
) -> None:
    from pgrl.logger import RunLogger

    algorithm, cfg = agent.algorithm, agent.config
    schedule = getattr(cfg, "lr_schedule", "constant")
    logger = RunLogger(
        agent.run_dir,
        run.steps,
        progress=progress,
        tensorboard=agent.run_dir is not None,
        resume_from=collector.env_steps if resumed else None,
    )
    start = time.perf_counter() - agent.train_seconds
    last_time, last_steps = time.perf_counter(), collector.env_steps
    try:
        # NumPy's BLAS (the NumPy path of the networks) uses as many threads as torch does:
        # by default OpenBLAS would start one per core and spin them for a few-µs matmul
        with _Interrupt() as interrupt, threadpool_limits(torch.get_num_threads(), "blas"):
            while collector.env_steps < run.steps:
                # collect (and store): a rollout, a batch of whole episodes, or one vector step
                if algorithm.collection == "rollout":
                    updates: list[Any] = [collector.rollout(algorithm.act, cfg.rollout_steps)]
                elif algorithm.collection == "episodes":
                    updates = [collector.episodes(algorithm.act, cfg.episodes_per_env)]
                else:
                    assert buffer is not None
                    warm = collector.env_steps < cfg.learning_starts
                    with torch.inference_mode():
                        obs = torch.from_numpy(collector.obs)
                        actions = collector.random_actions() if warm else algorithm.act(obs)
                    step = collector.step(actions)
                    buffer.add(step)
                    ready = (
                        collector.env_steps >= cfg.learning_starts and len(buffer) >= cfg.batch_size
                    )
                    n_updates = int(step.valid.sum()) * cfg.updates_per_step if ready else 0
                    # sample a minibatch per update
                    updates = [buffer.sample(cfg.batch_size) for _ in range(n_updates)]
                if schedule == "linear":
                    anneal_learning_rates(algorithm, 1.0 - collector.env_steps / run.steps)
                # policy gradient, critic gradient, update
                for batch in updates:
                    metrics = algorithm.update(batch)
                    for key, value in metrics.items():
                        state.sums[key] = (
                            state.sums[key] + value if key in state.sums else value.clone()
                        )
                    state.count += 1

                returns, _ = collector.stats.pop()
                if returns:
                    state.recent_returns = (state.recent_returns + returns)[-100:]
                now_steps = collector.env_steps
                done = now_steps >= run.steps
                if now_steps >= state.next_log or done:
                    now = time.perf_counter()
                    row = _metrics_row(state.sums, state.count, state.recent_returns)
                    row["steps_per_second"] = (now_steps - last_steps) / max(now - last_time, 1e-9)
                    _check_finite_losses(row, now_steps, agent.run_dir)
                    logger.log(now_steps, row)
                    agent.history.append({"env_steps": float(now_steps), **row})
                    state.sums, state.count = {}, 0
                    last_time, last_steps = now, now_steps
                    state.next_log = (now_steps // run.log_interval + 1) * run.log_interval
                else:
                    last = state.recent_returns[-1] if state.recent_returns else None
                    logger.progress_update(now_steps, last)
                if (
                    state.next_eval is not None
                    and now_steps >= state.next_eval
                    and run.eval_episodes
                ):
                    eval_start = time.perf_counter()
                    result = agent.evaluate(run.eval_episodes, seed=agent.seed + 1_000_003)
                    spent = time.perf_counter() - eval_start
                    agent.eval_seconds += spent
                    start += spent  # evaluation time is not training time
                    last_time += spent
                    eval_row = {
                        "eval_return_mean": result.mean,
                        "eval_return_std": result.std,
                        "train_seconds": time.perf_counter() - start,
                    }
                    logger.log(now_steps, eval_row)
                    agent.history.append({"env_steps": float(now_steps), **eval_row})
                    state.next_eval = (now_steps // run.eval_every + 1) * run.eval_every
                at_checkpoint = (
                    state.next_checkpoint is not None and now_steps >= state.next_checkpoint
                )
                if (at_checkpoint and not done) or interrupt.requested:
                    if state.next_checkpoint is not None and at_checkpoint:
                        every = run.checkpoint_every
                        state.next_checkpoint = (now_steps // every + 1) * every
                    agent.env_steps = now_steps
                    agent.train_seconds = time.perf_counter() - start
                    # never overwrite the last good checkpoint with a broken state
                    _check_finite_state(agent, state, now_steps)
                    if agent.run_dir is not None:
                        _save_checkpoint(agent, collector, buffer, run, state)
                    _boundary(agent, collector, state)
                    if interrupt.requested:
                        raise TrainingInterrupted(agent, now_steps)
            agent.env_steps = collector.env_steps
            agent.train_seconds = time.perf_counter() - start
            if agent.run_dir is not None:  # the end is a checkpoint too: `resume --steps` extends
                _save_checkpoint(agent, collector, buffer, run, state)
    finally:
        logger.close()


class TrainingInterrupted(PgrlError):
    """Ctrl-C: a checkpoint was saved and training stopped cleanly."""

    exit_code = 130

    def __init__(self, agent: Agent, env_steps: int) -> None:
        where = (
            f"checkpoint saved in {agent.run_dir / CHECKPOINT_FILE}; continue with: "
            f"pgrl resume {agent.run_dir}"
            if agent.run_dir is not None
            else "nothing was saved (no run directory)"
        )
        super().__init__(f"interrupted at environment step {env_steps:,}; {where}")
        self.agent = agent


def _module_tensors(algorithm: Algorithm) -> dict[str, Tensor]:
    return {
        f"module.{name}.{key}": value
        for name, module in algorithm.modules().items()
        for key, value in module.state_dict().items()
    }


def _optimizer_payload(algorithm: Algorithm) -> tuple[dict[str, Tensor], dict[str, Any]]:
    tensors: dict[str, Tensor] = {}
    groups: dict[str, Any] = {}
    for name, optimizer in algorithm.optimizers().items():
        sd = optimizer.state_dict()
        for index, param_state in sd["state"].items():
            for key, value in param_state.items():
                tensors[f"optim.{name}.{index}.{key}"] = torch.as_tensor(value)
        groups[name] = json.loads(json.dumps(sd["param_groups"]))
    return tensors, groups


def _save_checkpoint(
    agent: Agent,
    collector: Collector,
    buffer: ReplayBuffer | None,
    run: RunSpec,
    state: LoopState,
) -> Path:
    """Everything needed to continue: weights, optimizers, RNGs, counters, buffer, noise."""
    from pgrl.checkpoint import capture_rng, save_checkpoint

    assert agent.run_dir is not None
    tensors = _module_tensors(agent.algorithm)
    optim_tensors, optim_groups = _optimizer_payload(agent.algorithm)
    tensors.update(optim_tensors)
    if buffer is not None:
        tensors.update({f"buffer.{k}": v for k, v in buffer.state_dict().items()})
    noise = getattr(agent.algorithm, "noise", None)
    if noise is not None:
        tensors["noise.state"] = noise.state()
    tensors.update({f"sums.{k}": v.detach() for k, v in state.sums.items()})
    meta = {
        "kind": "checkpoint",
        "algo": agent.algo,
        "env": agent.env_id,
        "seed": agent.seed,
        "config": config_dict(agent.config),
        "run": dataclasses.asdict(run),
        "obs_space": agent.spaces.obs_space,
        "act_space": agent.spaces.act_space,
        "env_steps": collector.env_steps,
        "vector_steps": collector._vector_steps,
        "train_seconds": agent.train_seconds,
        "eval_seconds": agent.eval_seconds,
        "optimizers": optim_groups,
        "rng": capture_rng(),
        "loop": {
            "next_log": state.next_log,
            "next_eval": state.next_eval,
            "next_checkpoint": state.next_checkpoint,
            "boundary": state.boundary,
            "count": state.count,
            "recent_returns": state.recent_returns,
        },
        "history": agent.history,
    }
    (agent.run_dir / CHECKPOINT_FILE).parent.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(agent.run_dir / CHECKPOINT_FILE, tensors, meta)


def _restore(
    agent: Agent,
    collector: Collector,
    buffer: ReplayBuffer | None,
    tensors: Mapping[str, Tensor],
    meta: Mapping[str, Any],
    file: Path,
) -> LoopState:
    from pgrl.checkpoint import restore_rng

    def part(prefix: str) -> dict[str, Tensor]:
        return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

    try:
        for name, module in agent.algorithm.modules().items():
            module.load_state_dict(part(f"module.{name}."))
        for name, optimizer in agent.algorithm.optimizers().items():
            states: dict[int, dict[str, Tensor]] = {}
            for key, value in part(f"optim.{name}.").items():
                index, field_name = key.split(".", 1)
                states.setdefault(int(index), {})[field_name] = value
            optimizer.load_state_dict({"state": states, "param_groups": meta["optimizers"][name]})
        if buffer is not None:
            buffer.load_state_dict(part("buffer."))
        noise = getattr(agent.algorithm, "noise", None)
        if noise is not None and "noise.state" in tensors:
            noise.load_state(tensors["noise.state"])
    except (RuntimeError, KeyError, ValueError) as exc:
        raise CheckpointError(
            f"{file}: the saved state does not fit this algorithm: {exc}"
        ) from None
    restore_rng(meta["rng"])
    collector.env_steps = int(meta["env_steps"])
    collector._vector_steps = int(meta["vector_steps"])
    agent.env_steps = collector.env_steps
    agent.train_seconds = float(meta["train_seconds"])
    agent.eval_seconds = float(meta["eval_seconds"])
    agent.history = list(meta["history"])
    loop = meta["loop"]
    return LoopState(
        next_log=int(loop["next_log"]),
        next_eval=loop["next_eval"],
        next_checkpoint=loop["next_checkpoint"],
        boundary=int(loop["boundary"]),  # saved before the boundary; resume crosses it again
        count=int(loop["count"]),
        recent_returns=[float(r) for r in loop["recent_returns"]],
        sums={k: v.clone() for k, v in part("sums.").items()},
    )


def anneal_learning_rates(algorithm: Algorithm, fraction: float) -> None:
    """Set every optimizer's step size to ``fraction`` × its initial value (linear decay).

    Linear decay to 0 over the budget, as in OpenAI Baselines' A2C and PPO: large early
    steps, and a policy that stops moving once the budget ends instead of collapsing.
    """
    fraction = max(fraction, 0.0)
    for optimizer in algorithm.optimizers().values():
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = group["initial_lr"] * fraction


def _metrics_row(
    sums: dict[str, Tensor], count: int, recent_returns: list[float]
) -> dict[str, float]:
    """Means of the update metrics since the last row: one .item() per metric per row."""
    row: dict[str, float] = {}
    if recent_returns:
        row["episode_return_mean"] = float(np.mean(recent_returns))
    if count:
        for key, total in sums.items():
            row[key] = float(total.item()) / count
    return row


def _check_finite_losses(row: Mapping[str, float], env_steps: int, run_dir: Path | None) -> None:
    for key, value in row.items():
        if not np.isfinite(value):
            kept = ""
            if run_dir is not None and (run_dir / CHECKPOINT_FILE).exists():
                kept = f" The last good checkpoint is {run_dir / CHECKPOINT_FILE}."
            raise NonFiniteError(
                f"non-finite {key} ({value}) at environment step {env_steps}: training stopped. "
                "Lower the learning rate, clip gradients (max_grad_norm) or check the rewards."
                + kept
            )


def _check_finite_state(agent: Agent, state: LoopState, env_steps: int) -> None:
    """Losses accumulated since the last row and every parameter must be finite."""
    pending = {k: float(v.item()) / max(state.count, 1) for k, v in state.sums.items()}
    _check_finite_losses(pending, env_steps, agent.run_dir)
    for name, module in agent.algorithm.modules().items():
        for key, value in module.state_dict().items():
            if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                _check_finite_losses(
                    {f"parameter {name}.{key}": float("nan")}, env_steps, agent.run_dir
                )


def _weights(algorithm: Algorithm) -> dict[str, Tensor]:
    return {
        f"{name}.{key}": value
        for name, module in algorithm.modules().items()
        for key, value in module.state_dict().items()
    }


def save_agent(agent: Agent, run_dir: Path) -> Path:
    """Write the trained networks (``model.safetensors``) and the summary (``summary.json``).

    The model file is a pgrl checkpoint: safetensors weights plus JSON metadata (algorithm,
    environment, config, spaces), written atomically and loaded without executing code.
    """
    from pgrl.checkpoint import save_checkpoint

    meta = {
        "kind": "model",
        "algo": agent.algo,
        "env": agent.env_id,
        "seed": agent.seed,
        "config": config_dict(agent.config),
        "obs_space": agent.spaces.obs_space,
        "act_space": agent.spaces.act_space,
        "env_steps": agent.env_steps,
    }
    path = save_checkpoint(run_dir / "model.safetensors", _weights(agent.algorithm), meta)
    (run_dir / "summary.json").write_text(json.dumps(agent.summary(), indent=2))
    return path


def load_agent(path: str | Path, env: str | None = None) -> Agent:
    """Load a trained agent from a run directory or a ``model.safetensors`` file.

    ``env`` overrides the environment id stored with the model; the spaces must match.
    """
    from pgrl.checkpoint import load_checkpoint
    from pgrl.errors import CheckpointError

    path = Path(path)
    file = path / "model.safetensors" if path.is_dir() else path
    if path.is_dir() and not file.exists() and (path / CHECKPOINT_FILE).exists():
        file = path / CHECKPOINT_FILE  # a run that has not finished: its last checkpoint
    tensors, meta = load_checkpoint(file)
    if meta.get("kind") not in ("model", "checkpoint"):
        raise CheckpointError(f"{file} holds no trained model (kind {meta.get('kind')!r})")
    spec = get_spec(meta["algo"])
    env_id = env or meta["env"]
    cfg: Any = build_config(spec.config, meta["config"])
    envs = make_vec_env(env_id, 1)
    try:
        spaces = space_info(envs)
    finally:
        envs.close()
    _check_spaces(file, meta, spaces, env_id)
    algorithm = build_algorithm(spec.name, cfg, spaces, env_id)
    root = "module." if meta["kind"] == "checkpoint" else ""
    for name, module in algorithm.modules().items():
        prefix = f"{root}{name}."
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(f"{file}: weights of {name!r} do not fit: {exc}") from None
    run_dir = path if path.is_dir() else file.parent
    return Agent(
        spec.name,
        env_id,
        int(meta.get("seed", 0)),
        cfg,
        algorithm,
        spaces,
        env_steps=int(meta.get("env_steps", 0)),
        run_dir=run_dir,
    )


def _plot_curve(run_dir: Path) -> None:
    """Draw the run's learning curve; a run too short to have one simply has none."""
    from pgrl.plot import plot_runs

    try:
        plot_runs([run_dir], run_dir / "learning-curve.png")
    except PgrlError:
        pass

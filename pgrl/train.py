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
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pgrl.algos import Algorithm, build_algorithm, get_spec
from pgrl.buffers import ReplayBuffer
from pgrl.collect import Collector
from pgrl.config import build_config, preset, preset_source, preset_steps
from pgrl.envs import SpaceInfo, check_env_id, make_vec_env, space_info
from pgrl.errors import ConfigError, NonFiniteError
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
    progress: bool | None = False,
    save: bool = True,
) -> Agent:
    """Train ``algo`` on Gymnasium environment ``env`` for ``steps`` environment steps.

    Args:
        algo: a name from :data:`pgrl.ALGORITHMS` (``"reinforce"``, ``"a2c"``, ``"ddpg"``, ...).
        env: a registered Gymnasium id.
        steps: environment steps (transitions) to train for; None uses the preset's budget.
        seed: seeds every generator; the same seed gives the same parameters on CPU.
        config: hyperparameter overrides by name, applied on top of the preset.
        run_dir: where to save the run (config, metrics, TensorBoard, weights). None with
            ``save=True`` makes ``runs/<algo>-<env>-<seed>-<time>``.
        eval_episodes: deterministic evaluation episodes at the end (0: none).
        eval_every: also evaluate every this many environment steps (0: never).
        log_interval: environment steps between metric rows (default: about 100 rows).
        progress: True for a progress display, None for automatic, False for none.
        save: write the run directory.

    Returns:
        The trained :class:`Agent`.
    """
    spec = get_spec(algo)
    check_env_id(env)
    cfg = resolve_config(spec.name, env, config)
    if steps is None:
        steps = preset_steps(spec.name, env)
    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")
    if eval_episodes < 0:
        raise ConfigError(f"eval_episodes must be >= 0, got {eval_episodes}")

    seed_everything(seed)
    envs = make_vec_env(env, cfg.num_envs)
    try:
        collector = Collector(envs, seed)
        spaces = collector.spaces
        algorithm = build_algorithm(spec.name, cfg, spaces, env)
        out_dir = None
        if save:
            out_dir = Path(run_dir) if run_dir is not None else default_run_dir(spec.name, env, seed)
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
            }
            (out_dir / "config.json").write_text(json.dumps(run_info, indent=2))
        agent = Agent(spec.name, env, seed, cfg, algorithm, spaces, run_dir=out_dir)
        _loop(agent, collector, steps, eval_every, eval_episodes, log_interval, progress)
    finally:
        envs.close()

    if eval_episodes > 0:
        start = time.perf_counter()
        agent.evaluation = agent.evaluate(eval_episodes, seed=seed + 1_000_003)
        agent.eval_seconds += time.perf_counter() - start
    if agent.run_dir is not None:
        save_agent(agent, agent.run_dir)
        _plot_curve(agent.run_dir)
    return agent


def _plot_curve(run_dir: Path) -> None:
    """Draw the run's learning curve; a run too short to have one simply has none."""
    from pgrl.errors import PgrlError
    from pgrl.plot import plot_runs

    try:
        plot_runs([run_dir], run_dir / "learning-curve.png")
    except PgrlError:
        pass


def _loop(
    agent: Agent,
    collector: Collector,
    steps: int,
    eval_every: int,
    eval_episodes: int,
    log_interval: int | None,
    progress: bool | None,
) -> None:
    from pgrl.logger import RunLogger

    algorithm, cfg = agent.algorithm, agent.config
    interval = log_interval or max(steps // 100, 1)
    replay = algorithm.collection == "replay"
    buffer = None
    if replay:
        act_shape = () if agent.spaces.discrete else (agent.spaces.act_dim,)
        buffer = ReplayBuffer(cfg.buffer_size, agent.spaces.obs_dim, act_shape, agent.spaces.discrete)

    schedule = getattr(cfg, "lr_schedule", "constant")
    logger = RunLogger(agent.run_dir, steps, progress=progress, tensorboard=agent.run_dir is not None)
    sums: dict[str, Tensor] = {}
    count = 0
    next_log = interval
    next_eval = eval_every if eval_every > 0 else None
    recent_returns: list[float] = []
    start = time.perf_counter()
    last_time, last_steps = start, 0
    try:
        while collector.env_steps < steps:
            # collect (and store): one rollout, a batch of whole episodes, or one vector step
            if algorithm.collection == "rollout":
                data: Any = collector.rollout(algorithm.act, cfg.rollout_steps)
                updates = [data]
            elif algorithm.collection == "episodes":
                data = collector.episodes(algorithm.act, cfg.episodes_per_env)
                updates = [data]
            else:
                assert buffer is not None
                warm = collector.env_steps < cfg.learning_starts
                with torch.inference_mode():
                    actions = (
                        collector.random_actions()
                        if warm
                        else algorithm.act(torch.from_numpy(collector.obs))
                    )
                step = collector.step(actions)
                buffer.add(step)
                ready = collector.env_steps >= cfg.learning_starts and len(buffer) >= cfg.batch_size
                n_updates = int(step.valid.sum()) * cfg.updates_per_step if ready else 0
                # sample a minibatch per update
                updates = [buffer.sample(cfg.batch_size) for _ in range(n_updates)]
            if schedule == "linear":
                anneal_learning_rates(algorithm, 1.0 - collector.env_steps / steps)
            # policy gradient, critic gradient, update
            for batch in updates:
                metrics = algorithm.update(batch)
                for key, value in metrics.items():
                    sums[key] = sums[key] + value if key in sums else value.clone()
                count += 1

            returns, _ = collector.stats.pop()
            recent_returns = (recent_returns + returns)[-100:]
            now_steps = collector.env_steps
            if now_steps >= next_log or now_steps >= steps:
                now = time.perf_counter()
                row = _metrics_row(sums, count, recent_returns)
                row["steps_per_second"] = (now_steps - last_steps) / max(now - last_time, 1e-9)
                _check_finite_losses(row, now_steps)
                logger.log(now_steps, row)
                agent.history.append({"env_steps": float(now_steps), **row})
                sums, count = {}, 0
                last_time, last_steps = now, now_steps
                next_log = (now_steps // interval + 1) * interval
            else:
                logger.progress_update(now_steps, recent_returns[-1] if recent_returns else None)
            if next_eval is not None and now_steps >= next_eval and eval_episodes > 0:
                eval_start = time.perf_counter()
                result = agent.evaluate(eval_episodes, seed=agent.seed + 1_000_003)
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
                next_eval = (now_steps // eval_every + 1) * eval_every
        agent.env_steps = collector.env_steps
        agent.train_seconds = time.perf_counter() - start
    finally:
        logger.close()


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


def _metrics_row(sums: dict[str, Tensor], count: int, recent_returns: list[float]) -> dict[str, float]:
    """Means of the update metrics since the last row: one .item() per metric per row."""
    row: dict[str, float] = {}
    if recent_returns:
        row["episode_return_mean"] = float(np.mean(recent_returns))
    if count:
        for key, total in sums.items():
            row[key] = float(total.item()) / count
    return row


def _check_finite_losses(row: Mapping[str, float], env_steps: int) -> None:
    for key, value in row.items():
        if not np.isfinite(value):
            raise NonFiniteError(
                f"non-finite {key} ({value}) at environment step {env_steps}: training stopped. "
                "Lower the learning rate, clip gradients (max_grad_norm) or check the rewards."
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
    tensors, meta = load_checkpoint(file)
    if meta.get("kind") not in ("model", "checkpoint"):
        raise CheckpointError(f"{file} holds no trained model (kind {meta.get('kind')!r})")
    spec = get_spec(meta["algo"])
    env_id = env or meta["env"]
    cfg = build_config(spec.config, meta["config"])
    envs = make_vec_env(env_id, 1)
    try:
        spaces = space_info(envs)
    finally:
        envs.close()
    if (spaces.obs_space, spaces.act_space) != (meta["obs_space"], meta["act_space"]):
        raise CheckpointError(
            f"{file} was trained on spaces obs={meta['obs_space']} act={meta['act_space']}, "
            f"but {env_id} has obs={spaces.obs_space} act={spaces.act_space}"
        )
    algorithm = build_algorithm(spec.name, cfg, spaces, env_id)
    for name, module in algorithm.modules().items():
        prefix = f"{name}."
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(f"{file}: weights of {name!r} do not fit: {exc}") from None
    run_dir = path if path.is_dir() else path.parent
    return Agent(
        spec.name, env_id, int(meta.get("seed", 0)), cfg, algorithm, spaces,
        env_steps=int(meta.get("env_steps", 0)), run_dir=run_dir,
    )

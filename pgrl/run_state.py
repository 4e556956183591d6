"""The state of a training run, and the checkpoint that carries it.

A checkpoint (``RUN/checkpoints/last.safetensors``) holds everything needed to continue:
weights, optimizer states, the replay buffer, the exploration noise, RNG states, the step
counters of the collector, the loop's counters (:class:`LoopState`) and the run's settings
(:class:`RunSpec`).

Gymnasium cannot read and restore a general environment's state, so each periodic checkpoint
is also a *boundary* that every run with the same settings shares: right after it, episodes in
progress are cut (they bootstrap, as truncations do) and the environments are reseeded from
(seed, boundary number). The uninterrupted run crosses the boundary after saving, the resumed
run after loading, and from there on both draw the same numbers: a resumed run equals the
uninterrupted one bit for bit on CPU.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pgrl import checkpoint
from pgrl.agent import CHECKPOINT_FILE, Agent, config_dict, spaces_record, weights
from pgrl.algos import Algorithm
from pgrl.buffers import ReplayBuffer
from pgrl.collect import CollectorLike
from pgrl.envs import VECTORIZATIONS
from pgrl.errors import CheckpointError, ConfigError, NonFiniteError


@dataclass(frozen=True, kw_only=True)
class RunSpec:
    """What defines a run besides the algorithm's config (stored in every checkpoint).

    Example:
        >>> RunSpec(steps=0, eval_episodes=0, eval_every=0, log_interval=1, checkpoint_every=0)
        Traceback (most recent call last):
        ...
        pgrl.errors.ConfigError: steps must be >= 1, got 0
    """

    steps: int
    """environment steps (transitions) to train for"""
    eval_episodes: int
    """deterministic evaluation episodes at each evaluation (0: none)"""
    eval_every: int
    """environment steps between evaluations during training (0: only at the end)"""
    log_interval: int
    """environment steps between metric rows"""
    checkpoint_every: int
    """environment steps between periodic checkpoints, each a boundary (0: none)"""
    vectorization: str = "auto"
    """the kind of vector environment (pgrl.envs.make_vec_env); "auto" for older runs"""
    workers: int = 0
    """Ray rollout workers stepping the environments (pgrl.workers); 0: in this process"""
    max_worker_failures: int = 3
    """failures of one worker that the run survives (each restarts it); one more stops it"""
    worker_timeout: float | None = None
    """seconds one call to a worker may take before it counts as failed (None: no limit)"""

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ConfigError(f"steps must be >= 1, got {self.steps}")
        for name, value in (
            ("eval_episodes", self.eval_episodes),
            ("eval_every", self.eval_every),
            ("checkpoint_every", self.checkpoint_every),
        ):
            if value < 0:
                raise ConfigError(f"{name} must be >= 0, got {value}")
        if self.workers < 0:
            raise ConfigError(f"workers must be >= 1 (0: in this process), got {self.workers}")
        if self.max_worker_failures < 0:
            raise ConfigError(f"max_worker_failures must be >= 0, got {self.max_worker_failures}")
        if not is_timeout(self.worker_timeout):
            raise ConfigError(
                f"worker_timeout must be a number of seconds > 0, got {self.worker_timeout!r}"
            )
        if self.log_interval < 1:
            raise ConfigError(f"log_interval must be >= 1, got {self.log_interval}")
        if self.vectorization not in VECTORIZATIONS:
            raise ConfigError(
                f"vectorization must be one of {', '.join(VECTORIZATIONS)}; "
                f"got {self.vectorization!r}"
            )


@dataclass
class LoopState:
    """Counters of the loop that a checkpoint must carry to continue exactly."""

    next_log: int
    """environment step of the next metrics row"""
    next_eval: int | None
    """environment step of the next evaluation (None: no evaluation during training)"""
    next_checkpoint: int | None
    """environment step of the next periodic checkpoint (None: no periodic checkpoints)"""
    boundary: int = 0
    """checkpoint boundaries crossed"""
    count: int = 0
    """updates since the last metrics row"""
    updates: int = 0
    """updates since the run began (SB3's ``n_updates``: gradient steps of the algorithm)"""
    recent_returns: list[float] = field(default_factory=list)
    """returns of the last 100 finished episodes"""
    recent_lengths: list[int] = field(default_factory=list)
    """lengths of the last 100 finished episodes"""
    sums: dict[str, Tensor] = field(default_factory=dict)
    """sum of each update metric since the last metrics row (0-d tensors: no .item())"""

    def add_update(self, metrics: Mapping[str, Tensor]) -> None:
        """Add one update's metrics to the current row."""
        for key, value in metrics.items():
            self.sums[key] = self.sums[key] + value if key in self.sums else value.clone()
        self.count += 1
        self.updates += 1

    def add_returns(self, returns: list[float], lengths: Sequence[int] = ()) -> None:
        """Remember the returns and lengths of episodes that just finished (the last 100)."""
        if returns:
            self.recent_returns = (self.recent_returns + returns)[-100:]
        if lengths:
            self.recent_lengths = (self.recent_lengths + list(lengths))[-100:]

    def metrics_row(self) -> dict[str, float]:
        """Means of the update metrics since the last row: one .item() per metric per row.

        Example:
            >>> state = LoopState(next_log=1, next_eval=None, next_checkpoint=None)
            >>> state.add_update({"loss": torch.tensor(1.0)})
            >>> state.add_update({"loss": torch.tensor(2.0)})
            >>> state.add_returns([10.0, 20.0])
            >>> state.metrics_row()
            {'episode_return_mean': 15.0, 'loss': 1.5, 'n_updates': 2.0}
        """
        row: dict[str, float] = {}
        if self.recent_returns:
            row["episode_return_mean"] = float(np.mean(self.recent_returns))
        if self.recent_lengths:
            row["episode_length_mean"] = float(np.mean(self.recent_lengths))
        if self.count:
            for key, total in self.sums.items():
                row[key] = float(total.item()) / self.count
            row["n_updates"] = float(self.updates)
        return row

    def start_row(self) -> None:
        """Forget the update metrics of the row just logged."""
        self.sums, self.count = {}, 0


def is_timeout(value: Any) -> bool:
    """None (no limit) or a number of seconds > 0: what ``RunSpec.worker_timeout`` accepts.

    Example:
        >>> [is_timeout(v) for v in (None, 2.5, 0, "1", True)]
        [True, True, False, False, False]
    """
    if value is None:
        return True
    return not isinstance(value, bool) and isinstance(value, int | float) and value > 0


def boundary_seed(seed: int, boundary: int) -> int:
    """The seed of the environments after checkpoint boundary ``boundary`` of run ``seed``.

    Example:
        >>> boundary_seed(0, 1), boundary_seed(0, 2)
        (3964924996, 3141116543)
    """
    return int(np.random.SeedSequence([seed, boundary]).generate_state(1)[0])


def cross_boundary(seed: int, collector: CollectorLike, state: LoopState) -> None:
    """Cut every episode in progress and reseed the environments (a checkpoint boundary)."""
    state.boundary += 1
    collector.reseed(boundary_seed(seed, state.boundary))


def _optimizer_payload(algorithm: Algorithm) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Optimizer states as tensors (``optim.{name}.{index}.{key}``) and JSON param groups."""
    tensors: dict[str, Tensor] = {}
    groups: dict[str, Any] = {}
    for name, optimizer in algorithm.optimizers().items():
        sd = optimizer.state_dict()
        for index, param_state in sd["state"].items():
            for key, value in param_state.items():
                tensors[f"optim.{name}.{index}.{key}"] = torch.as_tensor(value)
        groups[name] = json.loads(json.dumps(sd["param_groups"]))
    return tensors, groups


def save_state(
    agent: Agent,
    collector: CollectorLike,
    buffer: ReplayBuffer | None,
    run: RunSpec,
    state: LoopState,
) -> Path:
    """Everything needed to continue: weights, optimizers, RNGs, counters, buffer, noise."""
    assert agent.run_dir is not None
    tensors = weights(agent.algorithm, prefix="module.")
    optim_tensors, optim_groups = _optimizer_payload(agent.algorithm)
    tensors.update(optim_tensors)
    if buffer is not None:
        tensors.update({f"buffer.{k}": v for k, v in buffer.state_dict().items()})
    noise = agent.algorithm.exploration_state()
    if noise.numel() > 0:
        tensors["noise.state"] = noise
    tensors.update({f"sums.{k}": v.detach() for k, v in state.sums.items()})
    meta = {
        "kind": "checkpoint",
        "algo": agent.algo,
        "env": agent.env_id,
        "env_source": agent.env_record,
        "env_why_not": agent.env_why_not,
        "device": str(device_of(agent.algorithm)),
        "custom_networks": sorted(agent.networks),
        "seed": agent.seed,
        "config": config_dict(agent.config),
        "run": dataclasses.asdict(run),
        "obs_space": agent.spaces.obs_space,
        "act_space": agent.spaces.act_space,
        **spaces_record(agent.spaces),
        "env_steps": collector.env_steps,
        "vector_steps": collector.vector_steps,
        "train_seconds": agent.train_seconds,
        "eval_seconds": agent.eval_seconds,
        "optimizers": optim_groups,
        "rng": checkpoint.capture_rng(),
        "acting_rngs": collector.generator_states(),
        "loop": {
            "next_log": state.next_log,
            "next_eval": state.next_eval,
            "next_checkpoint": state.next_checkpoint,
            "boundary": state.boundary,
            "count": state.count,
            "recent_returns": state.recent_returns,
            "recent_lengths": state.recent_lengths,
            "updates": state.updates,
        },
        "history": agent.history,
    }
    (agent.run_dir / CHECKPOINT_FILE).parent.mkdir(parents=True, exist_ok=True)
    return checkpoint.save_checkpoint(agent.run_dir / CHECKPOINT_FILE, tensors, meta)


def device_of(algorithm: Algorithm) -> torch.device:
    """Where the algorithm's networks live (the first parameter's device; the CPU if none)."""
    for module in algorithm.modules().values():
        for param in module.parameters():
            return param.device
    return torch.device("cpu")


def restore_state(
    agent: Agent,
    collector: CollectorLike,
    buffer: ReplayBuffer | None,
    tensors: Mapping[str, Tensor],
    meta: Mapping[str, Any],
    file: Path,
) -> LoopState:
    """Load what :func:`save_state` saved into a freshly built agent, collector and buffer.

    Returns the loop's counters as they were *before* the boundary that followed the save:
    the caller crosses it again (:func:`cross_boundary`).
    """

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
        if "noise.state" in tensors:
            agent.algorithm.load_exploration_state(tensors["noise.state"])
    except (RuntimeError, KeyError, ValueError) as exc:
        raise CheckpointError(
            f"{file}: the saved state does not fit this algorithm: {exc}"
        ) from None
    checkpoint.restore_rng(meta["rng"])
    if "acting_rngs" in meta:  # (checkpoints from before per-environment generators: fresh)
        collector.set_generator_states(meta["acting_rngs"])
    collector.restore_counts(int(meta["env_steps"]), int(meta["vector_steps"]))
    agent.env_steps = collector.env_steps
    agent.train_seconds = float(meta["train_seconds"])
    agent.eval_seconds = float(meta["eval_seconds"])
    agent.history = list(meta["history"])
    loop = meta["loop"]
    return LoopState(
        next_log=int(loop["next_log"]),
        next_eval=loop["next_eval"],
        next_checkpoint=loop["next_checkpoint"],
        boundary=int(loop["boundary"]),
        count=int(loop["count"]),
        recent_returns=[float(r) for r in loop["recent_returns"]],
        recent_lengths=[int(n) for n in loop.get("recent_lengths", [])],
        updates=int(loop.get("updates", 0)),
        sums={k: v.clone() for k, v in part("sums.").items()},
    )


def check_finite_losses(row: Mapping[str, float], env_steps: int, run_dir: Path | None) -> None:
    """Stop on a non-finite quantity, naming it, the step, and the last good checkpoint."""
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


def check_finite_state(agent: Agent, state: LoopState, env_steps: int) -> None:
    """Losses accumulated since the last row and every parameter must be finite.

    Checked before saving, so the last good checkpoint is never overwritten by a broken state.
    """
    pending = {k: float(v.item()) / max(state.count, 1) for k, v in state.sums.items()}
    check_finite_losses(pending, env_steps, agent.run_dir)
    for name, module in agent.algorithm.modules().items():
        for key, value in module.state_dict().items():
            if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                check_finite_losses(
                    {f"parameter {name}.{key}": float("nan")}, env_steps, agent.run_dir
                )

"""The generic loop that every algorithm runs on.

The article's loop, and this module's :func:`run_loop`, one iteration at a time:

    collect transitions (s, a, r, s', terminated, truncated)     collect()
    → store them: a rollout (T, N) for on-policy methods,        collect()
      a replay buffer for off-policy ones
    → sample a minibatch (B) from the buffer                      collect()
    → policy gradient → critic gradient → update                  algorithm.update(data)
    → log, evaluate, checkpoint                                   run_loop()

On-policy and off-policy are two configurations of this one loop: the algorithm's
``collection`` says whether it learns from fixed-length rollouts, whole episodes, or
minibatches sampled from a replay buffer, and its :meth:`~pgrl.algos.Algorithm.loop_settings`
say how many. The algorithm owns its networks and optimizers; the loop owns the environments,
the storage, logging, evaluation and checkpoints (:mod:`pgrl.run_state`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch
from threadpoolctl import threadpool_limits

from pgrl import checkpoint
from pgrl.agent import CHECKPOINT_FILE, Agent, Session
from pgrl.algos import Algorithm
from pgrl.algos.base import LoopSettings
from pgrl.buffers import ReplayBuffer
from pgrl.callbacks import Callbacks
from pgrl.collect import CollectorLike
from pgrl.errors import PgrlError
from pgrl.logger import RunLogger
from pgrl.run_state import (
    LoopState,
    RunSpec,
    check_finite_losses,
    check_finite_state,
    cross_boundary,
    device_of,
    save_state,
)
from pgrl.signals import Interrupt, TrainingInterrupted
from pgrl.spaces import SpaceInfo
from pgrl.types import Batch, Rollout


def run_loop(
    agent: Agent,
    collector: CollectorLike,
    buffer: ReplayBuffer | None,
    run: RunSpec,
    state: LoopState,
    progress: bool | None,
    resumed: bool = False,
    callbacks: Sequence[Any] = (),
) -> None:
    """Train ``agent.algorithm`` until the collector has taken ``run.steps`` environment steps.

    Each iteration collects, stores and samples (:func:`collect`); lets the algorithm take its
    policy-gradient and critic-gradient steps on each rollout or minibatch; then logs a metrics
    row, evaluates and checkpoints, each every so many environment steps (``run``), and calls
    the ``callbacks`` (:mod:`pgrl.callbacks`; one may stop training early). The end of the
    budget saves a checkpoint too, so that ``pgrl resume --steps`` can extend a run, and
    leaves ``agent.session`` for ``agent.learn``.

    Raises:
        TrainingInterrupted: on Ctrl-C, SIGTERM or SIGHUP, after the iteration in progress and
            a checkpoint; its ``exit_code`` is 128 + the signal number.
        NonFiniteError: on a NaN or infinite loss or parameter, before it reaches a checkpoint.
    """
    algorithm = agent.algorithm
    settings = algorithm.loop_settings()
    hooks = Callbacks(callbacks)
    device = device_of(algorithm)
    agent.session = None  # while the loop runs, the agent is not a state to continue from
    logger = RunLogger(
        agent.run_dir,
        run.steps,
        progress=progress,
        tensorboard=agent.run_dir is not None,
        resume_from=collector.env_steps if resumed else None,
        algo=agent.algo,
    )
    clock = _Clock(agent.train_seconds, collector.env_steps)
    try:
        # NumPy's BLAS (the NumPy path of the networks) uses as many threads as torch does:
        # by default OpenBLAS would start one per core and spin them for a few-µs matmul
        with Interrupt() as interrupt, threadpool_limits(torch.get_num_threads(), "blas"):
            hooks.start(agent)
            while collector.env_steps < run.steps:
                # collect transitions, store them, sample minibatches
                try:
                    batches = collect(algorithm, settings, collector, buffer)
                except PgrlError as exc:
                    if getattr(exc, "save_checkpoint", False):  # a worker failed too often
                        _checkpoint_on_failure(agent, collector, buffer, run, state, clock, exc)
                    raise
                if device.type != "cpu":
                    batches = [data.to(device) for data in batches]  # type: ignore[assignment]
                if settings.lr_schedule == "linear":
                    anneal_learning_rates(algorithm, 1.0 - collector.env_steps / run.steps)
                # policy gradient, critic gradient, update
                for data in batches:
                    hooks.update(agent, data)  # the batch, before the update uses it
                    state.add_update(algorithm.update(data))

                # log, evaluate, checkpoint
                state.add_returns(*collector.stats.pop())
                steps = collector.env_steps
                stop = not hooks.step(agent, steps)
                done = steps >= run.steps or stop
                if steps >= state.next_log or done:
                    _log_row(agent, logger, state, clock, steps, hooks, collector.metrics())
                    state.next_log = _next_multiple(steps, run.log_interval)
                else:
                    logger.progress_update(steps)
                if state.next_eval is not None and steps >= state.next_eval and run.eval_episodes:
                    _evaluate(agent, logger, clock, steps, run.eval_episodes)
                    state.next_eval = _next_multiple(steps, run.eval_every)
                at_checkpoint = state.next_checkpoint is not None and steps >= state.next_checkpoint
                if (at_checkpoint and not done) or interrupt.requested:
                    if at_checkpoint:
                        state.next_checkpoint = _next_multiple(steps, run.checkpoint_every)
                    _checkpoint(agent, collector, buffer, run, state, clock)
                    if interrupt.requested:
                        raise TrainingInterrupted(agent, steps, interrupt.signum)
                if stop:
                    break
            agent.env_steps = collector.env_steps
            agent.train_seconds = clock.train_seconds()
            if agent.run_dir is not None:
                save_state(agent, collector, buffer, run, state)
            agent.session = Session(
                buffer=buffer,
                run=run,
                state=state,
                env_steps=collector.env_steps,
                vector_steps=collector.vector_steps,
                rng=dict(checkpoint.capture_rng()),
                acting_rngs=collector.generator_states(),
                ray_address=getattr(collector, "address", None),
            )
            hooks.end(agent)
    except PgrlError as exc:  # e.g. a full disk: say what is kept
        kept = None if agent.run_dir is None else agent.run_dir / CHECKPOINT_FILE
        already = "last good checkpoint" in str(exc) or isinstance(exc, TrainingInterrupted)
        if kept is not None and kept.exists() and not already:
            # the same error, its message extended (a subclass may take other arguments)
            exc.args = (f"{exc}. The last good checkpoint is {kept}", *exc.args[1:])
        raise
    finally:
        logger.close()


def collect(
    algorithm: Algorithm,
    settings: LoopSettings,
    collector: CollectorLike,
    buffer: ReplayBuffer | None,
) -> list[Rollout] | list[Batch]:
    """Collect transitions with the current policy, store them, and sample the next updates.

    * ``"rollout"``: the next ``rollout_steps`` vector steps of the N environments, one update;
    * ``"episodes"``: ``episodes_per_env`` whole episodes of each environment, one update;
    * ``"replay"``: one vector step into the buffer (uniformly random actions for the first
      ``learning_starts`` environment steps), then ``updates_per_step`` minibatches of
      ``minibatch_size`` transitions per new transition, once the buffer holds a minibatch.
    """
    if algorithm.collection == "rollout":
        return [collector.rollout(algorithm.act, settings.rollout_steps)]
    if algorithm.collection == "episodes":
        return [collector.episodes(algorithm.act, settings.episodes_per_env)]
    assert buffer is not None
    warming_up = collector.env_steps < settings.learning_starts
    step = collector.policy_step(None if warming_up else algorithm.act)
    buffer.add(step)
    ready = (
        collector.env_steps >= settings.learning_starts and len(buffer) >= settings.minibatch_size
    )
    updates = int(step.valid.sum()) * settings.updates_per_step if ready else 0
    return [buffer.sample(settings.minibatch_size) for _ in range(updates)]


def make_buffer(algorithm: Algorithm, spaces: SpaceInfo) -> ReplayBuffer | None:
    """The replay buffer of an off-policy algorithm; None for the others (they keep none)."""
    if algorithm.collection != "replay":
        return None
    capacity = algorithm.loop_settings().buffer_size
    return ReplayBuffer(capacity, spaces.obs_dim, spaces.action_shape, spaces.discrete)


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


class _Clock:
    """Training time (evaluation left out) and throughput between metric rows."""

    def __init__(self, train_seconds: float, env_steps: int) -> None:
        now = time.perf_counter()
        self.start = now - train_seconds  # a resumed run continues its count
        self.last_time, self.last_steps = now, env_steps

    def train_seconds(self) -> float:
        return time.perf_counter() - self.start

    def leave_out(self, seconds: float) -> None:
        """Count ``seconds`` (an evaluation) neither as training time nor in the throughput."""
        self.start += seconds
        self.last_time += seconds

    def steps_per_second(self, env_steps: int) -> float:
        """Environment steps per second since the previous call."""
        now = time.perf_counter()
        rate = (env_steps - self.last_steps) / max(now - self.last_time, 1e-9)
        self.last_time, self.last_steps = now, env_steps
        return rate


def _next_multiple(steps: int, every: int) -> int:
    """The first multiple of ``every`` after ``steps``: the next row, evaluation, checkpoint."""
    return (steps // every + 1) * every


def _log_row(
    agent: Agent,
    logger: RunLogger,
    state: LoopState,
    clock: _Clock,
    steps: int,
    hooks: Callbacks,
    collection: dict[str, float],
) -> None:
    """Log the means of the metrics since the last row (and the callbacks'), start a new row."""
    row = state.metrics_row()
    row.update(collection)
    row["steps_per_second"] = clock.steps_per_second(steps)
    check_finite_losses(row, steps, agent.run_dir)
    row.update(hooks.log(agent, steps, row))
    logger.log(steps, row)
    agent.history.append({"env_steps": float(steps), **row})
    state.start_row()


def _evaluate(agent: Agent, logger: RunLogger, clock: _Clock, steps: int, episodes: int) -> None:
    """Evaluate the deterministic policy and log its returns; the time is not training time."""
    start = time.perf_counter()
    result = agent.evaluate(episodes, seed=agent.seed + 1_000_003)
    spent = time.perf_counter() - start
    agent.eval_seconds += spent
    clock.leave_out(spent)
    row = {
        "eval_return_mean": result.mean,
        "eval_return_std": result.std,
        "train_seconds": clock.train_seconds(),
    }
    logger.log(steps, row)
    agent.history.append({"env_steps": float(steps), **row})


def _checkpoint(
    agent: Agent,
    collector: CollectorLike,
    buffer: ReplayBuffer | None,
    run: RunSpec,
    state: LoopState,
    clock: _Clock,
) -> None:
    """Save a checkpoint (where the run has a directory) and cross the boundary it makes."""
    agent.env_steps = collector.env_steps
    agent.train_seconds = clock.train_seconds()
    # never overwrite the last good checkpoint with a broken state
    check_finite_state(agent, state, collector.env_steps)
    if agent.run_dir is not None:
        save_state(agent, collector, buffer, run, state)
    cross_boundary(agent.seed, collector, state)


def _checkpoint_on_failure(
    agent: Agent,
    collector: CollectorLike,
    buffer: ReplayBuffer | None,
    run: RunSpec,
    state: LoopState,
    clock: _Clock,
    exc: PgrlError,
) -> None:
    """Save the state before the failed collection (the end of the last update) and say so
    in ``exc``'s message: ``pgrl resume`` continues from there."""
    if agent.run_dir is None:
        return
    agent.env_steps = collector.env_steps
    agent.train_seconds = clock.train_seconds()
    check_finite_state(agent, state, collector.env_steps)
    save_state(agent, collector, buffer, run, state)
    kept = agent.run_dir / CHECKPOINT_FILE
    exc.args = (
        f"{exc}. Saved the last good checkpoint, {kept}: `pgrl resume {agent.run_dir}` "
        "continues the run",
        *exc.args[1:],
    )

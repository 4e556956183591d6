"""Rollout workers on Ray: the environments of a run, stepped on more cores and machines.

``pgrl.train(..., workers=W)`` (``pgrl train ... --workers W``) splits the run's N
environments into W contiguous shares, one per Ray actor (:class:`RolloutWorker`). Each
worker builds its share of the environments and a CPU copy of the algorithm's acting
networks; the learner (this process) keeps the algorithm, the replay buffer, the loop and the
checkpoints. :class:`RayCollector` stands where the in-process :class:`pgrl.collect.Collector`
stands, behind the same interface:

    learner                                     worker w (environments lo_w … hi_w − 1)
    weights, version v ──────────────────────►  load the acting networks once per version
                                                collect T steps (or one step, or episodes)
    concatenate the shares in env order ◄─────  arrays (T, N_w), episode stats, generator
    → the Rollout one process would collect     states and a snapshot of its environments

**Same seed, same result.** Environment i is seeded ``seed + i`` and its actions draw from
its own generator (:func:`pgrl.collect.acting_generators`), whichever worker steps it, so
the concatenated rollout is the one a single process would collect with the same
vector environment kind. For discrete actions that makes a run with W workers equal to the
run in one process bit for bit; see ``docs/distributed.md`` for continuous actions.

**Fault tolerance.** Every result carries a snapshot of the worker's environments and
collector (cloudpickle). When a worker dies (its process, its node) Ray restarts it
(``max_restarts``); when its environment raises, it stays up. Either way the learner sends it
the last snapshot, which holds the environments and generators as they were at the start of
the lost collection, and asks again: the re-collected share equals the lost one. With
``worker_timeout`` a call that does not answer in time (an environment that hangs) counts as
a failure too: the worker is killed, restarted and restored the same way. After
``max_worker_failures`` failures of one worker the run stops with one line (and, with a run
directory, a checkpoint).

Ray is imported only when workers start (:func:`import_ray`), and pgrl imports this module
only when workers are asked for: a run without workers never imports Ray.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import socket
import time
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cloudpickle
import numpy as np
import torch

from pgrl.collect import ROLLOUT_FIELDS, ActFn, Collector, EpisodeStats, RolloutArrays, Step
from pgrl.envs import EnvSource
from pgrl.errors import ConfigError, PgrlError
from pgrl.spaces import SpaceInfo
from pgrl.types import Rollout

ACTING_MODULES: dict[str, tuple[str, ...]] = {
    "reinforce": ("policy",),
    "a2c": ("policy",),
    "ppo": ("policy", "obs_normalizer"),
    "ddpg": ("actor",),
    "td3": ("actor",),
    "sac": ("policy",),
}
"""The networks each algorithm's ``act`` reads: all a worker needs (an algorithm not listed
sends every network)."""

INLINE_WEIGHTS = 100 * 1024
"""Bytes of weights up to which they travel with each call instead of the object store (Ray's
own limit for arguments it inlines)."""

RESTART_TIMEOUT_S = 300.0
"""How long the learner waits for Ray to bring a dead worker back before giving up on it."""


class WorkerError(PgrlError):
    """Ray cannot start or reach the rollout workers, or one failed too often."""

    save_checkpoint = False
    """the loop saves a checkpoint before stopping (the run was under way)"""


class WorkerFailed(WorkerError):
    """A rollout worker failed more often than ``max_worker_failures`` allows."""

    save_checkpoint = True


def check_workers(workers: Any, num_envs: int, vectorization: str) -> None:
    """Reject a bad number of workers, or a vector environment that cannot be split, in one line.

    Example:
        >>> check_workers(3, 2, "auto")
        Traceback (most recent call last):
        ...
        pgrl.errors.ConfigError: workers=3 but the run has num_envs=2 environments: each worker \
needs at least one; use --workers 2 or fewer, or raise num_envs
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(
            f"workers must be an integer >= 1 (leave it out to collect in this process), "
            f"got {workers!r}"
        )
    if workers > num_envs:
        raise ConfigError(
            f"workers={workers} but the run has num_envs={num_envs} environments: each worker "
            f"needs at least one; use --workers {num_envs} or fewer, or raise num_envs"
        )
    if vectorization == "vector_entry_point":
        raise ConfigError(
            "vectorization='vector_entry_point' cannot be split across workers: Gymnasium's "
            "numpy-vectorized environments draw every copy's resets from one generator; use "
            "'sync' (the default with workers) or 'async', and resume a run collected that "
            "way without --workers"
        )


def shares(num_envs: int, workers: int) -> list[range]:
    """The environments of each worker: contiguous, sizes differing by at most one.

    Example:
        >>> shares(5, 2)
        [range(0, 3), range(3, 5)]
    """
    size, extra = divmod(num_envs, workers)
    bounds = [0]
    for w in range(workers):
        bounds.append(bounds[-1] + size + (1 if w < extra else 0))
    return [range(bounds[w], bounds[w + 1]) for w in range(workers)]


@dataclass(frozen=True)
class WorkerPlan:
    """What every worker builds itself from (sent once, pickled with cloudpickle)."""

    algo: str
    config: Any
    env: EnvSource
    seed: int
    vectorization: str
    networks: Mapping[str, Callable[..., torch.nn.Module]] = field(default_factory=dict)


@dataclass
class WorkerResult:
    """One worker's share of a collection, and its state after it."""

    arrays: RolloutArrays | Step | None
    """the transitions collected (None for a call that collects none)"""
    stats: EpisodeStats
    vector_steps: int
    generators: list[dict[str, Any]]
    snapshot: bytes | None
    """cloudpickle of the worker's collector (environments, generators, episode counters);
    None where the environments cannot be pickled"""
    snapshot_why_not: str = ""


class RolloutWorker:
    """One Ray actor: a share of the run's environments and a copy of the acting networks.

    Every call names the ``token`` the learner gave this worker: a worker that Ray restarted
    behind the learner's back (it knows no token) refuses work until it is restored, so a
    restart can never silently feed the learner fresh episodes.
    """

    def __init__(self, plan: bytes, first_env: int, count: int) -> None:
        from threadpoolctl import threadpool_limits

        from pgrl.algos import build_algorithm

        self.plan: WorkerPlan = cloudpickle.loads(plan)
        torch.set_num_threads(1)
        self._blas = threadpool_limits(1, "blas")  # kept: the limit holds while it lives
        self.first_env, self.count = first_env, count
        self.token: str | None = None
        self.version = -1
        self.collector = self._new_collector()
        self.algorithm = build_algorithm(
            self.plan.algo,
            self.plan.config,
            self.collector.spaces,
            self.collector.name,
            device="cpu",
            networks=dict(self.plan.networks) or None,
        )

    def _new_collector(self) -> Collector:
        plan = self.plan
        envs = plan.env.make_vec(self.count, vectorization=plan.vectorization)  # type: ignore[arg-type]
        return Collector(envs, plan.seed, plan.env.name, first_env=self.first_env)

    def _check(self, token: str) -> None:
        if token != self.token:
            raise RuntimeError("rollout worker restarted: it must be restored first")

    def begin(self, token: str) -> tuple[bytes, WorkerResult]:
        """Take the learner's token; return the spaces (pickled: the learner's own, writable
        arrays, not views of the object store) and the starting state."""
        self.token = token
        return cloudpickle.dumps(self.collector.spaces), self._result(None)

    def restore(
        self, token: str, snapshot: bytes | None, generators: list[dict[str, Any]], seed: int
    ) -> None:
        """Continue from ``snapshot`` (a result's); without one, from fresh episodes: reset
        with ``seed``, the acting generators at ``generators``."""
        if snapshot is not None:
            collector: Collector = cloudpickle.loads(snapshot)
        else:
            collector = self._new_collector()
            collector.reseed(seed)
            collector.set_generator_states(generators)
        old, self.collector = self.collector, collector
        if old is not collector:
            try:
                old.envs.close()
            except Exception:  # a broken environment: it is replaced anyway
                pass
        self.token, self.version = token, -1

    def _load(self, version: int, weights: bytes | None) -> None:
        """Load the acting networks' weights of ``version`` (once: a repeated call skips it)."""
        if weights is None or version == self.version:
            return
        modules = self.algorithm.modules()
        for name, state in pickle.loads(weights).items():
            modules[name].load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
        self.version = version

    def rollout(self, token: str, version: int, weights: Any, steps: int) -> WorkerResult:
        """The next ``steps`` vector steps of this worker's environments."""
        self._check(token)
        self._load(version, weights)
        return self._result(self.collector.rollout_arrays(self.algorithm.act, steps))

    def episodes(
        self, token: str, version: int, weights: Any, episodes_per_env: int
    ) -> WorkerResult:
        """``episodes_per_env`` whole episodes of each environment (:meth:`Collector.episodes`)."""
        self._check(token)
        self._load(version, weights)
        return self._result(self.collector.episode_arrays(self.algorithm.act, episodes_per_env))

    def pad(self, token: str, steps: int) -> WorkerResult:
        """``steps`` placeholder steps after this worker's episodes ended before the others'."""
        self._check(token)
        return self._result(self.collector.placeholder_arrays(self.algorithm.act, steps))

    def step(self, token: str, version: int, weights: Any, random: bool) -> WorkerResult:
        """One vector step: the policy's actions, or random warm-up actions."""
        self._check(token)
        self._load(version, weights)
        return self._result(self.collector.policy_step(None if random else self.algorithm.act))

    def reseed(self, token: str, seed: int) -> WorkerResult:
        """Cut the episodes in progress and reset with ``seed`` (a checkpoint boundary)."""
        self._check(token)
        self.collector.reseed(seed)
        return self._result(None)

    def set_generators(self, token: str, states: list[dict[str, Any]]) -> WorkerResult:
        """Continue the acting generators from a checkpoint's states."""
        self._check(token)
        self.collector.set_generator_states(states)
        return self._result(None)

    def _result(self, arrays: RolloutArrays | Step | None) -> WorkerResult:
        collector = self.collector
        stats, collector.stats = collector.stats, EpisodeStats()
        try:
            snapshot, why_not = cloudpickle.dumps(collector), ""
        except Exception as exc:  # e.g. AsyncVectorEnv's processes, a simulator handle
            snapshot, why_not = None, f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        return WorkerResult(
            arrays=arrays,
            stats=stats,
            vector_steps=collector.vector_steps,
            generators=collector.generator_states(),
            snapshot=snapshot,
            snapshot_why_not=why_not,
        )


def check_address(address: str, timeout: float = 5.0) -> None:
    """A ``host:port`` Ray address must accept a connection: one line if it does not."""
    if "://" in address or address in ("auto", "local") or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as exc:
        raise WorkerError(
            f"cannot reach the Ray cluster at {address} ({type(exc).__name__}: {exc}); start "
            "one with `ray start --head` and pass the address it prints (--ray-address), or "
            "leave --ray-address out to start Ray on this machine"
        ) from None


def import_ray() -> Any:
    """The ``ray`` module, or one line on how to install it."""
    try:
        import ray
    except ImportError:
        raise WorkerError(
            "rollout workers need Ray: pip install 'pgrl[ray]' (or pip install ray)"
        ) from None
    return ray


def connect(address: str | None, workers: int) -> bool:
    """Join the Ray cluster at ``address``, or start Ray on this machine; True if started here.

    A Ray already initialized in this process (``ray.init`` by the caller) is used as it is.
    """
    if address:
        check_address(address)
    ray = import_ray()
    if ray.is_initialized():
        return False
    if address:
        try:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise WorkerError(
                f"cannot join the Ray cluster at {address}: {str(exc).splitlines()[0]}"
            ) from None
        return False
    ray.init(
        num_cpus=max(os.cpu_count() or 1, workers),
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    return True


def shippable(what: str, obj: Any) -> bytes:
    """``obj`` pickled for the workers, or one line saying why it cannot travel."""
    try:
        return bytes(cloudpickle.dumps(obj))
    except Exception as exc:
        raise ConfigError(
            f"the {what} cannot be sent to Ray workers: it does not pickle "
            f"({type(exc).__name__}: {str(exc).splitlines()[0]}). Pass a registered id, an "
            "import path 'module:Class', a class or a module-level factory function"
        ) from None


class RayCollector:
    """The run's environments on ``workers`` Ray actors, behind the collector's interface.

    Build it, build the algorithm from its :attr:`spaces`, :meth:`attach` the algorithm, then
    use it as a :class:`pgrl.collect.Collector`: the ``act`` a method receives must be the
    attached algorithm's (the workers act with copies of its acting networks).
    """

    def __init__(
        self,
        plan: WorkerPlan,
        num_envs: int,
        workers: int,
        *,
        max_failures: int = 3,
        timeout: float | None = None,
        address: str | None = None,
    ) -> None:
        check_workers(workers, num_envs, plan.vectorization)
        if getattr(plan.config, "noise", None) == "ou":
            raise ConfigError(
                "noise='ou' keeps one Ornstein-Uhlenbeck process per environment in one "
                "process; with workers use noise='gaussian' (the default)"
            )
        if getattr(plan.config, "noise_correlation", 0.0) > 0:
            raise ConfigError(
                "noise_correlation keeps one noise process per environment in one process; "
                "with workers use noise_correlation=0 (the default)"
            )
        if plan.env.vector is not None:
            raise ConfigError(
                "workers build their own copies of the environment: pass its id, class or "
                "factory, not a ready vector environment"
            )
        shippable(f"environment {plan.env.name}", plan.env)  # the environment's own message
        blob = shippable("networks or config", plan)
        ray = import_ray()
        self._ray = ray
        self._started = connect(address, workers)
        self.address = address
        self.num_envs = num_envs
        self.name = plan.env.name
        self.seed = plan.seed
        self.max_failures = max_failures
        self.timeout = timeout
        self.shares = shares(num_envs, workers)
        self.env_steps = 0
        self._vector_steps = 0
        self.stats = EpisodeStats()
        self.failures = [0] * workers
        self.restarts = 0
        self._version = 0
        self._learner: Any = None
        self._acting: tuple[str, ...] = ACTING_MODULES.get(plan.algo, ())
        run = uuid.uuid4().hex[:8]
        self.names = [f"pgrl-{run}-worker-{w}" for w in range(workers)]
        self._tokens = [uuid.uuid4().hex for _ in range(workers)]
        remote: Any = ray.remote(RolloutWorker)
        self.workers: list[Any] = [
            remote.options(
                name=self.names[w],
                num_cpus=1,
                max_restarts=max_failures,
                max_task_retries=0,
            ).remote(blob, share.start, len(share))
            for w, share in enumerate(self.shares)
        ]
        self._results: list[WorkerResult] = []
        try:
            begun = self._gather_start(
                [w.begin.remote(t) for w, t in zip(self.workers, self._tokens, strict=True)]
            )
        except Exception:
            self.close()
            raise
        self.spaces: SpaceInfo = cloudpickle.loads(begun[0][0])
        self._results = [result for _, result in begun]
        self._warned = False

    def _gather_start(self, refs: list[Any]) -> list[Any]:
        """The workers' first answers, or one line on why they cannot start."""
        ray = self._ray
        _, pending = ray.wait(refs, num_returns=len(refs), timeout=RESTART_TIMEOUT_S)
        if pending:
            cpus = ray.cluster_resources().get("CPU", 0)
            raise WorkerError(
                f"{len(pending)} of {len(refs)} rollout workers could not start within "
                f"{RESTART_TIMEOUT_S:.0f} s: each needs one CPU and the Ray cluster has "
                f"{cpus:g}; use fewer workers or add nodes"
            )
        try:
            return list(ray.get(refs))
        except ray.exceptions.RayError as exc:
            raise WorkerError(f"a rollout worker could not start: {_first_line(exc)}") from None

    def attach(self, learner: Any) -> None:
        """The algorithm whose networks the workers act with."""
        self._learner = learner

    @property
    def vector_steps(self) -> int:
        """Vector steps taken, reset placeholders included (a checkpoint carries it)."""
        return self._vector_steps

    def restore_counts(self, env_steps: int, vector_steps: int) -> None:
        """Continue counting from a checkpoint's ``env_steps`` and ``vector_steps``."""
        self.env_steps = env_steps
        self._vector_steps = vector_steps

    def metrics(self) -> dict[str, float]:
        """``workers/restarts``: the workers restarted (or restored) since the run began."""
        return {"workers/restarts": float(self.restarts)}

    def generator_states(self) -> list[dict[str, Any]]:
        """Every environment's acting generator, in environment order (for checkpoints)."""
        return [state for result in self._results for state in result.generators]

    def set_generator_states(self, states: Sequence[Mapping[str, Any]]) -> None:
        """Continue every environment's acting generator from a checkpoint."""
        if len(states) != self.num_envs:
            from pgrl.errors import CheckpointError

            raise CheckpointError(
                f"the checkpoint holds {len(states)} acting generators for {self.num_envs} "
                "environments"
            )
        parts = [[dict(states[i]) for i in share] for share in self.shares]
        self._call(lambda w: ("set_generators", (parts[w],)))

    def reseed(self, seed: int) -> None:
        """Reset every environment with ``seed`` (environment i: ``seed + i``)."""
        self._call(lambda w: ("reseed", (seed,)))

    def _weights(self) -> tuple[int, Any]:
        """The acting networks' current weights, with a new version number.

        As NumPy arrays, pickled once: Ray serializes torch tensors slowly (milliseconds for
        a small network, which off-policy pays at every step). Weights larger than
        ``INLINE_WEIGHTS`` go through the object store, once for all workers; smaller ones
        travel with each call, as Ray itself sends small arguments.
        """
        modules = self._learner.modules()
        names = [n for n in self._acting if n in modules] or list(modules)
        payload = pickle.dumps(
            {
                name: {k: v.detach().cpu().numpy() for k, v in modules[name].state_dict().items()}
                for name in names
            },
            protocol=pickle.HIGHEST_PROTOCOL,
        )
        self._version += 1
        return self._version, payload if len(payload) <= INLINE_WEIGHTS else self._ray.put(payload)

    def _check_act(self, act: ActFn | None) -> None:
        if act is not None and getattr(act, "__self__", None) is not self._learner:
            raise PgrlError(
                "a RayCollector acts with its attached algorithm's networks only "
                "(RayCollector.attach)"
            )

    def rollout(self, act: ActFn, steps: int) -> Rollout:
        """The next ``steps`` vector steps of the N environments (T, N), as one process's."""
        self._check_act(act)
        version, weights = self._weights()
        results = self._call(lambda w: ("rollout", (version, weights, steps)))
        return RolloutArrays.join([_arrays(r) for r in results])

    def episodes(self, act: ActFn, episodes_per_env: int = 1) -> Rollout:
        """Whole episodes of every environment, padded as one process pads them."""
        self._check_act(act)
        version, weights = self._weights()
        results = self._call(lambda w: ("episodes", (version, weights, episodes_per_env)))
        # one process steps every environment until the last one's episodes end: so do they
        lengths = [len(_arrays(r).mask) for r in results]
        longest = max(lengths)
        short = {w for w, n in enumerate(lengths) if n < longest}
        if short:
            padded = self._call(lambda w: ("pad", (longest - lengths[w],)), only=short)
            for w, extra in padded.items():
                results[w] = _stacked(results[w], extra)
        return RolloutArrays.join([_arrays(r) for r in results])

    def policy_step(self, act: ActFn | None) -> Step:
        """One vector step of every environment: the policy's actions or random warm-up ones."""
        self._check_act(act)
        version, weights = (0, None) if act is None else self._weights()
        results = self._call(lambda w: ("step", (version, weights, act is None)))
        steps = [r.arrays for r in results]
        assert all(isinstance(s, Step) for s in steps)
        return Step(**{name: np.concatenate([getattr(s, name) for s in steps]) for name in STEP})

    def _call(
        self,
        request: Callable[[int], tuple[str, tuple[Any, ...]]],
        *,
        only: set[int] | None = None,
    ) -> Any:
        """Call a method on every worker (or those in ``only``), recovering failed ones.

        Returns the results in worker order (a dict by worker with ``only``: padding, whose
        vector steps the first call counted already), and counts their transitions.
        """
        ray = self._ray
        chosen = range(len(self.workers)) if only is None else sorted(only)
        refs = {w: self._submit(w, *request(w)) for w in chosen}
        sent = dict.fromkeys(chosen, time.monotonic())
        results: dict[int, WorkerResult] = {}
        for w in chosen:
            while True:
                try:
                    results[w] = ray.get(refs[w], timeout=self._time_left(sent[w]))
                    break
                except ray.exceptions.RayError as exc:
                    error: Exception = exc
                    if isinstance(exc, ray.exceptions.GetTimeoutError):
                        # a hung call (an environment that never returns): the actor answers
                        # nothing until it does, so end it; Ray restarts it, it is restored
                        ray.kill(self.workers[w], no_restart=False)
                        error = TimeoutError(f"no answer within worker_timeout={self.timeout:g} s")
                    self._recover(w, error)
                    refs[w], sent[w] = self._submit(w, *request(w)), time.monotonic()
        for w, result in results.items():
            self._results[w] = result
            if result.snapshot is None and not self._warned:
                self._warned = True
                warnings.warn(
                    f"the environments of {self.name} cannot be captured "
                    f"({result.snapshot_why_not}): a restarted worker starts fresh episodes, "
                    "and the run no longer equals an undisturbed one",
                    stacklevel=2,
                )
        self._account(results, vector_steps=only is None)
        return results if only is not None else [results[w] for w in chosen]

    def _account(self, results: Mapping[int, WorkerResult], vector_steps: bool) -> None:
        """Add the results' transitions and finished episodes to the run's counts."""
        parts = [results[w] for w in sorted(results)]
        steps = 0
        for part in parts:
            arrays = part.arrays
            if isinstance(arrays, Step):
                self.env_steps += int(np.count_nonzero(arrays.valid))
                steps = 1
            elif arrays is not None:
                self.env_steps += int(np.count_nonzero(arrays.mask))
                steps = len(arrays.mask)
        self.stats.merge([part.stats for part in parts])
        if vector_steps:
            self._vector_steps += steps

    def _time_left(self, sent: float) -> float | None:
        """Seconds a call sent at ``sent`` may still take (None: no ``worker_timeout``)."""
        if self.timeout is None:
            return None
        return max(sent + self.timeout - time.monotonic(), 0.0)

    def _submit(self, w: int, method: str, args: tuple[Any, ...]) -> Any:
        return getattr(self.workers[w], method).remote(self._tokens[w], *args)

    def _recover(self, w: int, error: Exception) -> None:
        """Count worker ``w``'s failure, then restore it from its last snapshot."""
        ray = self._ray
        share = self.shares[w]
        self.failures[w] += 1
        self.restarts += 1
        if self.failures[w] > self.max_failures:
            raise WorkerFailed(
                f"rollout worker {w} (environments {share.start}-{share.stop - 1}) failed "
                f"{self.failures[w]} times, more than max_worker_failures={self.max_failures}; "
                f"the last failure: {_first_line(error)}"
            )
        last = self._results[w]
        seed = int(np.random.SeedSequence([self.seed, w, self.failures[w]]).generate_state(1)[0])
        deadline = time.monotonic() + RESTART_TIMEOUT_S
        while True:  # Ray brings a dead actor back (max_restarts); a live one is restored as is
            try:
                restored = self.workers[w].restore.remote(
                    self._tokens[w], last.snapshot, last.generators, seed
                )
                # (a worker Ray cannot place, e.g. no CPU left in the cluster, never answers)
                ray.get(restored, timeout=max(deadline - time.monotonic(), 1.0))
                return
            except ray.exceptions.RayError as exc:
                if time.monotonic() > deadline or _permanently_dead(exc):
                    raise WorkerFailed(
                        f"rollout worker {w} (environments {share.start}-{share.stop - 1}) "
                        f"could not be restarted: {_first_line(exc)}"
                    ) from None
                time.sleep(0.5)

    def close(self) -> None:
        """Stop the workers, and Ray if this collector started it."""
        ray = self._ray
        for worker in self.workers:
            try:
                ray.kill(worker, no_restart=True)
            except Exception:
                pass
        self.workers = []
        if self._started and ray.is_initialized():
            ray.shutdown()


STEP = ("obs", "actions", "rewards", "next_obs", "terminated", "truncated", "valid")


def _arrays(result: WorkerResult) -> RolloutArrays:
    assert isinstance(result.arrays, RolloutArrays)
    return result.arrays


def _stacked(first: WorkerResult, then: WorkerResult) -> WorkerResult:
    """``first``'s rows followed by ``then``'s, with ``then``'s state after them."""
    a, b = _arrays(first), _arrays(then)
    joined = RolloutArrays.__new__(RolloutArrays)
    for name in ROLLOUT_FIELDS:
        setattr(joined, name, np.concatenate([getattr(a, name), getattr(b, name)]))
    return WorkerResult(
        arrays=joined,
        stats=first.stats,
        vector_steps=then.vector_steps,
        generators=then.generators,
        snapshot=then.snapshot,
        snapshot_why_not=then.snapshot_why_not,
    )


def _permanently_dead(error: Exception) -> bool:
    """Ray will not bring this actor back (its restarts are used up, or it was killed for good)."""
    text = str(error)
    return "max_restarts" in text or "no_restart=True" in text or "out of scope" in text


def _first_line(error: BaseException) -> str:
    cause = getattr(error, "cause", None) or error
    lines = [line for line in str(cause).splitlines() if line.strip()]
    text = lines[-1] if lines else type(cause).__name__
    return text if len(text) < 300 else text[:297] + "..."


def learner_bottleneck(collect_rate: float, update_rate: float) -> float:
    """The number of workers beyond which the learner, not collection, limits throughput.

    With W workers each collecting ``collect_rate`` env steps/s while the learner waits, and
    the learner consuming ``update_rate`` env steps/s of updates, one synchronous iteration of
    B steps takes B / (W · collect_rate) + B / update_rate: throughput
    1 / (1 / (W · c) + 1 / u) approaches u as W grows; collection stops being the larger
    term at W* = u / c.

    Example:
        >>> learner_bottleneck(1000.0, 8000.0)
        8.0
    """
    return math.inf if collect_rate <= 0 else update_rate / collect_rate

"""Scaling with Ray rollout workers: throughput with 1 and 2 workers against one process, and
a model of where the learner becomes the bottleneck.

    python -m pgrl.bench.scaling [--quick] [--repeats 3] [--steps 8192] [--out scaling.json]
    pgrl bench scaling ...

**Throughput.** PPO trains on an environment whose step costs about ``--cost-ms`` (1 ms) of
CPU (CartPole behind :class:`SlowStep`, a busy loop: the kind of environment workers are
for), in one process and with 1 and 2 workers, alternating in one run (local, 1, 2, local,
1, 2, ...) so that a change in the machine's load hits every configuration alike. Each figure
is environment steps over training seconds (Ray and the workers are started before the
clock runs); the median, min and max over repeats are reported, with the ratio of each
median to the local one. Two PPO workloads (``--workload``), both 8 environments × 128
steps, minibatches of 256: ``zoo``, the CartPole preset's 20 epochs per rollout (80 gradient
steps per 1,024 environment steps), and ``cleanrl``, CleanRL's ``ppo.py`` 4 epochs (16 gradient
steps). They differ only in how long the learner updates between collections, the quantity
the model below says bounds the speed-up.

**Where the learner becomes the bottleneck.** Synchronous on-policy collection alternates:
the workers collect a batch of B steps at c steps/s each, then the learner updates on it at
u steps/s (steps of batch consumed per second of update). With W workers one iteration takes
B / (W c) + B / u, so

    throughput(W) = 1 / (1 / (W c) + 1 / u)   →  u as W grows,

collection and update take equal time at W* = u / c, and beyond W₉₀ = 9 u / c more workers
add less than 10 % (throughput is within 10 % of u). Both rates are measured here: c from
one worker collecting with fixed weights, u from the learner's updates on collected rollouts.
``--env`` measures c and u on another environment (e.g. ``HalfCheetah-v5`` for PPO on
MuJoCo, without the busy loop).

Never asserted in a test (``BENCHMARKS.md``): run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

from pgrl.workers import learner_bottleneck

DEFAULT_COST_MS = 1.0


class SlowStep(gym.Wrapper):
    """Spends ``cost_ms`` of this thread's CPU time in a busy loop at every step."""

    def __init__(self, env: gym.Env, cost_ms: float = DEFAULT_COST_MS) -> None:
        super().__init__(env)
        self.cost_s = cost_ms / 1000.0

    def step(self, action: Any) -> Any:
        end = time.thread_time() + self.cost_s
        while time.thread_time() < end:
            pass
        return self.env.step(action)


def slow_cartpole(cost_ms: float = DEFAULT_COST_MS) -> gym.Env:
    """CartPole-v1 whose every step costs ``cost_ms`` of CPU (a module-level factory: Ray
    workers import it)."""
    return SlowStep(gym.make("CartPole-v1"), cost_ms)


WORKLOADS: dict[str, dict[str, Any]] = {
    "zoo": {"num_envs": 8, "rollout_steps": 128, "minibatch_size": 256},
    "cleanrl": {"num_envs": 8, "rollout_steps": 128, "minibatch_size": 256, "update_epochs": 4},
}
"""PPO settings per workload, over the CartPole preset (``zoo`` keeps its 20 epochs)."""


def _train_rate(
    steps: int, workers: int | None, cost_ms: float, seed: int, config: dict[str, Any]
) -> float:
    """Environment steps per training second of PPO on the slow CartPole."""
    import pgrl

    agent = pgrl.train(
        "ppo",
        slow_cartpole,
        steps,
        seed=seed,
        env_kwargs={"cost_ms": cost_ms},
        config=config,
        vectorization="sync",
        workers=workers,
        eval_episodes=0,
    )
    return agent.env_steps / max(agent.train_seconds, 1e-9)


def throughput(
    steps: int,
    repeats: int,
    cost_ms: float,
    worker_counts: Sequence[int] = (1, 2),
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Median, min and max steps/s of each configuration, measured alternately."""
    configs: list[int | None] = [None, *worker_counts]
    rates: dict[str, list[float]] = {_label(w): [] for w in configs}
    for repeat in range(repeats):
        for w in configs:
            rate = _train_rate(steps, w, cost_ms, repeat, config or WORKLOADS["zoo"])
            rates[_label(w)].append(rate)
    local = statistics.median(rates["local"])
    return {
        label: {
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
            "ratio_to_local": statistics.median(values) / local,
            "repeats": values,
        }
        for label, values in rates.items()
    }


def _label(workers: int | None) -> str:
    return "local" if workers is None else f"{workers} worker" + ("s" if workers > 1 else "")


def collection_rate(env: Any, env_kwargs: dict[str, Any], num_envs: int, rollouts: int) -> float:
    """c: environment steps per second one worker collects (fixed weights, no learner)."""
    from pgrl.algos import build_algorithm
    from pgrl.envs import resolve_env
    from pgrl.train import resolve_config
    from pgrl.workers import RayCollector, WorkerPlan

    source = resolve_env(env, env_kwargs)
    cfg = resolve_config("ppo", source.preset_id or source.name, {"num_envs": num_envs})
    plan = WorkerPlan(algo="ppo", config=cfg, env=source, seed=0, vectorization="sync")
    collector = RayCollector(plan, num_envs, 1)
    try:
        algorithm = build_algorithm("ppo", cfg, collector.spaces, source.name)
        collector.attach(algorithm)
        collector.rollout(algorithm.act, cfg.rollout_steps)  # warm-up: weights, first calls
        start = time.perf_counter()
        for _ in range(rollouts):
            collector.rollout(algorithm.act, cfg.rollout_steps)
        seconds = time.perf_counter() - start
    finally:
        collector.close()
    return rollouts * cfg.rollout_steps * num_envs / seconds


def update_rate(
    env: Any, num_envs: int, updates: int, overrides: dict[str, Any] | None = None
) -> float:
    """u: rollout steps per second of PPO's update (the learner's side, on the CPU)."""
    from pgrl.algos import build_algorithm
    from pgrl.collect import Collector
    from pgrl.envs import resolve_env
    from pgrl.train import resolve_config

    source = resolve_env(env)
    cfg = resolve_config(
        "ppo", source.preset_id or source.name, {**(overrides or {}), "num_envs": num_envs}
    )
    envs = source.make_vec(num_envs, vectorization="sync")
    try:
        collector = Collector(envs, 0, source.name)
        algorithm = build_algorithm("ppo", cfg, collector.spaces, source.name)
        rollout = collector.rollout(algorithm.act, cfg.rollout_steps)
        algorithm.update(rollout)  # warm-up
        start = time.perf_counter()
        for _ in range(updates):
            algorithm.update(rollout)
        seconds = time.perf_counter() - start
    finally:
        envs.close()
    return updates * cfg.rollout_steps * num_envs / seconds


def model(c: float, u: float, workers: Sequence[int] = (1, 2, 4, 8, 16, 32, 64)) -> dict[str, Any]:
    """The synchronous model's predicted throughput per worker count, W* and W₉₀.

    Example:
        >>> m = model(1000.0, 8000.0, workers=(1, 8))
        >>> m["w_equal"], m["w_90"], round(m["throughput"]["8"])
        (8.0, 72.0, 4000)
    """
    w_equal = learner_bottleneck(c, u)
    return {
        "collect_rate_per_worker": c,
        "update_rate": u,
        "w_equal": w_equal,
        "w_90": 9.0 * w_equal,
        "throughput": {str(w): 1.0 / (1.0 / (w * c) + 1.0 / u) for w in workers},
        # the most 2 workers can give over one process that collects and updates in turn
        "ceiling_2_workers": (1.0 / c + 1.0 / u) / (1.0 / (2.0 * c) + 1.0 / u),
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pgrl.bench.scaling", description=__doc__)
    p.add_argument("--quick", action="store_true", help="a tiny budget: checks that it runs")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=8192, help="steps per throughput measurement")
    p.add_argument("--cost-ms", type=float, default=DEFAULT_COST_MS, help="CPU ms per env step")
    p.add_argument(
        "--env",
        default=None,
        help="measure the model's rates on this environment (default: the slow CartPole)",
    )
    p.add_argument("--num-envs", type=int, default=8, help="environments per worker (model)")
    p.add_argument(
        "--workload",
        choices=[*WORKLOADS, "both"],
        default="both",
        help="PPO's update per rollout: the CartPole preset's 20 epochs (zoo), CleanRL's 4",
    )
    p.add_argument("--out", type=Path, default=None, help="also write the results as JSON")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.steps = 1, 2048
    names = list(WORKLOADS) if args.workload == "both" else [args.workload]
    import ray

    torch.set_num_threads(1)
    ray.init(num_cpus=max(os.cpu_count() or 1, 2), include_dashboard=False, log_to_driver=False)
    rollouts, updates = (2, 2) if args.quick else (10, 20)
    env: Any = args.env or slow_cartpole
    env_kwargs = {} if args.env else {"cost_ms": args.cost_ms}
    workloads: dict[str, Any] = {}
    try:
        c = collection_rate(env, env_kwargs, args.num_envs, rollouts)
        for name in names:
            config = WORKLOADS[name]
            rows = throughput(args.steps, args.repeats, args.cost_ms, config=config)
            # on the slow CartPole the model's u is this workload's; --env keeps its preset
            overrides = None if args.env else {k: v for k, v in config.items() if k != "num_envs"}
            u = update_rate(args.env or "CartPole-v1", args.num_envs, updates, overrides)
            workloads[name] = {"config": config, "throughput": rows, "model": model(c, u)}
    finally:
        ray.shutdown()
    result = {
        "date": date.today().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "cost_ms": args.cost_ms,
        "steps": args.steps,
        "model_env": args.env or f"CartPole-v1 + {args.cost_ms} ms/step",
        "workloads": workloads,
    }
    print(
        f"PPO, {args.steps} steps, environment step {args.cost_ms} ms of CPU ({result['machine']})"
    )
    for name, w in workloads.items():
        print(f" workload {name} ({w['config']}):")
        for label, row in w["throughput"].items():
            print(
                f"  {label:>9}: {row['median']:8.0f} steps/s (min {row['min']:.0f}, "
                f"max {row['max']:.0f}), {row['ratio_to_local']:.2f}x local"
            )
        m = w["model"]
        print(
            f"  model on {result['model_env']}: one worker collects {c:.0f} steps/s, the "
            f"learner updates {m['update_rate']:.0f} steps/s; 2 perfect workers: at most "
            f"{m['ceiling_2_workers']:.2f}x; collection = update time at W* = {m['w_equal']:.1f} workers, "
            f"within 10% of the learner's limit at W90 = {m['w_90']:.0f}"
        )
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

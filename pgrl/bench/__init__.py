"""Benchmarks: training throughput against the random-action limit, and time to solve.

    python -m pgrl.bench [--quick] [--repeats 3] [--seeds 3] [--out bench.json]
    pgrl bench ...

Throughput: environment steps per second of a whole training run (collection, learning,
logging), next to the *limit*: the same vector environment stepped with random actions and
nothing learning. The two are measured alternately in one process (A B A B ...), and the
median, min and max over repeats are reported, as ``BENCHMARKS.md`` asks.

Time to solve: wall-clock training seconds (evaluation excluded) and environment steps until
a deterministic 10-episode evaluation first reaches the threshold; median over seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

THRESHOLDS = {
    "CartPole-v1": 475.0,
    "Acrobot-v1": -100.0,
    "Pendulum-v1": -200.0,
    "LunarLander-v3": 200.0,
}


@dataclass(frozen=True)
class Workload:
    algo: str
    env: str
    steps: int  # steps per throughput measurement
    solve_budget: int  # budget for time-to-solve
    eval_every: int
    overrides: tuple[tuple[str, Any], ...] = ()


WORKLOADS = [
    # A2C at Stable-Baselines3's hyperparameters: 8 envs, 5-step rollouts, 64x64 networks
    Workload("a2c", "CartPole-v1", 50_000, 200_000, 5_000),
    Workload("reinforce", "CartPole-v1", 50_000, 300_000, 10_000),
    Workload("ddpg", "Pendulum-v1", 4_000, 20_000, 1_000),
]


def random_limit(env_id: str, num_envs: int, steps: int, seed: int = 0) -> float:
    """Environment steps per second of the vector env stepped with random actions."""
    from pgrl.envs import make_vec_env

    envs = make_vec_env(env_id, num_envs)
    envs.reset(seed=seed)
    envs.action_space.seed(seed)
    vector_steps = max(steps // num_envs, 1)
    start = time.perf_counter()
    for _ in range(vector_steps):
        envs.step(envs.action_space.sample())
    elapsed = time.perf_counter() - start
    envs.close()
    return vector_steps * num_envs / elapsed


def training_rate(work: Workload, seed: int = 0) -> float:
    """Steps per second of a training run (after the random warm-up for off-policy ones)."""
    from pgrl.train import train

    agent = train(
        work.algo,
        work.env,
        steps=work.steps,
        seed=seed,
        config=dict(work.overrides),
        eval_episodes=0,
        save=False,
        progress=False,
    )
    warmup = getattr(agent.config, "learning_starts", 0)
    if warmup:
        rows = [h for h in agent.history if h["env_steps"] > warmup + 1 and "steps_per_second" in h]
        return float(statistics.median(h["steps_per_second"] for h in rows))
    return agent.env_steps / agent.train_seconds


def time_to_solve(work: Workload, seed: int) -> dict[str, Any]:
    from pgrl.train import train

    threshold = THRESHOLDS[work.env]
    agent = train(
        work.algo,
        work.env,
        steps=work.solve_budget,
        seed=seed,
        config=dict(work.overrides),
        eval_every=work.eval_every,
        save=False,
        progress=False,
    )
    for row in agent.history:
        if row.get("eval_return_mean", -np.inf) >= threshold:
            return {
                "seed": seed,
                "solved": True,
                "env_steps": int(row["env_steps"]),
                "train_seconds": round(row["train_seconds"], 2),
            }
    return {"seed": seed, "solved": False, "env_steps": None, "train_seconds": None}


def environment() -> dict[str, Any]:
    return {
        "date": date.today().isoformat(),
        "torch": torch.__version__,
        "gymnasium": gym.__version__,
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run(workloads: Sequence[Workload], repeats: int, seeds: int) -> dict[str, Any]:
    from pgrl.train import resolve_config

    results: dict[str, Any] = {"environment": environment(), "throughput": [], "solve": []}
    for work in workloads:
        num_envs = resolve_config(work.algo, work.env, dict(work.overrides)).num_envs
        limits, rates = [], []
        for r in range(repeats):  # alternate A B A B so drift hits both sides alike
            limits.append(random_limit(work.env, num_envs, max(work.steps, 20_000), seed=r))
            rates.append(training_rate(work, seed=r))
        entry = {
            "algo": work.algo,
            "env": work.env,
            "num_envs": num_envs,
            "limit_steps_per_s": _summary(limits),
            "train_steps_per_s": _summary(rates),
            "ratio": statistics.median(t / lim for t, lim in zip(rates, limits, strict=True)),
        }
        results["throughput"].append(entry)
        print(
            f"{work.algo:<10} {work.env:<14} N={num_envs:<3} limit {entry['limit_steps_per_s']['median']:>10,.0f}/s"
            f"  train {entry['train_steps_per_s']['median']:>9,.0f}/s"
            f" [{entry['train_steps_per_s']['min']:,.0f}-{entry['train_steps_per_s']['max']:,.0f}]"
            f"  {100 * entry['ratio']:5.1f}% of limit",
            flush=True,
        )
    for work in workloads:
        if seeds <= 0:
            break
        runs = [time_to_solve(work, seed) for seed in range(seeds)]
        solved = [r for r in runs if r["solved"]]
        entry = {
            "algo": work.algo,
            "env": work.env,
            "threshold": THRESHOLDS[work.env],
            "budget": work.solve_budget,
            "seeds": seeds,
            "solved": len(solved),
            "median_seconds": statistics.median(r["train_seconds"] for r in solved)
            if solved
            else None,
            "median_steps": statistics.median(r["env_steps"] for r in solved) if solved else None,
            "runs": runs,
        }
        results["solve"].append(entry)
        med_s = "-" if entry["median_seconds"] is None else f"{entry['median_seconds']:.1f} s"
        med_n = "-" if entry["median_steps"] is None else f"{entry['median_steps']:,.0f} steps"
        print(
            f"{work.algo:<10} {work.env:<14} solve {THRESHOLDS[work.env]:g}: {len(solved)}/{seeds} seeds"
            f" within {work.solve_budget:,}; median {med_s}, {med_n}",
            flush=True,
        )
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pgrl bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--algos", nargs="*", help="only these algorithms")
    p.add_argument("--repeats", type=int, default=3, help="throughput repeats (A B A B ...)")
    p.add_argument("--seeds", type=int, default=3, help="seeds for time to solve (0: skip)")
    p.add_argument("--quick", action="store_true", help="1 repeat, 1 seed, short runs")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="bench-results/bench.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    workloads = [w for w in WORKLOADS if not args.algos or w.algo in args.algos]
    repeats, seeds = args.repeats, args.seeds
    if args.quick:
        workloads = [
            Workload(
                w.algo, w.env, max(w.steps // 5, 2_000), w.solve_budget, w.eval_every, w.overrides
            )
            for w in workloads
        ]
        repeats, seeds = 1, min(seeds, 1)
    env = environment()
    print(
        f"pgrl bench {env['date']}: torch {env['torch']} ({env['torch_threads']} thread), "
        f"gymnasium {env['gymnasium']}, numpy {env['numpy']}, {env['cores']} cores"
    )
    results = run(workloads, repeats, seeds)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0

"""Benchmarks: training throughput against the random-action limit, and time to solve.

    python -m pgrl.bench [--quick] [--repeats 3] [--seeds 3] [--peers] [--out bench.json]
    pgrl bench ...

Throughput: environment steps per second of a whole training run (collection, learning,
logging), next to the *limit*: the same vector environment stepped with random actions and
nothing learning. The two are measured alternately in one process (A B A B ...), and the
median, min and max over repeats are reported, as ``BENCHMARKS.md`` asks. Each workload names
its kind of vector environment (``pgrl.envs.make_vec_env``'s ``vectorization``); A2C on
CartPole is measured on Gymnasium's numpy-vectorized CartPole ("auto", what pgrl uses) and on
SyncVectorEnv (the vector environment of the random-action limit that the speed goal quotes).

Peers (``--peers``, needs ``pip install -e .[bench]``): Stable-Baselines3's A2C on the same
workload, alternating with pgrl's A2C runs in the same process; skipped with one line when
Stable-Baselines3 is not installed.

Time to solve: wall-clock training seconds (evaluation excluded) and environment steps until
a deterministic 10-episode evaluation first reaches the threshold; median over seeds.
"""

from __future__ import annotations

import argparse
import dataclasses
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
    # the kind of vector environment, for the limit and the training alike
    vectorization: str = "auto"
    limit_steps: int = 20_000  # the limit takes max(steps, limit_steps) random-action steps
    solve: bool = True  # also measure time to solve (False: throughput only)


WORKLOADS = [
    # A2C at Stable-Baselines3's hyperparameters: 8 envs, 5-step rollouts, 64x64 networks;
    # on gymnasium's numpy-vectorized CartPole (auto) and on SyncVectorEnv (the vector env of
    # the limit the speed goal quotes, and the kind SB3's DummyVecEnv is); time to solve once
    Workload("a2c", "CartPole-v1", 50_000, 200_000, 5_000),
    Workload("a2c", "CartPole-v1", 50_000, 200_000, 5_000, vectorization="sync", solve=False),
    Workload("reinforce", "CartPole-v1", 50_000, 300_000, 10_000),
    # PPO at rl-baselines3-zoo's CartPole hyperparameters (8 envs × 32 steps, 20 epochs of one
    # 256-minibatch, GAE λ 0.8, γ 0.98, linear learning rate 1e-3): pgrl's preset
    Workload("ppo", "CartPole-v1", 50_000, 100_000, 5_000),
    Workload("ddpg", "Pendulum-v1", 4_000, 20_000, 1_000),
    Workload("td3", "Pendulum-v1", 4_000, 20_000, 1_000),
    Workload("sac", "Pendulum-v1", 4_000, 20_000, 1_000),
]


def random_limit(
    env_id: str, num_envs: int, steps: int, seed: int = 0, vectorization: str = "auto"
) -> float:
    """Environment steps per second of the vector env stepped with random actions."""
    from pgrl.envs import make_vec_env

    envs = make_vec_env(env_id, num_envs, vectorization=vectorization)  # type: ignore[arg-type]
    envs.reset(seed=seed)
    envs.action_space.seed(seed)
    vector_steps = max(steps // num_envs, 1)
    start = time.perf_counter()
    for _ in range(vector_steps):
        envs.step(envs.action_space.sample())
    elapsed = time.perf_counter() - start
    envs.close()
    return vector_steps * num_envs / elapsed


def vector_env_name(env_id: str, num_envs: int, vectorization: str = "auto") -> str:
    """The class of the vector env a workload runs on (``CartPoleVectorEnv``, ``SyncVectorEnv``)."""
    from pgrl.envs import make_vec_env

    envs = make_vec_env(env_id, num_envs, vectorization=vectorization)  # type: ignore[arg-type]
    name = type(envs.unwrapped).__name__
    envs.close()
    return name


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
        vectorization=work.vectorization,
    )
    warmup = agent.algorithm.loop_settings().learning_starts
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
        vectorization=work.vectorization,
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


# Peers: Stable-Baselines3 (the optional `bench` extra). Only this module imports it, and only
# when --peers asks for it.
PEER_INSTALL = "pip install -e .[bench]"


def sb3_version() -> str | None:
    """Stable-Baselines3's version, or None when it cannot be imported."""
    try:
        import stable_baselines3
    except ImportError:
        return None
    return str(stable_baselines3.__version__)


PEER_ALGOS = ("a2c", "ppo")


def sb3_rate(work: Workload, seed: int, threads: int) -> float:
    """Steps per second of Stable-Baselines3's A2C or PPO on ``work`` (CartPole):
    ``model.learn`` only, as pgrl's ``train_seconds`` covers its training loop only (not
    building envs and networks)."""
    from stable_baselines3 import A2C, PPO
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

    from pgrl.train import resolve_config

    cfg = resolve_config(work.algo, work.env, dict(work.overrides))
    torch.set_num_threads(threads)
    envs = sb3_make_vec_env(work.env, n_envs=cfg.num_envs, seed=seed)  # a DummyVecEnv
    # device="cpu": pgrl runs on the CPU, and SB3 itself advises the CPU for MlpPolicy.
    model: Any
    if work.algo == "a2c":
        # pgrl's workload: 8 envs, 5-step rollouts, 64x64 actor and critic (SB3's default
        # MlpPolicy for A2C). Everything else is SB3's own default, which is also what pgrl's
        # preset follows (rl-baselines3-zoo): learning rate 7e-4, gamma 0.99, gae_lambda 1
        # (n-step returns to the rollout end), ent_coef 0, max_grad_norm 0.5. SB3 keeps RMSprop
        # and vf_coef 0.5 where pgrl uses Adam and value_coef 1; neither changes the work per
        # update much.
        model = A2C(
            "MlpPolicy", envs, n_steps=cfg.rollout_steps, seed=seed, verbose=0, device="cpu"
        )
    else:
        # pgrl's preset, which copies rl-baselines3-zoo's CartPole-v1 PPO (64x64 networks,
        # SB3's default MlpPolicy); clip range constant as in pgrl's preset (the zoo anneals
        # it); SB3's vf_coef 0.5 on the MSE equals pgrl's value_coef 1 on ½ MSE.
        def linear(start: float) -> Any:
            return lambda progress: progress * start if cfg.lr_schedule == "linear" else start

        model = PPO(
            "MlpPolicy",
            envs,
            n_steps=cfg.rollout_steps,
            batch_size=cfg.minibatch_size,
            n_epochs=cfg.update_epochs,
            gamma=cfg.gamma,
            gae_lambda=cfg.gae_lambda,
            learning_rate=linear(cfg.learning_rate),
            clip_range=cfg.clip_eps,
            ent_coef=cfg.entropy_coef,
            seed=seed,
            verbose=0,
            device="cpu",
        )
    start = time.perf_counter()
    model.learn(total_timesteps=work.steps)
    elapsed = time.perf_counter() - start
    envs.close()
    return model.num_timesteps / max(elapsed, 1e-9)


def peers(workloads: Sequence[Workload], repeats: int, threads: int) -> list[dict[str, Any]]:
    """SB3's A2C and PPO against pgrl's on CartPole-v1, alternating (A B C A B C ...)."""
    entries = []
    for algo in PEER_ALGOS:
        works = [w for w in workloads if w.algo == algo and w.env == "CartPole-v1"]
        if works:
            entries.append(_peer(works, repeats, threads))
    if not entries:
        print("peers: no workload has a peer here (Stable-Baselines3: a2c, ppo on CartPole-v1)")
    return entries


def _peer(works: list[Workload], repeats: int, threads: int) -> dict[str, Any]:
    from pgrl.train import resolve_config

    ref = works[0]
    num_envs = resolve_config(ref.algo, ref.env, dict(ref.overrides)).num_envs
    names = [vector_env_name(w.env, num_envs, w.vectorization) for w in works]
    ours: list[list[float]] = [[] for _ in works]
    theirs: list[float] = []
    for r in range(repeats):
        for rates, work in zip(ours, works, strict=True):
            torch.set_num_threads(threads)
            rates.append(training_rate(dataclasses.replace(work, steps=ref.steps), seed=r))
        theirs.append(sb3_rate(ref, seed=r, threads=threads))
    torch.set_num_threads(threads)
    entry: dict[str, Any] = {
        "algo": ref.algo,
        "env": ref.env,
        "num_envs": num_envs,
        "steps": ref.steps,
        "peer": f"stable-baselines3 {sb3_version()} {ref.algo.upper()}",
        "peer_vector_env": "DummyVecEnv",
        "peer_steps_per_s": _summary(theirs),
        "pgrl": [
            {
                "vectorization": work.vectorization,
                "vector_env": name,
                "train_steps_per_s": _summary(rates),
                "ratio_to_peer": statistics.median(
                    a / b for a, b in zip(rates, theirs, strict=True)
                ),
            }
            for work, name, rates in zip(works, names, ours, strict=True)
        ],
    }
    peer = entry["peer_steps_per_s"]
    print(
        f"peer {entry['peer']:<29} {ref.env:<14} N={num_envs:<3} {'DummyVecEnv':<18}"
        f" train {peer['median']:>9,.0f}/s [{peer['min']:,.0f}-{peer['max']:,.0f}]",
        flush=True,
    )
    for mine in entry["pgrl"]:
        rate = mine["train_steps_per_s"]
        print(
            f"pgrl {ref.algo:<29} {ref.env:<14} N={num_envs:<3} {mine['vector_env']:<18}"
            f" train {rate['median']:>9,.0f}/s [{rate['min']:,.0f}-{rate['max']:,.0f}]"
            f"  {mine['ratio_to_peer']:.2f}x SB3",
            flush=True,
        )
    return entry


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


def run(
    workloads: Sequence[Workload],
    repeats: int,
    seeds: int,
    with_peers: bool = False,
    threads: int = 1,
) -> dict[str, Any]:
    from pgrl.train import resolve_config

    results: dict[str, Any] = {"environment": environment(), "throughput": [], "solve": []}
    for work in workloads:
        num_envs = resolve_config(work.algo, work.env, dict(work.overrides)).num_envs
        vector_env = vector_env_name(work.env, num_envs, work.vectorization)
        limit_steps = max(work.steps, work.limit_steps)
        limits, rates = [], []
        for r in range(repeats):  # alternate A B A B so drift hits both sides alike
            limits.append(
                random_limit(
                    work.env, num_envs, limit_steps, seed=r, vectorization=work.vectorization
                )
            )
            rates.append(training_rate(work, seed=r))
        entry = {
            "algo": work.algo,
            "env": work.env,
            "num_envs": num_envs,
            "vectorization": work.vectorization,
            "vector_env": vector_env,
            "limit_steps_per_s": _summary(limits),
            "train_steps_per_s": _summary(rates),
            "ratio": statistics.median(t / lim for t, lim in zip(rates, limits, strict=True)),
        }
        results["throughput"].append(entry)
        print(
            f"{work.algo:<10} {work.env:<14} N={num_envs:<3} {vector_env:<18}"
            f" limit {entry['limit_steps_per_s']['median']:>10,.0f}/s"
            f"  train {entry['train_steps_per_s']['median']:>9,.0f}/s"
            f" [{entry['train_steps_per_s']['min']:,.0f}-{entry['train_steps_per_s']['max']:,.0f}]"
            f"  {100 * entry['ratio']:5.1f}% of limit",
            flush=True,
        )
    if with_peers:
        results["environment"]["stable_baselines3"] = sb3_version()
        results["peers"] = peers(workloads, repeats, threads)
    for work in workloads:
        if seeds <= 0:
            break
        if not work.solve:
            continue
        runs = [time_to_solve(work, seed) for seed in range(seeds)]
        solved = [r for r in runs if r["solved"]]
        entry = {
            "algo": work.algo,
            "env": work.env,
            "vectorization": work.vectorization,
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
    p.add_argument(
        "--peers",
        action="store_true",
        help=f"also measure Stable-Baselines3's A2C on the A2C workload ({PEER_INSTALL})",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="bench-results/bench.json")
    # every measurement this many steps (for tests; not a benchmark setting)
    p.add_argument("--steps", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    workloads = [w for w in WORKLOADS if not args.algos or w.algo in args.algos]
    repeats, seeds = args.repeats, args.seeds
    if args.quick:
        workloads = [dataclasses.replace(w, steps=max(w.steps // 5, 2_000)) for w in workloads]
        repeats, seeds = 1, min(seeds, 1)
    if args.steps is not None:
        n = max(args.steps, 1)
        workloads = [
            dataclasses.replace(
                w, steps=n, limit_steps=n, solve_budget=n, eval_every=min(w.eval_every, n)
            )
            for w in workloads
        ]
    env = environment()
    print(
        f"pgrl bench {env['date']}: torch {env['torch']} ({env['torch_threads']} thread), "
        f"gymnasium {env['gymnasium']}, numpy {env['numpy']}, {env['cores']} cores"
    )
    with_peers = args.peers
    if with_peers and sb3_version() is None:
        print(
            "peers: skipped, Stable-Baselines3 is not installed "
            f"(to compare with it: {PEER_INSTALL})",
            flush=True,
        )
        with_peers = False
    results = run(workloads, repeats, seeds, with_peers=with_peers, threads=args.threads)
    if args.peers and not with_peers:
        results["peers_skipped"] = f"Stable-Baselines3 is not installed ({PEER_INSTALL})"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0

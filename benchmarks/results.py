"""The results table: pgrl next to Stable-Baselines3 at rl-baselines3-zoo's hyperparameters.

    python benchmarks/results.py                          # every row, 3 seeds, docs/results/
    python benchmarks/results.py --rows 'CartPole-v1/*' --seeds 5
    python benchmarks/results.py --rows '*/sac' --budget-scale 0.1 --out /tmp/try
    python benchmarks/results.py --table-only             # redraw results.md/.png from the JSON
    python benchmarks/results.py --list                   # the rows, budgets and zoo sources

Each row (environment, algorithm, budget) trains pgrl with its preset (``pgrl.train``; an
environment without a preset gets pgrl's defaults for its spaces) and Stable-Baselines3 with
the rl-baselines3-zoo entry for that row (:data:`ZOO`), on this machine, at the same budget of
environment steps, seeds 0..N-1 each, one torch thread, the runs interleaved (pgrl seed 0,
SB3 seed 0, pgrl seed 1, ...) so that the machine's load falls on both alike.

Both sides are measured the same way:

* every ``budget / EVAL_POINTS`` environment steps, at the first update boundary past it, a
  deterministic evaluation of ``EVAL_EPISODES`` episodes (one per environment copy, episode
  i seeded ``seed + 1_000_003 + i``, pgrl's own evaluation seeds); with SB3's VecNormalize the
  observations are normalized with the training statistics, frozen, and rewards are raw;
* time to threshold: the first evaluation whose mean reaches :data:`THRESHOLDS` (environment
  steps, and training seconds up to then);
* training seconds: the training loop (``model.learn`` / pgrl's loop) without the evaluations
  and without building the environments and networks;
* the final score: a deterministic evaluation of ``FINAL_EPISODES`` fresh episodes (seeds
  ``seed + 2_000_003 + i``) after the budget.

Outputs in ``--out``: ``results.json`` (every run, appended as soon as it finishes; a rerun
skips the runs already there, so an interrupted run loses at most the run in progress),
``results.md`` (one row per environment/algorithm/budget: IQM of the final scores with a 95%
stratified-bootstrap interval per library, medians of time to threshold and training time,
and a verdict) and ``results.png`` (evaluation return against environment steps, one panel
per environment). ``docs/results-table.md`` explains the columns.

Needs Stable-Baselines3 (``pip install -e .[bench]``); pgrl itself never imports it.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

THRESHOLDS: dict[str, float] = {
    "CartPole-v1": 475.0,
    "Acrobot-v1": -100.0,
    "LunarLander-v3": 200.0,
    "Pendulum-v1": -200.0,
    "MountainCarContinuous-v0": 90.0,
}
"""The return that counts as solved (Gymnasium's reward_threshold where it has one; Pendulum
has none and -200 is the usual bar). No threshold for MuJoCo: their rows report none."""

EVAL_POINTS = 20
"""evaluations per run: every budget / 20 environment steps"""
EVAL_EPISODES = 10
"""deterministic episodes per periodic evaluation"""
FINAL_EPISODES = 20
"""deterministic episodes of the final evaluation, on seeds no periodic evaluation used"""
EVAL_SEED = 1_000_003
"""periodic evaluation i of seed s runs episodes seeded s + EVAL_SEED + i (pgrl's loop)"""
FINAL_SEED = 2_000_003
"""the final evaluation's episodes are seeded s + FINAL_SEED + i"""


@dataclass(frozen=True)
class Row:
    """One row of the table: an algorithm on an environment at a budget of environment steps."""

    env: str
    algo: str
    budget: int

    @property
    def name(self) -> str:
        return f"{self.env}/{self.algo}"


# The budgets (environment steps, the same for both libraries). Chosen to fit a 2-core CPU
# machine with one torch thread, not to match the papers' 1M-3M:
# - classic control, on-policy: the zoo's own n_timesteps (CartPole PPO 100k, A2C 500k;
#   Acrobot A2C 500k), or less where the zoo's is long for the task (Acrobot PPO 500k of 1M);
# - LunarLander: 1M for PPO (the zoo's), 1M for A2C (the zoo's 200k is too short to land);
# - Pendulum: the zoo's 20k for SAC and TD3, 100k for PPO;
# - MountainCarContinuous: 100k for all three (zoo: SAC 50k, TD3 300k, PPO 20k): one budget
#   for the exploration problem; TD3's 300k with [400, 300] networks costs about an hour a run;
# - MuJoCo (v5): 100k for SAC and TD3 (a tenth of the 1M of the published figures: one
#   update per step at [256, 256] / [400, 300] runs at roughly 50-100 steps/s here), 1M for PPO.
ROWS: list[Row] = [
    Row("CartPole-v1", "ppo", 100_000),
    Row("CartPole-v1", "a2c", 500_000),
    Row("Acrobot-v1", "ppo", 500_000),
    Row("Acrobot-v1", "a2c", 500_000),
    Row("LunarLander-v3", "ppo", 1_000_000),
    Row("LunarLander-v3", "a2c", 1_000_000),
    Row("Pendulum-v1", "sac", 20_000),
    Row("Pendulum-v1", "td3", 20_000),
    Row("Pendulum-v1", "ppo", 100_000),
    Row("MountainCarContinuous-v0", "sac", 100_000),
    Row("MountainCarContinuous-v0", "td3", 100_000),
    Row("MountainCarContinuous-v0", "ppo", 100_000),
    Row("HalfCheetah-v5", "sac", 100_000),
    Row("HalfCheetah-v5", "td3", 100_000),
    Row("HalfCheetah-v5", "ppo", 1_000_000),
    Row("Hopper-v5", "sac", 100_000),
    Row("Hopper-v5", "td3", 100_000),
    Row("Hopper-v5", "ppo", 1_000_000),
]


# rl-baselines3-zoo's hyperparameters, copied from the files named (DLR-RM/rl-baselines3-zoo,
# hyperparams/<algo>.yml; the commit is the version read) in the zoo's own notation, and turned
# into Stable-Baselines3 arguments by zoo_to_sb3() as the zoo's ExperimentManager does:
# "lin_X" a linear schedule from X to 0, `normalize` a VecNormalize (its gamma the
# algorithm's), `noise_type`/`noise_std` an action noise object, `n_envs` DummyVecEnv copies
# seeded seed + i. Entries the zoo holds for another version of the environment say so.
# `n_timesteps` is the zoo's budget, kept for the record; the budget here is ROWS'.
_PPO_YML = "rl-baselines3-zoo hyperparams/ppo.yml @208b6fd"
_A2C_YML = "rl-baselines3-zoo hyperparams/a2c.yml @c6c209e"
_SAC_YML = "rl-baselines3-zoo hyperparams/sac.yml @c94924e"
_TD3_YML = "rl-baselines3-zoo hyperparams/td3.yml @a02f4fb"
_RELU_256 = {
    "log_std_init": -2,
    "ortho_init": False,
    "activation_fn": "nn.ReLU",
    "net_arch": {"pi": [256, 256], "vf": [256, 256]},
}
# td3.yml's MuJoCo entry (HalfCheetah-v4: &mujoco-defaults, Hopper-v4 and the others merge it),
# as in the zoo at commit d29756c; the stored copy read here (@a02f4fb) predates it
_TD3_MUJOCO = {
    "n_timesteps": 1e6,
    "policy": "MlpPolicy",
    "learning_starts": 10000,
    "noise_type": "normal",
    "noise_std": 0.1,
    "train_freq": 1,
    "gradient_steps": 1,
    "learning_rate": 1e-3,
    "batch_size": 256,
    "policy_kwargs": {"net_arch": [400, 300]},
}
ZOO: dict[tuple[str, str], dict[str, Any]] = {
    ("ppo", "CartPole-v1"): {
        "source": f"{_PPO_YML} CartPole-v1 (tuned)",
        "hyperparams": {
            "n_envs": 8,
            "n_timesteps": 1e5,
            "policy": "MlpPolicy",
            "n_steps": 32,
            "batch_size": 256,
            "gae_lambda": 0.8,
            "gamma": 0.98,
            "n_epochs": 20,
            "ent_coef": 0.0,
            "learning_rate": "lin_0.001",
            "clip_range": "lin_0.2",
        },
    },
    ("a2c", "CartPole-v1"): {
        "source": f"{_A2C_YML} CartPole-v1",
        "hyperparams": {"n_envs": 8, "n_timesteps": 5e5, "policy": "MlpPolicy", "ent_coef": 0.0},
    },
    ("ppo", "Acrobot-v1"): {
        "source": f"{_PPO_YML} Acrobot-v1",
        "hyperparams": {
            "normalize": True,
            "n_envs": 16,
            "n_timesteps": 1e6,
            "policy": "MlpPolicy",
            "n_steps": 256,
            "gae_lambda": 0.94,
            "gamma": 0.99,
            "n_epochs": 4,
            "ent_coef": 0.0,
        },
    },
    ("a2c", "Acrobot-v1"): {
        "source": f"{_A2C_YML} Acrobot-v1",
        "hyperparams": {
            "normalize": True,
            "n_envs": 16,
            "n_timesteps": 5e5,
            "policy": "MlpPolicy",
            "ent_coef": 0.0,
        },
    },
    ("ppo", "LunarLander-v3"): {
        "source": f"{_PPO_YML} LunarLander-v2 (the zoo has no v3 entry; v3 fixes bugs of v2)",
        "hyperparams": {
            "n_envs": 16,
            "n_timesteps": 1e6,
            "policy": "MlpPolicy",
            "n_steps": 1024,
            "batch_size": 64,
            "gae_lambda": 0.98,
            "gamma": 0.999,
            "n_epochs": 4,
            "ent_coef": 0.01,
        },
    },
    ("a2c", "LunarLander-v3"): {
        "source": f"{_A2C_YML} LunarLander-v2 (the zoo has no v3 entry)",
        "hyperparams": {
            "n_envs": 8,
            "n_timesteps": 2e5,
            "policy": "MlpPolicy",
            "gamma": 0.995,
            "n_steps": 5,
            "learning_rate": "lin_0.00083",
            "ent_coef": 0.00001,
        },
    },
    ("sac", "Pendulum-v1"): {
        "source": f"{_SAC_YML} Pendulum-v1",
        "hyperparams": {"n_timesteps": 20000, "policy": "MlpPolicy", "learning_rate": 1e-3},
    },
    ("td3", "Pendulum-v1"): {
        "source": (
            f"{_TD3_YML} Pendulum-v0 (the stored copy's name; the zoo's later Pendulum-v1 entry "
            "has the same values, as the sb3/td3-Pendulum-v1 model card lists)"
        ),
        "hyperparams": {
            "n_timesteps": 20000,
            "policy": "MlpPolicy",
            "gamma": 0.98,
            "buffer_size": 200000,
            "learning_starts": 10000,
            "noise_type": "normal",
            "noise_std": 0.1,
            "gradient_steps": -1,
            "train_freq": [1, "episode"],
            "learning_rate": 1e-3,
            "policy_kwargs": {"net_arch": [400, 300]},
        },
    },
    ("ppo", "Pendulum-v1"): {
        "source": f"{_PPO_YML} Pendulum-v1 (tuned)",
        "hyperparams": {
            "n_envs": 4,
            "n_timesteps": 1e5,
            "policy": "MlpPolicy",
            "n_steps": 1024,
            "gae_lambda": 0.95,
            "gamma": 0.9,
            "n_epochs": 10,
            "ent_coef": 0.0,
            "learning_rate": 1e-3,
            "clip_range": 0.2,
            "use_sde": True,
            "sde_sample_freq": 4,
        },
    },
    ("sac", "MountainCarContinuous-v0"): {
        "source": f"{_SAC_YML} MountainCarContinuous-v0 (tuned)",
        "hyperparams": {
            "n_timesteps": 50000,
            "policy": "MlpPolicy",
            "learning_rate": 3e-4,
            "buffer_size": 50000,
            "batch_size": 512,
            "ent_coef": 0.1,
            "train_freq": 32,
            "gradient_steps": 32,
            "gamma": 0.9999,
            "tau": 0.01,
            "learning_starts": 0,
            "use_sde": True,
            "policy_kwargs": {"log_std_init": -3.67, "net_arch": [64, 64]},
        },
    },
    ("td3", "MountainCarContinuous-v0"): {
        "source": f"{_TD3_YML} MountainCarContinuous-v0 (tuned)",
        "hyperparams": {
            "n_timesteps": 300000,
            "policy": "MlpPolicy",
            "noise_type": "ornstein-uhlenbeck",
            "noise_std": 0.5,
        },
    },
    ("ppo", "MountainCarContinuous-v0"): {
        "source": f"{_PPO_YML} MountainCarContinuous-v0 (tuned)",
        "hyperparams": {
            "normalize": True,
            "n_envs": 1,
            "n_timesteps": 20000,
            "policy": "MlpPolicy",
            "batch_size": 256,
            "n_steps": 8,
            "gamma": 0.9999,
            "learning_rate": 7.77e-05,
            "ent_coef": 0.00429,
            "clip_range": 0.1,
            "n_epochs": 10,
            "gae_lambda": 0.9,
            "max_grad_norm": 5,
            "vf_coef": 0.19,
            "use_sde": True,
            "policy_kwargs": {"log_std_init": -3.29, "ortho_init": False},
        },
    },
    ("sac", "HalfCheetah-v5"): {
        "source": f"{_SAC_YML} HalfCheetah-v3 (&mujoco-defaults; no v5 entry)",
        "hyperparams": {"n_timesteps": 1e6, "policy": "MlpPolicy", "learning_starts": 10000},
    },
    ("sac", "Hopper-v5"): {
        "source": f"{_SAC_YML} Hopper-v3 (<<: *mujoco-defaults; no v5 entry)",
        "hyperparams": {"n_timesteps": 1e6, "policy": "MlpPolicy", "learning_starts": 10000},
    },
    ("td3", "HalfCheetah-v5"): {
        "source": (
            "rl-baselines3-zoo hyperparams/td3.yml @d29756c HalfCheetah-v4 (&mujoco-defaults; "
            "no v5 entry)"
        ),
        "hyperparams": _TD3_MUJOCO,
    },
    ("td3", "Hopper-v5"): {
        "source": (
            "rl-baselines3-zoo hyperparams/td3.yml @d29756c Hopper-v4 (<<: *mujoco-defaults; "
            "no v5 entry)"
        ),
        "hyperparams": _TD3_MUJOCO,
    },
    ("ppo", "HalfCheetah-v5"): {
        "source": f"{_PPO_YML} HalfCheetah-v4 (tuned; no v5 entry)",
        "hyperparams": {
            "normalize": True,
            "n_envs": 1,
            "policy": "MlpPolicy",
            "n_timesteps": 1e6,
            "batch_size": 64,
            "n_steps": 512,
            "gamma": 0.98,
            "learning_rate": 2.0633e-05,
            "ent_coef": 0.000401762,
            "clip_range": 0.1,
            "n_epochs": 20,
            "gae_lambda": 0.92,
            "max_grad_norm": 0.8,
            "vf_coef": 0.58096,
            "policy_kwargs": _RELU_256,
        },
    },
    ("ppo", "Hopper-v5"): {
        "source": f"{_PPO_YML} Hopper-v4 (tuned; no v5 entry)",
        "hyperparams": {
            "normalize": True,
            "n_envs": 1,
            "policy": "MlpPolicy",
            "n_timesteps": 1e6,
            "batch_size": 32,
            "n_steps": 512,
            "gamma": 0.999,
            "learning_rate": 9.80828e-05,
            "ent_coef": 0.00229519,
            "clip_range": 0.2,
            "n_epochs": 5,
            "gae_lambda": 0.99,
            "max_grad_norm": 0.7,
            "vf_coef": 0.835671,
            "policy_kwargs": _RELU_256,
        },
    },
}


# ---------------------------------------------------------------------------------------------
# Pure functions: row selection, the zoo's notation, thresholds, statistics, the table.


def select_rows(patterns: Sequence[str] | None, rows: Sequence[Row] = ROWS) -> list[Row]:
    """The rows whose ``env/algo`` matches one of the glob ``patterns`` (all rows for none).

    A pattern without ``/`` matches the environment or the algorithm: ``ppo``, ``Hopper-v5``,
    ``*Car*``; with one it matches both: ``Pendulum-v1/sac``, ``*/td3``.

    >>> [r.name for r in select_rows(["Pendulum-v1/s*", "a2c"])][:3]
    ['CartPole-v1/a2c', 'Acrobot-v1/a2c', 'LunarLander-v3/a2c']
    """
    if not patterns:
        return list(rows)
    chosen = []
    for row in rows:
        for pattern in patterns:
            if "/" in pattern:
                hit = fnmatch.fnmatchcase(row.name, pattern)
            else:
                hit = fnmatch.fnmatchcase(row.env, pattern) or fnmatch.fnmatchcase(
                    row.algo, pattern
                )
            if hit:
                chosen.append(row)
                break
    return chosen


def scaled_budget(budget: int, scale: float) -> int:
    """``budget × scale``, at least 1,000 steps, rounded to a multiple of 100."""
    return max(1_000, round(budget * scale / 100) * 100)


def eval_every(budget: int) -> int:
    """Environment steps between periodic evaluations: ``EVAL_POINTS`` per run."""
    return max(budget // EVAL_POINTS, 1)


def linear_schedule(initial: float) -> Callable[[float], float]:
    """The zoo's ``lin_X``: X × the fraction of the budget left (SB3's ``progress_remaining``).

    >>> linear_schedule(0.5)(1.0), linear_schedule(0.5)(0.25)
    (0.5, 0.125)
    """

    def schedule(progress_remaining: float) -> float:
        return progress_remaining * initial

    return schedule


def zoo_to_sb3(hyperparams: Mapping[str, Any], act_dim: int | None = None) -> dict[str, Any]:
    """The zoo's entry as Stable-Baselines3 arguments, preprocessed as the zoo's
    ExperimentManager does (``_preprocess_hyperparams``, ``_preprocess_action_noise``).

    Returns a dict with the algorithm's keyword arguments under ``"kwargs"`` and the
    environment settings apart: ``n_envs`` (default 1), ``normalize`` (VecNormalize keyword
    arguments, or None) and ``policy``.

    >>> out = zoo_to_sb3({"n_envs": 8, "normalize": True, "gamma": 0.98, "n_timesteps": 1e5,
    ...                   "policy": "MlpPolicy", "train_freq": [1, "episode"]})
    >>> out["n_envs"], out["normalize"], out["kwargs"]
    (8, {'gamma': 0.98}, {'gamma': 0.98, 'train_freq': (1, 'episode')})
    """
    hp = {k: v for k, v in hyperparams.items()}
    hp.pop("n_timesteps", None)
    n_envs = int(hp.pop("n_envs", 1))
    policy = hp.pop("policy", "MlpPolicy")
    normalize: dict[str, Any] | None = None
    if hp.pop("normalize", False):
        # the zoo: "Use the same discount factor as for the algorithm"
        normalize = {"gamma": hp["gamma"]} if "gamma" in hp else {}
    for key in ("learning_rate", "clip_range"):
        if isinstance(hp.get(key), str) and hp[key].startswith("lin_"):
            hp[key] = linear_schedule(float(hp[key][4:]))
    if isinstance(hp.get("train_freq"), list):
        hp["train_freq"] = tuple(hp["train_freq"])
    if "policy_kwargs" in hp:
        kwargs = dict(hp["policy_kwargs"])
        if kwargs.get("activation_fn") == "nn.ReLU":
            kwargs["activation_fn"] = torch.nn.ReLU
        hp["policy_kwargs"] = kwargs
    noise_type = hp.pop("noise_type", None)
    noise_std = hp.pop("noise_std", None)
    if noise_type is not None:
        from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

        if act_dim is None:
            raise ValueError("action noise needs the action dimension")
        cls = NormalActionNoise if "normal" in noise_type else OrnsteinUhlenbeckActionNoise
        hp["action_noise"] = cls(mean=np.zeros(act_dim), sigma=noise_std * np.ones(act_dim))
    return {"n_envs": n_envs, "normalize": normalize, "policy": policy, "kwargs": hp}


def first_reaching(
    curve: Sequence[Sequence[float]], threshold: float | None
) -> dict[str, float] | None:
    """The first evaluation point ``(env_steps, mean return, train_seconds)`` at or above
    ``threshold``, as ``{"steps", "seconds"}``; None when none reaches it (or no threshold).

    >>> first_reaching([[1000, 10.0, 1.5], [2000, 480.0, 3.0], [3000, 500.0, 4.0]], 475.0)
    {'steps': 2000, 'seconds': 3.0}
    """
    if threshold is None:
        return None
    for steps, value, seconds in curve:
        if value >= threshold:
            return {"steps": int(steps), "seconds": float(seconds)}
    return None


def interval(scores: Sequence[float]) -> tuple[float, float, float]:
    """IQM of the final scores with its 95% percentile-bootstrap interval over seeds
    (:func:`pgrl.plot.stratified_bootstrap_ci`, one stratum). Under 4 seeds the IQM cuts
    nothing: it is the mean.

    >>> interval([1.0, 3.0])
    (2.0, 1.0, 3.0)
    """
    from pgrl.plot import stratified_bootstrap_ci

    point, lo, hi = stratified_bootstrap_ci(np.asarray(scores, dtype=np.float64), "iqm")
    return float(point), float(lo), float(hi)


PGRL_OK = "pgrl within SB3's interval or better"
PGRL_WORSE = "pgrl worse"


def verdict(pgrl_point: float | None, sb3_interval: tuple[float, float, float] | None) -> str:
    """``PGRL_OK`` when pgrl's IQM is at least the low end of SB3's interval, else
    ``PGRL_WORSE``; "incomplete" when a side has no runs.

    >>> verdict(95.0, (100.0, 90.0, 110.0)), verdict(89.0, (100.0, 90.0, 110.0))
    ("pgrl within SB3's interval or better", 'pgrl worse')
    """
    if pgrl_point is None or sb3_interval is None:
        return "incomplete"
    return PGRL_OK if pgrl_point >= sb3_interval[1] else PGRL_WORSE


def run_key(run: Mapping[str, Any]) -> tuple[str, str, str, int, int]:
    """What makes a run the same run: library, algorithm, environment, seed and budget."""
    return (run["lib"], run["algo"], run["env"], int(run["seed"]), int(run["budget"]))


def pending_runs(
    rows: Sequence[Row], seeds: Sequence[int], done: Iterable[Mapping[str, Any]]
) -> list[tuple[Row, int, str]]:
    """The runs still to do, interleaved: per row, pgrl seed 0, SB3 seed 0, pgrl seed 1, ...

    >>> row = Row("CartPole-v1", "ppo", 1000)
    >>> done = [{"lib": "pgrl", "algo": "ppo", "env": "CartPole-v1", "seed": 0, "budget": 1000}]
    >>> [(lib, seed) for _, seed, lib in pending_runs([row], [0, 1], done)]
    [('sb3', 0), ('pgrl', 1), ('sb3', 1)]
    """
    have = {run_key(r) for r in done}
    todo = []
    for row in rows:
        for seed in seeds:
            for lib in ("pgrl", "sb3"):
                if (lib, row.algo, row.env, seed, row.budget) not in have:
                    todo.append((row, seed, lib))
    return todo


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (environment, algorithm, budget), in :data:`ROWS` order (others after):
    per library the IQM of the final scores with its interval, the medians of time to
    threshold over the seeds that reached it (and how many did), the median training
    seconds; and the verdict."""
    order = {(r.env, r.algo): i for i, r in enumerate(ROWS)}
    groups: dict[tuple[str, str, int], dict[str, list[Mapping[str, Any]]]] = {}
    for run in runs:
        key = (run["env"], run["algo"], int(run["budget"]))
        groups.setdefault(key, {}).setdefault(run["lib"], []).append(run)
    entries = []
    for env, algo, budget in sorted(
        groups, key=lambda k: (order.get((k[0], k[1]), len(order)), k[0], k[1], k[2])
    ):
        entry: dict[str, Any] = {
            "env": env,
            "algo": algo,
            "budget": budget,
            "threshold": THRESHOLDS.get(env),
        }
        for lib in ("pgrl", "sb3"):
            lib_runs = sorted(groups[(env, algo, budget)].get(lib, []), key=lambda r: r["seed"])
            if not lib_runs:
                entry[lib] = None
                continue
            scores = [float(r["final_eval"]["mean"]) for r in lib_runs]
            reached = [r["time_to_threshold"] for r in lib_runs if r["time_to_threshold"]]
            entry[lib] = {
                "seeds": [int(r["seed"]) for r in lib_runs],
                "scores": scores,
                "iqm": interval(scores),
                "solved": len(reached),
                "threshold_steps": _median([t["steps"] for t in reached]),
                "threshold_seconds": _median([t["seconds"] for t in reached]),
                "train_seconds": _median([float(r["train_seconds"]) for r in lib_runs]),
            }
        pgrl_point = entry["pgrl"]["iqm"][0] if entry["pgrl"] else None
        entry["verdict"] = verdict(pgrl_point, entry["sb3"]["iqm"] if entry["sb3"] else None)
        entries.append(entry)
    return entries


def _fmt_score(side: Mapping[str, Any] | None) -> str:
    if side is None:
        return "–"
    point, lo, hi = side["iqm"]
    return f"{point:.1f} [{lo:.1f}, {hi:.1f}] (n={len(side['scores'])})"


def _fmt_threshold(side: Mapping[str, Any] | None, threshold: float | None) -> str:
    if side is None or threshold is None:
        return "–"
    n = len(side["scores"])
    if not side["solved"]:
        return f"not reached (0/{n})"
    return (
        f"{side['threshold_steps']:,.0f} / {side['threshold_seconds']:.1f} s ({side['solved']}/{n})"
    )


def _fmt_seconds(side: Mapping[str, Any] | None) -> str:
    return "–" if side is None else f"{side['train_seconds']:.0f}"


TABLE_HEADER = (
    "| environment | algo | budget | pgrl IQM [95% CI] | SB3 IQM [95% CI] | threshold "
    "| pgrl to threshold: steps / s (seeds) | SB3 to threshold: steps / s (seeds) "
    "| pgrl train s | SB3 train s | verdict |"
)


def table_lines(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """The markdown table: header, rule and one line per entry of :func:`summarize`."""
    lines = [TABLE_HEADER, "|" + "---|" * (TABLE_HEADER.count("|") - 1)]
    for e in entries:
        threshold = "–" if e["threshold"] is None else f"{e['threshold']:g}"
        lines.append(
            f"| {e['env']} | {e['algo'].upper()} | {e['budget']:,} | {_fmt_score(e['pgrl'])} "
            f"| {_fmt_score(e['sb3'])} | {threshold} "
            f"| {_fmt_threshold(e['pgrl'], e['threshold'])} "
            f"| {_fmt_threshold(e['sb3'], e['threshold'])} "
            f"| {_fmt_seconds(e['pgrl'])} | {_fmt_seconds(e['sb3'])} | {e['verdict']} |"
        )
    return lines


def markdown(runs: Sequence[Mapping[str, Any]]) -> str:
    """``results.md``: how it was made, the table, and where each side's settings came from."""
    entries = summarize(runs)
    commands = sorted({str(r.get("command") or "") for r in runs} - {""})
    machines = sorted({_machine_line(r) for r in runs})
    dates = sorted({str(r["date"])[:10] for r in runs})
    lines = [
        "# pgrl next to Stable-Baselines3",
        "",
        *(f"Command: `{c}`  " for c in commands),
        f"Dates: {', '.join(dates) or '–'}  ",
        *(f"Machine: {m}  " for m in machines),
        "",
        f"Final score: deterministic return over {FINAL_EPISODES} episodes after the budget; "
        "IQM over seeds with a 95% percentile-bootstrap interval (the mean, under 4 seeds). "
        f"Time to threshold: the first of {EVAL_POINTS} periodic deterministic "
        f"{EVAL_EPISODES}-episode evaluations at or above the threshold, medians over the seeds "
        "that reached it. Train s: median training seconds, evaluations excluded. "
        "See docs/results-table.md.",
        "",
        *table_lines(entries),
        "",
        "## Settings",
        "",
        "| environment | algo | pgrl | Stable-Baselines3 |",
        "|---|---|---|---|",
    ]
    seen = set()
    for run in runs:
        key = (run["env"], run["algo"])
        if key in seen:
            continue
        seen.add(key)
        pgrl_run = next(
            (r for r in runs if r["lib"] == "pgrl" and (r["env"], r["algo"]) == key), None
        )
        sb3_run = next(
            (r for r in runs if r["lib"] == "sb3" and (r["env"], r["algo"]) == key), None
        )
        pgrl_text = pgrl_run["settings"]["defaults"] if pgrl_run else "–"
        sb3_text = sb3_run["settings"]["source"] if sb3_run else "–"
        lines.append(f"| {key[0]} | {key[1].upper()} | {pgrl_text} | {sb3_text} |")
    lines.append("")
    return "\n".join(lines)


def _machine_line(run: Mapping[str, Any]) -> str:
    m = run["machine"]
    v = run["versions"]
    return (
        f"{m.get('cores')} cores ({m.get('machine')}), torch {v.get('torch')} "
        f"({m.get('torch_threads')} thread), gymnasium {v.get('gymnasium')}, "
        f"stable-baselines3 {v.get('stable_baselines3')}, pgrl {v.get('pgrl')}"
    )


# ---------------------------------------------------------------------------------------------
# The figure.


def draw_figure(runs: Sequence[Mapping[str, Any]], out: Path) -> Path | None:
    """``results.png``: one panel per environment, evaluation return against environment steps,
    per (algorithm, library) the mean over seeds with its 95% bootstrap band; pgrl solid,
    SB3 dashed, one colour per algorithm; the threshold dotted."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from pgrl.plot import evaluation_grid, stratified_bootstrap_ci

    groups: dict[str, dict[tuple[str, int, str], list[Mapping[str, Any]]]] = {}
    for run in runs:
        if run["curve"]:
            groups.setdefault(run["env"], {}).setdefault(
                (run["algo"], int(run["budget"]), run["lib"]), []
            ).append(run)
    if not groups:
        return None
    env_order = [r.env for r in ROWS]
    envs = sorted(groups, key=lambda e: env_order.index(e) if e in env_order else len(ROWS))
    cols = min(4, len(envs))
    nrows = math.ceil(len(envs) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.4 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    colors = {"ppo": "C0", "a2c": "C1", "sac": "C2", "td3": "C3"}
    for i, env in enumerate(envs):
        ax = fig.add_subplot(nrows, cols, i + 1)
        for (algo, budget, lib), members in sorted(groups[env].items()):
            steps = [np.array([p[0] for p in r["curve"]], dtype=np.float64) for r in members]
            values = [np.array([p[1] for p in r["curve"]], dtype=np.float64) for r in members]
            try:
                grid, curves = evaluation_grid(steps, values)
            except Exception:  # seeds share no range of steps: leave the group out of the plot
                continue
            point, lo, hi = stratified_bootstrap_ci(curves[:, None, :], "mean")
            budgets = {b for (a, b, _) in groups[env] if a == algo}
            label = f"{lib} {algo.upper()}" + (f" {budget:,}" if len(budgets) > 1 else "")
            style = "-" if lib == "pgrl" else "--"
            color = colors.get(algo, "C4")
            ax.plot(
                grid,
                point,
                style,
                marker="o",
                markersize=2,
                color=color,
                label=f"{label} (n={len(members)})",
            )
            ax.fill_between(grid, lo, hi, color=color, alpha=0.15, linewidth=0)
        if env in THRESHOLDS:
            ax.axhline(THRESHOLDS[env], color="grey", linestyle=":", linewidth=1)
        ax.set_title(env)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("evaluation return")
        ax.legend(fontsize=7)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out


# ---------------------------------------------------------------------------------------------
# The runs.


def machine_info() -> dict[str, Any]:
    """Where the runs ran: cores, architecture, torch threads, host name."""
    return {
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "node": platform.node(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


def versions() -> dict[str, str | None]:
    import gymnasium

    import pgrl
    from pgrl.bench import sb3_version

    return {
        "pgrl": pgrl.__version__,
        "torch": torch.__version__,
        "gymnasium": gymnasium.__version__,
        "numpy": np.__version__,
        "stable_baselines3": sb3_version(),
    }


def run_pgrl(
    row: Row,
    seed: int,
    final_episodes: int = FINAL_EPISODES,
    config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Train pgrl on ``row`` (its preset, or its defaults for the spaces; ``config``
    overrides hyperparameters, for ``benchmarks/pgrl_variant.py``) and evaluate it."""
    import pgrl
    from pgrl.agent import config_dict

    start = time.perf_counter()
    agent = pgrl.train(
        row.algo,
        row.env,
        steps=row.budget,
        seed=seed,
        config=dict(config) if config else None,
        eval_every=eval_every(row.budget),
        eval_episodes=EVAL_EPISODES,
        save=False,
        progress=False,
        threads=1,
    )
    curve = [
        [int(h["env_steps"]), float(h["eval_return_mean"]), float(h["train_seconds"])]
        for h in agent.history
        if "eval_return_mean" in h
    ]
    final = agent.evaluate(final_episodes, seed=seed + FINAL_SEED)
    return {
        "env_steps": int(agent.env_steps),
        "train_seconds": float(agent.train_seconds),
        "eval_seconds": float(agent.eval_seconds),
        "wall_seconds": time.perf_counter() - start,
        "curve": curve,
        "final_eval": _eval_record(final.returns),
        "settings": {"defaults": agent.defaults, "config": _jsonable(config_dict(agent.config))},
    }


def sb3_evaluate(
    model: Any, env_id: str, episodes: int, seed: int, vec_normalize: Any = None
) -> list[float]:
    """Deterministic returns of ``episodes`` episodes, one per copy of ``env_id``, copy i reset
    with seed ``seed + i`` (as pgrl's evaluation seeds its vector environment); with
    ``vec_normalize`` the observations are normalized by its statistics, which do not move."""
    import gymnasium as gym

    envs = [gym.make(env_id) for _ in range(episodes)]
    try:
        obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)])
        returns = np.zeros(episodes)
        active = np.ones(episodes, dtype=bool)
        while active.any():
            seen = obs if vec_normalize is None else vec_normalize.normalize_obs(obs)
            actions, _ = model.predict(seen, deterministic=True)
            for i in np.flatnonzero(active):
                next_obs, reward, terminated, truncated, _ = envs[i].step(actions[i])
                returns[i] += float(reward)
                obs[i] = next_obs
                if terminated or truncated:
                    active[i] = False
    finally:
        for env in envs:
            env.close()
    return returns.tolist()


def _sb3_eval_callback(model_env_id: str, every: int, episodes: int, seed: int) -> Any:
    from stable_baselines3.common.callbacks import BaseCallback

    class PeriodicEval(BaseCallback):
        """Evaluate every ``every`` environment steps, at the start of the first rollout past
        each multiple (after the update that ended the previous one, as pgrl evaluates after
        its update); keeps the training seconds with the evaluations left out."""

        def __init__(self) -> None:
            super().__init__()
            self.curve: list[list[float]] = []
            self.eval_seconds = 0.0
            self.start = 0.0
            self.next = every

        def _on_training_start(self) -> None:
            self.start = time.perf_counter()

        def train_seconds(self) -> float:
            return time.perf_counter() - self.start - self.eval_seconds

        def _on_rollout_start(self) -> None:
            self.maybe_evaluate()

        def maybe_evaluate(self) -> None:
            steps = self.model.num_timesteps
            if steps < self.next:
                return
            self.next = (steps // every + 1) * every
            train_seconds = self.train_seconds()
            began = time.perf_counter()
            vec_normalize = self.model.get_vec_normalize_env()
            returns = sb3_evaluate(self.model, model_env_id, episodes, seed, vec_normalize)
            self.eval_seconds += time.perf_counter() - began
            self.curve.append([int(steps), float(np.mean(returns)), train_seconds])

        def _on_step(self) -> bool:
            return True

    return PeriodicEval()


def run_sb3(row: Row, seed: int, final_episodes: int = FINAL_EPISODES) -> dict[str, Any]:
    """Train Stable-Baselines3 on ``row`` with the zoo's hyperparameters and evaluate it."""
    import gymnasium as gym
    from stable_baselines3 import A2C, PPO, SAC, TD3
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    from pgrl.bench import _silent_sb3_logger

    zoo = ZOO[(row.algo, row.env)]
    probe = gym.make(row.env)
    act_dim = int(np.prod(probe.action_space.shape)) if probe.action_space.shape else None
    probe.close()
    setup = zoo_to_sb3(zoo["hyperparams"], act_dim)
    start = time.perf_counter()
    torch.set_num_threads(1)
    envs = make_vec_env(row.env, n_envs=setup["n_envs"], seed=seed)  # DummyVecEnv, Monitor
    if setup["normalize"] is not None:
        envs = VecNormalize(envs, **setup["normalize"])
    cls = {"ppo": PPO, "a2c": A2C, "sac": SAC, "td3": TD3}[row.algo]
    model = cls(setup["policy"], envs, seed=seed, verbose=0, device="cpu", **setup["kwargs"])
    model.set_logger(_silent_sb3_logger())
    callback = _sb3_eval_callback(row.env, eval_every(row.budget), EVAL_EPISODES, seed + EVAL_SEED)
    model.learn(total_timesteps=row.budget, callback=callback)
    train_seconds = callback.train_seconds()
    callback.maybe_evaluate()  # the evaluation at the end of the budget
    vec_normalize = model.get_vec_normalize_env()
    final = sb3_evaluate(model, row.env, final_episodes, seed + FINAL_SEED, vec_normalize)
    envs.close()
    return {
        "env_steps": int(model.num_timesteps),
        "train_seconds": float(train_seconds),
        "eval_seconds": float(callback.eval_seconds),
        "wall_seconds": time.perf_counter() - start,
        "curve": callback.curve,
        "final_eval": _eval_record(final),
        "settings": {"source": zoo["source"], "zoo": _jsonable(zoo["hyperparams"])},
    }


def _eval_record(returns: Sequence[float]) -> dict[str, Any]:
    values = np.asarray(returns, dtype=np.float64)
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "episodes": len(values),
        "returns": [float(v) for v in values],
    }


def _jsonable(value: Any) -> Any:
    """A JSON-ready copy: tuples as lists, anything else JSON lacks as its repr."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def load_runs(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return list(json.loads(path.read_text())["runs"])


def save_runs(path: Path, runs: Sequence[Mapping[str, Any]]) -> None:
    """Write ``{"runs": [...]}`` atomically (a crash mid-write leaves the previous file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"runs": list(runs)}, indent=1))
    os.replace(tmp, path)


def one_run(
    row: Row, seed: int, lib: str, final_episodes: int, command: str = ""
) -> dict[str, Any]:
    """Train and evaluate one (row, seed, library); the JSON record of it."""
    runner = run_pgrl if lib == "pgrl" else run_sb3
    result = runner(row, seed, final_episodes)
    threshold = THRESHOLDS.get(row.env)
    return {
        "lib": lib,
        "algo": row.algo,
        "env": row.env,
        "seed": seed,
        "budget": row.budget,
        **result,
        "threshold": threshold,
        "time_to_threshold": first_reaching(result["curve"], threshold),
        "eval_every": eval_every(row.budget),
        "eval_episodes": EVAL_EPISODES,
        "versions": versions(),
        "machine": machine_info(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
    }


def progress_line(k: int, total: int, run: Mapping[str, Any]) -> str:
    final = run["final_eval"]
    reach = run["time_to_threshold"]
    if run["threshold"] is None:
        reached = "no threshold"
    elif reach is None:
        reached = f"{run['threshold']:g} not reached"
    else:
        reached = f"{run['threshold']:g} at {reach['steps']:,} steps / {reach['seconds']:.1f} s"
    return (
        f"[{k}/{total}] {run['lib']:<4} {run['algo']:<3} {run['env']:<24} seed {run['seed']} "
        f"budget {run['budget']:,}: final {final['mean']:.1f} ± {final['std']:.1f}; {reached}; "
        f"train {run['train_seconds']:.1f} s, eval {run['eval_seconds']:.1f} s, "
        f"wall {run['wall_seconds']:.1f} s"
    )


def write_outputs(out: Path, runs: Sequence[Mapping[str, Any]]) -> None:
    (out / "results.md").write_text(markdown(runs))
    draw_figure(runs, out / "results.png")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Train pgrl and Stable-Baselines3 (zoo hyperparameters) side by side and "
        "write results.json, results.md and results.png."
    )
    p.add_argument(
        "--rows",
        nargs="*",
        help="glob patterns on env/algo, env or algo (e.g. 'CartPole-v1/*' '*/sac' td3); "
        "default: every row",
    )
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per library (default 3)")
    p.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="start the seeds at K instead: K..K+N-1 (split one row over two processes, "
        "each with its own --out, then --merge)",
    )
    p.add_argument(
        "--budget-scale",
        type=float,
        default=1.0,
        help="multiply every budget (e.g. 0.02 for a quick try; runs are keyed by budget)",
    )
    p.add_argument("--out", default="docs/results", help="output directory")
    p.add_argument(
        "--final-episodes",
        type=int,
        default=FINAL_EPISODES,
        help="episodes of the final evaluation",
    )
    p.add_argument("--list", action="store_true", help="print the rows and their budgets, run none")
    p.add_argument(
        "--table-only", action="store_true", help="redraw results.md and results.png from the JSON"
    )
    p.add_argument(
        "--merge",
        nargs="*",
        default=[],
        metavar="DIR",
        help="also take the runs of these output directories' results.json into --out (e.g. "
        "row subsets run apart); a run already in --out is kept",
    )
    args = p.parse_args(argv)
    if args.seeds < 1 or args.first_seed < 0:
        p.error(
            f"--seeds must be at least 1 and --first-seed at least 0, got {args.seeds} and {args.first_seed}"
        )
    command = "python benchmarks/results.py " + " ".join(
        sys.argv[1:] if argv is None else list(argv)
    )
    rows = select_rows(args.rows)
    if args.budget_scale != 1.0:
        rows = [Row(r.env, r.algo, scaled_budget(r.budget, args.budget_scale)) for r in rows]
    if args.list:
        for row in rows:
            print(f"{row.name:<30} {row.budget:>10,}  SB3: {ZOO[(row.algo, row.env)]['source']}")
        return 0
    out = Path(args.out)
    json_path = out / "results.json"
    runs = load_runs(json_path)
    if args.merge:
        have = {run_key(r) for r in runs}
        for other in args.merge:
            for run in load_runs(Path(other) / "results.json"):
                if run_key(run) not in have:
                    have.add(run_key(run))
                    runs.append(run)
        save_runs(json_path, runs)
    failed: list[str] = []
    if not args.table_only:
        if not rows:
            p.error(f"no row matches {args.rows}; see --list")
        from pgrl.bench import sb3_version

        if sb3_version() is None:
            p.error("needs Stable-Baselines3: pip install -e .[bench]")
        torch.set_num_threads(1)  # both libraries, every run
        seeds = list(range(args.first_seed, args.first_seed + args.seeds))
        todo = pending_runs(rows, seeds, runs)
        skipped = len(rows) * len(seeds) * 2 - len(todo)
        print(
            f"{len(todo)} runs to do ({skipped} already in {json_path}); "
            f"{len(rows)} rows, seeds {seeds[0]}-{seeds[-1]}, torch threads 1",
            flush=True,
        )
        for k, (row, seed, lib) in enumerate(todo, 1):
            try:
                run = one_run(row, seed, lib, args.final_episodes, command)
            except Exception as exc:  # one broken run must not cost the others: say, go on
                failed.append(f"{lib} {row.name} seed {seed}: {type(exc).__name__}: {exc}")
                print(f"[{k}/{len(todo)}] FAILED {failed[-1]}", flush=True)
                traceback.print_exc()
                continue
            runs.append(run)
            save_runs(json_path, runs)  # at once: a crash later loses nothing finished
            print(progress_line(k, len(todo), run), flush=True)
    if not runs:
        print(f"no runs in {json_path}")
        return 1
    out.mkdir(parents=True, exist_ok=True)
    write_outputs(out, runs)
    print(f"wrote {json_path}, {out / 'results.md'}, {out / 'results.png'}")
    for line in table_lines(summarize(runs)):
        print(line)
    if failed:
        print(f"{len(failed)} runs failed (rerun the same command to retry them):")
        for line in failed:
            print(f"  {line}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

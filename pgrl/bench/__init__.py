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

Peers (``--peers``, needs ``pip install -e .[bench]``): Stable-Baselines3's A2C and PPO on
the CartPole workloads, and its DDPG, TD3 and SAC on the Pendulum workloads at the networks
peers use (256x256, minibatch 256), each alternating with pgrl's runs of the same workload in
the same process; skipped with one line when Stable-Baselines3 is not installed.

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
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch

if TYPE_CHECKING:
    from pgrl.envs import SpaceInfo

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
    # tells rows of one (algo, env) apart in the table and the JSON (e.g. the network size)
    label: str = ""

    @property
    def name(self) -> str:
        """The algorithm and, when set, the label: ``td3`` or ``td3 256x256/mb256``."""
        return f"{self.algo} {self.label}" if self.label else self.algo


# The networks and minibatch that Stable-Baselines3, CleanRL and the zoo use for DDPG, TD3 and
# SAC (pgrl's Pendulum presets use 64x64 and 128): the off-policy workloads that have peers
OFFPOLICY_PEER_OVERRIDES: tuple[tuple[str, Any], ...] = (
    ("hidden_sizes", (256, 256)),
    ("minibatch_size", 256),
)
OFFPOLICY_PEER_LABEL = "256x256/mb256"


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
    # the same three at the peers' 256x256 networks and 256-minibatch (throughput only; the
    # Stable-Baselines3 peers of --peers run these)
    *(
        Workload(
            algo,
            "Pendulum-v1",
            4_000,
            20_000,
            1_000,
            overrides=OFFPOLICY_PEER_OVERRIDES,
            solve=False,
            label=OFFPOLICY_PEER_LABEL,
        )
        for algo in ("ddpg", "td3", "sac")
    ),
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
    """Steps per second of a training run (after the random warm-up for off-policy ones).

    On-policy: all environment steps over ``train_seconds`` (the training loop: collection,
    updates, logging; not building envs and networks, no evaluation here). Off-policy: the
    median of the metric rows' ``steps_per_second`` (steps since the previous row, about
    ``steps / 100`` of them, over the loop time between the two rows) among the rows logged
    after ``learning_starts + 1`` steps, so the uniformly random warm-up without updates is
    left out (:func:`sb3_offpolicy_rate` leaves it out of the peer's number too).
    """
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


PEER_ALGOS = ("a2c", "ppo")  # on the CartPole-v1 workloads
# on the Pendulum-v1 workloads with OFFPOLICY_PEER_OVERRIDES (256x256, minibatch 256)
OFFPOLICY_PEER_ALGOS = ("ddpg", "td3", "sac")
OFFPOLICY_PEER_ENV = "Pendulum-v1"


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
    model.set_logger(_silent_sb3_logger())
    start = time.perf_counter()
    model.learn(total_timesteps=work.steps)
    elapsed = time.perf_counter() - start
    envs.close()
    return model.num_timesteps / max(elapsed, 1e-9)


def sb3_ppo_layers(algorithm: Any, sb3_policy: Any) -> list[tuple[Any, Any]]:
    """(pgrl layer, SB3 layer) pairs of a discrete PPO with 2 hidden layers on each side:
    pgrl's policy and value MLPs against SB3's ``MlpPolicy`` (policy_net + action_net,
    value_net + value_net head), for copying weights between the two or comparing them."""
    ours = [algorithm.policy.logits[i] for i in (0, 2, 4)]
    ours += [algorithm.value.net[i] for i in (0, 2, 4)]
    extractor = sb3_policy.mlp_extractor
    theirs = [extractor.policy_net[0], extractor.policy_net[2], sb3_policy.action_net]
    theirs += [extractor.value_net[0], extractor.value_net[2], sb3_policy.value_net]
    return list(zip(ours, theirs, strict=True))


def _silent_sb3_logger() -> Any:
    """An SB3 logger with no outputs (SB3's default makes an empty /tmp/SB3-<time> per run)."""
    from stable_baselines3.common.logger import Logger

    return Logger(folder=None, output_formats=[])


def sb3_offpolicy_kwargs(algo: str, cfg: Any, spaces: SpaceInfo) -> dict[str, Any]:
    """Stable-Baselines3's DDPG/TD3/SAC keyword arguments for pgrl's config ``cfg``.

    A pure function (no Stable-Baselines3 import): plain values only. The exploration noise
    comes as ``action_noise_sigma``, a per-dimension array (None for SAC) that the caller
    pops and turns into ``NormalActionNoise(mean=0, sigma=action_noise_sigma)``. SB3 adds
    that noise to the action scaled to [-1, 1] (``OffPolicyAlgorithm._sample_action``), so
    σ = exploration_noise there is exploration_noise × half the action range in the
    environment's units: pgrl's definition. TD3's target_noise and target_noise_clip are
    likewise fractions of the half range in both (SB3 applies them to scaled actions).

    SB3 has one learning rate for actor, critics (and SAC's temperature) and only the MSE
    critic loss, Gaussian noise is the one mapped, and its ``train_freq=1`` means one step
    of each environment; a config SB3 cannot match raises ValueError rather than measuring a
    different workload.

    Example:
        >>> from pgrl.envs import SpaceInfo
        >>> from pgrl.train import resolve_config
        >>> cfg = resolve_config("td3", "Pendulum-v1", dict(OFFPOLICY_PEER_OVERRIDES))
        >>> spaces = SpaceInfo(obs_dim=3, discrete=False, act_dim=1)
        >>> kw = sb3_offpolicy_kwargs("td3", cfg, spaces)
        >>> kw["batch_size"], kw["policy_delay"], kw["policy_kwargs"]
        (256, 2, {'net_arch': {'pi': [256, 256], 'qf': [256, 256]}})
    """
    if algo not in OFFPOLICY_PEER_ALGOS:
        raise ValueError(f"no Stable-Baselines3 off-policy peer for {algo!r}")
    if spaces.discrete:
        raise ValueError(f"{algo}'s peer needs continuous (Box) actions")
    rates = {"learning_rate": cfg.learning_rate, "critic_learning_rate": cfg.critic_learning_rate}
    if algo == "sac":
        rates["alpha_learning_rate"] = cfg.alpha_learning_rate
    if len(set(rates.values())) != 1:
        raise ValueError(f"Stable-Baselines3's {algo.upper()} has one learning rate; got {rates}")
    if cfg.value_loss != "mse":
        raise ValueError(f"Stable-Baselines3's critics use the MSE loss; got {cfg.value_loss!r}")
    if cfg.num_envs != 1:
        raise ValueError(f"the off-policy peers run 1 environment; got num_envs={cfg.num_envs}")
    hidden = list(cfg.hidden_sizes)
    kwargs: dict[str, Any] = {
        "learning_rate": cfg.learning_rate,
        "buffer_size": cfg.buffer_size,
        "learning_starts": cfg.learning_starts,
        "batch_size": cfg.minibatch_size,
        "tau": cfg.tau,
        "gamma": cfg.gamma,
        "train_freq": 1,  # one gradient phase per environment step, as pgrl's loop
        "gradient_steps": cfg.updates_per_step,
        # the same widths for the actor (pi) and the critic(s) (qf); ReLU, as pgrl's
        "policy_kwargs": {"net_arch": {"pi": hidden, "qf": list(hidden)}},
        # pgrl runs on the CPU, and these networks are small
        "device": "cpu",
    }
    if algo == "sac":
        if cfg.noise_correlation > 0:
            raise ValueError("SB3 samples SAC's policy independently at every step (no gSDE here)")
        if cfg.auto_alpha:  # learned temperature from α = cfg.alpha ("auto" starts at 1)
            kwargs["ent_coef"] = "auto" if cfg.alpha == 1.0 else f"auto_{cfg.alpha}"
        else:
            kwargs["ent_coef"] = cfg.alpha
        # "auto" is −|A|, as pgrl's None
        kwargs["target_entropy"] = "auto" if cfg.target_entropy is None else cfg.target_entropy
        kwargs["action_noise_sigma"] = None  # SAC explores by sampling its policy
        return kwargs
    if algo in ("ddpg", "td3") and cfg.noise != "gaussian":
        raise ValueError(f"only Gaussian exploration noise is mapped; got {cfg.noise!r}")
    kwargs["action_noise_sigma"] = np.full(spaces.act_dim, cfg.exploration_noise)
    if algo == "td3":
        kwargs["policy_delay"] = cfg.policy_delay
        kwargs["target_policy_noise"] = cfg.target_noise
        kwargs["target_noise_clip"] = cfg.target_noise_clip
    return kwargs


def sb3_offpolicy_rate(work: Workload, seed: int, threads: int) -> float:
    """Steps per second of Stable-Baselines3's DDPG, TD3 or SAC on ``work`` after its warm-up.

    What the number covers: one ``model.learn`` call from step ``learning_starts`` to
    ``work.steps`` (every step: the policy's action plus noise, the DummyVecEnv step with
    SB3's Monitor wrapper, the replay insert, one gradient step from step learning_starts + 1
    on, SB3's own bookkeeping at verbose=0), divided into its steps: a mean over that span.
    Not covered: building the model and environment, and the first ``learning_starts``
    uniformly random steps, run by an untimed ``learn`` call before it.

    pgrl's side (:func:`training_rate`) is the median of its metric rows' steps_per_second
    (each the steps since the previous row, about ``steps / 100`` of them, over the training
    time between them: collection, updates, logging) among the rows after learning_starts;
    a median of short spans leaves out rare slow spans (a garbage collection, say) that a
    mean over the whole span counts.
    """
    from stable_baselines3 import DDPG, SAC, TD3
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
    from stable_baselines3.common.noise import NormalActionNoise

    from pgrl.envs import make_vec_env as pgrl_make_vec_env
    from pgrl.envs import space_info
    from pgrl.train import resolve_config

    cfg = resolve_config(work.algo, work.env, dict(work.overrides))
    probe = pgrl_make_vec_env(work.env, 1)
    spaces = space_info(probe)
    probe.close()
    kwargs = sb3_offpolicy_kwargs(work.algo, cfg, spaces)
    sigma = kwargs.pop("action_noise_sigma")
    if sigma is not None:
        kwargs["action_noise"] = NormalActionNoise(mean=np.zeros_like(sigma), sigma=sigma)
    warmup = cfg.learning_starts
    if work.steps <= warmup:
        raise ValueError(
            f"{work.name}: steps ({work.steps}) must exceed learning_starts ({warmup})"
        )
    torch.set_num_threads(threads)
    envs = sb3_make_vec_env(work.env, n_envs=cfg.num_envs, seed=seed)  # a DummyVecEnv
    cls = {"ddpg": DDPG, "td3": TD3, "sac": SAC}[work.algo]
    model = cls("MlpPolicy", envs, seed=seed, verbose=0, **kwargs)
    model.set_logger(_silent_sb3_logger())
    model.learn(total_timesteps=warmup)  # the random warm-up: not timed
    warmed = model.num_timesteps
    start = time.perf_counter()
    # reset_num_timesteps=False: continue the same run (same envs, buffer, step count) up to
    # work.steps in all
    model.learn(total_timesteps=work.steps - warmed, reset_num_timesteps=False)
    elapsed = time.perf_counter() - start
    envs.close()
    return (model.num_timesteps - warmed) / max(elapsed, 1e-9)


def has_offpolicy_peer(work: Workload) -> bool:
    """Whether SB3 runs ``work`` next to pgrl: DDPG, TD3 or SAC on Pendulum-v1 whose overrides
    include OFFPOLICY_PEER_OVERRIDES (the peer takes every other setting from the same config)."""
    overrides = dict(work.overrides)
    return (
        work.algo in OFFPOLICY_PEER_ALGOS
        and work.env == OFFPOLICY_PEER_ENV
        and all(overrides.get(k, object()) == v for k, v in OFFPOLICY_PEER_OVERRIDES)
    )


def peers(workloads: Sequence[Workload], repeats: int, threads: int) -> list[dict[str, Any]]:
    """SB3's A2C and PPO against pgrl's on CartPole-v1, and its DDPG, TD3 and SAC against
    pgrl's on Pendulum-v1 at 256x256/minibatch 256, alternating (A B C A B C ...)."""
    entries = []
    for algo in PEER_ALGOS:
        works = [w for w in workloads if w.algo == algo and w.env == "CartPole-v1"]
        if works:
            entries.append(_peer(works, repeats, threads))
    for algo in OFFPOLICY_PEER_ALGOS:
        works = [w for w in workloads if w.algo == algo and has_offpolicy_peer(w)]
        if works:
            entries.append(_peer(works, repeats, threads))
    if not entries:
        print(
            "peers: no workload has a peer here (Stable-Baselines3: a2c, ppo on CartPole-v1; "
            f"ddpg, td3, sac {OFFPOLICY_PEER_LABEL} on {OFFPOLICY_PEER_ENV})"
        )
    return entries


def _peer(works: list[Workload], repeats: int, threads: int) -> dict[str, Any]:
    from pgrl.train import resolve_config

    ref = works[0]
    cfg = resolve_config(ref.algo, ref.env, dict(ref.overrides))
    num_envs = cfg.num_envs
    offpolicy = ref.algo in OFFPOLICY_PEER_ALGOS
    names = [vector_env_name(w.env, num_envs, w.vectorization) for w in works]
    ours: list[list[float]] = [[] for _ in works]
    theirs: list[float] = []
    for r in range(repeats):
        for rates, work in zip(ours, works, strict=True):
            torch.set_num_threads(threads)
            rates.append(training_rate(dataclasses.replace(work, steps=ref.steps), seed=r))
        if offpolicy:
            theirs.append(sb3_offpolicy_rate(ref, seed=r, threads=threads))
        else:
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
    suffix = ""
    if ref.label or ref.overrides:
        entry["label"] = ref.label
        entry["overrides"] = dict(ref.overrides)
        suffix = f" {ref.label}" if ref.label else ""
    if offpolicy:
        # both sides' rates leave out the first learning_starts (random, no learning) steps
        entry["rate_after_learning_starts"] = cfg.learning_starts
    peer = entry["peer_steps_per_s"]
    print(
        f"peer {entry['peer'] + suffix:<42} {ref.env:<14} N={num_envs:<3} {'DummyVecEnv':<18}"
        f" train {peer['median']:>9,.0f}/s [{peer['min']:,.0f}-{peer['max']:,.0f}]",
        flush=True,
    )
    for mine in entry["pgrl"]:
        rate = mine["train_steps_per_s"]
        print(
            f"pgrl {ref.name:<42} {ref.env:<14} N={num_envs:<3} {mine['vector_env']:<18}"
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
            # "" and {} for the preset rows; e.g. 256x256/mb256 and its overrides otherwise
            "label": work.label,
            "overrides": dict(work.overrides),
            "limit_steps_per_s": _summary(limits),
            "train_steps_per_s": _summary(rates),
            "ratio": statistics.median(t / lim for t, lim in zip(rates, limits, strict=True)),
        }
        results["throughput"].append(entry)
        print(
            f"{work.name:<18} {work.env:<14} N={num_envs:<3} {vector_env:<18}"
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
    from pgrl.cli import OneLineParser

    p = OneLineParser(prog="pgrl bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--algos", nargs="*", help="only these algorithms")
    p.add_argument("--repeats", type=int, default=3, help="throughput repeats (A B A B ...)")
    p.add_argument("--seeds", type=int, default=3, help="seeds for time to solve (0: skip)")
    p.add_argument("--quick", action="store_true", help="1 repeat, 1 seed, short runs")
    p.add_argument(
        "--peers",
        action="store_true",
        help="also measure Stable-Baselines3's A2C and PPO on CartPole and its DDPG, TD3, SAC on "
        f"the {OFFPOLICY_PEER_LABEL} Pendulum workloads ({PEER_INSTALL})",
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

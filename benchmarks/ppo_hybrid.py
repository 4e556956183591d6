"""PPO on LunarLander-v3 with Stable-Baselines3 collecting and pgrl updating (or SB3 both).

    python benchmarks/ppo_hybrid.py SEED hybrid   # SB3 collects, pgrl's PPO updates
    python benchmarks/ppo_hybrid.py SEED hybrid --minibatch-advantages   # as SB3 normalizes
    python benchmarks/ppo_hybrid.py SEED sb3      # SB3 collects and updates (the control)

A probe for the results table's LunarLander PPO row (docs/results-table.md): which side of
the gap, collection or update? SB3's PPO with the zoo's LunarLander hyperparameters collects
each rollout (its policy, its buffer, its GAE inputs); in ``hybrid`` mode pgrl's PPO (its
preset, the same numbers) updates on that rollout and its weights are copied back into SB3's
policy before the next one. Layers map one to one (two 64×64 tanh MLPs with linear heads).
SB3 folds γ V(final observation) into the reward of a truncated step and marks it done, so
every episode end becomes a terminal step of pgrl's rollout with that reward: the same
λ-returns (``tests/test_peer_equivalence.py`` checks the conversion). Prints the final
deterministic score over 20 episodes, seeded as ``benchmarks/results.py`` seeds them.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

N_ENVS, N_STEPS, BUDGET = 16, 1024, 1_000_000


def _results_module() -> Any:
    path = Path(__file__).resolve().parent / "results.py"
    spec = importlib.util.spec_from_file_location("pgrl_results_script", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("seed", type=int)
    p.add_argument("mode", choices=["hybrid", "sb3"])
    p.add_argument(
        "--minibatch-advantages",
        action="store_true",
        help="pgrl normalizes advantages per minibatch (advantage_scope='minibatch'), as SB3",
    )
    args = p.parse_args(argv)
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import CallbackList
    from stable_baselines3.common.env_util import make_vec_env

    from pgrl.algos import build_algorithm
    from pgrl.bench import sb3_ppo_layers
    from pgrl.spaces import space_info
    from pgrl.train import resolve_config
    from pgrl.types import Rollout

    results = _results_module()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    venv: Any = make_vec_env("LunarLander-v3", n_envs=N_ENVS, seed=args.seed)
    model: Any = PPO(
        "MlpPolicy",
        venv,
        n_steps=N_STEPS,
        batch_size=64,
        n_epochs=4,
        gamma=0.999,
        gae_lambda=0.98,
        ent_coef=0.01,
        seed=args.seed,
        device="cpu",
    )
    model._setup_learn(BUDGET, None)
    callback = CallbackList([])
    callback.init_callback(model)
    scope = "minibatch" if args.minibatch_advantages else "rollout"
    cfg = resolve_config("ppo", "LunarLander-v3", {"advantage_scope": scope})
    spaces = space_info(venv.observation_space, venv.action_space)
    algorithm: Any = build_algorithm("ppo", cfg, spaces, "LunarLander-v3")
    pairs = sb3_ppo_layers(algorithm, model.policy)

    def copy(into_pgrl: bool) -> None:
        with torch.no_grad():
            for ours, theirs in pairs:
                to, source = (ours, theirs) if into_pgrl else (theirs, ours)
                to.weight.copy_(source.weight)
                to.bias.copy_(source.bias)

    copy(into_pgrl=True)
    start = time.time()
    while model.num_timesteps < BUDGET:
        model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=N_STEPS)
        if args.mode == "sb3":
            model.train()
            continue
        buffer = model.rollout_buffer
        obs = torch.tensor(buffer.observations)
        ended = np.concatenate([buffer.episode_starts[1:], model._last_episode_starts[None]])
        terminated = torch.tensor(ended.astype(bool))
        rollout = Rollout(
            obs,
            torch.tensor(buffer.actions[..., 0]).long(),
            torch.tensor(buffer.rewards),
            torch.cat([obs[1:], torch.tensor(model._last_obs)[None]]),
            terminated,
            torch.zeros_like(terminated),
            torch.ones(N_STEPS, N_ENVS),
        )
        algorithm.update(rollout)
        copy(into_pgrl=False)
    final = results.sb3_evaluate(model, "LunarLander-v3", 20, args.seed + results.FINAL_SEED)
    print(
        args.mode,
        scope if args.mode == "hybrid" else "",
        args.seed,
        round(float(np.mean(final)), 1),
        f"{time.time() - start:.0f} s",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Where a training run's time goes: acting, environment steps, updates.

    python -m pgrl.bench.profile ALGO [--env ID] [--steps N] [--seed S]

Trains as ``pgrl.train`` does and adds up the wall time spent inside ``algorithm.act``,
the vector environment's ``step`` and ``algorithm.update``, reported per update (for A2C: per
iteration of N environments × T steps). Whatever is left (collector bookkeeping, returns,
logging, building the run, the final evaluation) is printed as "rest", in seconds only.
Torch and NumPy's BLAS run on one thread, as in ``pgrl bench``. Compare versions by running
them alternately on one machine: only ratios measured side by side mean anything.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import torch


@contextlib.contextmanager
def _timed(owner: Any, name: str, totals: dict[str, list[float]], key: str) -> Iterator[None]:
    """Replace ``owner.name`` by a wrapper that adds its wall time to ``totals[key]``."""
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[key][0] += time.perf_counter() - start
            totals[key][1] += 1

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, original)


def profile(algo: str, env: str, steps: int, seed: int = 0) -> dict[str, Any]:
    """Train once and return the seconds and calls of act, env step and update."""
    from pgrl import algos
    from pgrl.train import train

    totals: dict[str, list[float]] = {"act": [0.0, 0], "env": [0.0, 0], "update": [0.0, 0]}
    spec = algos.ALGORITHMS[algo]

    def build(config: Any, spaces: Any, **kwargs: Any) -> Any:
        algorithm = spec.algorithm(config, spaces, **kwargs)
        stack.enter_context(_timed(algorithm, "act", totals, "act"))
        stack.enter_context(_timed(algorithm, "update", totals, "update"))
        return algorithm

    vector_classes: list[type] = [gym.vector.SyncVectorEnv, gym.vector.AsyncVectorEnv]
    try:
        from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv

        vector_classes.append(CartPoleVectorEnv)
    except ImportError:  # pragma: no cover - older Gymnasium
        pass
    with contextlib.ExitStack() as stack:
        for cls in vector_classes:
            stack.enter_context(_timed(cls, "step", totals, "env"))
        algos.ALGORITHMS[algo] = dataclasses.replace(spec, algorithm=build)
        try:
            start = time.perf_counter()
            train(algo, env, steps=steps, seed=seed, save=False, progress=False, eval_episodes=1)
            total = time.perf_counter() - start
        finally:
            algos.ALGORITHMS[algo] = spec
    updates = int(totals["update"][1])
    return {
        "algo": algo,
        "env": env,
        "steps": steps,
        "seconds": total,
        "updates": updates,
        "parts": {
            key: {
                "seconds": value[0],
                "calls": int(value[1]),
                "us_per_update": 1e6 * value[0] / max(updates, 1),
            }
            for key, value in totals.items()
        },
    }


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    from pgrl.cli import OneLineParser

    parser = OneLineParser(
        prog="python -m pgrl.bench.profile", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("algo")
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--steps", type=int, default=60_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    with threadpool_limits(1):
        result = profile(args.algo, args.env, args.steps, args.seed)
    out(
        f"{result['algo']} {result['env']}: {result['steps']:,} steps, {result['updates']:,} updates, {result['seconds']:.2f} s"
    )
    accounted = 0.0
    for key, part in result["parts"].items():
        accounted += part["seconds"]
        out(
            f"  {key:<7} {part['us_per_update']:>9,.0f} us per update  ({part['calls']:,} calls, {part['seconds']:.3f} s)"
        )
    out(
        f"  rest    {result['seconds'] - accounted:.3f} s (bookkeeping, logging, setup, evaluation)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

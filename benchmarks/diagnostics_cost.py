"""The cost of ``GradientDiagnostics(every=10)`` (``--diagnostics 10``): wall time of the same
CartPole run with and without it, runs alternating, ratio printed.

    python benchmarks/diagnostics_cost.py                     # a2c and ppo, preset budgets
    python benchmarks/diagnostics_cost.py --algo ppo --steps 50000 --pairs 5

Each pair runs the plain and the diagnosed run back to back (alternating which goes first),
same seed, one torch thread; the ratio reported is the median over pairs of
diagnosed / plain. Run it on a quiet machine: the two runs share the cores with whatever
else runs. Also printed: the time the diagnostics themselves measured (``diag/seconds``
summed) and the part of it spent on the fresh sample.
"""

from __future__ import annotations

import argparse
import statistics
import time

import pgrl
from pgrl.config import preset_steps
from pgrl.diagnostics import GradientDiagnostics


def timed_run(
    algo: str, steps: int, seed: int, every: int | None
) -> tuple[float, GradientDiagnostics | None]:
    """Seconds of one training run, with diagnostics every ``every`` updates (None: without)."""
    callbacks = [] if every is None else [GradientDiagnostics(every=every)]
    start = time.perf_counter()
    pgrl.train(algo, "CartPole-v1", steps=steps, seed=seed, eval_episodes=0, callbacks=callbacks)
    return time.perf_counter() - start, (callbacks[0] if callbacks else None)


def measure(
    algo: str, steps: int | None, pairs: int, every: int, seed: int = 0
) -> dict[str, float]:
    """Median ratio diagnosed / plain over ``pairs`` alternating pairs, and the parts."""
    ratios, plain_times, diag_times, inner, fresh = [], [], [], [], []
    budget = steps if steps is not None else preset_steps(algo, "CartPole-v1")
    for pair in range(pairs):
        order = (None, every) if pair % 2 == 0 else (every, None)
        times: dict[int | None, float] = {}
        for setting in order:
            seconds, diagnostics = timed_run(algo, budget, seed, setting)
            times[setting] = seconds
            if diagnostics is not None:
                inner.append(sum(r["diag/seconds"] for r in diagnostics.records))
                fresh.append(sum(r.get("diag/fresh_seconds", 0.0) for r in diagnostics.records))
        plain_times.append(times[None])
        diag_times.append(times[every])
        ratios.append(times[every] / times[None])
    return {
        "steps": float(budget),
        "ratio": statistics.median(ratios),
        "plain_s": statistics.median(plain_times),
        "diagnosed_s": statistics.median(diag_times),
        "diag_inner_s": statistics.median(inner),
        "fresh_s": statistics.median(fresh),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algo", nargs="+", default=["a2c", "ppo"], choices=["a2c", "ppo"])
    parser.add_argument("--steps", type=int, default=None, help="default: the preset budget")
    parser.add_argument("--pairs", type=int, default=3, help="alternating pairs of runs")
    parser.add_argument("--every", type=int, default=10, help="updates between diagnostics")
    args = parser.parse_args(argv)
    print(
        f"{'algo':<6}{'steps':>9}{'plain s':>10}{'diag s':>10}{'ratio':>8}{'inner s':>10}{'fresh s':>10}"
    )
    for algo in args.algo:
        r = measure(algo, args.steps, args.pairs, args.every)
        print(
            f"{algo:<6}{int(r['steps']):>9}{r['plain_s']:>10.2f}{r['diagnosed_s']:>10.2f}"
            f"{r['ratio']:>8.3f}{r['diag_inner_s']:>10.2f}{r['fresh_s']:>10.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

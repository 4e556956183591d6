"""One results-table row trained by pgrl with some hyperparameters changed, scored as
``benchmarks/results.py`` scores it: a probe for rows where pgrl trails.

    python benchmarks/pgrl_variant.py HalfCheetah-v5/td3 --seeds 0 1 2 \\
        --set learning_rate=1e-3 --set critic_learning_rate=1e-3 --set hidden_sizes=400,300

The row's budget and the final evaluation (20 deterministic episodes on the seeds
``results.py`` uses) are the table's; the preset's other values stay. Prints one line per
seed and the mean, and appends each run's record (final scores, curve, settings) to
``--out`` (JSON lines), never to the table's ``results.json``: a variant is evidence about a
row, not a row.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import results  # the sibling script


def main(argv: list[str] | None = None) -> int:
    from pgrl.config import parse_set_options
    from pgrl.errors import ConfigError
    from pgrl.train import resolve_config

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("row", help="ENV/ALGO, one of results.py --list")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--budget-scale", type=float, default=1.0, help="as results.py's")
    p.add_argument("--out", default="pgrl_variant.jsonl", help="JSON lines, appended")
    args = p.parse_args(argv)
    rows = [r for r in results.ROWS if r.name == args.row]
    if not rows:
        p.error(f"no row {args.row!r}; see python benchmarks/results.py --list")
    row = rows[0]
    if args.budget_scale != 1.0:
        row = results.Row(row.env, row.algo, results.scaled_budget(row.budget, args.budget_scale))
    try:  # a bad name or value is refused here, in one line, before any training
        config = parse_set_options(args.overrides)
        resolve_config(row.algo, row.env, config, steps=row.budget)
    except ConfigError as error:
        p.error(str(error))
    torch.set_num_threads(1)
    scores = []
    for seed in args.seeds:
        run: dict[str, Any] = results.run_pgrl(row, seed, config=config)
        final = run["final_eval"]["mean"]
        scores.append(final)
        print(
            f"{args.row} seed {seed} {config}: final {final:.1f}, train {run['train_seconds']:.0f} s",
            flush=True,
        )
        record = {"row": args.row, "budget": row.budget, "seed": seed, "set": config, **run}
        record["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with open(args.out, "a") as f:
            f.write(json.dumps(record) + "\n")
    print(f"{args.row} {config}: mean {np.mean(scores):.1f} over seeds {args.seeds}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

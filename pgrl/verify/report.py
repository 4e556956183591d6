"""``pgrl verify``: every estimator against the exact policy gradient: table, figure, report.

:func:`run_verify` runs five checks (:mod:`pgrl.verify.checks`) and collects them in a
:class:`~pgrl.verify.results.VerifyReport`:

1. exact gradients: the policy gradient theorem, autograd through the Bellman solve and
   finite differences of J agree;
2. the estimator ladder: r(τ), reward-to-go, baselines, actor-critic and GAE, each built from
   pgrl's own losses on sampled episodes, at several numbers of trajectories per batch;
3. the discount: the γ^t-weighted estimator against the usual one (pgrl's default), on the
   discounted MDP, on its γ = 1 version and on the "γ as termination" construction;
4. estimators broken on purpose, which the same test must flag;
5. the deterministic policy gradient on a linear-quadratic system.

Every row says what it expects (unbiased or biased, :mod:`pgrl.verify.specs`); the report
passes when every expectation holds, and ``main`` then returns 0. This module only runs the
checks in order and writes the files: :mod:`pgrl.verify.render` makes the text and
:mod:`pgrl.verify.figures` the figure.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from pgrl.verify import checks, figures, render
from pgrl.verify.mdp import MDP_NAMES, make_mdp, random_policy
from pgrl.verify.results import VerifyReport

__all__ = ["main", "run_verify"]


def run_verify(
    mdp: str | None = None, seed: int = 0, out: Path | None = None, quick: bool = False
) -> VerifyReport:
    """Check every estimator against the exact policy gradient; print the table.

    Args:
        mdp: an MDP name from :data:`pgrl.verify.mdp.MDP_NAMES`; None is the random MDP
            drawn from ``seed``.
        seed: seeds the random MDP, the policy θ where gradients are checked, and sampling.
        out: directory for ``report.md``, ``report.json`` and ``verify.png`` (None: no files).
        quick: fewer batches and batch sizes (a smoke run, about a second).

    Raises:
        ConfigError: ``mdp`` is not a known name.
    """
    started = time.perf_counter()
    problem = make_mdp(mdp, seed)  # raises ConfigError for an unknown name
    theta = random_policy(problem, seed)
    generator = torch.Generator().manual_seed(seed)
    num_batches = 200 if quick else 500
    sizes = [8, 128] if quick else [2, 8, 32, 128]
    rows, curves, bugs = checks.ladder_rows(problem, theta, sizes, num_batches, generator)
    discount = checks.discount_rows(problem, theta, rows, sizes[-1], num_batches, generator)
    # cut episodes are at most checks.CUT_HORIZON steps long: twice the data costs little
    broken = bugs + checks.cut_rows(problem, theta, 2 * sizes[-1], 2 * num_batches, generator)
    report = VerifyReport(
        mdp=problem.name,
        seed=seed,
        gamma=problem.gamma,
        num_states=problem.num_states,
        num_actions=problem.num_actions,
        quick=quick,
        num_batches=num_batches,
        batch_sizes=list(sizes),
        exact=checks.exact_check(problem, theta),
        ladder=rows,
        curves=curves,
        discount=discount,
        broken=broken,
        broken_horizon=checks.CUT_HORIZON,
        dpg=checks.dpg_check(quick, generator),
    )
    report.seconds = time.perf_counter() - started
    print(render.console(report))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        figure = out / "verify.png"
        figures.save_figure(report, figure)
        (out / "report.md").write_text(render.markdown(report, figure.name), encoding="utf-8")
        report.files = [str(figure), str(out / "report.md"), str(out / "report.json")]
        (out / "report.json").write_text(
            json.dumps(report.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8"
        )
        print(f"wrote {', '.join(report.files)}")
    return report


def main(argv: list[str] | None = None) -> int:
    """``pgrl verify [--mdp NAME | --seed S] [--out DIR] [--quick]``; 0 when every check passes.

    Raises:
        ConfigError: an unknown ``--mdp`` name.
    """
    from pgrl.cli import OneLineParser

    parser = OneLineParser(
        prog="pgrl verify",
        description="Check every policy-gradient estimator of pgrl against the exact gradient "
        "of a finite MDP (and DDPG's actor loss against a linear-quadratic system).",
    )
    parser.add_argument(
        "--mdp",
        default=None,
        metavar="NAME",
        help=f"the MDP: {', '.join(MDP_NAMES)} (default: random, drawn from --seed)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seeds the MDP, the policy and sampling"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="write report.md, report.json, verify.png here"
    )
    parser.add_argument("--quick", action="store_true", help="fewer samples: a smoke run")
    args = parser.parse_args(argv)
    from pgrl.cli import check_seed

    check_seed(args.seed)
    torch.set_num_threads(1)  # tensors are small: extra threads cost more than they give
    report = run_verify(args.mdp, args.seed, args.out, args.quick)
    return 0 if report.passed else 1

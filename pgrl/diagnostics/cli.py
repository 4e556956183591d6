"""``pgrl diagnose``: the estimator ladder at one fixed policy on a real environment."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

from pgrl.diagnostics.ladder import LadderResult, ladder

__all__ = ["main", "save_figure", "write_report"]


def save_figure(result: LadderResult, path: Path) -> None:
    """Two panels per estimator: one episode's gradient variance (log) and the cosine of a
    batch's gradient with the large-sample gradient, as PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4))
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    names = [r.name for r in result.rows]
    positions = range(len(names))
    left.bar(positions, [r.variance for r in result.rows], color="tab:blue")
    left.set_yscale("log")
    left.set_title("variance of one episode's gradient (tr Cov)")
    right.bar(
        positions,
        [r.cosine for r in result.rows],
        yerr=[2 * r.cosine_se for r in result.rows],
        color="tab:green",
    )
    right.set_ylim(min(0.0, *(r.cosine for r in result.rows)), 1.0)
    right.set_title(f"cos(batch of {result.batch_episodes} episodes, large sample)")
    for axis in (left, right):
        axis.set_xticks(list(positions), names)
    fig.suptitle(f"{result.env}: {result.policy}, {result.episodes} episodes")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_report(result: LadderResult, out: Path) -> list[Path]:
    """Write ``ladder.md``, ``ladder.json`` and ``ladder.png`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    figure = out / "ladder.png"
    save_figure(result, figure)
    report = out / "ladder.md"
    report.write_text(result.markdown(figure.name))
    data = out / "ladder.json"
    data.write_text(json.dumps(asdict(result), indent=2, ensure_ascii=False))
    return [report, data, figure]


def main(argv: list[str] | None = None) -> int:
    """``pgrl diagnose [--env ID] [--episodes N] [--out DIR] [--seed S] [--policy ALGO]``."""
    from pgrl.cli import OneLineParser

    parser = OneLineParser(
        prog="pgrl diagnose",
        description="The estimator ladder r(τ), G_t, G_t − V̂, actor-critic, GAE at one fixed "
        "policy on a real environment: per estimator the variance of one episode's gradient, "
        "the SNR of a batch and its cosine with a large-sample gradient.",
    )
    parser.add_argument("--env", default="CartPole-v1", help="Gymnasium id (default CartPole-v1)")
    parser.add_argument(
        "--episodes", type=int, default=200, help="episodes measured, one gradient each"
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds the policy and the samples")
    parser.add_argument(
        "--policy",
        default="a2c",
        help="algorithm trained briefly to give the fixed policy (a2c or ppo)",
    )
    parser.add_argument(
        "--train-steps", type=int, default=10_000, help="its training budget (default 10000)"
    )
    parser.add_argument(
        "--batch-episodes", type=int, default=10, help="batch size n of the SNR and cosine"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="write ladder.md, ladder.json, ladder.png here"
    )
    args = parser.parse_args(argv)
    if args.episodes < 2 * args.batch_episodes:
        parser.error(
            f"--episodes must be at least 2 × --batch-episodes = {2 * args.batch_episodes}"
        )
    torch.set_num_threads(1)  # small networks: extra threads cost more than they give
    result = ladder(
        args.env,
        args.policy,
        args.episodes,
        args.seed,
        train_steps=args.train_steps,
        batch_episodes=args.batch_episodes,
    )
    print(result.table())
    print(
        f"\n{result.episodes} episodes (mean length {result.mean_length:.1f}, return "
        f"{result.mean_return:.1f}); large sample {result.reference_episodes} episodes; "
        f"{result.seconds:.1f} s"
    )
    if args.out is not None:
        for path in write_report(result, args.out):
            print(f"wrote {path}")
    return 0

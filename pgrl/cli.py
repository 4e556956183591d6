"""The ``pgrl`` command: a thin layer over the Python API.

    pgrl train ALGO --env ID --steps N --seed S [--set name=value ...] [--json]
    pgrl resume RUN [--steps N]
    pgrl eval RUN_OR_MODEL [--episodes N]
    pgrl plot RUN... [--aggregate] [--out FILE.png]
    pgrl list
    pgrl bench [...]
    pgrl verify [...]
    pgrl diagnose [--env ID] [--episodes N] [--out DIR]
    pgrl tune ALGO --env ID --trials N [--steps S] [--out DIR] [--seed S]

Every problem the user can fix is printed as one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from pgrl.errors import ConfigError, PgrlError

EXIT_USAGE = 2
VECTORIZATION_CHOICES = ("auto", "sync", "async")
MAX_SEED = 2**63 - 1
"""Largest seed: torch.manual_seed takes at most 64 bits, and evaluation adds 1,000,003."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, with a mistake reported in one line (and exit status 2), as pgrl's errors."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def max_threads() -> int:
    """Most torch threads ``--threads`` accepts: four per CPU core.

    More threads than that only slow small networks down, and very large counts (100,000)
    crash inside torch's thread pool with a segmentation fault instead of an error.
    """
    return max(os.cpu_count() or 1, 1) * 4


def check_seed(seed: int | None, option: str = "--seed") -> None:
    """Refuse a seed that Gymnasium, NumPy or torch would reject with a traceback."""
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"{option} must be in [0, 2**63 - 1], got {seed}")


def set_threads(threads: int) -> None:
    """``torch.set_num_threads`` after checking ``--threads`` is in 1..:func:`max_threads`."""
    high = max_threads()
    if not 1 <= threads <= high:
        raise ConfigError(f"--threads must be in [1, {high}] (4 per CPU core), got {threads}")
    import torch

    torch.set_num_threads(threads)


def fit_stream(text: str, stream: Any = None) -> str:
    """``text`` with glyphs the stream's encoding cannot show spelled in ASCII (± → +/-).

    Under ``PYTHONIOENCODING=ascii`` or a Latin-1 terminal, printing ``±`` would raise
    UnicodeEncodeError after a finished run; this keeps the line and loses only the glyph.
    """
    encoding = getattr(stream if stream is not None else sys.stdout, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except LookupError:  # an encoding Python does not know: plain ASCII is safe
        return fit_stream(text, _ASCII_STREAM)
    except UnicodeEncodeError:
        for glyph, ascii_text in _ASCII_GLYPHS.items():
            text = text.replace(glyph, ascii_text)
        text = text.encode(encoding, errors="replace").decode(encoding, errors="replace")
    return text


_ASCII_STREAM = argparse.Namespace(encoding="ascii")
_ASCII_GLYPHS = {"±": "+/-", "×": "x", "→": "->", "≥": ">=", "≤": "<=", "…": "..."}


def _train_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="pgrl train",
        description="Train an algorithm on a Gymnasium environment.",
        add_help=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("algo", nargs="?", help="algorithm: see `pgrl list`")
    p.add_argument(
        "-h", "--help", action="store_true", help="show this help (with ALGO: its knobs)"
    )
    p.add_argument(
        "--env",
        default="CartPole-v1",
        help="Gymnasium environment id, or module:EnvId (the module is imported to register it)",
    )
    _env_options(p)
    p.add_argument("--steps", type=int, default=None, help="environment steps (default: preset)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        metavar="S",
        help="one run per seed, in parallel processes (one torch thread each, at most one per "
        "core), into one group directory (--run-dir; default runs/ALGO-ENV-seeds-TIME) holding "
        "seed-S/ runs, group.json and learning-curve.png; prints a line per seed and the IQM "
        "of the final evaluation returns with its 95%% stratified bootstrap interval",
    )
    p.add_argument(
        "--processes",
        type=int,
        default=None,
        help="with --seeds: runs at once (default: one per seed, at most the cores)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a hyperparameter (repeatable)",
    )
    p.add_argument("--config", help="YAML file of hyperparameters (applied before --set)")
    p.add_argument("--run-dir", help="where to save the run (default runs/ALGO-ENV-SEED-TIME)")
    p.add_argument("--no-save", action="store_true", help="do not write a run directory")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --run-dir")
    p.add_argument("--eval-episodes", type=int, default=10, help="final evaluation episodes")
    p.add_argument("--eval-every", type=int, default=0, help="evaluate every N steps (0: never)")
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        help="steps between periodic checkpoints, each an exact-resume point "
        "(default 0: only at the end and on Ctrl-C, SIGTERM or SIGHUP)",
    )
    p.add_argument(
        "--diagnostics",
        type=int,
        default=0,
        metavar="EVERY",
        help="every EVERY updates, log the policy gradient's noise (SNR, noise scale, cosine "
        "to a larger fresh sample, value fit) as diag/... metrics; the run itself is unchanged "
        "(docs/diagnostics.md). Default 0: off",
    )
    p.add_argument(
        "--diagnostics-surrogate",
        type=int,
        default=0,
        metavar="EPISODES",
        help="PPO with --diagnostics: also measure each diagnosed update's true return gain "
        "on EPISODES paired episodes, against its surrogate gain (costs 2 x EPISODES episodes "
        "per diagnosis). Default 0: off",
    )
    p.add_argument(
        "--vectorization",
        default="auto",
        metavar="{auto,sync,async}",
        help="vector environment: auto = the environment's own vectorized implementation where "
        "Gymnasium has one (CartPole), otherwise sync; sync = SyncVectorEnv, the copies stepped "
        "in turn in this process; async = AsyncVectorEnv, one process per copy (pays off only "
        "when a step is slow). Default auto",
    )
    p.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 is fastest for small nets)"
    )
    _device_option(p)
    p.add_argument("--json", action="store_true", help="end with one JSON summary line")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument(
        "--track",
        action="store_true",
        help="log the run to Weights & Biases (pip install 'pgrl[wandb]'; WANDB_MODE=offline "
        "writes it locally for `wandb sync`); the run's numbers are unchanged (docs/tracking.md)",
    )
    p.add_argument("--wandb-project", default="pgrl", help="with --track: W&B project (pgrl)")
    p.add_argument("--wandb-entity", default=None, help="with --track: W&B user or team")
    p.add_argument("--wandb-name", default=None, help="with --track: run name (ALGO-ENV-SEED)")
    _worker_options(p)
    p.add_argument(
        "--max-worker-failures",
        type=int,
        default=3,
        metavar="K",
        help="with --workers: failures of one worker the run survives (each restarts it and "
        "re-collects its share); one more stops the run with a checkpoint. Default 3",
    )
    p.add_argument(
        "--worker-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="with --workers: a call to a worker (a rollout; one step off-policy) taking longer "
        "counts as a failure (a hung environment): the worker is killed and restored from its "
        "last result. Default: no limit",
    )
    return p


def _worker_options(p: argparse.ArgumentParser, resume: bool = False) -> None:
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="W",
        help="step the environments on W Ray rollout workers (pip install 'pgrl[ray]'); the same "
        "seed gives the same run whatever W (docs/distributed.md)"
        + (". Default: the run's own; 0: in this process" if resume else ""),
    )
    p.add_argument(
        "--ray-address",
        default=None,
        metavar="HOST:PORT",
        help="with --workers: join this Ray cluster (`ray start --head` prints its address); "
        "default: start Ray on this machine",
    )


def _env_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--env-kwargs",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="keyword argument of the environment's constructor, e.g. g=9.81 (repeatable; "
        "values are read as YAML: numbers, true/false, lists)",
    )
    p.add_argument(
        "--wrapper",
        action="append",
        default=[],
        metavar="MODULE:NAME",
        help="wrap every copy of the environment, e.g. gymnasium.wrappers:FlattenObservation "
        "(repeatable, applied in order)",
    )


def _device_option(p: argparse.ArgumentParser, default: str | None = "cpu") -> None:
    p.add_argument(
        "--device",
        default=default,
        metavar="{cpu,cuda,auto}",
        help="where the networks train: cpu, cuda (cuda:N) or auto (CUDA where there is one); "
        "environments and acting stay on the CPU"
        + (f". Default {default}" if default else ". Default: the run's own"),
    )


def parse_env_kwargs(items: Sequence[str]) -> dict[str, Any]:
    """``["g=9.81", "continuous=true"]`` -> ``{"g": 9.81, "continuous": True}`` (YAML values).

    Example:
        >>> parse_env_kwargs(["g=9.81", "continuous=true", "name=abc"])
        {'g': 9.81, 'continuous': True, 'name': 'abc'}
    """
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise ConfigError(f"--env-kwargs takes NAME=VALUE, got {item!r}")
        try:
            out[name] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            raise ConfigError(f"--env-kwargs {name}: cannot read the value {text!r}") from None
    return out


def parse_wrappers(items: Sequence[str]) -> list[Any]:
    """Import each ``module:name`` given with ``--wrapper``."""
    from pgrl.envs import import_object

    return [import_object(item, "wrapper") for item in items]


def _knobs_help(algo: str) -> str:
    from pgrl.algos import get_spec
    from pgrl.config import fallback_preset, field_docs, preset_envs

    spec = get_spec(algo)
    docs = field_docs(spec.config)
    lines = [f"\n{spec.name}: {spec.summary}\n", "hyperparameters (--set NAME=VALUE):"]
    for field in dataclasses.fields(spec.config):
        default = field.default
        lines.append(f"  {field.name:<22} {default!s:<14} {docs.get(field.name, '')}")
    presets = preset_envs(spec.name)
    if presets:
        lines.append(
            f"\npresets: {', '.join(presets)} (pgrl/presets/{spec.name}.yaml, with their sources)"
        )
    for kind in ("discrete", "box", "multidiscrete", "multibinary"):
        values, source = fallback_preset(spec.name, kind)
        if source:
            settings = ", ".join(f"{k}={v}" for k, v in values.items())
            lines.append(
                f"without a preset, {kind} actions: {settings} ({' '.join(source.split())})"
            )
    if any(f.name == "learning_starts" for f in dataclasses.fields(spec.config)):
        lines.append(
            "without --set learning_starts, the random warm-up (the preset's or the default) "
            "is at most a tenth of --steps"
        )
    return "\n".join(lines)


def cmd_train(argv: Sequence[str]) -> int:
    parser = _train_parser()
    args = parser.parse_args(argv)
    if args.help or not args.algo:
        parser.print_help()
        if args.algo:
            print(_knobs_help(args.algo))
        return 0 if args.help else EXIT_USAGE
    if args.vectorization not in VECTORIZATION_CHOICES:
        # checked here, not with argparse's choices, so that it is one line like other bad input
        raise ConfigError(
            f"--vectorization must be one of {', '.join(VECTORIZATION_CHOICES)}; "
            f"got {args.vectorization!r}"
        )
    check_seed(args.seed)
    if args.run_dir is not None and not args.run_dir.strip():
        raise ConfigError("--run-dir must name a directory, got an empty string")
    from pgrl.config import load_yaml_config, parse_set_options
    from pgrl.train import train

    set_threads(args.threads)
    overrides = load_yaml_config(args.config) if args.config else {}
    overrides.update(parse_set_options(args.overrides))
    if args.seeds is not None:
        if args.track:
            raise ConfigError("--track logs one run; it cannot be used with --seeds")
        return _train_seeds(args, overrides)
    callbacks: list[Any] = []
    if args.track:
        from pgrl.tracking import WandbTracker, import_wandb

        import_wandb()  # a missing extra is refused before the run directory is made
        callbacks.append(
            WandbTracker(
                project=args.wandb_project,
                entity=args.wandb_entity,
                name=args.wandb_name,
                steps=args.steps,
            )
        )
    agent = train(
        args.algo,
        args.env,
        env_kwargs=parse_env_kwargs(args.env_kwargs),
        wrappers=parse_wrappers(args.wrapper),
        device=args.device,
        threads=None,  # set_threads above: for the whole process
        steps=args.steps,
        seed=args.seed,
        config=overrides,
        run_dir=args.run_dir,
        eval_episodes=args.eval_episodes,
        eval_every=args.eval_every,
        checkpoint_every=args.checkpoint_every,
        diagnostics_every=args.diagnostics,
        diagnostics_surrogate=args.diagnostics_surrogate,
        progress=False if args.quiet else None,
        save=not args.no_save,
        overwrite=args.overwrite,
        vectorization=args.vectorization,
        callbacks=callbacks,
        workers=args.workers,
        ray_address=args.ray_address,
        max_worker_failures=args.max_worker_failures,
        worker_timeout=args.worker_timeout,
    )
    _report(agent, args.json)
    return 0


def _train_seeds(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    """``pgrl train ALGO --seeds S...``: the seeds in parallel processes, into one group."""
    for seed in args.seeds:
        check_seed(seed, "--seeds")
    if args.no_save:
        raise ConfigError("--seeds writes a group directory; it cannot be used with --no-save")
    if args.workers is not None:
        raise ConfigError("--seeds trains its seeds in local processes; it cannot use --workers")
    from pgrl.seeds import train_seeds

    group = train_seeds(
        args.algo,
        args.env,
        args.seeds,
        steps=args.steps,
        config=overrides,
        group_dir=args.run_dir,
        processes=args.processes,
        env_kwargs=parse_env_kwargs(args.env_kwargs),
        wrappers=parse_wrappers(args.wrapper),
        device=args.device,
        eval_episodes=args.eval_episodes,
        eval_every=args.eval_every,
        checkpoint_every=args.checkpoint_every,
        vectorization=args.vectorization,
        overwrite=args.overwrite,
        diagnostics_every=args.diagnostics,
        diagnostics_surrogate=args.diagnostics_surrogate,
    )
    if args.json:
        print(json.dumps(group.to_dict()))
    return 0


def _report(agent: Any, as_json: bool) -> None:
    summary = agent.summary()
    mean, std = summary["eval_return_mean"], summary["eval_return_std"]
    rate = summary["env_steps"] / max(summary["train_seconds"], 1e-9)
    print(
        f"{summary['algo']} on {summary['env']} (seed {summary['seed']}): "
        f"{summary['env_steps']:,} steps in {summary['train_seconds']:.1f} s ({rate:,.0f} steps/s)"
    )
    if mean is not None:
        print(
            fit_stream(
                f"evaluation over {summary['eval_episodes']} episodes: {mean:.1f} ± {std:.1f}"
            )
        )
    if getattr(agent, "defaults", ""):
        print(fit_stream(f"hyperparameters: {agent.defaults}"))
    if summary["run_dir"]:
        print(fit_stream(f"run saved in {summary['run_dir']}"))
    if as_json:
        print(json.dumps(summary))


def cmd_resume(argv: Sequence[str]) -> int:
    p = OneLineParser(prog="pgrl resume", description="Continue a run from its last checkpoint.")
    p.add_argument("run", help="run directory (or its checkpoints/last.safetensors)")
    p.add_argument("--steps", type=int, default=None, help="new total budget (default: the run's)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--env",
        help="the environment to continue in (id or module:EnvId), for a run whose environment "
        "cannot be rebuilt from its record",
    )
    _env_options(p)
    _device_option(p, default=None)
    _worker_options(p, resume=True)
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    from pgrl.train import resume

    set_threads(args.threads)
    kwargs = parse_env_kwargs(args.env_kwargs)
    wrappers = parse_wrappers(args.wrapper)
    if (kwargs or wrappers) and args.env is None:
        raise ConfigError("--env-kwargs and --wrapper need --env (the run records its own)")
    agent = resume(
        args.run,
        steps=args.steps,
        progress=False if args.quiet else None,
        env=args.env,
        env_kwargs=kwargs,
        wrappers=wrappers,
        device=args.device,
        threads=None,
        workers=args.workers,
        ray_address=args.ray_address,
    )
    _report(agent, args.json)
    return 0


def cmd_eval(argv: Sequence[str]) -> int:
    p = OneLineParser(prog="pgrl eval", description="Evaluate a trained agent.")
    p.add_argument("path", help="run directory or model.safetensors file")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="evaluation seed (default: the training seed + 1,000,003, as after training)",
    )
    p.add_argument(
        "--env",
        help="evaluate on another environment (id or module:EnvId) with the same spaces",
    )
    _env_options(p)
    _device_option(p)
    p.add_argument("--video", action="store_true", help="also write MP4 files of episodes")
    p.add_argument("--video-episodes", type=int, default=1)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    from pgrl.agent import load_agent
    from pgrl.evaluation import deterministic, record_video

    if args.episodes < 1:
        raise PgrlError(f"--episodes must be >= 1, got {args.episodes}")
    check_seed(args.seed)
    kwargs = parse_env_kwargs(args.env_kwargs)
    wrappers = parse_wrappers(args.wrapper)
    env: Any = None
    if args.env is not None:
        from pgrl.envs import resolve_env

        env = resolve_env(args.env, kwargs, wrappers)
    elif kwargs or wrappers:
        raise ConfigError("--env-kwargs and --wrapper need --env (the run records its own)")
    agent = load_agent(args.path, env=env, device=args.device)
    seed = agent.seed + 1_000_003 if args.seed is None else args.seed
    result = agent.evaluate(args.episodes, seed=seed)
    print(
        fit_stream(
            f"{agent.algo} on {agent.env_id}: {result.mean:.1f} ± {result.std:.1f} "
            f"over {args.episodes} episodes"
        )
    )
    if args.video:
        folder = (agent.run_dir or Path(".")) / "videos"
        videos = record_video(
            deterministic(agent.algorithm),
            agent.environment(),
            folder,
            episodes=args.video_episodes,
            seed=seed,
        )
        for video in videos:
            print(fit_stream(f"video: {video}"))
    if args.json:
        print(
            json.dumps(
                {
                    "algo": agent.algo,
                    "env": agent.env_id,
                    "eval_return_mean": result.mean,
                    "eval_return_std": result.std,
                    "returns": result.returns,
                }
            )
        )
    return 0


def cmd_plot(argv: Sequence[str]) -> int:
    p = OneLineParser(
        prog="pgrl plot",
        description="Plot learning curves of runs: the interquartile mean (IQM) over seeds "
        "with a 95% stratified bootstrap interval (docs/results.md).",
    )
    p.add_argument(
        "runs",
        nargs="+",
        help="run directories or group directories (pgrl train --seeds); runs that differ "
        "only in --seed or --steps form one curve",
    )
    p.add_argument(
        "--out",
        help="image file (.png; .pdf or .svg for a paper; default learning-curve.png, "
        "with --aggregate aggregate.png)",
    )
    p.add_argument(
        "--metric",
        help="column of metrics.csv, e.g. eval_return_mean (default episode_return_mean; "
        "with --aggregate the final eval_return_mean)",
    )
    p.add_argument("--title")
    p.add_argument(
        "--x",
        default="steps",
        metavar="{steps,seconds}",
        help="x axis: environment steps (default) or wall-clock seconds",
    )
    p.add_argument("--per-seed", action="store_true", help="also draw each seed's own curve")
    p.add_argument(
        "--compare",
        action="store_true",
        help="one curve per algorithm, whatever its hyperparameters, and one panel per environment",
    )
    p.add_argument(
        "--stat",
        default="iqm",
        metavar="{iqm,mean,median}",
        help="statistic over seeds (default iqm)",
    )
    p.add_argument(
        "--aggregate",
        action="store_true",
        help="one figure across environments: each run's final score normalized to [0, 1], "
        "IQM, median and mean per algorithm with 95%% stratified bootstrap intervals, and "
        "the performance profile (docs/results.md)",
    )
    args = p.parse_args(argv)
    from pgrl.plot import EVAL_METRIC, plot_aggregate, plot_runs

    if args.aggregate:
        if args.per_seed or args.compare or args.x != "steps" or args.stat != "iqm":
            p.error(
                "--aggregate draws final scores with all three statistics; it takes no "
                "--per-seed, --compare, --x or --stat"
            )
        out = plot_aggregate(
            args.runs,
            args.out or "aggregate.png",
            metric=args.metric or EVAL_METRIC,
            title=args.title,
        )
    else:
        out = plot_runs(
            args.runs,
            args.out or "learning-curve.png",
            metric=args.metric or "episode_return_mean",
            title=args.title,
            x=args.x,
            per_seed=args.per_seed,
            compare=args.compare,
            statistic=args.stat,
        )
    print(fit_stream(f"wrote {out}"))
    return 0


def cmd_list(argv: Sequence[str]) -> int:
    from pgrl.algos import ALGORITHMS
    from pgrl.config import preset_envs

    for name, spec in ALGORITHMS.items():
        kinds = "/".join(
            k for k, ok in (("discrete", spec.discrete), ("continuous", spec.continuous)) if ok
        )
        envs = ", ".join(preset_envs(name)) or "-"
        print(f"{name:<10} {kinds:<20} presets: {envs}\n{'':<10} {spec.summary}")
    return 0


def cmd_bench(argv: Sequence[str]) -> int:
    if argv and argv[0] == "scaling":  # Ray rollout workers against one process
        from pgrl.bench.scaling import main as scaling_main

        return scaling_main(list(argv[1:]))
    from pgrl.bench import main as bench_main

    return bench_main(list(argv))


def cmd_diagnose(argv: Sequence[str]) -> int:
    from pgrl.diagnostics.cli import main as diagnose_main

    return diagnose_main(list(argv))


def cmd_tune(argv: Sequence[str]) -> int:
    from pgrl.tune import main as tune_main

    return tune_main(list(argv))


def cmd_verify(argv: Sequence[str]) -> int:
    from pgrl.verify.report import main as verify_main

    return verify_main(list(argv))


COMMANDS = {
    "train": cmd_train,
    "resume": cmd_resume,
    "eval": cmd_eval,
    "plot": cmd_plot,
    "list": cmd_list,
    "bench": cmd_bench,
    "verify": cmd_verify,
    "diagnose": cmd_diagnose,
    "tune": cmd_tune,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else EXIT_USAGE
    if argv[0] in ("-V", "--version"):
        from pgrl import __version__

        print(f"pgrl {__version__}")
        return 0
    command = COMMANDS.get(argv[0])
    if command is None:
        print(
            f"pgrl: error: unknown command {argv[0]!r}; one of {', '.join(COMMANDS)}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        return command(argv[1:])
    except PgrlError as exc:
        code = getattr(exc, "exit_code", EXIT_USAGE)
        print(f"pgrl: {'error: ' if code == EXIT_USAGE else ''}{exc}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print("pgrl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

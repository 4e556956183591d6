"""Hyperparameter search with Optuna: ``pgrl tune ALGO --env ID --trials N``.

Each trial samples a config from the algorithm's search space (:data:`SEARCH_SPACES`), trains
it with :func:`pgrl.train` for ``steps`` environment steps, evaluates it four times on the
way (the median pruner stops a trial whose evaluation is below the median of the earlier
trials at the same step) and scores it by the final deterministic evaluation's mean return.
The best config is written as ``best-config.yaml``, which ``pgrl train ALGO --env ID --config
best-config.yaml`` accepts. Optuna is an optional extra (``pip install 'pgrl[optuna]'``).

The ranges of the search spaces are those of rl-baselines3-zoo's samplers
(``rl_zoo3/hyperparams_opt.py``: ``sample_a2c_params``, ``sample_ppo_params``,
``sample_sac_params``, ``sample_td3_params``), renamed to pgrl's vocabulary; where a range is
narrowed or a knob left out, the sampler says why.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pgrl.errors import ConfigError, PgrlError

INSTALL_HINT = "pip install 'pgrl[optuna]'"
CONFIG_FILE = "best-config.yaml"
TRIALS_FILE = "trials.json"
EVALUATIONS = 4
"""evaluations per trial, reported to the pruner (``eval_every = steps // EVALUATIONS``)"""


def import_optuna() -> Any:
    """``optuna``, or a one-line :class:`PgrlError` that says how to install it."""
    try:
        import optuna
    except ImportError:
        raise PgrlError(f"tuning needs Optuna: {INSTALL_HINT}") from None
    return optuna


# rl-baselines3-zoo's net_arch names, as pgrl's hidden_sizes
_NETS = {"tiny": (64,), "small": (64, 64), "medium": (256, 256), "big": (400, 300)}
_GAMMAS = [0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9999]
_TAUS = [0.001, 0.005, 0.01, 0.02, 0.05, 0.08]


def _power_of_two_choices(choices: list[int], steps: int) -> list[int]:
    """The choices that fit a budget of ``steps`` (at least the smallest)."""
    return [c for c in choices if c <= steps] or choices[:1]


def sample_a2c(trial: Any, steps: int) -> dict[str, Any]:
    """A2C: zoo's ``sample_a2c_params``.

    Left out: ``gae_lambda`` (pgrl's A2C uses n-step returns) and the activation (pgrl's
    networks use tanh). ``rollout_steps`` is narrowed from zoo's 32..2048 to 5..32 because
    pgrl's A2C runs 8 environments (``batch_size`` = 8 × rollout_steps) and A2C's classic
    setting is 5 steps (Mnih et al. 2016).
    """
    return {
        "rollout_steps": trial.suggest_categorical("rollout_steps", [5, 8, 16, 32]),
        "gamma": 1.0 - trial.suggest_float("one_minus_gamma", 1e-4, 0.03, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 2e-3, log=True),
        "max_grad_norm": trial.suggest_float("max_grad_norm", 0.3, 2.0),
        "entropy_coef": trial.suggest_float("entropy_coef", 1e-8, 0.1, log=True),
        "hidden_sizes": _NETS[trial.suggest_categorical("net", ["small", "medium"])],
    }


def sample_ppo(trial: Any, steps: int) -> dict[str, Any]:
    """PPO: zoo's ``sample_ppo_params``.

    Left out: the activation (pgrl's networks use tanh). ``rollout_steps`` choices above a
    quarter of the budget are dropped; ``minibatch_size`` is capped at ``rollout_steps`` (zoo
    leaves the cap as a TODO): both powers of two, it then divides ``num_envs × rollout_steps``
    for any power-of-two ``num_envs``, as ``PPOConfig`` requires.
    """
    rollout_steps = trial.suggest_categorical(
        "rollout_steps", _power_of_two_choices([32, 64, 128, 256, 512, 1024, 2048], steps // 4)
    )
    minibatch_size = trial.suggest_categorical("minibatch_size", [32, 64, 128, 256, 512])
    return {
        "rollout_steps": rollout_steps,
        "minibatch_size": min(minibatch_size, rollout_steps),
        "gamma": 1.0 - trial.suggest_float("one_minus_gamma", 1e-4, 0.03, log=True),
        "gae_lambda": 1.0 - trial.suggest_float("one_minus_gae_lambda", 1e-4, 0.1, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 2e-3, log=True),
        "entropy_coef": trial.suggest_float("entropy_coef", 1e-8, 0.1, log=True),
        "clip_eps": trial.suggest_categorical("clip_eps", [0.1, 0.2, 0.3, 0.4]),
        "update_epochs": trial.suggest_categorical("update_epochs", [1, 5, 10, 20]),
        "max_grad_norm": trial.suggest_float("max_grad_norm", 0.3, 2.0),
        "hidden_sizes": _NETS[trial.suggest_categorical("net", ["tiny", "small", "medium"])],
    }


def _replay_common(trial: Any, steps: int) -> dict[str, Any]:
    """What zoo's SAC and TD3 samplers share, in pgrl's names.

    One learning rate for actor and critic, as zoo's; ``buffer_size`` choices far above the
    budget are dropped (they would only allocate memory); ``train_freq`` =
    ``gradient_steps`` is left out (pgrl's ``updates_per_step`` stays 1, the same ratio).
    """
    learning_rate = trial.suggest_float("learning_rate", 1e-5, 1.0, log=True)
    buffers = [b for b in (10_000, 100_000, 1_000_000) if b <= max(10 * steps, 10_000)]
    return {
        "gamma": trial.suggest_categorical("gamma", _GAMMAS),
        "learning_rate": learning_rate,
        "critic_learning_rate": learning_rate,
        "minibatch_size": trial.suggest_categorical(
            "minibatch_size", [16, 32, 64, 128, 256, 512, 1024, 2048]
        ),
        "buffer_size": trial.suggest_categorical("buffer_size", buffers),
        "tau": trial.suggest_categorical("tau", _TAUS),
        "hidden_sizes": _NETS[trial.suggest_categorical("net", ["small", "medium", "big"])],
    }


def sample_sac(trial: Any, steps: int) -> dict[str, Any]:
    """SAC: zoo's ``sample_sac_params`` (temperature learned, as zoo's ``ent_coef="auto"``).

    Left out: ``log_std_init`` (pgrl's SAC policy has a state-dependent std). ``learning_starts``
    choices at or above half the budget are dropped.
    """
    config = _replay_common(trial, steps)
    starts = [s for s in (0, 1_000, 10_000, 20_000) if s < steps // 2]
    config["learning_starts"] = trial.suggest_categorical("learning_starts", starts)
    return config


def sample_td3(trial: Any, steps: int) -> dict[str, Any]:
    """TD3: zoo's ``sample_td3_params`` with Gaussian exploration noise of std in [0, 1]
    (zoo's ``noise_type="normal"``; pgrl's TD3 has only that kind)."""
    config = _replay_common(trial, steps)
    config["exploration_noise"] = trial.suggest_float("exploration_noise", 0.0, 1.0)
    return config


SEARCH_SPACES: dict[str, Callable[[Any, int], dict[str, Any]]] = {
    "a2c": sample_a2c,
    "ppo": sample_ppo,
    "sac": sample_sac,
    "td3": sample_td3,
}
"""The search space of each algorithm: ``sample(trial, steps) -> config overrides``."""


class PruneOnEvaluation:
    """Report each periodic evaluation to an Optuna trial; stop the run when it is pruned.

    The loop records its evaluations in ``agent.history``; ``on_step`` reads the new ones
    (an evaluation is seen at the next iteration) and returns False to stop training.
    """

    def __init__(self, trial: Any) -> None:
        self.trial = trial
        self.pruned = False
        self._seen = 0

    def on_start(self, agent: Any) -> None:
        self._seen = len(agent.history)

    def on_step(self, agent: Any, env_steps: int) -> bool:
        rows = agent.history[self._seen :]
        self._seen = len(agent.history)
        for row in rows:
            if "eval_return_mean" in row:
                self.trial.report(float(row["eval_return_mean"]), int(row["env_steps"]))
                if self.trial.should_prune():
                    self.pruned = True
                    return False
        return True


@dataclass
class TuneResult:
    """What a search found."""

    study_name: str
    best_value: float
    """the best trial's final evaluation mean return"""
    best_config: dict[str, Any]
    """its config overrides, as written to :attr:`config_path`"""
    best_trial: int
    config_path: Path
    trials: dict[str, int] = field(default_factory=dict)
    """trials by state: ``complete``, ``pruned``, ``fail``"""


def tune(
    algo: str,
    env: str,
    trials: int,
    *,
    steps: int,
    seed: int = 0,
    eval_episodes: int = 5,
    out: str | Path | None = None,
    storage: str | None = None,
    timeout: float | None = None,
) -> TuneResult:
    """Search ``algo``'s hyperparameters on ``env`` with Optuna; write the best config as YAML.

    Args:
        algo: an algorithm with a search space (:data:`SEARCH_SPACES`).
        env: a Gymnasium id.
        trials: trials to run (pruned and failed ones count).
        steps: environment steps per trial.
        seed: the sampler's seed and every trial's training seed (trials differ only in
            their config).
        eval_episodes: deterministic episodes of each evaluation (4 per trial, and the final).
        out: directory for ``best-config.yaml`` and ``trials.json`` (default
            ``runs/tune-ALGO-ENV-TIME``).
        storage: an Optuna storage URL (``sqlite:///tune.db``) to keep or continue the study;
            None keeps it in memory.
        timeout: stop starting trials after this many seconds.

    Returns:
        The :class:`TuneResult`.
    """
    if algo not in SEARCH_SPACES:
        raise ConfigError(
            f"no search space for {algo!r}; pgrl tune knows {', '.join(SEARCH_SPACES)}"
        )
    if trials < 1:
        raise ConfigError(f"trials must be >= 1, got {trials}")
    if steps < EVALUATIONS:
        raise ConfigError(f"steps must be >= {EVALUATIONS} (one per evaluation), got {steps}")
    if eval_episodes < 1:
        raise ConfigError(f"eval_episodes must be >= 1, got {eval_episodes}")
    optuna = import_optuna()
    from pgrl.train import train

    sample = SEARCH_SPACES[algo]
    study_name = f"pgrl-{algo}-{env}"
    out_dir = Path(out) if out is not None else _default_out(algo, env)

    def objective(trial: Any) -> float:
        config = sample(trial, steps)
        pruning = PruneOnEvaluation(trial)
        agent = train(
            algo,
            env,
            steps=steps,
            seed=seed,
            config=config,
            eval_every=steps // EVALUATIONS,
            eval_episodes=eval_episodes,
            callbacks=[pruning],
        )
        if pruning.pruned:
            raise optuna.TrialPruned()
        assert agent.evaluation is not None  # eval_episodes >= 1
        trial.set_user_attr("config", _yaml_ready(config))
        return float(agent.evaluation.mean)

    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        load_if_exists=storage is not None,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        # pruning from the 6th trial on, at any of its evaluations (Optuna's defaults)
        pruner=optuna.pruners.MedianPruner(),
    )
    # a sampled config pgrl refuses, or one that diverges (non-finite loss), fails that trial
    study.optimize(objective, n_trials=trials, timeout=timeout, catch=(PgrlError,))
    counts = {"complete": 0, "pruned": 0, "fail": 0}
    for t in study.trials:
        state = t.state.name.lower()
        counts[state] = counts.get(state, 0) + 1
    if counts["complete"] == 0:
        raise PgrlError(
            f"no trial of {study_name} finished ({counts['pruned']} pruned, "
            f"{counts['fail']} failed); try more --trials or --steps"
        )
    best = study.best_trial
    config = dict(best.user_attrs["config"])
    out_dir.mkdir(parents=True, exist_ok=True)
    config_path = out_dir / CONFIG_FILE
    header = (
        f"# pgrl tune: best config of study {study_name} ({algo} on {env})\n"
        f"# score: final evaluation mean return {best.value:.2f} over {eval_episodes} episodes, "
        f"trial {best.number} of {len(study.trials)} ({counts['complete']} complete, "
        f"{counts['pruned']} pruned, {counts['fail']} failed), {steps:,} steps each, seed {seed}\n"
        f"# use: pgrl train {algo} --env {env} --config {CONFIG_FILE}\n"
    )
    config_path.write_text(header + yaml.safe_dump(config, sort_keys=True))
    trials_log = [
        {
            "number": t.number,
            "state": t.state.name.lower(),
            "value": t.value,
            "params": t.params,
            "evaluations": {str(k): v for k, v in t.intermediate_values.items()},
        }
        for t in study.trials
    ]
    (out_dir / TRIALS_FILE).write_text(json.dumps(trials_log, indent=2, default=_json_number))
    return TuneResult(
        study_name=study_name,
        best_value=float(best.value),
        best_config=config,
        best_trial=best.number,
        config_path=config_path,
        trials=counts,
    )


def _yaml_ready(config: Mapping[str, Any]) -> dict[str, Any]:
    """Plain YAML values: tuples as lists."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}


def _json_number(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else str(value)


def _default_out(algo: str, env: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"tune-{algo}-{env.replace('/', '_')}-{stamp}"


def _parser() -> argparse.ArgumentParser:
    from pgrl.cli import OneLineParser

    p = OneLineParser(
        prog="pgrl tune",
        description="Search an algorithm's hyperparameters with Optuna (TPE, median pruning "
        "on evaluations) and write the best as a YAML config for `pgrl train --config`.",
    )
    p.add_argument("algo", help=f"algorithm: {', '.join(SEARCH_SPACES)}")
    p.add_argument("--env", default="CartPole-v1", help="Gymnasium environment id")
    p.add_argument("--trials", type=int, default=20, help="trials to run (default 20)")
    p.add_argument(
        "--steps", type=int, default=50_000, help="environment steps per trial (default 50,000)"
    )
    p.add_argument("--seed", type=int, default=0, help="sampler and training seed (default 0)")
    p.add_argument(
        "--eval-episodes", type=int, default=5, help="episodes per evaluation (default 5)"
    )
    p.add_argument("--out", help="output directory (default runs/tune-ALGO-ENV-TIME)")
    p.add_argument("--storage", help="Optuna storage URL, e.g. sqlite:///tune.db (default: memory)")
    p.add_argument("--timeout", type=float, default=None, help="stop starting trials after S s")
    return p


def main(argv: Sequence[str]) -> int:
    """``pgrl tune ALGO --env ID --trials N [--steps S] [--out DIR] [--seed S]``."""
    from pgrl.cli import check_seed

    args = _parser().parse_args(list(argv))
    check_seed(args.seed)
    result = tune(
        args.algo,
        args.env,
        args.trials,
        steps=args.steps,
        seed=args.seed,
        eval_episodes=args.eval_episodes,
        out=args.out,
        storage=args.storage,
        timeout=args.timeout,
    )
    counts = result.trials
    print(
        f"{result.study_name}: best trial {result.best_trial}, final evaluation "
        f"{result.best_value:.2f} ({counts['complete']} complete, {counts['pruned']} pruned, "
        f"{counts['fail']} failed)"
    )
    print(f"best config: {result.config_path}")
    return 0


__all__ = ["SEARCH_SPACES", "PruneOnEvaluation", "TuneResult", "import_optuna", "main", "tune"]

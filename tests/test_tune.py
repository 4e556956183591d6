"""Hyperparameter search (pgrl/tune.py): a tiny budget, a config that trains, pruning stops."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import optuna  # the dev extra installs it: a missing optuna fails here, it is not skipped
import pytest

from pgrl.algos import get_spec
from pgrl.config import load_yaml_config
from pgrl.errors import ConfigError, PgrlError
from pgrl.train import train
from pgrl.tune import SEARCH_SPACES, PruneOnEvaluation, import_optuna, main, tune


def test_two_a2c_trials_write_a_config_that_trains(tmp_path: Any) -> None:
    result = tune("a2c", "CartPole-v1", 2, steps=2_000, eval_episodes=2, out=tmp_path)

    assert result.trials["complete"] + result.trials["pruned"] + result.trials["fail"] == 2
    assert result.config_path == tmp_path / "best-config.yaml"
    text = result.config_path.read_text()
    assert text.startswith("# pgrl tune: best config of study pgrl-a2c-CartPole-v1")
    assert f"{result.best_value:.2f}" in text.splitlines()[1]
    config = load_yaml_config(result.config_path)
    assert config == result.best_config
    fields = {f.name for f in dataclasses.fields(get_spec("a2c").config)}
    assert set(config) <= fields
    agent = train("a2c", "CartPole-v1", steps=200, config=config, eval_episodes=1)
    assert agent.config.learning_rate == config["learning_rate"]
    assert agent.config.hidden_sizes == tuple(config["hidden_sizes"])
    assert (tmp_path / "trials.json").exists()


@pytest.mark.parametrize("algo", sorted(SEARCH_SPACES))
def test_every_sampled_config_is_accepted_by_the_algorithm(algo: str) -> None:
    # what `pgrl train --config` would build, for twenty samples of each space, no training
    from pgrl.train import resolve_config

    env = "Pendulum-v1" if algo in ("sac", "td3") else "CartPole-v1"
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        config = SEARCH_SPACES[algo](trial, 5_000)
        resolved = resolve_config(algo, env, config, action_kind=None, steps=5_000)
        assert all(getattr(resolved, k) == v for k, v in config.items())
        study.tell(trial, 0.0)


class AlwaysPrune:
    """An Optuna trial stand-in whose every report is pruned."""

    def __init__(self) -> None:
        self.reports: list[tuple[float, int]] = []

    def report(self, value: float, step: int) -> None:
        self.reports.append((value, step))

    def should_prune(self) -> bool:
        return True


def test_a_pruned_trial_stops_after_its_first_evaluation() -> None:
    trial = AlwaysPrune()
    pruning = PruneOnEvaluation(trial)
    agent = train(
        "a2c", "CartPole-v1", steps=4_000, eval_every=1_000, eval_episodes=1, callbacks=[pruning]
    )
    assert pruning.pruned
    assert len(trial.reports) == 1 and trial.reports[0][1] >= 1_000
    assert agent.env_steps < 2_000


def test_unknown_algorithm_and_bad_budgets_are_one_line_errors(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="no search space for 'ddpg'"):
        tune("ddpg", "Pendulum-v1", 1, steps=1_000, out=tmp_path)
    with pytest.raises(ConfigError, match="trials must be >= 1"):
        tune("a2c", "CartPole-v1", 0, steps=1_000, out=tmp_path)


def test_cli_usage_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["a2c", "--trials", "many"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pgrl tune: error:") and "\n" not in err


def test_missing_optuna_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(PgrlError, match=r"pip install 'pgrl\[optuna\]'"):
        import_optuna()


def test_cli_tune_writes_a_config_that_pgrl_train_accepts(tmp_path: Any) -> None:
    from pgrl.cli import main as pgrl_main

    out = tmp_path / "tune"
    argv = ["tune", "a2c", "--env", "CartPole-v1", "--trials", "2", "--steps", "1000"]
    assert pgrl_main([*argv, "--eval-episodes", "1", "--out", str(out)]) == 0
    config = out / "best-config.yaml"
    argv = ["train", "a2c", "--steps", "200", "--eval-episodes", "1", "--no-save", "--quiet"]
    assert pgrl_main([*argv, "--config", str(config)]) == 0

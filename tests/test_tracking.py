"""The W&B tracker (pgrl/tracking.py), in W&B's offline mode: files, metrics, same numbers."""

from __future__ import annotations

import random
import sys
from typing import Any

import numpy as np
import pytest
import torch

from pgrl.errors import PgrlError
from pgrl.tracking import WandbTracker, global_rngs_untouched, import_wandb
from pgrl.train import train


@pytest.fixture
def offline(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-dir"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONSOLE", "off")  # leave pytest's capture of stdout alone
    return tmp_path


class LogSpy:
    """Placed after the tracker: records what the tracker sends to ``run.log``."""

    def __init__(self, tracker: WandbTracker) -> None:
        self.tracker = tracker
        self.logged: list[tuple[int, dict[str, float]]] = []

    def on_start(self, agent: Any) -> None:
        log = self.tracker.run.log

        def recording_log(data: dict[str, float], step: int) -> None:
            self.logged.append((step, dict(data)))
            log(data, step=step)

        self.tracker.run.log = recording_log


def _parameters(agent: Any) -> dict[str, torch.Tensor]:
    return {
        f"{name}.{key}": value
        for name, module in agent.algorithm.modules().items()
        for key, value in module.state_dict().items()
    }


def test_tracked_run_has_the_same_parameters_and_writes_an_offline_run(offline: Any) -> None:
    tracker = WandbTracker()
    spy = LogSpy(tracker)
    run_dir = offline / "run"
    kwargs: dict[str, Any] = dict(steps=1_000, seed=3, eval_every=500, eval_episodes=2)
    tracked = train("a2c", "CartPole-v1", run_dir=run_dir, callbacks=[tracker, spy], **kwargs)
    plain = train("a2c", "CartPole-v1", **kwargs)

    torch.testing.assert_close(_parameters(tracked), _parameters(plain), rtol=0, atol=0)
    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("run-*.wandb"))
    assert tracker.run is None  # finished at on_end
    steps = [step for step, _ in spy.logged]
    assert steps == sorted(steps) and steps[-1] == tracked.env_steps
    logged = {key for _, data in spy.logged for key in data}
    assert {"episode_return_mean", "rollout/ep_rew_mean", "eval_return_mean"} <= logged
    evaluated = {int(row["env_steps"]) for row in tracked.history if "eval_return_mean" in row}
    assert len(evaluated) == 2
    assert {step for step, data in spy.logged if "eval_return_mean" in data} == evaluated


def test_config_and_name_come_from_the_agent(offline: Any) -> None:
    seen: dict[str, Any] = {}

    class ConfigSpy:
        def on_start(self, agent: Any) -> None:
            seen.update(name=tracker.run.name, config=dict(tracker.run.config))

    tracker = WandbTracker(project="pgrl-test")
    train(
        "a2c", "CartPole-v1", steps=200, seed=5, eval_episodes=0, callbacks=[tracker, ConfigSpy()]
    )
    assert seen["name"] == "a2c-CartPole-v1-5"
    config = seen["config"]
    assert (config["algo"], config["env"], config["seed"]) == ("a2c", "CartPole-v1", 5)
    assert config["learning_rate"] > 0 and "rollout_steps" in config
    assert config["steps"] is None  # no run directory to read the budget from, none passed


def test_global_generators_are_restored() -> None:
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    with global_rngs_untouched():
        random.random(), np.random.rand(), torch.rand(1)
    after = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    assert after == (random.random(), np.random.rand(), torch.rand(1).item())


def test_missing_wandb_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb raises ImportError
    with pytest.raises(PgrlError, match=r"pip install 'pgrl\[wandb\]'") as info:
        import_wandb()
    assert "\n" not in str(info.value)


def test_cli_track_writes_an_offline_run_into_the_run_directory(offline: Any) -> None:
    from pgrl.cli import main

    run_dir = offline / "cli-run"
    argv = ["train", "a2c", "--steps", "200", "--eval-episodes", "1", "--quiet", "--track"]
    assert main([*argv, "--run-dir", str(run_dir), "--wandb-project", "pgrl-test"]) == 0
    assert list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))

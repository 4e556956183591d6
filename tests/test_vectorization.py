"""The kind of vector environment: chosen in train() and `pgrl train --vectorization`, stored
with the run, and rebuilt by resume()."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest

import pgrl
from pgrl.checkpoint import load_checkpoint, save_checkpoint
from pgrl.cli import main
from pgrl.errors import ConfigError

train_module = importlib.import_module("pgrl.train")  # `pgrl.train` is the function


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Class names of the vector environments that training and resuming build."""
    names: list[str] = []
    make = train_module._make_envs

    def recording(*args: Any, **kwargs: Any) -> Any:
        envs = make(*args, **kwargs)
        names.append(type(envs.unwrapped).__name__)
        return envs

    monkeypatch.setattr(train_module, "_make_envs", recording)
    return names


@pytest.mark.parametrize(
    ("vectorization", "kind"),
    [("auto", "CartPoleVectorEnv"), ("sync", "SyncVectorEnv"), ("async", "AsyncVectorEnv")],
)
def test_train_runs_on_each_kind_of_vector_env(
    vectorization: str, kind: str, built: list[str]
) -> None:
    agent = pgrl.train(
        "a2c", "CartPole-v1", steps=400, save=False, eval_episodes=0, vectorization=vectorization
    )
    assert built == [kind]
    assert agent.summary()["env_steps"] >= 400


@pytest.mark.parametrize("vectorization", ["sync", "async"])
def test_cli_train_with_vectorization_reports_env_steps(
    vectorization: str, capsys: pytest.CaptureFixture[str], built: list[str]
) -> None:
    argv = ["train", "a2c", "--steps", "400", "--no-save", "--quiet", "--eval-episodes", "0"]
    code = main([*argv, "--vectorization", vectorization, "--json"])
    out = capsys.readouterr().out
    assert code == 0
    assert json.loads(out.strip().splitlines()[-1])["env_steps"] >= 400
    assert built == [f"{vectorization.capitalize()}VectorEnv"]


def test_resume_of_a_sync_run_uses_sync(tmp_path: Path, built: list[str]) -> None:
    run = tmp_path / "r"
    pgrl.train("a2c", "CartPole-v1", steps=400, run_dir=run, eval_episodes=0, vectorization="sync")
    assert json.loads((run / "config.json").read_text())["vectorization"] == "sync"
    _, meta = load_checkpoint(run / "checkpoints" / "last.safetensors")
    assert meta["run"]["vectorization"] == "sync"
    agent = pgrl.resume(run, steps=800)
    assert built == ["SyncVectorEnv", "SyncVectorEnv"]
    assert agent.env_steps >= 800


def test_a_run_saved_before_vectorization_was_recorded_resumes_with_auto(
    tmp_path: Path, built: list[str]
) -> None:
    run = tmp_path / "r"
    pgrl.train("a2c", "CartPole-v1", steps=400, run_dir=run, eval_episodes=0, vectorization="sync")
    file = run / "checkpoints" / "last.safetensors"
    tensors, meta = load_checkpoint(file)
    del meta["run"]["vectorization"]  # as written by pgrl before the option existed
    save_checkpoint(file, tensors, meta)
    pgrl.resume(run, steps=800)
    assert built == ["SyncVectorEnv", "CartPoleVectorEnv"]


def test_bad_vectorization_is_a_config_error_naming_the_choices() -> None:
    with pytest.raises(ConfigError, match="vectorization must be one of auto, sync, async"):
        pgrl.train("a2c", "CartPole-v1", steps=400, save=False, vectorization="threads")


def test_cli_bad_vectorization_is_one_line_and_exit_status_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # vector_entry_point is a train() choice but not a CLI one (auto covers it)
    for value in ("fast", "vector_entry_point"):
        code = main(["train", "a2c", "--no-save", "--quiet", "--vectorization", value])
        err = capsys.readouterr().err
        assert code == 2
        assert f"--vectorization must be one of auto, sync, async; got {value!r}" in err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1

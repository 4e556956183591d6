"""Tests of pgrl.seeds: many seeds of one experiment in one command (issue 14)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from pgrl.errors import ConfigError, PgrlError
from pgrl.logger import read_metrics
from pgrl.plot import iqm, learning_curve_figure, stratified_bootstrap_ci
from pgrl.seeds import train_seeds


def test_three_seeds_on_cartpole_make_a_group_its_summary_and_a_figure(tmp_path: Path) -> None:
    group_dir = tmp_path / "a2c-group"
    out = io.StringIO()
    group = train_seeds(
        "a2c",
        "CartPole-v1",
        [0, 1, 2],
        steps=320,
        group_dir=group_dir,
        processes=2,  # the spawn path, at most the 2 cores of CI
        eval_episodes=2,
        stream=out,
        log_interval=64,  # a pgrl.train argument passed on to every seed
    )
    assert group.seeds == [0, 1, 2] and not group.failed
    for seed in (0, 1, 2):
        run_dir = group_dir / f"seed-{seed}"
        assert json.loads((run_dir / "config.json").read_text())["seed"] == seed
        assert json.loads((run_dir / "config.json").read_text())["log_interval"] == 64
        assert read_metrics(run_dir)["env_steps"][-1] >= 320
    # one line per seed, then the aggregate
    lines = out.getvalue().splitlines()
    assert sorted(line.split(":")[0] for line in lines[1:4]) == ["seed 0", "seed 1", "seed 2"]
    assert "IQM" in lines[4] and "95% stratified bootstrap CI" in lines[4]

    summary = json.loads((group_dir / "group.json").read_text())
    assert summary["seeds"] == [0, 1, 2]
    assert [run["run_dir"] for run in summary["runs"]] == ["seed-0", "seed-1", "seed-2"]
    returns = np.array([run["eval_return_mean"] for run in summary["runs"]])
    aggregate = summary["aggregate"]
    assert aggregate["statistic"] == "iqm"
    assert aggregate["eval_return"] == pytest.approx(float(iqm(returns)))
    _, lo, hi = stratified_bootstrap_ci(returns, "iqm")
    assert (aggregate["ci_low"], aggregate["ci_high"]) == (float(lo), float(hi))
    assert returns.min() <= aggregate["ci_low"] <= aggregate["eval_return"]
    assert aggregate["eval_return"] <= aggregate["ci_high"] <= returns.max()

    assert group.figure == group_dir / "learning-curve.png"
    assert group.figure.read_bytes().startswith(b"\x89PNG")
    # pgrl plot GROUP draws every seed: one IQM curve over three seeds
    legend = learning_curve_figure([group_dir]).axes[0].get_legend()
    assert legend.get_texts()[0].get_text().endswith("n=3 seeds")


def test_seeds_must_be_distinct_and_valid(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="distinct"):
        train_seeds("a2c", "CartPole-v1", [0, 0], steps=100, group_dir=tmp_path / "g")
    with pytest.raises(ConfigError, match="seed"):
        train_seeds("a2c", "CartPole-v1", [-1], steps=100, group_dir=tmp_path / "g")
    with pytest.raises(ConfigError, match="at least one"):
        train_seeds("a2c", "CartPole-v1", [], steps=100, group_dir=tmp_path / "g")
    with pytest.raises(ConfigError, match="processes"):
        train_seeds("a2c", "CartPole-v1", [0], steps=100, group_dir=tmp_path / "g", processes=0)
    assert not (tmp_path / "g").exists()


def test_an_occupied_seed_directory_is_refused_before_any_training(tmp_path: Path) -> None:
    (tmp_path / "g" / "seed-1").mkdir(parents=True)
    (tmp_path / "g" / "seed-1" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="seed-1"):
        train_seeds("a2c", "CartPole-v1", [0, 1], steps=100, group_dir=tmp_path / "g")
    assert not (tmp_path / "g" / "seed-0").exists()


def test_an_environment_that_cannot_reach_another_process_is_one_clear_error(
    tmp_path: Path,
) -> None:
    import gymnasium as gym

    with pytest.raises(ConfigError, match="another process"):
        train_seeds(
            "a2c",
            lambda: gym.make("CartPole-v1"),
            [0, 1],
            steps=100,
            group_dir=tmp_path / "g",
            processes=2,
        )


def test_a_bad_hyperparameter_is_one_error_before_any_process_starts(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no_such_knob"):
        train_seeds(
            "a2c", "CartPole-v1", [0, 1], steps=100, config={"no_such_knob": 1}, group_dir=tmp_path
        )
    assert list(tmp_path.iterdir()) == []


def test_failed_seeds_are_recorded_and_raised_after_the_others(tmp_path: Path) -> None:
    out = io.StringIO()
    # the environment id resolves only inside each run: both seeds fail there
    with pytest.raises(PgrlError, match=r"seed\(s\) 0, 1 failed") as caught:
        train_seeds(
            "a2c",
            "NoSuchEnv-v0",
            [0, 1],
            steps=100,
            group_dir=tmp_path / "g",
            processes=1,
            stream=out,
        )
    assert getattr(caught.value, "exit_code", None) == 1
    summary = json.loads((tmp_path / "g" / "group.json").read_text())
    assert all("NoSuchEnv" in run["error"] for run in summary["runs"])
    assert summary["aggregate"]["eval_return"] is None
    assert out.getvalue().count("failed:") == 2


def test_more_train_arguments_are_checked_before_any_training(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="run_dir"):
        train_seeds("a2c", "CartPole-v1", [0], steps=100, group_dir=tmp_path, run_dir="x")
    with pytest.raises(ConfigError, match="no_such_argument"):
        train_seeds("a2c", "CartPole-v1", [0], steps=100, group_dir=tmp_path, no_such_argument=1)
    assert list(tmp_path.iterdir()) == []

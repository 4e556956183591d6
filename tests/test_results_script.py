"""benchmarks/results.py: the table's statistics and verdict against hand values, the zoo's
notation turned into Stable-Baselines3 arguments, the bookkeeping that makes a rerun skip
finished runs, and one tiny run of the whole script (skipped without Stable-Baselines3)."""

from __future__ import annotations

import doctest
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "results.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pgrl_results_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


results = _load()


def _run(lib: str, seed: int, score: float, reach: dict | None = None, **kw: object) -> dict:
    run = {
        "lib": lib,
        "algo": "ppo",
        "env": "CartPole-v1",
        "seed": seed,
        "budget": 1000,
        "final_eval": {"mean": score},
        "time_to_threshold": reach,
        "train_seconds": 10.0 + seed,
    }
    run.update(kw)
    return run


def test_doctests_of_the_script_pass() -> None:
    failures, tried = doctest.testmod(results)
    assert tried > 0 and failures == 0


def test_every_row_has_a_zoo_entry_with_its_source() -> None:
    for row in results.ROWS:
        entry = results.ZOO[(row.algo, row.env)]
        assert "hyperparams/" in entry["source"]
        assert entry["hyperparams"]["policy"] == "MlpPolicy"
    assert {r.env for r in results.ROWS} == {
        *results.THRESHOLDS,
        "HalfCheetah-v5",
        "Hopper-v5",
    }


def test_interval_with_fewer_than_four_seeds_is_the_mean_within_min_and_max() -> None:
    # IQM of 3 values cuts nothing: (1 + 2 + 6) / 3 = 3; every bootstrap mean lies in [1, 6]
    point, lo, hi = results.interval([1.0, 2.0, 6.0])
    assert point == pytest.approx(3.0)
    assert 1.0 <= lo <= point <= hi <= 6.0


def test_interval_of_identical_scores_has_no_width() -> None:
    assert results.interval([500.0, 500.0, 500.0]) == (500.0, 500.0, 500.0)


def test_verdict_compares_pgrl_with_the_low_end_of_sb3s_interval() -> None:
    sb3 = (100.0, 90.0, 110.0)
    assert results.verdict(90.0, sb3) == results.PGRL_OK  # on the edge: within
    assert results.verdict(150.0, sb3) == results.PGRL_OK  # better
    assert results.verdict(89.9, sb3) == results.PGRL_WORSE
    assert results.verdict(None, sb3) == "incomplete"
    assert results.verdict(95.0, None) == "incomplete"


def test_first_reaching_takes_the_first_evaluation_at_or_above_the_threshold() -> None:
    curve = [[500, -300.0, 1.0], [1000, -200.0, 2.5], [1500, -150.0, 4.0]]
    assert results.first_reaching(curve, -200.0) == {"steps": 1000, "seconds": 2.5}
    assert results.first_reaching(curve, 0.0) is None
    assert results.first_reaching(curve, None) is None  # MuJoCo: no threshold


def test_summary_medians_count_only_seeds_that_reached_the_threshold() -> None:
    runs = [
        _run("pgrl", 0, 500.0, {"steps": 3000, "seconds": 2.0}),
        _run("pgrl", 1, 480.0, {"steps": 5000, "seconds": 4.0}),
        _run("pgrl", 2, 100.0, None),
        _run("sb3", 0, 400.0, None),
    ]
    (entry,) = results.summarize(runs)
    pgrl, sb3 = entry["pgrl"], entry["sb3"]
    assert pgrl["solved"] == 2
    assert pgrl["threshold_steps"] == 4000  # median of 3000 and 5000
    assert pgrl["threshold_seconds"] == 3.0
    assert pgrl["train_seconds"] == 11.0  # median of 10, 11, 12
    assert pgrl["iqm"][0] == pytest.approx((500 + 480 + 100) / 3)
    assert sb3["solved"] == 0 and sb3["threshold_steps"] is None
    assert entry["verdict"] == results.PGRL_WORSE  # mean 360 below SB3's one-seed [400, 400]
    line = results.table_lines([entry])[2]
    assert "4,000 / 3.0 s (2/3)" in line and "not reached (0/1)" in line


def test_summary_verdict_ok_when_pgrl_reaches_into_sb3s_interval() -> None:
    # SB3's three scores 300, 400, 500: every bootstrap mean is at most 500 and its 2.5th
    # percentile at most the mean 400, so a pgrl IQM of 400 is within
    runs = [_run("pgrl", s, 400.0) for s in range(3)]
    runs += [_run("sb3", s, 300.0 + 100 * s) for s in range(3)]
    (entry,) = results.summarize(runs)
    assert entry["sb3"]["iqm"][1] <= 400.0
    assert entry["verdict"] == results.PGRL_OK


def test_rows_with_different_budgets_are_different_rows() -> None:
    runs = [_run("pgrl", 0, 1.0), _run("pgrl", 0, 2.0, budget=2000)]
    assert [e["budget"] for e in results.summarize(runs)] == [1000, 2000]


def test_pending_runs_interleave_libraries_and_skip_finished_ones() -> None:
    row = results.Row("CartPole-v1", "ppo", 1000)
    other = results.Row("Acrobot-v1", "a2c", 1000)
    done = [_run("sb3", 1, 0.0), _run("pgrl", 0, 0.0, budget=2000)]  # other budget: not done
    todo = [(r.env, seed, lib) for r, seed, lib in results.pending_runs([row, other], [0, 1], done)]
    assert todo == [
        ("CartPole-v1", 0, "pgrl"),
        ("CartPole-v1", 0, "sb3"),
        ("CartPole-v1", 1, "pgrl"),
        ("Acrobot-v1", 0, "pgrl"),
        ("Acrobot-v1", 0, "sb3"),
        ("Acrobot-v1", 1, "pgrl"),
        ("Acrobot-v1", 1, "sb3"),
    ]


def test_select_rows_by_env_algo_and_glob() -> None:
    names = [r.name for r in results.select_rows(["*/td3", "Hopper-v5"])]
    assert names == [
        "Pendulum-v1/td3",
        "MountainCarContinuous-v0/td3",
        "HalfCheetah-v5/td3",
        "Hopper-v5/sac",
        "Hopper-v5/td3",
        "Hopper-v5/ppo",
    ]
    assert results.select_rows(["nothing"]) == []
    assert len(results.select_rows(None)) == len(results.ROWS)


def test_zoo_notation_becomes_sb3_arguments() -> None:
    pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.noise import OrnsteinUhlenbeckActionNoise

    setup = results.zoo_to_sb3(results.ZOO[("ppo", "CartPole-v1")]["hyperparams"])
    kwargs = setup["kwargs"]
    assert setup["n_envs"] == 8 and setup["normalize"] is None
    assert kwargs["learning_rate"](1.0) == pytest.approx(1e-3)  # lin_0.001
    assert kwargs["learning_rate"](0.5) == pytest.approx(5e-4)
    assert kwargs["clip_range"](0.25) == pytest.approx(0.05)  # lin_0.2
    assert "n_timesteps" not in kwargs and "policy" not in kwargs

    hopper = results.zoo_to_sb3(results.ZOO[("ppo", "Hopper-v5")]["hyperparams"])
    assert hopper["normalize"] == {"gamma": 0.999}  # VecNormalize's gamma: the algorithm's
    import torch

    assert hopper["kwargs"]["policy_kwargs"]["activation_fn"] is torch.nn.ReLU

    td3 = results.zoo_to_sb3(results.ZOO[("td3", "MountainCarContinuous-v0")]["hyperparams"], 1)
    noise = td3["kwargs"]["action_noise"]
    assert isinstance(noise, OrnsteinUhlenbeckActionNoise)
    np.testing.assert_allclose(noise._sigma, [0.5])
    assert "noise_type" not in td3["kwargs"] and "noise_std" not in td3["kwargs"]


def test_script_runs_a_tiny_row_writes_outputs_and_skips_it_when_rerun(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("stable_baselines3")
    args = ["--rows", "CartPole-v1/ppo", "--seeds", "1", "--budget-scale", "0.01"]
    args += ["--out", str(tmp_path), "--final-episodes", "3"]
    assert results.main(args) == 0
    runs = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert [(r["lib"], r["seed"], r["budget"]) for r in runs] == [
        ("pgrl", 0, 1000),
        ("sb3", 0, 1000),
    ]
    for run in runs:
        assert run["env_steps"] >= 1000
        assert run["final_eval"]["episodes"] == 3
        assert run["curve"] and all(len(p) == 3 for p in run["curve"])
        assert run["train_seconds"] > 0 and run["versions"]["stable_baselines3"]
    assert "CartPole-v1 | PPO | 1,000" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "results.png").stat().st_size > 0

    capsys.readouterr()
    assert results.main(args) == 0  # everything is there: nothing trains again
    assert "0 runs to do (2 already in" in capsys.readouterr().out
    assert len(json.loads((tmp_path / "results.json").read_text())["runs"]) == 2

    # --first-seed 1: only seed 1 trains, next to the runs already there
    assert results.main([*args, "--first-seed", "1"]) == 0
    assert "2 runs to do (0 already in" in capsys.readouterr().out
    runs = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert [(r["lib"], r["seed"]) for r in runs] == [
        ("pgrl", 0),
        ("sb3", 0),
        ("pgrl", 1),
        ("sb3", 1),
    ]
    with pytest.raises(SystemExit):
        results.main([*args, "--seeds", "0"])
    assert "--seeds must be at least 1" in capsys.readouterr().err


def _full_run(lib: str, seed: int, score: float) -> dict:
    """A complete record, as one_run() writes it (without training anything)."""
    return _run(
        lib,
        seed,
        score,
        {"steps": 600, "seconds": 1.0},
        curve=[[300, score / 2, 0.5], [600, score, 1.0], [1000, score, 1.6]],
        final_eval={"mean": score, "std": 0.0, "episodes": 3, "returns": [score] * 3},
        threshold=475.0,
        settings={"defaults": "the preset", "source": "zoo ppo.yml CartPole-v1"},
        versions={"pgrl": "0", "torch": "0", "gymnasium": "0", "stable_baselines3": "0"},
        machine={"cores": 2, "machine": "x86_64", "torch_threads": 1},
        date="2026-12-02T06:00:00+00:00",
        command="python benchmarks/results.py --seeds 2",
    )


def test_table_only_merges_other_directories_without_training(tmp_path: Path) -> None:
    mine, other = tmp_path / "mine", tmp_path / "other"
    results.save_runs(mine / "results.json", [_full_run("pgrl", 0, 500.0)])
    runs = [_full_run("pgrl", 0, 1.0), _full_run("sb3", 0, 480.0), _full_run("sb3", 1, 490.0)]
    results.save_runs(other / "results.json", runs)
    assert results.main(["--table-only", "--out", str(mine), "--merge", str(other)]) == 0
    merged = results.load_runs(mine / "results.json")
    # pgrl seed 0 was already in mine: kept, the other copy left out
    assert [(r["lib"], r["seed"], r["final_eval"]["mean"]) for r in merged] == [
        ("pgrl", 0, 500.0),
        ("sb3", 0, 480.0),
        ("sb3", 1, 490.0),
    ]
    table = (mine / "results.md").read_text()
    assert "| CartPole-v1 | PPO | 1,000 | 500.0 [500.0, 500.0] (n=1) |" in table
    assert "485.0 [480.0, 490.0] (n=2)" in table and results.PGRL_OK in table
    assert "`python benchmarks/results.py --seeds 2`" in table
    assert (mine / "results.png").stat().st_size > 0


def test_a_variant_trains_the_row_with_changed_hyperparameters(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "pgrl_variant_script", SCRIPT.parent / "pgrl_variant.py"
    )
    assert spec is not None and spec.loader is not None
    variant = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(variant)
    out = tmp_path / "v.jsonl"
    args = ["CartPole-v1/ppo", "--seeds", "0", "--budget-scale", "0.01", "--set", "num_envs=16"]
    assert variant.main([*args, "--out", str(out)]) == 0
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["budget"] == 1000 and record["env_steps"] >= 1000
    assert record["set"] == {"num_envs": "16"}
    assert record["settings"]["config"]["num_envs"] == 16  # the preset's 8, changed
    assert record["final_eval"]["episodes"] == results.FINAL_EPISODES
    with pytest.raises(SystemExit):
        variant.main(["Nowhere-v0/ppo", "--out", str(out)])
    with pytest.raises(SystemExit):  # refused before training: nothing appended
        variant.main(["CartPole-v1/ppo", "--set", "num_envs=lots", "--out", str(out)])
    assert len(out.read_text().splitlines()) == 1

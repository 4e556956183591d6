"""The benchmark script runs end to end at tiny step counts. No speed is asserted here
(BENCHMARKS.md: a timed test is flaky and proves nothing)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import pgrl.bench as bench

TINY = ["--algos", "a2c", "--seeds", "0", "--repeats", "1", "--steps", "400"]


def test_a2c_throughput_is_measured_on_both_vector_envs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    assert bench.main([*TINY, "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    lines = {(t["vectorization"], t["vector_env"]) for t in results["throughput"]}
    assert lines == {("auto", "CartPoleVectorEnv"), ("sync", "SyncVectorEnv")}
    for line in results["throughput"]:
        assert line["algo"] == "a2c" and line["num_envs"] == 8
        assert line["train_steps_per_s"]["median"] > 0 and line["limit_steps_per_s"]["median"] > 0
    assert "peers" not in results and "peers_skipped" not in results
    printed = capsys.readouterr().out
    assert "CartPoleVectorEnv" in printed and "SyncVectorEnv" in printed


def test_peers_without_stable_baselines3_skip_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "stable_baselines3", None)  # import fails as if absent
    out = tmp_path / "bench.json"
    assert bench.main([*TINY, "--peers", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    skipped = [line for line in printed.splitlines() if "skipped" in line]
    assert len(skipped) == 1 and "pip install -e .[bench]" in skipped[0]
    results = json.loads(out.read_text())
    assert "peers" not in results and "pip install -e .[bench]" in results["peers_skipped"]
    assert len(results["throughput"]) == 2  # the rest of the benchmark still ran


def test_peer_path_alternates_with_pgrl_and_passes_the_workload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stand-in for Stable-Baselines3 (not installed in the test environment) records how
    the benchmark drives it."""
    calls: list[Any] = []

    class FakeVecEnv:
        def close(self) -> None:
            pass

    class FakeA2C:
        def __init__(self, policy: str, env: Any, **kwargs: Any) -> None:
            calls.append(("sb3", policy, kwargs))
            self.num_timesteps = 0

        def learn(self, total_timesteps: int) -> FakeA2C:
            self.num_timesteps = total_timesteps
            return self

    def fake_make_vec_env(env_id: str, n_envs: int, seed: int) -> FakeVecEnv:
        calls.append(("sb3_envs", env_id, n_envs, seed))
        return FakeVecEnv()

    sb3 = types.ModuleType("stable_baselines3")
    sb3.__version__ = "0.0-fake"  # type: ignore[attr-defined]
    sb3.A2C = FakeA2C  # type: ignore[attr-defined]
    sb3.PPO = FakeA2C  # type: ignore[attr-defined]
    common = types.ModuleType("stable_baselines3.common")
    env_util = types.ModuleType("stable_baselines3.common.env_util")
    env_util.make_vec_env = fake_make_vec_env  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "stable_baselines3", sb3)
    monkeypatch.setitem(sys.modules, "stable_baselines3.common", common)
    monkeypatch.setitem(sys.modules, "stable_baselines3.common.env_util", env_util)
    rate = bench.training_rate

    def recording_rate(work: bench.Workload, seed: int = 0) -> float:
        calls.append(("pgrl", work.vectorization, work.steps, seed))
        return rate(work, seed)

    monkeypatch.setattr(bench, "training_rate", recording_rate)
    out = tmp_path / "bench.json"
    argv = ["--algos", "a2c", "--seeds", "0", "--repeats", "2", "--steps", "400", "--peers"]
    assert bench.main([*argv, "--out", str(out)]) == 0
    peer_calls = calls[4:]  # after the throughput section's 2 x 2 pgrl runs
    kinds = [c[0] if c[0] != "pgrl" else f"pgrl-{c[1]}" for c in peer_calls]
    assert kinds == ["pgrl-auto", "pgrl-sync", "sb3_envs", "sb3"] * 2  # A B C A B C
    assert peer_calls[2] == ("sb3_envs", "CartPole-v1", 8, 0)
    assert peer_calls[3] == (
        "sb3",
        "MlpPolicy",
        {"n_steps": 5, "seed": 0, "verbose": 0, "device": "cpu"},
    )
    assert peer_calls[6][3] == 1  # second repeat, seed 1
    results = json.loads(out.read_text())
    (entry,) = results["peers"]
    assert entry["peer"] == "stable-baselines3 0.0-fake A2C" and entry["steps"] == 400
    assert [p["vector_env"] for p in entry["pgrl"]] == ["CartPoleVectorEnv", "SyncVectorEnv"]
    assert all(p["ratio_to_peer"] > 0 for p in entry["pgrl"])
    assert results["environment"]["stable_baselines3"] == "0.0-fake"


def test_only_the_benchmark_refers_to_stable_baselines3() -> None:
    package = Path(bench.__file__).resolve().parents[1]
    for file in package.rglob("*.py"):
        if "bench" not in file.relative_to(package).parts:
            assert "stable_baselines3" not in file.read_text(encoding="utf-8"), file


def test_ppo_peer_gets_pgrl_presets_hyperparameters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    class FakeEnv:
        def close(self) -> None:
            pass

    class FakePPO:
        def __init__(self, policy: str, env: Any, **kwargs: Any) -> None:
            seen.update(kwargs)
            self.num_timesteps = 0

        def learn(self, total_timesteps: int) -> FakePPO:
            self.num_timesteps = total_timesteps
            return self

    sb3 = types.ModuleType("stable_baselines3")
    sb3.__version__ = "0.0-fake"  # type: ignore[attr-defined]
    sb3.A2C = sb3.PPO = FakePPO  # type: ignore[attr-defined]
    env_util = types.ModuleType("stable_baselines3.common.env_util")
    env_util.make_vec_env = lambda env_id, n_envs, seed: FakeEnv()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "stable_baselines3", sb3)
    monkeypatch.setitem(sys.modules, "stable_baselines3.common", types.ModuleType("c"))
    monkeypatch.setitem(sys.modules, "stable_baselines3.common.env_util", env_util)
    argv = ["--algos", "ppo", "--seeds", "0", "--repeats", "1", "--steps", "512", "--peers"]
    assert bench.main([*argv, "--out", str(tmp_path / "b.json")]) == 0
    assert (seen["n_steps"], seen["batch_size"], seen["n_epochs"]) == (32, 256, 20)
    assert (seen["gamma"], seen["gae_lambda"], seen["ent_coef"]) == (0.98, 0.8, 0.0)
    assert seen["learning_rate"](1.0) == pytest.approx(1e-3)  # linear from 1e-3 to 0
    assert seen["learning_rate"](0.5) == pytest.approx(5e-4)
    assert seen["clip_range"] == 0.2
    results = json.loads((tmp_path / "b.json").read_text())
    assert results["peers"][0]["peer"] == "stable-baselines3 0.0-fake PPO"

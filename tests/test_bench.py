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
        def set_logger(self, logger: Any) -> None:  # SB3's API; no output here
            pass

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
    sb3_logger = types.ModuleType("stable_baselines3.common.logger")
    sb3_logger.Logger = lambda folder, output_formats: None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "stable_baselines3.common.logger", sb3_logger)
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
        def set_logger(self, logger: Any) -> None:  # SB3's API; no output here
            pass

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
    sb3_logger = types.ModuleType("stable_baselines3.common.logger")
    sb3_logger.Logger = lambda folder, output_formats: None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "stable_baselines3.common.logger", sb3_logger)
    argv = ["--algos", "ppo", "--seeds", "0", "--repeats", "1", "--steps", "512", "--peers"]
    assert bench.main([*argv, "--out", str(tmp_path / "b.json")]) == 0
    assert (seen["n_steps"], seen["batch_size"], seen["n_epochs"]) == (32, 256, 20)
    assert (seen["gamma"], seen["gae_lambda"], seen["ent_coef"]) == (0.98, 0.8, 0.0)
    assert seen["learning_rate"](1.0) == pytest.approx(1e-3)  # linear from 1e-3 to 0
    assert seen["learning_rate"](0.5) == pytest.approx(5e-4)
    assert seen["clip_range"] == 0.2
    results = json.loads((tmp_path / "b.json").read_text())
    assert results["peers"][0]["peer"] == "stable-baselines3 0.0-fake PPO"


# Off-policy workloads at the peers' networks (256x256, minibatch 256) and their SB3 peers

PEER_NETS = {"hidden_sizes": (256, 256), "minibatch_size": 256}


def _tiny_offpolicy(algo: str, steps: int = 300, learning_starts: int = 100) -> bench.Workload:
    """A peer workload cut to a few hundred steps (the warm-up too), for real runs in tests."""
    return bench.Workload(
        algo,
        "Pendulum-v1",
        steps,
        steps,
        steps,
        overrides=(*bench.OFFPOLICY_PEER_OVERRIDES, ("learning_starts", learning_starts)),
        limit_steps=steps,
        solve=False,
        label=bench.OFFPOLICY_PEER_LABEL,
    )


@pytest.mark.parametrize("algo", ["ddpg", "td3", "sac"])
def test_offpolicy_workloads_at_the_peers_networks(algo: str) -> None:
    from pgrl.train import resolve_config

    rows = [w for w in bench.WORKLOADS if w.algo == algo and w.env == "Pendulum-v1"]
    (preset,) = [w for w in rows if not w.label]
    (peer,) = [w for w in rows if w.label]
    assert dict(peer.overrides) == PEER_NETS and peer.label == "256x256/mb256"
    assert peer.steps == preset.steps == 4_000 and not peer.solve and preset.solve
    assert peer.name == f"{algo} 256x256/mb256" and preset.name == algo
    cfg = resolve_config(algo, peer.env, dict(peer.overrides))
    assert cfg.hidden_sizes == (256, 256) and cfg.minibatch_size == 256 and cfg.num_envs == 1
    assert resolve_config(algo, preset.env, dict(preset.overrides)).hidden_sizes == (64, 64)
    assert bench.has_offpolicy_peer(peer) and not bench.has_offpolicy_peer(preset)


def _spaces(act_dim: int = 2) -> Any:
    import numpy as np

    from pgrl.envs import SpaceInfo

    return SpaceInfo(
        obs_dim=3,
        discrete=False,
        act_dim=act_dim,
        low=np.full(act_dim, -2.0, np.float32),
        high=np.full(act_dim, 2.0, np.float32),
    )


# distinct values, so that a field mapped to the wrong keyword shows
DISTINCT = {
    **PEER_NETS,
    "buffer_size": 12_345,
    "learning_starts": 77,
    "updates_per_step": 3,
    "gamma": 0.97,
    "tau": 0.02,
    "learning_rate": 5e-4,
    "critic_learning_rate": 5e-4,
}


@pytest.mark.parametrize("algo", ["ddpg", "td3", "sac"])
def test_sb3_offpolicy_kwargs_map_pgrls_config(algo: str) -> None:
    from pgrl.train import resolve_config

    extra: dict[str, Any] = {
        "ddpg": {"exploration_noise": 0.3},
        "td3": {
            "exploration_noise": 0.3,
            "policy_delay": 4,
            "target_noise": 0.25,
            "target_noise_clip": 0.45,
        },
        "sac": {"alpha_learning_rate": 5e-4},
    }[algo]
    cfg = resolve_config(algo, "Pendulum-v1", {**DISTINCT, **extra})
    kw = bench.sb3_offpolicy_kwargs(algo, cfg, _spaces(act_dim=2))
    expected = {
        "learning_rate": 5e-4,
        "buffer_size": 12_345,
        "learning_starts": 77,
        "batch_size": 256,
        "tau": 0.02,
        "gamma": 0.97,
        "train_freq": 1,
        "gradient_steps": 3,
        "policy_kwargs": {"net_arch": {"pi": [256, 256], "qf": [256, 256]}},
        "device": "cpu",
    }
    sigma = kw.pop("action_noise_sigma")
    if algo == "sac":
        expected |= {"ent_coef": "auto", "target_entropy": "auto"}
        assert sigma is None
    else:
        # SB3 adds the noise to actions scaled to [-1, 1]: σ = 0.3 there is 0.3 × the half
        # range (2) in Pendulum's units, pgrl's exploration_noise
        assert sigma.tolist() == pytest.approx([0.3, 0.3])
    if algo == "td3":
        expected |= {"policy_delay": 4, "target_policy_noise": 0.25, "target_noise_clip": 0.45}
    assert kw == expected


def test_sb3_sac_temperature_settings() -> None:
    from pgrl.train import resolve_config

    def kwargs(**overrides: Any) -> dict[str, Any]:
        cfg = resolve_config("sac", "Pendulum-v1", {**PEER_NETS, **overrides})
        return bench.sb3_offpolicy_kwargs("sac", cfg, _spaces())

    assert kwargs(alpha=0.5)["ent_coef"] == "auto_0.5"  # learned, from 0.5
    assert kwargs(alpha=0.2, auto_alpha=False)["ent_coef"] == 0.2  # fixed
    assert kwargs(target_entropy=-3.0)["target_entropy"] == -3.0


@pytest.mark.parametrize(
    ("algo", "overrides", "message"),
    [
        ("td3", {"critic_learning_rate": 1e-4}, "one learning rate"),
        ("sac", {"alpha_learning_rate": 3e-4}, "one learning rate"),
        ("sac", {"value_loss": "huber"}, "MSE"),
        ("ddpg", {"noise": "ou"}, "Gaussian"),
        ("td3", {"noise": "ou"}, "Gaussian"),
        ("sac", {"noise_correlation": 0.5}, "independently"),
        ("td3", {"num_envs": 4}, "1 environment"),
    ],
)
def test_sb3_offpolicy_kwargs_refuse_what_sb3_cannot_match(
    algo: str, overrides: dict[str, Any], message: str
) -> None:
    from pgrl.train import resolve_config

    cfg = resolve_config(algo, "Pendulum-v1", {**PEER_NETS, **overrides})
    with pytest.raises(ValueError, match=message):
        bench.sb3_offpolicy_kwargs(algo, cfg, _spaces())


def test_offpolicy_peer_times_only_after_the_warm_up_and_alternates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stand-in for Stable-Baselines3 records how the benchmark drives it: an untimed
    learn(learning_starts), then learn(steps - learning_starts) continuing the same run."""
    calls: list[Any] = []

    class FakeEnv:
        def close(self) -> None:
            pass

    class FakeNoise:
        def __init__(self, mean: Any, sigma: Any) -> None:
            self.mean, self.sigma = mean, sigma

    class FakeTD3:
        def set_logger(self, logger: Any) -> None:  # SB3's API; no output here
            pass

        def __init__(self, policy: str, env: Any, **kwargs: Any) -> None:
            calls.append(("sb3", policy, kwargs))
            self.num_timesteps = 0

        def learn(self, total_timesteps: int, reset_num_timesteps: bool = True) -> FakeTD3:
            calls.append(("learn", total_timesteps, reset_num_timesteps))
            self.num_timesteps = (0 if reset_num_timesteps else self.num_timesteps) + (
                total_timesteps
            )
            return self

    sb3 = types.ModuleType("stable_baselines3")
    sb3.__version__ = "0.0-fake"  # type: ignore[attr-defined]
    sb3.DDPG = sb3.TD3 = sb3.SAC = FakeTD3  # type: ignore[attr-defined]
    env_util = types.ModuleType("stable_baselines3.common.env_util")
    env_util.make_vec_env = lambda env_id, n_envs, seed: FakeEnv()  # type: ignore[attr-defined]
    noise = types.ModuleType("stable_baselines3.common.noise")
    noise.NormalActionNoise = FakeNoise  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "stable_baselines3", sb3)
    monkeypatch.setitem(sys.modules, "stable_baselines3.common", types.ModuleType("c"))
    monkeypatch.setitem(sys.modules, "stable_baselines3.common.env_util", env_util)
    sb3_logger = types.ModuleType("stable_baselines3.common.logger")
    sb3_logger.Logger = lambda folder, output_formats: None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "stable_baselines3.common.logger", sb3_logger)
    monkeypatch.setitem(sys.modules, "stable_baselines3.common.noise", noise)

    def fake_rate(work: bench.Workload, seed: int = 0) -> float:
        calls.append(("pgrl", work.algo, work.overrides, work.steps, seed))
        return 1_000.0

    monkeypatch.setattr(bench, "training_rate", fake_rate)
    works = [w for w in bench.WORKLOADS if w.algo == "td3"]  # the 64x64 row has no peer
    (entry,) = bench.peers(works, repeats=2, threads=1)
    assert [c[0] for c in calls] == ["pgrl", "sb3", "learn", "learn"] * 2  # A B A B
    assert calls[0] == ("pgrl", "td3", bench.OFFPOLICY_PEER_OVERRIDES, 4_000, 0)
    assert calls[2:4] == [("learn", 1_000, True), ("learn", 3_000, False)]
    kwargs = calls[1][2]
    assert kwargs["seed"] == 0 and calls[5][2]["seed"] == 1
    assert (kwargs["batch_size"], kwargs["policy_delay"], kwargs["learning_starts"]) == (
        256,
        2,
        1_000,
    )
    assert kwargs["action_noise"].sigma.tolist() == pytest.approx([0.1])
    assert "action_noise_sigma" not in kwargs
    assert entry["peer"] == "stable-baselines3 0.0-fake TD3"
    assert entry["label"] == "256x256/mb256" and entry["overrides"] == PEER_NETS
    assert entry["rate_after_learning_starts"] == 1_000 and entry["num_envs"] == 1


def test_labelled_rows_are_told_apart_in_the_table_and_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    results = bench.run([_tiny_offpolicy("ddpg")], repeats=1, seeds=0)
    (row,) = results["throughput"]
    assert row["label"] == "256x256/mb256" and row["overrides"]["hidden_sizes"] == (256, 256)
    assert row["train_steps_per_s"]["median"] > 0
    assert "ddpg 256x256/mb256" in capsys.readouterr().out
    json.dumps(results)  # the overrides stay JSON-able


@pytest.mark.parametrize("algo", ["ddpg", "td3", "sac"])
def test_real_stable_baselines3_peer_runs(algo: str, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip(
        "stable_baselines3", reason="Stable-Baselines3 is not installed (pip install -e .[bench])"
    )
    (entry,) = bench.peers([_tiny_offpolicy(algo)], repeats=1, threads=1)
    assert entry["peer"].endswith(algo.upper()) and entry["peer_steps_per_s"]["median"] > 0
    assert entry["pgrl"][0]["ratio_to_peer"] > 0 and entry["rate_after_learning_starts"] == 100
    printed = capsys.readouterr().out
    assert f"{algo.upper()} 256x256/mb256" in printed and f"{algo} 256x256/mb256" in printed


def test_profile_accounts_for_act_env_and_update() -> None:
    from pgrl.bench.profile import main, profile

    result = profile("a2c", "CartPole-v1", steps=400)
    parts = result["parts"]
    # 400 steps of 8 environments × 5 steps: at least 10 updates (a reset step after an
    # episode is a placeholder, not an environment step), 5 acting and environment calls each
    updates = result["updates"]
    assert 10 <= updates <= 12 and parts["update"]["calls"] == updates
    assert parts["act"]["calls"] >= 5 * updates and parts["env"]["calls"] >= 5 * updates
    assert 0 < sum(p["seconds"] for p in parts.values()) < result["seconds"]
    lines: list[str] = []
    assert main(["a2c", "--steps", "400"], out=lines.append) == 0
    assert lines[0].startswith("a2c CartPole-v1: 400 steps") and "us per update" in lines[1]

"""Rollout workers on Ray (pgrl.workers): same seed, same result whatever the workers; a worker
that dies is replaced and the run ends as if nothing happened; pgrl never imports Ray unasked.

One Ray session serves the module (two CPUs, no dashboard); the two-node cluster test, last,
replaces it with a simulated cluster of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import cloudpickle
import gymnasium as gym
import pytest
import torch

import pgrl
from pgrl.errors import ConfigError, EnvError
from pgrl.signals import TrainingInterrupted

ray = pytest.importorskip("ray")
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers get this file's wrappers

STEPS = {"ppo": 1024, "a2c": 1000, "reinforce": 1000}  # PPO: 4 updates of its preset
PPO_STEPS = STEPS["ppo"]


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def parameters(agent: pgrl.Agent) -> dict[str, torch.Tensor]:
    return {
        f"{name}.{key}": value.clone()
        for name, module in agent.algorithm.modules().items()
        for key, value in module.state_dict().items()
    }


def assert_same_parameters(a: pgrl.Agent, b: pgrl.Agent) -> None:
    pa, pb = parameters(a), parameters(b)
    assert pa.keys() == pb.keys()
    unequal = [key for key in pa if not torch.equal(pa[key], pb[key])]
    assert not unequal, f"parameters differ: {unequal}"


_references: dict[str, pgrl.Agent] = {}


def reference(algo: str) -> pgrl.Agent:
    """The run in one process with the vector environment the workers use (sync)."""
    if algo not in _references:
        _references[algo] = pgrl.train(
            algo, "CartPole-v1", STEPS[algo], seed=3, vectorization="sync", eval_episodes=0
        )
    return _references[algo]


class RaiseOnce(gym.Wrapper):  # type: ignore[type-arg]
    """Raises once, in whichever copy first reaches step ``at``, across processes (a marker
    file says it happened); ``always`` raises at that step every time."""

    def __init__(self, env: gym.Env, marker: str, at: int, always: bool = False) -> None:  # type: ignore[type-arg]
        super().__init__(env)
        self.marker, self.at, self.always, self.t = marker, at, always, 0

    def step(self, action: Any) -> Any:
        self.t += 1
        if self.t == self.at and (first_to_mark(self.marker) or self.always):
            raise RuntimeError("simulated crash in the environment")
        return self.env.step(action)


def first_to_mark(marker: str) -> bool:
    """True for the first caller, in any process, to create the file ``marker``."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return False
    return True


class KillWorker:
    """A test hook: ``ray.kill`` rollout worker ``index`` (Ray restarts it) at the first step
    count past ``at``."""

    def __init__(self, index: int, at: int) -> None:
        self.index, self.at, self.done = index, at, False

    def on_step(self, agent: Any, env_steps: int) -> None:
        if self.done or env_steps < self.at:
            return
        names = [a["name"] if isinstance(a, dict) else a for a in ray.util.list_named_actors()]
        (name,) = [
            n for n in names if n.startswith("pgrl-") and n.endswith(f"-worker-{self.index}")
        ]
        ray.kill(ray.get_actor(name), no_restart=False)
        self.done = True


def test_pgrl_does_not_import_ray_without_workers() -> None:
    code = (
        "import sys, pgrl; pgrl.train('a2c', 'CartPole-v1', 200, eval_episodes=0); "
        "assert 'ray' not in sys.modules, 'ray imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"workers": 0}, "workers must be an integer >= 1"),
        ({"workers": -1}, "workers must be an integer >= 1"),
        ({"workers": 9}, "workers=9 but the run has num_envs=8"),
        ({"workers": 2, "vectorization": "vector_entry_point"}, "cannot be split across"),
        ({"ray_address": "127.0.0.1:6379"}, "ray_address needs workers"),
        ({"workers": 2, "max_worker_failures": -1}, "max_worker_failures must be"),
        ({"workers": 2, "worker_timeout": 0}, "worker_timeout must be a number of seconds > 0"),
        ({"workers": 2, "worker_timeout": "1"}, "worker_timeout must be a number of seconds"),
    ],
)
def test_bad_worker_settings_stop_with_one_line(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        pgrl.train("ppo", "CartPole-v1", 256, eval_episodes=0, **kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("algo", "config", "message"),
    [
        ("ddpg", {"noise": "ou"}, "with workers use noise='gaussian'"),
        ("td3", {"noise": "ou"}, "with workers use noise='gaussian'"),
        ("sac", {"noise_correlation": 0.9}, "with workers use noise_correlation=0"),
    ],
)
def test_noise_processes_kept_in_the_learner_are_refused_with_workers(
    algo: str, config: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        pgrl.train(algo, "Pendulum-v1", 256, eval_episodes=0, workers=1, config=config)


def test_workers_without_ray_installed_stop_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pgrl.workers import WorkerError

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(WorkerError, match=r"rollout workers need Ray: pip install 'pgrl\[ray\]'"):
        pgrl.train("ppo", "CartPole-v1", 256, eval_episodes=0, workers=2)


def test_an_unreachable_ray_address_stops_with_one_line() -> None:
    from pgrl.workers import WorkerError

    with pytest.raises(
        WorkerError, match=r"cannot reach the Ray cluster at 127\.0\.0\.1:1"
    ) as info:
        pgrl.train("ppo", "CartPole-v1", 256, eval_episodes=0, workers=2, ray_address="127.0.0.1:1")
    assert "\n" not in str(info.value)
    assert "ray" not in sys.modules or not ray.is_initialized()


def test_an_environment_that_does_not_pickle_stops_with_one_line(ray_session: None) -> None:
    class Local(gym.Wrapper):  # type: ignore[type-arg]
        pass

    lock = threading.Lock()  # no pickle for a lock
    with pytest.raises(ConfigError, match="cannot be sent to Ray workers") as info:
        pgrl.train(
            "ppo",
            "CartPole-v1",
            256,
            eval_episodes=0,
            workers=2,
            wrappers=[lambda env: (lock, Local(env))[1]],
        )
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("algo", ["ppo", "a2c", "reinforce"])
def test_two_workers_equal_one_process_bit_for_bit(ray_session: None, algo: str) -> None:
    one = reference(algo)
    two = pgrl.train(algo, "CartPole-v1", one.env_steps, seed=3, workers=2, eval_episodes=0)
    assert_same_parameters(one, two)
    assert two.env_steps == one.env_steps
    # the same episodes, in the same order: the same metrics
    row_one, row_two = dict(one.history[-1]), dict(two.history[-1])
    assert row_two.pop("workers/restarts") == 0.0
    row_one.pop("steps_per_second"), row_two.pop("steps_per_second")
    assert row_one == row_two


def test_normalizers_update_in_the_learner_and_travel_with_the_weights(ray_session: None) -> None:
    config = {"normalize_obs": True, "normalize_reward": True}
    kwargs: dict[str, Any] = {"seed": 3, "config": config, "eval_episodes": 0}
    one = pgrl.train("ppo", "CartPole-v1", 512, vectorization="sync", **kwargs)
    two = pgrl.train("ppo", "CartPole-v1", 512, workers=2, **kwargs)
    assert any(key.startswith("obs_normalizer.") for key in parameters(two))
    assert_same_parameters(one, two)


def test_a_killed_worker_is_restarted_and_the_run_ends_as_undisturbed(ray_session: None) -> None:
    kill = KillWorker(index=1, at=256)
    agent = pgrl.train(
        "ppo", "CartPole-v1", PPO_STEPS, seed=3, workers=2, eval_episodes=0, callbacks=[kill]
    )
    assert kill.done
    assert_same_parameters(reference("ppo"), agent)
    assert agent.history[-1]["workers/restarts"] == 1.0


def test_an_environment_raising_once_is_recollected_and_the_run_ends_as_undisturbed(
    ray_session: None, tmp_path: Path
) -> None:
    marker = tmp_path / "raised"
    agent = pgrl.train(
        "ppo",
        "CartPole-v1",
        PPO_STEPS,
        seed=3,
        workers=2,
        eval_episodes=0,
        wrappers=[partial(RaiseOnce, marker=str(marker), at=70)],
    )
    assert marker.exists()  # it did raise
    assert_same_parameters(reference("ppo"), agent)
    assert agent.history[-1]["workers/restarts"] == 1.0


class HangOnce(gym.Wrapper):  # type: ignore[type-arg]
    """Hangs (sleeps ``seconds``) once, in whichever copy first reaches step ``at``, across
    processes: an environment that never answers."""

    def __init__(self, env: gym.Env, marker: str, at: int, seconds: float = 600.0) -> None:  # type: ignore[type-arg]
        super().__init__(env)
        self.marker, self.at, self.seconds, self.t = marker, at, seconds, 0

    def step(self, action: Any) -> Any:
        self.t += 1
        if self.t == self.at and first_to_mark(self.marker):
            time.sleep(self.seconds)
        return self.env.step(action)


def test_a_hung_environment_times_out_and_the_run_ends_as_undisturbed(
    ray_session: None, tmp_path: Path
) -> None:
    marker = tmp_path / "hung"
    start = time.monotonic()
    agent = pgrl.train(
        "ppo",
        "CartPole-v1",
        PPO_STEPS,
        seed=3,
        workers=2,
        eval_episodes=0,
        worker_timeout=10.0,
        wrappers=[partial(HangOnce, marker=str(marker), at=70)],
    )
    assert marker.exists()  # it did hang
    assert time.monotonic() - start < 300  # the 600 s sleep was cut short
    assert_same_parameters(reference("ppo"), agent)
    assert agent.history[-1]["workers/restarts"] == 1.0


class Unpicklable(gym.Wrapper):  # type: ignore[type-arg]
    """A copy that holds a lock: its state cannot be captured."""

    def __init__(self, env: gym.Env) -> None:  # type: ignore[type-arg]
        super().__init__(env)
        self.lock = threading.Lock()


def test_a_worker_whose_environment_cannot_be_captured_restarts_with_fresh_episodes(
    ray_session: None,
) -> None:
    kill = KillWorker(index=0, at=256)
    with pytest.warns(UserWarning, match="restarted worker starts fresh episodes"):
        agent = pgrl.train(
            "ppo",
            "CartPole-v1",
            512,
            seed=3,
            workers=2,
            eval_episodes=0,
            wrappers=[Unpicklable],
            callbacks=[kill],
        )
    assert agent.env_steps == 512
    assert agent.history[-1]["workers/restarts"] == 1.0


def test_a_worker_failing_too_often_stops_the_run_with_one_line_and_a_checkpoint(
    ray_session: None, tmp_path: Path
) -> None:
    from pgrl.workers import WorkerFailed

    run = tmp_path / "run"
    with pytest.raises(
        WorkerFailed, match="failed 2 times, more than max_worker_failures=1"
    ) as info:
        pgrl.train(
            "ppo",
            "CartPole-v1",
            PPO_STEPS,
            seed=3,
            workers=2,
            eval_episodes=0,
            run_dir=run,
            max_worker_failures=1,
            wrappers=[partial(RaiseOnce, marker=str(tmp_path / "m"), at=40, always=True)],
        )
    message = str(info.value)
    assert "\n" not in message
    assert "simulated crash in the environment" in message
    assert f"pgrl resume {run}" in message
    assert (run / "checkpoints" / "last.safetensors").exists()


def test_a_run_with_workers_resumes_exactly(ray_session: None, tmp_path: Path) -> None:
    every = 512
    whole = pgrl.train(
        "ppo",
        "CartPole-v1",
        PPO_STEPS,
        seed=3,
        vectorization="sync",
        checkpoint_every=every,
        eval_episodes=0,
    )

    class InterruptAtCheckpoint:  # Ctrl-C in the iteration that checkpoints anyway
        def on_step(self, agent: Any, env_steps: int) -> None:
            if env_steps >= every:
                os.kill(os.getpid(), signal.SIGINT)

    run = tmp_path / "run"
    with pytest.raises(TrainingInterrupted):
        pgrl.train(
            "ppo",
            "CartPole-v1",
            PPO_STEPS,
            seed=3,
            workers=2,
            checkpoint_every=every,
            eval_episodes=0,
            run_dir=run,
            callbacks=[InterruptAtCheckpoint()],
        )
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    resumed = pgrl.resume(run)  # with the run's 2 workers
    assert_same_parameters(whole, resumed)
    in_process = pgrl.resume(copy, workers=0)  # the same run, continued in this process
    assert_same_parameters(whole, in_process)


def test_off_policy_with_two_workers_collects_the_same_warmup_and_learns_alike(
    ray_session: None,
) -> None:
    # continuous actions carry the actor's last bits, which depend on the acting batch: the
    # random warm-up (learning_starts) is equal bit for bit, what follows equal in law
    config = {"num_envs": 2, "learning_starts": 100, "minibatch_size": 32}
    one = pgrl.train(
        "td3", "Pendulum-v1", 160, seed=1, config=config, vectorization="sync", eval_episodes=0
    )
    two = pgrl.train("td3", "Pendulum-v1", 160, seed=1, config=config, workers=2, eval_episodes=0)
    assert one.session is not None and two.session is not None
    a, b = one.session.buffer.state_dict(), two.session.buffer.state_dict()
    for key in ("obs", "actions", "rewards", "next_obs"):
        assert torch.equal(a[key][:100], b[key][:100]), key
        torch.testing.assert_close(a[key][:160], b[key][:160], rtol=1e-3, atol=1e-3)
    assert two.env_steps == 160
    for key, value in parameters(one).items():
        torch.testing.assert_close(parameters(two)[key], value, rtol=1e-3, atol=1e-3)


def test_agent_learn_continues_with_workers_as_in_one_process(ray_session: None) -> None:
    one = pgrl.train("ppo", "CartPole-v1", 256, seed=3, vectorization="sync", eval_episodes=0)
    two = pgrl.train("ppo", "CartPole-v1", 256, seed=3, workers=2, eval_episodes=0)
    one.learn(256)
    two.learn(256)
    assert two.env_steps == 512
    assert_same_parameters(one, two)


def test_cli_trains_and_resumes_with_workers(ray_session: None, tmp_path: Path) -> None:
    from pgrl.cli import main

    run = tmp_path / "run"
    args = ["train", "ppo", "--env", "CartPole-v1", "--steps", "512", "--seed", "3"]
    assert main([*args, "--workers", "2", "--run-dir", str(run), "--quiet"]) == 0
    assert json.loads((run / "config.json").read_text())["workers"] == 2
    assert main(["resume", str(run), "--steps", "768", "--workers", "1", "--quiet"]) == 0
    assert pgrl.load(run).env_steps == 768


def test_cli_refuses_zero_workers_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from pgrl.cli import main

    code = main(["train", "ppo", "--env", "CartPole-v1", "--workers", "0", "--no-save"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "workers must be an integer >= 1" in err and "\n" not in err


def test_a_worker_on_a_removed_node_is_restarted_elsewhere(ray_session: None) -> None:
    """Two nodes of one CPU each (one worker on each); the second node is removed after the
    first update and a new one joins: the run completes, equal to the undisturbed run."""
    from ray.cluster_utils import Cluster

    expected = reference("ppo")
    ray.shutdown()  # this test runs its own cluster
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "include_dashboard": False,
            "_system_config": {"health_check_period_ms": 500, "health_check_failure_threshold": 3},
        },
    )
    second = cluster.add_node(num_cpus=1)
    try:
        state = {"removed": False}

        class RemoveNode:
            def on_step(self, agent: Any, env_steps: int) -> None:
                if not state["removed"] and env_steps >= 256:
                    cluster.remove_node(second)
                    cluster.add_node(num_cpus=1)
                    state["removed"] = True

        agent = pgrl.train(
            "ppo",
            "CartPole-v1",
            PPO_STEPS,
            seed=3,
            workers=2,
            eval_episodes=0,
            ray_address=cluster.address,
            callbacks=[RemoveNode()],
        )
        assert state["removed"]
        assert agent.history[-1]["workers/restarts"] == 1.0
        assert_same_parameters(expected, agent)
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_an_environment_error_before_the_workers_start_is_the_usual_line() -> None:
    with pytest.raises(EnvError):
        pgrl.train("ppo", "NoSuchEnv-v0", 256, eval_episodes=0, workers=2)


def test_a_numpy_vectorized_run_is_not_resumed_on_workers(tmp_path: Path) -> None:
    # "auto" in one process is Gymnasium's CartPoleVectorEnv: one generator for every copy's
    # resets, which no split across workers reproduces
    run = tmp_path / "run"
    pgrl.train("ppo", "CartPole-v1", 512, run_dir=run, eval_episodes=0)
    with pytest.raises(ConfigError, match="resume a run collected that way without --workers"):
        pgrl.resume(run, steps=1024, workers=2)

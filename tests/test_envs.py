"""Bring your own environment: every form of naming one, resolved once at the boundary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import custom_envs
import gymnasium as gym
import numpy as np
import pytest
import torch
from custom_envs import DoubleReward, LineEnv, make_line_env
from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import pgrl
from pgrl.envs import env_from_record, resolve_env
from pgrl.errors import ConfigError, EnvError, PgrlError

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
FAST = {"num_envs": 4, "rollout_steps": 8}


def _train(env, steps: int = 400, **kw):  # type: ignore[no-untyped-def]
    return pgrl.train("a2c", env, steps=steps, seed=0, config=FAST, eval_episodes=2, **kw)


def _params(agent) -> list[torch.Tensor]:  # type: ignore[no-untyped-def]
    return [p.detach().clone() for m in agent.algorithm.modules().values() for p in m.parameters()]


def _cli(*args: str, pythonpath: str | None = str(TESTS), cwd: Path = ROOT):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = "1"
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return subprocess.run(
        [sys.executable, "-m", "pgrl.cli", *args], cwd=cwd, env=env, capture_output=True, text=True
    )


# ---- resolution: what each form becomes -------------------------------------------------


def test_a_registered_id_is_recorded_with_its_kwargs_and_wrappers() -> None:
    source = resolve_env("Pendulum-v1", {"g": 3.0}, [DoubleReward])
    assert source.name == "Pendulum-v1" and source.preset_id == "Pendulum-v1"
    assert source.record == {
        "id": "Pendulum-v1",
        "kwargs": {"g": 3.0},
        "wrappers": ["custom_envs:DoubleReward"],
    }
    env = source.make()
    assert isinstance(env, DoubleReward) and env.unwrapped.g == 3.0  # type: ignore[attr-defined]
    env.close()


def test_module_colon_id_imports_the_module_that_registers_it() -> None:
    source = resolve_env("custom_envs:CustomLine-v0", {"goal": 3})
    assert source.name == "custom_envs:CustomLine-v0"
    assert source.preset_id == "CustomLine-v0"
    envs = source.make_vec(2)
    assert envs.unwrapped.get_attr("goal") == (3, 3)  # type: ignore[attr-defined]
    envs.close()


def test_an_unknown_module_or_id_is_one_line() -> None:
    with pytest.raises(EnvError, match="cannot import module 'no_such_module'"):
        resolve_env("no_such_module:Env-v0")
    with pytest.raises(EnvError, match="Did you mean CartPole-v1"):
        resolve_env("CartPole-v2x")
    with pytest.raises(EnvError, match="cannot use a int as an environment"):
        resolve_env(3)


def test_a_class_and_a_factory_are_recorded_by_import_path() -> None:
    for env, path in (
        (LineEnv, "custom_envs:LineEnv"),
        (make_line_env, "custom_envs:make_line_env"),
    ):
        source = resolve_env(env, {"goal": 2})
        assert source.record == {"entry_point": path, "kwargs": {"goal": 2}, "wrappers": []}
        rebuilt = env_from_record(source.record, source.name).make()
        assert isinstance(rebuilt.unwrapped, LineEnv) and rebuilt.unwrapped.goal == 2


def test_a_lambda_or_a_bare_instance_cannot_be_rebuilt_and_says_why() -> None:
    lam = resolve_env(lambda: LineEnv())
    assert lam.record is None and "lambda" in lam.why_not
    with pytest.raises(EnvError, match=r"cannot be rebuilt here.*lambda.*Pass the environment"):
        env_from_record(lam.record, lam.name, lam.why_not)
    inst = resolve_env(LineEnv(goal=4))
    assert inst.record is None and "LineEnv instance" in inst.why_not
    copy = inst.make()
    assert copy.unwrapped.goal == 4  # a deep copy; the instance itself is never stepped


def test_an_instance_made_by_gym_make_carries_its_recipe() -> None:
    made = gym.wrappers.ClipReward(gym.make("Pendulum-v1", g=2.0), -1.0, 1.0)
    source = resolve_env(made)
    assert source.record is not None and source.record["spec"]["kwargs"] == {"g": 2.0}
    rebuilt = env_from_record(source.record, source.name).make()
    assert isinstance(rebuilt, gym.wrappers.ClipReward) and rebuilt.unwrapped.g == 2.0


# ---- training through the API with every form --------------------------------------------


@pytest.mark.parametrize(
    "env",
    [
        "custom_envs:CustomLine-v0",
        LineEnv,
        make_line_env,
        lambda: LineEnv(),
        LineEnv(),
        gym.make("CustomLine-v0"),
    ],
    ids=["module-id", "class", "factory", "lambda", "instance", "gym-make-instance"],
)
def test_every_env_form_trains_and_sends_actions_in_the_envs_own_range(env) -> None:  # type: ignore[no-untyped-def]
    # LineEnv raises on an action outside Discrete(3, start=-1): training proves -1..1 arrive
    agent = _train(env)
    assert agent.env_steps >= 400
    assert agent.evaluation is not None and len(agent.evaluation.returns) == 2
    action = agent.act(np.zeros(2, np.float32))
    assert action in (-1, 0, 1)


def test_same_seed_same_result_whatever_the_form() -> None:
    reference = _params(_train("custom_envs:CustomLine-v0"))
    for env in (LineEnv, make_line_env, LineEnv()):
        for a, b in zip(reference, _params(_train(env)), strict=True):
            assert torch.equal(a, b)


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_a_ready_vector_env_in_either_autoreset_mode_trains_and_stays_open(mode) -> None:  # type: ignore[no-untyped-def]
    envs = SyncVectorEnv([make_line_env] * 4, autoreset_mode=mode)
    agent = pgrl.train("a2c", envs, steps=400, config={"rollout_steps": 8}, eval_episodes=2)
    assert agent.config.num_envs == 4  # taken from the vector env
    assert agent.env_steps >= 400 and agent.evaluation is not None
    envs.reset(seed=0)  # the user's environment is still theirs: not closed
    envs.close()


def test_a_ready_vector_env_with_another_num_envs_in_the_config_is_refused() -> None:
    envs = SyncVectorEnv([make_line_env] * 2)
    with pytest.raises(ConfigError, match="num_envs=4 but the vector environment passed has 2"):
        pgrl.train("a2c", envs, steps=100, config={"num_envs": 4})


def test_gymnasiums_own_vector_env_trains_and_is_evaluated_on_new_copies() -> None:
    envs = CartPoleVectorEnv(num_envs=4)
    agent = pgrl.train("a2c", envs, steps=400, config={"rollout_steps": 8}, eval_episodes=3)
    assert agent.evaluation is not None and len(agent.evaluation.returns) == 3
    envs.close()


def test_env_kwargs_and_wrappers_reach_every_copy_and_are_recorded(tmp_path: Path) -> None:
    agent = pgrl.train(
        "a2c",
        "Pendulum-v1",
        steps=400,
        config=FAST,
        env_kwargs={"g": 0.0},
        wrappers=[DoubleReward],
        run_dir=tmp_path / "run",
        eval_episodes=1,
    )
    record = json.loads((tmp_path / "run" / "config.json").read_text())["env_source"]
    assert record == {
        "id": "Pendulum-v1",
        "kwargs": {"g": 0.0},
        "wrappers": ["custom_envs:DoubleReward"],
    }
    copy = agent.environment().make()
    assert isinstance(copy, DoubleReward) and copy.unwrapped.g == 0.0  # type: ignore[attr-defined]
    # the wrapper doubles every reward: Pendulum's are in [-16.3, 0], doubled down to -32.6
    assert agent.evaluation is not None and agent.evaluation.mean < 0


def test_a_run_on_a_lambda_resumes_only_with_the_env_given_again(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _train(lambda: LineEnv(goal=3), run_dir=run)
    with pytest.raises(EnvError, match=r"cannot be rebuilt here.*lambda.*env="):
        pgrl.resume(run, steps=800)
    agent = pgrl.resume(run, steps=800, env=lambda: LineEnv(goal=3))
    assert agent.env_steps >= 800


# ---- the Python API people know ------------------------------------------------------------


def test_train_writes_nothing_into_the_working_directory_unless_asked(
    tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    _train("CartPole-v1")
    assert list(tmp_path.iterdir()) == []
    _train("CartPole-v1", save=True)
    assert [p.name for p in tmp_path.iterdir()] == ["runs"]


def test_train_uses_one_torch_thread_like_the_cli_and_restores_the_callers() -> None:
    seen: list[int] = []

    class Threads:
        def on_step(self, agent, env_steps):  # type: ignore[no-untyped-def]
            seen.append(torch.get_num_threads())

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        _train("CartPole-v1", steps=64, callbacks=[Threads()])
        assert set(seen) == {1} and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_learn_continues_exactly_as_resume_from_the_final_checkpoint(tmp_path: Path) -> None:
    config = {**FAST, "lr_schedule": "linear"}
    agent = pgrl.train("a2c", "CartPole-v1", steps=640, config=config, run_dir=tmp_path / "a")
    first = agent.env_steps
    agent.learn(640)
    assert agent.env_steps >= first + 640
    pgrl.train("a2c", "CartPole-v1", steps=640, config=config, run_dir=tmp_path / "b")
    resumed = pgrl.resume(tmp_path / "b", steps=first + 640)
    for a, b in zip(_params(agent), _params(resumed), strict=True):
        assert torch.equal(a, b)
    # the schedule continued over the new total: it ends near 0 again, not at a fresh start
    optimizer = next(iter(agent.algorithm.optimizers().values()))
    lr = optimizer.param_groups[0]["lr"]
    assert lr < 7e-4 * 0.05


def test_learn_without_a_run_dir_and_after_loading(tmp_path: Path) -> None:
    agent = _train("CartPole-v1", steps=320)
    agent.learn(320)
    assert agent.env_steps >= 640
    agent.save(tmp_path / "model.safetensors")
    loaded = pgrl.load(tmp_path / "model.safetensors")
    with pytest.raises(PgrlError, match=r"cannot continue training in memory.*pgrl.resume"):
        loaded.learn(100)


def test_save_and_load_a_file_or_directory_and_act_the_same(tmp_path: Path) -> None:
    agent = _train(LineEnv, steps=400)
    for target in (tmp_path / "m.safetensors", tmp_path / "dir"):
        agent.save(target)
        loaded = pgrl.load(target)
        obs = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32)
        assert np.array_equal(loaded.act(obs), agent.act(obs))
        assert loaded.env_id == "custom_envs:LineEnv"


def test_evaluate_takes_any_env_form() -> None:
    agent = _train(LineEnv, steps=400)
    results = [
        pgrl.evaluate(agent, env, episodes=3).returns
        for env in ("custom_envs:CustomLine-v0", LineEnv, make_line_env, LineEnv(), None)
    ]
    assert all(r == results[0] for r in results)
    with pytest.raises(PgrlError, match="episodes must be an integer >= 1"):
        pgrl.evaluate(agent, episodes=0)


def test_callbacks_evaluate_stop_early_log_and_leave_the_run_unchanged(tmp_path: Path) -> None:
    plain = _params(_train("CartPole-v1", steps=1_280))
    evaluator = pgrl.EvalCallback(every=320, episodes=2, best_model=tmp_path / "best")

    class Metric:
        def on_log(self, agent, env_steps, row):  # type: ignore[no-untyped-def]
            return {"my_metric": env_steps / 2}

    watched = _train(
        "CartPole-v1", steps=1_280, callbacks=[evaluator, Metric()], run_dir=tmp_path / "run"
    )
    for a, b in zip(plain, _params(watched), strict=True):
        assert torch.equal(a, b)  # evaluating and logging drew nothing from the run
    # every 320 steps: at the first iteration that reaches each multiple
    steps = [s for s, _ in evaluator.results]
    assert len(steps) == 4 and all(320 * k <= s < 320 * k + 40 for k, s in enumerate(steps, 1))
    assert (tmp_path / "best" / "model.safetensors").exists()
    assert all(
        row["my_metric"] == row["env_steps"] / 2 for row in watched.history if "my_metric" in row
    )
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0]
    assert "my_metric" in header and "callback_eval_return_mean" in header
    stopper = pgrl.StopOnReturn(-1e9)  # met at the first row
    stopped = _train("CartPole-v1", steps=10_000, log_interval=64, callbacks=[stopper])
    assert stopper.stopped_at is not None and stopped.env_steps < 10_000
    with pytest.raises(ConfigError, match="is not a callback"):
        _train("CartPole-v1", callbacks=[pgrl.EvalCallback])


def test_device_is_checked_and_cpu_is_the_default() -> None:
    with pytest.raises(ConfigError, match="unknown device 'gpu0'"):
        _train("CartPole-v1", device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            _train("CartPole-v1", device="cuda")
    reference = _params(_train("CartPole-v1"))
    for a, b in zip(
        reference,
        _params(_train("CartPole-v1", device="auto" if not torch.cuda.is_available() else "cpu")),
        strict=True,
    ):
        assert torch.equal(a, b)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (none on this machine)")
@pytest.mark.parametrize("algo", ["a2c", "ppo", "sac"])
def test_training_on_cuda_runs_and_loads_on_the_cpu(tmp_path: Path, algo: str) -> None:
    env = "CartPole-v1" if algo != "sac" else "Pendulum-v1"
    config = {"learning_starts": 100, "minibatch_size": 32} if algo == "sac" else {}
    agent = pgrl.train(algo, env, steps=500, config=config, device="cuda", run_dir=tmp_path / "r")
    assert next(iter(agent.algorithm.modules().values())).parameters().__next__().is_cuda
    loaded = pgrl.load(tmp_path / "r")  # map to the CPU
    obs = np.zeros((2, *agent.spaces.observation_space.shape), np.float32)  # type: ignore[union-attr]
    assert np.allclose(loaded.act(obs), agent.act(obs), atol=1e-5)


# ---- the CLI ---------------------------------------------------------------------------------


def test_cli_trains_evaluates_and_resumes_a_module_env_with_kwargs(tmp_path: Path) -> None:
    run = tmp_path / "run"
    out = _cli(
        "train", "a2c", "--env", "custom_envs:CustomLine-v0", "--env-kwargs", "goal=3",
        "--steps", "400", "--set", "rollout_steps=8", "--run-dir", str(run), "--quiet",
        "--eval-episodes", "2",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    record = json.loads((run / "config.json").read_text())["env_source"]
    assert record == {"id": "custom_envs:CustomLine-v0", "kwargs": {"goal": 3}, "wrappers": []}
    out = _cli("eval", str(run), "--episodes", "2", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1])["env"] == "custom_envs:CustomLine-v0"
    out = _cli("resume", str(run), "--steps", "800", "--quiet")
    assert out.returncode == 0, out.stderr
    # without the module on the path: one line that names it, exit status 2
    out = _cli("eval", str(run), pythonpath=None)
    assert out.returncode == 2 and "custom_envs" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_cli_device_and_bad_env_kwargs_are_one_line() -> None:
    out = _cli("train", "a2c", "--env-kwargs", "no-equals", "--steps", "10", "--no-save")
    assert out.returncode == 2 and "--env-kwargs takes NAME=VALUE" in out.stderr
    if not torch.cuda.is_available():
        out = _cli("train", "a2c", "--device", "cuda", "--steps", "10", "--no-save")
        assert out.returncode == 2 and "CUDA is not available" in out.stderr


# ---- a model loads where its environment cannot be built ----------------------------------


def test_a_model_loads_and_acts_where_the_envs_module_cannot_be_imported(tmp_path: Path) -> None:
    module = tmp_path / "secret_envs.py"
    module.write_text(
        textwrap.dedent(
            """
            import gymnasium as gym, numpy as np
            class Secret(gym.Env):
                def __init__(self):
                    self.observation_space = gym.spaces.Box(-1, 1, (3,), np.float32)
                    self.action_space = gym.spaces.Discrete(2)
                def reset(self, *, seed=None, options=None):
                    super().reset(seed=seed)
                    return np.zeros(3, np.float32), {}
                def step(self, action):
                    return np.zeros(3, np.float32), 1.0, False, False, {}
            """
        )
    )
    run = tmp_path / "run"
    train = (
        "import pgrl, secret_envs; pgrl.train('ppo', secret_envs.Secret, steps=256, "
        f"config={{'num_envs': 2, 'rollout_steps': 64, 'minibatch_size': 64}}, run_dir={str(run)!r}, eval_episodes=0)"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", train], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    act = (
        "import importlib.util, numpy as np, pgrl; "
        "assert importlib.util.find_spec('secret_envs') is None; "
        f"agent = pgrl.load({str(run)!r}); "
        "print(agent.env_id, agent.act(np.zeros((4, 3), np.float32)).tolist())"
    )
    env.pop("PYTHONPATH")
    done = subprocess.run(
        [sys.executable, "-c", act], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    name, actions = done.stdout.split(" ", 1)
    assert name == "secret_envs:Secret" and len(json.loads(actions)) == 4


def test_custom_envs_module_registers_its_id_on_import() -> None:
    assert "CustomLine-v0" in gym.registry and custom_envs.LineEnv is LineEnv


# ---- an environment that misbehaves: one line naming it and the step ----------------------


class _Faulty(LineEnv):
    def __init__(self, fault: str = "raise", at: int = 3) -> None:
        super().__init__()
        self.fault, self.at = fault, at

    def step(self, action):  # type: ignore[no-untyped-def]
        obs, reward, terminated, truncated, info = super().step(action)
        if self.t >= self.at:
            if self.fault == "raise":
                raise RuntimeError("the simulator diverged")
            if self.fault == "shape":
                obs = np.zeros(5, np.float32)
            if self.fault == "none":
                obs = None
        return obs, reward, terminated, truncated, info


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("raise", r"raised RuntimeError in step\(\) at vector step 2 .*: the simulator diverged"),
        ("shape", r"raised ValueError in step\(\) at vector step 2 .*wrong shape"),
        ("none", r"raised ValueError in step\(\) at vector step 2"),
    ],
)
def test_an_environment_fault_is_one_line_naming_the_env_and_step(fault, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EnvError, match=r"^environment a lambda \(test_envs.py:\d+\) " + message):
        pgrl.train("a2c", lambda: _Faulty(fault), steps=400, config=FAST, vectorization="sync")


class _BadObservations(gym.vector.VectorObservationWrapper):
    """A vector env whose observations stop fitting its space after two steps."""

    def __init__(self, envs, bad) -> None:  # type: ignore[no-untyped-def]
        super().__init__(envs)
        self.bad, self.calls = bad, 0

    def observations(self, observations):  # type: ignore[no-untyped-def]
        self.calls += 1
        return self.bad(observations) if self.calls > 3 else observations


@pytest.mark.parametrize(
    "bad",
    [lambda o: o[:, :1], lambda o: None, lambda o: {"x": o}],
    ids=["shape", "none", "dict"],
)
def test_observations_that_do_not_fit_the_space_are_one_line(bad) -> None:  # type: ignore[no-untyped-def]
    envs = _BadObservations(SyncVectorEnv([make_line_env] * 2), bad)
    with pytest.raises(
        EnvError, match=r"returned an observation that does not fit its observation space .*step 3"
    ):
        pgrl.train("a2c", envs, steps=400, config={"rollout_steps": 8})


def test_a_vector_env_without_a_recipe_says_it_cannot_be_copied_for_evaluation() -> None:
    envs = _BadObservations(SyncVectorEnv([make_line_env] * 2), lambda o: o)
    with pytest.raises(EnvError, match="cannot build new copies of this _BadObservations"):
        pgrl.train("a2c", envs, steps=100, config={"rollout_steps": 8}, eval_episodes=2)
    agent = pgrl.train("a2c", envs, steps=100, config={"rollout_steps": 8}, eval_episodes=0)
    assert pgrl.evaluate(agent, LineEnv, episodes=2).returns


def test_a_loaded_run_keeps_its_final_evaluation_and_counts_updates(tmp_path: Path) -> None:
    import csv

    agent = _train("CartPole-v1", steps=640, run_dir=tmp_path / "r")
    loaded = pgrl.load(tmp_path / "r")
    assert loaded.evaluation == agent.evaluation and loaded.evaluation is not None
    rows = list(csv.DictReader((tmp_path / "r" / "metrics.csv").open()))
    updates = [float(r["n_updates"]) for r in rows if r["n_updates"]]
    # one update per rollout of 4 x 8 steps (a few more than 640 / 32: reset steps are no steps)
    assert updates == sorted(updates) and updates[-1] == agent.session.state.updates >= 640 // 32
    agent.save(tmp_path / "elsewhere.safetensors")  # no summary beside it: no evaluation
    assert pgrl.load(tmp_path / "elsewhere.safetensors").evaluation is None


def test_an_instance_passed_with_wrappers_is_rebuilt_with_them() -> None:
    source = resolve_env(gym.make("Pendulum-v1", g=2.0), wrappers=[DoubleReward])
    assert source.record is not None and source.record["wrappers"] == ["custom_envs:DoubleReward"]
    rebuilt = env_from_record(source.record, source.name).make()
    assert isinstance(rebuilt, DoubleReward) and rebuilt.unwrapped.g == 2.0  # type: ignore[attr-defined]

"""Training you can live with: run directories, exact resume, Ctrl-C, guards, loading."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import pgrl
from pgrl.errors import CheckpointError, NonFiniteError

ROOT = Path(__file__).resolve().parents[1]
TINY_DDPG = {"learning_starts": 200, "minibatch_size": 32, "hidden_sizes": (16, 16)}


def _python(code: str, **kw) -> subprocess.CompletedProcess:  # type: ignore[type-arg, no-untyped-def]
    # tests/ on the path: custom_envs (a user's module of environments) imports there too
    path = os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, **kw)


def _metric_rows(run_dir: Path) -> list[list[str]]:
    """metrics.csv without the wall-clock columns, which no two runs share."""
    rows = list(csv.reader((run_dir / "metrics.csv").open()))
    keep = [
        i for i, c in enumerate(rows[0]) if c not in ("time_s", "steps_per_second", "train_seconds")
    ]
    return [[row[i] for i in keep] for row in rows]


def test_run_directory_holds_config_metrics_tensorboard_model_and_curve(tmp_path: Path) -> None:
    run = tmp_path / "run"
    agent = pgrl.train("a2c", "CartPole-v1", steps=3_000, seed=0, run_dir=run, eval_episodes=3)
    config = json.loads((run / "config.json").read_text())
    assert config["algo"] == "a2c" and config["config"]["num_envs"] == 8 and config["seed"] == 0
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert len(rows) >= 50 and {
        "env_steps",
        "episode_return_mean",
        "value_loss",
        "steps_per_second",
    } <= set(rows[0])
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tb").iterdir())
    assert (run / "learning-curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["eval_return_mean"] == agent.evaluation.mean  # type: ignore[union-attr]
    assert (run / "checkpoints" / "last.safetensors").exists()


def test_loaded_agent_acts_like_the_trained_one(tmp_path: Path) -> None:
    agent = pgrl.train(
        "a2c", "CartPole-v1", steps=2_000, seed=1, run_dir=tmp_path / "r", eval_episodes=2
    )
    loaded = pgrl.load(tmp_path / "r")
    obs = torch.randn(16, 4).numpy()
    assert (loaded.act(obs) == agent.act(obs)).all()
    assert loaded.evaluate(2, seed=7).returns == agent.evaluate(2, seed=7).returns


def test_loading_on_an_environment_with_other_spaces_shows_both(tmp_path: Path) -> None:
    pgrl.train("a2c", "CartPole-v1", steps=500, seed=0, run_dir=tmp_path / "r", eval_episodes=0)
    with pytest.raises(
        CheckpointError,
        match=r"Box\(.*\(4,\).*Discrete\(2\).*Acrobot-v1 has .*\(6,\).*Discrete\(3\)",
    ):
        pgrl.load(tmp_path / "r", env="Acrobot-v1")


CRASH_AFTER_FIRST_CHECKPOINT = """
import os, torch, pgrl
torch.set_num_threads(1)
import pgrl.loop
save = pgrl.loop.save_state
def save_then_die(*args, **kwargs):
    save(*args, **kwargs)
    os.kill(os.getpid(), 9)  # SIGKILL right after the checkpoint at step k is on disk
pgrl.loop.save_state = save_then_die
pgrl.train({algo!r}, {env!r}, steps={steps}, seed=3, run_dir={run!r}, checkpoint_every={every},
           config={config!r}, eval_episodes=2)
"""


@pytest.mark.parametrize(
    ("algo", "env", "steps", "every", "config"),
    [
        ("a2c", "CartPole-v1", 6_000, 2_000, {}),  # on-policy
        (
            "ddpg",
            "Pendulum-v1",
            1_200,
            400,
            {**TINY_DDPG, "noise": "ou"},
        ),  # off-policy: buffer, noise
        (
            "ppo",
            "CartPole-v1",
            2_048,
            512,
            {"num_envs": 4, "rollout_steps": 32, "minibatch_size": 64, "update_epochs": 2}
            | {"normalize_obs": True, "normalize_reward": True},
        ),  # epochs of minibatches, running normalizers in the checkpoint
        ("td3", "Pendulum-v1", 1_200, 400, {**TINY_DDPG, "policy_delay": 3, "noise": "ou"}),
        # learned temperature, correlated acting noise carried across the checkpoint
        ("sac", "Pendulum-v1", 1_200, 400, {**TINY_DDPG, "noise_correlation": 0.9}),
        # a user's environment named "module:EnvId", with Discrete(3, start=-1) actions
        ("a2c", "custom_envs:CustomLine-v0", 3_000, 1_000, {"num_envs": 4}),
    ],
    ids=["a2c", "ddpg", "ppo", "td3", "sac", "custom-module-env"],
)
def test_resumed_run_equals_uninterrupted_run_bit_for_bit(
    tmp_path, algo, env, steps, every, config
) -> None:  # type: ignore[no-untyped-def]
    whole = pgrl.train(
        algo,
        env,
        steps=steps,
        seed=3,
        run_dir=tmp_path / "whole",
        checkpoint_every=every,
        config=config,
        eval_episodes=2,
    )
    crashed = tmp_path / "crashed"
    code = CRASH_AFTER_FIRST_CHECKPOINT.format(
        algo=algo, env=env, steps=steps, run=str(crashed), every=every, config=config
    )
    assert _python(code).returncode == -signal.SIGKILL
    saved = json.loads(
        json.dumps(
            pgrl.checkpoint.load_checkpoint(crashed / "checkpoints/last.safetensors")[1][
                "env_steps"
            ]
        )
    )
    assert every <= saved < 2 * every  # it died at the first checkpoint
    resumed = _python(
        f"import torch, pgrl; torch.set_num_threads(1); pgrl.resume({str(crashed)!r})"
    )
    assert resumed.returncode == 0
    again = pgrl.load(crashed)
    for name, module in whole.algorithm.modules().items():
        theirs = again.algorithm.modules()[name].state_dict()
        for key, value in module.state_dict().items():
            assert torch.equal(value, theirs[key]), f"{name}.{key} differs"
    assert _metric_rows(crashed) == _metric_rows(tmp_path / "whole")
    summary = json.loads((crashed / "summary.json").read_text())
    assert summary["eval_return_mean"] == whole.evaluation.mean  # type: ignore[union-attr]


def test_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pgrl.cli",
            "train",
            "a2c",
            "--steps",
            "5000000",
            "--run-dir",
            str(run),
            "--quiet",
            "--checkpoint-every",
            "0",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while (
        not (run / "metrics.csv").exists()
        or len((run / "metrics.csv").read_text().splitlines()) < 3
    ):
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert f"pgrl resume {run}" in err
    _, meta = pgrl.checkpoint.load_checkpoint(run / "checkpoints" / "last.safetensors")
    assert meta["env_steps"] > 0
    resumed = pgrl.resume(run, steps=meta["env_steps"] + 400)
    assert resumed.env_steps >= meta["env_steps"] + 400


class _Boom(Exception):
    pass


def test_non_finite_loss_stops_with_the_quantity_and_step_and_keeps_the_checkpoint(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from pgrl.algos.a2c import A2C

    update = A2C.update
    calls = {"n": 0}

    def poisoned(self, rollout):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        metrics = update(self, rollout)
        if calls["n"] > 60:
            metrics["value_loss"] = torch.tensor(float("nan"))
        return metrics

    monkeypatch.setattr(A2C, "update", poisoned)
    with pytest.raises(
        NonFiniteError,
        match=r"non-finite value_loss \(nan\) at environment step \d+.*last good checkpoint",
    ):
        pgrl.train(
            "a2c",
            "CartPole-v1",
            steps=20_000,
            seed=0,
            run_dir=tmp_path / "r",
            checkpoint_every=2_000,
            log_interval=200,
        )
    _, meta = pgrl.checkpoint.load_checkpoint(tmp_path / "r" / "checkpoints" / "last.safetensors")
    assert meta["env_steps"] == 2_000 or 2_000 <= meta["env_steps"] < 2_040


def test_disk_full_while_checkpointing_fails_loudly_and_keeps_the_previous(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import errno

    import pgrl.checkpoint as ckpt

    real_write = os.write
    state = {"saves": 0}
    real_save = ckpt.save_checkpoint

    def counting_save(*args, **kwargs):  # type: ignore[no-untyped-def]
        state["saves"] += 1
        if state["saves"] == 2:

            def full(fd, data):  # type: ignore[no-untyped-def]
                raise OSError(errno.ENOSPC, "No space left on device")

            monkeypatch.setattr(os, "write", full)
        try:
            return real_save(*args, **kwargs)
        finally:
            monkeypatch.setattr(os, "write", real_write)

    monkeypatch.setattr(ckpt, "save_checkpoint", counting_save)
    with pytest.raises(
        CheckpointError, match="No space left on device; the previous checkpoint is kept"
    ):
        pgrl.train(
            "a2c",
            "CartPole-v1",
            steps=6_000,
            seed=0,
            run_dir=tmp_path / "r",
            checkpoint_every=2_000,
        )
    _, meta = ckpt.load_checkpoint(tmp_path / "r" / "checkpoints" / "last.safetensors")
    assert 2_000 <= meta["env_steps"] < 4_000


def test_numpy_blas_uses_as_many_threads_as_torch_while_training(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import threadpoolctl

    from pgrl.algos.a2c import A2C

    seen: list[int] = []
    update = A2C.update

    def recording_update(self, rollout):  # type: ignore[no-untyped-def]
        seen.extend(
            pool["num_threads"]
            for pool in threadpoolctl.threadpool_info()
            if pool["user_api"] == "blas"
        )
        return update(self, rollout)

    monkeypatch.setattr(A2C, "update", recording_update)
    threads = torch.get_num_threads()
    blas = {p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"}
    torch.set_num_threads(1)  # unlike NumPy's BLAS, which starts one thread per core
    try:
        pgrl.train("a2c", "CartPole-v1", steps=200, seed=0, save=False, eval_episodes=0)
    finally:
        torch.set_num_threads(threads)
    assert seen and set(seen) == {1}
    after = {p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"}
    assert after == blas  # restored after training


def test_a_run_killed_before_its_first_checkpoint_is_no_dead_end(tmp_path: Path) -> None:
    run = tmp_path / "r"
    pgrl.train("a2c", "CartPole-v1", steps=200, run_dir=run, eval_episodes=0)
    # as a SIGKILL before the first save: config.json and metrics, no checkpoint, no model
    (run / "checkpoints" / "last.safetensors").unlink()
    (run / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"stopped before its first checkpoint.*--overwrite"):
        pgrl.resume(run)
    with pytest.raises(pgrl.errors.ConfigError, match=r"before its first checkpoint.*overwrite"):
        pgrl.train("a2c", "CartPole-v1", steps=200, run_dir=run, eval_episodes=0)
    agent = pgrl.train(
        "a2c", "CartPole-v1", steps=200, run_dir=run, eval_episodes=0, overwrite=True
    )
    assert agent.env_steps >= 200


def test_a_full_disk_while_logging_names_the_last_good_checkpoint(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import pgrl.loop
    from pgrl.errors import PgrlError

    log = pgrl.loop.RunLogger.log
    calls = {"n": 0}

    def full_after_a_while(self, env_steps, metrics):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] > 20:
            raise PgrlError("could not write metrics.csv: No space left on device")
        return log(self, env_steps, metrics)

    monkeypatch.setattr(pgrl.loop.RunLogger, "log", full_after_a_while)
    run = tmp_path / "r"
    with pytest.raises(PgrlError, match=r"No space left on device\. The last good checkpoint is "):
        pgrl.train("a2c", "CartPole-v1", steps=4_000, run_dir=run, checkpoint_every=400)
    assert pgrl.checkpoint.load_checkpoint(run / "checkpoints" / "last.safetensors")[1]["env_steps"]

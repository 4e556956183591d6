"""SIGTERM and SIGHUP (a scheduler, a closed terminal) stop training like Ctrl-C: the iteration
in progress finishes, a checkpoint is saved, the exit status is 128 + the signal number."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pgrl
from pgrl.signals import Interrupt, TrainingInterrupted

ROOT = Path(__file__).resolve().parents[1]
STOP = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "pgrl.cli", *args]


@pytest.mark.parametrize("sig", STOP, ids=[s.name for s in STOP])
def test_stop_signal_saves_a_checkpoint_and_says_how_to_resume(
    tmp_path: Path, sig: signal.Signals
) -> None:
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    train = ["train", "a2c", "--env", "CartPole-v1", "--steps", "5000000", "--seed", "0"]
    proc = subprocess.Popen(
        _cli(*train, "--run-dir", str(run), "--quiet", "--checkpoint-every", "0"),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 60
        metrics = run / "metrics.csv"
        while not metrics.exists() or len(metrics.read_text().splitlines()) < 2:
            assert time.time() < deadline and proc.poll() is None, proc.stderr
            time.sleep(0.1)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + sig, (out, err)
    lines = [line for line in (out + err).splitlines() if f"pgrl resume {run}" in line]
    assert len(lines) == 1 and f"stopped by {sig.name}" in lines[0], (out, err)
    _, meta = pgrl.checkpoint.load_checkpoint(run / "checkpoints" / "last.safetensors")
    assert meta["env_steps"] > 0
    steps = meta["env_steps"] + 400
    resumed = subprocess.run(
        _cli("resume", str(run), "--steps", str(steps), "--quiet"),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    _, meta = pgrl.checkpoint.load_checkpoint(run / "checkpoints" / "last.safetensors")
    assert meta["env_steps"] >= steps


def test_a_second_sigterm_while_saving_is_ignored_and_the_checkpoint_is_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pgrl.loop
    from pgrl.algos.a2c import A2C

    update = A2C.update
    calls = {"n": 0}

    def update_then_term(self, rollout):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 20:
            os.kill(os.getpid(), signal.SIGTERM)
        return update(self, rollout)

    save = pgrl.loop.save_state
    saves = {"n": 0}

    def term_while_saving(*args, **kwargs):  # type: ignore[no-untyped-def]
        saves["n"] += 1
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, inside the save
        save(*args, **kwargs)

    monkeypatch.setattr(A2C, "update", update_then_term)
    monkeypatch.setattr(pgrl.loop, "save_state", term_while_saving)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingInterrupted, match="stopped by SIGTERM") as caught:
        pgrl.train("a2c", "CartPole-v1", steps=100_000, seed=0, run_dir=tmp_path / "r")
    assert caught.value.exit_code == 128 + signal.SIGTERM
    assert saves["n"] == 1
    assert signal.getsignal(signal.SIGTERM) == before  # the previous handler is back
    _, meta = pgrl.checkpoint.load_checkpoint(tmp_path / "r" / "checkpoints" / "last.safetensors")
    assert meta["env_steps"] == caught.value.agent.env_steps > 0
    assert f"environment step {meta['env_steps']:,};" in str(caught.value)


def test_interrupt_catches_the_stop_signals_and_restores_the_handlers() -> None:
    before = {s: signal.getsignal(s) for s in [signal.SIGINT, *STOP]}
    with Interrupt() as interrupt:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)  # a second stop request is only noted
        assert interrupt.requested and interrupt.signum == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C still stops at once
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
    assert {s: signal.getsignal(s) for s in before} == before

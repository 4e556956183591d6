"""Bad input through the real command line: one ``pgrl: error:`` line, exit status 2, no traceback.

Each case runs ``python -m pgrl.cli`` in a subprocess, so that a crash outside Python's
exception handling (a segmentation fault in torch, a MemoryError in numpy, an encoding error
while printing) shows up as what the user would see. Every error must come before training.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TRAIN = ["train", "a2c", "--steps", "100", "--quiet"]


def run_cli(
    cwd: Path, *argv: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pgrl.cli", *argv],
        cwd=cwd,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_error_line(result: subprocess.CompletedProcess[str], named: str) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pgrl: error: "), lines[0]
    assert named in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--seed", "-1"], "--seed"),
        *[
            (["--set", f"{name}={value}"], f"{name} must be a finite number")
            for name in ("learning_rate", "gamma", "max_grad_norm")
            for value in ("nan", "inf", "-inf")
        ],
        (["--set", "hidden_sizes=-4"], "hidden_sizes"),
        (["--set", "hidden_sizes=0"], "hidden_sizes"),
        (["--set", "hidden_sizes=100000,100000"], "hidden_sizes"),
        (["--set", "num_envs=1e10"], "num_envs must be at most 4,096"),
        (["--set", "num_envs=2.5"], "num_envs must be a whole number"),
        (["--threads", "100000"], "--threads"),
        (["--threads", "0"], "--threads"),
        (["--run-dir", ""], "--run-dir"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_bad_option_is_one_error_line(tmp_path: Path, argv: list[str], named: str) -> None:
    result = run_cli(tmp_path, *TRAIN, *argv)
    assert_one_error_line(result, named)
    assert not any(tmp_path.iterdir()), "nothing may be written when the input is refused"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("num_envs: 2.5\n", "num_envs must be a whole number"),
        ("num_envs: true\n", "num_envs must be an integer"),
        ("rollout_steps: 5.7\n", "rollout_steps must be a whole number"),
        ("hidden_sizes: {a: 1}\n", "hidden_sizes must be a list of integers"),
        ("hidden_sizes: [64, 0]\n", "hidden_sizes"),
        ("gamma: .nan\n", "gamma must be a finite number"),
        ("normalize_advantages: 3\n", "normalize_advantages must be true or false"),
        ("hidden_sizes: [\n", "not valid YAML"),
    ],
)
def test_bad_yaml_config_is_one_error_line(tmp_path: Path, text: str, named: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(text)
    assert_one_error_line(run_cli(tmp_path, *TRAIN, "--no-save", "--config", str(config)), named)


def test_config_that_is_a_directory_is_one_error_line(tmp_path: Path) -> None:
    line = assert_one_error_line(
        run_cli(tmp_path, *TRAIN, "--no-save", "--config", str(tmp_path)), "is a directory"
    )
    assert str(tmp_path) in line


def test_config_that_is_binary_is_one_error_line(tmp_path: Path) -> None:
    config = tmp_path / "model.bin"
    config.write_bytes(bytes(range(256)) * 4)
    assert_one_error_line(
        run_cli(tmp_path, *TRAIN, "--no-save", "--config", str(config)), "not UTF-8 text"
    )


def test_eval_refuses_a_negative_seed_before_loading(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "eval", str(tmp_path / "no-such-run"), "--seed", "-1")
    assert_one_error_line(result, "--seed")


def test_training_prints_its_summary_on_an_ascii_stream(tmp_path: Path) -> None:
    result = run_cli(
        tmp_path,
        "train",
        "a2c",
        "--steps",
        "300",
        "--quiet",
        "--eval-episodes",
        "2",
        "--run-dir",
        str(tmp_path / "run"),
        env={"PYTHONIOENCODING": "ascii"},
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "evaluation over 2 episodes: " in result.stdout and "+/-" in result.stdout

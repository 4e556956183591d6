"""The command line: summaries for scripts, clear errors with exit status 2, help, eval, plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pgrl.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_json_last_line_has_the_summary_keys(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(
        capsys,
        "train",
        "a2c",
        "--env",
        "CartPole-v1",
        "--steps",
        "2000",
        "--seed",
        "3",
        "--json",
        "--quiet",
        "--run-dir",
        str(tmp_path / "r"),
        "--eval-episodes",
        "3",
        "--set",
        "gamma=0.98",
        "--set",
        "learning_rate=3e-4",
    )
    assert code == 0
    summary = json.loads(out.strip().splitlines()[-1])
    for key in (
        "algo",
        "env",
        "seed",
        "env_steps",
        "train_seconds",
        "eval_return_mean",
        "eval_return_std",
        "run_dir",
    ):
        assert key in summary
    assert summary["algo"] == "a2c" and summary["seed"] == 3 and summary["env_steps"] >= 2000
    assert summary["run_dir"] == str(tmp_path / "r")
    config = json.loads((tmp_path / "r" / "config.json").read_text())["config"]
    assert config["gamma"] == 0.98 and config["learning_rate"] == 3e-4


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "a2cc"], "unknown algorithm 'a2cc'. Did you mean 'a2c'?"),
        (
            ["train", "a2c", "--env", "CartPol-v1"],
            "unknown environment id 'CartPol-v1'. Did you mean CartPole-v1",
        ),
        (
            ["train", "ddpg", "--env", "CartPole-v1"],
            "DDPG needs a continuous (Box) action space; CartPole-v1 has Discrete(2)",
        ),
        (["train", "a2c", "--set", "gamma=1.5"], "gamma must be in [0, 1], got 1.5"),
        (
            ["train", "a2c", "--set", "learning_rate=0"],
            "learning_rate must be in (0, inf), got 0.0",
        ),
        (["train", "a2c", "--set", "learning_rate=-1e-3"], "learning_rate must be in (0, inf)"),
        (
            [
                "train",
                "ddpg",
                "--env",
                "Pendulum-v1",
                "--set",
                "minibatch_size=512",
                "--set",
                "buffer_size=100",
            ],
            "minibatch_size (512) must not exceed buffer_size (100)",
        ),
        (
            ["train", "a2c", "--set", "gama=0.9"],
            "unknown hyperparameter(s) for A2CConfig: gama (did you mean gamma?)",
        ),
        (
            ["train", "sac", "--env", "Pendulum-v1", "--set", "batch_size=64"],
            "SACConfig: batch_size was renamed to minibatch_size",
        ),
        (
            ["train", "reinforce", "--set", "value_learning_rate=1e-3"],
            "ReinforceConfig: value_learning_rate was renamed to critic_learning_rate",
        ),
        (
            ["train", "ppo", "--set", "batch_size=64"],
            "PPOConfig: batch_size is derived (transitions per rollout: num_envs × rollout_steps)",
        ),
        (["train", "a2c", "--set", "num_envs=many"], "num_envs='many': expected a value of type"),
        (["train", "a2c", "--steps", "0"], "steps must be >= 1"),
        (
            ["train", "a2c", "--vectorization", "fast"],
            "--vectorization must be one of auto, sync, async; got 'fast'",
        ),
        (["eval", "/nonexistent/run"], "does not exist"),
    ],
)
def test_bad_input_gives_one_clear_line_and_exit_status_2(capsys, argv, message) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run(capsys, *argv, *(["--no-save", "--quiet"] if argv[0] == "train" else []))
    assert code == 2
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_train_help_lists_every_knob_with_its_meaning(capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(capsys, "train", "ddpg", "--help")
    assert code == 0
    for name, words in [
        ("tau", "Polyak"),
        ("exploration_noise", "noise"),
        ("learning_starts", "warm-up"),
        ("buffer_size", "replay"),
    ]:
        line = next(line for line in out.splitlines() if line.strip().startswith(name + " "))
        assert words in line


def test_yaml_config_is_loaded_safely(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.yaml"
    evil.write_text(f"gamma: !!python/object/apply:os.system ['touch {marker}']\n")
    code, _, err = run(capsys, "train", "a2c", "--config", str(evil), "--no-save", "--steps", "100")
    assert code == 2 and "not valid YAML" in err and not marker.exists()
    good = tmp_path / "good.yaml"
    good.write_text("gamma: 0.95\nhidden_sizes: [32, 32]\n")
    code, _, _ = run(
        capsys,
        "train",
        "a2c",
        "--config",
        str(good),
        "--steps",
        "500",
        "--quiet",
        "--run-dir",
        str(tmp_path / "r"),
        "--eval-episodes",
        "1",
        "--json",
    )
    config = json.loads((tmp_path / "r" / "config.json").read_text())["config"]
    assert code == 0 and config["gamma"] == 0.95 and config["hidden_sizes"] == [32, 32]


def test_eval_plot_and_video_on_a_saved_run(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    runs = []
    for seed in (0, 1):
        runs.append(str(tmp_path / f"r{seed}"))
        assert (
            run(
                capsys,
                "train",
                "a2c",
                "--steps",
                "2000",
                "--seed",
                str(seed),
                "--quiet",
                "--run-dir",
                runs[-1],
                "--eval-episodes",
                "2",
            )[0]
            == 0
        )
    code, out, _ = run(capsys, "eval", runs[0], "--episodes", "3", "--json", "--video")
    assert code == 0
    result = json.loads(out.strip().splitlines()[-1])
    assert len(result["returns"]) == 3
    videos = list((Path(runs[0]) / "videos").glob("*.mp4"))
    assert videos and videos[0].stat().st_size > 1000
    code, out, _ = run(capsys, "plot", *runs, "--out", str(tmp_path / "curve.png"))
    assert code == 0 and (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"


def test_existing_run_is_not_overwritten_without_asking(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    args = [
        "train",
        "a2c",
        "--steps",
        "200",
        "--quiet",
        "--run-dir",
        str(tmp_path / "r"),
        "--eval-episodes",
        "0",
    ]
    assert run(capsys, *args)[0] == 0
    before = (tmp_path / "r" / "metrics.csv").read_text()
    code, _, err = run(capsys, *args, "--seed", "5")
    assert code == 2 and "already holds a run" in err and "pgrl resume" in err
    assert (tmp_path / "r" / "metrics.csv").read_text() == before
    assert run(capsys, *args, "--seed", "5", "--overwrite")[0] == 0


def test_list_names_every_algorithm(capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(capsys, "list")
    assert code == 0 and all(name in out for name in ("reinforce", "a2c", "ddpg"))


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "a2c", "--steps", "abc"],
        ["train", "a2c", "--no-such-flag"],
        ["eval"],
        ["resume"],
        ["plot"],
        ["bench", "--seeds", "x"],
        ["verify", "--seed", "x"],
    ],
)
def test_a_usage_mistake_is_one_line_and_exit_status_2(capsys, argv) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert len(err.strip().splitlines()) == 1 and "error:" in err and "--help" in err


def test_verify_refuses_a_negative_seed(capsys) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run(capsys, "verify", "--seed", "-1")
    assert code == 2 and "--seed must be in [0" in err


def test_environments_needing_what_is_not_installed_are_one_line(capsys) -> None:  # type: ignore[no-untyped-def]
    import importlib.util

    code, _, err = run(capsys, "train", "a2c", "--env", "Ant-v2", "--steps", "10", "--no-save")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Ant-v2" in err
    if importlib.util.find_spec("jax") is None:
        argv = ["train", "a2c", "--env", "phys2d/CartPole-v1", "--steps", "10", "--no-save"]
        code, _, err = run(capsys, *argv)
        assert code == 2 and "pip install 'gymnasium[jax]'" in err


def test_plot_aggregate_across_environments(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from test_plot import final_eval_run  # type: ignore[import-not-found]

    runs = [
        str(final_eval_run(tmp_path / f"{algo}-{env}-{seed}", algo, env, seed, score))
        for algo, base in (("ppo", 1.0), ("a2c", 0.5))
        for env, (low, high) in (("CartPole-v1", (0, 500)), ("Acrobot-v1", (-500, 0)))
        for seed, score in enumerate(low + (high - low) * base * f for f in (1.0, 0.9, 0.8))
    ]
    code, _, _ = run(capsys, "plot", *runs, "--aggregate", "--out", str(tmp_path / "agg.png"))
    assert code == 0 and (tmp_path / "agg.png").stat().st_size > 0
    with pytest.raises(SystemExit) as stop:
        main(["plot", *runs, "--aggregate", "--per-seed"])
    assert stop.value.code == 2

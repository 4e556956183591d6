"""Tests of pgrl.logger: the metrics CSV, TensorBoard scalars and the progress display."""

from __future__ import annotations

import csv
import errno
import io
import math
import os
from pathlib import Path

import numpy as np
import pytest

import pgrl.logger as logger_module
from pgrl.errors import PgrlError
from pgrl.logger import ALGO_COLUMNS, RunLogger, read_metrics, tensorboard_scalar, tensorboard_tag


class FakeClock:
    """A settable stand-in for the logger's wall clock, so times and rates are exact."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(logger_module, "_clock", fake)
    return fake


class TtyStringIO(io.StringIO):
    """A StringIO that claims to be a terminal."""

    def isatty(self) -> bool:
        return True


def read_csv_rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def quiet_logger(run_dir: Path | None, *, tensorboard: bool = True) -> RunLogger:
    return RunLogger(run_dir, 1000, tensorboard=tensorboard, progress=False, stream=io.StringIO())


def test_csv_has_header_and_the_rows_logged(tmp_path: Path, clock: FakeClock) -> None:
    with quiet_logger(tmp_path, tensorboard=False) as log:
        clock.now = 1.5
        log.log(100, {"policy_loss": 0.25, "episode_return_mean": 10.0})
        clock.now = 3.0
        log.log(200, {"policy_loss": -0.5, "episode_return_mean": 12.5})
    assert read_csv_rows(tmp_path / "metrics.csv") == [
        ["env_steps", "time_s", "policy_loss", "episode_return_mean"],
        ["100", "1.500", "0.25", "10.0"],
        ["200", "3.000", "-0.5", "12.5"],
    ]


def test_csv_row_is_on_disk_before_close(tmp_path: Path) -> None:
    log = quiet_logger(tmp_path, tensorboard=False)
    log.log(100, {"loss": 1.0})
    # Read while the logger is still open: a crash from here on must not lose this row.
    rows = read_csv_rows(tmp_path / "metrics.csv")
    log.close()
    assert rows[1][0] == "100" and rows[1][2] == "1.0"


def test_new_key_widens_header_and_keeps_old_rows_with_empty_cells(tmp_path: Path) -> None:
    with quiet_logger(tmp_path, tensorboard=False) as log:
        log.log(100, {"loss": 1.0})
        log.log(200, {"loss": 2.0, "eval_return_mean": 50.0})
        log.log(300, {"loss": 3.0})
    rows = read_csv_rows(tmp_path / "metrics.csv")
    assert rows[0] == ["env_steps", "time_s", "loss", "eval_return_mean"]
    assert [row[0] for row in rows[1:]] == ["100", "200", "300"]
    assert [row[2:] for row in rows[1:]] == [["1.0", ""], ["2.0", "50.0"], ["3.0", ""]]
    assert not (tmp_path / "metrics.csv.tmp").exists()


def test_non_finite_values_are_written_as_they_are(tmp_path: Path) -> None:
    with quiet_logger(tmp_path, tensorboard=False) as log:
        log.log(100, {"loss": math.nan, "grad_norm": math.inf})
    assert read_csv_rows(tmp_path / "metrics.csv")[1][2:] == ["nan", "inf"]


def test_reserved_column_name_as_metric_is_rejected(tmp_path: Path) -> None:
    with (
        quiet_logger(tmp_path, tensorboard=False) as log,
        pytest.raises(ValueError, match="time_s"),
    ):
        log.log(100, {"time_s": 1.0})


def test_read_metrics_round_trips_values_and_reads_empty_cells_as_nan(tmp_path: Path) -> None:
    with quiet_logger(tmp_path, tensorboard=False) as log:
        log.log(100, {"loss": 0.1})
        log.log(250, {"loss": 0.2, "eval_return_mean": 7.25})
    columns = read_metrics(tmp_path / "metrics.csv")
    assert list(columns) == ["env_steps", "time_s", "loss", "eval_return_mean"]
    np.testing.assert_array_equal(columns["env_steps"], [100.0, 250.0])
    np.testing.assert_array_equal(columns["loss"], [0.1, 0.2])
    np.testing.assert_array_equal(columns["eval_return_mean"], [np.nan, 7.25])
    # A run directory works as well as the file itself.
    np.testing.assert_array_equal(read_metrics(tmp_path)["loss"], [0.1, 0.2])


def test_read_metrics_missing_file_raises_pgrl_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "metrics.csv"
    with pytest.raises(PgrlError, match="nowhere"):
        read_metrics(missing)


def test_read_metrics_non_numeric_cell_raises_pgrl_error_with_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("env_steps,time_s,loss\n100,0.1,0.5\n200,0.2,oops\n", encoding="utf-8")
    with pytest.raises(PgrlError, match=r"line 3.*'loss'.*oops"):
        read_metrics(path)


def test_read_metrics_pads_a_row_cut_short_by_a_crash_with_nan(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("env_steps,time_s,loss\n100,0.1,0.5\n200,0.2", encoding="utf-8")
    np.testing.assert_array_equal(read_metrics(path)["loss"], [0.5, np.nan])


def test_tensorboard_tag_uses_sb3_names_for_known_keys_and_train_prefix_otherwise() -> None:
    assert tensorboard_tag("episode_return_mean") == "rollout/ep_rew_mean"
    assert tensorboard_tag("episode_length_mean") == "rollout/ep_len_mean"
    assert tensorboard_tag("eval_return_mean") == "eval/mean_reward"
    assert tensorboard_tag("eval_return_std") == "eval/std_reward"
    assert tensorboard_tag("learning_rate") == "train/learning_rate"
    assert tensorboard_tag("explained_variance") == "train/explained_variance"
    # pgrl's ½·MSE is not SB3's train/value_loss (the MSE): it keeps a pgrl name
    assert tensorboard_tag("value_loss") == "pgrl/value_loss"
    assert tensorboard_tag("value_mse", "a2c") == "train/value_loss"
    assert tensorboard_tag("value_mse", "td3") == "train/critic_loss"
    # the rate since the previous row is not SB3's time/fps (the run's average)
    assert tensorboard_tag("steps_per_second") == "pgrl/steps_per_second"
    assert tensorboard_tag("grad_norm") == "train/grad_norm"


def test_entropy_is_logged_as_sb3_entropy_loss_negated_except_for_sac() -> None:
    assert tensorboard_scalar("entropy", 0.69, "ppo") == ("train/entropy_loss", -0.69)
    assert tensorboard_scalar("entropy", 0.69, None) == ("train/entropy_loss", -0.69)
    assert tensorboard_scalar("entropy", 1.5, "sac") == ("train/entropy", 1.5)
    assert tensorboard_scalar("policy_loss", 0.25, "a2c") == ("train/policy_loss", 0.25)


# What SB3 shows in TensorBoard, per algorithm, for the metrics each pgrl algorithm's update
# reports (ALGO_COLUMNS), plus the loop's rows and the logger's time/ scalars.
_COMMON_TAGS = {
    "rollout/ep_rew_mean",
    "rollout/ep_len_mean",
    "eval/mean_reward",
    "eval/std_reward",
    "pgrl/steps_per_second",
    "pgrl/train_seconds",
    "time/fps",
    "time/time_elapsed",
    "time/total_timesteps",
}
# SB3's own definitions, reported by every algorithm besides pgrl's ½·MSE value_loss
_SB3_ON_POLICY_TAGS = {
    "train/value_loss",
    "train/explained_variance",
    "train/learning_rate",
    "train/std",
}
_ALGO_TAGS = {
    "reinforce": {
        "train/policy_loss",
        "train/entropy_loss",
        "pgrl/value_loss",
        *_SB3_ON_POLICY_TAGS,
    },
    "a2c": {"train/policy_loss", "pgrl/value_loss", "train/entropy_loss", *_SB3_ON_POLICY_TAGS},
    "ppo": {
        "train/policy_gradient_loss",
        "pgrl/value_loss",
        "train/entropy_loss",
        "train/approx_kl",
        "train/clip_fraction",
        "train/clip_range",
        *_SB3_ON_POLICY_TAGS,
    },
    "ddpg": {"train/actor_loss", "pgrl/value_loss", "train/critic_loss", "train/learning_rate"},
    "td3": {"train/actor_loss", "pgrl/value_loss", "train/critic_loss", "train/learning_rate"},
    "sac": {
        "train/actor_loss",
        "pgrl/value_loss",
        "train/critic_loss",
        "train/ent_coef",
        "train/ent_coef_loss",
        "pgrl/alpha_loss",
        "train/entropy",
        "train/learning_rate",
    },
}


@pytest.mark.parametrize("algo", sorted(ALGO_COLUMNS))
def test_tensorboard_events_hold_sb3_tags_for_every_algorithm(
    tmp_path: Path, clock: FakeClock, algo: str
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    updates = {key: 0.5 for key in ALGO_COLUMNS[algo]}
    with RunLogger(tmp_path, 1000, progress=False, algo=algo) as log:
        clock.now = 2.0
        log.log(100, {**updates, "steps_per_second": 50.0})
        clock.now = 4.0
        row = {"episode_return_mean": 9.5, "episode_length_mean": 9.5, "steps_per_second": 50.0}
        log.log(200, {**updates, **row})
        log.log(200, {"eval_return_mean": 20.0, "eval_return_std": 1.0, "train_seconds": 4.0})
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert set(events.Tags()["scalars"]) == _COMMON_TAGS | _ALGO_TAGS[algo]
    # SB3's time/fps is the run's average: 100 steps in 2 s, then 200 steps in 4 s
    assert [(e.step, e.value) for e in events.Scalars("time/fps")] == [
        (100, 50.0),
        (200, 50.0),
        (200, 50.0),
    ]
    returns = events.Scalars("rollout/ep_rew_mean")
    assert [(e.step, e.value) for e in returns] == [(200, 9.5)]
    if "entropy" in updates and algo != "sac":
        assert [e.value for e in events.Scalars("train/entropy_loss")] == [-0.5, -0.5]


def test_a_real_a2c_run_writes_sb3_tags(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    import pgrl

    pgrl.train("a2c", "CartPole-v1", steps=200, run_dir=tmp_path / "run", eval_episodes=0)
    events = EventAccumulator(str(tmp_path / "run" / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    expected = {
        "rollout/ep_rew_mean",
        "train/policy_loss",
        "train/entropy_loss",
        "time/fps",
        "rollout/ep_len_mean",
        "train/value_loss",
        "train/explained_variance",
        "train/learning_rate",
    }
    assert expected <= tags
    assert "train/std" not in tags  # a categorical policy has no σ
    # SB3's train/value_loss is the MSE, twice pgrl's ½·MSE (A2C's default critic loss)
    half, full = events.Scalars("pgrl/value_loss"), events.Scalars("train/value_loss")
    assert [e.step for e in half] == [e.step for e in full]
    for h, f in zip(half, full, strict=True):
        assert f.value == pytest.approx(2 * h.value, rel=1e-5)
    rates = [e.value for e in events.Scalars("train/learning_rate")]
    assert rates == pytest.approx([7e-4] * len(rates))  # the preset's constant step size


# Short runs on a Box-action task, so that every SB3 tag that applies (train/std included)
# is written by the algorithm itself, not by a test that feeds the logger
_REAL_RUNS = {
    "reinforce": (400, {"num_envs": 2, "hidden_sizes": (16, 16)}),
    "a2c": (160, {"hidden_sizes": (16, 16)}),
    "ppo": (
        256,
        {"num_envs": 2, "rollout_steps": 32, "minibatch_size": 32, "hidden_sizes": (16, 16)},
    ),
    "ddpg": (260, {"learning_starts": 200, "minibatch_size": 32, "hidden_sizes": (16, 16)}),
    "td3": (260, {"learning_starts": 200, "minibatch_size": 32, "hidden_sizes": (16, 16)}),
    "sac": (260, {"learning_starts": 200, "minibatch_size": 32, "hidden_sizes": (16, 16)}),
}
_SB3_TAGS_OF_A_REAL_RUN = {
    "reinforce": _SB3_ON_POLICY_TAGS,
    "a2c": _SB3_ON_POLICY_TAGS,
    "ppo": _SB3_ON_POLICY_TAGS | {"train/approx_kl", "train/clip_fraction", "train/clip_range"},
    "ddpg": {"train/critic_loss", "train/actor_loss", "train/learning_rate"},
    "td3": {"train/critic_loss", "train/actor_loss", "train/learning_rate"},
    "sac": {
        "train/critic_loss",
        "train/actor_loss",
        "train/learning_rate",
        "train/ent_coef",
        "train/ent_coef_loss",
    },
}


@pytest.mark.parametrize("algo", sorted(_REAL_RUNS))
def test_a_real_run_of_every_algorithm_writes_sb3_value_lr_ev_and_std_tags(
    tmp_path: Path, algo: str
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    import pgrl

    steps, config = _REAL_RUNS[algo]
    run = tmp_path / "run"
    pgrl.train(
        algo,
        "Pendulum-v1",
        steps=steps,
        config=config,
        run_dir=run,
        eval_episodes=0,
        log_interval=steps // 4,
    )
    events = EventAccumulator(str(run / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert _SB3_TAGS_OF_A_REAL_RUN[algo] <= tags
    critic = "train/critic_loss" if algo in ("ddpg", "td3", "sac") else "train/value_loss"
    for tag in (critic, "train/learning_rate"):
        values = [e.value for e in events.Scalars(tag)]
        assert values and all(math.isfinite(v) and v >= 0 for v in values)
    if algo in ("reinforce", "a2c", "ppo"):
        # Gaussian policy with log σ initialised at 0: σ = 1 before the first step
        assert all(0.5 < e.value < 2.0 for e in events.Scalars("train/std"))
        assert all(e.value <= 1.0 for e in events.Scalars("train/explained_variance"))
    # metrics.csv holds exactly the declared columns, in their order
    header = read_csv_rows(run / "metrics.csv")[0]
    assert header == ["env_steps", "time_s", *logger_module.metric_columns(algo)]


def test_runs_of_one_algorithm_share_a_header_whenever_episodes_end(tmp_path: Path) -> None:
    updates = {"policy_loss": 0.1, "value_loss": 0.2, "entropy": 0.6}
    early, late = tmp_path / "early", tmp_path / "late"
    with RunLogger(early, 1000, tensorboard=False, progress=False, algo="a2c") as log:
        log.log(100, {"episode_return_mean": 10.0, **updates})
        log.log(200, {"eval_return_mean": 9.0, "eval_return_std": 0.0, "train_seconds": 1.0})
    with RunLogger(late, 1000, tensorboard=False, progress=False, algo="a2c") as log:
        log.log(100, {**updates, "grad_norm": 3.0})  # no episode finished yet
        log.log(200, {"episode_return_mean": 10.0, **updates, "grad_norm": 3.0})
    header = read_csv_rows(early / "metrics.csv")[0]
    assert header == [
        "env_steps",
        "time_s",
        "episode_return_mean",
        "episode_length_mean",
        "policy_loss",
        "value_loss",
        "entropy",
        "value_mse",
        "explained_variance",
        "learning_rate",
        "std",
        "n_updates",
        "steps_per_second",
        "eval_return_mean",
        "eval_return_std",
        "train_seconds",
    ]
    # a metric nobody declared comes after the declared ones
    assert read_csv_rows(late / "metrics.csv")[0] == [*header, "grad_norm"]
    assert read_csv_rows(late / "metrics.csv")[1][2:5] == ["", "", "0.1"]


def test_tensorboard_false_writes_no_tb_directory(tmp_path: Path) -> None:
    with quiet_logger(tmp_path, tensorboard=False) as log:
        log.log(100, {"loss": 1.0})
    assert not (tmp_path / "tb").exists()


def test_run_dir_none_writes_nothing_to_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with quiet_logger(None) as log:
        log.log(100, {"loss": 1.0})
    assert log.csv_path is None
    assert list(tmp_path.iterdir()) == []


def test_plain_progress_lines_in_non_tty_stream_show_steps_rate_return_and_eta(
    clock: FakeClock,
) -> None:
    stream = io.StringIO()
    log = RunLogger(None, 100_000, print_interval_s=10.0, stream=stream)
    clock.now = 8.0
    log.progress_update(30_000, 150.0)
    assert stream.getvalue() == ""  # less than print_interval_s since the start
    clock.now = 10.0
    # 50,000 steps in 10 s: 5,000 steps/s; 50,000 left at that rate: 10 s.
    log.log(50_000, {"episode_return_mean": 183.4})
    clock.now = 12.0
    log.progress_update(60_000)
    assert stream.getvalue().splitlines() == [
        "[ 50,000/100,000  50%] 5,000 steps/s  return 183.4 (mean of last 100 episodes)  "
        "ETA 0:00:10"
    ]
    clock.now = 20.0
    log.progress_update(100_000)
    # 50,000 more steps in the 10 s since the last line.
    assert stream.getvalue().splitlines()[-1] == (
        "[100,000/100,000 100%] 5,000 steps/s  return 183.4 (mean of last 100 episodes)  "
        "ETA 0:00:00"
    )
    clock.now = 25.0
    log.close()
    # The closing line reports the whole run: 100,000 steps in 25 s.
    assert stream.getvalue().splitlines()[-1] == (
        "[100,000/100,000 100%] 4,000 steps/s  return 183.4 (mean of last 100 episodes)  "
        "elapsed 0:00:25"
    )
    assert len(stream.getvalue().splitlines()) == 3


def test_plain_progress_prints_a_closing_line_for_a_short_run(clock: FakeClock) -> None:
    stream = io.StringIO()
    log = RunLogger(None, 1_000, stream=stream)
    clock.now = 2.0
    log.progress_update(1_000)
    log.close()
    assert stream.getvalue() == "[1,000/1,000 100%] 500 steps/s  elapsed 0:00:02\n"


def test_a_run_past_its_budget_closes_on_a_clean_100_percent_frame(clock: FakeClock) -> None:
    stream = io.StringIO()
    log = RunLogger(None, 1_000, stream=stream)
    clock.now = 2.0
    log.progress_update(1_024)  # the last rollout ended 24 steps past the budget
    log.close()
    assert stream.getvalue() == (
        "[1,000/1,000 100%] 512 steps/s  elapsed 0:00:02 (1,024 steps taken)\n"
    )


def test_the_bar_of_a_run_past_its_budget_ends_at_100_percent() -> None:
    stream = TtyStringIO()
    log = RunLogger(None, 1000, stream=stream)
    log.progress_update(600, 3.0)
    log.progress_update(1024)
    log.close()
    final = stream.getvalue().split("\r")[-1]
    assert "100%" in final and "1.00k/1.00k" in final
    assert "return 3.0 (mean of last 100 episodes)" in final
    assert "102%" not in stream.getvalue() and "1.02k" not in stream.getvalue()


def test_progress_false_prints_nothing(tmp_path: Path, clock: FakeClock) -> None:
    stream = io.StringIO()
    with RunLogger(tmp_path, 1000, tensorboard=False, progress=False, stream=stream) as log:
        for step in range(100, 1001, 100):
            clock.now += 20.0
            log.log(step, {"episode_return_mean": 1.0})
    assert stream.getvalue() == ""


def test_tty_stream_gets_a_tqdm_bar_and_messages_survive_it() -> None:
    stream = TtyStringIO()
    log = RunLogger(None, 1000, stream=stream)
    log.progress_update(500, 3.0)
    log.message("checkpoint saved")
    log.close()
    text = stream.getvalue()
    assert "%|" in text  # tqdm's bar: "50%|█████     | 500/1.00k"
    assert "1.00k" in text
    assert "checkpoint saved\n" in text


def test_message_prints_a_line_in_plain_mode() -> None:
    stream = io.StringIO()
    with RunLogger(None, 1000, stream=stream) as log:
        log.message("evaluating")
    assert stream.getvalue() == "evaluating\n"


def test_close_is_idempotent_and_log_after_close_raises(tmp_path: Path) -> None:
    with quiet_logger(tmp_path) as log:
        log.log(100, {"loss": 1.0})
    log.close()
    log.progress_update(200)  # harmless after close
    with pytest.raises(RuntimeError, match="close"):
        log.log(200, {"loss": 2.0})
    assert len(read_csv_rows(tmp_path / "metrics.csv")) == 2


# -- a hostile run directory and a full disk (issue 11) -------------------------------------


def _no_temporaries(path: Path) -> None:
    assert sorted(p.name for p in path.iterdir() if ".tmp" in p.name) == []


@pytest.mark.parametrize("resume_from", [None, 100], ids=["fresh", "resume"])
def test_a_symlinked_metrics_csv_is_refused_and_its_target_kept(
    tmp_path: Path, resume_from: int | None
) -> None:
    target = tmp_path / "precious.csv"
    target.write_text("env_steps,time_s\n50,1.0\n200,2.0\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.csv").symlink_to(target)
    with pytest.raises(PgrlError, match="symbolic link") as caught:
        RunLogger(run, 1000, tensorboard=False, progress=False, resume_from=resume_from)
    assert "metrics.csv" in str(caught.value) and "\n" not in str(caught.value)
    assert target.read_text() == "env_steps,time_s\n50,1.0\n200,2.0\n"
    assert (run / "metrics.csv").is_symlink()


def test_a_symlinked_tensorboard_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    run = tmp_path / "run"
    run.mkdir()
    (run / "tb").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(PgrlError, match="symbolic link"):
        quiet_logger(run)
    assert list((tmp_path / "elsewhere").iterdir()) == []


class _FullDiskFile:
    """Wraps a text file: every write after ``budget`` raises ENOSPC."""

    def __init__(self, file: object, budget: int) -> None:
        self._file, self._budget = file, budget

    def write(self, text: str) -> int:
        if self._budget <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._budget -= 1
        return int(self._file.write(text))  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._file, name)


@pytest.mark.parametrize("budget", [0, 2], ids=["header", "row"])
def test_a_full_disk_while_logging_is_one_line_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, budget: int
) -> None:
    real_open = logger_module._open_csv
    monkeypatch.setattr(
        logger_module,
        "_open_csv",
        lambda path, mode: (
            real_open(path, mode) if mode == "r" else _FullDiskFile(real_open(path, mode), budget)
        ),
    )
    with pytest.raises(PgrlError) as caught:
        log = quiet_logger(tmp_path, tensorboard=False)
        log.log(100, {"loss": 1.0})
        log.log(200, {"loss": 2.0})
        log.log(300, {"loss": 3.0})
    message = str(caught.value)
    assert "\n" not in message
    assert str(tmp_path / "metrics.csv") in message and "No space left on device" in message
    _no_temporaries(tmp_path)
    if budget:
        log.close()  # closing after the failure raises nothing more


def _fail_os_write(monkeypatch: pytest.MonkeyPatch) -> None:
    def write(*args: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", write)


def test_a_full_disk_while_widening_keeps_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = quiet_logger(tmp_path, tensorboard=False)
    log.log(100, {"loss": 1.0})
    before = (tmp_path / "metrics.csv").read_text()
    _fail_os_write(monkeypatch)  # the atomic rewrite writes with os.write
    with pytest.raises(PgrlError, match="No space left on device"):
        log.log(200, {"loss": 2.0, "eval_return_mean": 5.0})
    monkeypatch.undo()
    log.close()
    assert (tmp_path / "metrics.csv").read_text() == before
    _no_temporaries(tmp_path)


def test_resume_keeps_the_rows_up_to_the_checkpoint_atomically(tmp_path: Path) -> None:
    (tmp_path / "metrics.csv").write_text(
        "env_steps,time_s,loss\n100,1.0,0.5\n200,2.0,0.4\n300,3.0,0.3\n40"  # a row cut short
    )
    with RunLogger(tmp_path, 1000, tensorboard=False, progress=False, resume_from=200) as log:
        log.log(300, {"loss": 0.25})
    rows = read_csv_rows(tmp_path / "metrics.csv")
    assert [row[0] for row in rows[1:]] == ["100", "200", "300"]
    assert rows[3][2] == "0.25"
    _no_temporaries(tmp_path)


def test_a_full_disk_while_truncating_on_resume_keeps_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "env_steps,time_s,loss\n100,1.0,0.5\n200,2.0,0.4\n300,3.0,0.3\n"
    (tmp_path / "metrics.csv").write_text(text)
    _fail_os_write(monkeypatch)
    with pytest.raises(PgrlError) as caught:
        RunLogger(tmp_path, 1000, tensorboard=False, progress=False, resume_from=200)
    monkeypatch.undo()
    assert "metrics.csv" in str(caught.value) and "No space left" in str(caught.value)
    assert (tmp_path / "metrics.csv").read_text() == text
    _no_temporaries(tmp_path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("resume_from", [None, 100], ids=["fresh", "resume"])
def test_a_fifo_as_metrics_csv_is_refused_without_blocking(
    tmp_path: Path, resume_from: int | None
) -> None:
    os.mkfifo(tmp_path / "metrics.csv")
    with pytest.raises(PgrlError, match="not a regular file"):
        RunLogger(tmp_path, 1000, tensorboard=False, progress=False, resume_from=resume_from)


@pytest.mark.parametrize("where", ["add_scalar", "close"])
def test_a_full_disk_under_tensorboard_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    log = quiet_logger(tmp_path)

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(log._tb_writer, where, fail)
    with pytest.raises(PgrlError) as caught:
        log.log(100, {"loss": 1.0})
        log.close()
    message = str(caught.value)
    assert str(tmp_path / "tb") in message and "No space left on device" in message
    assert "\n" not in message
    log.close()
    assert read_csv_rows(tmp_path / "metrics.csv")[1][0] == "100"

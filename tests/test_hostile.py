"""A careless or hostile user, through the command line (issue 11): nothing lost, nothing mixed,
one line per mistake.

Every case calls :func:`pgrl.cli.main` as ``pgrl`` would and asserts the exit status, one
``pgrl: error:`` line without a traceback, and that nothing of another run is left behind or
overwritten. A full disk is simulated by making a write raise ENOSPC. ``pgrl.train`` and
``pgrl.resume`` run inside :class:`pgrl.rundir.RunDir` and write ``config.json`` and
``summary.json`` with :func:`pgrl.rundir.write_text_atomically`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import pgrl
import pgrl.logger
from pgrl import checkpoint
from pgrl.cli import main
from pgrl.rundir import LOCK_FILE, RunDir

TRAIN = [
    "train",
    "a2c",
    "--env",
    "CartPole-v1",
    "--steps",
    "400",
    "--quiet",
    "--eval-episodes",
    "0",
]


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    """Run ``pgrl *argv`` in this process: its exit status and its non-empty stderr lines."""
    capsys.readouterr()
    code = main(list(argv))
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.strip()]


def assert_one_error(code: int, lines: list[str], *named: str) -> str:
    """Exit status 2 and exactly one ``pgrl: error:`` line naming everything in ``named``."""
    text = "\n".join(lines)
    assert "Traceback" not in text, text
    assert code == 2, (code, text)
    assert len(lines) == 1, text
    assert lines[0].startswith("pgrl: error: "), text
    for part in named:
        assert part in lines[0], (part, lines[0])
    return lines[0]


@contextlib.contextmanager
def alarm(seconds: int) -> Iterator[None]:
    """Fail instead of hanging forever (a FIFO read would block the test run)."""

    def timeout(signum: int, frame: Any) -> None:
        raise AssertionError(f"blocked for {seconds} s")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def leftovers(path: Path) -> list[str]:
    """Temporary files a write left behind."""
    return sorted(p.name for p in path.rglob("*") if ".tmp" in p.name or "probe" in p.name)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished a2c run: config.json, metrics.csv, tb/, a checkpoint and a model."""
    run = tmp_path_factory.mktemp("trained") / "run"
    pgrl.train("a2c", "CartPole-v1", steps=400, seed=0, run_dir=run, eval_episodes=0)
    assert (run / "model.safetensors").is_file()
    assert (run / "checkpoints" / "last.safetensors").is_file()
    return run


# == Runs mixed or lost ==========================================================================


def test_overwrite_leaves_nothing_of_the_old_run(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11, runs 1: a failing --overwrite run never names or resumes the old run."""
    run = tmp_path / "X"
    shutil.copytree(trained, run)
    code, lines = cli(
        capsys,
        *["train", "ppo", "--steps", "2000", "--quiet", "--eval-episodes", "0"],
        *["--run-dir", str(run), "--overwrite", "--set", "learning_rate=1e308"],
    )
    assert code != 0
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("X.replaced-")]
    assert len(aside) == 1, sorted(p.name for p in tmp_path.iterdir())
    assert json.loads((aside[0] / "config.json").read_text())["algo"] == "a2c"
    assert json.loads((run / "config.json").read_text())["algo"] == "ppo"
    for name in ("checkpoints/last.safetensors", "model.safetensors"):
        if (run / name).exists():  # whatever is there is the new run's
            assert checkpoint.load_checkpoint(run / name)[1]["algo"] == "ppo", name
    old_events = {p.name for p in (trained / "tb").iterdir()}
    assert not old_events & {p.name for p in (run / "tb").iterdir()}
    # the old run is never found in X: not by resume, not by eval
    code, lines = cli(capsys, "resume", str(run), "--quiet")
    assert code != 0 and "a2c" not in " ".join(lines)
    capsys.readouterr()
    main(["eval", str(run), "--episodes", "1"])
    assert "a2c" not in capsys.readouterr().out


@pytest.mark.parametrize("command", ["train-overwrite", "resume"])
def test_a_second_writer_gets_one_line_naming_the_pid(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """Issue 11, runs 2: no two trainings in one run directory."""
    run = tmp_path / "X"
    shutil.copytree(trained, run)
    before = (run / "metrics.csv").read_text()
    argv = [*TRAIN, "--run-dir", str(run), "--overwrite"]
    if command == "resume":
        argv = ["resume", str(run), "--steps", "800", "--quiet"]
    with RunDir(run, resume=True):  # the first training, still running
        code, lines = cli(capsys, *argv)
    assert_one_error(code, lines, str(run), f"PID {os.getpid()}")
    assert [p.name for p in tmp_path.iterdir()] == ["X"]  # nothing moved aside
    assert (run / "metrics.csv").read_text() == before


def test_a_directory_of_other_files_is_not_written_into(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11, runs 3: a directory without config.json is not a run to replace."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "metrics.csv").write_text("my own numbers\n")
    code, lines = cli(capsys, *TRAIN, "--run-dir", str(mine))
    assert_one_error(code, lines, str(mine), "--overwrite")
    assert sorted(p.name for p in mine.iterdir()) == ["metrics.csv"]
    assert (mine / "metrics.csv").read_text() == "my own numbers\n"


def test_a_symlinked_metrics_csv_is_never_followed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11, runs 3: the link's target is not truncated."""
    run = tmp_path / "X"
    run.mkdir()
    target = tmp_path / "precious.csv"
    target.write_text("do not truncate\n")
    (run / "metrics.csv").symlink_to(target)
    code, lines = cli(capsys, *TRAIN, "--run-dir", str(run))
    assert_one_error(code, lines, "metrics.csv")
    assert target.read_text() == "do not truncate\n"


def test_a_symlinked_metrics_csv_is_never_followed_on_resume(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "X"
    shutil.copytree(trained, run)
    target = tmp_path / "precious.csv"
    target.write_text("do not truncate\n")
    (run / "metrics.csv").unlink()
    (run / "metrics.csv").symlink_to(target)
    code, lines = cli(capsys, "resume", str(run), "--steps", "800", "--quiet")
    assert_one_error(code, lines, "metrics.csv", "symbolic link")
    assert target.read_text() == "do not truncate\n"


def test_train_on_a_run_that_never_saved_a_checkpoint_says_what_it_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11, runs 4: train and resume agree about a run killed before its first checkpoint."""
    run = tmp_path / "X"
    run.mkdir()
    (run / "config.json").write_text('{"algo": "a2c"}')
    code, lines = cli(capsys, *TRAIN, "--run-dir", str(run))
    assert_one_error(code, lines, "before its first checkpoint", "--overwrite")
    code, lines = cli(capsys, *TRAIN, "--run-dir", str(run), "--overwrite")
    assert code == 0, lines
    assert (run / "checkpoints" / "last.safetensors").is_file()


class _DiskFullFile:
    """A metrics file whose writes fail with ENOSPC once ``budget`` writes have been made."""

    def __init__(self, file: Any, budget: list[int]) -> None:
        self._file, self._budget = file, budget

    def write(self, text: str) -> int:
        if self._budget[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._budget[0] -= 1
        return int(self._file.write(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


@pytest.mark.parametrize("budget", [0, 3], ids=["at-start", "mid-run"])
def test_a_full_disk_while_writing_metrics_is_one_line_and_leaves_no_temporary(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    budget: int,
) -> None:
    """Issue 11, runs 5."""
    left = [budget]
    real_open = pgrl.logger._open_csv

    def open_csv(path: Path, mode: str) -> Any:
        file = real_open(path, mode)
        return file if mode == "r" else _DiskFullFile(file, left)

    monkeypatch.setattr(pgrl.logger, "_open_csv", open_csv)
    run = tmp_path / "X"
    code, lines = cli(capsys, *TRAIN, "--run-dir", str(run))
    assert_one_error(code, lines, str(run / "metrics.csv"), "No space left on device")
    assert leftovers(run) == []


def _fail_writes_to(monkeypatch: pytest.MonkeyPatch, marker: str) -> None:
    """Make ``os.write`` raise ENOSPC for files whose name contains ``marker``."""
    real_write = os.write

    def write(fd: int, data: Any) -> int:
        name = ""
        with contextlib.suppress(OSError):
            name = os.readlink(f"/proc/self/fd/{fd}")
        if marker in name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to find the file")
def test_a_full_disk_while_writing_config_json_is_one_line_and_no_empty_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11, runs 4 and 5: no 0-byte config.json that makes a dead-end directory."""
    _fail_writes_to(monkeypatch, ".config.json.tmp")
    run = tmp_path / "X"
    code, lines = cli(capsys, *TRAIN, "--run-dir", str(run))
    assert_one_error(code, lines, "config.json", "No space left on device")
    assert not (run / "config.json").exists()
    assert leftovers(run) == []
    monkeypatch.undo()
    code, lines = cli(capsys, *TRAIN, "--run-dir", str(run))  # the directory is usable again
    assert code == 0, lines


# == Paths that cannot hold a run ===============================================================


def _file(tmp_path: Path) -> Path:
    (tmp_path / "notes.txt").write_text("mine")
    return tmp_path / "notes.txt"


RUN_DIR_CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "a-file": (_file, "is a file"),
    "under-a-file": (lambda tmp: _file(tmp) / "run", "is a file"),
    "name-too-long": (lambda tmp: tmp / ("x" * 300), "too long"),
    "path-too-long": (lambda tmp: tmp.joinpath(*["d" * 200] * 25), "too long"),
}


@pytest.mark.parametrize("case", list(RUN_DIR_CASES))
def test_a_run_dir_that_cannot_be_a_directory_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    make, named = RUN_DIR_CASES[case]
    code, lines = cli(capsys, *TRAIN, "--run-dir", str(make(tmp_path)))
    assert_one_error(code, lines, named)
    if (tmp_path / "notes.txt").exists():
        assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("where", ["run-dir", "working-directory"])
def test_a_read_only_place_is_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    """Read-only is simulated (mkdir raises EROFS): tests may run as root, for whom chmod
    changes nothing; tests/test_rundir.py checks real permissions when not root."""

    def mkdir(path: Any, *args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(os, "mkdir", mkdir)
    argv = [*TRAIN] if where == "working-directory" else [*TRAIN, "--run-dir", "ro/run"]
    code, lines = cli(capsys, *argv)
    assert_one_error(code, lines, "Read-only file system")
    assert list(tmp_path.iterdir()) == []


# == Hyperparameters and config files ===========================================================


@pytest.mark.parametrize(
    ("algo", "setting", "named"),
    [
        ("sac", "buffer_size=1e12", "buffer_size must be at most 100,000,000"),
        ("ddpg", "learning_starts=1e300", "learning_starts must be at most"),
        ("ppo", "rollout_steps=1e9", "rollout_steps must be at most 1,000,000"),
        ("ppo", "update_epochs=1e9", "update_epochs must be at most"),
        ("a2c", "hidden_sizes=0", "hidden_sizes"),
        ("a2c", "hidden_sizes=", "at least one hidden layer"),
        ("a2c", "hidden_sizes=30000,30000", "weights"),
    ],
)
def test_values_no_run_can_build_are_one_line_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], algo: str, setting: str, named: str
) -> None:
    run = tmp_path / "X"
    code, lines = cli(
        capsys, "train", algo, "--steps", "400", "--run-dir", str(run), "--set", setting
    )
    assert_one_error(code, lines, named)
    assert not (run / "checkpoints").exists()


def test_a_huge_yaml_config_is_refused_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11: a 33 MB YAML config hung for minutes."""
    config = tmp_path / "big.yaml"
    config.write_text("gamma: 0.99\n" + "# padding\n" * 300_000)  # 3 MB
    code, lines = cli(capsys, *TRAIN, "--no-save", "--config", str(config))
    assert_one_error(code, lines, str(config), "larger than 1,000,000 bytes")


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("hidden_sizes: " + "[" * 20_000, "nested too deeply"),
        (
            "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
            + "".join(
                f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
                for p, c in zip("abcdefgh", "bcdefghi", strict=True)
            )
            + "hidden_sizes: *i\n",
            "hidden_sizes",
        ),
        ("num_envs: " + "9" * 5000, "digits"),
    ],
    ids=["deep-nesting", "billion-laughs", "huge-integer"],
)
def test_a_hostile_small_yaml_config_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, named: str
) -> None:
    config = tmp_path / "hostile.yaml"
    config.write_text(text)
    with alarm(60):
        code, lines = cli(capsys, *TRAIN, "--no-save", "--config", str(config))
    assert_one_error(code, lines, named)
    assert len(lines[0]) < 1000, lines[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_as_config_is_refused_without_blocking(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    with alarm(30):
        code, lines = cli(capsys, *TRAIN, "--no-save", "--config", str(fifo))
    assert_one_error(code, lines, str(fifo), "not a regular file")


# == Crafted files ==============================================================================


def _craft(source: Path, target: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """Copy a pgrl file with its meta edited and the checksum recomputed, as anyone can."""
    tensors, meta = checkpoint.load_checkpoint(source)
    edit(meta)
    target.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.save_checkpoint(target, tensors, meta)
    return target


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    *parents, last = path.split(".")

    def edit(meta: dict[str, Any]) -> None:
        node = meta
        for key in parents:
            node = node[key]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value

    return edit


_DELETE = object()

META_CASES: dict[str, tuple[str, Any, str]] = {
    "env-missing": ("env", _DELETE, "lacks env"),
    "env-not-a-string": ("env", 7, "env is 7"),
    "algo-unknown": ("algo", "evil", "algo is 'evil'"),
    "algo-not-a-string": ("algo", ["a2c"], "algo is"),
    "seed-a-string": ("seed", "abc", "seed is 'abc'"),
    "seed-negative": ("seed", -1, "seed is -1"),
    "seed-a-bool": ("seed", True, "seed is True"),
    "seed-too-large": ("seed", 2**64, "seed is"),
    "config-not-a-mapping": ("config", [1, 2], "config is [1, 2]"),
    "config-huge-network": ("config.hidden_sizes", [2**20, 2**20], "hidden_sizes"),
    "config-unknown-field": ("config.evil", 1, "evil"),
    "config-nan": ("config.gamma", "nan", "gamma"),
    "env-steps-negative": ("env_steps", -5, "env_steps is -5"),
    "env-steps-a-float": ("env_steps", 1.5, "env_steps is 1.5"),
    "obs-space-missing": ("obs_space", _DELETE, "lacks obs_space"),
    "custom-networks-a-string": ("custom_networks", "policy", "custom_networks"),
}
CHECKPOINT_META_CASES: dict[str, tuple[str, Any, str]] = {
    **META_CASES,
    "run-extra-field": ("run.evil", 1, "unknown field(s) evil"),
    "run-not-a-mapping": ("run", "fast", "run is 'fast'"),
    "run-steps-a-string": ("run.steps", "abc", "run.steps is 'abc'"),
    "run-steps-zero": ("run.steps", 0, "steps must be >= 1"),
    "run-steps-missing": ("run.steps", _DELETE, "run lacks steps"),
    "run-worker-timeout-a-string": ("run.worker_timeout", "1", "run.worker_timeout is '1'"),
    "run-worker-timeout-zero": ("run.worker_timeout", 0, "run.worker_timeout is 0"),
    "loop-missing": ("loop", _DELETE, "lacks loop"),
    "loop-counter-negative": ("loop.boundary", -1, "loop.boundary"),
    "rng-not-a-mapping": ("rng", 3, "rng is 3"),
    "seconds-negative": ("train_seconds", -1.0, "train_seconds"),
    "optimizers-not-a-mapping": ("optimizers", [], "optimizers"),
}


@pytest.mark.parametrize("case", list(META_CASES))
def test_a_model_with_crafted_metadata_is_one_line(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    field, value, named = META_CASES[case]
    crafted = _craft(
        trained / "model.safetensors", tmp_path / "model.safetensors", _set(field, value)
    )
    code, lines = cli(capsys, "eval", str(crafted), "--episodes", "1")
    assert_one_error(code, lines, str(crafted), "invalid metadata", named)


@pytest.mark.parametrize("case", list(CHECKPOINT_META_CASES))
def test_a_checkpoint_with_crafted_metadata_is_one_line(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    field, value, named = CHECKPOINT_META_CASES[case]
    run = tmp_path / "X"
    run.mkdir()
    shutil.copy(trained / "config.json", run / "config.json")
    crafted = _craft(
        trained / "checkpoints" / "last.safetensors",
        run / "checkpoints" / "last.safetensors",
        _set(field, value),
    )
    code, lines = cli(capsys, "resume", str(run), "--steps", "800", "--quiet")
    assert_one_error(code, lines, str(crafted), "invalid metadata", named)
    assert not (run / "metrics.csv").exists()  # refused before anything was written


def test_the_uncrafted_files_load(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The control: the files the crafted ones are made from pass every check."""
    for name in ("model.safetensors", "checkpoints/last.safetensors"):
        _, meta = checkpoint.load_checkpoint(trained / name)
        checkpoint.check_run_meta(trained / name, meta)
    code, lines = cli(capsys, "eval", str(trained), "--episodes", "1")
    assert code == 0, lines


def _sparse(path: Path, size: int, head: bytes = b"") -> Path:
    with open(path, "wb") as file:
        file.write(head)
        file.truncate(size)  # a hole: no disk space used
    return path


def _claiming(path: Path, shape: list[int]) -> Path:
    """A small file whose header claims one float32 tensor of ``shape``."""
    nbytes = 4
    for n in shape:
        nbytes *= n
    header = {
        "__metadata__": {"pgrl.format": "pgrl-checkpoint", "pgrl.version": "1"},
        "w": {"dtype": "F32", "shape": shape, "data_offsets": [0, nbytes]},
    }
    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + b"\0" * 64)
    return path


def _valid_header_then_64_gib(trained: Path, path: Path) -> Path:
    data = (trained / "model.safetensors").read_bytes()
    end = 8 + int.from_bytes(data[:8], "little")
    return _sparse(path, 64 * 2**30, data[:end])


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _to_dev_zero(path: Path) -> Path:
    path.symlink_to("/dev/zero")
    return path


HOSTILE_FILES: dict[str, tuple[Callable[[Path, Path], Path], str]] = {
    "fifo": (lambda trained, tmp: _fifo(tmp / "m.safetensors"), "FIFO"),
    "symlink-to-dev-zero": (lambda trained, tmp: _to_dev_zero(tmp / "m.safetensors"), "a device"),
    "sparse-64-gib-of-zeros": (
        lambda trained, tmp: _sparse(tmp / "m.safetensors", 64 * 2**30),
        "implausible",
    ),
    "header-then-64-gib": (
        lambda trained, tmp: _valid_header_then_64_gib(trained, tmp / "m.safetensors"),
        "tensors cover",
    ),
    "claims-10-12-bytes": (
        lambda trained, tmp: _claiming(tmp / "m.safetensors", [250_000, 1_000_000]),
        "needs bytes up to",
    ),
    "claims-2-20-squared": (
        lambda trained, tmp: _claiming(tmp / "m.safetensors", [2**20, 2**20]),
        "needs bytes up to",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE_FILES))
def test_a_hostile_model_file_is_one_line_without_reading_it(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    make, named = HOSTILE_FILES[case]
    if case == "fifo" and not hasattr(os, "mkfifo"):
        pytest.skip("needs FIFOs")
    if case == "symlink-to-dev-zero" and not Path("/dev/zero").exists():
        pytest.skip("needs /dev/zero")
    path = make(trained, tmp_path)
    with alarm(60):
        code, lines = cli(capsys, "eval", str(path), "--episodes", "1")
    assert_one_error(code, lines, str(path), named)


def test_resume_of_a_checkpoint_linked_to_dev_zero_is_one_line(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("needs /dev/zero")
    run = tmp_path / "X"
    shutil.copytree(trained, run)
    (run / "checkpoints" / "last.safetensors").unlink()
    (run / "checkpoints" / "last.safetensors").symlink_to("/dev/zero")
    with alarm(60):
        code, lines = cli(capsys, "resume", str(run), "--quiet")
    assert_one_error(code, lines, "last.safetensors")


def test_a_directory_left_with_only_a_stale_lock_trains(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run killed before writing config.json leaves only its lock file: not a run, no block."""
    run = tmp_path / "X"
    run.mkdir()
    (run / LOCK_FILE).write_text("999999999\n")  # the PID of a process long gone
    code, lines = cli(capsys, *TRAIN, "--run-dir", str(run))
    assert code == 0, lines
    assert (run / "checkpoints" / "last.safetensors").is_file()

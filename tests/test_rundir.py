"""pgrl.rundir: a run directory is checked, locked and (with overwrite) emptied before a run.

These tests drive :class:`pgrl.rundir.RunDir` and :func:`pgrl.rundir.write_text_atomically`
directly; tests/test_hostile.py meets the same behaviours through the command line.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pgrl import agent
from pgrl.errors import ConfigError, PgrlError
from pgrl.rundir import (
    LOCK_FILE,
    RUN_FILES,
    RUN_MARKERS,
    RunDir,
    holds_run,
    write_text_atomically,
)

ROOT = Path(__file__).resolve().parents[1]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def make_run(path: Path, *, checkpoint: bool = True, tag: str = "old") -> Path:
    """A directory shaped like a finished pgrl run, each file holding ``tag``."""
    (path / "checkpoints").mkdir(parents=True)
    (path / "tb").mkdir()
    (path / "config.json").write_text(f'{{"algo": "{tag}"}}')
    (path / "metrics.csv").write_text(f"env_steps,time_s\n1,{tag}\n")
    (path / "tb" / f"events.out.tfevents.{tag}").write_text(tag)
    if checkpoint:
        (path / "checkpoints" / "last.safetensors").write_text(tag)
        (path / "model.safetensors").write_text(tag)
    return path


def files_in(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


def refused(path: Path, match: str, **kwargs: Any) -> str:
    """Enter RunDir(path, **kwargs), expect a ConfigError of one line containing ``match``."""
    with pytest.raises(ConfigError) as caught, RunDir(path, **kwargs):
        pass
    message = str(caught.value)
    assert "\n" not in message, message
    assert match in message, message
    return message


# -- a fresh run directory ----------------------------------------------------------------


def test_new_directory_is_created_with_its_parents_and_locked(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "a" / "run"
    rundir = RunDir(path)
    with rundir as entered:
        assert entered == path and path.is_dir() and rundir.locked
        assert (path / LOCK_FILE).read_text().strip() == str(os.getpid())
        assert files_in(path) == {LOCK_FILE}  # the writability probe left nothing
    assert not rundir.locked and rundir.replaced is None


def test_an_empty_directory_and_one_with_only_a_lock_file_are_used(tmp_path: Path) -> None:
    path = tmp_path / "run"
    path.mkdir()
    with RunDir(path):
        pass
    with RunDir(path):  # the lock file of the run before does not make the directory foreign
        pass


def test_run_markers_are_the_files_pgrl_writes() -> None:
    assert str(agent.CHECKPOINT_FILE) in RUN_MARKERS and str(agent.MODEL_FILE) in RUN_MARKERS
    assert set(RUN_MARKERS) <= set(RUN_FILES)


def test_empty_path_is_refused() -> None:
    with pytest.raises(ConfigError, match="empty"):
        RunDir("")
    with pytest.raises(ConfigError, match="empty"):
        RunDir("  ")


def test_resume_and_overwrite_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not both"):
        RunDir(tmp_path, resume=True, overwrite=True)


# -- paths that cannot be a run directory ---------------------------------------------------


@pytest.mark.parametrize("mode", [{}, {"overwrite": True}, {"resume": True}], ids=str)
def test_a_file_is_refused(tmp_path: Path, mode: dict[str, bool]) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("mine")
    refused(path, "is a file", **mode)
    assert path.read_text() == "mine"


def test_a_path_under_a_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    message = refused(tmp_path / "notes.txt" / "sub" / "run", "is a file")
    assert str(tmp_path / "notes.txt") in message
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("long", ["component", "total"])
def test_a_path_too_long_for_the_filesystem_is_refused(tmp_path: Path, long: str) -> None:
    # one name over NAME_MAX (255 bytes), or a path over PATH_MAX (4096)
    path = tmp_path / ("x" * 300) if long == "component" else tmp_path.joinpath(*["d" * 200] * 25)
    message = refused(path, "too long")
    assert len(message) < 400, message  # the absurd path is shortened, the line stays readable


def test_a_broken_symlink_as_run_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "run").symlink_to(tmp_path / "gone")
    refused(tmp_path / "run", "broken symbolic link")
    assert not (tmp_path / "gone").exists()


def test_a_symlink_to_a_directory_is_a_usable_run_directory(tmp_path: Path) -> None:
    (tmp_path / "disk").mkdir()
    (tmp_path / "run").symlink_to(tmp_path / "disk")
    with RunDir(tmp_path / "run"):
        assert (tmp_path / "disk" / LOCK_FILE).exists()


@pytest.mark.skipif(IS_ROOT, reason="root writes into read-only directories (mode bits ignored)")
@pytest.mark.parametrize("where", ["parent", "directory"])
def test_a_read_only_directory_is_refused(tmp_path: Path, where: str) -> None:
    parent = tmp_path / "ro"
    parent.mkdir()
    target = parent / "run"
    if where == "directory":
        target.mkdir()
        target.chmod(0o555)
    else:
        parent.chmod(0o555)
    try:
        refused(target, "Permission denied")
    finally:
        parent.chmod(0o755)
        if target.exists():
            target.chmod(0o755)


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_a_directory_that_cannot_be_created_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """What a read-only mount or a read-only working directory does (simulated: tests may run
    as root, for whom mode bits change nothing)."""

    def mkdir(path: Any, *args: Any, **kwargs: Any) -> None:
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(os, "mkdir", mkdir)
    refused(tmp_path / "run", os.strerror(code))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_an_existing_directory_that_cannot_be_written_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    real_open = os.open

    def open_(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & os.O_CREAT:
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)
    refused(tmp_path, "is not writable")
    run = make_run(tmp_path / "run")
    refused(run, "is not writable", resume=True)


# -- what the directory already holds ------------------------------------------------------


def test_a_directory_of_other_files_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "mine"
    path.mkdir()
    (path / "metrics.csv").write_text("my own data\n")
    message = refused(path, "holds no pgrl run")
    assert "metrics.csv" in message and "--overwrite" in message
    assert files_in(path) == {"metrics.csv"}  # not even a lock file was written
    assert (path / "metrics.csv").read_text() == "my own data\n"


def test_a_finished_run_is_refused_pointing_at_resume(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    before = files_in(run)
    refused(run, "already holds a run; continue it with `pgrl resume")
    assert files_in(run) == before


def test_a_run_without_a_checkpoint_is_refused_pointing_at_overwrite(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", checkpoint=False)
    refused(run, "stopped before its first checkpoint; start it again with --overwrite")


@pytest.mark.parametrize("marker", RUN_MARKERS)
def test_each_marker_makes_a_run(tmp_path: Path, marker: str) -> None:
    (tmp_path / marker).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / marker).write_text("x")
    assert holds_run(tmp_path)


# -- overwrite -----------------------------------------------------------------------------


def test_overwrite_moves_the_whole_old_run_aside(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    old = files_in(run)
    rundir = RunDir(run, overwrite=True)
    with rundir as entered:
        assert entered == run
        # nothing of the old run is left where the new one writes
        assert files_in(run) == {LOCK_FILE}
        assert rundir.replaced is not None
        assert rundir.replaced.parent == run.parent
        assert rundir.replaced.name.startswith("run.replaced-")
        assert files_in(rundir.replaced) == old | {LOCK_FILE}
        assert (rundir.replaced / "checkpoints" / "last.safetensors").read_text() == "old"


def test_overwrite_twice_keeps_both_old_runs(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", tag="first")
    with RunDir(run, overwrite=True) as entered:
        make_run(entered / "x")  # something in the second run
        (entered / "config.json").write_text('{"algo": "second"}')
    with RunDir(run, overwrite=True):
        pass
    aside = sorted(p for p in tmp_path.iterdir() if p.name.startswith("run.replaced-"))
    assert len(aside) == 2
    configs = {(p / "config.json").read_text() for p in aside}
    assert configs == {'{"algo": "first"}', '{"algo": "second"}'}


def test_overwrite_of_a_foreign_directory_moves_it_aside_intact(tmp_path: Path) -> None:
    path = tmp_path / "mine"
    path.mkdir()
    (path / "thesis.tex").write_text("years of work")
    rundir = RunDir(path, overwrite=True)
    with rundir:
        assert files_in(path) == {LOCK_FILE}
    assert rundir.replaced is not None
    assert (rundir.replaced / "thesis.tex").read_text() == "years of work"


def test_overwrite_of_an_empty_directory_moves_nothing(tmp_path: Path) -> None:
    rundir = RunDir(tmp_path / "run", overwrite=True)
    with rundir:
        pass
    assert rundir.replaced is None
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_overwrite_of_a_run_in_use_is_refused_and_moves_nothing(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    with RunDir(run, resume=True):
        refused(run, f"PID {os.getpid()}", overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    assert (run / "checkpoints" / "last.safetensors").read_text() == "old"


def test_overwrite_whose_move_fails_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run(tmp_path / "run")

    def rename(*args: Any) -> None:
        raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))

    monkeypatch.setattr(os, "rename", rename)
    refused(run, "cannot move the old run", overwrite=True)
    assert (run / "checkpoints" / "last.safetensors").read_text() == "old"


# -- resume --------------------------------------------------------------------------------


def test_resume_locks_a_run_and_moves_nothing(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    before = files_in(run)
    with RunDir(run, resume=True) as entered:
        assert entered == run
        assert files_in(run) == before | {LOCK_FILE}


def test_resume_of_a_missing_or_empty_directory_is_refused(tmp_path: Path) -> None:
    refused(tmp_path / "absent", "does not exist", resume=True)
    assert not (tmp_path / "absent").exists()
    refused(tmp_path, "holds no run", resume=True)


@pytest.mark.parametrize("name", [n for n in RUN_FILES if n != LOCK_FILE])
def test_resume_refuses_a_symlink_where_pgrl_writes_and_never_follows_it(
    tmp_path: Path, name: str
) -> None:
    run = make_run(tmp_path / "run")
    outside = tmp_path / "outside"
    if name in ("checkpoints", "tb"):
        outside.mkdir()
        (outside / "precious").write_text("keep")
    else:
        outside.write_text("keep")
    target = run / name
    if target.is_dir():
        for child in target.iterdir():
            child.unlink()
        target.rmdir()
    elif target.exists():
        target.unlink()
    target.symlink_to(outside)
    refused(run, "symbolic link", resume=True)
    if outside.is_dir():
        assert files_in(outside) == {"precious"}
    else:
        assert outside.read_text() == "keep"


def test_a_symlinked_lock_file_is_refused(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    (tmp_path / "outside").write_text("keep")
    (run / LOCK_FILE).symlink_to(tmp_path / "outside")
    refused(run, "symbolic link", resume=True)
    assert (tmp_path / "outside").read_text() == "keep"


# -- the lock ------------------------------------------------------------------------------


def test_a_second_writer_is_refused_naming_the_directory_and_the_pid(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with RunDir(run):
        (run / "config.json").write_text("{}")
        (run / "checkpoints").mkdir()
        (run / "checkpoints" / "last.safetensors").write_text("x")
        message = refused(run, "in use by another pgrl training", resume=True)
        assert str(run) in message and f"PID {os.getpid()}" in message
    with RunDir(run, resume=True):  # released at exit
        pass


def test_the_lock_is_released_when_the_block_raises(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    with pytest.raises(RuntimeError), RunDir(run, resume=True):
        raise RuntimeError("training failed")
    with RunDir(run, resume=True):
        pass


def _hold_lock_in_a_subprocess(run: Path) -> subprocess.Popen[str]:
    code = (
        "import sys, time\n"
        "from pgrl.rundir import RunDir\n"
        "with RunDir(sys.argv[1], resume=True):\n"
        "    print('locked', flush=True)\n"
        "    time.sleep(120)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(run)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "locked", (line, proc.stderr.read() if proc.stderr else "")
    return proc


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_lock_of_another_process_blocks_and_its_death_frees_it(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    proc = _hold_lock_in_a_subprocess(run)
    try:
        refused(run, f"PID {proc.pid}", resume=True)
        refused(run, f"PID {proc.pid}", overwrite=True)  # a live run is never moved aside
        assert (run / "checkpoints" / "last.safetensors").read_text() == "old"
        proc.send_signal(signal.SIGKILL)  # no cleanup can run: the kernel drops the lock
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.time() + 10
    while True:  # the lock goes with the process; allow the kernel a moment
        try:
            with RunDir(run, resume=True):
                assert (run / LOCK_FILE).read_text().strip() == str(os.getpid())
                break
        except ConfigError:
            assert time.time() < deadline
            time.sleep(0.1)


# -- write_text_atomically -----------------------------------------------------------------


def test_write_text_atomically_writes_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    write_text_atomically(path, '{"a": 1}')
    assert path.read_text() == '{"a": 1}'
    write_text_atomically(path, "ü" * 3)
    assert path.read_text(encoding="utf-8") == "ü" * 3
    assert files_in(tmp_path) == {"config.json"}


def test_write_text_atomically_replaces_a_symlink_without_following_it(tmp_path: Path) -> None:
    (tmp_path / "outside").write_text("keep")
    path = tmp_path / "summary.json"
    path.symlink_to(tmp_path / "outside")
    write_text_atomically(path, "new")
    assert not path.is_symlink() and path.read_text() == "new"
    assert (tmp_path / "outside").read_text() == "keep"


class _FullDisk:
    """Stands in for ``os.write`` or ``os.fsync``: raises ENOSPC."""

    def __call__(self, *args: Any) -> Any:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("failing", ["write", "fsync"])
@pytest.mark.parametrize("existed", [True, False], ids=["old-file", "no-file"])
def test_a_full_disk_is_one_line_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str, existed: bool
) -> None:
    path = tmp_path / "config.json"
    if existed:
        path.write_text("old")
    monkeypatch.setattr(os, failing, _FullDisk())
    with pytest.raises(PgrlError) as caught:
        write_text_atomically(path, "new" * 1000)
    monkeypatch.undo()
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message and "No space left on device" in message
    assert ("previous file is kept" if existed else "nothing was written") in message
    assert files_in(tmp_path) == ({"config.json"} if existed else set())
    if existed:
        assert path.read_text() == "old"


def test_write_text_atomically_into_a_missing_directory_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(PgrlError, match="No such file or directory"):
        write_text_atomically(tmp_path / "absent" / "config.json", "{}")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("name", ["metrics.csv", "tb"])
def test_resume_refuses_what_pgrl_cannot_write_where_it_writes(tmp_path: Path, name: str) -> None:
    run = make_run(tmp_path / "run")
    target = run / name
    if target.is_dir():
        for child in target.iterdir():
            child.unlink()
        target.rmdir()
        target.write_text("a file where pgrl keeps a directory")
        match = "is not a directory"
    else:
        target.unlink()
        os.mkfifo(target)
        match = "is not a regular file"
    refused(run, match, resume=True)


@pytest.mark.parametrize("where", [".", ".."])
def test_overwrite_never_moves_the_working_directory_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    work = tmp_path / "project"
    work.mkdir()
    (work / "train.py").write_text("mine")
    monkeypatch.chdir(work)
    refused(Path(where), "holds the working directory", overwrite=True)
    assert (work / "train.py").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]

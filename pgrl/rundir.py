"""Run directories: one run per directory, one writer at a time, nothing of another run mixed in.

:class:`RunDir` prepares and locks the directory a training (or a resumed training) writes to:

- it refuses, in one line (:class:`~pgrl.errors.ConfigError`, exit status 2 in the CLI), a path
  that is a file or lies under a file, a path too long for the filesystem, a directory pgrl
  cannot write (found by trying, so it holds for root, ACLs and read-only mounts alike), a
  directory that holds files but no run (unless ``overwrite``), a directory that already holds
  a run (unless ``overwrite`` or ``resume``), and a run directory in which one of the names
  pgrl writes (``config.json``, ``metrics.csv``, ``checkpoints/`` ...) is a symbolic link:
  pgrl never writes through a link to somewhere else;
- it holds an exclusive lock, ``fcntl.flock`` on ``PATH/.pgrl.lock``, for the whole training.
  A second training or resume into the same directory stops at once with a line naming the
  directory and the PID that holds it. The kernel drops the lock when its process dies, however
  it dies, so a lock left by a killed run never blocks the next one;
- ``overwrite=True`` moves an existing run (or any existing content) aside, by one atomic
  rename, to the sibling ``PATH.replaced-<YYYYmmdd-HHMMSS>`` before the new run starts in a
  fresh, empty ``PATH``. Nothing of the old run (checkpoint, model, TensorBoard events,
  metrics) stays in ``PATH``, so a failing new run can never name the old run's checkpoint as
  its own and ``pgrl resume``/``pgrl eval`` never find the old run; and nothing is deleted
  either, so ``--overwrite`` on the wrong directory loses no data (delete the ``.replaced-``
  directory once it is not needed). A directory being trained into by another process is
  never moved: the lock is taken before the move.

:func:`write_text_atomically` writes a metadata file (``config.json``, ``summary.json``) so that
a crash or a full disk leaves either the old file or the new one, never a partial one.

Locking needs ``fcntl`` (Linux, macOS, the BSDs); elsewhere the directory checks still run
but no lock is taken.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from datetime import datetime
from pathlib import Path
from types import TracebackType

from pgrl.checkpoint import _fsync_directory, _reason, replace_atomically
from pgrl.errors import ConfigError, PgrlError

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".pgrl.lock"
"""The lock file inside a run directory; it holds the PID of the process training there."""

CONFIG_FILE = "config.json"
"""Written first by every run: its presence is what makes a directory a run."""

RUN_FILES = (
    CONFIG_FILE,
    "metrics.csv",
    "summary.json",
    "model.safetensors",
    "learning-curve.png",
    "checkpoints",
    "checkpoints/last.safetensors",
    "tb",
    LOCK_FILE,
)
"""The names pgrl writes inside a run directory; none of them may be a symbolic link."""

_RUN_DIRECTORIES = ("checkpoints", "tb")

RUN_MARKERS = (CONFIG_FILE, "checkpoints/last.safetensors", "model.safetensors")
"""A directory holding any of these holds a run (``pgrl.agent.CHECKPOINT_FILE``, ``MODEL_FILE``)."""

REPLACED_SUFFIX = ".replaced-"
"""``PATH`` + this + a timestamp: where ``overwrite=True`` moves the run it replaces."""

_LOCK_ATTEMPTS = 5


class RunDir:
    """Prepare, check and lock a run directory for the length of a ``with`` block.

    Args:
        path: the run directory; created (with its parents) when missing.
        overwrite: replace what ``path`` holds: it is moved aside to
            ``PATH.replaced-<timestamp>`` (see :attr:`replaced`) and ``path`` starts empty.
        resume: continue the run ``path`` holds: it must hold one; nothing is moved.

    ``__enter__`` returns ``path`` as a :class:`~pathlib.Path`, existing, checked and locked;
    ``__exit__`` releases the lock (the lock file stays, holding the last PID).

    Raises:
        ConfigError: on entering, with one line naming the directory and the problem.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as root:
        ...     with RunDir(Path(root) / "run") as run_dir:
        ...         (run_dir / "config.json").write_text("{}")
        ...     with RunDir(Path(root) / "run", resume=True) as run_dir:
        ...         run_dir.name
        2
        'run'
    """

    def __init__(self, path: str | Path, *, overwrite: bool = False, resume: bool = False) -> None:
        if overwrite and resume:
            raise ConfigError("a run directory is either resumed or overwritten, not both")
        if not str(path).strip():
            raise ConfigError("the run directory must be named, got an empty path")
        self.path = Path(path)
        self.overwrite = overwrite
        self.resume = resume
        self.replaced: Path | None = None
        """Where ``overwrite=True`` moved the previous contents, or None when nothing moved."""
        self._lock_fd = -1

    def __enter__(self) -> Path:
        try:
            if self.resume:
                self._enter_resume()
            else:
                self._enter_new()
        except BaseException:
            self._release()
            raise
        return self.path

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release()

    @property
    def locked(self) -> bool:
        """Whether this object holds the directory's lock now."""
        return self._lock_fd >= 0

    # -- the two ways in -------------------------------------------------------------------

    def _enter_resume(self) -> None:
        path = self.path
        kind = _kind(path)
        if kind is None:
            raise ConfigError(f"run directory {_show(path)} does not exist")
        if kind != "dir":
            raise ConfigError(f"run directory {_show(path)} is a file, not a directory")
        if not holds_run(path):
            raise ConfigError(
                f"{_show(path)} holds no run (no {CONFIG_FILE}): nothing to resume; "
                "start one with `pgrl train ... --run-dir` instead"
            )
        check_no_symlinks(path)
        self._lock(path)
        _probe_writable(path)

    def _enter_new(self) -> None:
        path = self.path
        kind = _kind(path)
        if kind is not None and kind != "dir":
            raise ConfigError(
                f"run directory {_show(path)} is a file, not a directory; choose another --run-dir"
            )
        if kind is None:
            _make_directory(path)
        elif not self.overwrite:
            # refuse before writing anything, not even a lock file, into a directory not ours
            _refuse_existing_contents(path)
        if self.overwrite and kind == "dir" and _contents(path):
            _refuse_moving_the_working_directory(path)
        self._lock(path)
        if self.overwrite:
            if _contents(path):
                self._move_aside(path)
        else:
            _refuse_existing_contents(path)  # again under the lock: another run may have begun
        _probe_writable(path)
        check_no_symlinks(path)

    # -- overwrite ---------------------------------------------------------------------------

    def _move_aside(self, path: Path) -> None:
        """Rename the locked ``path`` to ``PATH.replaced-<time>`` and lock a fresh ``path``."""
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        aside = path.with_name(f"{path.name}{REPLACED_SUFFIX}{stamp}")
        number = 1
        while os.path.lexists(aside):
            number += 1
            aside = path.with_name(f"{path.name}{REPLACED_SUFFIX}{stamp}-{number}")
        try:
            os.rename(path, aside)
        except OSError as error:
            raise ConfigError(
                f"cannot move the old run {_show(path)} aside to {aside.name}: {_reason(error)}; "
                "nothing was changed"
            ) from None
        self.replaced = aside
        old_lock = self._lock_fd  # still held, on the lock file now inside the moved directory
        self._lock_fd = -1
        try:
            try:
                os.mkdir(path)
            except FileExistsError:
                raise ConfigError(
                    f"{_show(path)} was created by another process while its old run was moved "
                    f"aside to {aside.name}; try again"
                ) from None
            except OSError as error:
                raise ConfigError(
                    f"cannot create run directory {_show(path)} (the old run is in "
                    f"{aside.name}): {_reason(error)}"
                ) from None
            self._lock(path)
        finally:
            os.close(old_lock)

    # -- the lock ----------------------------------------------------------------------------

    def _lock(self, path: Path) -> None:
        """Take ``PATH/.pgrl.lock`` exclusively, or stop naming the PID that holds it."""
        lock_path = path / LOCK_FILE
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        for _ in range(_LOCK_ATTEMPTS):
            try:
                fd = os.open(lock_path, flags, 0o644)
            except OSError as error:
                raise _unwritable(path, error) from None
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise ConfigError(
                        f"{_show(lock_path)} is not a regular file; remove it and try again"
                    )
                if fcntl is None:
                    self._lock_fd = fd
                    return
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = _read_pid(fd)
                    who = f"PID {holder}" if holder else "another process"
                    raise ConfigError(
                        f"run directory {_show(path)} is in use by another pgrl training ({who}); "
                        "wait for it to end or choose another run directory"
                    ) from None
                except OSError as error:  # e.g. a filesystem that cannot lock (some NFS)
                    raise ConfigError(
                        f"cannot lock run directory {_show(path)}: {_reason(error)}"
                    ) from None
                # The file locked must still be the one at the path: a run that was moved
                # aside meanwhile (overwrite) took its lock file with it.
                if not _same_file(fd, lock_path):
                    os.close(fd)
                    continue
                _write_pid(fd, lock_path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.close(fd)
                raise
            self._lock_fd = fd
            return
        raise ConfigError(f"cannot lock run directory {_show(path)}: it keeps changing; try again")

    def _release(self) -> None:
        if self._lock_fd >= 0:
            # closing drops the flock; the file stays (removing it would race with a new locker)
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = -1


def holds_run(path: Path) -> bool:
    """Whether directory ``path`` holds a pgrl run (a config, a checkpoint or a model)."""
    return any(os.path.lexists(path / name) for name in RUN_MARKERS)


def check_no_symlinks(path: Path) -> None:
    """Refuse a run directory in which a name pgrl writes (:data:`RUN_FILES`) is a symlink,
    or is not what pgrl writes there (a FIFO or a device for a file, a file for ``tb/``).

    Raises:
        ConfigError: naming the entry (and, for a link, where it points).
    """
    for name in RUN_FILES:
        target = path / name
        try:
            mode = os.lstat(target).st_mode
        except FileNotFoundError:
            continue
        except OSError as error:
            raise _unusable(target, error, "cannot be checked") from None
        if stat.S_ISLNK(mode):
            try:
                where = os.readlink(target)
            except OSError:
                where = "?"
            raise ConfigError(
                f"{_show(target)} is a symbolic link (to {where}); pgrl does not write through "
                "links: replace it with a regular file or directory, or choose another run "
                "directory"
            )
        wanted = stat.S_ISDIR if name in _RUN_DIRECTORIES else stat.S_ISREG
        if not wanted(mode):
            what = "directory" if name in _RUN_DIRECTORIES else "regular file"
            raise ConfigError(
                f"{_show(target)} is not a {what} (pgrl writes one there); move it away or "
                "choose another run directory"
            )


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` so that it is the old file or the new one, whole.

    The text goes to a new temporary file ``.<name>.tmp-<pid>-<random>`` beside ``path``
    (never through a symlink), is fsynced, then renamed over ``path``; the directory is fsynced
    last (where the filesystem can). A link at ``path`` is replaced, never followed.

    Raises:
        PgrlError: one line naming the file and the reason (e.g. "No space left on device");
            the temporary file is removed and whatever was at ``path`` is kept.
    """
    path = Path(path)
    try:
        replace_atomically(path, text.encode("utf-8"))
    except OSError as error:
        kept = "the previous file is kept" if os.path.lexists(path) else "nothing was written"
        raise PgrlError(f"could not write {path}: {_reason(error)}; {kept}") from None
    _fsync_directory(path)  # the directory holding it


# -- helpers --------------------------------------------------------------------------------


def _kind(path: Path) -> str | None:
    """``"dir"``, ``"file"`` (anything else) or None when nothing is at ``path``.

    A symlink to a directory counts as a directory: the run directory itself may be a link
    (say to a larger disk); only the names inside it must not be.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.lexists(path):
            raise ConfigError(
                f"run directory {_show(path)} is a broken symbolic link (to "
                f"{os.readlink(path)}); remove it or choose another --run-dir"
            ) from None
        return None
    except NotADirectoryError:
        raise ConfigError(
            f"run directory {_show(path)} cannot exist: {_show(_file_above(path))} is a file, "
            "not a directory"
        ) from None
    except OSError as error:
        raise _unusable(path, error) from None
    return "dir" if stat.S_ISDIR(mode) else "file"


def _make_directory(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (NotADirectoryError, FileExistsError):
        above = _file_above(path)
        raise ConfigError(
            f"run directory {_show(path)} cannot be created: {_show(above)} is a file, "
            "not a directory"
        ) from None
    except OSError as error:
        raise _unusable(path, error, "cannot be created") from None


def _contents(path: Path) -> list[str]:
    """The names in ``path`` other than the lock file."""
    try:
        return [name for name in os.listdir(path) if name != LOCK_FILE]
    except OSError as error:
        raise _unusable(path, error, "cannot be read") from None


def _refuse_existing_contents(path: Path) -> None:
    names = _contents(path)
    if not names:
        return
    if holds_run(path):
        if not os.path.lexists(path / "checkpoints/last.safetensors") and not os.path.lexists(
            path / "model.safetensors"
        ):
            raise ConfigError(
                f"{_show(path)} already holds a run that stopped before its first checkpoint; "
                "start it again with --overwrite (overwrite=True) or choose another run "
                "directory"
            )
        raise ConfigError(
            f"{_show(path)} already holds a run; continue it with `pgrl resume {path}`, "
            "choose another run directory, or pass overwrite=True (--overwrite)"
        )
    shown = ", ".join(sorted(names)[:3]) + (", ..." if len(names) > 3 else "")
    raise ConfigError(
        f"{_show(path)} is not empty ({shown}) and holds no pgrl run; choose another run "
        "directory, or pass --overwrite (overwrite=True) to move its contents aside"
    )


def _refuse_moving_the_working_directory(path: Path) -> None:
    """``overwrite`` moves ``path`` aside: never the working directory or one above it."""
    try:
        here, there = Path.cwd().resolve(), path.resolve()
    except OSError:
        return
    if here == there or there in here.parents:
        raise ConfigError(
            f"--overwrite would move {_show(path)} aside, but it holds the working directory; "
            "choose a run directory of its own (e.g. runs/NAME)"
        )


def _probe_writable(path: Path) -> None:
    """Create and remove a file in ``path``: the only test of writability that never lies."""
    probe = path / f".pgrl-probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0))
    except OSError as error:
        raise _unwritable(path, error) from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def _unwritable(path: Path, error: OSError) -> ConfigError:
    return _unusable(path, error, "is not writable")


def _unusable(path: Path, error: OSError, what: str = "cannot be used") -> ConfigError:
    if error.errno == errno.ENAMETOOLONG:
        return ConfigError(
            f"run directory {_show(path)} is too long a path for this filesystem "
            f"({len(str(path))} characters; a name may have at most 255 bytes); "
            "choose a shorter --run-dir"
        )
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ConfigError(
            f"run directory {_show(path)} {what}: {_reason(error)}; choose a directory you can "
            "write (--run-dir)"
        )
    if error.errno == errno.ELOOP:
        return ConfigError(
            f"run directory {_show(path)} {what}: it contains a symbolic link where pgrl "
            "writes (or a loop of links)"
        )
    return ConfigError(f"run directory {_show(path)} {what}: {_reason(error)}")


def _file_above(path: Path) -> Path:
    """The nearest ancestor of ``path`` that exists but is not a directory (or ``path``)."""
    for candidate in reversed([path, *path.parents]):
        try:
            mode = os.stat(candidate).st_mode
        except OSError:
            return candidate
        if not stat.S_ISDIR(mode):
            return candidate
    return path


def _same_file(fd: int, path: Path) -> bool:
    try:
        now = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _write_pid(fd: int, lock_path: Path) -> None:
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    except OSError as error:
        raise PgrlError(f"could not write {lock_path}: {_reason(error)}") from None


def _show(path: Path, limit: int = 120) -> str:
    """``path`` as text, shortened in the middle when absurdly long (one readable line)."""
    text = str(path)
    if len(text) <= limit:
        return text
    return f"{text[: limit // 2]}...{text[-limit // 2 :]}"


__all__ = [
    "LOCK_FILE",
    "RUN_FILES",
    "RUN_MARKERS",
    "RunDir",
    "check_no_symlinks",
    "holds_run",
    "write_text_atomically",
]

"""Metrics of a training run: a CSV file, TensorBoard scalars and a progress display.

The training loop hands :class:`RunLogger` one ``dict[str, float]`` per update. The logger

- appends it as one row of ``run_dir/metrics.csv`` (the source of truth for plots, read back by
  :func:`read_metrics`),
- mirrors it to TensorBoard under Stable-Baselines3's tag names, so curves from both libraries
  land side by side in one TensorBoard,
- and keeps a progress display current: a tqdm bar on a terminal, plain periodic lines in a log
  file or CI output, where a bar's carriage returns would turn into noise.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import errno
import io
import math
import os
import stat
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO, cast

import numpy as np
from tqdm import tqdm

from pgrl.errors import PgrlError
from pgrl.rundir import write_text_atomically

METRICS_FILE = "metrics.csv"
"""Name of the metrics file inside a run directory."""

TB_DIR = "tb"
"""Name of the TensorBoard log directory inside a run directory."""

_FIXED_COLUMNS = ("env_steps", "time_s")

# Columns declared up front, in this order, when the logger knows the algorithm: two runs of
# one algorithm then share a header, whenever their first episode ended or their first
# evaluation came. A metric not declared here (a callback's, a diagnostic's) is added after
# them when first seen.
_LEADING_COLUMNS = ("episode_return_mean", "episode_length_mean")
_TRAILING_COLUMNS = (
    "n_updates",
    "steps_per_second",
    "eval_return_mean",
    "eval_return_std",
    "train_seconds",
)
_SB3_ON_POLICY = ("value_mse", "explained_variance", "learning_rate", "std")
ALGO_COLUMNS: dict[str, tuple[str, ...]] = {
    "reinforce": ("policy_loss", "entropy", "value_loss", *_SB3_ON_POLICY),
    "a2c": ("policy_loss", "value_loss", "entropy", *_SB3_ON_POLICY),
    "ppo": (
        "policy_loss",
        "value_loss",
        "entropy",
        "approx_kl",
        "clip_fraction",
        *_SB3_ON_POLICY,
        "clip_range",
    ),
    "ddpg": ("value_loss", "policy_loss", "value_mse", "learning_rate"),
    "td3": ("value_loss", "policy_loss", "value_mse", "learning_rate"),
    "sac": (
        "value_loss",
        "policy_loss",
        "alpha_loss",
        "alpha",
        "entropy",
        "value_mse",
        "ent_coef_loss",
        "learning_rate",
    ),
}
"""The update metrics of each algorithm, in their ``metrics.csv`` order (a cell stays empty
where a metric does not apply: ``std`` with a discrete policy, REINFORCE's critic metrics
without a value baseline, SAC's ``ent_coef_loss`` with a fixed α)."""

# Stable-Baselines3's tags, so that pgrl and SB3 runs share panels in one TensorBoard. A key
# gets SB3's tag only where pgrl's value has SB3's definition (SB3 2.x: common/
# base_class.py, on_policy_algorithm.py, a2c.py, ppo.py, td3.py, sac.py, callbacks.py).
# A quantity pgrl defines otherwise keeps a pgrl tag, so that no panel mixes two definitions:
# value_loss is ½·MSE (or Huber) where SB3 logs the MSE; SAC's alpha_loss is
# −mean(α(log π + H̄)) where SB3's ent_coef_loss uses log α. The algorithms also report SB3's
# definitions (value_mse, explained_variance, learning_rate, std, ent_coef_loss, ...), each
# computed from the tensors of pgrl's own loss, and those fill SB3's tags.
_TB_TAGS: dict[str, str] = {
    "episode_return_mean": "rollout/ep_rew_mean",  # both: mean over the last 100 episodes
    "episode_length_mean": "rollout/ep_len_mean",
    "eval_return_mean": "eval/mean_reward",
    "eval_return_std": "eval/std_reward",
    "eval_length_mean": "eval/mean_ep_length",
    "learning_rate": "train/learning_rate",  # the actor's / policy's optimizer's, now
    "explained_variance": "train/explained_variance",  # 1 − Var(G − V)/Var(G), V before update
    "approx_kl": "train/approx_kl",  # both mean[(ρ − 1) − log ρ]
    "clip_fraction": "train/clip_fraction",  # both mean[|ρ − 1| > ε]
    "clip_range": "train/clip_range",  # ε
    "std": "train/std",  # mean exp(log σ) of a state-independent Gaussian policy
    "n_updates": "train/n_updates",
    "value_mse": "train/value_loss",  # mean (G − V)², SB3's F.mse_loss
    "ent_coef_loss": "train/ent_coef_loss",  # SAC: −mean[log α (log π + H̄)]
    "value_loss": "pgrl/value_loss",
    "steps_per_second": "pgrl/steps_per_second",  # since the previous row; time/fps is the run's
    "train_seconds": "pgrl/train_seconds",
    "policy_loss": "train/policy_loss",
    "entropy": "train/entropy_loss",
}
# On-policy: SB3 logs entropy_loss = −mean entropy, so pgrl's (positive) entropy is negated.
_NEGATED = frozenset({"entropy"})
_TB_TAGS_BY_ALGO: dict[str, dict[str, str]] = {
    "ppo": {"policy_loss": "train/policy_gradient_loss"},  # −mean min(ρA, clip(ρ)A)
    "ddpg": {"policy_loss": "train/actor_loss", "value_mse": "train/critic_loss"},  # MSE
    "td3": {"policy_loss": "train/actor_loss", "value_mse": "train/critic_loss"},  # ΣMSE_i
    "sac": {
        "policy_loss": "train/actor_loss",  # mean(α log π − min Q)
        "value_mse": "train/critic_loss",  # ½ Σ_i MSE_i
        "alpha": "train/ent_coef",
        "alpha_loss": "pgrl/alpha_loss",
        "entropy": "train/entropy",  # −mean log π, positive: SB3 logs no entropy for SAC
    },
}
_TB_NOT_NEGATED = {("sac", "entropy")}


def _clock() -> float:
    """Wall seconds on a monotonic clock; a module function so tests can substitute it."""
    return time.perf_counter()


def _keep_rows_up_to(path: Path, env_steps: int) -> list[str]:
    """Drop the rows logged after ``env_steps`` (by a process that was then interrupted).

    The kept rows replace the file atomically (:func:`_rewrite_csv`). A last row without its
    line end, or a row whose step is not a number (cut short by a crash), is dropped too. Returns the metric columns of the
    header (after env_steps and time_s).
    """
    try:
        with _open_csv(path, "r") as src:
            text = src.read()
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except OSError as exc:
        raise PgrlError(f"could not read {path}: {_reason(exc)}") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise PgrlError(f"metrics file {path} is not a readable CSV: {exc}") from None
    if not rows:
        return []
    if not text.endswith(("\n", "\r")) and len(rows) > 1:
        rows.pop()  # a last row without its line end was cut short by a crash mid-write
    header, body = rows[0], rows[1:]
    kept = [row for row in body if row and _step_of(row) <= env_steps]
    _rewrite_csv(path, header, kept)
    return header[len(_FIXED_COLUMNS) :]


def _step_of(row: list[str]) -> float:
    """The env_steps cell of a row as a number; +inf (so the row is dropped) when unreadable."""
    try:
        step = float(row[0])
    except ValueError:
        return math.inf
    return step if math.isfinite(step) else math.inf


def _rewrite_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    """Replace ``path`` by ``header`` and ``rows`` atomically: the old file or the new, whole.

    Raises:
        PgrlError: one line naming the file and the reason; no temporary file is left.
    """
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    write_text_atomically(path, text.getvalue())


def _open_csv(path: Path, mode: str) -> TextIO:
    """Open ``path`` as CSV text for ``mode`` "r", "w" or "a", never following a symlink.

    Raises:
        OSError: as ``open`` does; a symlink at ``path`` raises ELOOP instead of being
            followed, and a FIFO or a device EINVAL instead of blocking.
    """
    flags = {
        "r": os.O_RDONLY,
        "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
        "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    }[mode]
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    not_regular = OSError(errno.EINVAL, "it is not a regular file (a pipe or a device?)", str(path))
    try:
        existing = os.lstat(path).st_mode
    except FileNotFoundError:
        existing = None
    if existing is not None and stat.S_ISLNK(existing):  # O_NOFOLLOW is missing on some systems
        raise OSError(errno.ELOOP, "it is a symbolic link, which pgrl does not follow", str(path))
    if existing is not None and not stat.S_ISREG(existing):
        raise not_regular
    fd = os.open(path, flags | getattr(os, "O_NONBLOCK", 0), 0o644)  # a FIFO must not block
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced since the lstat
            raise not_regular
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return cast(TextIO, open(fd, mode, newline="", encoding="utf-8"))
    except BaseException:
        os.close(fd)
        raise


def _reason(exc: OSError) -> str:
    """The human part of an OSError, e.g. "No space left on device"."""
    if exc.errno == errno.ELOOP:
        return "it is a symbolic link, which pgrl does not follow"
    return exc.strerror or str(exc)


def tensorboard_tag(key: str, algo: str | None = None) -> str:
    """Map a metric key to its TensorBoard tag.

    Keys whose pgrl value has Stable-Baselines3's definition get SB3's tag (for ``algo``
    where SB3's name depends on the algorithm); ``value_loss`` (½·MSE) and a few others keep
    a ``pgrl/`` tag; a key that already has a ``/`` (``diag/snr``) is its own tag; any other
    key goes under ``train/``.

    Args:
        key: metric name as passed to :meth:`RunLogger.log`.
        algo: the algorithm's name, or None for the on-policy names.

    Returns:
        The TensorBoard scalar tag.

    >>> tensorboard_tag("episode_return_mean"), tensorboard_tag("policy_loss", "ppo")
    ('rollout/ep_rew_mean', 'train/policy_gradient_loss')
    >>> tensorboard_tag("value_loss"), tensorboard_tag("grad_norm"), tensorboard_tag("diag/snr")
    ('pgrl/value_loss', 'train/grad_norm', 'diag/snr')
    """
    if "/" in key:  # already a tag: the diagnostics' diag/...
        return key
    tag = _TB_TAGS_BY_ALGO.get(algo or "", {}).get(key)
    if tag is None:
        tag = _TB_TAGS.get(key, f"train/{key}")
    return tag


def tensorboard_scalar(key: str, value: float, algo: str | None = None) -> tuple[str, float]:
    """The TensorBoard tag and value of a metric: :func:`tensorboard_tag`, and the value
    negated where SB3's tag holds the negative of pgrl's quantity (entropy → entropy_loss).

    >>> tensorboard_scalar("entropy", 0.5, "a2c"), tensorboard_scalar("entropy", 0.5, "sac")
    (('train/entropy_loss', -0.5), ('train/entropy', 0.5))
    """
    negate = key in _NEGATED and (algo or "", key) not in _TB_NOT_NEGATED
    return tensorboard_tag(key, algo), -value if negate else value


def metric_columns(algo: str | None) -> tuple[str, ...]:
    """The metric columns of ``metrics.csv`` (after env_steps and time_s) declared for
    ``algo``, in order; empty when the algorithm is unknown (columns then come as seen).

    >>> metric_columns("a2c")  # doctest: +NORMALIZE_WHITESPACE
    ('episode_return_mean', 'episode_length_mean', 'policy_loss', 'value_loss', 'entropy',
     'value_mse', 'explained_variance', 'learning_rate', 'std',
     'n_updates', 'steps_per_second', 'eval_return_mean', 'eval_return_std', 'train_seconds')
    """
    if algo is None or algo not in ALGO_COLUMNS:
        return ()
    return (*_LEADING_COLUMNS, *ALGO_COLUMNS[algo], *_TRAILING_COLUMNS)


def _format_duration(seconds: float) -> str:
    """Format seconds as ``H:MM:SS``; ``?`` when unknown."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    return str(datetime.timedelta(seconds=round(seconds)))


def _return_text(value: float) -> str:
    """The progress display's return, with what it means."""
    return f"return {value:.1f} (mean of last 100 episodes)"


def _format_cell(value: float) -> str:
    """CSV text of one metric; ``repr`` keeps every digit and spells non-finite as nan/inf."""
    return repr(float(value))


class RunLogger:
    """Writes the metrics of one training run and shows its progress.

    Args:
        run_dir: directory for ``metrics.csv`` and ``tb/``; created if missing. ``None`` writes
            nothing to disk and only shows progress. An existing ``metrics.csv`` there is
            replaced: one logger is one run.
        total_steps: environment steps the run will take; the 100% mark of the progress display.
        tensorboard: also write TensorBoard scalars to ``run_dir/tb/``.
        progress: ``None`` picks a live tqdm bar when ``stream`` is a terminal and plain
            periodic lines otherwise; ``True`` forces the bar; ``False`` shows no progress
            (:meth:`message` still prints).
        print_interval_s: least wall seconds between two plain progress lines.
        stream: where progress and messages go; ``sys.stderr`` by default.
        resume_from: continue the ``metrics.csv`` of an interrupted run, dropping its rows
            after this step.
        algo: the algorithm's name: fixes the CSV's columns up front
            (:func:`metric_columns`) and picks its Stable-Baselines3 TensorBoard tags
            (:func:`tensorboard_tag`). None: columns in first-seen order, on-policy tags.

    Example::

        with RunLogger(Path("runs/ppo-cartpole-0"), total_steps=100_000) as logger:
            for env_steps, metrics in training():
                logger.log(env_steps, metrics)
    """

    def __init__(
        self,
        run_dir: Path | None,
        total_steps: int,
        *,
        tensorboard: bool = True,
        progress: bool | None = None,
        print_interval_s: float = 10.0,
        stream: TextIO | None = None,
        resume_from: int | None = None,
        algo: str | None = None,
    ) -> None:
        if total_steps <= 0:
            raise PgrlError(f"total_steps must be a positive number of steps, got {total_steps}.")
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.total_steps = int(total_steps)
        self.print_interval_s = float(print_interval_s)
        self._stream: TextIO = stream if stream is not None else sys.stderr
        self._start = _clock()
        self._closed = False
        self.algo = algo
        # time/fps is SB3's: steps of this process (a resumed run counts from its checkpoint)
        # over the wall time since the logger started
        self._start_steps = 0 if resume_from is None else int(resume_from)

        self._csv_file: Any = None  # an open text file, or None when nothing goes to disk
        self._csv_writer: Any = None
        # metric columns after env_steps and time_s: the declared ones, then first-seen order
        self._keys: list[str] = []
        self._tb_writer: Any = None
        if self.run_dir is not None:
            csv_path = self.run_dir / METRICS_FILE
            try:
                self.run_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise PgrlError(f"could not create {self.run_dir}: {_reason(exc)}") from None
            if tensorboard and os.path.islink(self.run_dir / TB_DIR):
                raise PgrlError(
                    f"{self.run_dir / TB_DIR} is a symbolic link; pgrl does not write through "
                    "links: replace it with a directory or pass tensorboard=False"
                )
            has_rows = False
            if resume_from is not None and os.path.lexists(csv_path):
                self._keys = _keep_rows_up_to(csv_path, resume_from)
                has_rows = os.stat(csv_path, follow_symlinks=False).st_size > 0
            try:
                self._csv_file = _open_csv(csv_path, "a" if has_rows else "w")
            except OSError as exc:
                raise PgrlError(f"could not write {csv_path}: {_reason(exc)}") from None
            self._csv_writer = csv.writer(self._csv_file)
            if not has_rows:
                self._keys = list(metric_columns(algo))
                header = [*_FIXED_COLUMNS, *self._keys]
                self._write(lambda: self._csv_writer.writerow(header))
            if tensorboard:
                # Imported here: it costs about a second and a progress-only logger never needs it.
                from torch.utils.tensorboard import SummaryWriter

                # flush_secs=30 rather than the default 120 so a live TensorBoard keeps up.
                # on resume, purge_step hides events logged after the checkpoint by the
                # interrupted process, so TensorBoard shows one continuous curve
                try:
                    self._tb_writer = SummaryWriter(
                        log_dir=str(self.run_dir / TB_DIR),
                        flush_secs=30,
                        purge_step=None if resume_from is None else resume_from + 1,
                    )
                except OSError as exc:
                    self._abandon_csv()
                    raise PgrlError(self._tb_error(exc)) from None

        if progress is None:
            isatty = getattr(self._stream, "isatty", None)
            mode = "bar" if callable(isatty) and isatty() else "plain"
        else:
            mode = "bar" if progress else "off"
        self._mode = mode
        self._bar: tqdm[Any] | None = None
        if mode == "bar":
            self._bar = tqdm(
                total=self.total_steps,
                unit="step",
                unit_scale=True,
                dynamic_ncols=True,
                file=self._stream,
            )
        self._steps = 0 if resume_from is None else int(resume_from)
        self._return: float | None = None
        # The plain line's steps/s is measured since the previous line, so it tracks the
        # current speed instead of the run's average.
        self._last_print_time = self._start
        self._last_print_steps = self._steps
        self._printed_steps: int | None = None
        if self._bar is not None and self._steps:
            self._bar.update(self._steps)

    @property
    def csv_path(self) -> Path | None:
        """Path of ``metrics.csv``, or ``None`` when the logger writes nothing to disk."""
        return self.run_dir / METRICS_FILE if self.run_dir is not None else None

    def log(self, env_steps: int, metrics: Mapping[str, float]) -> None:
        """Record the metrics of one update at ``env_steps`` environment steps.

        Appends a CSV row (flushed at once, so a crash loses nothing already logged), writes
        TensorBoard scalars and updates the progress display with ``episode_return_mean`` when
        present. Non-finite values are recorded as they are.

        Args:
            env_steps: environment steps taken so far, over all environments.
            metrics: metric name to value; a key not seen before widens the CSV header.

        Raises:
            ValueError: a metric is named ``env_steps`` or ``time_s``.
            RuntimeError: the logger is closed.
            PgrlError: ``metrics.csv`` or the TensorBoard events cannot be written (a full
                disk): one line naming the file and the reason.
        """
        if self._closed:
            raise RuntimeError("RunLogger.log called after close().")
        clash = [key for key in metrics if key in _FIXED_COLUMNS]
        if clash:
            raise ValueError(f"Metric names {clash} are reserved for the CSV's own columns.")
        values = {key: float(value) for key, value in metrics.items()}
        elapsed = _clock() - self._start

        if self._csv_writer is not None:
            new_keys = [key for key in values if key not in self._keys]
            if new_keys:
                self._widen_csv(new_keys)
            row = [str(int(env_steps)), f"{elapsed:.3f}"]
            row += [_format_cell(values[key]) if key in values else "" for key in self._keys]
            self._write(lambda: self._csv_writer.writerow(row))

        if self._tb_writer is not None:
            try:
                step = int(env_steps)
                for key, value in values.items():
                    tag, shown = tensorboard_scalar(key, value, self.algo)
                    self._tb_writer.add_scalar(tag, shown, global_step=step)
                if elapsed > 0:
                    fps = int((step - self._start_steps) / elapsed)  # int, as SB3 logs it
                    self._tb_writer.add_scalar("time/fps", fps, global_step=step)
                self._tb_writer.add_scalar("time/time_elapsed", int(elapsed), global_step=step)
                self._tb_writer.add_scalar("time/total_timesteps", step, global_step=step)
            except OSError as exc:  # e.g. the writer thread met a full disk
                writer, self._tb_writer = self._tb_writer, None
                with contextlib.suppress(OSError):
                    writer.close()
                raise PgrlError(self._tb_error(exc)) from None

        self.progress_update(env_steps, values.get("episode_return_mean"))

    def _write(self, write: Any) -> None:
        """Run ``write`` on the CSV file and flush, so the row is on disk before returning.

        Raises:
            PgrlError: one line naming ``metrics.csv`` and the reason (a full disk: "No space
                left on device"); the rows already written stay, the file is closed.
        """
        try:
            write()
            self._csv_file.flush()
        except OSError as exc:
            self._abandon_csv()
            raise PgrlError(f"could not write {self.csv_path}: {_reason(exc)}") from None

    def _abandon_csv(self) -> None:
        """Close the CSV after a failed write; its unwritten buffer is dropped, not retried."""
        file, self._csv_file, self._csv_writer = self._csv_file, None, None
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()  # flushing the failed buffer again fails again: nothing to save

    def _widen_csv(self, new_keys: list[str]) -> None:
        """Rewrite ``metrics.csv`` with ``new_keys`` appended to the header.

        Earlier rows get empty cells for the new columns. The rewrite goes to a temporary file
        that replaces the old one atomically, so a crash leaves either file whole.
        """
        assert self.csv_path is not None
        try:
            self._csv_file.close()
            with _open_csv(self.csv_path, "r") as src:
                reader = csv.reader(src)
                next(reader)  # the old header
                old_rows = list(reader)
        except OSError as exc:
            self._csv_file = self._csv_writer = None
            raise PgrlError(f"could not write {self.csv_path}: {_reason(exc)}") from None
        old_width = len(_FIXED_COLUMNS) + len(self._keys)
        self._keys.extend(new_keys)
        header = [*_FIXED_COLUMNS, *self._keys]
        rows = [row[:old_width] + [""] * (len(header) - len(row[:old_width])) for row in old_rows]
        self._csv_file = self._csv_writer = None
        _rewrite_csv(self.csv_path, header, rows)  # PgrlError naming the file on failure
        try:
            self._csv_file = _open_csv(self.csv_path, "a")
        except OSError as exc:
            raise PgrlError(f"could not write {self.csv_path}: {_reason(exc)}") from None
        self._csv_writer = csv.writer(self._csv_file)

    def progress_update(self, env_steps: int, episode_return: float | None = None) -> None:
        """Move the progress display to ``env_steps``; cheap enough to call every step.

        The display shows one return, always with its meaning: the mean return of the last
        100 training episodes (``episode_return_mean``, what :meth:`log` passes here). Its
        frame stops at 100%: a run whose last update takes it past ``total_steps`` shows
        ``total/total 100%``, and the closing plain line gives the steps actually taken.

        Args:
            env_steps: environment steps taken so far.
            episode_return: the mean return of the last 100 episodes; ``None`` keeps the
                previous one.
        """
        if self._closed:
            return
        self._steps = int(env_steps)
        if episode_return is not None:
            self._return = float(episode_return)
        if self._bar is not None:
            delta = min(self._steps, self.total_steps) - self._bar.n
            if self._return is not None and episode_return is not None:
                self._bar.set_postfix_str(_return_text(self._return), refresh=False)
            if delta > 0:
                # update() redraws at most every tqdm mininterval, which keeps this call cheap.
                self._bar.update(delta)
        elif self._mode == "plain":
            now = _clock()
            if now - self._last_print_time >= self.print_interval_s:
                rate = (self._steps - self._last_print_steps) / (now - self._last_print_time)
                remaining = max(self.total_steps - self._steps, 0)
                eta = remaining / rate if rate > 0 else math.inf
                self._print_line(rate, f"ETA {_format_duration(eta)}")
                self._last_print_time = now
                self._last_print_steps = self._steps

    def _print_line(self, steps_per_second: float, tail: str) -> None:
        """Print one plain progress line such as ``[ 40,000/100,000  40%] 5,200 steps/s ...``."""
        width = len(f"{self.total_steps:,}")
        shown = min(self._steps, self.total_steps)  # a clean 100% frame past the budget
        percent = 100.0 * shown / self.total_steps
        parts = [
            f"[{shown:>{width},}/{self.total_steps:,} {percent:3.0f}%]",
            f"{steps_per_second:,.0f} steps/s",
        ]
        if self._return is not None:
            parts.append(_return_text(self._return))
        parts.append(tail)
        print(f"{parts[0]} " + "  ".join(parts[1:]), file=self._stream, flush=True)
        self._printed_steps = self._steps

    def message(self, text: str) -> None:
        """Print a line of text without breaking the progress bar.

        Args:
            text: the line to print.
        """
        if self._bar is not None:
            tqdm.write(text, file=self._stream)
        else:
            print(text, file=self._stream, flush=True)

    def close(self) -> None:
        """Flush and close the files and finish the progress display; safe to call twice.

        Raises:
            PgrlError: the last writes could not be flushed (one line naming the file).
        """
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            if self._steps >= self.total_steps and self._bar.n < self.total_steps:
                self._bar.update(self.total_steps - self._bar.n)
            self._bar.close()
        elif self._mode == "plain" and self._steps > 0:
            # A closing line, so that even a run shorter than print_interval_s reports its end.
            elapsed = _clock() - self._start
            rate = self._steps / elapsed if elapsed > 0 else 0.0
            tail = f"elapsed {_format_duration(elapsed)}"
            if self._steps > self.total_steps:  # the last update ran past the budget
                tail += f" ({self._steps:,} steps taken)"
            self._print_line(rate, tail)
        errors: list[str] = []
        if self._csv_file is not None:
            file, self._csv_file, self._csv_writer = self._csv_file, None, None
            try:
                file.close()
            except OSError as exc:
                errors.append(f"could not write {self.csv_path}: {_reason(exc)}")
        if self._tb_writer is not None:
            writer, self._tb_writer = self._tb_writer, None
            try:
                writer.close()
            except OSError as exc:
                errors.append(self._tb_error(exc))
        if errors:
            raise PgrlError("; ".join(errors))

    def _tb_error(self, exc: OSError) -> str:
        assert self.run_dir is not None
        return f"could not write TensorBoard events in {self.run_dir / TB_DIR}: {_reason(exc)}"

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_metrics(path: Path) -> dict[str, np.ndarray]:
    """Read a ``metrics.csv`` written by :class:`RunLogger` back into columns.

    Args:
        path: the CSV file, or a run directory that holds one.

    Returns:
        Column name to a float64 array with one entry per row; empty cells are nan. A last
        row cut short by a crash mid-write is padded with nan.

    Raises:
        PgrlError: the file is missing, unreadable, empty or holds a non-numeric cell.
    """
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise PgrlError(f"Cannot read metrics file {path}: {exc}") from exc
    except (csv.Error, UnicodeDecodeError) as exc:
        raise PgrlError(f"Metrics file {path} is not a readable CSV: {exc}") from exc
    if not rows:
        raise PgrlError(f"Metrics file {path} is empty; it has no header row.")
    header, body = rows[0], rows[1:]
    data = np.full((len(body), len(header)), np.nan, dtype=np.float64)
    for i, row in enumerate(body):
        if len(row) > len(header):
            raise PgrlError(
                f"Metrics file {path}, line {i + 2}: {len(row)} cells under a header of "
                f"{len(header)} columns."
            )
        for j, cell in enumerate(row):
            if cell == "":
                continue
            try:
                data[i, j] = float(cell)
            except ValueError:
                raise PgrlError(
                    f"Metrics file {path}, line {i + 2}, column {header[j]!r}: "
                    f"{cell!r} is not a number."
                ) from None
    return {name: data[:, j].copy() for j, name in enumerate(header)}

"""Ctrl-C, SIGTERM, SIGHUP during training: finish the iteration, save a checkpoint, stop with a
way back."""

from __future__ import annotations

import signal
import threading
from typing import Any

from pgrl.agent import CHECKPOINT_FILE, Agent
from pgrl.errors import PgrlError

#: The signals that stop training cleanly: Ctrl-C, a job scheduler's SIGTERM, a closed
#: terminal's SIGHUP (where the platform has it).
STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def signal_name(signum: int) -> str:
    """``"SIGTERM"`` for 15; ``"signal N"`` for a number the platform does not name."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Interrupt:
    """Turns SIGINT (Ctrl-C), SIGTERM and SIGHUP into a flag the loop checks between
    iterations (a consistent state); ``signum`` is the first signal received.

    A second Ctrl-C stops at once (KeyboardInterrupt). A second SIGTERM or SIGHUP is only noted,
    so that a scheduler repeating its request cannot raise inside the checkpoint write. Outside
    the main thread, where Python delivers no signals, the flag simply never rises.
    """

    def __init__(self) -> None:
        self.requested = False
        self.signum: int | None = None
        self._previous: dict[signal.Signals, Any] = {}

    def __enter__(self) -> Interrupt:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            return
        self.signum = signum
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            if previous is not None:
                signal.signal(sig, previous)
        self._previous.clear()


class TrainingInterrupted(PgrlError):
    """A stop signal: a checkpoint was saved and training stopped cleanly.

    ``exit_code`` is 128 + the signal number, as a shell reports a process killed by it
    (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP).
    """

    exit_code = 130

    def __init__(self, agent: Agent, env_steps: int, signum: int | None = None) -> None:
        signum = signal.SIGINT if signum is None else signum
        where = (
            f"checkpoint saved in {agent.run_dir / CHECKPOINT_FILE}; continue with: "
            f"pgrl resume {agent.run_dir}"
            if agent.run_dir is not None
            else "nothing was saved (no run directory)"
        )
        cause = "Ctrl-C (SIGINT)" if signum == signal.SIGINT else signal_name(signum)
        super().__init__(f"stopped by {cause} at environment step {env_steps:,}; {where}")
        self.agent = agent
        self.signum = signum
        self.exit_code = 128 + signum

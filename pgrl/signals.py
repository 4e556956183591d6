"""Ctrl-C during training: finish the iteration, save a checkpoint, stop with a way back."""

from __future__ import annotations

import signal
import threading
from typing import Any

from pgrl.agent import CHECKPOINT_FILE, Agent
from pgrl.errors import PgrlError


class Interrupt:
    """Turns Ctrl-C into a flag the loop checks between iterations (a consistent state).

    A second Ctrl-C stops at once. Outside the main thread, where Python delivers no signals,
    the flag simply never rises.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> Interrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class TrainingInterrupted(PgrlError):
    """Ctrl-C: a checkpoint was saved and training stopped cleanly."""

    exit_code = 130

    def __init__(self, agent: Agent, env_steps: int) -> None:
        where = (
            f"checkpoint saved in {agent.run_dir / CHECKPOINT_FILE}; continue with: "
            f"pgrl resume {agent.run_dir}"
            if agent.run_dir is not None
            else "nothing was saved (no run directory)"
        )
        super().__init__(f"interrupted at environment step {env_steps:,}; {where}")
        self.agent = agent

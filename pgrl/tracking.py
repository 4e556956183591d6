"""Experiment tracking with Weights & Biases: a callback that mirrors a run's metrics.

    agent = pgrl.train("ppo", "CartPole-v1", callbacks=[WandbTracker(project="pgrl")])

``pgrl train ... --track`` does the same from the command line. W&B is an optional extra
(``pip install 'pgrl[wandb]'``), imported only when a tracker starts. Offline mode
(``WANDB_MODE=offline`` or ``mode="offline"``) writes the run under ``<dir>/wandb/offline-run-*``
for a later ``wandb sync``.

The tracker only reads the agent, and it restores the state of Python's, NumPy's and torch's
global generators around every W&B call, so a tracked run has the same parameters as the
same run untracked (``tests/test_tracking.py``).
"""

from __future__ import annotations

import json
import random
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pgrl.errors import PgrlError

INSTALL_HINT = "pip install 'pgrl[wandb]'"


def import_wandb() -> Any:
    """``wandb``, or a one-line :class:`PgrlError` that says how to install it."""
    try:
        import wandb
    except ImportError:
        raise PgrlError(f"tracking needs Weights & Biases: {INSTALL_HINT}") from None
    return wandb


@contextmanager
def global_rngs_untouched() -> Iterator[None]:
    """Restore ``random``'s, NumPy's and torch's (CPU and CUDA) global generator states on exit.

    W&B's code may draw from them (run ids, retries' jitter); training draws from them too,
    so without this a tracked run could differ from the same run untracked.
    """
    py_state = random.getstate()
    np_state = np.random.get_state()
    torch_state = torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


class WandbTracker:
    """Log a training run to Weights & Biases.

    Args:
        project: the W&B project (default ``"pgrl"``).
        entity: the W&B user or team (default: W&B's default for the logged-in user).
        name: the run's name (default ``"{algo}-{env}-{seed}"``).
        mode: ``"online"``, ``"offline"`` or ``"disabled"``; None: W&B's own default, which
            reads ``WANDB_MODE``.
        steps: the run's step budget, recorded in the W&B config (default: read from the run
            directory's ``config.json`` when the run has one).
        tensorboard_tags: also log each metric under its TensorBoard tag
            (:func:`pgrl.logger.tensorboard_tag`, SB3's names such as ``rollout/ep_rew_mean``),
            so W&B charts line up with Stable-Baselines3 runs.
        **init_kwargs: more keyword arguments of ``wandb.init`` (``tags``, ``group``,
            ``settings``...).

    Metrics are logged with ``step=env_steps`` under pgrl's names (``episode_return_mean``,
    ``eval_return_mean``, ``policy_loss``...). The W&B config holds the resolved
    hyperparameters plus ``algo``, ``env``, ``seed`` and ``steps``. The run is written into the
    run directory (``<run_dir>/wandb``), or a temporary directory when the run has none.
    Periodic evaluations (``eval_every``) are logged as they happen; the final evaluation comes
    after ``on_end`` and is not logged.
    """

    def __init__(
        self,
        project: str | None = None,
        entity: str | None = None,
        name: str | None = None,
        mode: str | None = None,
        *,
        steps: int | None = None,
        tensorboard_tags: bool = True,
        **init_kwargs: Any,
    ) -> None:
        self.project = project or "pgrl"
        self.entity = entity
        self.name = name
        self.mode = mode
        self.steps = steps
        self.tensorboard_tags = tensorboard_tags
        self.init_kwargs = init_kwargs
        self.run: Any = None
        self.dir: Path | None = None
        self._sent = 0  # rows of agent.history already looked at for evaluations

    def on_start(self, agent: Any) -> None:
        with global_rngs_untouched():  # importing wandb runs its (and its dependencies') code
            wandb = import_wandb()
        from pgrl.agent import config_dict

        self.dir = agent.run_dir if agent.run_dir is not None else Path(tempfile.mkdtemp())
        config = {
            **config_dict(agent.config),
            "algo": agent.algo,
            "env": agent.env_id,
            "seed": agent.seed,
            "steps": self.steps if self.steps is not None else _recorded_steps(agent.run_dir),
        }
        kwargs: dict[str, Any] = {"mode": self.mode} if self.mode is not None else {}
        with global_rngs_untouched():
            self.run = wandb.init(
                project=self.project,
                entity=self.entity,
                name=self.name or f"{agent.algo}-{agent.env_id}-{agent.seed}",
                config=config,
                dir=str(self.dir),
                reinit="finish_previous",  # trials of `pgrl tune` each start a run
                **kwargs,
                **self.init_kwargs,
            )
        self._sent = len(agent.history)

    def on_step(self, agent: Any, env_steps: int) -> None:
        self._send_evaluations(agent)

    def on_log(self, agent: Any, env_steps: int, row: Mapping[str, float]) -> None:
        self._send_evaluations(agent)
        self._log(row, env_steps)

    def on_end(self, agent: Any) -> None:
        self._send_evaluations(agent)
        if self.run is not None:
            with global_rngs_untouched():
                self.run.finish()
            self.run = None

    def _send_evaluations(self, agent: Any) -> None:
        """Log the evaluation rows the loop added to ``agent.history`` since the last call.

        The loop logs its periodic evaluations itself, not through ``on_log``; they are
        read back from the history, one iteration late at most, with their own step.
        """
        rows = agent.history[self._sent :]
        self._sent = len(agent.history)
        for row in rows:
            if "eval_return_mean" in row:
                metrics = {k: v for k, v in row.items() if k != "env_steps"}
                self._log(metrics, int(row["env_steps"]))

    def _log(self, row: Mapping[str, float], env_steps: int) -> None:
        if self.run is None:
            return
        data: dict[str, float] = {str(k): float(v) for k, v in row.items()}
        if self.tensorboard_tags:
            from pgrl.logger import tensorboard_tag

            for key, value in row.items():
                tag = tensorboard_tag(str(key), self.run.config.get("algo"))
                if tag != key:
                    data[tag] = float(value)
        with global_rngs_untouched():
            self.run.log(data, step=int(env_steps))


def _recorded_steps(run_dir: Path | None) -> int | None:
    """The step budget written in a run directory's ``config.json``, if there is one."""
    if run_dir is None:
        return None
    try:
        return int(json.loads((Path(run_dir) / "config.json").read_text())["steps"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


__all__ = ["WandbTracker", "global_rngs_untouched", "import_wandb"]

"""A trained agent: an algorithm with its environment, figures and saved model.

A run directory holds the agent's model (``model.safetensors``, the networks and the config
that rebuilds them) and its summary (``summary.json``); while training it also holds the last
checkpoint (``checkpoints/last.safetensors``, see :mod:`pgrl.run_state`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pgrl import checkpoint
from pgrl.algos import Algorithm, build_algorithm, get_spec
from pgrl.config import build_config
from pgrl.envs import SpaceInfo, make_vec_env, space_info
from pgrl.errors import CheckpointError
from pgrl.evaluate import EvalResult, deterministic, evaluate

MODEL_FILE = Path("model.safetensors")
CHECKPOINT_FILE = Path("checkpoints") / "last.safetensors"


@dataclass
class Agent:
    """A trained algorithm with what it takes to act in its environment and to report."""

    algo: str
    env_id: str
    seed: int
    config: Any
    algorithm: Algorithm
    spaces: SpaceInfo
    env_steps: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    evaluation: EvalResult | None = None
    run_dir: Path | None = None
    history: list[dict[str, float]] = field(default_factory=list)

    def act(self, obs: np.ndarray | Tensor, deterministic: bool = True) -> np.ndarray:
        """Actions for a batch ``(N, O)`` (or one ``(O,)``) of observations, ready for env.step."""
        single = np.ndim(obs) == 1
        obs_t = torch.as_tensor(np.asarray(obs, dtype=np.float32))
        if single:
            obs_t = obs_t.unsqueeze(0)
        with torch.inference_mode():
            action = self.algorithm.act(obs_t, deterministic=deterministic).numpy()
        if self.spaces.discrete:
            action = action.astype(np.int64)
        else:
            action = np.clip(action, self.spaces.low, self.spaces.high)
        return action[0] if single else action

    def evaluate(self, episodes: int = 10, seed: int = 1_000_003) -> EvalResult:
        """Deterministic evaluation over ``episodes`` episodes."""
        return evaluate(deterministic(self.algorithm), self.env_id, episodes, seed)

    def summary(self) -> dict[str, Any]:
        """The figures of a run, as printed by ``pgrl train --json``."""
        ev = self.evaluation
        return {
            "algo": self.algo,
            "env": self.env_id,
            "seed": self.seed,
            "env_steps": self.env_steps,
            "train_seconds": round(self.train_seconds, 3),
            "eval_seconds": round(self.eval_seconds, 3),
            "eval_return_mean": None if ev is None else ev.mean,
            "eval_return_std": None if ev is None else ev.std,
            "eval_episodes": None if ev is None else len(ev.returns),
            "run_dir": None if self.run_dir is None else str(self.run_dir),
        }


def config_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists).

    Example:
        >>> from pgrl.algos.a2c import A2CConfig
        >>> config_dict(A2CConfig(hidden_sizes=(8, 8)))["hidden_sizes"]
        [8, 8]
    """
    return json.loads(json.dumps(dataclasses.asdict(config)))


def check_spaces(file: Path, meta: Mapping[str, Any], spaces: SpaceInfo, env_id: str) -> None:
    """Stop with both descriptions when ``env_id``'s spaces are not those ``file`` was made for."""
    if (spaces.obs_space, spaces.act_space) != (meta["obs_space"], meta["act_space"]):
        raise CheckpointError(
            f"{file} was made for observation space {meta['obs_space']} and action space "
            f"{meta['act_space']}, but {env_id} has observation space {spaces.obs_space} and "
            f"action space {spaces.act_space}"
        )


def weights(algorithm: Algorithm, prefix: str = "") -> dict[str, Tensor]:
    """Every network's state, keyed ``{prefix}{network}.{tensor}``."""
    return {
        f"{prefix}{name}.{key}": value
        for name, module in algorithm.modules().items()
        for key, value in module.state_dict().items()
    }


def save_agent(agent: Agent, run_dir: Path) -> Path:
    """Write the trained networks (``model.safetensors``) and the summary (``summary.json``).

    The model file is a pgrl checkpoint: safetensors weights plus JSON metadata (algorithm,
    environment, config, spaces), written atomically and loaded without executing code.
    """
    meta = {
        "kind": "model",
        "algo": agent.algo,
        "env": agent.env_id,
        "seed": agent.seed,
        "config": config_dict(agent.config),
        "obs_space": agent.spaces.obs_space,
        "act_space": agent.spaces.act_space,
        "env_steps": agent.env_steps,
    }
    path = checkpoint.save_checkpoint(run_dir / MODEL_FILE, weights(agent.algorithm), meta)
    (run_dir / "summary.json").write_text(json.dumps(agent.summary(), indent=2))
    return path


def load_agent(path: str | Path, env: str | None = None) -> Agent:
    """Load a trained agent from a run directory or a ``model.safetensors`` file.

    A run that has not finished has no model yet: its last checkpoint is loaded instead.
    ``env`` overrides the environment id stored with the model; the spaces must match.
    """
    path = Path(path)
    file = path / MODEL_FILE if path.is_dir() else path
    if path.is_dir() and not file.exists() and (path / CHECKPOINT_FILE).exists():
        file = path / CHECKPOINT_FILE
    tensors, meta = checkpoint.load_checkpoint(file)
    if meta.get("kind") not in ("model", "checkpoint"):
        raise CheckpointError(f"{file} holds no trained model (kind {meta.get('kind')!r})")
    spec = get_spec(meta["algo"])
    env_id = env or meta["env"]
    cfg: Any = build_config(spec.config, meta["config"])
    envs = make_vec_env(env_id, 1)
    try:
        spaces = space_info(envs)
    finally:
        envs.close()
    check_spaces(file, meta, spaces, env_id)
    algorithm = build_algorithm(spec.name, cfg, spaces, env_id)
    root = "module." if meta["kind"] == "checkpoint" else ""  # see pgrl.run_state.save_state
    for name, module in algorithm.modules().items():
        prefix = f"{root}{name}."
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(f"{file}: weights of {name!r} do not fit: {exc}") from None
    run_dir = path if path.is_dir() else file.parent
    return Agent(
        spec.name,
        env_id,
        int(meta.get("seed", 0)),
        cfg,
        algorithm,
        spaces,
        env_steps=int(meta.get("env_steps", 0)),
        run_dir=run_dir,
    )

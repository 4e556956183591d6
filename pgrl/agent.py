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
from pgrl.envs import EnvLike, EnvSource, env_from_record, resolve_env
from pgrl.errors import CheckpointError, ConfigError, PgrlError
from pgrl.evaluation import EvalResult, deterministic, evaluate
from pgrl.rundir import write_text_atomically
from pgrl.spaces import (
    SpaceInfo,
    flatten_obs,
    is_batched,
    space_from_json,
    space_info,
    space_to_json,
    to_env_actions,
)

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
    env_record: dict[str, Any] | None = None
    """how the environment was built (:attr:`pgrl.envs.EnvSource.record`)"""
    env_why_not: str = ""
    """why it cannot be rebuilt, when ``env_record`` is None"""
    networks: dict[str, Any] = field(default_factory=dict)
    """the custom network factories it was built with (``networks=``)"""
    session: Session | None = field(default=None, repr=False)
    """what :meth:`learn` continues from (set at the end of training)"""
    defaults: str = ""
    """where the hyperparameters come from, in words (a preset, defaults for the spaces)"""
    _env: EnvSource | None = field(default=None, repr=False)

    def attach_env(self, source: EnvSource) -> None:
        """Remember the environment this agent acts in (and how to rebuild it)."""
        self._env = source
        self.env_record = source.record
        self.env_why_not = source.why_not

    def environment(self) -> EnvSource:
        """The agent's environment, rebuilt from its record when it was loaded from a file.

        Raises:
            EnvError: it cannot be rebuilt here (say ``env=`` instead); or a module it needs
                is missing.
        """
        if self._env is None:
            self._env = env_from_record(self.env_record, self.env_id, self.env_why_not)
        return self._env

    def act(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        """Actions for a batch of observations (or one), ready for ``env.step``.

        ``obs`` is what the environment returns (an array, an image, a dict...), batched or
        not; the actions are in the environment's own form (a ``Discrete`` start offset
        added, a ``Box`` shape restored and clipped to its bounds).
        """
        single = not is_batched(self.spaces, obs)
        if single:
            obs = _batch_of_one(obs)
        flat = flatten_obs(self.spaces, obs)
        with torch.inference_mode():
            action = self.algorithm.act(torch.from_numpy(flat), deterministic=deterministic)
        env_action = to_env_actions(self.spaces, action.cpu().numpy())
        return env_action[0] if single else env_action

    def evaluate(
        self, episodes: int = 10, seed: int = 1_000_003, env: EnvLike | None = None
    ) -> EvalResult:
        """Deterministic evaluation over ``episodes`` episodes (in ``env`` when given)."""
        source = self.environment() if env is None else resolve_env(env)
        return evaluate(deterministic(self.algorithm), source, episodes, seed)

    def learn(self, steps: int, *, progress: bool | None = False, callbacks: Any = ()) -> Agent:
        """Train ``steps`` more environment steps, continuing where training stopped.

        Schedules continue over the new total; see :func:`pgrl.train.learn_more`.
        """
        from pgrl.train import learn_more  # train builds agents: imported here, not above

        return learn_more(self, steps, progress=progress, callbacks=callbacks)

    def save(self, path: str | Path) -> Path:
        """Write the model: to ``path`` if it ends in ``.safetensors``, else into directory
        ``path`` (``model.safetensors`` and ``summary.json``). Returns the model file."""
        target = Path(path)
        if target.suffix == ".safetensors":
            target.parent.mkdir(parents=True, exist_ok=True)
            return save_model(self, target)
        target.mkdir(parents=True, exist_ok=True)
        return save_agent(self, target)

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
            "eval_returns": None if ev is None else list(ev.returns),
            "eval_lengths": None if ev is None else list(ev.lengths),
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


@dataclass
class Session:
    """What an agent in memory continues training from (``agent.learn``)."""

    buffer: Any
    run: Any
    state: Any
    env_steps: int
    vector_steps: int
    rng: dict[str, Any]
    acting_rngs: list[dict[str, Any]] = field(default_factory=list)
    """the collector's acting generators (:func:`pgrl.collect.acting_generators`)"""
    ray_address: str | None = None
    """the Ray cluster the run's workers ran on (None: this machine's)"""


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"`` (CUDA where there is one), ``"cpu"``, ``"cuda"``, ``"cuda:N"``: checked here.

    Raises:
        ConfigError: one line for an unknown device, or CUDA asked for where there is none.
    """
    if device is None:
        device = "cpu"
    if isinstance(device, str) and device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"unknown device {device!r}: {exc}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {device!r}: CUDA is not available here (torch {torch.__version__}); "
                "use device='cpu' or 'auto'"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {device!r}: there are {torch.cuda.device_count()} CUDA devices"
            )
    elif dev.type != "cpu":
        raise ConfigError(f"device {device!r}: pgrl runs on 'cpu', 'cuda' or 'auto'")
    return dev


def spaces_record(spaces: SpaceInfo) -> dict[str, Any]:
    """The observation and action spaces as JSON, so a model loads without its environment."""
    if spaces.observation_space is None or spaces.action_space is None:
        return {}
    return {
        "observation_space": space_to_json(spaces.observation_space),
        "action_space": space_to_json(spaces.action_space),
    }


def _batch_of_one(obs: Any) -> Any:
    """A batch of one observation (dicts and tuples batched part by part)."""
    if isinstance(obs, Mapping):
        return {key: _batch_of_one(value) for key, value in obs.items()}
    if isinstance(obs, tuple):
        return tuple(_batch_of_one(value) for value in obs)
    return np.asarray(obs)[None]


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


def model_meta(agent: Agent) -> dict[str, Any]:
    """What a model file says about its agent besides the weights (JSON)."""
    return {
        "kind": "model",
        "algo": agent.algo,
        "env": agent.env_id,
        "env_source": agent.env_record,
        "env_why_not": agent.env_why_not,
        "seed": agent.seed,
        "config": config_dict(agent.config),
        "obs_space": agent.spaces.obs_space,
        "act_space": agent.spaces.act_space,
        **spaces_record(agent.spaces),
        "custom_networks": sorted(agent.networks),
        "env_steps": agent.env_steps,
    }


def save_model(agent: Agent, file: Path) -> Path:
    """Write the trained networks and their metadata to ``file`` (a pgrl checkpoint).

    Safetensors weights plus JSON metadata (algorithm, environment and how it was built,
    config, spaces), written atomically and loaded without executing code.
    """
    return checkpoint.save_checkpoint(file, weights(agent.algorithm), model_meta(agent))


def save_agent(agent: Agent, run_dir: Path) -> Path:
    """Write the trained networks (``model.safetensors``) and the summary (``summary.json``)."""
    path = save_model(agent, run_dir / MODEL_FILE)
    write_text_atomically(run_dir / "summary.json", json.dumps(agent.summary(), indent=2))
    return path


def load_agent(
    path: str | Path,
    env: EnvLike | None = None,
    *,
    device: str = "cpu",
    networks: Mapping[str, Any] | None = None,
) -> Agent:
    """Load a trained agent from a run directory or a ``model.safetensors`` file.

    A run that has not finished has no model yet: its last checkpoint is loaded instead.
    The environment is not built: the file stores the spaces, so a model acts on a machine
    that lacks the environment's module. ``env`` (any form :func:`pgrl.envs.resolve_env`
    takes) replaces the recorded environment for evaluation; its spaces must match.
    ``networks`` must be given again for a model trained with custom networks.
    """
    path = Path(path)
    file = path / MODEL_FILE if path.is_dir() else path
    if path.is_dir() and not file.exists() and (path / CHECKPOINT_FILE).exists():
        file = path / CHECKPOINT_FILE
    tensors, meta = checkpoint.load_checkpoint(file)
    if meta.get("kind") not in ("model", "checkpoint"):
        raise CheckpointError(f"{file} holds no trained model (kind {meta.get('kind')!r})")
    spec = get_spec(meta["algo"])
    cfg: Any = build_config(spec.config, meta["config"])
    custom = meta.get("custom_networks") or []
    if custom and not networks:
        raise CheckpointError(
            f"{file} was trained with custom networks ({', '.join(map(str, custom))}): "
            "pass the same factories again, networks={...}"
        )
    source: EnvSource | None = None
    if env is not None:
        source = resolve_env(env)
    name = source.name if source is not None else str(meta["env"])
    if "observation_space" in meta and "action_space" in meta:
        try:
            spaces = space_info(
                space_from_json(meta["observation_space"]), space_from_json(meta["action_space"])
            )
        except PgrlError as exc:
            raise CheckpointError(f"{file}: {exc}") from None
        if source is not None:
            check_spaces(file, meta, source.spaces(), name)
    else:  # models from before spaces were stored: the environment tells them
        if source is None:
            source = env_from_record({"id": meta["env"]}, str(meta["env"]))
        spaces = source.spaces()
    check_spaces(file, meta, spaces, name)
    algorithm = build_algorithm(
        spec.name, cfg, spaces, name, device=resolve_device(device), networks=networks
    )
    root = "module." if meta["kind"] == "checkpoint" else ""  # see pgrl.run_state.save_state
    for net, module in algorithm.modules().items():
        prefix = f"{root}{net}."
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(f"{file}: weights of {net!r} do not fit: {exc}") from None
    run_dir = path if path.is_dir() else file.parent
    agent = Agent(
        spec.name,
        name,
        int(meta.get("seed", 0)),
        cfg,
        algorithm,
        spaces,
        env_steps=int(meta.get("env_steps", 0)),
        run_dir=run_dir,
        env_record=meta.get("env_source", {"id": meta["env"]}),
        env_why_not=str(meta.get("env_why_not", "")),
        networks=dict(networks or {}),
    )
    if source is not None:
        agent.attach_env(source)
    agent.evaluation = _saved_evaluation(run_dir, meta)
    return agent


def _saved_evaluation(run_dir: Path, meta: Mapping[str, Any]) -> EvalResult | None:
    """The final evaluation a finished run wrote into ``summary.json`` (returns only), if any.

    Only trusted when the summary belongs to this model (same algorithm, env and env steps).
    """
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or (
        summary.get("algo"),
        summary.get("env"),
        summary.get("env_steps"),
    ) != (meta.get("algo"), meta.get("env"), meta.get("env_steps")):
        return None
    returns = summary.get("eval_returns")
    lengths = summary.get("eval_lengths")
    if not isinstance(returns, list) or not all(isinstance(r, (int, float)) for r in returns):
        return None
    if not isinstance(lengths, list) or len(lengths) != len(returns):
        lengths = []
    return EvalResult([float(r) for r in returns], [int(n) for n in lengths])

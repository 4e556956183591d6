"""Typed configurations: validation helpers, overrides, and presets with their sources.

Each algorithm's configuration is a frozen dataclass at the top of its file in
:mod:`pgrl.algos`. Every field has a docstring (the line under it) that the CLI shows in
``pgrl train ALGO --help``. This module validates values, applies ``--set name=value``
overrides and YAML files (safe loading only), and reads the presets per
(algorithm, environment) from ``pgrl/presets/<algo>.yaml``, each with the source of its
numbers and its step budget.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib.resources
import inspect
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from pgrl.errors import ConfigError

C = TypeVar("C")


def check_range(
    name: str,
    value: float,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raise :class:`ConfigError` naming the field and its legal range when out of range."""
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        left = "(" if low_open or low is None else "["
        right = ")" if high_open or high is None else "]"
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise ConfigError(f"{name} must be in {left}{lo}, {hi}{right}, got {value!r}")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each dataclass field (``x: int = 1`` then ``\"\"\"doc\"\"\"``)."""
    docs: dict[str, str] = {}
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return docs
    import textwrap

    tree = ast.parse(textwrap.dedent(source))
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for node, following in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[node.target.id] = " ".join(following.value.value.split())
    return docs


def _field_type(cls: type, name: str) -> Any:
    hints = typing.get_type_hints(cls)
    return hints[name]


def parse_value(cls: type, name: str, text: str) -> Any:
    """Convert the text of ``--set name=text`` to the field's type."""
    kind = _field_type(cls, name)
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    try:
        if kind is bool:
            lowered = text.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if kind is int:
            return int(float(text)) if "e" in text.lower() else int(text)
        if kind is float:
            return float(text)
        if kind is str or origin is typing.Literal:
            return text
        if origin is tuple:
            parts = [p for p in text.replace("(", "").replace(")", "").split(",") if p.strip()]
            return tuple(int(p) for p in parts)
        if origin in (typing.Union, types.UnionType) and type(None) in args:
            if text.strip().lower() in ("none", "null", ""):
                return None
            inner = next(a for a in args if a is not type(None))
            return {int: int, float: float, str: str}.get(inner, str)(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r}: expected a value of type {kind}") from None
    return text


def coerce(cls: type, name: str, value: Any) -> Any:
    """Make a YAML/JSON/Python value fit the field's type (lists → tuples, ints → floats)."""
    if isinstance(value, str):
        return parse_value(cls, name, value)
    kind = _field_type(cls, name)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typing.get_origin(kind) is tuple and isinstance(value, list):
        return tuple(value)
    return value


# Fields renamed so that one name means one thing (STYLE.md, "One vocabulary"): old → new.
# A config that still uses an old name stops with a message naming the new one.
RENAMED_FIELDS: dict[str, str] = {
    # DDPG/TD3/SAC: the transitions sampled from the replay buffer for one gradient step
    "batch_size": "minibatch_size",
    # REINFORCE: the step size of the V(s) baseline, as DDPG/TD3/SAC name their critic's
    "value_learning_rate": "critic_learning_rate",
}


def _unknown_names(cls: type, unknown: list[str], names: set[str]) -> str:
    """Why each of ``unknown`` is not a field of ``cls``: renamed, derived, or a likely typo.

    Example:
        >>> from pgrl.algos import DDPGConfig, PPOConfig
        >>> _unknown_names(DDPGConfig, ["batch_size"], {"minibatch_size", "gamma"})
        'DDPGConfig: batch_size was renamed to minibatch_size'
        >>> _unknown_names(PPOConfig, ["batch_size"], {"minibatch_size", "num_envs"})
        'PPOConfig: batch_size is derived (transitions per rollout: num_envs × rollout_steps), not a setting'
    """
    import difflib

    notes, typos = [], []
    for name in unknown:
        attribute = inspect.getattr_static(cls, name, None)
        if isinstance(attribute, property):  # e.g. PPO's batch_size = num_envs × rollout_steps
            doc = (attribute.__doc__ or "").strip().splitlines()
            what = f" ({doc[0][:1].lower()}{doc[0][1:].rstrip('.')})" if doc else ""
            notes.append(f"{name} is derived{what}, not a setting")
        elif RENAMED_FIELDS.get(name) in names:
            notes.append(f"{name} was renamed to {RENAMED_FIELDS[name]}")
        else:
            close = difflib.get_close_matches(name, sorted(names), n=1)
            typos.append(f"{name}" + (f" (did you mean {close[0]}?)" if close else ""))
    parts = [f"{cls.__name__}: {'; '.join(notes)}"] if notes else []
    if typos:
        parts.append(
            f"unknown hyperparameter(s) for {cls.__name__}: {', '.join(typos)}. "
            f"Known: {', '.join(sorted(names))}"
        )
    return "; ".join(parts)


def build_config(cls: type[C], overrides: Mapping[str, Any]) -> C:
    """``cls(**overrides)`` with unknown names and bad types reported as :class:`ConfigError`."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ConfigError(_unknown_names(cls, unknown, names))
    values = {name: coerce(cls, name, value) for name, value in overrides.items()}
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{cls.__name__}: {exc}") from None


def parse_set_options(items: list[str]) -> dict[str, str]:
    """``["gamma=0.98", "learning_rate=3e-4"]`` → ``{"gamma": "0.98", ...}``."""
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects name=value, got {item!r}")
        name, value = item.split("=", 1)
        out[name.strip()] = value.strip()
    return out


def load_yaml_config(path: str | Path) -> dict[str, Any]:
    """Read a flat mapping of hyperparameters from YAML with ``yaml.safe_load`` (no code)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of name: value")
    return {str(k): v for k, v in data.items()}


PRESET_PACKAGE_DIR = "presets"
"""Folder inside the ``pgrl`` package holding one ``<algo>.yaml`` of presets per algorithm."""


@functools.cache
def _presets(algo: str) -> dict[str, dict[str, Any]]:
    """The presets of one algorithm, read once from ``pgrl/presets/<algo>.yaml``.

    The file maps environment ids to entries. An entry names the source of its numbers
    (``_source``) and its default budget in environment steps (``_steps``); its other keys
    are fields of the algorithm's config, coerced to the field types (lists become tuples).
    An algorithm without a file has no presets.
    """
    from pgrl.algos import ALGORITHMS  # here: the algorithms import this module

    spec = ALGORITHMS.get(algo)
    if spec is None:
        return {}
    resource = importlib.resources.files("pgrl") / PRESET_PACKAGE_DIR / f"{algo}.yaml"
    if not resource.is_file():
        return {}
    where = f"pgrl/{PRESET_PACKAGE_DIR}/{algo}.yaml"
    try:
        data = yaml.safe_load(resource.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"preset file {where} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigError(f"preset file {where} must map environment ids to mappings")
    names = {f.name for f in dataclasses.fields(spec.config)}
    presets: dict[str, dict[str, Any]] = {}
    for env_id, entry in data.items():
        fields = {str(k): v for k, v in entry.items() if not str(k).startswith("_")}
        unknown = sorted(set(fields) - names)
        if unknown:
            raise ConfigError(
                f"preset file {where}, {env_id}: {_unknown_names(spec.config, unknown, names)}"
            )
        presets[str(env_id)] = {
            **{str(k): v for k, v in entry.items() if str(k).startswith("_")},
            **{k: coerce(spec.config, k, v) for k, v in fields.items()},
        }
    return presets


def preset_envs(algo: str) -> list[str]:
    """The environment ids that have a preset for ``algo``, in file order.

    Example:
        >>> preset_envs("ppo")
        ['CartPole-v1', 'Acrobot-v1', 'Pendulum-v1']
    """
    return list(_presets(algo))


def preset(algo: str, env_id: str) -> dict[str, Any]:
    """The preset for (algo, env_id) without its ``_source`` key; empty when none exists.

    Example:
        >>> preset("ddpg", "Pendulum-v1")["hidden_sizes"]
        (64, 64)
        >>> preset("ddpg", "CartPole-v1")
        {}
    """
    return {k: v for k, v in _presets(algo).get(env_id, {}).items() if not k.startswith("_")}


def preset_source(algo: str, env_id: str) -> str | None:
    """Where the preset's numbers come from (None when there is no preset)."""
    source = _presets(algo).get(env_id, {}).get("_source")
    return None if source is None else str(source)


def preset_steps(algo: str, env_id: str, default: int = 100_000) -> int:
    """The preset's default training budget in environment steps.

    Example:
        >>> preset_steps("sac", "Pendulum-v1"), preset_steps("sac", "CartPole-v1")
        (20000, 100000)
    """
    return int(_presets(algo).get(env_id, {}).get("_steps", default))

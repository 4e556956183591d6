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
import math
import numbers
import os
import reprlib
import stat
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
    """Raise :class:`ConfigError` naming the field and its legal range when out of range.

    NaN and ±inf are refused whatever the range: every comparison with NaN is False, so NaN
    would otherwise pass any bound, and no hyperparameter of pgrl means anything at infinity.
    A bool is refused too (``True`` is the int 1 to Python, never a meant number).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name} must be a number, got {_short(value)}")
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {_short(value)}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        left = "(" if low_open or low is None else "["
        right = ")" if high_open or high is None else "]"
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise ConfigError(f"{name} must be in {left}{lo}, {hi}{right}, got {_short(value)}")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {_short(value)}")


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
            try:
                return int(text)
            except ValueError:  # 1e5, 4.0: a float that must be whole (checked in build_config)
                return float(text)
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
    except (ValueError, OverflowError):
        what = getattr(kind, "__name__", None) or str(kind)
        raise ConfigError(f"{name}={text!r}: expected a value of type {what}") from None
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


# Upper bounds for values that cannot be built on any machine pgrl targets. Without them a
# typo such as num_envs=1e10 or hidden_sizes=100000,100000 ends in a MemoryError traceback or
# an allocation of many gigabytes after the environments are made. Each bound is far above
# what a real run of these algorithms uses (the largest presets use buffer_size 1e6,
# rollout_steps 2048, update_epochs 10).
MAX_NUM_ENVS = 4_096
"""Most environment copies: beyond it the copies alone exhaust memory or file handles."""
MAX_HIDDEN_WIDTH = 65_536
"""Widest hidden layer: one 65,536 × 65,536 float32 layer already takes 16 GiB."""
MAX_HIDDEN_WEIGHTS = 2**28
"""Most weights between the hidden layers of one network (1 GiB of float32): sum of the
products of adjacent ``hidden_sizes``; [16384, 16384] is the largest square pair."""
MAX_INT_FIELD = 2**31 - 1
"""Largest value of an int field that has no bound of its own in :data:`INT_UPPER_BOUNDS`."""
INT_UPPER_BOUNDS: dict[str, tuple[int, str]] = {
    "num_envs": (MAX_NUM_ENVS, "the most environment copies pgrl runs at once"),
    "buffer_size": (
        100_000_000,
        "the replay buffer is allocated up front; 10^8 transitions fill tens of GiB",
    ),
    "minibatch_size": (10_000_000, "10^7 transitions per gradient step"),
    "rollout_steps": (1_000_000, "the rollout of every environment is held in memory"),
    "n_step": (1_000_000, "an n-step return longer than any rollout"),
    "learning_starts": (1_000_000_000, "10^9 environment steps before the first update"),
    "updates_per_step": (10_000, "gradient steps per environment step"),
    "update_epochs": (10_000, "passes over one rollout"),
    "value_epochs": (10_000, "passes of the value baseline over one batch"),
    "episodes_per_env": (100_000, "episodes of every environment held in memory"),
    "policy_delay": (1_000_000, "critic updates per policy update"),
}
"""Largest legal value of an int field and why, by name, checked for every algorithm's config;
any other int field is bounded by :data:`MAX_INT_FIELD`."""
SIZES_BOUNDS: dict[str, tuple[int, int, str]] = {
    "hidden_sizes": (1, MAX_HIDDEN_WIDTH, "a layer 65,536 wide already takes 16 GiB"),
}
"""Legal range of each element of a tuple-of-int field and why, by name (default: >= 1)."""
NETWORK_SIZE_FIELDS = ("hidden_sizes",)
"""Tuple-of-int fields that are layer widths: they need at least one layer, and the weights
between adjacent layers are bounded by :data:`MAX_HIDDEN_WEIGHTS`."""

MAX_CONFIG_BYTES = 1_000_000
"""Largest YAML config file read: a config of hyperparameters takes a few hundred bytes, and
parsing tens of megabytes of YAML takes minutes."""


def _as_int(name: str, value: Any) -> int:
    """``value`` as an int: whole floats (4.0, 1e5) pass; bools and fractions are refused."""
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer, got {_short(value)}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        if not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite integer, got {_short(value)}")
        if float(value).is_integer():
            return int(float(value))
        raise ConfigError(f"{name} must be a whole number, got {_short(value)}")
    raise ConfigError(f"{name} must be an integer, got {_short(value)}")


def check_field_value(cls: type, name: str, value: Any) -> Any:
    """Refuse a value that does not fit field ``name`` of ``cls`` by type; return it normalised.

    Driven by the field's annotation, so it covers every algorithm's config: an ``int`` refuses
    bools and fractions (whole floats such as ``1e5`` become ints) and respects
    :data:`INT_UPPER_BOUNDS`; a ``float`` refuses bools, non-numbers, NaN and ±inf; a ``bool``
    takes only true/false; a ``tuple[int, ...]`` needs a sequence of integers, each in
    :data:`SIZES_BOUNDS` (at least 1 by default). ``None`` passes where the field is optional.
    Ranges specific to one algorithm stay in its config's ``__post_init__``.
    """
    kind = _field_type(cls, name)
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in args:
        if value is None:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            return value
        kind = inner[0]
        args = typing.get_args(kind)
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {_short(value)}")
        return value
    if kind is int:
        number = _as_int(name, value)
        high, why = INT_UPPER_BOUNDS.get(name, (MAX_INT_FIELD, "far more than any run uses"))
        if number > high:
            raise ConfigError(f"{name} must be at most {high:,} ({why}), got {_big(number)}")
        return number
    if kind is float:
        check_range(name, value)  # a finite real number, not a bool
        return float(value)
    if typing.get_origin(kind) is tuple and args[:1] == (int,):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(
                f"{name} must be a list of integers such as 64,64 (YAML: [64, 64]), "
                f"got {_short(value)}"
            )
        if len(value) > 1_000:
            raise ConfigError(f"{name} has {len(value):,} entries; at most 1,000 are allowed")
        sizes = tuple(_as_int(name, v) for v in value)
        low, high, why = SIZES_BOUNDS.get(name, (1, MAX_INT_FIELD, ""))
        for size in sizes:
            if size < low or size > high:
                why_text = f" ({why})" if why else ""
                raise ConfigError(
                    f"{name}: every size must be in [{low:,}, {high:,}]{why_text}, "
                    f"got {_big(size)} in {_short(value)}"
                )
        if name in NETWORK_SIZE_FIELDS:
            if not sizes:
                raise ConfigError(f"{name} needs at least one hidden layer, such as 64,64")
            weights = sum(a * b for a, b in zip(sizes, sizes[1:], strict=False))
            if weights > MAX_HIDDEN_WEIGHTS:
                raise ConfigError(
                    f"{name}={','.join(map(str, sizes))} needs {weights:,} weights between its "
                    f"hidden layers, more than the {MAX_HIDDEN_WEIGHTS:,} (1 GiB of float32) "
                    "pgrl allows per network"
                )
        return sizes
    return value


def _short(value: Any) -> str:
    """``repr(value)`` cut to one short line, without building the whole repr first.

    A YAML file of a few bytes can hold exponentially nested aliases ("billion laughs"):
    ``repr`` of that would never end, :mod:`reprlib` stops at a few levels and items.
    """
    text = _REPR.repr(value)
    return text if len(text) <= 120 else f"{text[:117]}..."


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 2, 60, 60, 40
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 8


def _big(number: int) -> str:
    """``number`` with thousands separators, or its magnitude when it has over 30 digits."""
    if abs(number) < 10**30:
        return f"{number:,}"
    return f"about 10^{int(abs(number).bit_length() * math.log10(2))}"


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
    values = {
        name: check_field_value(cls, name, coerce(cls, name, value))
        for name, value in overrides.items()
    }
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
    """Read a flat mapping of hyperparameters from YAML with ``yaml.safe_load`` (no code).

    Refused with one line: a missing file, a directory or anything but a regular file (a FIFO
    would block), a file over :data:`MAX_CONFIG_BYTES`, a file that is not UTF-8 text, invalid
    YAML, YAML nested too deeply to parse, and a document that is not a mapping.
    """
    path = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory, not a YAML file") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise ConfigError(f"config file {path} is a directory, not a YAML file")
        raise ConfigError(f"config file {path} is not a regular file (a pipe or a device?)")
    with os.fdopen(fd, "rb") as file:
        try:
            raw = file.read(MAX_CONFIG_BYTES + 1)
        except OSError as exc:
            raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"config file {path} is larger than {MAX_CONFIG_BYTES:,} bytes; a config of "
            "hyperparameters is a short mapping of name: value"
        )
    try:
        if b"\x00" in raw:  # valid UTF-8, but no text file holds NUL bytes
            raise UnicodeDecodeError("utf-8", raw, raw.index(b"\x00"), len(raw), "NUL byte")
        data = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text (a binary file?)") from None
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())  # one line: PyYAML's message spans several
        if len(detail) > 300:
            detail = detail[:297] + "..."
        raise ConfigError(f"config file {path} is not valid YAML: {detail}") from None
    except RecursionError:
        raise ConfigError(f"config file {path} is nested too deeply to be a config") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise ConfigError(f"config file {path} holds a value YAML cannot read: {exc}") from None
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


FALLBACK_PREFIX = "*"
"""Preset entries named ``*box``, ``*discrete``...: the defaults for an environment without a
preset, chosen by its action space (:attr:`pgrl.spaces.SpaceInfo.action_kind`)."""


def preset_envs(algo: str) -> list[str]:
    """The environment ids that have a preset for ``algo``, in file order.

    Example:
        >>> preset_envs("ppo")[:3]
        ['CartPole-v1', 'Acrobot-v1', 'Pendulum-v1']
    """
    return [k for k in _presets(algo) if not k.startswith(FALLBACK_PREFIX)]


def fallback_preset(algo: str, action_kind: str) -> tuple[dict[str, Any], str | None]:
    """The defaults (and their source) for an environment without a preset whose actions are
    of ``action_kind``; empty, None when the algorithm's own defaults apply.

    Example:
        >>> values, source = fallback_preset("ppo", "box")
        >>> values["rollout_steps"], values["normalize_obs"], source.split(":")[0]
        (2048, True, 'CleanRL ppo_continuous_action.py')
        >>> fallback_preset("ppo", "discrete")
        ({}, None)
    """
    entry = _presets(algo).get(FALLBACK_PREFIX + action_kind, {})
    values = {k: v for k, v in entry.items() if not k.startswith("_")}
    source = entry.get("_source")
    return values, None if source is None else str(source)


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

"""Environments as objects: resolve what the user named once, then build copies of it.

:func:`resolve_env` turns what a user gives — a registered id, ``"module:EnvId"``, a
``gymnasium.Env`` subclass, a factory, an instance, or a ready vector environment — into one
:class:`EnvSource`. The rest of pgrl receives that object: it builds vector environments
(:meth:`EnvSource.make_vec`), single environments for videos (:meth:`EnvSource.make`), knows
what to call the environment (:attr:`EnvSource.name`) and how it was built
(:attr:`EnvSource.record`), so that ``pgrl eval`` and ``pgrl resume`` can rebuild it
(:func:`env_from_record`).

pgrl always builds its vector environments with an explicit autoreset mode, and the
collector reads the mode back from ``envs.metadata["autoreset_mode"]`` so that it also
handles vector environments a user built.
"""

from __future__ import annotations

import copy
import difflib
import importlib
import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import gymnasium as gym
from gymnasium.envs.registration import EnvSpec
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv

from pgrl.errors import EnvError
from pgrl.spaces import SpaceInfo
from pgrl.spaces import space_info as _space_info

Vectorization = Literal["auto", "sync", "async", "vector_entry_point"]
VECTORIZATIONS: tuple[str, ...] = get_args(Vectorization)
Autoreset = Literal["auto", "next_step", "same_step"]

_AUTORESET = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP}

# what a vector environment's spec carries about its vectorization (make_vec would reuse it)
_VECTOR_SPEC_KWARGS = ("num_envs", "vectorization_mode", "vector_kwargs", "wrappers")

# optional dependencies of Gymnasium's environment families, and the extra that installs them
_EXTRAS = {"box2d": "gymnasium[box2d]", "mujoco": "gymnasium[mujoco]", "jax": "gymnasium[jax]"}

EnvLike = Any
"""What :func:`resolve_env` accepts: an id, a class, a factory, an instance, a vector env."""


@dataclass
class EnvSource:
    """One environment, resolved: how to build copies of it, and what to call it.

    Attributes:
        name: what messages, run directories and summaries call the environment.
        record: how it was built, as JSON (``{"id": ..., "kwargs": ..., "wrappers": [...]}``,
            ``{"entry_point": "module:Name", ...}`` or ``{"spec": ...}``); None when it cannot
            be rebuilt in another process (then ``why_not`` says why).
        preset_id: the registered id whose presets apply (None: defaults).
        vector: a ready vector environment the user passed, trained on as it is.
    """

    name: str
    record: dict[str, Any] | None
    why_not: str = ""
    preset_id: str | None = None
    vector: VectorEnv | None = None
    _spec: EnvSpec | None = None
    _factory: Callable[[], gym.Env] | None = None
    _kwargs: dict[str, Any] = field(default_factory=dict)
    _wrappers: tuple[Callable[[gym.Env], gym.Env], ...] = ()

    @property
    def num_envs(self) -> int | None:
        """The number of copies a ready vector environment fixes (None: any)."""
        return None if self.vector is None else self.vector.num_envs

    def make(self, render_mode: str | None = None) -> gym.Env:
        """One copy of the environment (``render_mode`` for videos where it can be set)."""
        kwargs = dict(self._kwargs)
        if render_mode is not None:
            kwargs["render_mode"] = render_mode
        spec = self._spec
        if spec is not None:
            env = _call(self.name, lambda: gym.make(spec, **kwargs))
        elif self._factory is not None:
            factory = self._factory
            if render_mode is not None and not _accepts(factory, "render_mode"):
                kwargs.pop("render_mode")
            env = _call(self.name, lambda: factory(**kwargs))
        else:
            raise EnvError(f"cannot build a single copy of {self.name}")
        if not isinstance(env, gym.Env):
            raise EnvError(
                f"{self.name} built a {type(env).__name__}, not a gymnasium.Env "
                "(a factory must return an environment)"
            )
        for wrapper in self._wrappers:
            env = wrapper(env)
        return env

    def vectorization_for(self, vectorization: str) -> str:
        """What ``vectorization`` means for this environment: ``"auto"`` is its own vectorized
        implementation where Gymnasium has one (and no wrapper is added), else ``"sync"``."""
        if vectorization != "auto":
            return vectorization
        own_vector = self._spec is not None and self._spec.vector_entry_point is not None
        return "vector_entry_point" if own_vector and not self._wrappers else "sync"

    def make_vec(
        self,
        num_envs: int,
        *,
        vectorization: Vectorization = "auto",
        autoreset: Autoreset = "auto",
    ) -> VectorEnv:
        """``num_envs`` new copies as one vector environment.

        ``vectorization="auto"`` uses the environment's own vectorized implementation where
        Gymnasium has one (CartPole: several times faster than SyncVectorEnv) and
        SyncVectorEnv otherwise; AsyncVectorEnv only pays off when one step is slow.
        ``autoreset="auto"`` picks same-step autoreset for Sync/Async (no wasted step) and
        next-step where the environment's own implementation supports only that.
        """
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise EnvError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        if vectorization not in VECTORIZATIONS:
            raise EnvError(
                f"vectorization must be one of {', '.join(VECTORIZATIONS)}; got {vectorization!r}"
            )
        own_vector = self._spec is not None and self._spec.vector_entry_point is not None
        own_vector = own_vector and not self._wrappers
        mode = self.vectorization_for(vectorization)
        if mode == "vector_entry_point" and not own_vector:
            raise EnvError(
                f"{self.name} has no vectorized implementation usable here; use 'sync' or 'async'"
            )
        if autoreset == "auto":
            autoreset = "next_step" if mode == "vector_entry_point" else "same_step"
        if mode == "vector_entry_point":
            if autoreset != "next_step":
                raise EnvError(
                    f"{self.name}'s vectorized implementation supports only next-step autoreset"
                )
            spec = self._spec
            assert spec is not None
            return _call(
                self.name,
                lambda: gym.make_vec(
                    spec, num_envs=num_envs, vectorization_mode="vector_entry_point", **self._kwargs
                ),
            )
        if self._spec is None and self._factory is None and self.vector is not None:
            vector_class: Any = type(self.vector)  # e.g. CartPoleVectorEnv built by hand
            try:
                return vector_class(num_envs=num_envs)
            except Exception:
                raise EnvError(
                    f"cannot build new copies of this {self.name} (evaluation needs them): "
                    "give its id, class or factory instead, or evaluate with env=..."
                ) from None
        fns = [self.make for _ in range(num_envs)]
        if mode == "async":
            return gym.vector.AsyncVectorEnv(fns, autoreset_mode=_AUTORESET[autoreset])
        return SyncVectorEnv(fns, autoreset_mode=_AUTORESET[autoreset])

    def spaces(self) -> SpaceInfo:
        """The spaces of one copy (a ready vector environment's own, without building one)."""
        if self.vector is not None:
            return space_info(self.vector)
        env = self.make()
        try:
            return _space_info(env.observation_space, env.action_space)
        finally:
            env.close()


def resolve_env(
    env: EnvLike,
    env_kwargs: Mapping[str, Any] | None = None,
    wrappers: Sequence[Callable[[gym.Env], gym.Env]] | None = None,
) -> EnvSource:
    """Resolve what the user named as an environment into an :class:`EnvSource`.

    Accepts a registered id (``"CartPole-v1"``), Gymnasium's ``"module:EnvId"`` (the module
    is imported first, which registers the id), a ``gymnasium.Env`` subclass, a factory
    (any callable returning an environment), an environment instance (copies are deep copies;
    the instance itself is never stepped), or a ready vector environment (trained on as it is,
    in whichever autoreset mode it declares). ``env_kwargs`` go to the id's constructor, class
    or factory; ``wrappers`` (callables ``env -> env``) wrap every copy, in order.
    """
    if isinstance(env, EnvSource):
        if env_kwargs or wrappers:
            raise EnvError("env_kwargs and wrappers apply to an environment being resolved")
        return env
    kwargs = _check_kwargs(env_kwargs)
    wraps = _check_wrappers(wrappers)
    wrapper_paths = [_import_path(w) for w in wraps]
    known = [p for p in wrapper_paths if p is not None]
    wrapper_record = known if len(known) == len(wraps) else None
    wrapper_why = "" if wrapper_record is not None else _why_not_importable(wraps)
    if isinstance(env, str):
        return _from_id(env, kwargs, wraps, wrapper_record, wrapper_why)
    if isinstance(env, VectorEnv):
        if kwargs or wraps:
            raise EnvError("a ready vector environment takes no env_kwargs or wrappers")
        return _from_vector(env)
    if isinstance(env, gym.Env):
        return _from_instance(env, kwargs, wraps, wrapper_record, wrapper_why)
    if callable(env):
        path = _import_path(env)
        name = getattr(env, "__name__", type(env).__name__)
        if name == "<lambda>":
            name = "a lambda" + _where(env)
        record = None
        why = ""
        if path is None:
            why = f"{name} cannot be imported by its name ({_why_not_importable([env])})"
        elif wrapper_record is None:
            why = wrapper_why
        else:
            record = {"entry_point": path, "kwargs": kwargs, "wrappers": wrapper_record}
        factory = env
        return EnvSource(
            name=path or name,
            record=record,
            why_not=why,
            _factory=factory,
            _kwargs=kwargs,
            _wrappers=wraps,
        )
    raise EnvError(
        f"cannot use a {type(env).__name__} as an environment: pass a registered id, "
        "'module:EnvId', a gymnasium.Env subclass, a factory, an instance or a vector env"
    )


def env_from_record(record: Mapping[str, Any] | None, name: str, why_not: str = "") -> EnvSource:
    """Rebuild the :class:`EnvSource` a run recorded (``config.json``, checkpoints, models).

    Raises:
        EnvError: the run's environment cannot be rebuilt (it was an instance, a lambda or a
            vector environment passed in Python); the message says what to pass instead.
    """
    if record is None:
        reason = f": {why_not}" if why_not else ""
        raise EnvError(
            f"this run's environment ({name}) cannot be rebuilt here{reason}. Pass the "
            "environment again: env=... in Python, --env in the CLI"
        )
    if not isinstance(record, Mapping):
        raise EnvError(f"malformed environment record for {name}: {record!r}")
    kwargs = record.get("kwargs") or {}
    wrappers = [import_object(path, "wrapper") for path in record.get("wrappers") or []]
    if "id" in record:
        return resolve_env(str(record["id"]), kwargs, wrappers)
    if "entry_point" in record:
        factory = import_object(str(record["entry_point"]), "environment")
        return resolve_env(factory, kwargs, wrappers)
    if "spec" in record:
        try:
            spec = EnvSpec.from_json(json.dumps(record["spec"]))
        except Exception as exc:
            raise EnvError(f"cannot rebuild {name} from its recorded spec: {exc}") from None
        # an instance's recipe: gym.make's spec (its own wrappers included), then the
        # wrappers that were passed to pgrl with it
        return EnvSource(
            name=spec.id,
            record=dict(record),
            preset_id=spec.id,
            _spec=spec,
            _kwargs=dict(kwargs),
            _wrappers=tuple(wrappers),
        )
    raise EnvError(f"malformed environment record for {name}: {dict(record)!r}")


def check_env_id(env_id: str) -> EnvSpec:
    """The registered spec for ``env_id`` (``"module:EnvId"`` imports the module first).

    Raises:
        EnvError: one line that suggests close names, or names the extra to install.
    """
    module, _, name = env_id.rpartition(":") if ":" in env_id else ("", "", env_id)
    if module:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise EnvError(
                f"environment {env_id!r}: cannot import module {module!r} ({exc}); "
                "is it installed or on PYTHONPATH?"
            ) from None
        except Exception as exc:
            raise EnvError(
                f"environment {env_id!r}: importing module {module!r} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from None
    try:
        return gym.spec(name)
    except Exception as exc:  # gymnasium raises several error types here
        known = list(gym.registry.keys())
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        text = str(exc).split("\n")[0]
        detail = f" ({text})" if "deprecated" in text.lower() or "mujoco" in text.lower() else ""
        raise EnvError(f"unknown environment id {env_id!r}.{hint}{detail}") from None


def make_vec_env(
    env: EnvLike,
    num_envs: int,
    *,
    vectorization: Vectorization = "auto",
    autoreset: Autoreset = "auto",
    env_kwargs: dict[str, Any] | None = None,
) -> VectorEnv:
    """Build ``num_envs`` copies of ``env`` (anything :func:`resolve_env` takes)."""
    source = resolve_env(env, env_kwargs)
    return source.make_vec(num_envs, vectorization=vectorization, autoreset=autoreset)


def space_info(envs: VectorEnv) -> SpaceInfo:
    """What the networks need to know about a vector environment's single spaces."""
    return _space_info(envs.single_observation_space, envs.single_action_space)


def autoreset_mode(envs: VectorEnv) -> AutoresetMode:
    """The autoreset mode a vector environment declares (Gymnasium's default: next step)."""
    mode = envs.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    if isinstance(mode, str):
        mode = AutoresetMode(mode)
    if mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
        raise EnvError(
            f"pgrl collects from vector environments with next-step or same-step autoreset; "
            f"this one uses {mode}"
        )
    return mode


def _from_id(
    env_id: str,
    kwargs: dict[str, Any],
    wraps: tuple[Callable[[gym.Env], gym.Env], ...],
    wrapper_record: list[str] | None,
    wrapper_why: str,
) -> EnvSource:
    spec = check_env_id(env_id)
    record = None
    if wrapper_record is not None:
        record = {"id": env_id, "kwargs": kwargs, "wrappers": wrapper_record}
    return EnvSource(
        name=env_id,
        record=record,
        why_not=wrapper_why,
        preset_id=spec.id,
        _spec=spec,
        _kwargs=kwargs,
        _wrappers=wraps,
    )


def _from_instance(
    env: gym.Env,
    kwargs: dict[str, Any],
    wraps: tuple[Callable[[gym.Env], gym.Env], ...],
    wrapper_record: list[str] | None,
    wrapper_why: str,
) -> EnvSource:
    if kwargs:
        raise EnvError("an environment instance takes no env_kwargs (it is already built)")
    name = type(env.unwrapped).__name__ + " instance"
    record: dict[str, Any] | None = None
    why = f"it was a {name} passed in Python"
    spec = env.spec
    if spec is not None and wrapper_record is not None:
        try:  # gym.make's instances carry their recipe, wrappers included
            record = {"spec": json.loads(spec.to_json()), "wrappers": wrapper_record}
            why = ""
        except Exception:
            record = None
    elif wrapper_record is None:
        why = wrapper_why
    try:
        template = copy.deepcopy(env)
    except Exception as exc:
        raise EnvError(
            f"pgrl builds copies of an environment instance with copy.deepcopy, which failed "
            f"for this {name}: {exc}. Pass its class or a factory instead"
        ) from None

    def copy_of_instance() -> gym.Env:
        return copy.deepcopy(template)

    return EnvSource(
        name=spec.id if spec is not None else name,
        record=record,
        why_not=why,
        preset_id=spec.id if spec is not None else None,
        _factory=copy_of_instance,
        _wrappers=wraps,
    )


def _from_vector(envs: VectorEnv) -> EnvSource:
    name = type(envs).__name__
    spec = envs.spec
    record: dict[str, Any] | None = None
    why = f"it was a {name} passed in Python"
    factory: Callable[[], gym.Env] | None = None
    built_spec: EnvSpec | None = None
    if spec is not None:
        built_spec = copy.deepcopy(spec)
        built_spec.kwargs = {k: v for k, v in spec.kwargs.items() if k not in _VECTOR_SPEC_KWARGS}
        try:
            record = {"spec": json.loads(built_spec.to_json())}
            why = ""
        except Exception:
            record = None
        name = spec.id
    elif getattr(envs, "env_fns", None):
        factory = envs.env_fns[0]  # type: ignore[attr-defined]  # Sync/Async keep their callables
    source = EnvSource(
        name=name,
        record=record,
        why_not=why,
        preset_id=None if spec is None else spec.id,
        vector=envs,
        _spec=built_spec,
        _factory=factory,
    )
    return source


def _call(name: str, build: Callable[[], Any]) -> Any:
    """Build an environment; a failure becomes one line that names it (and the extra)."""
    try:
        return build()
    except EnvError:
        raise
    except gym.error.DependencyNotInstalled as exc:
        text = str(exc).split("\n")[0]
        extra = next((e for key, e in _EXTRAS.items() if key in text.lower()), None)
        hint = f"; install it with pip install '{extra}'" if extra else ""
        raise EnvError(f"{name} needs an optional dependency: {text}{hint}") from None
    except ImportError as exc:
        text = str(exc).split("\n")[0]
        extra = next((e for key, e in _EXTRAS.items() if key in text.lower()), None)
        hint = f"; install it with pip install '{extra}'" if extra else ""
        raise EnvError(f"{name} needs a module that is not installed: {text}{hint}") from None
    except Exception as exc:
        text = str(exc).split("\n")[0]
        raise EnvError(f"building {name} failed: {type(exc).__name__}: {text}") from None


def _where(fn: Any) -> str:
    """`` (file.py:line)`` where a function is defined, or nothing."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return ""
    return f" ({Path(code.co_filename).name}:{code.co_firstlineno})"


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _check_kwargs(env_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    if env_kwargs is None:
        return {}
    if not isinstance(env_kwargs, Mapping) or not all(isinstance(k, str) for k in env_kwargs):
        raise EnvError(f"env_kwargs must be a mapping of names to values, got {env_kwargs!r}")
    return dict(env_kwargs)


def _check_wrappers(
    wrappers: Sequence[Callable[[gym.Env], gym.Env]] | None,
) -> tuple[Callable[[gym.Env], gym.Env], ...]:
    if wrappers is None:
        return ()
    if callable(wrappers):
        wrappers = [wrappers]
    out = tuple(wrappers)
    for wrapper in out:
        if not callable(wrapper):
            raise EnvError(f"a wrapper must be a callable env -> env, got {wrapper!r}")
    return out


def _import_path(obj: Any) -> str | None:
    """``"module:qualname"`` when importing that gives back ``obj`` itself, else None."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<" in qualname:
        return None
    path = f"{module}:{qualname}"
    try:
        found = import_object(path, "object")
    except EnvError:
        return None
    return path if found is obj else None


def _why_not_importable(objs: Sequence[Any]) -> str:
    for obj in objs:
        if _import_path(obj) is None:
            name = getattr(obj, "__qualname__", repr(obj))
            if getattr(obj, "__module__", None) == "__main__":
                return f"{name} is defined in __main__; define it in a module to record it"
            if "<lambda>" in name:
                return "a lambda has no name to import it by"
            return f"{name} cannot be imported by its name"
    return ""


def import_object(path: str, what: str) -> Any:
    """The object at ``"module:qualname"`` (imported), or one line saying why not."""
    module_name, _, qualname = path.partition(":")
    if not module_name or not qualname:
        raise EnvError(f"malformed {what} path {path!r} (expected 'module:name')")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise EnvError(f"cannot import {what} {path!r}: {exc}") from None
    return obj

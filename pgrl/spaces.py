"""Observation and action spaces: what the networks see, and the conversions at the boundary.

pgrl stores every observation as a flat float32 vector ``(O,)``: rollouts, the replay buffer
and the collector never know an observation's structure. A structured observation is
flattened once, where it leaves the environment, by :func:`flatten_obs`, in the layout of
``gymnasium.spaces.flatten``:

* Box of any shape (an image too): its values, row-major (a uint8 image keeps its 0..255
  values; the network's encoder scales them);
* Discrete(n, start): the one-hot vector of ``obs - start`` (n entries);
* MultiDiscrete(nvec, start): one one-hot vector per component, concatenated;
* MultiBinary: its 0/1 values;
* Dict: the parts of its sub-spaces in the Dict's key order; Tuple: in order.

The network's encoder (:mod:`pgrl.encoders`) knows the space and undoes this inside the
network. Actions cross the boundary the other way through :func:`to_env_actions`: the
networks always work with Discrete actions 0..n−1 and flat action vectors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from pgrl.errors import CheckpointError, EnvError

__all__ = [
    "ActionKind",
    "SpaceInfo",
    "flatten_obs",
    "from_env_actions",
    "is_batched",
    "space_from_json",
    "space_info",
    "space_to_json",
    "to_env_actions",
]

ActionKind = Literal["discrete", "box", "multidiscrete", "multibinary"]
ACTION_KINDS: tuple[str, ...] = ("discrete", "box", "multidiscrete", "multibinary")

# the most elements a space read from a file may have (a crafted file must not allocate
# gigabytes), and how deep Dict/Tuple spaces may nest
MAX_ELEMENTS = 10**8
MAX_DEPTH = 16


@dataclass(frozen=True)
class SpaceInfo:
    """What the networks need to know about an environment's spaces.

    ``obs_dim`` is the size of the flat float32 observation vector (:func:`flatten_obs`);
    ``act_dim`` is the number of actions (Discrete), of action dimensions (Box, flattened),
    of components (MultiDiscrete) or of bits (MultiBinary). A SpaceInfo built by hand with
    only the first fields describes a flat Box observation and a Discrete (``discrete=True``)
    or 1-D Box (``discrete=False``) action space, as before structured spaces existed.
    """

    obs_dim: int
    discrete: bool  # True only for a Discrete action space (a categorical policy)
    act_dim: int
    low: np.ndarray | None = None  # Box actions: flat float32 bounds
    high: np.ndarray | None = None
    obs_space: str = ""  # str(observation space), compared when a checkpoint is loaded
    act_space: str = ""
    observation_space: gym.Space[Any] | None = None  # the single (unbatched) spaces
    action_space: gym.Space[Any] | None = None
    action_kind: str = "discrete"  # "discrete" | "box" | "multidiscrete" | "multibinary"

    def __post_init__(self) -> None:
        # a hand-built SpaceInfo(discrete=False) is a Box action space
        if not self.discrete and self.action_kind == "discrete":
            object.__setattr__(self, "action_kind", "box")
        if self.action_kind not in ACTION_KINDS:
            raise ValueError(f"action_kind must be one of {ACTION_KINDS}, got {self.action_kind!r}")
        if self.discrete != (self.action_kind == "discrete"):
            raise ValueError("discrete=True goes with action_kind='discrete' and only with it")

    @property
    def action_shape(self) -> tuple[int, ...]:
        """Shape of one action on the network side: ``()`` for Discrete, ``(act_dim,)`` else."""
        return () if self.discrete else (self.act_dim,)

    @property
    def action_dtype(self) -> type[np.generic]:
        """NumPy dtype of network-side actions: int64 (Discrete, MultiDiscrete) or float32."""
        return np.int64 if self.action_kind in ("discrete", "multidiscrete") else np.float32

    @property
    def flat_obs(self) -> bool:
        """The observation is a 1-D Box: its flat form is ``np.asarray(obs, np.float32)``."""
        space = self.observation_space
        return space is None or (isinstance(space, gym.spaces.Box) and len(space.shape) == 1)

    @property
    def action_nvec(self) -> tuple[int, ...]:
        """MultiDiscrete: the number of choices of each (flattened) component; else ``()``."""
        space = self.action_space
        if isinstance(space, gym.spaces.MultiDiscrete):
            return tuple(int(n) for n in space.nvec.reshape(-1))
        return ()


def _obs_dim(space: gym.Space[Any], path: str) -> int:
    """Size of the flat form of one observation, or an EnvError naming the unsupported part."""
    if isinstance(space, gym.spaces.Box):
        if not (np.issubdtype(space.dtype, np.number) or space.dtype == np.bool_):
            raise EnvError(f"pgrl cannot flatten the observation{path} {space} (dtype)")
        return int(np.prod(space.shape, dtype=np.int64))
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return int(space.nvec.sum())
    if isinstance(space, gym.spaces.MultiBinary):
        return int(np.prod(space.shape, dtype=np.int64))
    if isinstance(space, gym.spaces.Dict):
        return sum(_obs_dim(sub, f"{path}[{key!r}]") for key, sub in space.spaces.items())
    if isinstance(space, gym.spaces.Tuple):
        return sum(_obs_dim(sub, f"{path}[{i}]") for i, sub in enumerate(space.spaces))
    raise EnvError(
        f"pgrl takes Box, Discrete, MultiDiscrete, MultiBinary, Dict and Tuple observations; "
        f"the observation{path} is {space}. Wrap the environment to turn it into one of those."
    )


def space_info(observation_space: gym.Space[Any], action_space: gym.Space[Any]) -> SpaceInfo:
    """Describe one environment's (unbatched) observation and action spaces for the networks.

    Raises:
        EnvError: an observation space pgrl cannot flatten (Graph, Text, Sequence, OneOf, an
            empty Dict), or an action space it cannot drive (a Box without finite bounds or
            with an integer dtype, Dict/Tuple actions, ...), in one line.
    """
    obs_dim = _obs_dim(observation_space, "")
    if obs_dim < 1:
        raise EnvError(f"the observation space {observation_space} has no elements")
    common: dict[str, Any] = {
        "obs_dim": obs_dim,
        "obs_space": str(observation_space),
        "act_space": str(action_space),
        "observation_space": observation_space,
        "action_space": action_space,
    }
    if isinstance(action_space, gym.spaces.Discrete):
        return SpaceInfo(discrete=True, act_dim=int(action_space.n), **common)
    if isinstance(action_space, gym.spaces.Box):
        if not np.issubdtype(action_space.dtype, np.floating):
            raise EnvError(
                f"pgrl needs a floating-point Box action space; got {action_space}. "
                "Use MultiDiscrete for integer actions."
            )
        low = action_space.low.reshape(-1).astype(np.float32)
        high = action_space.high.reshape(-1).astype(np.float32)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise EnvError(f"pgrl needs finite action bounds; this environment has {action_space}")
        if low.size < 1:
            raise EnvError(f"the action space {action_space} has no elements")
        return SpaceInfo(
            discrete=False, act_dim=low.size, low=low, high=high, action_kind="box", **common
        )
    if isinstance(action_space, gym.spaces.MultiDiscrete):
        return SpaceInfo(
            discrete=False,
            act_dim=int(action_space.nvec.size),
            action_kind="multidiscrete",
            **common,
        )
    if isinstance(action_space, gym.spaces.MultiBinary):
        return SpaceInfo(
            discrete=False,
            act_dim=int(np.prod(action_space.shape, dtype=np.int64)),
            action_kind="multibinary",
            **common,
        )
    raise EnvError(
        f"pgrl supports Discrete, Box, MultiDiscrete and MultiBinary action spaces; "
        f"got {action_space}"
    )


def _flatten_batch(space: gym.Space[Any], obs: Any) -> np.ndarray:
    """A batch of observations of ``space`` → ``(N, flatdim)`` float32."""
    if isinstance(space, (gym.spaces.Box, gym.spaces.MultiBinary)):
        array = np.asarray(obs, dtype=np.float32)
        return array.reshape(array.shape[0], -1)
    if isinstance(space, gym.spaces.Discrete):
        index = np.asarray(obs, dtype=np.int64).reshape(-1) - int(space.start)
        return _one_hot(index, int(space.n))[:, 0]
    if isinstance(space, gym.spaces.MultiDiscrete):
        values = np.asarray(obs, dtype=np.int64)
        n = values.shape[0]
        rows = (values - space.start).reshape(n, -1)
        nvec = space.nvec.reshape(-1).astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(nvec)[:-1]])
        if np.any(rows < 0) or np.any(rows >= nvec):
            raise EnvError(f"an observation lies outside {space}")
        out = np.zeros((n, int(nvec.sum())), dtype=np.float32)
        out[np.arange(n)[:, None], offsets + rows] = 1.0
        return out
    if isinstance(space, gym.spaces.Dict):
        return np.concatenate([_flatten_batch(sub, obs[key]) for key, sub in space.items()], 1)
    if isinstance(space, gym.spaces.Tuple):
        return np.concatenate(
            [_flatten_batch(sub, o) for sub, o in zip(space, obs, strict=True)], 1
        )
    raise EnvError(f"pgrl cannot flatten observations of {space}")


def _one_hot(index: np.ndarray, n: int) -> np.ndarray:
    """``(N,)`` integers in 0..n−1 → ``(N, 1, n)`` float32 one-hot rows."""
    if np.any(index < 0) or np.any(index >= n):
        raise EnvError(f"a Discrete observation lies outside 0..{n - 1} (after its start)")
    out = np.zeros((index.shape[0], 1, n), dtype=np.float32)
    out[np.arange(index.shape[0]), 0, index] = 1.0
    return out


def flatten_obs(info: SpaceInfo, obs: Any) -> np.ndarray:
    """A batch of raw observations (leading dimension N) → ``(N, O)`` float32.

    Row i equals ``gymnasium.spaces.flatten(observation_space, obs_i)`` as float32. A Dict
    batch is a dict of arrays, a Tuple batch a tuple of arrays (as vector environments
    return them). A 1-D Box takes the fast path ``np.asarray(obs, np.float32)``.

    Example:
        >>> info = space_info(gym.spaces.Discrete(3, start=-1), gym.spaces.Discrete(2))
        >>> flatten_obs(info, np.array([-1, 1])).tolist()
        [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    if info.flat_obs:
        return np.asarray(obs, dtype=np.float32)
    assert info.observation_space is not None
    return _flatten_batch(info.observation_space, obs)


def _is_batched(space: gym.Space[Any], obs: Any) -> bool:
    if isinstance(space, gym.spaces.Dict):
        key = next(iter(space.keys()))
        return _is_batched(space[key], obs[key])
    if isinstance(space, gym.spaces.Tuple):
        return _is_batched(space[0], obs[0])
    if isinstance(space, gym.spaces.Discrete):
        return np.ndim(obs) == 1
    if isinstance(space, gym.spaces.MultiDiscrete):
        return np.ndim(obs) == space.nvec.ndim + 1
    assert space.shape is not None
    return np.ndim(obs) == len(space.shape) + 1


def is_batched(info: SpaceInfo, obs: Any) -> bool:
    """Whether ``obs`` is a batch of observations (leading dimension N) or a single one.

    Example:
        >>> info = space_info(gym.spaces.Box(0, 255, (4, 4, 3), np.uint8), gym.spaces.Discrete(2))
        >>> is_batched(info, np.zeros((4, 4, 3))), is_batched(info, np.zeros((2, 4, 4, 3)))
        (False, True)
    """
    space = info.observation_space
    if space is None:
        return np.ndim(obs) == 2
    return _is_batched(space, obs)


def to_env_actions(info: SpaceInfo, actions: np.ndarray) -> np.ndarray:
    """Network-side actions ``(N, *action_shape)`` → what the vector environment's step takes.

    Discrete: 0..n−1 shifted by the space's start; Box: reshaped to ``(N, *shape)`` and
    clipped to the bounds (the unclipped action stays what the policy sampled);
    MultiDiscrete: reshaped and shifted by its start; MultiBinary: int8 0/1, reshaped.

    Example:
        >>> info = space_info(gym.spaces.Box(-1, 1, (2,)), gym.spaces.Discrete(3, start=-1))
        >>> to_env_actions(info, np.array([0, 2])).tolist()
        [-1, 1]
    """
    array = np.asarray(actions)
    space = info.action_space
    kind = info.action_kind
    if kind == "discrete":
        array = array.astype(np.int64, copy=False)
        if isinstance(space, gym.spaces.Discrete) and int(space.start) != 0:
            array = array + int(space.start)
        return array
    n = array.shape[0]
    if kind == "box":
        shape = space.shape if isinstance(space, gym.spaces.Box) else (info.act_dim,)
        assert info.low is not None and info.high is not None
        clipped = np.clip(array.reshape(n, info.act_dim), info.low, info.high)
        dtype = space.dtype if isinstance(space, gym.spaces.Box) else np.float32
        return clipped.astype(dtype, copy=False).reshape(n, *shape)
    if kind == "multidiscrete":
        assert isinstance(space, gym.spaces.MultiDiscrete)
        values = array.astype(np.int64, copy=False).reshape(n, *space.shape) + space.start
        return values.astype(space.dtype, copy=False)
    assert isinstance(space, gym.spaces.MultiBinary)
    return (array.reshape(n, *space.shape) > 0.5).astype(np.int8)


def from_env_actions(info: SpaceInfo, actions: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_env_actions` (for random warm-up samples of the action space).

    Example:
        >>> info = space_info(gym.spaces.Box(-1, 1, (2,)), gym.spaces.Discrete(3, start=-1))
        >>> from_env_actions(info, np.array([-1, 1])).tolist()
        [0, 2]
    """
    array = np.asarray(actions)
    space = info.action_space
    kind = info.action_kind
    if kind == "discrete":
        array = array.astype(np.int64)
        if isinstance(space, gym.spaces.Discrete) and int(space.start) != 0:
            array = array - int(space.start)
        return array
    n = array.shape[0]
    if kind == "multidiscrete":
        assert isinstance(space, gym.spaces.MultiDiscrete)
        return (array.astype(np.int64) - space.start).reshape(n, info.act_dim)
    return array.astype(np.float32).reshape(n, info.act_dim)


# ---------------------------------------------------------------------------- JSON form

_DTYPES = (
    *("float16", "float32", "float64", "int8", "int16", "int32", "int64"),
    *("uint8", "uint16", "uint32", "uint64", "bool"),
)


def _encode_number(x: Any) -> Any:
    """A JSON-safe scalar: ints and finite floats as numbers, ±inf and nan as strings."""
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    value = float(x)
    return value if math.isfinite(value) else str(value)


def _encode_array(array: np.ndarray) -> Any:
    """One scalar when every element is equal, else nested lists."""
    flat = array.reshape(-1)
    if flat.size > 0 and np.all(flat == flat[0]):
        return _encode_number(flat[0])
    return _nested(array)


def _nested(array: np.ndarray) -> Any:
    if array.ndim == 0:
        return _encode_number(array.item())
    return [_nested(a) for a in array]


def space_to_json(space: gym.Space[Any]) -> dict[str, Any]:
    """A JSON-ready description of ``space`` that :func:`space_from_json` rebuilds.

    Example:
        >>> space_to_json(gym.spaces.Discrete(3, start=-1))
        {'type': 'Discrete', 'n': 3, 'start': -1}
    """
    if isinstance(space, gym.spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": _encode_array(space.low),
            "high": _encode_array(space.high),
        }
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gym.spaces.MultiDiscrete):
        return {
            "type": "MultiDiscrete",
            "nvec": _nested(space.nvec),
            "start": _nested(space.start),
            "dtype": str(space.dtype),
        }
    if isinstance(space, gym.spaces.MultiBinary):
        n = space.n
        return {"type": "MultiBinary", "n": n if isinstance(n, int) else [int(v) for v in n]}
    if isinstance(space, gym.spaces.Dict):
        for key in space.spaces:
            if not isinstance(key, str):
                raise EnvError(f"pgrl saves Dict spaces with string keys; {space} has {key!r}")
        return {"type": "Dict", "spaces": [[k, space_to_json(s)] for k, s in space.items()]}
    if isinstance(space, gym.spaces.Tuple):
        return {"type": "Tuple", "spaces": [space_to_json(s) for s in space.spaces]}
    raise EnvError(f"pgrl cannot save the space {space}")


def _fail(what: str) -> CheckpointError:
    return CheckpointError(f"malformed space in the checkpoint: {what}")


def _int(value: Any, what: str, low: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(f"{what} must be an integer, got {value!r}")
    if low is not None and value < low:
        raise _fail(f"{what} must be >= {low}, got {value}")
    return value


def _shape(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, list) or len(value) > 32:
        raise _fail(f"{what} must be a list of at most 32 sizes, got {value!r}")
    shape = tuple(_int(v, what, 0) for v in value)
    if math.prod(shape) > MAX_ELEMENTS:
        raise _fail(f"{what} {shape} has more than {MAX_ELEMENTS} elements")
    return shape


def _decode_scalar(value: Any, what: str) -> float | int | bool:
    if isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    raise _fail(f"{what} holds {value!r}, not a number")


def _decode_value(value: Any, dtype: str, what: str) -> float | int | bool:
    """One element, checked to fit ``dtype`` exactly (no silent unsafe cast)."""
    scalar = _decode_scalar(value, what)
    kind = np.dtype(dtype).kind
    if kind == "b" and not isinstance(scalar, bool):
        raise _fail(f"{what} holds {value!r} for a bool space")
    if kind in "iu":
        info = np.iinfo(np.dtype(dtype))
        if isinstance(scalar, bool) or not isinstance(scalar, int):
            raise _fail(f"{what} holds {value!r} for an integer ({dtype}) space")
        if not info.min <= scalar <= info.max:
            raise _fail(f"{what} holds {value!r}, outside {dtype}")
    return scalar


def _decode_array(value: Any, shape: tuple[int, ...], dtype: str, what: str) -> np.ndarray:
    """A scalar broadcast to ``shape``, or nested lists of exactly that shape."""
    if not isinstance(value, list):
        return np.full(shape, _decode_value(value, dtype, what), dtype=dtype)
    flat: list[Any] = []

    def walk(node: Any, depth: int) -> None:
        if depth == len(shape):
            flat.append(_decode_value(node, dtype, what))
            return
        if not isinstance(node, list) or len(node) != shape[depth]:
            raise _fail(f"{what} does not have the shape {shape}")
        for child in node:
            walk(child, depth + 1)

    walk(value, 0)
    try:
        return np.array(flat, dtype=dtype).reshape(shape)
    except (ValueError, OverflowError) as exc:
        raise _fail(f"{what}: {exc}") from None


def _dtype(value: Any, what: str) -> str:
    if value not in _DTYPES:
        raise _fail(f"{what} must be one of {', '.join(_DTYPES)}, got {value!r}")
    return str(value)


def _from_json(data: Any, depth: int) -> gym.Space[Any]:
    if depth > MAX_DEPTH:
        raise _fail(f"spaces nested more than {MAX_DEPTH} deep")
    if not isinstance(data, Mapping) or not isinstance(data.get("type"), str):
        raise _fail(f"expected an object with a 'type', got {str(data)[:80]!r}")
    kind = data["type"]
    try:
        if kind == "Box":
            shape = _shape(data["shape"], "Box shape")
            dtype = _dtype(data["dtype"], "Box dtype")
            low = _decode_array(data["low"], shape, dtype, "Box low")
            high = _decode_array(data["high"], shape, dtype, "Box high")
            return gym.spaces.Box(low, high, shape, np.dtype(dtype))
        if kind == "Discrete":
            n = _int(data["n"], "Discrete n", 1)
            if n > MAX_ELEMENTS:
                raise _fail(f"Discrete n = {n} is more than {MAX_ELEMENTS}")
            return gym.spaces.Discrete(n, start=_int(data.get("start", 0), "Discrete start"))
        if kind == "MultiDiscrete":
            nvec_data = data["nvec"]
            shape = _nested_shape(nvec_data, "MultiDiscrete nvec")
            dtype = _dtype(data.get("dtype", "int64"), "MultiDiscrete dtype")
            nvec = _decode_array(nvec_data, shape, "int64", "MultiDiscrete nvec")
            start = _decode_array(data.get("start", 0), shape, "int64", "MultiDiscrete start")
            if np.any(nvec < 1) or int(nvec.sum()) > MAX_ELEMENTS:
                raise _fail(f"MultiDiscrete nvec must be >= 1 and sum to at most {MAX_ELEMENTS}")
            return gym.spaces.MultiDiscrete(nvec, dtype=dtype, start=start)
        if kind == "MultiBinary":
            n = data["n"]
            size = (
                _shape(n, "MultiBinary n")
                if isinstance(n, list)
                else (_int(n, "MultiBinary n", 1),)
            )
            if math.prod(size) > MAX_ELEMENTS:
                raise _fail(f"MultiBinary n = {n} has more than {MAX_ELEMENTS} elements")
            return gym.spaces.MultiBinary(list(size) if isinstance(n, list) else size[0])
        if kind in ("Dict", "Tuple"):
            parts = data["spaces"]
            if not isinstance(parts, list) or len(parts) > 1024:
                raise _fail(f"{kind} spaces must be a list of at most 1024 entries")
            if kind == "Tuple":
                return gym.spaces.Tuple([_from_json(p, depth + 1) for p in parts])
            pairs = []
            for pair in parts:
                if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
                    raise _fail("Dict spaces must be [key, space] pairs with string keys")
                pairs.append((pair[0], _from_json(pair[1], depth + 1)))
            if len({k for k, _ in pairs}) != len(pairs):
                raise _fail("Dict keys repeat")
            return gym.spaces.Dict(pairs)  # a sequence keeps its order
    except KeyError as exc:
        raise _fail(f"{kind} lacks the field {exc.args[0]!r}") from None
    except (ValueError, TypeError, OverflowError, AssertionError) as exc:  # gymnasium's checks
        raise _fail(
            f"{kind}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None
    raise _fail(f"unknown space type {kind!r}")


def _nested_shape(value: Any, what: str) -> tuple[int, ...]:
    """The shape of nested lists (a scalar: ``()``), checked against the size limits."""
    shape: list[int] = []
    node = value
    while isinstance(node, list):
        if len(shape) >= 32:
            raise _fail(f"{what} nests too deep")
        shape.append(len(node))
        if not node:
            break
        node = node[0]
    if math.prod(shape) > MAX_ELEMENTS:
        raise _fail(f"{what} has more than {MAX_ELEMENTS} elements")
    return tuple(shape)


def space_from_json(data: Mapping[str, Any]) -> gym.Space[Any]:
    """The space :func:`space_to_json` described.

    Raises:
        CheckpointError: malformed data, an unknown type, or more than 10**8 elements.

    Example:
        >>> space_from_json({"type": "Discrete", "n": 3, "start": -1})
        Discrete(3, start=-1)
    """
    return _from_json(data, 0)

"""pgrl.spaces: flattening against hand values and gymnasium.spaces.flatten, action
conversions both ways, the JSON form, and the errors for spaces pgrl cannot take."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces as S

from pgrl.errors import CheckpointError, EnvError
from pgrl.spaces import (
    SpaceInfo,
    flatten_obs,
    from_env_actions,
    is_batched,
    space_from_json,
    space_info,
    space_to_json,
    to_env_actions,
)

IMAGE = S.Box(0, 255, (6, 5, 3), np.uint8)
NESTED = S.Dict(
    {
        "pixels": S.Box(0, 255, (2, 3, 1), np.uint8),
        "position": S.Box(-1.0, 1.0, (2,), np.float32),
        "mode": S.Discrete(3, start=-1),
        "flags": S.MultiBinary(2),
        "grid": S.MultiDiscrete([[2, 3], [4, 2]], start=[[0, 1], [-2, 0]]),
        "pair": S.Tuple((S.Discrete(2), S.Box(-2.0, 2.0, (1, 2), np.float64))),
    }
)
OBSERVATION_SPACES = [
    S.Box(-1.0, 1.0, (4,), np.float32),
    S.Box(-1.0, 1.0, (2, 3), np.float64),
    IMAGE,
    S.Discrete(5),
    S.Discrete(3, start=-1),
    S.MultiDiscrete([3, 2, 4]),
    S.MultiBinary([2, 2]),
    S.Tuple((S.Discrete(2), S.Box(0.0, 1.0, (3,)))),
    NESTED,
]


def batch_of(space: gym.Space, n: int) -> tuple[list, object]:
    """n samples of ``space``, one by one and stacked as a vector environment returns them."""
    space.seed(0)
    samples = [space.sample() for _ in range(n)]
    batched_space = gym.vector.utils.batch_space(space, n)
    out = gym.vector.utils.create_empty_array(space, n)
    return samples, gym.vector.utils.concatenate(space, samples, out) if batched_space else None


@pytest.mark.parametrize("space", OBSERVATION_SPACES, ids=str)
def test_flatten_obs_matches_gymnasium_flatten_row_by_row(space: gym.Space) -> None:
    info = space_info(space, S.Discrete(2))
    samples, batch = batch_of(space, 5)
    flat = flatten_obs(info, batch)
    expected = np.stack([S.flatten(space, s).astype(np.float32) for s in samples])
    assert flat.dtype == np.float32 and flat.shape == (5, info.obs_dim)
    assert info.obs_dim == S.flatdim(space)
    np.testing.assert_array_equal(flat, expected)


def test_discrete_observation_is_one_hot_of_obs_minus_start() -> None:
    info = space_info(S.Discrete(3, start=-1), S.Discrete(2))
    assert flatten_obs(info, np.array([0, -1, 1])).tolist() == [
        [0, 1, 0],
        [1, 0, 0],
        [0, 0, 1],
    ]


def test_multidiscrete_observation_concatenates_one_hots() -> None:
    # nvec (2, 3): component 0 takes entries 0-1, component 1 entries 2-4
    info = space_info(S.MultiDiscrete([2, 3]), S.Discrete(2))
    assert flatten_obs(info, np.array([[1, 0], [0, 2]])).tolist() == [
        [0, 1, 1, 0, 0],
        [1, 0, 0, 0, 1],
    ]


def test_dict_observation_is_its_parts_in_key_order() -> None:
    # a Dict built from a dict sorts its keys: "a" before "b"
    space = S.Dict({"b": S.Box(-5.0, 5.0, (2,)), "a": S.Discrete(2)})
    info = space_info(space, S.Discrete(2))
    batch = {"a": np.array([1]), "b": np.array([[3.0, 4.0]], np.float32)}
    assert flatten_obs(info, batch).tolist() == [[0.0, 1.0, 3.0, 4.0]]


def test_image_keeps_its_0_to_255_values() -> None:
    info = space_info(IMAGE, S.Discrete(2))
    image = np.full((1, *IMAGE.shape), 255, np.uint8)
    assert flatten_obs(info, image).max() == 255.0
    assert not info.flat_obs


def test_out_of_range_discrete_observation_is_an_error() -> None:
    info = space_info(S.Discrete(3), S.Discrete(2))
    with pytest.raises(EnvError, match="outside"):
        flatten_obs(info, np.array([3]))


def test_flat_box_takes_the_fast_path_unchanged() -> None:
    info = space_info(S.Box(-1.0, 1.0, (3,), np.float64), S.Discrete(2))
    obs = np.array([[0.1, 0.2, 0.3]])
    assert info.flat_obs
    np.testing.assert_array_equal(flatten_obs(info, obs), obs.astype(np.float32))


@pytest.mark.parametrize("space", OBSERVATION_SPACES, ids=str)
def test_is_batched_tells_one_observation_from_a_batch(space: gym.Space) -> None:
    info = space_info(space, S.Discrete(2))
    samples, batch = batch_of(space, 3)
    assert is_batched(info, batch)
    assert not is_batched(info, samples[0])


def test_hand_built_space_info_keeps_its_old_meaning() -> None:
    box = SpaceInfo(obs_dim=3, discrete=False, act_dim=1)
    discrete = SpaceInfo(obs_dim=3, discrete=True, act_dim=2)
    assert box.action_kind == "box" and box.action_shape == (1,)
    assert box.action_dtype is np.float32 and box.flat_obs
    assert discrete.action_kind == "discrete" and discrete.action_shape == ()
    assert discrete.action_dtype is np.int64


def test_space_info_of_each_action_space() -> None:
    obs = S.Box(-1.0, 1.0, (2,))
    discrete = space_info(obs, S.Discrete(4, start=2))
    assert (discrete.discrete, discrete.act_dim, discrete.action_kind) == (True, 4, "discrete")
    box = space_info(obs, S.Box(-2.0, 2.0, (2, 3)))
    assert (box.discrete, box.act_dim, box.action_kind) == (False, 6, "box")
    assert box.low is not None and box.low.shape == (6,) and box.low.dtype == np.float32
    multi = space_info(obs, S.MultiDiscrete([3, 2]))
    assert (multi.act_dim, multi.action_kind, multi.action_nvec) == (2, "multidiscrete", (3, 2))
    assert multi.action_dtype is np.int64 and multi.action_shape == (2,)
    binary = space_info(obs, S.MultiBinary([2, 3]))
    assert (binary.act_dim, binary.action_kind, binary.action_dtype) == (
        6,
        "multibinary",
        np.float32,
    )
    assert box.obs_space == str(obs) and box.act_space == str(S.Box(-2.0, 2.0, (2, 3)))


@pytest.mark.parametrize(
    "obs_space",
    [
        S.Text(5),
        S.Graph(S.Box(0, 1, (2,)), None),
        S.Sequence(S.Discrete(2)),
        S.Dict({"ok": S.Discrete(2), "bad": S.Text(3)}),
        S.Dict({}),
    ],
    ids=str,
)
def test_unsupported_observation_space_is_one_clear_error(obs_space: gym.Space) -> None:
    with pytest.raises(EnvError) as info:
        space_info(obs_space, S.Discrete(2))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "act_space",
    [
        S.Box(-np.inf, np.inf, (2,)),
        S.Box(0, 10, (2,), np.int64),
        S.Dict({"a": S.Discrete(2)}),
        S.Tuple((S.Discrete(2),)),
    ],
    ids=str,
)
def test_unsupported_action_space_is_one_clear_error(act_space: gym.Space) -> None:
    with pytest.raises(EnvError) as info:
        space_info(S.Box(-1.0, 1.0, (2,)), act_space)
    assert "\n" not in str(info.value)


def test_discrete_actions_shift_by_start_both_ways() -> None:
    info = space_info(S.Box(-1.0, 1.0, (2,)), S.Discrete(3, start=-1))
    env_actions = to_env_actions(info, np.array([0, 1, 2]))
    assert env_actions.tolist() == [-1, 0, 1]
    assert all(info.action_space.contains(a) for a in env_actions)
    assert from_env_actions(info, env_actions).tolist() == [0, 1, 2]


def test_box_actions_are_reshaped_and_clipped() -> None:
    space = S.Box(
        np.array([[-1, 0]], np.float32), np.array([[1, 2]], np.float32), (1, 2), np.float32
    )
    info = space_info(S.Box(-1.0, 1.0, (2,)), space)
    actions = np.array([[-3.0, 1.0], [0.5, 9.0]], np.float32)
    env_actions = to_env_actions(info, actions)
    assert env_actions.shape == (2, 1, 2) and env_actions.dtype == np.float32
    assert env_actions.tolist() == [[[-1.0, 1.0]], [[0.5, 2.0]]]
    np.testing.assert_array_equal(from_env_actions(info, env_actions), [[-1, 1], [0.5, 2]])


def test_multidiscrete_actions_add_start_and_reshape() -> None:
    space = S.MultiDiscrete([[3, 2]], start=[[-1, 5]])
    info = space_info(S.Box(-1.0, 1.0, (2,)), space)
    env_actions = to_env_actions(info, np.array([[0, 1], [2, 0]]))
    assert env_actions.tolist() == [[[-1, 6]], [[1, 5]]]
    assert all(space.contains(a) for a in env_actions)
    assert from_env_actions(info, env_actions).tolist() == [[0, 1], [2, 0]]


def test_multibinary_actions_become_int8_bits() -> None:
    space = S.MultiBinary([2, 2])
    info = space_info(S.Box(-1.0, 1.0, (2,)), space)
    env_actions = to_env_actions(info, np.array([[1.0, 0.0, 0.0, 1.0]], np.float32))
    assert env_actions.dtype == np.int8 and env_actions.tolist() == [[[1, 0], [0, 1]]]
    assert space.contains(env_actions[0])
    assert from_env_actions(info, env_actions).tolist() == [[1.0, 0.0, 0.0, 1.0]]


@pytest.mark.parametrize(
    "act_space",
    [
        S.Discrete(4, start=3),
        S.Box(-2.0, 3.0, (2, 2)),
        S.MultiDiscrete([2, 5], start=[1, -3]),
        S.MultiBinary(3),
    ],
    ids=str,
)
def test_random_samples_round_trip_through_network_side(act_space: gym.Space) -> None:
    info = space_info(S.Box(-1.0, 1.0, (2,)), act_space)
    vector_space = gym.vector.utils.batch_space(act_space, 4)
    vector_space.seed(0)
    sample = vector_space.sample()
    network = from_env_actions(info, sample)
    assert network.shape == (4, *info.action_shape) and network.dtype == info.action_dtype
    np.testing.assert_array_equal(to_env_actions(info, network), sample)


ROUND_TRIP = [
    *OBSERVATION_SPACES,
    S.Box(-np.inf, np.inf, (3,), np.float32),
    S.Box(np.array([-1.0, -np.inf]), np.array([np.inf, 2.5]), (2,), np.float64),
    S.Box(0, 7, (2, 2), np.int32),
    S.MultiBinary(4),
    S.Dict([("z", S.Discrete(2)), ("a", S.Box(0.0, 1.0, (1,)))]),  # insertion order kept
]


@pytest.mark.parametrize("space", ROUND_TRIP, ids=str)
def test_space_json_round_trip(space: gym.Space) -> None:
    data = json.loads(json.dumps(space_to_json(space), allow_nan=False))
    rebuilt = space_from_json(data)
    assert rebuilt == space
    assert str(rebuilt) == str(space)
    if isinstance(space, S.Dict):
        assert list(rebuilt.keys()) == list(space.keys())
    if isinstance(space, S.Box):
        assert rebuilt.dtype == space.dtype
        np.testing.assert_array_equal(rebuilt.low, space.low)
        np.testing.assert_array_equal(rebuilt.high, space.high)


def test_uniform_box_bounds_are_stored_as_one_number() -> None:
    assert space_to_json(S.Box(0, 255, (84, 84, 3), np.uint8)) == {
        "type": "Box",
        "shape": [84, 84, 3],
        "dtype": "uint8",
        "low": 0,
        "high": 255,
    }


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"type": "Nope"},
        {"type": 3},
        {"type": "Box", "shape": [2], "dtype": "float32", "low": 0},
        {"type": "Box", "shape": [2], "dtype": "object", "low": 0, "high": 1},
        {"type": "Box", "shape": [10**5, 10**5], "dtype": "float32", "low": 0, "high": 1},
        {"type": "Box", "shape": [-1], "dtype": "float32", "low": 0, "high": 1},
        {"type": "Box", "shape": "2", "dtype": "float32", "low": 0, "high": 1},
        {"type": "Box", "shape": [2], "dtype": "float32", "low": [0], "high": 1},
        {"type": "Box", "shape": [2], "dtype": "float32", "low": ["x", 1], "high": 1},
        {"type": "Box", "shape": [2], "dtype": "uint8", "low": "-inf", "high": 1},
        {"type": "Box", "shape": [1], "dtype": "float32", "low": 2, "high": 1},
        {"type": "Discrete", "n": 0},
        {"type": "Discrete", "n": 10**12},
        {"type": "Discrete", "n": 2.5},
        {"type": "Discrete", "n": True},
        {"type": "MultiDiscrete", "nvec": [2, 0]},
        {"type": "MultiDiscrete", "nvec": [[2], [3, 4]]},
        {"type": "MultiDiscrete", "nvec": [10**9]},
        {"type": "MultiBinary", "n": -3},
        {"type": "MultiBinary", "n": [10**9, 10]},
        {"type": "Dict", "spaces": {"a": {"type": "Discrete", "n": 2}}},
        {
            "type": "Dict",
            "spaces": [["a", {"type": "Discrete", "n": 2}], ["a", {"type": "Discrete", "n": 2}]],
        },
        {"type": "Dict", "spaces": [[1, {"type": "Discrete", "n": 2}]]},
        {"type": "Tuple", "spaces": [{"type": "Discrete"}]},
    ],
    ids=lambda d: json.dumps(d)[:60],
)
def test_malformed_space_json_is_one_checkpoint_error(data: object) -> None:
    with pytest.raises(CheckpointError) as info:
        space_from_json(data)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_deeply_nested_space_json_is_refused() -> None:
    data: dict = {"type": "Discrete", "n": 2}
    for _ in range(100):
        data = {"type": "Tuple", "spaces": [data]}
    with pytest.raises(CheckpointError, match="nested"):
        space_from_json(data)

"""Tests for pgrl.config: presets read from pgrl/presets/*.yaml, and renamed fields."""

from __future__ import annotations

import dataclasses
import importlib.resources
import os
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml

from pgrl.algos import ALGORITHMS, DDPGConfig, PPOConfig, ReinforceConfig, SACConfig, TD3Config
from pgrl.config import (
    INT_UPPER_BOUNDS,
    MAX_CONFIG_BYTES,
    MAX_INT_FIELD,
    RENAMED_FIELDS,
    build_config,
    load_yaml_config,
    preset,
    preset_envs,
    preset_source,
    preset_steps,
)
from pgrl.errors import ConfigError

PRESET_CASES = [(algo, env) for algo in ALGORITHMS for env in preset_envs(algo)]


def test_every_preset_file_belongs_to_an_algorithm() -> None:
    folder = importlib.resources.files("pgrl") / "presets"
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".yaml"))
    assert names == sorted(f"{algo}.yaml" for algo in ALGORITHMS)


@pytest.mark.parametrize(("algo", "env_id"), PRESET_CASES)
def test_preset_builds_its_config_with_the_field_types(algo: str, env_id: str) -> None:
    cls = ALGORITHMS[algo].config
    values = preset(algo, env_id)
    config = build_config(cls, values)
    hints = typing.get_type_hints(cls)
    for name, value in values.items():
        assert getattr(config, name) == value
        kind = hints[name]
        if kind in (int, float, bool):
            assert type(value) is kind, (name, value)
        if typing.get_origin(kind) is tuple:
            assert isinstance(value, tuple), (name, value)


@pytest.mark.parametrize(("algo", "env_id"), PRESET_CASES)
def test_preset_names_its_source_and_budget(algo: str, env_id: str) -> None:
    source = preset_source(algo, env_id)
    assert isinstance(source, str) and len(source) > 10 and "\n" not in source
    assert preset_steps(algo, env_id, default=-1) > 0


def test_preset_values_are_read_from_the_yaml_as_written() -> None:
    # pgrl/presets/ddpg.yaml: hidden_sizes [64, 64] comes back as the tuple the config holds
    assert preset("ddpg", "Pendulum-v1") == {
        "hidden_sizes": (64, 64),
        "minibatch_size": 128,
        "learning_starts": 1000,
        "gamma": 0.98,
    }
    assert preset("ppo", "CartPole-v1")["learning_rate"] == 1e-3
    assert preset_steps("td3", "HalfCheetah-v5") == 1_000_000


def test_missing_preset_is_empty_with_the_default_budget() -> None:
    assert preset("ddpg", "CartPole-v1") == {}
    assert preset("no-such-algo", "CartPole-v1") == {}
    assert preset_source("ppo", "MountainCar-v0") is None
    assert preset_steps("ppo", "MountainCar-v0", default=123) == 123


def test_preset_files_write_numbers_yaml_reads_as_numbers() -> None:
    # YAML 1.1 reads 3e-4 as a string; the files write 3.0e-4 so that they mean what they say
    for algo, spec in ALGORITHMS.items():
        hints = typing.get_type_hints(spec.config)
        text = (importlib.resources.files("pgrl") / "presets" / f"{algo}.yaml").read_text()
        for env_id, entry in yaml.safe_load(text).items():
            for name, value in entry.items():
                if hints.get(name) in (int, float):
                    assert isinstance(value, int | float), (algo, env_id, name, value)


@pytest.mark.parametrize("cls", [DDPGConfig, TD3Config, SACConfig])
def test_off_policy_minibatch_is_named_minibatch_size(cls: type) -> None:
    names = {f.name for f in dataclasses.fields(cls)}
    assert "minibatch_size" in names and "batch_size" not in names
    with pytest.raises(
        ConfigError, match=f"{cls.__name__}: batch_size was renamed to minibatch_size"
    ):
        build_config(cls, {"batch_size": 64})


def test_reinforce_critic_step_size_is_critic_learning_rate() -> None:
    assert (
        build_config(ReinforceConfig, {"critic_learning_rate": 2e-3}).critic_learning_rate == 2e-3
    )
    with pytest.raises(
        ConfigError, match="value_learning_rate was renamed to critic_learning_rate"
    ):
        build_config(ReinforceConfig, {"value_learning_rate": 2e-3})


def test_derived_batch_size_is_not_reported_as_renamed() -> None:
    with pytest.raises(ConfigError, match=r"PPOConfig: batch_size is derived \(") as info:
        build_config(PPOConfig, {"batch_size": 64})
    assert "renamed" not in str(info.value)


def test_rename_and_typo_are_reported_together() -> None:
    with pytest.raises(ConfigError) as info:
        build_config(DDPGConfig, {"batch_size": 64, "gama": 0.9})
    message = str(info.value)
    assert "batch_size was renamed to minibatch_size" in message
    assert "gama (did you mean gamma?)" in message


def test_renamed_fields_point_at_real_fields() -> None:
    every_field = {f.name for spec in ALGORITHMS.values() for f in dataclasses.fields(spec.config)}
    assert set(RENAMED_FIELDS.values()) <= every_field


# -- bounds and hostile config files (issue 11) ---------------------------------------------


INT_BOUND_CASES = [
    (spec.config, field.name)
    for spec in ALGORITHMS.values()
    for field in dataclasses.fields(spec.config)
    if typing.get_type_hints(spec.config)[field.name] is int
]


@pytest.mark.parametrize(
    ("cls", "name"), INT_BOUND_CASES, ids=[f"{c.__name__}.{n}" for c, n in INT_BOUND_CASES]
)
def test_every_int_field_has_a_bound_named_in_one_line(cls: type, name: str) -> None:
    high, _ = INT_UPPER_BOUNDS.get(name, (MAX_INT_FIELD, ""))
    for value in (high + 1, float(high) * 10, 10**30, "1e12" if high < 10**12 else "1e300"):
        with pytest.raises(ConfigError) as caught:
            build_config(cls, {name: value})
        message = str(caught.value)
        assert f"{name} must be at most {high:,}" in message and "\n" not in message


def test_an_int_field_without_its_own_bound_gets_the_default() -> None:
    @dataclasses.dataclass(frozen=True)
    class Custom:
        window: int = 1

    with pytest.raises(ConfigError, match=f"window must be at most {MAX_INT_FIELD:,}"):
        build_config(Custom, {"window": 2**40})
    assert build_config(Custom, {"window": 2**20}).window == 2**20


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("0", "every size must be in"),
        (0, "must be a list of integers"),
        ((), "at least one hidden layer"),
        ("", "at least one hidden layer"),
        ((16_385, 16_384), "weights"),
        ((2**20, 2**20), "every size must be in"),
        ([[1, 2], 3], "must be an integer"),
        (list(range(1, 2_000)), "at most 1,000"),
    ],
)
def test_hidden_sizes_that_cannot_build_are_refused(value: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        build_config(PPOConfig, {"hidden_sizes": value})


def test_the_largest_allowed_network_is_allowed() -> None:
    config = build_config(PPOConfig, {"hidden_sizes": "16384,16384"})
    assert config.hidden_sizes == (16_384, 16_384)


def test_a_yaml_config_over_the_size_limit_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("gamma: 0.99\n" + "#" * MAX_CONFIG_BYTES)
    with pytest.raises(ConfigError, match="larger than 1,000,000 bytes"):
        load_yaml_config(path)
    path.write_text("gamma: 0.99\n" + "#" * (MAX_CONFIG_BYTES - 20))
    assert load_yaml_config(path) == {"gamma": 0.99}


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"\x00\x01\x02binary", "not UTF-8 text"),
        (b"gamma: \xff\xfe", "not UTF-8 text"),
        (b"gamma: [" * 1, "not valid YAML"),
        (b"[" * 50_000, "nested too deeply"),
        (b"num_envs: " + b"9" * 5_000, "cannot read"),
        (b"- 1\n- 2\n", "must hold a mapping"),
    ],
    ids=["binary", "latin-1", "invalid", "deep", "huge-int", "list"],
)
def test_a_hostile_yaml_config_is_one_line(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=match) as caught:
        load_yaml_config(path)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 600


def test_a_billion_laughs_yaml_is_refused_without_expanding_it(tmp_path: Path) -> None:
    lines = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 10)}]")
    lines.append("hidden_sizes: *i")
    path = tmp_path / "laughs.yaml"
    path.write_text("\n".join(lines))
    values = load_yaml_config(path)
    with pytest.raises(ConfigError, match="hidden_sizes") as caught:
        build_config(PPOConfig, {"hidden_sizes": values["hidden_sizes"]})
    assert len(str(caught.value)) < 400


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_config_that_is_not_a_regular_file_is_refused(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "c.yaml"
    if kind == "directory":
        path.mkdir()
        match = "is a directory"
    else:
        if not hasattr(os, "mkfifo"):
            pytest.skip("needs FIFOs")
        os.mkfifo(path)
        match = "not a regular file"
    with pytest.raises(ConfigError, match=match):
        load_yaml_config(path)


def test_an_env_without_a_preset_gets_defaults_for_its_action_space() -> None:
    from pgrl.train import resolve_config

    box = resolve_config("ppo", "InvertedPendulum-v5", action_kind="box")
    assert (box.num_envs, box.rollout_steps, box.entropy_coef, box.normalize_obs) == (
        1,
        2048,
        0.0,
        True,
    )
    discrete = resolve_config("ppo", "MountainCar-v0", action_kind="discrete")
    assert (discrete.num_envs, discrete.rollout_steps, discrete.entropy_coef) == (4, 128, 0.01)
    preset = resolve_config("ppo", "Pendulum-v1", action_kind="box")  # its preset wins
    assert (preset.num_envs, preset.rollout_steps) == (4, 1024)
    mine = resolve_config("ppo", "X-v0", {"num_envs": 3}, action_kind="box")
    assert (mine.num_envs, mine.rollout_steps) == (3, 2048)


def test_the_random_warm_up_scales_with_a_short_budget_unless_set() -> None:
    from pgrl.train import resolve_config

    assert resolve_config("td3", "X-v0", steps=20_000).learning_starts == 2_000
    assert resolve_config("td3", "X-v0", steps=1_000_000).learning_starts == 25_000
    assert resolve_config("td3", "X-v0", {"learning_starts": 7}, steps=20_000).learning_starts == 7
    # a preset's warm-up is for the preset's budget: capped the same way for a shorter one
    assert resolve_config("td3", "Pendulum-v1", steps=20_000).learning_starts == 1_000
    assert resolve_config("td3", "Pendulum-v1", steps=2_000).learning_starts == 200
    assert resolve_config("td3", "HalfCheetah-v5", steps=1_000_000).learning_starts == 25_000
    assert resolve_config("td3", "HalfCheetah-v5", steps=100_000).learning_starts == 10_000
    mine = resolve_config("td3", "HalfCheetah-v5", {"learning_starts": 30_000}, steps=100_000)
    assert mine.learning_starts == 30_000


def test_a_run_records_where_its_hyperparameters_come_from(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    import pgrl

    pgrl.train(
        "td3",
        "InvertedPendulum-v5",
        steps=300,
        config={"hidden_sizes": (8,)},
        run_dir=tmp_path / "r",
        eval_episodes=0,
    )
    defaults = json.loads((tmp_path / "r" / "config.json").read_text())["defaults"]
    assert defaults.startswith("no preset for InvertedPendulum-v5: td3's own defaults")
    assert "set by you: hidden_sizes" in defaults and "learning_starts 30" in defaults

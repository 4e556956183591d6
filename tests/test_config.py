"""Tests for pgrl.config: presets read from pgrl/presets/*.yaml, and renamed fields."""

from __future__ import annotations

import dataclasses
import importlib.resources
import typing

import pytest
import yaml

from pgrl.algos import ALGORITHMS, DDPGConfig, PPOConfig, ReinforceConfig, SACConfig, TD3Config
from pgrl.config import (
    RENAMED_FIELDS,
    build_config,
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

"""Every algorithm on structured spaces (image and Dict observations; Discrete with a start,
Box of any shape, MultiDiscrete and MultiBinary actions), custom networks, and devices."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces as S
from torch import Tensor, nn
from user_networks import TinyPolicy

from pgrl.algos import ALGORITHMS, build_algorithm, get_spec
from pgrl.encoders import ImageEncoder, MultiEncoder
from pgrl.errors import ConfigError, EnvError
from pgrl.nets import CategoricalPolicy, GaussianPolicy
from pgrl.spaces import SpaceInfo, from_env_actions, space_info, to_env_actions
from pgrl.types import Batch, Rollout

IMAGE = S.Box(0, 255, (6, 6, 1), np.uint8)
DICT = S.Dict({"pixels": IMAGE, "position": S.Box(-1.0, 1.0, (2,)), "mode": S.Discrete(3)})
ACTIONS = {
    "discrete": S.Discrete(3, start=-1),
    "box": S.Box(-2.0, 2.0, (2, 2), np.float32),
    "multidiscrete": S.MultiDiscrete([3, 2]),
    "multibinary": S.MultiBinary(3),
}
ON_POLICY = ("reinforce", "a2c", "ppo")
OFF_POLICY = ("ddpg", "td3", "sac")
SMALL = {
    "reinforce": {"hidden_sizes": (8,)},
    "a2c": {"hidden_sizes": (8,)},
    "ppo": {"hidden_sizes": (8,), "num_envs": 2, "rollout_steps": 4, "minibatch_size": 4},
    "ddpg": {"hidden_sizes": (8,), "minibatch_size": 4, "learning_starts": 0},
    "td3": {"hidden_sizes": (8,), "minibatch_size": 4, "learning_starts": 0, "policy_delay": 1},
    "sac": {"hidden_sizes": (8,), "minibatch_size": 4, "learning_starts": 0},
}


def make(name: str, spaces: SpaceInfo, **kw: Any) -> Any:
    config = get_spec(name).config(**{**SMALL[name], **kw.pop("config", {})})
    return build_algorithm(name, config, spaces, **kw)


def flat_observations(space: gym.Space, shape: tuple[int, ...], seed: int = 0) -> Tensor:
    """Observations sampled from ``space``, flattened as the collector stores them."""
    space.seed(seed)
    rows = [S.flatten(space, space.sample()).astype(np.float32) for _ in range(int(np.prod(shape)))]
    return torch.from_numpy(np.stack(rows)).reshape(*shape, -1)


def network_actions(spaces: SpaceInfo, shape: tuple[int, ...], seed: int = 0) -> Tensor:
    """Random actions on the network side, via the action space's own samples."""
    assert spaces.action_space is not None
    batch_space = gym.vector.utils.batch_space(spaces.action_space, int(np.prod(shape)))
    batch_space.seed(seed)
    actions = from_env_actions(spaces, batch_space.sample())
    return torch.from_numpy(actions).reshape(*shape, *spaces.action_shape)


def rollout_for(spaces: SpaceInfo, steps: int = 4, envs: int = 2) -> Rollout:
    gen = torch.Generator().manual_seed(0)
    assert spaces.observation_space is not None
    done = torch.zeros(steps, envs, dtype=torch.bool)
    done[-1] = True
    return Rollout(
        obs=flat_observations(spaces.observation_space, (steps, envs), 1),
        actions=network_actions(spaces, (steps, envs)),
        rewards=torch.randn(steps, envs, generator=gen),
        next_obs=flat_observations(spaces.observation_space, (steps, envs), 2),
        terminated=done,
        truncated=torch.zeros(steps, envs, dtype=torch.bool),
        mask=torch.ones(steps, envs),
    )


def batch_for(spaces: SpaceInfo, size: int = 4) -> Batch:
    gen = torch.Generator().manual_seed(0)
    assert spaces.observation_space is not None
    return Batch(
        obs=flat_observations(spaces.observation_space, (size,), 1),
        actions=network_actions(spaces, (size,)),
        rewards=torch.randn(size, generator=gen),
        next_obs=flat_observations(spaces.observation_space, (size,), 2),
        terminated=torch.zeros(size),
        truncated=torch.zeros(size),
    )


def snapshot(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict[str, Tensor], module: nn.Module, prefix: str) -> bool:
    after = module.state_dict()
    keys = [k for k in before if k.startswith(prefix)]
    assert keys, prefix
    return all(not torch.equal(before[k], after[k]) for k in keys if k.endswith("weight"))


@pytest.mark.parametrize("kind", list(ACTIONS))
@pytest.mark.parametrize("name", ON_POLICY)
def test_on_policy_algorithms_act_and_learn_on_images_in_a_dict(name: str, kind: str) -> None:
    torch.manual_seed(0)
    np.random.seed(0)
    spaces = space_info(DICT, ACTIONS[kind])
    algo = make(name, spaces)
    assert isinstance(algo.policy.encoder, MultiEncoder)
    assert isinstance(algo.policy.encoder.parts[1], ImageEncoder)  # keys: mode, pixels, position
    # act: network-side actions of the declared shape and dtype, valid once converted
    actions = algo.act(flat_observations(DICT, (5,)))
    assert actions.shape == (5, *spaces.action_shape)
    assert actions.numpy().dtype == spaces.action_dtype
    env_actions = to_env_actions(spaces, actions.numpy())
    assert all(ACTIONS[kind].contains(a) for a in env_actions)
    # update: finite metrics, and the gradient reached every network's encoder
    before = {role: snapshot(m) for role, m in algo.modules().items()}
    metrics = algo.update(rollout_for(spaces))
    assert all(torch.isfinite(v).all() for v in metrics.values())
    for role in ("policy", "value"):
        assert changed(before[role], algo.modules()[role], "encoder.parts.1."), role


@pytest.mark.parametrize("name", ON_POLICY)
def test_discrete_actions_are_zero_based_on_the_network_side(name: str) -> None:
    spaces = space_info(IMAGE, S.Discrete(3, start=-1))
    algo = make(name, spaces)
    actions = algo.act(flat_observations(IMAGE, (200,)))
    assert set(actions.tolist()) == {0, 1, 2}
    assert set(to_env_actions(spaces, actions.numpy()).tolist()) == {-1, 0, 1}


@pytest.mark.parametrize("name", OFF_POLICY)
def test_off_policy_algorithms_learn_on_images_with_an_encoder_per_network(name: str) -> None:
    torch.manual_seed(0)
    spaces = space_info(IMAGE, ACTIONS["box"])
    algo = make(name, spaces)
    modules = algo.modules()
    actor_name = "actor" if "actor" in modules else "policy"
    encoders = [m for m in algo.critic.modules() if isinstance(m, ImageEncoder)]
    encoders += [m for m in modules[actor_name].modules() if isinstance(m, ImageEncoder)]
    assert len(encoders) == (3 if name != "ddpg" else 2)  # twin critics: one each
    assert len({id(e) for e in encoders}) == len(encoders)
    actions = algo.act(flat_observations(IMAGE, (3,)))
    assert actions.shape == (3, 4)
    before = {role: snapshot(m) for role, m in modules.items()}
    batch = batch_for(spaces)
    algo.update(batch)
    assert changed(before["critic"], algo.critic, "q1.encoder." if name != "ddpg" else "encoder.")
    assert changed(before[actor_name], modules[actor_name], "encoder.")


@pytest.mark.parametrize("name", ("ddpg", "td3"))
def test_the_actor_step_leaves_the_critic_encoder_alone(name: str) -> None:
    spaces = space_info(IMAGE, ACTIONS["box"])
    algo = make(name, spaces)
    before = snapshot(algo.critic)
    algo.actor_step(batch_for(spaces))
    assert all(torch.equal(before[k], v) for k, v in algo.critic.state_dict().items())
    assert all(p.grad is None or not p.grad.any() for p in algo.critic.parameters())


@pytest.mark.parametrize("kind", ["discrete", "multidiscrete", "multibinary"])
@pytest.mark.parametrize("name", OFF_POLICY)
def test_off_policy_algorithms_refuse_non_box_actions(name: str, kind: str) -> None:
    spaces = space_info(S.Box(-1.0, 1.0, (3,)), ACTIONS[kind])
    with pytest.raises(EnvError, match=r"needs a continuous \(Box\) action space.*Try 'ppo'"):
        make(name, spaces)
    assert kind not in get_spec(name).action_kinds and kind in get_spec("ppo").action_kinds


def test_ppo_normalizes_only_the_box_parts_of_a_dict_observation() -> None:
    spaces = space_info(DICT, ACTIONS["discrete"])
    algo = make("ppo", spaces, config={"normalize_obs": True})
    obs = flat_observations(DICT, (8,))
    algo.obs_normalizer.update(obs)
    normalized = algo.normalize(obs)
    # flat layout in key order: mode (3, one-hot), pixels (36), position (2)
    assert torch.equal(normalized[:, :39], obs[:, :39])
    assert not torch.equal(normalized[:, 39:], obs[:, 39:])
    assert abs(float(normalized[:, 39:].mean())) < 1e-3
    assert "mask" not in algo.obs_normalizer.state_dict()  # checkpoints keep their keys


def test_ppo_refuses_normalize_obs_without_a_box_part() -> None:
    with pytest.raises(ConfigError, match="normalize_obs"):
        make("ppo", space_info(IMAGE, ACTIONS["discrete"]), config={"normalize_obs": True})


# --- custom networks ------------------------------------------------------------------


class SumEncoder(nn.Module):
    """A user's encoder: a linear map of the flat observation to 5 features."""

    def __init__(self, space: gym.Space) -> None:
        super().__init__()
        self.linear = nn.Linear(S.flatdim(space), 5)
        self.out_dim = 5

    def forward(self, obs: Tensor) -> Tensor:
        return torch.relu(self.linear(obs))


CARTPOLE = space_info(
    S.Box(-np.inf, np.inf, (4,), np.float32), S.Discrete(2)
)  # CartPole's spaces, without building the environment


@pytest.mark.parametrize("name", ON_POLICY)
def test_a_custom_policy_replaces_the_default_and_trains(name: str) -> None:
    algo = make(name, CARTPOLE, networks={"policy": TinyPolicy})
    assert isinstance(algo.policy, TinyPolicy)
    assert not isinstance(algo.value, TinyPolicy) and algo.value is not None
    before = snapshot(algo.policy)
    algo.update(rollout_for(CARTPOLE))
    assert changed(before, algo.policy, "")


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_a_custom_encoder_is_built_once_per_network(name: str) -> None:
    spaces = space_info(S.Box(-1.0, 1.0, (3,)), ACTIONS["box"]) if name in OFF_POLICY else CARTPOLE
    seen: list[gym.Space] = []

    def factory(space: gym.Space) -> nn.Module:
        seen.append(space)
        return SumEncoder(space)

    algo = make(name, spaces, networks={"encoder": factory})
    encoders = [
        m for net in algo.modules().values() for m in net.modules() if isinstance(m, SumEncoder)
    ]
    trained = {"reinforce": 2, "a2c": 2, "ppo": 2, "ddpg": 2, "td3": 3, "sac": 3}[
        name
    ]  # policy/actor, value or critics (twin critics: one each)
    assert len(seen) == trained and all(s == spaces.observation_space for s in seen)
    targets = {"ddpg": 2, "td3": 3, "sac": 2}.get(name, 0)  # copies in the target networks
    assert len(encoders) == trained + targets  # target networks copy theirs
    assert len({id(e) for e in encoders}) == len(encoders)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("ppo", "encoder, policy, value"),
        ("reinforce", "encoder, policy, value"),
        ("ddpg", "encoder, actor, critic"),
        ("td3", "encoder, actor, critic"),
        ("sac", "encoder, policy, critic"),
    ],
)
def test_an_unknown_network_role_lists_the_valid_ones(name: str, valid: str) -> None:
    spaces = space_info(S.Box(-1.0, 1.0, (3,)), ACTIONS["box"])
    with pytest.raises(ConfigError, match=f"valid keys: {valid}$"):
        make(name, spaces, networks={"actor_target": lambda spaces, config: nn.Linear(1, 1)})


def test_a_custom_network_without_its_methods_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"sample, mode, log_prob_entropy.*without"):
        make("a2c", CARTPOLE, networks={"policy": lambda spaces, config: nn.Linear(4, 2)})
    with pytest.raises(ConfigError, match="out_dim"):
        make("a2c", CARTPOLE, networks={"encoder": lambda space: nn.Linear(4, 2)})
    with pytest.raises(ConfigError, match="callable"):
        make("a2c", CARTPOLE, networks={"policy": "mlp"})
    with pytest.raises(ConfigError, match="baseline"):
        make("reinforce", CARTPOLE, config={"baseline": "none"}, networks={"value": TinyPolicy})


# --- devices ---------------------------------------------------------------------------

BOX_SPACES = space_info(S.Box(-1.0, 1.0, (3,)), S.Box(-2.0, 2.0, (2,)))


def run_a_little(name: str, device: str | None, spaces: SpaceInfo) -> tuple[list[Tensor], dict]:
    """Actions and final weights of a few acts and updates from fixed seeds."""
    torch.manual_seed(0)
    np.random.seed(0)
    algo = make(name, spaces, device=device)
    acted = [algo.act(flat_observations(spaces.observation_space, (2,), seed)) for seed in (1, 2)]
    data = rollout_for(spaces) if name in ON_POLICY else batch_for(spaces)
    for _ in range(2):
        algo.update(data.to(device))
    acted.append(algo.act(flat_observations(spaces.observation_space, (2,), 3)))
    state = {n: snapshot(m) for n, m in algo.modules().items()}
    return acted, state


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_device_cpu_gives_the_same_numbers_as_no_device(name: str) -> None:
    spaces = BOX_SPACES if name in OFF_POLICY else space_info(DICT, ACTIONS["multidiscrete"])
    acted_none, state_none = run_a_little(name, None, spaces)
    acted_cpu, state_cpu = run_a_little(name, "cpu", spaces)
    for a, b in zip(acted_none, acted_cpu, strict=True):
        assert torch.equal(a, b)
    for module, tensors in state_none.items():
        for key, value in tensors.items():
            assert torch.equal(value, state_cpu[module][key]), (module, key)


def test_rollout_and_batch_move_only_when_needed() -> None:
    rollout, batch = rollout_for(CARTPOLE), batch_for(CARTPOLE)
    assert rollout.to("cpu") is rollout and rollout.to(None) is rollout
    assert batch.to(torch.device("cpu")) is batch
    moved = batch.to("meta")  # a device without data: every field goes there
    assert all(getattr(moved, f).device.type == "meta" for f in ("obs", "actions", "rewards"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_cuda_networks_act_from_cpu_and_update_on_the_device(name: str) -> None:
    spaces = BOX_SPACES if name in OFF_POLICY else space_info(DICT, ACTIONS["discrete"])
    algo = make(name, spaces, device="cuda")
    for module in algo.modules().values():
        assert all(p.device.type == "cuda" for p in module.parameters())
    actions = algo.act(flat_observations(spaces.observation_space, (2,)))
    assert actions.device.type == "cpu"
    data = rollout_for(spaces) if name in ON_POLICY else batch_for(spaces)
    metrics = algo.update(data.to("cuda"))
    assert all(torch.isfinite(v).all() for v in metrics.values())
    for optimizer in algo.optimizers().values():
        for group in optimizer.param_groups:
            assert all(p.device.type == "cuda" for p in group["params"])


def test_default_policies_are_unchanged_classes_for_plain_spaces() -> None:
    assert isinstance(make("ppo", CARTPOLE).policy, CategoricalPolicy)
    assert isinstance(make("a2c", BOX_SPACES).policy, GaussianPolicy)
    assert make("ppo", CARTPOLE).policy.encoder is None

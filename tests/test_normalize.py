"""Normalization: running statistics against NumPy, reward scaling by the discounted return,
frozen statistics when acting, and statistics that travel with the saved model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.testing import assert_close

import pgrl
from pgrl.algos.ppo import PPO, PPOConfig
from pgrl.envs import SpaceInfo
from pgrl.normalize import ObsNormalizer, RewardScaler, RunningMeanStd, discounted_return_trace
from pgrl.types import Rollout


def test_running_mean_std_matches_numpy_over_concatenated_batches() -> None:
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(n, 3)) * [1.0, 10.0, 0.1] for n in (1, 7, 50, 2, 300)]
    rms = RunningMeanStd((3,), epsilon=0.0)
    for batch in batches:
        rms.update(torch.as_tensor(batch))
    every = np.concatenate(batches)
    assert_close(rms.mean, torch.as_tensor(every.mean(0)))
    assert_close(rms.var, torch.as_tensor(every.var(0)))  # population variance
    assert rms.count.item() == len(every)


def test_running_mean_std_prior_pseudo_count_is_negligible() -> None:
    # the default ε = 1e-4 pseudo-sample at (0, 1) moves the estimates by about ε / n
    x = torch.randn(1000, 2, dtype=torch.float64) * 5 + 2
    rms = RunningMeanStd((2,))
    rms.update(x)
    assert_close(rms.mean, x.mean(0), rtol=1e-5, atol=1e-5)
    assert_close(rms.var, x.var(0, correction=0), rtol=1e-5, atol=1e-5)


def test_empty_batch_changes_nothing() -> None:
    rms = RunningMeanStd((2,), epsilon=0.0)
    rms.update(torch.ones(3, 2))
    before = {k: v.clone() for k, v in rms.state_dict().items()}
    rms.update(torch.zeros(0, 2))
    for key, value in rms.state_dict().items():
        assert torch.equal(value, before[key])


def test_obs_normalizer_standardizes_clips_and_keeps_its_statistics_in_the_state_dict() -> None:
    norm = ObsNormalizer(2)
    data = torch.randn(5000, 2) * torch.tensor([3.0, 0.5]) + torch.tensor([10.0, -1.0])
    norm.update(data)
    out = norm(data)
    assert_close(out.mean(0), torch.zeros(2), atol=1e-3, rtol=0)
    assert_close(out.std(0), torch.ones(2), atol=1e-3, rtol=0)
    assert norm(torch.tensor([[1e6, -1e6]])).tolist() == [[10.0, -10.0]]
    assert out.dtype == torch.float32
    assert {"rms.mean", "rms.var", "rms.count"} <= set(norm.state_dict())


def test_calling_a_normalizer_never_moves_its_statistics() -> None:
    norm = ObsNormalizer(2)
    norm.update(torch.randn(10, 2))
    before = {k: v.clone() for k, v in norm.state_dict().items()}
    norm(torch.randn(100, 2) * 50)
    for key, value in norm.state_dict().items():
        assert torch.equal(value, before[key])


def test_discounted_return_trace_by_hand_with_a_reset_and_a_carry() -> None:
    # env 0: r = 1, 2, 4 with an end after step 1 → R = 1, 0.5·1 + 2 = 2.5, then reset: 4
    # env 1: starts from the carried R = 10 → 0.5·10 + 1 = 6, 0.5·6 + 1 = 4, 0.5·4 + 1 = 3
    rewards = torch.tensor([[1.0, 1.0], [2.0, 1.0], [4.0, 1.0]])
    done = torch.tensor([[False, False], [True, False], [False, False]])
    trace, carry = discounted_return_trace(rewards, done, 0.5, torch.tensor([0.0, 10.0]))
    assert_close(trace, torch.tensor([[1.0, 6.0], [2.5, 4.0], [4.0, 3.0]]))
    assert_close(carry, torch.tensor([4.0, 3.0]))


def test_reward_scaler_split_rollouts_equal_one_long_rollout() -> None:
    gen = torch.Generator().manual_seed(0)
    rewards = torch.randn(12, 3, generator=gen)
    done = torch.rand(12, 3, generator=gen) < 0.2
    mask = torch.ones(12, 3)
    whole, split = RewardScaler(3, 0.9), RewardScaler(3, 0.9)
    whole.update(rewards, done, mask)
    split.update(rewards[:5], done[:5], mask[:5])
    split.update(rewards[5:], done[5:], mask[5:])
    for key, value in whole.state_dict().items():
        assert_close(split.state_dict()[key], value)


def test_reward_scaler_divides_by_the_std_of_the_discounted_return_of_real_steps() -> None:
    rewards = torch.tensor([[1.0], [1.0], [100.0]])
    done = torch.zeros(3, 1, dtype=torch.bool)
    mask = torch.tensor([[1.0], [1.0], [0.0]])  # the last row is a placeholder
    scaler = RewardScaler(1, 0.5)
    scaler.rms.count.zero_()  # exact statistics of the data, no prior pseudo-count
    scaler.update(rewards, done, mask)
    # real returns R = 1, 1.5: variance 0.0625, std 0.25; the placeholder's 100.75 is ignored
    assert_close(scaler.rms.var, torch.tensor(0.0625, dtype=torch.float64))
    assert_close(scaler(torch.tensor([0.5, -5.0])), torch.tensor([2.0, -10.0]), rtol=1e-6, atol=0)


SPACES = SpaceInfo(obs_dim=3, discrete=True, act_dim=2)


def rollout(t: int = 8, n: int = 2) -> Rollout:
    gen = torch.Generator().manual_seed(1)
    return Rollout(
        obs=torch.randn(t, n, 3, generator=gen) * 4 + 7,
        actions=torch.randint(0, 2, (t, n), generator=gen),
        rewards=torch.randn(t, n, generator=gen) * 10,
        next_obs=torch.randn(t, n, 3, generator=gen) * 4 + 7,
        terminated=torch.zeros(t, n, dtype=torch.bool),
        truncated=torch.zeros(t, n, dtype=torch.bool),
        mask=torch.ones(t, n),
    )


def test_ppo_statistics_move_in_update_only_and_are_saved_with_its_modules() -> None:
    config = PPOConfig(
        num_envs=2, rollout_steps=8, minibatch_size=8, normalize_obs=True, normalize_reward=True
    )
    algo = PPO(config, SPACES)
    assert algo.obs_normalizer is not None and algo.reward_scaler is not None
    modules = algo.modules()
    assert modules["obs_normalizer"] is algo.obs_normalizer
    assert modules["reward_scaler"] is algo.reward_scaler
    before = algo.obs_normalizer.rms.mean.clone()
    with torch.inference_mode():
        algo.act(torch.randn(2, 3) * 100, deterministic=True)
        algo.act(torch.randn(2, 3) * 100)
    assert torch.equal(algo.obs_normalizer.rms.mean, before)
    data = rollout()
    algo.update(data)
    assert_close(
        algo.obs_normalizer.rms.mean, data.obs.reshape(-1, 3).mean(0).double(), rtol=1e-3, atol=1e-3
    )
    assert algo.reward_scaler.rms.count.item() == pytest.approx(16, abs=1e-3)


def test_ppo_acts_on_normalized_observations() -> None:
    # a Gaussian policy's mode is continuous, so raw and normalized inputs give different actions
    torch.manual_seed(0)
    box = SpaceInfo(
        obs_dim=3,
        discrete=False,
        act_dim=1,
        low=np.array([-1.0], np.float32),
        high=np.array([1.0], np.float32),
    )
    algo = PPO(PPOConfig(num_envs=2, rollout_steps=8, minibatch_size=8, normalize_obs=True), box)
    assert algo.obs_normalizer is not None
    algo.obs_normalizer.update(torch.randn(100, 3) * 4 + 7)
    obs = torch.randn(5, 3) * 4 + 7
    expected = algo.policy.mode(algo.obs_normalizer(obs))
    assert torch.equal(algo.act(obs, deterministic=True), expected)
    assert not torch.allclose(algo.policy.mode(obs), expected)  # raw observations would differ


def test_saved_model_carries_the_normalization_statistics(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = {
        "num_envs": 2,
        "rollout_steps": 16,
        "minibatch_size": 16,
        "normalize_obs": True,
        "normalize_reward": True,
    }
    agent = pgrl.train(
        "ppo", "CartPole-v1", steps=256, seed=0, run_dir=tmp_path, config=config, eval_episodes=2
    )
    loaded = pgrl.load(tmp_path)
    trained, restored = agent.algorithm.modules(), loaded.algorithm.modules()
    for name in ("obs_normalizer", "reward_scaler"):
        for key, value in trained[name].state_dict().items():
            assert torch.equal(restored[name].state_dict()[key], value), f"{name}.{key}"
    assert trained["obs_normalizer"].state_dict()["rms.count"].item() > 200  # it did learn
    assert loaded.evaluate(2, seed=agent.seed + 1_000_003).returns == agent.evaluation.returns  # type: ignore[union-attr]

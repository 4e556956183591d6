"""PPO's update equals Stable-Baselines3's on the same rollout from the same weights.

SB3 collects a rollout; pgrl's PPO takes SB3's weights (same layers: two 64×64 tanh MLPs with
linear heads) and the rollout as a :class:`pgrl.types.Rollout`. On CartPole both take one
full-batch step (one epoch, one minibatch: no shuffle to match): V(s), the λ-returns and
log π_old must agree to float precision, and so must the clipped gradient of every layer. On
LunarLander (the results table's row) both take a whole update of the zoo's shape, 4 epochs
of minibatches of 64 with SB3's permutations forced on pgrl, over three consecutive rollouts:
the parameters must agree to float precision after each. Advantages are normalized with the
sample std on both sides (:func:`pgrl.losses.normalize_advantages`).

This is how the results table's PPO rows were ruled out as an update bug.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

sb3 = pytest.importorskip("stable_baselines3")

N, T = 4, 128  # CartPole


def _sb3_rollout(normalize: bool) -> Any:
    from stable_baselines3.common.callbacks import CallbackList
    from stable_baselines3.common.env_util import make_vec_env

    venv = make_vec_env("CartPole-v1", n_envs=N, seed=0)
    model = sb3.PPO(
        "MlpPolicy",
        venv,
        n_steps=T,
        batch_size=N * T,
        n_epochs=1,
        gamma=0.99,
        gae_lambda=0.95,
        ent_coef=0.01,
        normalize_advantage=normalize,
        seed=0,
        device="cpu",
    )
    model._setup_learn(N * T, None)
    callback = CallbackList([])
    callback.init_callback(model)
    model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=T)
    return model


def _pgrl_twin(model: Any, normalize: bool) -> tuple[Any, list[tuple[Any, Any]]]:
    return _twin(
        model,
        "CartPole-v1",
        {
            "num_envs": N,
            "rollout_steps": T,
            "minibatch_size": N * T,
            "update_epochs": 1,
            "gamma": 0.99,
            "gae_lambda": 0.95,
            "entropy_coef": 0.01,
            "value_coef": 1.0,  # ½ (V − G)² × 1 is SB3's vf_coef 0.5 × MSE
            "clip_value": False,
            "learning_rate": 3e-4,
            "lr_schedule": "constant",
            "normalize_advantages": normalize,
        },
    )


def _twin(model: Any, env_id: str, overrides: dict[str, Any]) -> tuple[Any, list[tuple[Any, Any]]]:
    """pgrl's PPO for ``env_id`` with ``overrides``, holding SB3's weights; the layer pairs."""
    from pgrl.algos import build_algorithm
    from pgrl.bench import sb3_ppo_layers
    from pgrl.spaces import space_info
    from pgrl.train import resolve_config

    cfg = resolve_config("ppo", env_id, overrides)
    env = model.env
    algorithm: Any = build_algorithm(
        "ppo", cfg, space_info(env.observation_space, env.action_space), env_id
    )
    pairs = sb3_ppo_layers(algorithm, model.policy)
    _copy_weights(pairs)
    return algorithm, pairs


def _copy_weights(pairs: list[tuple[Any, Any]]) -> None:
    with torch.no_grad():
        for ours, theirs in pairs:
            ours.weight.copy_(theirs.weight)
            ours.bias.copy_(theirs.bias)


def _as_rollout(model: Any) -> Any:
    """SB3's buffer as pgrl's (T, N) transitions: s'_t is s_{t+1} (or the last observation);
    where an episode ended SB3 keeps no final observation, but V(s') is multiplied by
    1 − terminated = 0 there. SB3 folds γ V(final observation) into the reward of a truncated
    step and marks it done: the same λ-returns. No episode here reaches its time limit."""
    from pgrl.types import Rollout

    buffer = model.rollout_buffer
    steps, envs = buffer.rewards.shape
    obs = torch.tensor(buffer.observations)
    last_starts = model._last_episode_starts[None]
    ended = np.concatenate([buffer.episode_starts[1:], last_starts]).astype(bool)
    last_obs = torch.tensor(model._last_obs)[None]
    terminated = torch.tensor(ended)
    return Rollout(
        obs,
        torch.tensor(buffer.actions[..., 0]).long(),
        torch.tensor(buffer.rewards),
        torch.cat([obs[1:], last_obs]),
        terminated,
        torch.zeros_like(terminated),
        torch.ones(steps, envs),
    )


@pytest.mark.parametrize("normalize", [False, True])
def test_one_ppo_update_equals_stable_baselines3(normalize: bool) -> None:
    torch.manual_seed(0)
    model = _sb3_rollout(normalize)
    algorithm, pairs = _pgrl_twin(model, normalize)
    rollout = _as_rollout(model)
    assert int(rollout.terminated.sum()) >= 4  # episodes end inside the rollout: cuts tested
    buffer = model.rollout_buffer

    data = algorithm.prepare(rollout)
    torch.testing.assert_close(data.value, torch.tensor(buffer.values).reshape(-1))
    torch.testing.assert_close(data.returns, torch.tensor(buffer.returns).reshape(-1))
    torch.testing.assert_close(data.log_prob, torch.tensor(buffer.log_probs).reshape(-1))

    model.train()
    algorithm.update(rollout)
    for ours, theirs in pairs:
        for a, b in ((ours.weight, theirs.weight), (ours.bias, theirs.bias)):
            assert a.grad is not None and b.grad is not None
            relative = float((a.grad - b.grad).norm() / b.grad.norm())
            assert relative < 1e-4, relative  # float32 summation order
            torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_whole_ppo_updates_equal_stable_baselines3_on_lunar_lander(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The zoo's LunarLander PPO (16 envs, γ 0.999, λ 0.98, entropy 0.01, 4 epochs of
    minibatches of 64; rollouts of 128 steps here instead of 1,024 to keep it short)."""
    pytest.importorskip("Box2D")
    from stable_baselines3.common.callbacks import CallbackList
    from stable_baselines3.common.env_util import make_vec_env

    envs, steps, epochs = 16, 128, 4
    torch.manual_seed(0)
    venv = make_vec_env("LunarLander-v3", n_envs=envs, seed=0)
    model = sb3.PPO(
        "MlpPolicy",
        venv,
        n_steps=steps,
        batch_size=64,
        n_epochs=epochs,
        gamma=0.999,
        gae_lambda=0.98,
        ent_coef=0.01,
        seed=0,
        device="cpu",
    )
    model._setup_learn(10**6, None)
    callback = CallbackList([])
    callback.init_callback(model)
    overrides = {"num_envs": envs, "rollout_steps": steps, "advantage_scope": "minibatch"}
    algorithm, pairs = _twin(model, "LunarLander-v3", overrides)
    generator = np.random.default_rng(0)
    for _ in range(3):  # consecutive rollouts: Adam's state carries over on both sides
        model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=steps)
        rollout = _as_rollout(model)
        assert int(rollout.terminated.sum()) >= 8  # episodes end inside: cuts tested
        perms = [generator.permutation(envs * steps) for _ in range(epochs)]
        # SB3 flattens env-major (k = env·T + t), pgrl time-major (t·N + env)
        ours = iter([torch.from_numpy((p % steps) * envs + p // steps) for p in perms])
        theirs = iter(perms)
        with monkeypatch.context() as m:
            m.setattr(np.random, "permutation", lambda n, it=theirs: next(it))
            model.train()
            m.setattr(torch, "randperm", lambda n, *args, it=ours, **kwargs: next(it))
            algorithm.update(rollout)
        for a, b in pairs:
            for mine, sb3s in ((a.weight, b.weight), (a.bias, b.bias)):
                torch.testing.assert_close(mine.detach(), sb3s.detach(), rtol=0, atol=1e-6)
        _copy_weights(pairs)  # float rounding does not accumulate over the rollouts

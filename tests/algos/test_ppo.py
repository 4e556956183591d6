"""PPO's update: the clipped objective by hand and by gradient, ρ = 1 at the start of an
update, placeholders kept out, gradient routing, KL early stop, determinism."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

import pgrl
from pgrl.algos.ppo import (
    PPO,
    MinibatchTerms,
    PPOConfig,
    PPOData,
    approx_kl,
    clipped_surrogate,
    clipped_value_loss,
)
from pgrl.envs import SpaceInfo
from pgrl.errors import ConfigError
from pgrl.types import Rollout

DISCRETE = SpaceInfo(obs_dim=3, discrete=True, act_dim=2)
BOX = SpaceInfo(
    obs_dim=3,
    discrete=False,
    act_dim=2,
    low=np.array([-1.0, -1.0], np.float32),
    high=np.array([1.0, 1.0], np.float32),
)


def fixed_rollout(spaces: SpaceInfo, seed: int = 0, t: int = 8, n: int = 4) -> Rollout:
    gen = torch.Generator().manual_seed(seed)
    terminated = torch.zeros(t, n, dtype=torch.bool)
    terminated[2, 1] = True
    truncated = torch.zeros(t, n, dtype=torch.bool)
    truncated[3, 2] = True
    if spaces.discrete:
        actions = torch.randint(0, spaces.act_dim, (t, n), generator=gen)
    else:
        actions = torch.randn(t, n, spaces.act_dim, generator=gen)
    return Rollout(
        obs=torch.randn(t, n, 3, generator=gen) * 3 + 1,
        actions=actions,
        rewards=torch.randn(t, n, generator=gen),
        next_obs=torch.randn(t, n, 3, generator=gen) * 3 + 1,
        terminated=terminated,
        truncated=truncated,
        mask=torch.ones(t, n),
    )


def make(spaces: SpaceInfo = DISCRETE, **kw) -> PPO:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    defaults = {"num_envs": 4, "rollout_steps": 8, "minibatch_size": 8, "hidden_sizes": (16, 16)}
    return PPO(PPOConfig(**{**defaults, **kw}), spaces)


def test_clipped_surrogate_by_hand() -> None:
    # ε = 0.2; min(ρA, clip(ρ)A):
    #   ρ=1.5, A=+2 → min(3.0, 2.4) = 2.4      ρ=0.5, A=+2 → min(1.0, 1.6) = 1.0
    #   ρ=0.5, A=−1 → min(−0.5, −0.8) = −0.8   ρ=1.5, A=−1 → min(−1.5, −1.2) = −1.5
    #   ρ=1.1, A=+1 → 1.1
    ratio = torch.tensor([1.5, 0.5, 0.5, 1.5, 1.1])
    advantage = torch.tensor([2.0, 2.0, -1.0, -1.0, 1.0])
    expected = -(2.4 + 1.0 - 0.8 - 1.5 + 1.1) / 5
    assert clipped_surrogate(ratio, advantage, 0.2).item() == pytest.approx(expected)
    mask = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0])
    assert clipped_surrogate(ratio, advantage, 0.2, mask).item() == pytest.approx(-(2.4 + 1.1) / 2)


@pytest.mark.parametrize(
    ("ratio", "advantage", "zero"),
    [
        (1.5, 1.0, True),  # A > 0 and ρ > 1 + ε: no incentive to raise ρ further
        (0.5, -1.0, True),  # A < 0 and ρ < 1 − ε: no incentive to lower ρ further
        (0.5, 1.0, False),  # A > 0, ρ below the range: still pulled up
        (1.5, -1.0, False),  # A < 0, ρ above the range: still pushed down
        (1.1, 1.0, False),  # inside the range
        (0.9, -1.0, False),  # inside the range
    ],
)
def test_clipped_objective_gradient_vanishes_only_outside_the_range_in_the_favoured_direction(
    ratio: float, advantage: float, zero: bool
) -> None:
    rho = torch.tensor([ratio], requires_grad=True)
    clipped_surrogate(rho, torch.tensor([advantage]), 0.2).backward()
    assert rho.grad is not None
    if zero:
        assert rho.grad.item() == 0.0
    else:
        # the loss is −ρA: its gradient is −A, which descends towards larger ρ when A > 0
        assert rho.grad.item() == pytest.approx(-advantage)


def test_clipped_value_loss_by_hand() -> None:
    # old 0, ε 0.5, G 3: V = 2 → clipped V 0.5; ½ max((2−3)², (0.5−3)²) = ½ · 6.25
    #                    V = 4 → clipped V 0.5; ½ max((4−3)², (0.5−3)²) = ½ · 6.25
    value, old, returns = torch.tensor([2.0, 4.0]), torch.zeros(2), torch.full((2,), 3.0)
    assert clipped_value_loss(value, old, returns, 0.5).item() == pytest.approx(3.125)
    assert clipped_value_loss(value, old, returns, None).item() == pytest.approx(0.5)


def test_approx_kl_is_zero_at_ratio_one_and_close_to_the_exact_kl() -> None:
    assert approx_kl(torch.zeros(4)).item() == 0.0
    # π_old = N(0, 1), π = N(0.1, 1): KL(π_old ‖ π) = 0.1²/2 = 0.005
    torch.manual_seed(0)
    a = torch.randn(200_000)
    log_ratio = -0.5 * (a - 0.1) ** 2 + 0.5 * a**2
    assert approx_kl(log_ratio).item() == pytest.approx(0.005, rel=0.05)


class Seen(NamedTuple):
    """What a test sees of one minibatch step."""

    rows: int
    approx_kl: float
    clip_fraction: float


def record_terms(algo: PPO) -> list[Seen]:
    """Wrap ``algo``'s minibatch step so the test sees every minibatch."""
    seen: list[Seen] = []
    original = algo.minibatch_terms

    def spy(data: PPOData, index: torch.Tensor) -> MinibatchTerms:
        terms = original(data, index)
        seen.append(Seen(len(index), terms.approx_kl.item(), terms.clip_fraction.item()))
        return terms

    algo.minibatch_terms = spy  # type: ignore[method-assign]
    return seen


@pytest.mark.parametrize("spaces", [DISCRETE, BOX], ids=["discrete", "box"])
def test_first_minibatch_has_ratio_one_and_zero_kl(spaces: SpaceInfo) -> None:
    # normalizers on: the statistics move during the update, after π_old's log-probs are taken
    algo = make(spaces, normalize_obs=True, normalize_reward=True, learning_rate=1e-2)
    seen = record_terms(algo)
    for seed in range(3):  # not only the first update: statistics have moved by then
        seen.clear()
        algo.update(fixed_rollout(spaces, seed))
        assert len(seen) == algo.config.update_epochs * algo.config.num_minibatches
        # ρ = 1 on every row of the first minibatch: KL estimate 0, nothing clipped. Up to
        # float rounding: π_old's log-probs come from one pass over the whole rollout, the
        # minibatch's from its own rows, and the matmul kernel rounds the last bit by size.
        # (Statistics taken at the wrong moment shift every observation: far above 1e-6.)
        assert abs(seen[0].approx_kl) < 1e-6
        assert seen[0].clip_fraction == 0.0
        assert seen[-1].approx_kl > 0.0  # it learned


def test_old_log_probs_use_the_observation_statistics_that_acted() -> None:
    algo = make(normalize_obs=True)
    algo.update(fixed_rollout(DISCRETE, seed=5))  # statistics no longer at their prior
    rollout = fixed_rollout(DISCRETE, seed=6)
    with torch.no_grad():  # what act() fed the policy while this rollout was collected
        acted_obs = algo.normalize(rollout.obs).reshape(32, 3)
        acted_log_prob, _ = algo.policy.log_prob_entropy(acted_obs, rollout.actions.reshape(32))
    data = algo.prepare(rollout)
    assert torch.equal(data.obs, acted_obs)
    assert torch.equal(data.log_prob, acted_log_prob)
    assert not torch.equal(algo.normalize(rollout.obs).reshape(32, 3), acted_obs)  # they moved


def test_box_ratio_uses_the_joint_log_probability_of_the_action_vector() -> None:
    algo = make(BOX)
    data = algo.prepare(fixed_rollout(BOX))
    assert data.log_prob.shape == (32,)
    log_prob, _ = algo.policy.log_prob_entropy(data.obs, data.actions)
    assert_close(data.log_prob, log_prob)


def test_placeholders_never_enter_a_minibatch_or_the_advantage_statistics() -> None:
    algo = make()
    rollout = fixed_rollout(DISCRETE)
    mask = torch.ones(8, 4)
    mask[3, 0] = mask[5, 2] = 0.0
    obs = rollout.obs.clone()
    obs[3, 0] = obs[5, 2] = 1e4  # a placeholder's observation is recognisable
    rollout = Rollout(
        obs,
        rollout.actions,
        rollout.rewards,
        rollout.next_obs,
        rollout.terminated,
        rollout.truncated | (mask == 0),
        mask,
    )
    data = algo.prepare(rollout)
    assert data.obs.shape == (30, 3)
    assert data.obs.abs().max() < 1e3
    assert data.advantage.mean().abs() < 1e-5
    # normalised with the sample std (divide by n − 1) over the real rows
    assert data.advantage.std(correction=1).item() == pytest.approx(1.0, abs=1e-4)
    seen = record_terms(algo)
    algo.update(rollout)
    # 30 real rows cut into 4 minibatches per epoch: every real row once per epoch
    assert sum(t.rows for t in seen) == 30 * algo.config.update_epochs


def test_policy_loss_leaves_critic_gradients_at_none_and_value_loss_the_policy() -> None:
    algo = make()
    data = algo.prepare(fixed_rollout(DISCRETE))
    index = torch.arange(8)
    algo.minibatch_terms(data, index).policy_loss.backward()
    assert all(p.grad is None for p in algo.value.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in algo.policy.parameters())
    algo.policy.zero_grad(set_to_none=True)
    algo.minibatch_terms(data, index).value_loss.backward()
    assert all(p.grad is None for p in algo.policy.parameters())
    assert all(p.grad is not None for p in algo.value.parameters())


def test_updates_lower_the_value_loss_on_a_fixed_rollout() -> None:
    algo = make(gamma=0.0, learning_rate=3e-3, clip_value=False)  # γ = 0: returns are rewards
    rollout = fixed_rollout(DISCRETE)
    data = algo.prepare(rollout)
    before = algo.minibatch_terms(data, torch.arange(32)).value_loss.item()
    for _ in range(5):
        algo.update(rollout)
    after = algo.minibatch_terms(algo.prepare(rollout), torch.arange(32)).value_loss.item()
    assert after < 0.7 * before


def test_kl_early_stop_ends_the_update_after_the_first_epoch() -> None:
    algo = make(learning_rate=1e-2, update_epochs=10, target_kl=1e-9)
    seen = record_terms(algo)
    algo.update(fixed_rollout(DISCRETE))
    assert len(seen) == algo.config.num_minibatches  # one epoch of 4 minibatches
    algo = make(learning_rate=1e-2, update_epochs=10)
    seen = record_terms(algo)
    algo.update(fixed_rollout(DISCRETE))
    assert len(seen) == 10 * algo.config.num_minibatches


def test_minibatch_size_must_divide_the_batch() -> None:
    assert PPOConfig(num_envs=4, rollout_steps=8, minibatch_size=16).batch_size == 32
    assert PPOConfig(num_envs=4, rollout_steps=8, minibatch_size=16).num_minibatches == 2
    with pytest.raises(ConfigError, match=r"minibatch_size \(12\) must divide .* = 32"):
        PPOConfig(num_envs=4, rollout_steps=8, minibatch_size=12)
    with pytest.raises(ConfigError, match="clip_eps"):
        PPOConfig(clip_eps=0.0)


def test_same_seed_gives_identical_parameters() -> None:
    kw = {
        "steps": 1_024,
        "seed": 2,
        "save": False,
        "eval_episodes": 2,
        "config": {
            "num_envs": 4,
            "rollout_steps": 32,
            "minibatch_size": 64,
            "normalize_obs": True,
            "normalize_reward": True,
        },
    }
    first = {}
    for env in ("CartPole-v1", "Pendulum-v1"):
        a, b = pgrl.train("ppo", env, **kw), pgrl.train("ppo", env, **kw)  # type: ignore[arg-type]
        first[env] = a
        for (name, m), n in zip(
            a.algorithm.modules().items(), b.algorithm.modules().values(), strict=True
        ):
            for key, value in m.state_dict().items():
                assert torch.equal(value, n.state_dict()[key]), f"{env} {name}.{key}"
        assert a.evaluation.returns == b.evaluation.returns  # type: ignore[union-attr]
    other = pgrl.train("ppo", "CartPole-v1", **{**kw, "seed": 3})  # type: ignore[arg-type]
    policy, reference = other.algorithm.policy, first["CartPole-v1"].algorithm.policy  # type: ignore[attr-defined]
    assert not torch.equal(next(policy.parameters()), next(reference.parameters()))


# --- the update's gradient is autograd's ---------------------------------------------------


def test_surrogate_gradient_by_hand_including_clip_edges() -> None:
    # ∂/∂ρ of min(ρA, clip(ρ, 1 − ε, 1 + ε)A) is A where the unclipped term is the minimum,
    # 0 where the clipped constant is (ρ beyond the edge in the direction A favours)
    eps = 0.2
    ratio = torch.tensor([0.5, 1.0, 1.5, 0.5, 1.0, 1.5], requires_grad=True)
    advantage = torch.tensor([1.0, 1.0, 1.0, -1.0, -1.0, -1.0])
    (clipped_surrogate(ratio, advantage, eps) * -6).backward()
    assert ratio.grad is not None
    assert ratio.grad.tolist() == [1.0, 1.0, 0.0, 0.0, -1.0, -1.0]


@pytest.mark.parametrize("spaces", [DISCRETE, BOX], ids=["discrete", "box"])
@pytest.mark.parametrize(
    "overrides", [{}, {"clip_value": False, "entropy_coef": 0.0}, {"entropy_coef": 0.3}]
)
def test_minibatch_step_uses_autograd_gradient_of_the_loss(spaces, overrides) -> None:  # type: ignore[no-untyped-def]
    algo = make(spaces, **overrides)
    data = algo.prepare(fixed_rollout(spaces))
    # move π_old away from π so that some ratios fall outside the clip range
    gen = torch.Generator().manual_seed(1)
    data = data._replace(log_prob=data.log_prob + 0.5 * torch.randn(32, generator=gen))
    index = torch.arange(3, 27)
    params = algo.optimizer.params
    terms = algo.minibatch_terms(data, index)
    assert 0.0 < terms.clip_fraction.item() < 1.0  # the test exercises clipping
    expected = torch.autograd.grad(terms.loss, params)
    algo.optimizer.optimizer.step = lambda *a, **k: None  # type: ignore[method-assign]
    algo.optimizer.max_grad_norm = None
    algo.optimizer.step(algo.minibatch_terms(data, index).loss)
    for p, e in zip(params, expected, strict=True):
        assert_close(p.grad, e)


def test_reported_value_mse_explained_variance_and_std_are_sb3s() -> None:
    # one epoch, one minibatch of the whole rollout, unclipped critic: SB3's value_loss is
    # F.mse_loss(returns, V_θ(s)) of that minibatch, pgrl's value_loss half of it
    algo = make(BOX, update_epochs=1, minibatch_size=32, clip_value=False)
    rollout = fixed_rollout(BOX)
    data = algo.prepare(rollout)  # no normalizers: preparing twice changes nothing
    with torch.no_grad():
        values = algo.value(data.obs)
    metrics = algo.update(rollout)
    assert_close(metrics["value_mse"], F.mse_loss(values, data.returns))
    assert_close(metrics["value_loss"], 0.5 * metrics["value_mse"])
    # SB3: explained_variance(rollout values, rollout returns), V as it collected the rollout
    v, g = data.value.double().numpy(), data.returns.double().numpy()
    expected = 1.0 - np.var(g - v) / np.var(g)
    assert metrics["explained_variance"].item() == pytest.approx(expected, rel=1e-5)
    assert metrics["learning_rate"].item() == algo.config.learning_rate
    assert metrics["clip_range"].item() == algo.config.clip_eps
    assert metrics["std"].item() == algo.policy.log_std.detach().exp().mean().item()


def test_clipped_critic_still_reports_the_plain_mse() -> None:
    # PPO2's clipped loss ½ max((V − G)², (V_clip − G)²) is at least half the plain MSE
    algo = make(update_epochs=3, clip_value=True, learning_rate=1e-2)
    metrics = algo.update(fixed_rollout(DISCRETE))
    assert metrics["value_loss"].item() >= 0.5 * metrics["value_mse"].item() - 1e-6
    assert "std" not in metrics


def test_advantages_normalized_per_minibatch_or_per_rollout() -> None:
    from pgrl.losses import normalize_advantages

    rollout, index = fixed_rollout(DISCRETE, 1), torch.arange(5, 13)
    for scope in ("rollout", "minibatch"):
        algo = make(advantage_scope=scope)
        data = algo.prepare(rollout)
        terms = algo.minibatch_terms(data, index)
        ratio = torch.ones(len(index))  # the parameters that acted: ρ = 1
        raw = data.advantage[index]
        if scope == "rollout":  # prepare() already normalized over all 32 rows
            assert abs(float(data.advantage.mean())) < 1e-6
            want = clipped_surrogate(ratio, raw, algo.config.clip_eps)
        else:  # prepare() leaves them raw; each minibatch is normalized on its own
            assert abs(float(data.advantage.mean())) > 1e-3
            want = clipped_surrogate(ratio, normalize_advantages(raw), algo.config.clip_eps)
        assert_close(terms.policy_loss, want, atol=1e-5, rtol=1e-5)
    with pytest.raises(ConfigError, match="advantage_scope"):
        make(advantage_scope="epoch")

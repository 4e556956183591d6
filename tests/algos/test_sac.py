"""SAC: the squashed Gaussian's density, the soft target, the temperature's direction,
gradient routing, Polyak targets, the Box-only check and determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.testing import assert_close

import pgrl
from pgrl.algos.sac import SAC, SACConfig, sac_actor_loss, soft_q_target, temperature_loss
from pgrl.envs import SpaceInfo
from pgrl.errors import EnvError
from pgrl.nets import SquashedGaussianPolicy
from pgrl.types import Batch

SPACES = SpaceInfo(
    obs_dim=3,
    discrete=False,
    act_dim=2,
    low=np.array([-2.0, -1.0], np.float32),
    high=np.array([2.0, 1.0], np.float32),
)


def make(**kw) -> SAC:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    return SAC(SACConfig(hidden_sizes=(16, 16), **kw), SPACES)


def batch(seed: int = 0, size: int = 32) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    return Batch(
        obs=torch.randn(size, 3, generator=gen),
        actions=torch.rand(size, 2, generator=gen) * 2 - 1,
        rewards=torch.randn(size, generator=gen),
        next_obs=torch.randn(size, 3, generator=gen),
        terminated=(torch.rand(size, generator=gen) < 0.2).float(),
        truncated=torch.zeros(size),
    )


def constant_policy(mean: float, log_std: float, low: float, high: float) -> SquashedGaussianPolicy:
    """A 1-D squashed Gaussian whose u ~ N(mean, e^{2 log_std}) for every observation."""
    policy = SquashedGaussianPolicy(1, 1, torch.tensor([low]), torch.tensor([high]), (8,))
    with torch.no_grad():
        policy.mean.weight.zero_()
        policy.mean.bias.fill_(mean)
        policy.log_std.weight.zero_()
        policy.log_std.bias.fill_(log_std)
    return policy


@pytest.mark.parametrize(("mean", "log_std"), [(0.3, 0.2), (-1.0, -1.5), (0.0, 1.0)])
def test_squashed_gaussian_log_prob_is_a_density_that_integrates_to_one(
    mean: float, log_std: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    # feed rsample a grid of ε instead of random noise: a(ε) is increasing, so the pairs
    # (a_k, log π(a_k)) trace the density on (low, high); the trapezoid rule integrates it
    low, high = -2.0, 3.0
    policy = constant_policy(mean, log_std, low, high)
    eps = torch.linspace(-5.0, 5.0, 40_001).unsqueeze(1)  # P(|ε| > 5) ≈ 6e-7
    monkeypatch.setattr(torch, "randn_like", lambda like: eps.to(like.dtype))
    with torch.no_grad():
        action, log_prob = policy.rsample(torch.zeros(len(eps), 1))
    a = action.squeeze(1).double()
    assert (a >= low).all() and (a <= high).all() and (a.diff() >= 0).all()
    assert torch.trapezoid(log_prob.double().exp(), a).item() == pytest.approx(1.0, abs=2e-3)
    # the analytic transformed density: N(u; μ, σ) / (scale (1 − tanh² u)), u = atanh(...)
    scale, shift, std = (high - low) / 2, (high + low) / 2, math.exp(log_std)
    interior = (a > low + 1e-3) & (a < high - 1e-3)
    u = torch.atanh((a[interior] - shift) / scale)
    gauss = torch.exp(-0.5 * ((u - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))
    analytic = gauss / (scale * (1 - torch.tanh(u) ** 2))
    assert_close(log_prob.double()[interior], analytic.log(), rtol=0, atol=2e-3)


def test_squashed_gaussian_samples_follow_its_density() -> None:
    # sampled histogram against the exact mass of each bin: P(b0 < a < b1) =
    # Φ((atanh(b1) − μ)/σ) − Φ((atanh(b0) − μ)/σ) for a = tanh(u) (scale 1, shift 0)
    torch.manual_seed(0)
    mean, log_std = 0.5, -0.3
    policy = constant_policy(mean, log_std, -1.0, 1.0)
    with torch.no_grad():
        action, _ = policy.rsample(torch.zeros(200_000, 1))
    frequency = torch.histc(action.squeeze(1).double(), bins=40, min=-1.0, max=1.0) / 200_000
    edges = torch.linspace(-1.0, 1.0, 41, dtype=torch.float64)
    cdf = torch.special.ndtr((torch.atanh(edges) - mean) / math.exp(log_std))
    mass = cdf.diff()
    assert_close(
        frequency, mass, rtol=0, atol=4 * (mass * (1 - mass) / 200_000).sqrt().max().item()
    )


def test_soft_q_target_by_hand() -> None:
    # y = r + γ(1 − term)(min(Q1', Q2') − α log π'): 1 + 0.5 (min(4, 3) − 2 · (−1)) = 3.5
    y = soft_q_target(
        torch.tensor([1.0, 1.0]),
        torch.tensor([4.0, 4.0]),
        torch.tensor([3.0, 3.0]),
        torch.tensor([-1.0, -1.0]),
        torch.tensor([0.0, 1.0]),
        0.5,
        2.0,
    )
    assert_close(y, torch.tensor([3.5, 1.0]))


def test_actor_loss_by_hand() -> None:
    # −mean(Q − α log π) = −((2 + 0.5) + (4 − 0.5)) / 2
    loss = sac_actor_loss(torch.tensor([2.0, 4.0]), torch.tensor([-1.0, 1.0]), 0.5)
    assert loss.item() == pytest.approx(-3.0)


@pytest.mark.parametrize(("log_prob", "direction"), [(-3.0, -1), (3.0, +1)])
def test_temperature_moves_towards_the_target_entropy(log_prob: float, direction: int) -> None:
    # target H̄ = −|A| = −2. log π = −3 → entropy 3 > −2: α must fall; log π = 3 → −3 < −2: rise
    algo = make()
    assert algo.target_entropy == -2.0
    before = algo.temperature.alpha.item()
    for _ in range(3):
        algo.temperature_step(torch.full((32,), log_prob))
    after = algo.temperature.alpha.item()
    assert (after - before) * direction > 0
    # and the gradient of J(α) in log α is α (H − H̄)
    log_alpha = torch.tensor(0.3, requires_grad=True)
    temperature_loss(log_alpha, torch.full((4,), log_prob), -2.0).backward()
    assert log_alpha.grad is not None
    assert log_alpha.grad.item() == pytest.approx(math.exp(0.3) * (-log_prob + 2.0))


def test_temperature_is_fixed_when_auto_alpha_is_off() -> None:
    algo = make(auto_alpha=False, alpha=0.2)
    assert "alpha" not in algo.optimizers()
    for seed in range(3):
        algo.update(batch(seed))
    assert algo.temperature.alpha.item() == pytest.approx(0.2)


def test_policy_step_leaves_critics_alone_and_critic_step_leaves_the_policy_alone() -> None:
    algo = make()
    critic_before = [p.clone() for p in algo.critic.parameters()]
    algo.policy_step(batch())
    assert all(p.grad is None for p in algo.critic.parameters())
    for p, q in zip(algo.critic.parameters(), critic_before, strict=True):
        assert torch.equal(p, q)
    assert all(p.requires_grad for p in algo.critic.parameters())
    assert algo.temperature.log_alpha.grad is None  # the policy loss treats α as a constant
    policy_before = [p.clone() for p in algo.policy.parameters()]
    for p in algo.policy.parameters():
        p.grad = None
    algo.critic_step(batch())
    assert all(p.grad is None for p in algo.policy.parameters())
    for p, q in zip(algo.policy.parameters(), policy_before, strict=True):
        assert torch.equal(p, q)
    assert algo.temperature.log_alpha.grad is None


def test_target_critics_move_only_by_polyak_averaging() -> None:
    algo = make(tau=0.1)
    old = [p.clone() for p in algo.critic_target.parameters()]
    algo.update(batch())
    for new, before, src in zip(
        algo.critic_target.parameters(), old, algo.critic.parameters(), strict=True
    ):
        assert_close(new, 0.1 * src + 0.9 * before)
    assert all(not p.requires_grad for p in algo.critic_target.parameters())
    assert "temperature" in algo.modules()  # α is saved with the model


def test_actions_stay_inside_the_bounds() -> None:
    algo = make()
    obs = torch.randn(1000, 3) * 10
    with torch.no_grad():
        for action in (algo.act(obs), algo.act(obs, deterministic=True)):
            assert (action >= torch.tensor([-2.0, -1.0])).all()
            assert (action <= torch.tensor([2.0, 1.0])).all()


def test_sac_refuses_discrete_actions_with_a_clear_message() -> None:
    with pytest.raises(
        EnvError,
        match=r"SAC needs a continuous \(Box\) action space; CartPole-v1 has Discrete\(2\)",
    ):
        pgrl.train("sac", "CartPole-v1", steps=10, save=False)


def test_same_seed_gives_identical_parameters() -> None:
    kw = {
        "steps": 600,
        "seed": 1,
        "save": False,
        "eval_episodes": 1,
        "config": {"learning_starts": 300, "minibatch_size": 32, "hidden_sizes": (16, 16)},
    }
    a, b = pgrl.train("sac", "Pendulum-v1", **kw), pgrl.train("sac", "Pendulum-v1", **kw)  # type: ignore[arg-type]
    for name, module in a.algorithm.modules().items():
        other = b.algorithm.modules()[name]
        for key, value in module.state_dict().items():
            assert torch.equal(value, other.state_dict()[key]), f"{name}.{key}"
    assert a.evaluation.returns == b.evaluation.returns  # type: ignore[union-attr]


def test_reported_critic_loss_and_ent_coef_loss_are_sb3s() -> None:
    # SB3's SAC: critic_loss = ½ Σ_i F.mse_loss(Q_i, y), equal to pgrl's MSE loss; and
    # ent_coef_loss = −mean[log α (log π + H̄)], with log α before its step
    algo = make(alpha=0.5)
    log_alpha = math.log(0.5)
    metrics = algo.update(batch())
    assert_close(metrics["value_mse"], metrics["value_loss"])
    mean_log_prob = -metrics["entropy"].item()
    expected = -log_alpha * (mean_log_prob + algo.target_entropy)
    assert metrics["ent_coef_loss"].item() == pytest.approx(expected, rel=1e-5)
    assert metrics["learning_rate"].item() == algo.config.learning_rate


def test_a_fixed_temperature_reports_no_ent_coef_loss() -> None:
    assert "ent_coef_loss" not in make(auto_alpha=False).update(batch())


def test_correlated_noise_follows_its_recursion_by_hand() -> None:
    from pgrl.algos.sac import CorrelatedNoise

    noise, rho = CorrelatedNoise((2, 3), 0.8), 0.8
    np.random.seed(7)
    drawn = [noise.sample().clone() for _ in range(3)]
    np.random.seed(7)
    xi = [torch.from_numpy(np.random.standard_normal((2, 3)).astype(np.float32)) for _ in range(3)]
    expected = [xi[0]]
    for x in xi[1:]:
        expected.append(rho * expected[-1] + math.sqrt(1 - rho**2) * x)
    for got, want in zip(drawn, expected, strict=True):
        assert torch.equal(got, want)
    restored = CorrelatedNoise((2, 3), 0.8)
    restored.load_state(noise.state())
    assert torch.equal(restored.eps, noise.eps)  # type: ignore[arg-type]


def test_correlated_noise_keeps_each_step_standard_normal_and_correlates_successive_ones() -> None:
    from pgrl.algos.sac import CorrelatedNoise

    np.random.seed(0)
    noise = CorrelatedNoise((2_000, 1), 0.9)
    first = noise.sample().clone()
    steps = [noise.sample().clone() for _ in range(30)]
    last = steps[-1]
    # marginally N(0, 1) at every step (2,000 independent chains) ...
    assert abs(float(last.std()) - 1.0) < 0.05 and abs(float(last.mean())) < 0.07
    # ... with lag-1 correlation ρ across steps
    assert abs(float(torch.corrcoef(torch.cat([first, steps[0]], 1).T)[0, 1]) - 0.9) < 0.02


def test_sac_acts_with_the_correlated_noise_through_its_policy() -> None:
    algo = make(noise_correlation=0.5, num_envs=4)
    assert algo.noise is not None
    obs = torch.randn(4, 3)
    np.random.seed(3)
    action = algo.act(obs)
    eps = algo.noise.eps
    assert eps is not None
    mean, log_std = algo.policy._mean_log_std(obs)
    want = torch.tanh(mean + log_std.exp() * eps) * algo.policy.scale + algo.policy.shift
    assert_close(action, want.detach())
    assert make().noise is None  # independent sampling by default


def test_correlated_noise_needs_pgrls_policy() -> None:
    from pgrl.errors import ConfigError

    with pytest.raises(ConfigError, match="noise_correlation"):
        SAC(
            SACConfig(hidden_sizes=(8,), noise_correlation=0.5),
            SPACES,
            networks={"policy": lambda spaces, config: _NotSquashed(spaces)},
        )


class _NotSquashed(torch.nn.Module):
    def __init__(self, spaces: SpaceInfo) -> None:
        super().__init__()
        self.inner = SquashedGaussianPolicy(
            spaces.obs_dim,
            spaces.act_dim,
            torch.as_tensor(spaces.low),
            torch.as_tensor(spaces.high),
            (8,),
        )

    def rsample(self, obs: torch.Tensor):  # type: ignore[no-untyped-def]
        return self.inner.rsample(obs)

    def sample(self, obs: torch.Tensor) -> torch.Tensor:
        return self.inner.sample(obs)

    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        return self.inner.mode(obs)

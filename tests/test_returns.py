"""Returns, targets and advantages against values computed by hand.

The shared example: 4 steps, 2 environments, γ = 0.5, λ = 0.5.

env 0 terminates at t = 1 (a new episode starts at t = 2; the rollout cuts it after t = 3)
    r = [1, 2, 3, 4]   V(s) = [0.5, 1, 2, 1]   V(s') = [1, 9, 1, 2]   terminated = [F, T, F, F]
env 1 is truncated by a time limit at t = 2; V(s'_2) = 4 is V of the true final observation
    r = [1, 1, 1, 1]   V(s) = [1, 1, 1, 1]     V(s') = [1, 1, 4, 1]   truncated  = [F, F, T, F]
(V(s'_1) = 9 in env 0 is the value of a terminal state: it must never be used.)
"""

from __future__ import annotations

import torch
from torch.testing import assert_close

from pgrl.returns import (
    discount_powers,
    discounted_returns,
    episode_returns,
    gae,
    nstep_returns,
    td_errors,
    td_targets,
)

GAMMA, LAMBDA = 0.5, 0.5
F_, T_ = False, True


def example() -> dict[str, torch.Tensor]:
    return {
        "rewards": torch.tensor([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0], [4.0, 1.0]]),
        "values": torch.tensor([[0.5, 1.0], [1.0, 1.0], [2.0, 1.0], [1.0, 1.0]]),
        "next_values": torch.tensor([[1.0, 1.0], [9.0, 1.0], [1.0, 4.0], [2.0, 1.0]]),
        "terminated": torch.tensor([[F_, F_], [T_, F_], [F_, F_], [F_, F_]]),
        "truncated": torch.tensor([[F_, F_], [F_, F_], [F_, T_], [F_, F_]]),
    }


def test_discounted_returns_by_hand_with_termination_and_truncation() -> None:
    e = example()
    # env 0: G3 = 4 + .5*V(s'_3)=5; G2 = 3 + .5*5 = 5.5; G1 = 2 (terminated); G0 = 1 + .5*2 = 2
    # env 1: G3 = 1 + .5*1 = 1.5; G2 = 1 + .5*4 = 3 (truncated: bootstrap from the final obs)
    #        G1 = 1 + .5*3 = 2.5; G0 = 1 + .5*2.5 = 2.25
    expected = torch.tensor([[2.0, 2.25], [2.0, 2.5], [5.5, 3.0], [5.0, 1.5]])
    got = discounted_returns(e["rewards"], e["terminated"], e["truncated"], GAMMA, e["next_values"])
    assert_close(got, expected)


def test_discounted_returns_without_critic_bootstrap_zero() -> None:
    e = example()
    # env 0: G3 = 4; G2 = 3 + .5*4 = 5; G1 = 2; G0 = 2.  env 1: G3 = 1; G2 = 1; G1 = 1.5; G0 = 1.75
    expected = torch.tensor([[2.0, 1.75], [2.0, 1.5], [5.0, 1.0], [4.0, 1.0]])
    got = discounted_returns(e["rewards"], e["terminated"], e["truncated"], GAMMA)
    assert_close(got, expected)


def test_gamma_zero_gives_rewards() -> None:
    e = example()
    got = discounted_returns(e["rewards"], e["terminated"], e["truncated"], 0.0, e["next_values"])
    assert_close(got, e["rewards"])


def test_episode_returns_repeat_the_return_of_the_whole_episode() -> None:
    e = example()
    # env 0: episode [t0, t1] has r(τ) = G0 = 2; episode [t2, t3] has G2 = 5.5
    # env 1: episode [t0..t2] has G0 = 2.25; episode [t3] has G3 = 1.5
    expected = torch.tensor([[2.0, 2.25], [2.0, 2.25], [5.5, 2.25], [5.5, 1.5]])
    got = episode_returns(e["rewards"], e["terminated"], e["truncated"], GAMMA, e["next_values"])
    assert_close(got, expected)


def test_discount_powers_restart_at_each_episode() -> None:
    e = example()
    # env 0: [1, .5 | 1, .5]   env 1: [1, .5, .25 | 1]
    expected = torch.tensor([[1.0, 1.0], [0.5, 0.5], [1.0, 0.25], [0.5, 1.0]])
    assert_close(discount_powers(e["terminated"], e["truncated"], GAMMA), expected)


def test_td_targets_and_errors_by_hand() -> None:
    e = example()
    # y = r + .5 (1 - term) V(s'):  env 0: [1.5, 2, 3.5, 5]   env 1: [1.5, 1.5, 3, 1.5]
    expected = torch.tensor([[1.5, 1.5], [2.0, 1.5], [3.5, 3.0], [5.0, 1.5]])
    assert_close(td_targets(e["rewards"], e["next_values"], e["terminated"], GAMMA), expected)
    delta = td_errors(e["rewards"], e["values"], e["next_values"], e["terminated"], GAMMA)
    assert_close(delta, expected - e["values"])


def test_nstep_returns_by_hand() -> None:
    e = example()
    # n = 2. env 0: t0: 1 + .5*2 (terminates at t1, no bootstrap) = 2;  t1: 2
    #               t2: 3 + .5*4 + .25*V(s'_3)=2 → 5.5;  t3: 4 + .5*2 = 5 (rollout end)
    # env 1: t0: 1 + .5*1 + .25*V(s'_1)=1 → 1.75;  t1: 1 + .5*1 + .25*4 = 2.5
    #        t2: 1 + .5*4 = 3 (truncated);  t3: 1 + .5*1 = 1.5
    expected = torch.tensor([[2.0, 1.75], [2.0, 2.5], [5.5, 3.0], [5.0, 1.5]])
    got = nstep_returns(e["rewards"], e["next_values"], e["terminated"], e["truncated"], GAMMA, 2)
    assert_close(got, expected)


def test_nstep_one_is_td_target_and_long_n_is_discounted_return() -> None:
    e = example()
    args = (e["rewards"], e["next_values"], e["terminated"], e["truncated"], GAMMA)
    assert_close(
        nstep_returns(*args, 1), td_targets(e["rewards"], e["next_values"], e["terminated"], GAMMA)
    )
    full = discounted_returns(
        e["rewards"], e["terminated"], e["truncated"], GAMMA, e["next_values"]
    )
    assert_close(nstep_returns(*args, 4), full)
    assert_close(nstep_returns(*args, 3), _naive_nstep(*args, 3))


def test_gae_by_hand() -> None:
    e = example()
    # δ env 0: [1 + .5*1 - .5, 2 - 1, 3 + .5*1 - 2, 4 + .5*2 - 1] = [1, 1, 1.5, 4]
    # A env 0 (γλ = .25, no carry across t1): A3 = 4; A2 = 1.5 + .25*4 = 2.5; A1 = 1; A0 = 1.25
    # δ env 1: [.5, .5, 1 + .5*4 - 1 = 2, .5]
    # A env 1 (no carry across t2): A3 = .5; A2 = 2; A1 = .5 + .25*2 = 1; A0 = .5 + .25 = .75
    expected = torch.tensor([[1.25, 0.75], [1.0, 1.0], [2.5, 2.0], [4.0, 0.5]])
    advantages, returns = gae(
        e["rewards"], e["values"], e["next_values"], e["terminated"], e["truncated"], GAMMA, LAMBDA
    )
    assert_close(advantages, expected)
    assert_close(returns, expected + e["values"])


def test_lambda_zero_gives_td_error() -> None:
    e = example()
    advantages, _ = gae(
        e["rewards"], e["values"], e["next_values"], e["terminated"], e["truncated"], GAMMA, 0.0
    )
    delta = td_errors(e["rewards"], e["values"], e["next_values"], e["terminated"], GAMMA)
    assert_close(advantages, delta)


def test_lambda_one_equals_monte_carlo_minus_value() -> None:
    e = example()
    advantages, _ = gae(
        e["rewards"], e["values"], e["next_values"], e["terminated"], e["truncated"], GAMMA, 1.0
    )
    mc = discounted_returns(e["rewards"], e["terminated"], e["truncated"], GAMMA, e["next_values"])
    assert_close(advantages, mc - e["values"])


def test_truncation_bootstraps_from_final_obs() -> None:
    e = example()
    changed = dict(e)
    changed["next_values"] = e["next_values"].clone()
    changed["next_values"][2, 1] = 10.0  # only the truncated step's final observation
    before = discounted_returns(
        e["rewards"], e["terminated"], e["truncated"], GAMMA, e["next_values"]
    )
    after = discounted_returns(
        e["rewards"], e["terminated"], e["truncated"], GAMMA, changed["next_values"]
    )
    # G2 moves by .5*(10 - 4) = 3, G1 by .5*3, G0 by .25*3; env 0 is untouched
    assert_close(after[:, 1] - before[:, 1], torch.tensor([0.75, 1.5, 3.0, 0.0]))
    assert_close(after[:, 0], before[:, 0])


def test_terminal_next_value_is_never_used() -> None:
    e = example()
    changed = e["next_values"].clone()
    changed[1, 0] = -1000.0  # V of the terminal state in env 0
    for fn in (
        lambda nv: discounted_returns(e["rewards"], e["terminated"], e["truncated"], GAMMA, nv),
        lambda nv: gae(
            e["rewards"], e["values"], nv, e["terminated"], e["truncated"], GAMMA, LAMBDA
        )[0],
        lambda nv: nstep_returns(e["rewards"], nv, e["terminated"], e["truncated"], GAMMA, 3),
    ):
        assert_close(fn(changed), fn(e["next_values"]))


def test_splitting_at_a_terminal_step_changes_nothing() -> None:
    e = example()
    env0 = {k: v[:, :1] for k, v in e.items()}
    full, _ = gae(**env0, gamma=GAMMA, gae_lambda=LAMBDA)
    first, _ = gae(**{k: v[:2] for k, v in env0.items()}, gamma=GAMMA, gae_lambda=LAMBDA)
    second, _ = gae(**{k: v[2:] for k, v in env0.items()}, gamma=GAMMA, gae_lambda=LAMBDA)
    assert_close(full, torch.cat([first, second]))


def _naive_gae(rewards, values, next_values, terminated, truncated, gamma, lam):  # type: ignore[no-untyped-def]
    """A_t = Σ_k (γλ)^k δ_{t+k} summed until the episode ends, in plain Python floats."""
    length, envs = rewards.shape
    out = torch.zeros(length, envs)
    for n in range(envs):
        for t in range(length):
            total, factor = 0.0, 1.0
            for k in range(t, length):
                delta = (
                    rewards[k, n].item()
                    + gamma * (1.0 - float(terminated[k, n])) * next_values[k, n].item()
                    - values[k, n].item()
                )
                total += factor * delta
                if terminated[k, n] or truncated[k, n]:
                    break
                factor *= gamma * lam
            out[t, n] = total
    return out


def _naive_nstep(rewards, next_values, terminated, truncated, gamma, n):  # type: ignore[no-untyped-def]
    length, envs = rewards.shape
    out = torch.zeros(length, envs)
    for e in range(envs):
        for t in range(length):
            total = 0.0
            for k in range(n):
                s = t + k
                total += gamma**k * rewards[s, e].item()
                last = terminated[s, e] or truncated[s, e] or k == n - 1 or s == length - 1
                if last:
                    if not terminated[s, e]:
                        total += gamma ** (k + 1) * next_values[s, e].item()
                    break
            out[t, e] = total
    return out


def test_vectorised_gae_and_nstep_agree_with_naive_loops_on_random_data() -> None:
    gen = torch.Generator().manual_seed(0)
    length, envs = 12, 5
    rewards = torch.randn(length, envs, generator=gen)
    values = torch.randn(length, envs, generator=gen)
    next_values = torch.randn(length, envs, generator=gen)
    terminated = torch.rand(length, envs, generator=gen) < 0.15
    truncated = (torch.rand(length, envs, generator=gen) < 0.15) & ~terminated
    for lam in (0.0, 0.3, 0.95, 1.0):
        got, _ = gae(rewards, values, next_values, terminated, truncated, 0.9, lam)
        want = _naive_gae(rewards, values, next_values, terminated, truncated, 0.9, lam)
        assert_close(got, want, rtol=1e-5, atol=1e-5)
    for n in (1, 2, 3, 5, 12, 20):
        got = nstep_returns(rewards, next_values, terminated, truncated, 0.9, n)
        want = _naive_nstep(rewards, next_values, terminated, truncated, 0.9, n)
        assert_close(got, want, rtol=1e-5, atol=1e-5)

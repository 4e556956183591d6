"""Policies and critics: log-probabilities against torch.distributions, sampling, bounds."""

from __future__ import annotations

import math

import torch
from torch.distributions import Categorical, Normal
from torch.testing import assert_close

from pgrl.nets import CategoricalPolicy, DeterministicActor, GaussianPolicy, QNet, ValueNet, mlp


def test_mlp_shapes_and_orthogonal_init() -> None:
    net = mlp([4, 8, 3], output_gain=0.01)
    assert net(torch.zeros(5, 4)).shape == (5, 3)
    w = net[0].weight
    # orthogonal rows scaled by √2: W Wᵀ = 2 I (8 rows, 4 columns → columns orthogonal)
    assert_close(w.T @ w, 2.0 * torch.eye(4), atol=1e-5, rtol=1e-5)


def test_categorical_log_prob_and_entropy_match_torch_distributions() -> None:
    torch.manual_seed(0)
    policy = CategoricalPolicy(4, 3, (16,))
    obs = torch.randn(6, 4)
    action = torch.tensor([0, 1, 2, 2, 1, 0])
    log_prob, entropy = policy.log_prob_entropy(obs, action)
    dist = Categorical(logits=policy(obs))
    assert_close(log_prob, dist.log_prob(action))
    assert_close(entropy, dist.entropy())


def test_categorical_sampling_follows_the_probabilities() -> None:
    torch.manual_seed(1)
    policy = CategoricalPolicy(2, 3, (8,))
    with torch.no_grad():
        policy.logits[-1].bias.copy_(torch.tensor([0.0, 1.0, 2.0]))
        policy.logits[-1].weight.zero_()
    obs = torch.zeros(30_000, 2)
    counts = torch.bincount(policy.sample(obs), minlength=3).float() / 30_000
    expected = torch.softmax(torch.tensor([0.0, 1.0, 2.0]), 0)
    assert_close(counts, expected, atol=0.01, rtol=0)
    assert policy.mode(obs[:1]).item() == 2


def test_gaussian_log_prob_and_entropy_match_torch_distributions() -> None:
    torch.manual_seed(0)
    policy = GaussianPolicy(3, 2, (16,), log_std_init=-0.5)
    obs = torch.randn(5, 3)
    action = torch.randn(5, 2) * 3  # far outside any bounds: the log-prob is on the sample
    log_prob, entropy = policy.log_prob_entropy(obs, action)
    dist = Normal(policy(obs), policy.log_std.exp())
    assert_close(log_prob, dist.log_prob(action).sum(-1))
    assert_close(entropy, dist.entropy().sum(-1))


def test_gaussian_samples_are_not_clipped() -> None:
    torch.manual_seed(0)
    policy = GaussianPolicy(1, 1, (4,), log_std_init=math.log(5.0))
    samples = policy.sample(torch.zeros(1000, 1))
    assert samples.abs().max() > 5.0


def test_deterministic_actor_stays_inside_the_bounds() -> None:
    torch.manual_seed(0)
    low, high = torch.tensor([-2.0, 0.0]), torch.tensor([2.0, 1.0])
    actor = DeterministicActor(3, 2, low, high, (16,))
    with torch.no_grad():
        actor.net[-1].weight.mul_(100.0)
    action = actor(torch.randn(500, 3) * 10)
    assert (action >= low).all() and (action <= high).all()
    assert action[:, 0].max() > 1.9 and action[:, 0].min() < -1.9


def test_critic_shapes() -> None:
    assert ValueNet(4)(torch.zeros(7, 4)).shape == (7,)
    assert QNet(4, 2, (8,))(torch.zeros(7, 4), torch.zeros(7, 2)).shape == (7,)


# --- the NumPy path and the closed-form gradients --------------------------------------


def test_numpy_forward_matches_the_torch_forward() -> None:
    torch.manual_seed(0)
    for activation in (torch.nn.Tanh, torch.nn.ReLU):
        net = mlp([3, 16, 8, 2], activation, output_gain=1.0)
        x = torch.randn(7, 3)
        assert_close(torch.from_numpy(net.numpy_forward(x.numpy())), net(x))


def test_numpy_views_follow_in_place_updates_and_new_storage() -> None:
    torch.manual_seed(0)
    net = mlp([3, 4, 2], output_gain=1.0)
    x = torch.randn(5, 3)
    net.numpy_forward(x.numpy())  # builds the cached views
    with torch.no_grad():  # in place, as optimizers and load_state_dict write
        net[0].weight.add_(1.0)
    assert_close(torch.from_numpy(net.numpy_forward(x.numpy())), net(x))
    net[0].weight.data = torch.randn(4, 3)  # new storage: the views are rebuilt
    assert_close(torch.from_numpy(net.numpy_forward(x.numpy())), net(x))


def test_mlp_param_grads_match_autograd() -> None:
    torch.manual_seed(0)
    for activation in (torch.nn.Tanh, torch.nn.ReLU):
        for sizes in ([3, 2], [3, 16, 2], [3, 16, 8, 2]):
            net = mlp(sizes, activation, output_gain=1.0)
            x, grad_out = torch.randn(9, 3), torch.randn(9, 2)
            (net(x) * grad_out).sum().backward()
            _, saved = net.forward_saving(x.numpy())
            pairs = net.param_grads(saved, grad_out.numpy())
            assert [p for p, _ in pairs] == list(net.parameters())
            for param, grad in pairs:
                assert_close(torch.from_numpy(grad), param.grad, rtol=1e-5, atol=1e-6)


def _score_objective(policy, obs, action, weight, entropy_weight):  # type: ignore[no-untyped-def]
    log_prob, entropy = policy.log_prob_entropy(obs, action)
    return -(weight * log_prob + entropy_weight * entropy).sum()


def test_score_grads_match_autograd() -> None:
    torch.manual_seed(0)
    obs, weight, entropy_weight = torch.randn(11, 3), torch.randn(11), torch.rand(11)
    categorical = CategoricalPolicy(3, 4, (16, 16))
    gaussian = GaussianPolicy(3, 2, (16, 16), log_std_init=-0.3)
    cases = [(categorical, torch.randint(0, 4, (11,))), (gaussian, torch.randn(11, 2))]
    for policy, action in cases:
        for ent in (None, entropy_weight):
            policy.zero_grad(set_to_none=True)
            ent_term = torch.zeros(11) if ent is None else ent
            _score_objective(policy, obs, action, weight, ent_term).backward()
            pairs, log_prob, entropy = policy.score_grads(
                obs.numpy(),
                action.numpy(),
                weight.numpy(),
                None if ent is None else ent.numpy(),
            )
            assert {id(p) for p, _ in pairs} == {id(p) for p in policy.parameters()}
            for param, grad in pairs:
                assert_close(torch.from_numpy(grad), param.grad, rtol=1e-5, atol=1e-6)
            expected_log_prob, expected_entropy = policy.log_prob_entropy(obs, action)
            assert_close(torch.from_numpy(log_prob), expected_log_prob.detach())
            assert_close(torch.from_numpy(entropy), expected_entropy.detach())


def test_value_param_grads_match_autograd() -> None:
    torch.manual_seed(0)
    critic = ValueNet(3, (16, 16))
    obs, grad_value = torch.randn(6, 3), torch.randn(6)
    (critic(obs) * grad_value).sum().backward()
    value, saved = critic.forward_saving(obs.numpy())
    assert_close(torch.from_numpy(value), critic(obs).detach())
    for param, grad in critic.param_grads(saved, grad_value.numpy()):
        assert_close(torch.from_numpy(grad), param.grad, rtol=1e-5, atol=1e-6)

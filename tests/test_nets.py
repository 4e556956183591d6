"""Policies and critics: log-probabilities against torch.distributions, sampling, bounds."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Bernoulli, Categorical, Normal
from torch.testing import assert_close

from pgrl.encoders import ImageEncoder
from pgrl.nets import (
    MLP,
    BernoulliPolicy,
    CategoricalPolicy,
    DeterministicActor,
    FlatAdam,
    GaussianPolicy,
    MultiCategoricalPolicy,
    QNet,
    SquashedGaussianPolicy,
    TwinQ,
    ValueNet,
    mlp,
)


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


# --- MLP and FlatAdam -------------------------------------------------------------------------


def test_mlp_computes_what_nn_sequential_computes() -> None:
    torch.manual_seed(0)
    for activation in (nn.Tanh, nn.ReLU):
        net = mlp([3, 16, 8, 2], activation, output_gain=1.0)
        x = torch.randn(4, 7, 3)
        assert_close(net(x), nn.Sequential.forward(net, x))


def test_numpy_acting_path_matches_forward_and_follows_the_weights() -> None:
    torch.manual_seed(0)
    for activation in (nn.Tanh, nn.ReLU):
        net = mlp([3, 16, 8, 2], activation, output_gain=1.0)
        x = torch.randn(7, 3)
        out = net.numpy_forward(x)
        assert out is not None
        assert_close(torch.from_numpy(out), net(x).detach())
    net = mlp([3, 4, 2], output_gain=1.0)
    with torch.no_grad():  # in place, as optimizers and load_state_dict write
        net[0].weight.add_(1.0)
    assert_close(torch.from_numpy(net.numpy_forward(x)), net(x).detach())  # type: ignore[arg-type]
    net[0].weight.data = torch.randn(4, 3)  # new storage: the views are rebuilt
    assert_close(torch.from_numpy(net.numpy_forward(x)), net(x).detach())  # type: ignore[arg-type]


def test_numpy_acting_path_declines_what_it_does_not_know() -> None:
    x = torch.randn(5, 3)
    assert mlp([3, 4, 2]).numpy_forward(x) is not None
    assert MLP(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2)).numpy_forward(x) is None
    assert MLP(nn.Linear(3, 2, bias=False)).numpy_forward(x) is None
    assert mlp([3, 4, 2]).numpy_forward(x.double()) is None  # dtype differs from the weights
    assert mlp([3, 4, 2]).double().numpy_forward(x.double()) is not None
    hooked = mlp([3, 4, 2])
    hooked[1].register_forward_hook(lambda module, inputs, output: output * 0.0)
    assert hooked.numpy_forward(x) is None


def test_policies_sample_the_same_actions_on_either_path() -> None:
    # the NumPy acting path and the torch fallback draw from the same generator
    torch.manual_seed(0)
    obs = torch.randn(64, 3)
    for policy in (CategoricalPolicy(3, 4, (16,)), GaussianPolicy(3, 2, (16,))):
        fallback = copy.deepcopy(policy)
        layers = fallback.logits if isinstance(fallback, CategoricalPolicy) else fallback.mean
        layers.insert(1, nn.Identity())  # an unknown layer: the torch path
        assert layers.numpy_forward(obs) is None
        np.random.seed(3)
        fast = policy.sample(obs)
        np.random.seed(3)
        slow = fallback.sample(obs)
        assert_close(fast, slow, rtol=1e-5, atol=1e-5)
        assert_close(policy.mode(obs), fallback.mode(obs), rtol=1e-5, atol=1e-5)


def test_mlp_layer_hooks_still_fire() -> None:
    net = mlp([3, 4, 2])
    net[1].register_forward_hook(lambda module, inputs, output: output * 0.0)
    x = torch.randn(5, 3)
    assert_close(net(x), net[2](torch.zeros(5, 4)))


def test_another_layer_type_trains_with_flat_adam() -> None:
    torch.manual_seed(0)
    policy = CategoricalPolicy(3, 2, (16,))
    policy.logits.insert(1, nn.LayerNorm(16))  # Linear, LayerNorm, Tanh, Linear
    optimizer = FlatAdam([policy], learning_rate=1e-2)
    obs = torch.randn(64, 3)
    action = (obs[:, 0] > 0).long()  # imitate a simple rule
    losses = []
    for _ in range(50):
        log_prob, _ = policy.log_prob_entropy(obs, action)
        loss = -log_prob.mean()
        optimizer.step(loss)
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    # every parameter, LayerNorm's included, received a gradient
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.parameters())


# --- FlatAdam ---------------------------------------------------------------------------------


def test_flat_adam_steps_like_adam_on_the_separate_parameters() -> None:
    torch.manual_seed(0)
    net = mlp([3, 8, 2], output_gain=1.0)
    reference = copy.deepcopy(net)
    flat = FlatAdam([net], learning_rate=1e-2, max_grad_norm=0.5)
    adam = torch.optim.Adam(reference.parameters(), lr=1e-2, eps=1e-5)
    x, target = torch.randn(16, 3), torch.randn(16, 2)
    for _ in range(3):
        norm = flat.step(((net(x) - target) ** 2).mean())
        adam.zero_grad()
        ((reference(x) - target) ** 2).mean().backward()
        expected_norm = torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.5)
        adam.step()
        assert norm is not None
        assert_close(norm, expected_norm)
    for p, q in zip(net.parameters(), reference.parameters(), strict=True):
        assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert set(net.state_dict()) == set(reference.state_dict())


def test_flat_adam_uses_gradients_that_did_not_land_in_its_views() -> None:
    # code that resets .grad to None (module.zero_grad) or assigns a new tensor between steps:
    # every parameter still steps on its own gradient, never on a stale or zero one
    torch.manual_seed(0)
    net = mlp([3, 4, 1], output_gain=1.0)
    flat = FlatAdam([net], learning_rate=1e-2)
    x = torch.randn(8, 3)
    flat.step(net(x).sum())
    net.zero_grad(set_to_none=True)
    loss = net(x).sum()
    expected = torch.autograd.grad(loss, list(net.parameters()))
    flat.optimizer.step = lambda *a, **k: None  # type: ignore[method-assign]
    flat.zero_grad()
    net.zero_grad(set_to_none=True)  # after FlatAdam pointed the grads at its views
    net(x).sum().backward()
    flat._gather()
    assert flat.flat.grad is not None
    offset = 0
    for p, e in zip(net.parameters(), expected, strict=True):
        assert_close(flat.flat.grad[offset : offset + p.numel()].view_as(p), e)
        offset += p.numel()


def test_flat_adam_refuses_a_parameter_moved_out_of_its_flat_tensor() -> None:
    # a second FlatAdam over the same module rebinds its parameters: the first one must stop
    # with a clear error rather than step a flat tensor the module no longer reads
    net = mlp([3, 4, 1])
    first = FlatAdam([net], learning_rate=1e-2)
    second = FlatAdam([net], learning_rate=1e-2)
    x = torch.randn(8, 3)
    second.step(net(x).sum())
    with pytest.raises(RuntimeError, match="moved out of the flat tensor"):
        first.step(net(x).sum())
    with pytest.raises(ValueError, match="no trainable parameters"):
        FlatAdam([nn.ReLU()], learning_rate=1e-2)


def test_flat_adam_holds_a_shared_parameter_once() -> None:
    shared = nn.Linear(3, 3)
    flat = FlatAdam([nn.Sequential(shared), nn.Sequential(shared)], learning_rate=1e-2)
    assert len(flat.params) == 2 and flat.flat.numel() == 12


def test_multicategorical_log_prob_and_entropy_are_sums_over_components() -> None:
    torch.manual_seed(0)
    policy = MultiCategoricalPolicy(4, (3, 2, 4), (16,))
    obs = torch.randn(6, 4)
    action = torch.tensor([[0, 1, 3], [2, 0, 0], [1, 1, 2], [2, 1, 1], [0, 0, 0], [1, 0, 3]])
    log_prob, entropy = policy.log_prob_entropy(obs, action)
    dists = [Categorical(logits=x) for x in policy(obs).split([3, 2, 4], dim=-1)]
    assert_close(log_prob, sum(d.log_prob(action[:, k]) for k, d in enumerate(dists)))
    assert_close(entropy, sum(d.entropy() for d in dists))


def test_multicategorical_sampling_follows_each_component() -> None:
    torch.manual_seed(1)
    policy = MultiCategoricalPolicy(2, (2, 3), (8,))
    logits = torch.tensor([0.0, 1.0, 2.0, 0.0, -1.0])
    with torch.no_grad():
        policy.logits[-1].bias.copy_(logits)
        policy.logits[-1].weight.zero_()
    obs = torch.zeros(30_000, 2)
    actions = policy.sample(obs)
    assert actions.shape == (30_000, 2) and actions.dtype == torch.int64
    for k, (part, n) in enumerate(zip(logits.split([2, 3]), (2, 3), strict=True)):
        counts = torch.bincount(actions[:, k], minlength=n).float() / 30_000
        assert_close(counts, torch.softmax(part, 0), atol=0.01, rtol=0)
    assert policy.mode(obs[:1]).tolist() == [[1, 0]]  # argmax of (0, 1) and of (2, 0, −1)


def test_bernoulli_log_prob_and_entropy_match_torch_distributions() -> None:
    torch.manual_seed(0)
    policy = BernoulliPolicy(3, 4, (16,))
    with torch.no_grad():
        policy.logits[-1].weight.mul_(300.0)  # logits far from 0, in both directions
    obs = torch.randn(6, 3)
    action = torch.randint(0, 2, (6, 4)).float()
    log_prob, entropy = policy.log_prob_entropy(obs, action)
    dist = Bernoulli(logits=policy(obs))
    assert policy(obs).abs().max() > 1.0
    assert_close(log_prob, dist.log_prob(action).sum(-1))
    assert_close(entropy, dist.entropy().sum(-1))


def test_bernoulli_sampling_follows_the_probabilities() -> None:
    torch.manual_seed(1)
    policy = BernoulliPolicy(2, 3, (8,))
    logits = torch.tensor([-1.0, 0.0, 2.0])
    with torch.no_grad():
        policy.logits[-1].bias.copy_(logits)
        policy.logits[-1].weight.zero_()
    obs = torch.zeros(30_000, 2)
    actions = policy.sample(obs)
    assert actions.dtype == torch.float32 and set(actions.unique().tolist()) == {0.0, 1.0}
    assert_close(actions.mean(0), torch.sigmoid(logits), atol=0.01, rtol=0)
    assert policy.mode(obs[:1]).tolist() == [[0.0, 0.0, 1.0]]


def test_new_policies_sample_the_same_actions_on_either_path() -> None:
    torch.manual_seed(0)
    obs = torch.randn(64, 3)
    for policy in (MultiCategoricalPolicy(3, (2, 4), (16,)), BernoulliPolicy(3, 5, (16,))):
        fallback = copy.deepcopy(policy)
        fallback.logits.insert(1, nn.Identity())  # an unknown layer: the torch path
        assert fallback.logits.numpy_forward(obs) is None
        np.random.seed(3)
        fast = policy.sample(obs)
        np.random.seed(3)
        slow = fallback.sample(obs)
        assert_close(fast, slow)
        assert_close(policy.mode(obs), fallback.mode(obs))


def test_without_an_encoder_networks_keep_their_parameters_and_state_dict_keys() -> None:
    # the networks of flat observations are exactly those of before encoders existed
    torch.manual_seed(0)
    policy = CategoricalPolicy(4, 2)
    assert policy.encoder is None
    assert list(policy.state_dict()) == [
        f"logits.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")
    ]
    assert list(ValueNet(4).state_dict()) == [
        f"net.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")
    ]
    torch.manual_seed(0)
    reference = mlp([4, 64, 64, 2], output_gain=0.01)
    for a, b in zip(policy.parameters(), reference.parameters(), strict=True):
        assert torch.equal(a, b)


def image_encoder() -> ImageEncoder:
    return ImageEncoder((6, 6, 1))


def test_every_network_reads_features_through_its_encoder() -> None:
    torch.manual_seed(0)
    obs = torch.randint(0, 256, (5, 36)).float()
    low, high = -torch.ones(2), torch.ones(2)
    networks = {
        "categorical": CategoricalPolicy(36, 3, (8,), encoder=image_encoder()),
        "gaussian": GaussianPolicy(36, 2, (8,), encoder=image_encoder()),
        "multicategorical": MultiCategoricalPolicy(36, (2, 3), (8,), encoder=image_encoder()),
        "bernoulli": BernoulliPolicy(36, 2, (8,), encoder=image_encoder()),
        "squashed": SquashedGaussianPolicy(36, 2, low, high, (8,), encoder=image_encoder()),
        "actor": DeterministicActor(36, 2, low, high, (8,), encoder=image_encoder()),
        "value": ValueNet(36, (8,), encoder=image_encoder()),
    }
    for name, net in networks.items():
        if hasattr(net, "log_prob_entropy"):
            action = net.sample(obs)
            assert action.shape[0] == 5, name
            out = net.log_prob_entropy(obs, action)[0]
        elif isinstance(net, SquashedGaussianPolicy):
            out = net.rsample(obs)[1]
        else:
            out = net(obs)
        out.sum().backward()
        grads = [p.grad for p in net.encoder.parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in grads), name


def test_twin_critics_get_one_encoder_each() -> None:
    torch.manual_seed(0)
    critic = TwinQ(36, 2, (8,), make_encoder=image_encoder)
    assert critic.q1.encoder is not None and critic.q2.encoder is not None
    assert critic.q1.encoder is not critic.q2.encoder
    first = critic.q1.encoder.linear[0].weight
    assert not torch.equal(first, critic.q2.encoder.linear[0].weight)  # initialised apart
    q1, q2 = critic(torch.rand(4, 36) * 255, torch.zeros(4, 2))
    assert q1.shape == q2.shape == (4,)
    assert QNet(36, 2, (8,), encoder=image_encoder())(
        torch.zeros(3, 36), torch.zeros(3, 2)
    ).shape == (3,)


def test_networks_with_an_encoder_take_time_major_batches() -> None:
    torch.manual_seed(0)
    policy = CategoricalPolicy(36, 3, (8,), encoder=image_encoder())
    value = ValueNet(36, (8,), encoder=image_encoder())
    obs = torch.rand(4, 2, 36) * 255
    actions = torch.randint(0, 3, (4, 2))
    log_prob, entropy = policy.log_prob_entropy(obs, actions)
    assert log_prob.shape == entropy.shape == value(obs).shape == (4, 2)
    assert_close(log_prob[2], policy.log_prob_entropy(obs[2], actions[2])[0])


def test_flat_adam_refuses_parameters_on_several_devices() -> None:
    # the flat tensor lives on one device: the algorithms move every network before
    with pytest.raises(ValueError, match="several devices"):
        FlatAdam([nn.Linear(2, 2), nn.Linear(2, 2).to("meta")], 1e-3)

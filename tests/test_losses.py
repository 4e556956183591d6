"""Loss terms against values computed by hand, and where their gradients flow."""

from __future__ import annotations

import torch
from torch import nn
from torch.testing import assert_close

from pgrl.losses import masked_mean, policy_gradient_loss, reinforce_loss, soft_update_, value_loss


def test_reinforce_loss_by_hand() -> None:
    log_prob = torch.tensor([-0.5, -1.0, -2.0], requires_grad=True)
    returns = torch.tensor([3.0, 1.0, 2.0])
    # loss = -mean(log π (G - b)) with b = 1: -(-0.5*2 + -1*0 + -2*1)/3 = 1.0
    loss = reinforce_loss(log_prob, returns, 1.0)
    assert_close(loss, torch.tensor(1.0))
    loss.backward()
    # d loss / d log π_t = -(G_t - b)/3
    assert_close(log_prob.grad, torch.tensor([-2.0, 0.0, -1.0]) / 3)


def test_policy_gradient_loss_weight_is_a_constant() -> None:
    log_prob = torch.tensor([-1.0, -2.0], requires_grad=True)
    weight = torch.tensor([1.0, 2.0], requires_grad=True)
    policy_gradient_loss(log_prob, weight).backward()
    assert weight.grad is None
    assert log_prob.grad is not None


def test_mask_drops_placeholders_from_the_mean() -> None:
    log_prob = torch.tensor([-1.0, -2.0, -100.0])
    weight = torch.tensor([1.0, 1.0, 1.0])
    mask = torch.tensor([1.0, 1.0, 0.0])
    # -(−1 − 2)/2 = 1.5; the third entry is a placeholder
    assert_close(policy_gradient_loss(log_prob, weight, mask), torch.tensor(1.5))
    assert_close(masked_mean(torch.tensor([2.0, 4.0]), torch.tensor([0.0, 0.0])), torch.tensor(0.0))


def test_value_loss_mse_and_huber_by_hand() -> None:
    value = torch.tensor([0.0, 0.0, 1.0], requires_grad=True)
    target = torch.tensor([0.5, 3.0, 1.0])
    # mse: mean(½ [0.25, 9, 0]) = 9.25/6
    assert_close(value_loss(value, target, "mse"), torch.tensor(9.25 / 6))
    # huber δ=1: [½·0.25, 3 − ½, 0] → mean = (0.125 + 2.5)/3
    assert_close(value_loss(value, target, "huber"), torch.tensor(2.625 / 3))
    value_loss(value, target, "mse").backward()
    # gradient of ½(y − V)² is −(y − V): the TD error, divided by the batch size
    assert_close(value.grad, -(target - value.detach()) / 3)


def test_value_loss_target_gets_no_gradient() -> None:
    value = torch.tensor([0.0], requires_grad=True)
    target = torch.tensor([1.0], requires_grad=True)
    value_loss(value, target).backward()
    assert target.grad is None


def test_soft_update_is_polyak_average() -> None:
    torch.manual_seed(0)
    source, target = nn.Linear(3, 2), nn.Linear(3, 2)
    before = [p.clone() for p in target.parameters()]
    soft_update_(target, source, 0.1)
    for new, old, src in zip(target.parameters(), before, source.parameters(), strict=True):
        assert_close(new, 0.1 * src + 0.9 * old)


def test_normalize_advantages_uses_the_sample_std_over_the_real_entries_by_hand() -> None:
    from pgrl.losses import normalize_advantages

    # real entries 1, 3, 5: mean 3, sample variance (4 + 0 + 4) / 2 = 4, std 2
    out = normalize_advantages(
        torch.tensor([1.0, 3.0, 5.0, 100.0]), torch.tensor([1.0, 1.0, 1.0, 0.0])
    )
    torch.testing.assert_close(out[:3], torch.tensor([-1.0, 0.0, 1.0]))
    assert torch.isfinite(out[3])  # a placeholder keeps a finite value; the loss masks it
    # as SB3 (th.std) and CleanRL (tensor.std()) compute it
    x = torch.tensor([0.5, -2.0, 4.0, 1.5, 3.0])
    torch.testing.assert_close(normalize_advantages(x), (x - x.mean()) / (x.std() + 1e-8))
    # one entry: no spread to divide by, the centred value 0 (not NaN)
    assert normalize_advantages(torch.tensor([7.0])).tolist() == [0.0]

"""Helpers shared by the algorithms."""

from __future__ import annotations

import torch

from pgrl.algos.base import clip_grad


def _params_with_grads(scale: float) -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(5, 3, generator=gen)) for _ in range(3)]
    for p in params:
        p.grad = torch.randn(5, 3, generator=gen) * scale
    return params


def test_clip_grad_follows_torch_clip_grad_norm() -> None:
    for scale, max_norm in [(10.0, 0.5), (0.01, 0.5)]:  # clipped, and left alone
        ours, reference = _params_with_grads(scale), _params_with_grads(scale)
        norm = clip_grad(ours, max_norm)
        expected = torch.nn.utils.clip_grad_norm_(reference, max_norm)
        assert norm is not None
        assert abs(norm - expected.item()) <= 1e-5 * expected.item()
        for a, b in zip(ours, reference, strict=True):
            torch.testing.assert_close(a.grad, b.grad)
        after = torch.cat([p.grad.flatten() for p in ours if p.grad is not None]).norm()
        assert after.item() <= max(max_norm, norm) * (1 + 1e-5)
        assert (after.item() <= max_norm + 1e-5) == (norm >= max_norm) or norm < max_norm


def test_clip_grad_none_leaves_gradients_alone() -> None:
    params = _params_with_grads(10.0)
    before = [p.grad.clone() for p in params if p.grad is not None]
    assert clip_grad(params, None) is None
    for p, b in zip(params, before, strict=True):
        torch.testing.assert_close(p.grad, b)

"""The small interface every algorithm implements, and helpers they share."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from pgrl.envs import SpaceInfo
from pgrl.errors import EnvError

Collection = Literal["rollout", "episodes", "replay"]


class Algorithm(Protocol):
    """What the generic loop needs from an algorithm.

    The algorithm owns its networks and optimizers; the loop owns environments, storage,
    logging, evaluation and checkpoints.
    """

    collection: Collection
    """how the loop feeds it: fixed-length rollouts, whole episodes, or replay minibatches"""

    def act(self, obs: Tensor, *, deterministic: bool = False) -> Tensor:
        """Actions ``(N,)`` or ``(N, A)`` for observations ``(N, O)``."""
        ...

    def update(self, data: Any) -> dict[str, Tensor]:
        """One update from a Rollout or a Batch; returns metrics as 0-d tensors."""
        ...

    def modules(self) -> dict[str, nn.Module]:
        """Every network, by name (for checkpoints and weight transfer)."""
        ...

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimizer, by name (for checkpoints)."""
        ...


def require_box(name: str, spaces: SpaceInfo, env_id: str = "this environment") -> None:
    """Raise a helpful error when a continuous-only algorithm meets a Discrete space."""
    if spaces.discrete:
        raise EnvError(
            f"{name} needs a continuous (Box) action space; {env_id} has "
            f"{spaces.act_space}. Try 'a2c' or 'reinforce' (or 'ppo')."
        )


def make_adam(params: Iterable[nn.Parameter], learning_rate: float) -> torch.optim.Adam:
    """Adam with eps 1e-5 (OpenAI Baselines) and the fused kernel.

    On CPU with small networks the optimizer's per-tensor Python loop costs more than the
    arithmetic: the fused step measured 72 µs against 219 µs (foreach) and 298 µs (default)
    for A2C's 64x64 actor and critic.
    """
    return torch.optim.Adam(list(params), lr=learning_rate, eps=1e-5, fused=True)


class FlatParameters:
    """One parameter holding ``params`` end to end; each of them becomes a view of it.

    The modules keep their parameters (same names, shapes and values; ``state_dict`` and
    checkpoints are unchanged), but the optimizer and gradient clipping handle one tensor,
    ``flat``, instead of one per layer. On CPU with small networks their per-tensor Python
    overhead is most of their cost: for A2C's twelve tensors the fused Adam step took
    74 µs, against 34 µs for the single flat one.

    The gradient lives in one buffer too: :meth:`set_grads` copies each parameter's
    gradient into its slice of ``flat.grad``.
    """

    def __init__(self, params: list[nn.Parameter]) -> None:
        self.params = params
        self.flat = nn.Parameter(torch.cat([p.detach().reshape(-1) for p in params]))
        self.flat.grad = torch.zeros_like(self.flat)
        grad = self.flat.grad.numpy()
        self._grad_views: dict[int, np.ndarray] = {}
        offset = 0
        for p in params:
            p.data = self.flat.data[offset : offset + p.numel()].view_as(p)
            self._grad_views[id(p)] = grad[offset : offset + p.numel()].reshape(p.shape)
            offset += p.numel()

    def set_grads(self, pairs: Iterable[tuple[nn.Parameter, Tensor | np.ndarray | None]]) -> None:
        """Write (parameter, gradient) pairs into ``flat.grad``; other slices (and a None
        gradient) become 0."""
        assert self.flat.grad is not None
        self.flat.grad.zero_()
        for param, grad in pairs:
            if grad is not None:
                view = self._grad_views[id(param)]
                view[...] = grad.detach().numpy() if isinstance(grad, Tensor) else grad

    def grad(self, param: nn.Parameter) -> Tensor:
        """``param``'s slice of ``flat.grad``, shaped like ``param``."""
        return torch.from_numpy(self._grad_views[id(param)])


def clip_grad(params: Iterable[nn.Parameter], max_grad_norm: float | None) -> float | None:
    """Clip the global gradient norm when ``max_grad_norm`` is set; return the norm.

    The rule of ``torch.nn.utils.clip_grad_norm_``: every gradient is scaled by
    min(1, max_grad_norm / (‖g‖ + 1e-6)), with ‖g‖ the L2 norm of all of them together.
    The arithmetic runs on NumPy views of the (CPU) gradients: 8 µs against 69 µs for
    torch's foreach implementation on A2C's twelve small tensors.
    """
    if max_grad_norm is None:
        return None
    grads = [p.grad.numpy() for p in params if p.grad is not None]
    total = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
    coef = max_grad_norm / (total + 1e-6)
    if coef < 1.0:
        for g in grads:
            g *= np.float32(coef) if g.dtype == np.float32 else coef
    return total

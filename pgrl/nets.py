"""Networks: the MLP builder, policies and critics.

"Policy" means only the network that maps an observation to an action or an action
distribution. Log-probabilities for autograd use plain tensor operations
(``log_softmax(...).gather``) instead of ``torch.distributions`` objects, whose construction
and validation cost tens of microseconds per call.

Two paths through the same weights:

* torch (``forward``, ``log_prob_entropy``): autograd, for the losses of every algorithm;
* NumPy (``MLP.numpy_forward``, the policies' ``sample``/``mode`` and ``score_forward`` /
  ``score_backward``, ``MLP.param_grads``): views of the weights, no autograd. Acting runs
  here, and REINFORCE, A2C and PPO compute their gradients here in closed form (the chain
  rule written out, tested against autograd). At these sizes a torch operation costs
  microseconds of dispatch, several times its arithmetic.

Shapes: B batch, O observation dims, A action dims (or the number of discrete actions).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "CategoricalPolicy",
    "DeterministicActor",
    "GaussianPolicy",
    "QNet",
    "SquashedGaussianPolicy",
    "TwinQ",
    "ValueNet",
    "mlp",
]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


class MLP(nn.Sequential):
    """``nn.Sequential`` whose forward calls the functional ops directly.

    Same parameters and state-dict keys as ``nn.Sequential``; skipping each layer's
    ``Module.__call__`` (hook checks) saves several microseconds per layer. Stacks of
    Linear, Tanh and ReLU layers also run on the NumPy path (:meth:`numpy_forward`,
    :meth:`param_grads`).
    """

    def forward(self, x: Tensor) -> Tensor:
        for layer in self:
            if isinstance(layer, nn.Linear):
                x = F.linear(x, layer.weight, layer.bias)
            elif isinstance(layer, nn.Tanh):
                x = torch.tanh(x)
            elif isinstance(layer, nn.ReLU):
                x = torch.relu(x)
            else:
                x = layer(x)
        return x

    def numpy_layers(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """The layers as ``(kind, W, b)`` with W and b NumPy views of the parameters.

        Views share memory with the parameters, which optimizers and ``load_state_dict``
        update in place; the list is rebuilt when a parameter's storage changes (``.to``,
        assigning ``.data``) or layers are added.
        """
        cache = self.__dict__.get("_numpy_cache")
        if cache is not None:
            size, params, pointers, layers = cache
            if size == len(self) and [p.data_ptr() for p in params] == pointers:
                return layers
        layers, params = [], []
        empty = np.empty(0, dtype=np.float32)
        for layer in self:
            if isinstance(layer, nn.Linear):
                params += [layer.weight, layer.bias]
                w, b = layer.weight.detach().numpy(), layer.bias.detach().numpy()
                layers.append(("linear", w, b))
            elif isinstance(layer, (nn.Tanh, nn.ReLU)):
                layers.append((type(layer).__name__.lower(), empty, empty))
            else:
                raise TypeError(f"the NumPy path supports Linear, Tanh and ReLU, not {layer}")
        self.__dict__["_numpy_cache"] = (len(self), params, [p.data_ptr() for p in params], layers)
        return layers

    def numpy_forward(self, x: np.ndarray, saved: list[np.ndarray] | None = None) -> np.ndarray:
        """The forward pass on NumPy views of the weights, without autograd.

        At the sizes of on-policy control (a few to a hundred rows, 64 units) each torch
        operation costs 2 to 5 µs of dispatch, more than its arithmetic; NumPy's cost 1 to
        2 µs (and ``torch.tanh`` runs at about 3 ns per element on the CPU builds measured,
        against NumPy's vectorised 0.4). Acting and the closed-form gradients of the on-policy
        algorithms use this path; training with autograd uses :meth:`forward`. ``saved``, when given, receives
        the input and every layer's output (what :meth:`param_grads` needs).
        """
        if saved is not None:
            saved.append(x)
        for kind, w, b in self.numpy_layers():
            if kind == "linear":
                x = x @ w.T
                x += b
            elif kind == "tanh":
                x = np.tanh(x)
            else:
                x = np.maximum(x, 0.0)
            if saved is not None:
                saved.append(x)
        return x

    def forward_saving(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """The output for a flat batch ``(B, in)``, and what :meth:`param_grads` needs."""
        saved: list[np.ndarray] = []
        return self.numpy_forward(x, saved), saved

    def param_grads(
        self, saved: list[np.ndarray], grad_out: np.ndarray
    ) -> list[tuple[nn.Parameter, np.ndarray]]:
        """(parameter, ∂L/∂parameter) pairs, given ∂L/∂output ``(B, out)``, by the chain rule.

        ``saved`` comes from :meth:`forward_saving` (its first B rows may be sliced off a
        larger batch). Layer by layer, from the last:

            y = x Wᵀ + b:   ∂L/∂W = (∂L/∂y)ᵀ x,   ∂L/∂b = Σ_rows ∂L/∂y,   ∂L/∂x = (∂L/∂y) W
            h = tanh(z):    ∂L/∂z = ∂L/∂h ⊙ (1 − h²)
            h = relu(z):    ∂L/∂z = ∂L/∂h ⊙ [h > 0]

        On CPU with small networks this is several times cheaper than ``loss.backward()``,
        whose per-operation bookkeeping dominates at this size; tests check it against
        autograd.
        """
        grads: list[np.ndarray] = []  # in reverse parameter order: b, W of the last layer first
        grad = grad_out
        layers = self.numpy_layers()
        for i in range(len(layers) - 1, -1, -1):
            kind, w, _ = layers[i]
            out = saved[i + 1]
            if kind == "linear":
                grads += [grad.sum(0), grad.T @ saved[i]]
                if i > 0:
                    grad = grad @ w
            elif kind == "tanh":
                grad = grad * (1.0 - out * out)
            else:
                grad = grad * (out > 0)
        params = self.__dict__["_numpy_cache"][1]
        return list(zip(params, reversed(grads), strict=True))


def mlp(
    sizes: Sequence[int],
    activation: type[nn.Module] = nn.Tanh,
    *,
    output_gain: float | None = None,
) -> MLP:
    """A multilayer perceptron ``sizes[0] → ... → sizes[-1]`` with no activation at the end.

    With ``output_gain`` set, weights are orthogonal (gain √2 on hidden layers, the given
    gain on the output layer) and biases zero: the initialisation of OpenAI Baselines' A2C
    and PPO, which small policy-gradient networks train best with.
    """
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        linear = nn.Linear(n_in, n_out)
        last = i == len(sizes) - 2
        if output_gain is not None:
            nn.init.orthogonal_(linear.weight, output_gain if last else math.sqrt(2.0))
            nn.init.zeros_(linear.bias)
        layers.append(linear)
        if not last:
            layers.append(activation())
    return MLP(*layers)


class ScoreForward(NamedTuple):
    """A policy's forward pass on the NumPy path: log π(a|s), H[π(·|s)] ``(B,)`` and what
    its ``score_backward`` needs."""

    log_prob: np.ndarray
    entropy: np.ndarray
    cache: tuple[Any, ...]


class _ScorePolicy(nn.Module):
    """What the closed-form gradients need from a policy: ``score_forward`` (log π(a|s), H
    and a cache) and ``score_backward`` (the parameter gradient of −Σ_i [w_i log π(a_i|s_i)
    + c_i H_i]), both on the NumPy path."""

    def score_forward(self, obs: np.ndarray, action: np.ndarray) -> ScoreForward:
        raise NotImplementedError

    def score_backward(
        self, forward: ScoreForward, weight: np.ndarray, entropy_weight: np.ndarray | None
    ) -> list[tuple[nn.Parameter, np.ndarray]]:
        raise NotImplementedError

    def score_grads(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        weight: np.ndarray,
        entropy_weight: np.ndarray | None = None,
    ) -> tuple[list[tuple[nn.Parameter, np.ndarray]], np.ndarray, np.ndarray]:
        """:meth:`score_forward` then :meth:`score_backward`: the pairs, log π(a|s) and H."""
        forward = self.score_forward(obs, action)
        pairs = self.score_backward(forward, weight, entropy_weight)
        return pairs, forward.log_prob, forward.entropy


class CategoricalPolicy(_ScorePolicy):
    """π(a|s) = softmax(logits(s))_a for a Discrete action space."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: Sequence[int] = (64, 64)) -> None:
        super().__init__()
        # gain 0.01 on the logits: a near-uniform initial policy (Andrychowicz et al. 2021)
        self.logits = mlp([obs_dim, *hidden, n_actions], output_gain=0.01)

    def forward(self, obs: Tensor) -> Tensor:
        """Logits ``(B, A)``."""
        return self.logits(obs)

    def sample(self, obs: Tensor) -> Tensor:
        """Draw a ~ π(·|s): ``(B,)`` int64, with the Gumbel-max trick.

        argmax_k (logits_k + g_k) with g_k ~ Gumbel(0, 1) i.i.d. is distributed exactly as
        softmax(logits): three array operations, against a dozen for ``torch.multinomial``
        or inverting the CDF. Actions carry no gradient, so this runs on the NumPy path
        (:meth:`MLP.numpy_forward`); g comes from NumPy's global generator, which a run
        seeds and checkpoints like torch's.
        """
        logits = self.logits.numpy_forward(obs.detach().numpy())
        noise = np.random.gumbel(size=logits.shape)
        return torch.from_numpy((logits + noise).argmax(-1))

    def mode(self, obs: Tensor) -> Tensor:
        """The most likely action ``(B,)``, for deterministic evaluation."""
        return torch.from_numpy(self.logits.numpy_forward(obs.detach().numpy()).argmax(-1))

    def log_prob_entropy(self, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        """log π(a|s) ``(B,)`` and the entropy H[π(·|s)] ``(B,)``."""
        log_probs = F.log_softmax(self.logits(obs), dim=-1)
        log_prob = log_probs.gather(-1, action.long().unsqueeze(-1)).squeeze(-1)
        entropy = -(log_probs.exp() * log_probs).sum(-1)
        return log_prob, entropy

    def score_forward(self, obs: np.ndarray, action: np.ndarray) -> ScoreForward:
        """log π(a|s) and H[π(·|s)] of a flat NumPy batch, keeping what
        :meth:`score_backward` needs (the NumPy path of :meth:`MLP.numpy_forward`)."""
        logits, saved = self.logits.forward_saving(obs)
        shifted = logits - logits.max(-1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(-1, keepdims=True)
        probs = exp / total
        log_probs = shifted - np.log(total)
        rows = np.arange(len(obs))
        entropy = -(probs * log_probs).sum(-1)
        cache = (saved, probs, log_probs, rows, action, entropy)
        return ScoreForward(log_probs[rows, action], entropy, cache)

    def score_backward(
        self, forward: ScoreForward, weight: np.ndarray, entropy_weight: np.ndarray | None
    ) -> list[tuple[nn.Parameter, np.ndarray]]:
        """Closed-form gradient of −Σ_i [w_i log π(a_i|s_i) + c_i H[π(·|s_i)]].

        With π = softmax(logits):  ∂log π(a|s)/∂logits = onehot(a) − π  and
        ∂H/∂logits = −π ⊙ (log π + H). ``weight`` and ``entropy_weight`` are ``(B,)``.
        Returns (parameter, gradient) pairs.
        """
        saved, probs, log_probs, rows, action, entropy = forward.cache
        grad = probs * weight[:, None]  # −w (onehot(a) − π), in two steps
        grad[rows, action] -= weight
        if entropy_weight is not None:  # −c ∂H/∂logits
            grad += (entropy_weight[:, None] * probs) * (log_probs + entropy[:, None])
        return self.logits.param_grads(saved, grad)


class GaussianPolicy(_ScorePolicy):
    """Diagonal Gaussian π(a|s) = N(μ(s), diag(σ²)) with a state-independent log σ.

    The log-probability is the sum over action dimensions (the joint density of the action
    vector). Samples are not clipped here: the log-probability belongs to the sampled
    action, and only the copy sent to the environment is clipped to the Box bounds.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: Sequence[int] = (64, 64),
        log_std_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.mean = mlp([obs_dim, *hidden, act_dim], output_gain=0.01)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std_init)))

    def forward(self, obs: Tensor) -> Tensor:
        """Mean μ(s) ``(B, A)``."""
        return self.mean(obs)

    def sample(self, obs: Tensor) -> Tensor:
        """Draw a = μ(s) + σ ε, ε ~ N(0, I): ``(B, A)``, on the NumPy path (NumPy's generator)."""
        mean = self.mean.numpy_forward(obs.detach().numpy())
        noise = np.random.standard_normal(mean.shape).astype(mean.dtype)
        return torch.from_numpy(mean + np.exp(self.log_std.detach().numpy()) * noise)

    def mode(self, obs: Tensor) -> Tensor:
        """μ(s), for deterministic evaluation."""
        return torch.from_numpy(self.mean.numpy_forward(obs.detach().numpy()))

    def log_prob_entropy(self, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        """log π(a|s) = Σ_i [−(a_i − μ_i)² / (2σ_i²) − log σ_i − ½ log 2π], and H, both ``(B,)``."""
        mean = self.mean(obs)
        log_std = self.log_std.expand_as(mean)
        z = (action - mean) / log_std.exp()
        log_prob = (-0.5 * z.pow(2) - log_std - _LOG_SQRT_2PI).sum(-1)
        entropy = (log_std + 0.5 + _LOG_SQRT_2PI).sum(-1)
        return log_prob, entropy

    def score_forward(self, obs: np.ndarray, action: np.ndarray) -> ScoreForward:
        """log π(a|s) and H of a flat NumPy batch, keeping what :meth:`score_backward` needs."""
        mean, saved = self.mean.forward_saving(obs)
        log_std = self.log_std.detach().numpy()
        std = np.exp(log_std)
        z = (action - mean) / std
        log_prob = (-0.5 * z * z - log_std - _LOG_SQRT_2PI).sum(-1)
        entropy = np.full(len(obs), (log_std + 0.5 + _LOG_SQRT_2PI).sum(), dtype=mean.dtype)
        return ScoreForward(log_prob, entropy, (saved, z, std))

    def score_backward(
        self, forward: ScoreForward, weight: np.ndarray, entropy_weight: np.ndarray | None
    ) -> list[tuple[nn.Parameter, np.ndarray]]:
        """Closed-form gradient of −Σ_i [w_i log π(a_i|s_i) + c_i H[π(·|s_i)]].

        With z = (a − μ)/σ:  ∂log π/∂μ = z/σ,  ∂log π/∂log σ = z² − 1  and  ∂H/∂log σ = 1.
        Returns (parameter, gradient) pairs.
        """
        saved, z, std = forward.cache
        w = weight[:, None]
        grad_mean = -w * z / std
        grad_log_std = -(w * (z * z - 1.0)).sum(0)
        if entropy_weight is not None:
            grad_log_std -= entropy_weight.sum()
        pairs = self.mean.param_grads(saved, grad_mean)
        return [*pairs, (self.log_std, grad_log_std)]


class SquashedGaussianPolicy(nn.Module):
    """a = scale · tanh(u) + shift, u ~ N(μ(s), σ(s)²), with the change-of-variables log-prob.

    log π(a|s) = log N(u; μ, σ) − Σ_i log(scale_i (1 − tanh(u_i)²)).
    Reference: Haarnoja et al. (2018), appendix C.
    """

    scale: Tensor
    shift: Tensor
    LOG_STD_MIN = -5.0
    LOG_STD_MAX = 2.0

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        low: Tensor,
        high: Tensor,
        hidden: Sequence[int] = (256, 256),
    ) -> None:
        super().__init__()
        self.trunk = mlp([obs_dim, *hidden], nn.ReLU)
        self.trunk.append(nn.ReLU())
        self.mean = nn.Linear(hidden[-1], act_dim)
        self.log_std = nn.Linear(hidden[-1], act_dim)
        self.register_buffer("scale", (high - low) / 2.0)
        self.register_buffer("shift", (high + low) / 2.0)

    def _mean_log_std(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        h = self.trunk(obs)
        log_std = self.log_std(h).clamp(self.LOG_STD_MIN, self.LOG_STD_MAX)
        return self.mean(h), log_std

    def rsample(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """Reparameterised sample a ``(B, A)`` and its log π(a|s) ``(B,)``, differentiable."""
        mean, log_std = self._mean_log_std(obs)
        noise = torch.randn_like(mean)
        u = mean + log_std.exp() * noise
        squashed = torch.tanh(u)
        gauss_log_prob = (-0.5 * noise.pow(2) - log_std - _LOG_SQRT_2PI).sum(-1)
        # log(1 − tanh(u)²) = 2 (log 2 − u − softplus(−2u)), stable for large |u|
        log_det = (2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))).sum(-1)
        log_prob = gauss_log_prob - log_det - torch.log(self.scale).sum()
        return squashed * self.scale + self.shift, log_prob

    def sample(self, obs: Tensor) -> Tensor:
        return self.rsample(obs)[0]

    def mode(self, obs: Tensor) -> Tensor:
        mean, _ = self._mean_log_std(obs)
        return torch.tanh(mean) * self.scale + self.shift


class DeterministicActor(nn.Module):
    """μ(s) = scale · tanh(f(s)) + shift: a deterministic action inside the Box bounds."""

    scale: Tensor
    shift: Tensor

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        low: Tensor,
        high: Tensor,
        hidden: Sequence[int] = (256, 256),
    ) -> None:
        super().__init__()
        self.net = mlp([obs_dim, *hidden, act_dim], nn.ReLU)
        self.register_buffer("scale", (high - low) / 2.0)
        self.register_buffer("shift", (high + low) / 2.0)

    def forward(self, obs: Tensor) -> Tensor:
        return torch.tanh(self.net(obs)) * self.scale + self.shift


class ValueNet(nn.Module):
    """State value V(s): ``(B, O) → (B,)``."""

    def __init__(self, obs_dim: int, hidden: Sequence[int] = (64, 64)) -> None:
        super().__init__()
        self.net = mlp([obs_dim, *hidden, 1], output_gain=1.0)

    def forward(self, obs: Tensor) -> Tensor:
        return self.net(obs).squeeze(-1)

    def forward_saving(self, obs: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """V(s) ``(B,)`` of a flat NumPy batch, and what :meth:`param_grads` needs."""
        value, saved = self.net.forward_saving(obs)
        return value[:, 0], saved

    def param_grads(
        self, saved: list[np.ndarray], grad_value: np.ndarray
    ) -> list[tuple[nn.Parameter, np.ndarray]]:
        """(parameter, ∂L/∂parameter) pairs, given ∂L/∂V ``(B,)`` (see :meth:`MLP.param_grads`)."""
        return self.net.param_grads(saved, grad_value[:, None])


class QNet(nn.Module):
    """Action value Q(s, a): ``(B, O), (B, A) → (B,)``."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (256, 256)) -> None:
        super().__init__()
        self.net = mlp([obs_dim + act_dim, *hidden, 1], nn.ReLU)

    def forward(self, obs: Tensor, action: Tensor) -> Tensor:
        return self.net(torch.cat([obs, action], dim=-1)).squeeze(-1)


class TwinQ(nn.Module):
    """Two independent critics Q1, Q2 (Fujimoto et al. 2018, clipped double Q)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (256, 256)) -> None:
        super().__init__()
        self.q1 = QNet(obs_dim, act_dim, hidden)
        self.q2 = QNet(obs_dim, act_dim, hidden)

    def forward(self, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        return self.q1(obs, action), self.q2(obs, action)

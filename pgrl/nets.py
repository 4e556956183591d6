"""Networks: the MLP, policies and critics, and the gradient step on their parameters.

"Policy" means only the network that maps an observation to an action or an action
distribution. Log-probabilities use plain tensor operations (``log_softmax(...).gather``)
instead of ``torch.distributions`` objects, whose construction and validation cost tens of
microseconds per call.

Every loss in pgrl is a torch function and every gradient is autograd's: the networks here
are plain ``nn.Module``s. What makes small networks fast on the CPU, where each torch
operation costs microseconds of dispatch, is underneath the losses and general:

* :class:`MLP` calls the functional ops directly (no per-layer ``Module.__call__``);
* :class:`FlatAdam` keeps the parameters of a set of networks in one flat tensor whose
  gradient buffer the parameters' ``.grad`` are views of: autograd accumulates every
  parameter's gradient into it, and Adam and gradient clipping run on one tensor;
* :func:`frozen` turns a critic's ``requires_grad`` off while an actor's loss goes through
  it, so autograd skips the critic's weight gradients altogether.

Every network takes an optional ``encoder`` (:mod:`pgrl.encoders`): a module that maps the
flat observation ``(B, O)`` to features ``(B, encoder.out_dim)``, which the MLP then takes in
place of the observation (a CNN for images, per-key parts for Dict observations). Without
one the network is exactly the MLP on the observation, and acting keeps its NumPy path.

Shapes: B batch, O observation dims, A action dims (or the number of discrete actions).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "BernoulliPolicy",
    "CategoricalPolicy",
    "DeterministicActor",
    "FlatAdam",
    "GaussianPolicy",
    "MultiCategoricalPolicy",
    "QNet",
    "SquashedGaussianPolicy",
    "TwinQ",
    "ValueNet",
    "encode",
    "frozen",
    "make_policy",
    "mlp",
    "normal_noise",
    "policy_for",
    "policy_kwargs",
    "row_generators",
]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)

# activations whose functional form MLP calls directly (exact types: a subclass may change
# the math)
_ACTIVATIONS: dict[type, Callable[[Tensor], Tensor]] = {nn.Tanh: torch.tanh, nn.ReLU: torch.relu}


class MLP(nn.Sequential):
    """``nn.Sequential`` whose forward calls the functional ops directly.

    Same parameters and state-dict keys as ``nn.Sequential``; skipping each layer's
    ``Module.__call__`` (hook checks) saves microseconds per layer. Any other layer type
    runs through its own module call; a layer with hooks too, so that they fire.
    """

    def forward(self, x: Tensor) -> Tensor:
        # one reshape to rows (B, in) and one back, instead of a pair inside every linear
        # layer given a (T, N, in) input: fewer autograd nodes
        shape = x.shape
        if x.ndim != 2:
            x = x.reshape(-1, shape[-1])
        for layer in self:
            kind = type(layer)
            hooked = (
                layer._forward_hooks
                or layer._forward_pre_hooks
                or layer._backward_hooks
                or layer._backward_pre_hooks
            )
            if hooked:
                x = layer(x)
            elif kind is nn.Linear:
                x = F.linear(x, layer.weight, layer.bias)  # type: ignore[arg-type]
            elif kind in _ACTIVATIONS:
                x = _ACTIVATIONS[kind](x)
            else:
                x = layer(x)
        return x if len(shape) == 2 else x.reshape(*shape[:-1], x.shape[-1])

    def numpy_forward(self, x: Tensor) -> np.ndarray | None:
        """The forward pass on NumPy views of the weights, for acting; None where it cannot.

        Acting is where pgrl crosses from the environment's arrays to the networks and back,
        a few rows at a time; there one NumPy operation costs about a microsecond and one
        torch operation several. This path needs no gradient, so it only runs the forward
        that :meth:`forward` defines, for exact Linear/Tanh/ReLU layers without hooks, on a
        CPU input of the weights' dtype. Anything else returns None and the caller takes
        :meth:`forward` (tests compare the two).
        """
        layers = self._numpy_layers(x)
        if layers is None:
            return None
        out = x.detach().numpy()
        if out.ndim != 2:
            out = out.reshape(-1, out.shape[-1])
        for kind, w, b in layers:
            if kind is nn.Linear:
                out = out @ w.T
                out += b
            elif kind is nn.Tanh:
                out = np.tanh(out)
            else:
                out = np.maximum(out, 0.0)
        return out if x.ndim == 2 else out.reshape(*x.shape[:-1], out.shape[-1])

    def _numpy_layers(self, x: Tensor) -> list[tuple[type, np.ndarray, np.ndarray]] | None:
        if type(x) is not Tensor or not x.is_cpu or x.requires_grad:
            return None
        cache = self.__dict__.get("_numpy_cache")
        if cache is not None:
            modules, params, pointers, _ = cache
            valid = (
                tuple(self) == modules
                and [p.data_ptr() for p in params] == pointers
                and params[0].dtype == x.dtype
            )
            if not valid:
                cache = None
        if cache is None:
            cache = self._build_numpy_cache()
            if cache is None or cache[1][0].dtype != x.dtype:
                return None
        if any(
            m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks
            for m in cache[0]
        ):
            return None
        return cache[3]

    def _build_numpy_cache(self) -> tuple[Any, ...] | None:
        """(modules, parameters, their data pointers, (kind, W, b) views), or None."""
        layers: list[tuple[type, np.ndarray, np.ndarray]] = []
        params: list[Tensor] = []
        empty = np.empty(0, dtype=np.float32)
        for layer in self:
            kind = type(layer)
            if isinstance(layer, nn.Linear) and kind is nn.Linear:
                w, b = layer.weight, layer.bias
                if b is None or not (w.is_cpu and b.is_cpu) or w.dtype != b.dtype:
                    return None
                params += [w, b]
                layers.append((kind, w.detach().numpy(), b.detach().numpy()))
            elif kind in _ACTIVATIONS:
                layers.append((kind, empty, empty))
            else:
                return None
        if not params:
            return None
        cache = (tuple(self), params, [p.data_ptr() for p in params], layers)
        self.__dict__["_numpy_cache"] = cache
        return cache


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


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Inside the block, ``module``'s parameters take no gradient (restored afterwards).

    DDPG, TD3 and SAC freeze the critic while the actor ascends Q(s, μ(s)): the gradient
    flows through the critic to the action, and autograd does not compute the critic's
    weight gradients at all.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class FlatAdam:
    """Adam on the parameters of some networks, kept end to end in one flat tensor.

    Each parameter becomes a view of ``flat`` (same names, shapes and values: state dicts and
    checkpoints are unchanged), and from the first :meth:`step` its ``.grad`` a view of
    ``flat.grad``, into which autograd accumulates. Adam (fused kernel, eps 1e-5 as in OpenAI Baselines) and gradient
    clipping then handle one tensor instead of one per layer; on CPU with small networks
    their per-tensor overhead is most of their cost (A2C's twelve tensors: 74 µs per fused
    Adam step, against 34 µs for one flat tensor).

    A gradient that does not land in its view (code that set ``.grad`` to None or to a
    new tensor) is copied in before the step, so every parameter always steps on its own
    autograd gradient.
    """

    def __init__(
        self,
        modules: Sequence[nn.Module],
        learning_rate: float,
        max_grad_norm: float | None = None,
    ) -> None:
        # each parameter once, even when modules share it (tied weights)
        trainable = (p for m in modules for p in m.parameters() if p.requires_grad)
        self.params = list(dict.fromkeys(trainable))
        if not self.params:
            raise ValueError("FlatAdam: the modules have no trainable parameters")
        devices = {p.device for p in self.params}
        if len(devices) > 1:
            # the flat tensor lives on one device: move every module there first
            raise ValueError(f"FlatAdam: parameters on several devices {sorted(map(str, devices))}")
        self.max_grad_norm = max_grad_norm
        self.flat = nn.Parameter(torch.cat([p.detach().reshape(-1) for p in self.params]))
        self.flat.grad = torch.zeros_like(self.flat)
        self._grad_views: list[Tensor] = []
        offset = 0
        for p in self.params:
            n = p.numel()
            p.data = self.flat.data[offset : offset + n].view_as(p)
            self._grad_views.append(self.flat.grad[offset : offset + n].view_as(p))
            offset += n
        self._pointers = [p.data_ptr() for p in self.params]
        self.optimizer = torch.optim.Adam([self.flat], lr=learning_rate, eps=1e-5, fused=True)

    def zero_grad(self) -> None:
        """Zero ``flat.grad`` and point every parameter's ``.grad`` at its view of it.

        Raises:
            RuntimeError: a parameter no longer lives in ``flat`` (``module.to(...)``, a new
                ``.data``, or a second FlatAdam over the same module): stepping ``flat`` would
                silently leave that parameter behind.
        """
        assert self.flat.grad is not None
        self.flat.grad.zero_()
        for p, view, pointer in zip(self.params, self._grad_views, self._pointers, strict=True):
            if p.data_ptr() != pointer:
                raise RuntimeError(
                    "FlatAdam: a parameter of shape "
                    f"{tuple(p.shape)} was moved out of the flat tensor (module.to(), a new "
                    ".data, or another FlatAdam over the same module); build the optimizer "
                    "after such changes"
                )
            if p.grad is not view:
                p.grad = view

    def _gather(self) -> None:
        for p, view in zip(self.params, self._grad_views, strict=True):
            grad = p.grad
            if grad is not view:
                if grad is None:
                    view.zero_()
                else:
                    view.copy_(grad)
                p.grad = view

    def step(self, loss: Tensor) -> Tensor | None:
        """One Adam step down ``loss``: backward, clip the global norm, update.

        Returns the gradient norm before clipping when ``max_grad_norm`` is set.
        """
        self.zero_grad()
        loss.backward()
        self._gather()
        norm = None
        if self.max_grad_norm is not None:
            # the rule of torch.nn.utils.clip_grad_norm_ (scale by min(1, c / (‖g‖ + 1e-6))),
            # on one tensor: four operations instead of its generic per-tensor grouping
            grad = self.flat.grad
            assert grad is not None
            norm = torch.linalg.vector_norm(grad)
            grad.mul_((self.max_grad_norm / (norm + 1e-6)).clamp_(max=1.0))
        self.optimizer.step()
        return norm


def encode(encoder: nn.Module | None, obs: Tensor) -> Tensor:
    """The features a network's MLP reads: ``encoder(obs)``, or ``obs`` without an encoder."""
    return obs if encoder is None else encoder(obs)


def _in_dim(obs_dim: int, encoder: nn.Module | None) -> int:
    """Width of the MLP's input: the observation's, or the encoder's ``out_dim``."""
    return obs_dim if encoder is None else int(encoder.out_dim)  # type: ignore[arg-type]


_row_generators: Sequence[np.random.Generator] | None = None
"""While :func:`row_generators` is active: one generator per row of the batch being acted on."""


@contextlib.contextmanager
def row_generators(generators: Sequence[np.random.Generator]) -> Iterator[None]:
    """Draw the noise of every ``sample`` in this block row by row, row i from ``generators[i]``.

    The collector acts inside this block with one generator per environment, derived from
    (seed, environment index): environment i's actions then depend on its own stream only,
    whichever process acts for it and whatever other environments share its batch, and each
    stream advances by the same draws per vector step. Outside the block, noise comes from
    NumPy's global generator on the CPU (torch's on other devices).

    Example:
        >>> rows = [np.random.default_rng(i) for i in range(2)]
        >>> with row_generators(rows):
        ...     noise = _normal_rows((2, 3))
        >>> bool((noise[1] == np.random.default_rng(1).standard_normal(3, np.float32)).all())
        True
    """
    global _row_generators
    previous, _row_generators = _row_generators, generators
    try:
        yield
    finally:
        _row_generators = previous


def _generators_for(shape: Sequence[int]) -> Sequence[np.random.Generator] | None:
    """The per-row generators for a batch of ``shape`` (None outside :func:`row_generators`)."""
    generators = _row_generators
    if generators is not None and len(generators) != shape[0]:
        raise RuntimeError(
            f"acting on a batch of {shape[0]} rows with {len(generators)} row generators"
        )
    return generators


def _gumbel_rows(shape: Sequence[int]) -> np.ndarray:
    """g ~ Gumbel(0, 1) i.i.d. ``shape`` (float64), row i from row generator i."""
    generators = _generators_for(shape)
    if generators is None:
        return np.random.gumbel(size=shape)
    out = np.empty(shape)
    for generator, row in zip(generators, out, strict=True):
        row[...] = generator.gumbel(size=row.shape)
    return out


def _uniform_rows(shape: Sequence[int]) -> np.ndarray:
    """u ~ U[0, 1) i.i.d. ``shape`` (float64), row i from row generator i."""
    generators = _generators_for(shape)
    if generators is None:
        return np.random.random_sample(shape)
    out = np.empty(shape)
    for generator, row in zip(generators, out, strict=True):
        generator.random(out=row)
    return out


def _normal_rows(shape: Sequence[int]) -> np.ndarray:
    """ε ~ N(0, 1) i.i.d. ``shape`` (float32), row i from row generator i."""
    generators = _generators_for(shape)
    if generators is None:
        return np.random.standard_normal(shape).astype(np.float32)
    out = np.empty(shape, dtype=np.float32)
    for generator, row in zip(generators, out, strict=True):
        generator.standard_normal(out=row, dtype=np.float32)
    return out


def _from_rows(draw: np.ndarray, like: Tensor) -> Tensor:
    return torch.from_numpy(draw).to(device=like.device, dtype=like.dtype)


def _gumbel_like(logits: Tensor) -> Tensor:
    """g ~ Gumbel(0, 1) i.i.d., shaped like ``logits``: from the row generators while acting
    (:func:`row_generators`), else NumPy's generator on the CPU (which a run seeds and
    checkpoints like torch's) and torch's on other devices."""
    if logits.device.type == "cpu" or _row_generators is not None:
        return _from_rows(_gumbel_rows(logits.shape), logits)
    return -torch.empty_like(logits).exponential_().log()


def _uniform_like(probs: Tensor) -> Tensor:
    """u ~ U[0, 1) shaped like ``probs``, from the same generators as :func:`_gumbel_like`."""
    if probs.device.type == "cpu" or _row_generators is not None:
        return _from_rows(_uniform_rows(probs.shape), probs)
    return torch.rand_like(probs)


def _normal_like(mean: Tensor) -> Tensor:
    """ε ~ N(0, I) shaped like ``mean``, from the same generators as :func:`_gumbel_like`."""
    if mean.device.type == "cpu" or _row_generators is not None:
        return _from_rows(_normal_rows(mean.shape), mean)
    return torch.randn_like(mean)


def normal_noise(shape: tuple[int, ...]) -> Tensor:
    """ε ~ N(0, I) float32 on the CPU, from the same generators as :func:`_gumbel_like`
    (exploration noise added to a deterministic actor's actions)."""
    return torch.from_numpy(_normal_rows(shape))


class CategoricalPolicy(nn.Module):
    """π(a|s) = softmax(logits(s))_a for a Discrete action space."""

    def __init__(
        self,
        obs_dim: int,
        n_actions: int,
        hidden: Sequence[int] = (64, 64),
        *,
        encoder: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        # gain 0.01 on the logits: a near-uniform initial policy (Andrychowicz et al. 2021)
        self.logits = mlp([_in_dim(obs_dim, encoder), *hidden, n_actions], output_gain=0.01)

    def forward(self, obs: Tensor) -> Tensor:
        """Logits ``(B, A)``."""
        return self.logits(encode(self.encoder, obs))

    def sample(self, obs: Tensor) -> Tensor:
        """Draw a ~ π(·|s): ``(B,)`` int64, with the Gumbel-max trick.

        argmax_k (logits_k + g_k) with g_k ~ Gumbel(0, 1) i.i.d. is distributed exactly as
        softmax(logits): three array operations, against a dozen for ``torch.multinomial``
        or inverting the CDF. (The loop acts under ``torch.inference_mode``.)
        """
        array = self.logits.numpy_forward(obs) if self.encoder is None else None
        if array is not None:  # the CPU path: the same draw, in NumPy
            return torch.from_numpy((array + _gumbel_rows(array.shape)).argmax(-1))
        logits = self(obs)
        return (logits + _gumbel_like(logits)).argmax(-1)

    def mode(self, obs: Tensor) -> Tensor:
        """The most likely action ``(B,)``, for deterministic evaluation."""
        array = self.logits.numpy_forward(obs) if self.encoder is None else None
        if array is not None:
            return torch.from_numpy(array.argmax(-1))
        return self(obs).argmax(-1)

    def log_prob_entropy(self, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        """log π(a|s) ``(B,)`` and the entropy H[π(·|s)] ``(B,)``."""
        log_probs = F.log_softmax(self(obs), dim=-1)
        log_prob = log_probs.gather(-1, action.long().unsqueeze(-1)).squeeze(-1)
        entropy = -(log_probs.exp() * log_probs).sum(-1)
        return log_prob, entropy


class GaussianPolicy(nn.Module):
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
        *,
        encoder: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.mean = mlp([_in_dim(obs_dim, encoder), *hidden, act_dim], output_gain=0.01)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std_init)))

    def forward(self, obs: Tensor) -> Tensor:
        """Mean μ(s) ``(B, A)``."""
        return self.mean(encode(self.encoder, obs))

    def sample(self, obs: Tensor) -> Tensor:
        """Draw a = μ(s) + σ ε, ε ~ N(0, I): ``(B, A)``, with no gradient."""
        array = self.mean.numpy_forward(obs) if self.encoder is None else None
        if array is not None:  # the CPU path: the same draw, in NumPy
            noise = _normal_rows(array.shape).astype(array.dtype, copy=False)
            return torch.from_numpy(array + np.exp(self.log_std.detach().numpy()) * noise)
        mean = self(obs).detach()
        return mean + self.log_std.detach().exp() * _normal_like(mean)

    def mode(self, obs: Tensor) -> Tensor:
        """μ(s), for deterministic evaluation."""
        array = self.mean.numpy_forward(obs) if self.encoder is None else None
        if array is not None:
            return torch.from_numpy(array)
        return self(obs).detach()

    def log_prob_entropy(self, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        """log π(a|s) = Σ_i [−(a_i − μ_i)² / (2σ_i²) − log σ_i − ½ log 2π], and H, both ``(B,)``."""
        mean = self(obs)
        log_std = self.log_std.expand_as(mean)
        z = (action - mean) / log_std.exp()
        log_prob = (-0.5 * z.pow(2) - log_std - _LOG_SQRT_2PI).sum(-1)
        entropy = (log_std + 0.5 + _LOG_SQRT_2PI).sum(-1)
        return log_prob, entropy


class MultiCategoricalPolicy(nn.Module):
    """π(a|s) = Π_k softmax(logits_k(s))_{a_k}: independent categoricals, one per component
    of a MultiDiscrete action space (one MLP outputs every component's logits).

    The joint log-probability is the sum of the components' (they are independent given s),
    and so is the entropy.
    """

    def __init__(
        self,
        obs_dim: int,
        nvec: Sequence[int],
        hidden: Sequence[int] = (64, 64),
        *,
        encoder: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.nvec = [int(n) for n in nvec]
        self.logits = mlp([_in_dim(obs_dim, encoder), *hidden, sum(self.nvec)], output_gain=0.01)

    def forward(self, obs: Tensor) -> Tensor:
        """All components' logits, concatenated: ``(B, Σ n_k)``."""
        return self.logits(encode(self.encoder, obs))

    def _numpy(self, obs: Tensor) -> np.ndarray | None:
        return self.logits.numpy_forward(obs) if self.encoder is None else None

    def _argmax(self, scores: np.ndarray) -> Tensor:
        parts = np.split(scores, np.cumsum(self.nvec)[:-1], axis=-1)
        return torch.from_numpy(np.stack([p.argmax(-1) for p in parts], -1))

    def sample(self, obs: Tensor) -> Tensor:
        """a_k ~ softmax(logits_k) for every component, by Gumbel-max: ``(B, K)`` int64."""
        array = self._numpy(obs)
        if array is not None:  # the CPU path: the same draw, in NumPy
            return self._argmax(array + _gumbel_rows(array.shape))
        logits = self(obs)
        noisy = (logits + _gumbel_like(logits)).split(self.nvec, dim=-1)
        return torch.stack([p.argmax(-1) for p in noisy], -1)

    def mode(self, obs: Tensor) -> Tensor:
        """The most likely choice of each component ``(B, K)``."""
        array = self._numpy(obs)
        if array is not None:
            return self._argmax(array)
        return torch.stack([p.argmax(-1) for p in self(obs).split(self.nvec, dim=-1)], -1)

    def log_prob_entropy(self, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        """log π(a|s) = Σ_k log π_k(a_k|s) and H = Σ_k H[π_k], both ``(B,)``."""
        action = action.long()
        log_prob = entropy = None
        for k, logits in enumerate(self(obs).split(self.nvec, dim=-1)):
            log_probs = F.log_softmax(logits, dim=-1)
            term = log_probs.gather(-1, action[..., k : k + 1]).squeeze(-1)
            h = -(log_probs.exp() * log_probs).sum(-1)
            log_prob = term if log_prob is None else log_prob + term
            entropy = h if entropy is None else entropy + h
        assert log_prob is not None and entropy is not None
        return log_prob, entropy


class BernoulliPolicy(nn.Module):
    """π(a|s) = Π_i p_i^{a_i} (1 − p_i)^{1 − a_i}, p = sigmoid(logits(s)): independent bits
    of a MultiBinary action space. Actions are float 0.0/1.0 ``(B, A)``.

    log π(a|s) = Σ_i [a_i log σ(l_i) + (1 − a_i) log σ(−l_i)], with log σ(l) = −softplus(−l);
    H = Σ_i [σ(l_i) softplus(−l_i) + σ(−l_i) softplus(l_i)].
    """

    def __init__(
        self,
        obs_dim: int,
        n_bits: int,
        hidden: Sequence[int] = (64, 64),
        *,
        encoder: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.logits = mlp([_in_dim(obs_dim, encoder), *hidden, n_bits], output_gain=0.01)

    def forward(self, obs: Tensor) -> Tensor:
        """Logits ``(B, A)`` of P(a_i = 1)."""
        return self.logits(encode(self.encoder, obs))

    def sample(self, obs: Tensor) -> Tensor:
        """a_i = 1 with probability σ(l_i): ``(B, A)`` float32 0/1."""
        array = self.logits.numpy_forward(obs) if self.encoder is None else None
        if array is not None:  # the CPU path: the same draw, in NumPy
            probs = np.exp(-np.logaddexp(0.0, -array))  # σ(l), without overflow
            return torch.from_numpy((_uniform_rows(array.shape) < probs).astype(array.dtype))
        probs = torch.sigmoid(self(obs))
        return (_uniform_like(probs) < probs).to(probs.dtype)

    def mode(self, obs: Tensor) -> Tensor:
        """Each bit's more likely value ``(B, A)``."""
        logits = self(obs)
        return (logits > 0).to(logits.dtype)

    def log_prob_entropy(self, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        """log π(a|s) and H[π(·|s)], both ``(B,)``."""
        logits = self(obs)
        on, off = F.softplus(-logits), F.softplus(logits)  # −log σ(l), −log σ(−l)
        log_prob = -(action * on + (1.0 - action) * off).sum(-1)
        probs = torch.sigmoid(logits)
        entropy = (probs * on + (1.0 - probs) * off).sum(-1)
        return log_prob, entropy


def make_policy(
    obs_dim: int,
    act_dim: int,
    discrete: bool,
    hidden: Sequence[int] = (64, 64),
    log_std_init: float = 0.0,
    *,
    encoder: nn.Module | None = None,
    action_kind: str | None = None,
    nvec: Sequence[int] = (),
) -> nn.Module:
    """The stochastic policy of an action space: categorical (Discrete), diagonal Gaussian
    (Box), one categorical per component (``action_kind="multidiscrete"``, with ``nvec``) or
    one Bernoulli per bit (``action_kind="multibinary"``)."""
    if action_kind == "multidiscrete":
        return MultiCategoricalPolicy(obs_dim, nvec, hidden, encoder=encoder)
    if action_kind == "multibinary":
        return BernoulliPolicy(obs_dim, act_dim, hidden, encoder=encoder)
    if discrete:
        return CategoricalPolicy(obs_dim, act_dim, hidden, encoder=encoder)
    return GaussianPolicy(obs_dim, act_dim, hidden, log_std_init, encoder=encoder)


def policy_kwargs(spaces: Any, encoder: nn.Module | None) -> dict[str, Any]:
    """The keyword arguments :func:`make_policy` needs beyond the plain Discrete/Box case
    for ``spaces`` (a :class:`pgrl.spaces.SpaceInfo`); empty in the plain case."""
    kwargs: dict[str, Any] = {}
    if encoder is not None:
        kwargs["encoder"] = encoder
    if spaces.action_kind in ("multidiscrete", "multibinary"):
        kwargs["action_kind"] = spaces.action_kind
        kwargs["nvec"] = spaces.action_nvec
    return kwargs


def policy_for(
    spaces: Any,
    hidden: Sequence[int] = (64, 64),
    log_std_init: float = 0.0,
    *,
    encoder: nn.Module | None = None,
) -> nn.Module:
    """The stochastic policy for ``spaces``' action space (a :class:`pgrl.spaces.SpaceInfo`)."""
    return make_policy(
        spaces.obs_dim,
        spaces.act_dim,
        spaces.discrete,
        hidden,
        log_std_init,
        **policy_kwargs(spaces, encoder),
    )


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
        *,
        encoder: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.trunk = mlp([_in_dim(obs_dim, encoder), *hidden], nn.ReLU)
        self.trunk.append(nn.ReLU())
        self.mean = nn.Linear(hidden[-1], act_dim)
        self.log_std = nn.Linear(hidden[-1], act_dim)
        self.register_buffer("scale", (high - low) / 2.0)
        self.register_buffer("shift", (high + low) / 2.0)

    def _mean_log_std(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        h = self.trunk(encode(self.encoder, obs))
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

    @torch.no_grad()
    def sample(self, obs: Tensor, noise: Tensor | None = None) -> Tensor:
        """a = scale · tanh(μ + σ ε) + shift, ε ~ N(0, I) from the acting generators
        (:func:`row_generators`), or the given ``noise`` ε: :meth:`rsample`'s action without
        its log-probability."""
        mean, log_std = self._mean_log_std(obs)
        eps = _normal_like(mean) if noise is None else noise.to(mean.device, mean.dtype)
        u = mean + log_std.exp() * eps
        return torch.tanh(u) * self.scale + self.shift

    @torch.no_grad()
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
        *,
        encoder: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.net = mlp([_in_dim(obs_dim, encoder), *hidden, act_dim], nn.ReLU)
        self.register_buffer("scale", (high - low) / 2.0)
        self.register_buffer("shift", (high + low) / 2.0)

    def forward(self, obs: Tensor) -> Tensor:
        return torch.tanh(self.net(encode(self.encoder, obs))) * self.scale + self.shift


class ValueNet(nn.Module):
    """State value V(s): ``(B, O) → (B,)``."""

    def __init__(
        self, obs_dim: int, hidden: Sequence[int] = (64, 64), *, encoder: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.net = mlp([_in_dim(obs_dim, encoder), *hidden, 1], output_gain=1.0)

    def forward(self, obs: Tensor) -> Tensor:
        return self.net(encode(self.encoder, obs)).squeeze(-1)


class QNet(nn.Module):
    """Action value Q(s, a): ``(B, O), (B, A) → (B,)``."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: Sequence[int] = (256, 256),
        *,
        encoder: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.net = mlp([_in_dim(obs_dim, encoder) + act_dim, *hidden, 1], nn.ReLU)

    def forward(self, obs: Tensor, action: Tensor) -> Tensor:
        return self.net(torch.cat([encode(self.encoder, obs), action], dim=-1)).squeeze(-1)


class TwinQ(nn.Module):
    """Two independent critics Q1, Q2 (Fujimoto et al. 2018, clipped double Q).

    ``make_encoder`` (called once per critic) gives each critic its own encoder.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: Sequence[int] = (256, 256),
        *,
        make_encoder: Callable[[], nn.Module | None] | None = None,
    ) -> None:
        super().__init__()
        build = make_encoder or (lambda: None)
        self.q1 = QNet(obs_dim, act_dim, hidden, encoder=build())
        self.q2 = QNet(obs_dim, act_dim, hidden, encoder=build())

    def forward(self, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        return self.q1(obs, action), self.q2(obs, action)

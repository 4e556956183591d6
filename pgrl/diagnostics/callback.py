"""GradientDiagnostics: measure the policy gradient's noise while an algorithm trains.

Every ``every`` updates, just before the update and with the parameters that collected the
batch, the callback differentiates the algorithm's own policy loss
(``algorithm.policy_objective``: the loss its update differentiates, written once) on K
disjoint chunks of the batch with :func:`torch.autograd.grad`, which returns the gradients
without touching any ``.grad`` buffer, so the optimizers see nothing. Anything that samples
(fresh rollouts, SAC's reparameterised actions) runs between :func:`pgrl.checkpoint.capture_rng`
and :func:`pgrl.checkpoint.restore_rng` and in environment copies of its own: a run with the
callback gives the same parameters as the run without it.

For PPO, with ``surrogate_episodes``, a diagnosed update is also followed up after it
(``on_step``): how much the update raised its clipped surrogate on its own batch, against how
much it raised the true expected return, measured on fresh episodes by the policies before and
after with common random numbers (Ilyas et al. 2020, section 4.3).
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pgrl.checkpoint import capture_rng, restore_rng
from pgrl.collect import ActFn, Collector
from pgrl.diagnostics.stats import (
    chunk_masks,
    completed_steps,
    gradient_stats,
    paired_gain,
    surrogate_correlation,
    value_fit,
)
from pgrl.errors import ConfigError, EnvError
from pgrl.returns import discounted_returns
from pgrl.types import Batch, Rollout

__all__ = ["GradientDiagnostics", "episode_returns", "surrogate_loss"]

_POLICY_NAMES = ("policy", "actor")


def policy_parameters(algorithm: Any) -> list[nn.Parameter]:
    """The trainable parameters of the algorithm's policy (``policy`` or ``actor`` module)."""
    modules = algorithm.modules()
    for name in _POLICY_NAMES:
        if name in modules:
            return [p for p in modules[name].parameters() if p.requires_grad]
    raise ConfigError(f"GradientDiagnostics: no policy module among {sorted(modules)}")


def flat_grad(loss: Tensor, params: list[nn.Parameter], retain_graph: bool) -> Tensor:
    """∇loss with respect to ``params``, one flat vector; no ``.grad`` buffer is touched."""
    grads = torch.autograd.grad(loss, params, retain_graph=retain_graph, allow_unused=True)
    return torch.cat(
        [
            (torch.zeros_like(p) if g is None else g).reshape(-1)
            for g, p in zip(grads, params, strict=True)
        ]
    )


def batched_flat_grads(losses: Tensor, params: list[nn.Parameter]) -> Tensor:
    """``(K, P)``: the flat gradient of each of the K ``losses``, no ``.grad`` touched.

    One vectorized backward pass (``is_grads_batched``, autograd over ``vmap``); a graph that
    ``vmap`` does not support falls back to K plain backward passes, same values.
    """
    try:
        grads = torch.autograd.grad(
            losses,
            params,
            grad_outputs=torch.eye(len(losses), dtype=losses.dtype, device=losses.device),
            retain_graph=True,
            allow_unused=True,
            is_grads_batched=True,
        )
    except RuntimeError:
        return torch.stack([flat_grad(loss, params, retain_graph=True) for loss in losses])
    return torch.cat(
        [
            (torch.zeros(len(losses), *p.shape, device=p.device) if g is None else g).reshape(
                len(losses), -1
            )
            for g, p in zip(grads, params, strict=True)
        ],
        dim=1,
    )


def chunk_gradients(
    algorithm: Any, data: Rollout | Batch, chunks: int
) -> tuple[Tensor, Tensor, str, float]:
    """(``(K, P)`` chunk gradients, the whole batch's gradient, the axis split, B).

    Chunk k's gradient is that of ``algorithm.policy_objective(data, masks)[k]``: the loss
    the update differentiates, its mean taken over chunk k. The chunks partition the real
    rows, so the whole batch's gradient (of the mean over every row) is their mean weighted
    by rows, computed so rather than by one more backward pass.
    """
    params = policy_parameters(algorithm)
    if isinstance(data, Rollout):
        real = data.mask
    else:
        real = torch.ones(data.rewards.shape[0], device=data.rewards.device)
    masks, axis = chunk_masks(real, chunks)
    grads = batched_flat_grads(algorithm.policy_objective(data, masks), params)
    rows = masks.sum(tuple(range(1, masks.dim()))).to(grads.dtype)
    whole = (rows / rows.sum()) @ grads
    return grads, whole, axis, float(real.sum())


def _cosine(a: Tensor, b: Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=0, eps=1e-30))


def prepared_batch(algorithm: Any, rollout: Rollout) -> Any:
    """PPO's ``prepare(rollout)`` (π_old's log-probabilities, V_old, advantages, normalized
    observations), with the observation and reward normalizers' statistics put back.

    Prepared before the update, this is the batch the update's minibatches are cut from:
    calling ``policy_objective`` on the rollout *after* the update would prepare it again,
    with π_θ' as π_old (ρ = 1: no gain), the updated critic and normalizer statistics that
    have already absorbed the rollout.
    """
    statistics = [m for m in (algorithm.obs_normalizer, algorithm.reward_scaler) if m is not None]
    saved = [{k: v.clone() for k, v in m.state_dict().items()} for m in statistics]
    try:
        return algorithm.prepare(rollout)
    finally:
        for module, state in zip(statistics, saved, strict=True):
            module.load_state_dict(state)


@torch.no_grad()
def surrogate_loss(algorithm: Any, data: Any) -> float:
    """−L^CLIP(θ) on a prepared PPO batch at the current parameters, over all its rows:
    the policy loss of PPO's ``minibatch_terms``, whose minibatches the update steps on."""
    rows = torch.arange(data.advantage.shape[0], device=data.advantage.device)
    return float(algorithm.minibatch_terms(data, rows).policy_loss)


def acting_copy(algorithm: Any) -> ActFn:
    """``algorithm.act`` frozen as it is now: a shallow copy of the algorithm whose policy
    and observation normalizer are deep copies (the update changes both in place)."""
    frozen = copy.copy(algorithm)
    for name in ("policy", "obs_normalizer"):
        module = getattr(algorithm, name, None)
        if isinstance(module, nn.Module):
            setattr(frozen, name, copy.deepcopy(module))
    act: ActFn = frozen.act
    return act


def _seed_everything(seed: int, device: torch.device) -> None:
    """Seed the generators a policy samples from (Python, NumPy, torch on ``device``)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed(seed)  # this device only; the caller forks its state


def episode_returns(act: ActFn, envs: Any, seed: int, device: torch.device) -> Tensor:
    """``(n,)`` the undiscounted return of one episode in each of n sub-environments.

    Sub-environment i starts from seed ``seed + i`` and the action draws come from
    generators seeded with ``seed``: two calls with the same seed share start states and
    random numbers (common random numbers), so the difference of two policies' returns
    measures the change of policy, not the luck of the draw. The caller saves and restores
    the global generators.
    """
    _seed_everything(seed, device)
    rollout = Collector(envs, seed).episodes(act, episodes_per_env=1)
    return (rollout.rewards.double() * rollout.mask.double()).sum(0)


@dataclass
class _BeforeUpdate:
    """What :meth:`GradientDiagnostics.on_update` keeps of θ_old for ``on_step``."""

    data: Any
    """the prepared batch (PPO's ``PPOData``)"""
    loss: float
    """−L^CLIP(θ_old) on it"""
    act: ActFn
    """the policy θ_old, acting"""
    metrics: list[dict[str, float]]
    """the record and the pending row entry to complete"""
    seconds: float


class GradientDiagnostics:
    """A callback logging the policy gradient's signal, noise and quality under ``diag/``.

    Every ``every`` updates (the ``every``-th, ``2·every``-th, ...), before the update:

    * ``diag/grad_norm``, ``diag/cov_trace``, ``diag/snr``, ``diag/noise_scale``,
      ``diag/pairwise_cosine`` from K = ``chunks`` disjoint chunks of the batch
      (:func:`pgrl.diagnostics.stats.gradient_stats`; chunks along the environments N when
      N >= K, else contiguous time blocks, for replay batches along B);
    * on-policy algorithms (rollouts, episodes): ``diag/fresh_cosine``, the cosine between
      the update's gradient and that of a fresh sample ``fresh_multiple`` times larger
      (Ilyas et al. 2020's "gradient quality"): ``fresh_multiple`` new batches of the same
      shape, collected by the same policy in N environment copies of its own (built once,
      their episodes continue from one diagnostic to the next, so after the first few
      diagnostics they sample the policy's own state distribution, not just starts);
      ``diag/fresh_seconds``, its wall-clock cost (collection and gradient);
    * algorithms with a state-value critic V: ``diag/value_ev`` and ``diag/value_rel_error``,
      V(s_t) against the Monte-Carlo return G_t of the steps whose episode terminates inside
      the batch, pooled over the diagnostics of one metrics row (with ``normalize_reward``,
      V predicts scaled returns: the fit is then not measured);
    * PPO with ``surrogate_episodes`` = n > 0: after the update (``on_step``),
      ``diag/surrogate_gain`` = L^CLIP(θ_new) − L^CLIP(θ_old), the clipped surrogate's rise on
      the update's own batch (prepared before the update, as the update prepared it), and
      ``diag/return_gain`` ± ``diag/return_gain_se``, the change of the mean undiscounted
      episode return from θ_old to θ_new, measured on n fresh episodes each in environment
      copies of its own, paired by start state and random draws (common random numbers),
      and ``diag/return_before``, θ_old's mean return on those episodes;
      ``diag/surrogate_seconds``, its cost (2n episodes and two surrogate evaluations);
      ``diag/surrogate_return_corr``, their correlation over the diagnostics so far
      (:attr:`surrogate_correlation` after the run; :func:`pgrl.diagnostics.stats.
      surrogate_correlation` from the records).

    Each metrics row reports the mean over the diagnostics since the previous row;
    ``diag/snr`` and ``diag/noise_scale`` there are ratios of the means of their numerators
    and denominators (McCandlish et al.'s advice: a ratio of two noisy estimates is biased,
    pooling first shrinks the bias), ``diag/return_gain_se`` the standard error of the row's
    mean, ``diag/seconds`` the total time the diagnostics took.
    :attr:`records` keeps every single diagnostic.

    Args:
        every: updates between diagnostics (>= 1).
        chunks: K, chunks per batch (>= 4; fewer only when the batch has fewer rows).
        fresh_multiple: size of the fresh sample in batches (0: no fresh sample).
        value_fit: measure the critic's fit where there is a V critic.
        seed: seed of the fresh sample's environment copies.
        surrogate_episodes: PPO only: episodes per policy (before and after the update) to
            measure the return gain (0: off; else >= 2).
        surrogate_seed: seed of those episodes; diagnostic j uses
            ``surrogate_seed + j · surrogate_episodes``, the same for both policies.
    """

    def __init__(
        self,
        every: int,
        chunks: int = 8,
        fresh_multiple: int = 4,
        *,
        value_fit: bool = True,
        seed: int = 7_000_003,
        surrogate_episodes: int = 0,
        surrogate_seed: int = 9_000_011,
    ) -> None:
        for name, value, low in (("every", every, 1), ("chunks", chunks, 4)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(
                    f"GradientDiagnostics: {name} must be an integer >= {low}, got {value!r}"
                )
        if isinstance(fresh_multiple, bool) or not isinstance(fresh_multiple, int):
            raise ConfigError("GradientDiagnostics: fresh_multiple must be an integer >= 0")
        if fresh_multiple < 0:
            raise ConfigError(
                f"GradientDiagnostics: fresh_multiple must be >= 0, got {fresh_multiple}"
            )
        if (
            isinstance(surrogate_episodes, bool)
            or not isinstance(surrogate_episodes, int)
            or surrogate_episodes < 0
            or surrogate_episodes == 1
        ):
            raise ConfigError(
                "GradientDiagnostics: surrogate_episodes must be 0 (off) or an integer >= 2 "
                f"(a standard error needs two episodes), got {surrogate_episodes!r}"
            )
        self.every = every
        self.chunks = chunks
        self.fresh_multiple = fresh_multiple
        self.measure_value = value_fit
        self.seed = seed
        self.surrogate_episodes = surrogate_episodes
        self.surrogate_seed = surrogate_seed
        self.surrogate_correlation = math.nan
        """over the run: corr(``diag/surrogate_gain``, ``diag/return_gain``), set by on_end"""
        self.updates = 0
        self.records: list[dict[str, float]] = []
        """every diagnostic's metrics, with the update count (``update``)"""
        self._pending: list[dict[str, float]] = []
        self._values: list[tuple[Tensor, Tensor]] = []
        self._fresh: Collector | None = None
        self._returns_envs: Any = None
        self._before: _BeforeUpdate | None = None
        self._surrogate_count = 0

    def on_start(self, agent: Any) -> None:
        if self.surrogate_episodes and agent.algo != "ppo":
            raise ConfigError(
                "GradientDiagnostics: surrogate_episodes measures PPO's clipped surrogate; "
                f"this agent is {agent.algo}. Pass surrogate_episodes=0"
            )

    def on_update(self, agent: Any, data: Rollout | Batch) -> None:
        self.updates += 1
        self._before = None  # a second update before on_step: the θ_old kept is not its own
        if self.updates % self.every:
            return
        rng = capture_rng()
        start = time.perf_counter()
        try:
            with torch.enable_grad():
                metrics = self.measure(agent, data)
        finally:
            restore_rng(rng)
        metrics["diag/seconds"] = time.perf_counter() - start
        record = {"update": float(self.updates), **metrics}
        self._pending.append(metrics)
        self.records.append(record)
        if self.surrogate_episodes and agent.algo == "ppo" and isinstance(data, Rollout):
            start = time.perf_counter()
            # prepare reads no generator; the normalizers' statistics are put back
            prepared = prepared_batch(agent.algorithm, data)
            self._before = _BeforeUpdate(
                data=prepared,
                loss=surrogate_loss(agent.algorithm, prepared),
                act=acting_copy(agent.algorithm),
                metrics=[metrics, record],
                seconds=time.perf_counter() - start,
            )

    def on_step(self, agent: Any, env_steps: int) -> None:
        before, self._before = self._before, None
        if before is None:
            return
        start = time.perf_counter()
        algorithm = agent.algorithm
        device = policy_parameters(algorithm)[0].device
        rng = capture_rng()
        # capture_rng holds the CPU generators; a CUDA policy samples from its device's
        forked = [device] if device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=forked):
                metrics = self._surrogate_and_return(agent, before, device)
        finally:
            restore_rng(rng)
        seconds = before.seconds + time.perf_counter() - start
        metrics["diag/surrogate_seconds"] = seconds
        for target in before.metrics:
            target.update(metrics)
            target["diag/seconds"] += seconds

    def _surrogate_and_return(
        self, agent: Any, before: _BeforeUpdate, device: torch.device
    ) -> dict[str, float]:
        """The surrogate's gain on the update's batch and the return's gain on new episodes."""
        algorithm = agent.algorithm
        # L^CLIP(θ_new) − L^CLIP(θ_old): the losses are −L^CLIP
        surrogate_gain = before.loss - surrogate_loss(algorithm, before.data)
        n = self.surrogate_episodes
        if self._returns_envs is None:
            try:
                self._returns_envs = agent.environment().make_vec(n)
            except EnvError as error:
                raise ConfigError(
                    "GradientDiagnostics: the return gain needs new copies of the environment, "
                    f"and they cannot be built here ({error}); pass surrogate_episodes=0"
                ) from error
        seed = self.surrogate_seed + self._surrogate_count * n
        self._surrogate_count += 1
        old = episode_returns(before.act, self._returns_envs, seed, device)
        new = episode_returns(algorithm.act, self._returns_envs, seed, device)
        gain, se = paired_gain(new, old)
        return {
            "diag/surrogate_gain": surrogate_gain,
            "diag/return_before": float(old.mean()),
            "diag/return_gain": gain,
            "diag/return_gain_se": se,
        }

    def measure(self, agent: Any, data: Rollout | Batch) -> dict[str, float]:
        """Every diagnostic of one batch, at the current parameters (the RNG is not restored
        here: :meth:`on_update` does it)."""
        algorithm = agent.algorithm
        grads, whole, axis, size = chunk_gradients(algorithm, data, self.chunks)
        stats = gradient_stats(grads, size)
        metrics = {
            "diag/grad_norm": stats.grad_norm,
            "diag/cov_trace": stats.cov_trace,
            "diag/snr": stats.snr,
            "diag/noise_scale": stats.noise_scale,
            "diag/pairwise_cosine": stats.pairwise_cosine,
            "diag/chunks": float(stats.chunks),
            "diag/time_chunks": 1.0 if axis == "time" else 0.0,
            "_trace_per_sample": stats.per_sample_trace,
            "_signal": stats.signal,
            "_noise": stats.cov_trace / stats.chunks,
        }
        if isinstance(data, Rollout) and self.fresh_multiple > 0:
            start = time.perf_counter()
            metrics["diag/fresh_cosine"] = _cosine(whole, self._fresh_gradient(agent, data))
            metrics["diag/fresh_seconds"] = time.perf_counter() - start
        if isinstance(data, Rollout) and self.measure_value:
            self._collect_value_pairs(agent, data)
        return metrics

    def _fresh_gradient(self, agent: Any, data: Rollout) -> Tensor:
        """The policy gradient of ``fresh_multiple`` new batches from the same policy.

        Each new batch has the training batch's shape (N environments × T steps, or the
        same number of whole episodes), so that returns, cuts and normalisations are those
        of the update; the gradient is the mean of theirs.
        """
        algorithm = agent.algorithm
        steps, envs = data.rewards.shape
        if self._fresh is None:
            try:
                vec = agent.environment().make_vec(envs)
            except EnvError as error:
                raise ConfigError(
                    "GradientDiagnostics: the fresh sample needs new copies of the environment, "
                    f"and they cannot be built here ({error}); pass fresh_multiple=0"
                ) from error
            self._fresh = Collector(vec, self.seed)
        losses = []
        for _ in range(self.fresh_multiple):
            if algorithm.collection == "episodes":
                episodes = algorithm.loop_settings().episodes_per_env
                fresh = self._fresh.episodes(algorithm.act, episodes)
            else:
                fresh = self._fresh.rollout(algorithm.act, steps)
            losses.append(algorithm.policy_objective(fresh.to(data.obs.device)))
        # the mean of the batches' gradients, in one backward pass
        return flat_grad(torch.stack(losses).mean(), policy_parameters(algorithm), False)

    def _collect_value_pairs(self, agent: Any, data: Rollout) -> None:
        algorithm = agent.algorithm
        value_net = algorithm.modules().get("value")
        config = agent.config
        if value_net is None or getattr(config, "normalize_reward", False):
            return
        done = completed_steps(data.terminated, data.truncated, data.mask)
        if not bool(done.any()):
            return
        returns = discounted_returns(data.rewards, data.terminated, data.truncated, config.gamma)
        normalize = getattr(algorithm, "normalize", None)
        obs = data.obs if normalize is None else normalize(data.obs)
        with torch.no_grad():
            value = value_net(obs)
        self._values.append((value[done].cpu(), returns[done].cpu()))

    def on_log(self, agent: Any, env_steps: int, row: Mapping[str, float]) -> dict[str, float]:
        pending, self._pending = self._pending, []
        out: dict[str, float] = {}
        if pending:
            names = {k: None for p in pending for k in p if not k.startswith("_")}
            for name in names:
                values = [p[name] for p in pending if name in p]
                out[name] = sum(values) / len(values)
            out["diag/seconds"] = sum(p["diag/seconds"] for p in pending)
            # ratios of pooled means, not means of ratios (McCandlish et al. 2018, app. A)
            signal = sum(p["_signal"] for p in pending) / len(pending)
            trace = sum(p["_trace_per_sample"] for p in pending) / len(pending)
            noise = sum(p["_noise"] for p in pending) / len(pending)
            out["diag/noise_scale"] = trace / signal if signal != 0 else math.inf
            out["diag/snr"] = signal / noise if noise > 0 else math.inf
            errors = [p["diag/return_gain_se"] for p in pending if "diag/return_gain_se" in p]
            if errors:  # the standard error of the row's mean return gain
                out["diag/return_gain_se"] = math.sqrt(sum(e * e for e in errors)) / len(errors)
        if self.surrogate_episodes:
            corr = surrogate_correlation(self.records)  # over the run so far
            if math.isfinite(corr):
                out["diag/surrogate_return_corr"] = corr
        if self._values:
            value = torch.cat([v for v, _ in self._values])
            returns = torch.cat([g for _, g in self._values])
            self._values = []
            ev, relative = value_fit(value, returns) if value.numel() >= 2 else (math.nan,) * 2
            if math.isfinite(ev) and math.isfinite(relative):  # else: all returns equal
                out["diag/value_ev"] = ev
                out["diag/value_rel_error"] = relative
                out["diag/value_samples"] = float(value.numel())
        return out

    def on_end(self, agent: Any) -> None:
        self._before = None
        if self.surrogate_episodes:
            self.surrogate_correlation = surrogate_correlation(self.records)
        if self._fresh is not None:
            self._fresh.envs.close()
            self._fresh = None
        if self._returns_envs is not None:
            self._returns_envs.close()
            self._returns_envs = None

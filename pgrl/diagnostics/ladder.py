"""The article's estimator ladder at one fixed policy on a real environment.

``pgrl verify`` shows on finite MDPs, where ∇J is exact, what theory predicts: each rung of
the ladder keeps the expected gradient and lowers its variance,

    r(τ) Σ_t ∇log π           the whole-trajectory return (REINFORCE)
    Σ_t G_t ∇log π            reward-to-go: rewards before t carry no information on a_t
    Σ_t (G_t − V̂(s_t)) ∇log π a state-value baseline, fitted on separate episodes
    Σ_t δ_t ∇log π            one-step actor-critic, δ_t = r_t + γV̂(s'_t) − V̂(s_t)
    Σ_t Â^GAE(λ)_t ∇log π      generalized advantage estimation

(the last two trade a bias, V̂ ≠ V^π, for less variance). :func:`ladder` measures it on a
real task: it samples whole episodes of one fixed policy, computes every estimator's
gradient for each episode with autograd (the weights from :mod:`pgrl.returns`, the loss
:func:`pgrl.losses.reinforce_loss`), and reports per estimator the total variance of a
one-episode gradient, the SNR of a batch of ``batch_episodes`` episodes, and the cosine of
such a batch's gradient with a large-sample gradient (G_t − V̂ on ``reference_multiple`` ×
more episodes, collected separately).

Every weight is multiplied by γ^t, as in ``pgrl verify``'s ladder, so that every unbiased
rung estimates the same ∇J of the discounted objective (pgrl's training losses drop γ^t by
default; ``discount_weighting=False`` measures those).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from pgrl.algos.a2c import bootstrapped_targets
from pgrl.checkpoint import capture_rng, restore_rng
from pgrl.collect import Collector
from pgrl.diagnostics.callback import flat_grad
from pgrl.diagnostics.stats import gradient_stats
from pgrl.losses import reinforce_loss, value_loss
from pgrl.returns import discount_powers, discounted_returns, episode_returns, gae
from pgrl.types import Rollout

__all__ = ["LadderResult", "LadderRow", "ladder"]


@dataclass(frozen=True)
class LadderRow:
    """One estimator of the ladder, measured at the fixed policy."""

    name: str
    description: str
    variance: float
    """tr Cov of one episode's gradient estimate"""
    snr: float
    """‖∇J‖²^ / tr Cov(ĝ_n) of a batch of n = ``batch_episodes`` episodes"""
    cosine: float
    """mean over batches of n episodes of cos(ĝ_n, large-sample gradient)"""
    cosine_se: float
    """its standard error"""
    grad_norm: float
    """‖mean gradient‖ over all episodes"""


@dataclass(frozen=True)
class LadderResult:
    """The ladder on one environment at one policy (:func:`ladder`)."""

    env: str
    policy: str
    seed: int
    gamma: float
    episodes: int
    """episodes the estimators are measured on"""
    reference_episodes: int
    """episodes of the large-sample gradient"""
    fit_episodes: int
    """episodes the baseline V̂ is regressed on"""
    batch_episodes: int
    mean_return: float
    mean_length: float
    value_ev: float
    """explained variance of V̂ on the measured episodes' returns"""
    seconds: float
    rows: list[LadderRow] = field(default_factory=list)

    def row(self, name: str) -> LadderRow:
        """The row of estimator ``name``."""
        return next(r for r in self.rows if r.name == name)

    def table(self) -> str:
        """A plain-text table, one estimator a line."""
        head = f"{'estimator':<14}{'variance':>12}{'vs r(τ)':>9}{'SNR':>9}{'cos':>8}  ± se"
        top = self.rows[0].variance
        lines = [head]
        for r in self.rows:
            lines.append(
                f"{r.name:<14}{r.variance:>12.4g}{r.variance / top:>9.3f}{r.snr:>9.3g}"
                f"{r.cosine:>8.3f}  ± {r.cosine_se:.3f}"
            )
        return "\n".join(lines)

    def markdown(self, figure: str | None = None) -> str:
        """The report: settings, the table, the figure."""
        top = self.rows[0].variance
        lines = [
            f"# Estimator ladder on {self.env}",
            "",
            f"Policy: {self.policy}; seed {self.seed}; γ = {self.gamma}; mean return "
            f"{self.mean_return:.1f} over episodes of mean length {self.mean_length:.1f}.",
            f"Measured on {self.episodes} episodes (one gradient per episode); baseline V̂ "
            f"regressed on {self.fit_episodes} separate episodes (explained variance "
            f"{self.value_ev:.2f} on the measured ones); large-sample gradient from "
            f"{self.reference_episodes} further episodes; SNR and cosine for batches of "
            f"{self.batch_episodes} episodes. {self.seconds:.1f} s.",
            "",
            "| estimator | what | variance (1 episode) | vs r(τ) | SNR (batch) | cos to large sample |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
        ]
        for r in self.rows:
            lines.append(
                f"| {r.name} | {r.description} | {r.variance:.4g} | {r.variance / top:.3f} | "
                f"{r.snr:.3g} | {r.cosine:.3f} ± {r.cosine_se:.3f} |"
            )
        if figure is not None:
            lines += ["", f"![ladder]({figure})"]
        return "\n".join(lines) + "\n"


Weight = Callable[[Rollout, Tensor, Tensor], Tensor]
"""(episodes, V̂(s), V̂(s')) → Ψ_t ``(T, N)``, the weight of ∇log π(a_t|s_t)."""


def estimators(gamma: float, gae_lambda: float) -> list[tuple[str, str, Weight]]:
    """The rungs: name, description, weight Ψ_t computed by :mod:`pgrl.returns`."""

    def total(d: Rollout, v: Tensor, nv: Tensor) -> Tensor:
        return episode_returns(d.rewards, d.terminated, d.truncated, gamma)

    def to_go(d: Rollout, v: Tensor, nv: Tensor) -> Tensor:
        return discounted_returns(d.rewards, d.terminated, d.truncated, gamma)

    def baseline(d: Rollout, v: Tensor, nv: Tensor) -> Tensor:
        # as Reinforce.update: with a V, a time-limit cut bootstraps from V̂(s')
        return discounted_returns(d.rewards, d.terminated, d.truncated, gamma, nv) - v

    def one_step(d: Rollout, v: Tensor, nv: Tensor) -> Tensor:
        return bootstrapped_targets(d, nv, gamma, 1) - v

    def general(d: Rollout, v: Tensor, nv: Tensor) -> Tensor:
        return gae(d.rewards, v, nv, d.terminated, d.truncated, gamma, gae_lambda)[0]

    return [
        ("r(τ)", "whole-trajectory return", total),
        ("G_t", "reward-to-go", to_go),
        ("G_t − V̂", "reward-to-go minus a fitted V baseline", baseline),
        ("AC δ", "one-step actor-critic r + γV̂(s') − V̂(s)", one_step),
        (f"GAE λ={gae_lambda:g}", "generalized advantage, fitted V̂", general),
    ]


def _episode_ids(data: Rollout) -> Tensor:
    """``(T, N)`` an id per step, the same for the steps of one episode."""
    done = (data.terminated | data.truncated).long()
    within = torch.cumsum(done, 0) - done  # episode number inside its column
    steps, envs = done.shape
    return within + torch.arange(envs) * (steps + 1)


class _Rescaled(torch.nn.Module):
    """V̂(s) = mean + std · net(s): a network fitted on standardized returns."""

    def __init__(self, net: torch.nn.Module, mean: float, std: float) -> None:
        super().__init__()
        self.net, self.mean, self.std = net, mean, std

    def forward(self, obs: Tensor) -> Tensor:
        return self.mean + self.std * self.net(obs)


def _fit_value(value: torch.nn.Module, data: Rollout, gamma: float, steps: int) -> torch.nn.Module:
    """Regress a copy of ``value`` on the Monte-Carlo returns G_t of ``data`` (full batch).

    The targets are standardized (returns of hundreds, as on Pendulum, are out of reach of a
    few hundred Adam steps otherwise) and the prediction scaled back.
    """
    returns = discounted_returns(data.rewards, data.terminated, data.truncated, gamma)
    real = data.mask.bool()
    obs, returns = data.obs[real], returns[real]  # placeholders left out of every pass
    mean, std = float(returns.mean()), float(returns.std()) + 1e-8
    fitted = _Rescaled(copy.deepcopy(value), mean, std)
    optimizer = torch.optim.Adam(fitted.net.parameters(), lr=3e-3)
    for _ in range(steps):
        loss = value_loss(fitted.net(obs), (returns - mean) / std, "mse")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return fitted


def _policy_agent(env: str, policy: Any, seed: int, train_steps: int) -> tuple[Any, str]:
    from pgrl.train import train  # train imports the callbacks' users: imported here

    if isinstance(policy, str):
        agent = train(policy, env, steps=train_steps, seed=seed, eval_episodes=0)
        return agent, f"{policy} after {train_steps:,} training steps (seed {seed})"
    return policy, f"{policy.algo} agent ({policy.env_steps:,} steps)"


def ladder(
    env: str = "CartPole-v1",
    policy: Any = "a2c",
    episodes: int = 200,
    seed: int = 0,
    *,
    train_steps: int = 10_000,
    batch_episodes: int = 10,
    reference_multiple: int = 4,
    fit_episodes: int | None = None,
    gae_lambda: float = 0.95,
    discount_weighting: bool = True,
    num_envs: int = 16,
) -> LadderResult:
    """Run the estimator ladder at one fixed policy on ``env``.

    Args:
        env: a Gymnasium id with a discrete or Box action space.
        policy: an algorithm name with a V critic (``"a2c"``, ``"ppo"``), trained for
            ``train_steps`` steps to give a policy that is neither random nor converged; or a
            trained :class:`pgrl.Agent` with a ``value`` network.
        episodes: E, episodes the gradients are measured on (one gradient per episode).
        seed: seeds the policy's training and every sample.
        train_steps: training budget of a ``policy`` given by name.
        batch_episodes: n, the batch size of the SNR and of the cosine.
        reference_multiple: the large-sample gradient uses this many × E further episodes.
        fit_episodes: episodes the baseline is regressed on (default E), separate.
        gae_lambda: λ of the GAE rung.
        discount_weighting: multiply every weight by γ^t (the exact discounted gradient).
        num_envs: environment copies sampling in parallel.

    Returns:
        A :class:`LadderResult`. The global random generators are restored afterwards.
    """
    start = time.perf_counter()
    rng = capture_rng()
    try:
        agent, description = _policy_agent(env, policy, seed, train_steps)
        algorithm = agent.algorithm
        gamma = float(agent.config.gamma)
        torch.manual_seed(seed)
        source = agent.environment()
        envs = source.make_vec(num_envs)
        try:
            collector = Collector(envs, seed + 1)

            def sample(count: int) -> Rollout:
                return collector.episodes(algorithm.act, max(1, math.ceil(count / num_envs)))

            fit_data, data = sample(fit_episodes or episodes), sample(episodes)
            reference = sample(reference_multiple * episodes)
        finally:
            envs.close()
        value = _fit_value(algorithm.modules()["value"], fit_data, gamma, 300)
        rows, value_ev, lengths = _measure(
            algorithm, value, data, reference, gamma, gae_lambda, discount_weighting,
            batch_episodes,
        )  # fmt: skip
    finally:
        restore_rng(rng)
    done = data.terminated | data.truncated
    returns = episode_returns(data.rewards, data.terminated, data.truncated, 1.0)
    return LadderResult(
        env=agent.env_id,
        policy=description,
        seed=seed,
        gamma=gamma,
        episodes=int(lengths.numel()),
        reference_episodes=int((reference.mask.bool() & _ends(reference)).sum()),
        fit_episodes=int((fit_data.mask.bool() & _ends(fit_data)).sum()),
        batch_episodes=batch_episodes,
        mean_return=float(returns[done & data.mask.bool()].mean()),
        mean_length=float(lengths.mean()),
        value_ev=value_ev,
        seconds=time.perf_counter() - start,
        rows=rows,
    )


def _ends(data: Rollout) -> Tensor:
    return data.terminated | data.truncated


def _measure(
    algorithm: Any,
    value: torch.nn.Module,
    data: Rollout,
    reference: Rollout,
    gamma: float,
    gae_lambda: float,
    discount_weighting: bool,
    batch_episodes: int,
) -> tuple[list[LadderRow], float, Tensor]:
    from pgrl.diagnostics.callback import policy_parameters
    from pgrl.diagnostics.stats import value_fit

    params = policy_parameters(algorithm)
    policy = algorithm.modules()["policy"]
    normalize = getattr(algorithm, "normalize", lambda obs: obs)
    rungs = estimators(gamma, gae_lambda)

    def weights(d: Rollout) -> dict[str, Tensor]:
        with torch.no_grad():
            v, nv = value(d.obs), value(d.next_obs)
        powers = discount_powers(d.terminated, d.truncated, gamma) if discount_weighting else 1.0
        return {name: fn(d, v, nv) * powers for name, _, fn in rungs}

    # the large-sample gradient: Σ_t γ^t (G_t − V̂) ∇log π per episode, averaged
    ref_weight = weights(reference)[rungs[2][0]]
    ref_log_prob, _ = policy.log_prob_entropy(normalize(reference.obs), reference.actions)
    ref_scale = reference.mask.sum() / (reference.mask.bool() & _ends(reference)).sum()
    target = -flat_grad(
        reinforce_loss(ref_log_prob, ref_weight, 0.0, reference.mask) * ref_scale, params, False
    )

    # episodes as contiguous runs of real steps: env-major order keeps an episode together
    ident = _episode_ids(data).T.reshape(-1)
    real = data.mask.bool().T.reshape(-1)
    _, counts = torch.unique_consecutive(ident[real], return_counts=True)
    lengths = counts.to(torch.float64)
    obs = normalize(data.obs).transpose(0, 1).reshape(real.shape[0], -1)[real]
    actions = data.actions.transpose(0, 1).reshape(real.shape[0], *data.actions.shape[2:])[real]
    all_weights = weights(data)
    per_episode: dict[str, list[Tensor]] = {name: [] for name in all_weights}
    for rows in torch.arange(int(real.sum())).split(counts.tolist()):
        log_prob, _ = policy.log_prob_entropy(obs[rows], actions[rows])
        for name, weight in all_weights.items():
            psi = weight.T.reshape(-1)[real][rows]
            # one episode's estimate Σ_t Ψ_t ∇log π: −∇ of the mean loss × its length
            loss = reinforce_loss(log_prob, psi, 0.0) * len(rows)
            per_episode[name].append(-flat_grad(loss, params, retain_graph=True))
    rows_out: list[LadderRow] = []
    for name, description, _ in rungs:
        grads = torch.stack(per_episode[name])
        stats = gradient_stats(grads, batch_size=len(grads))
        per_episode_snr = stats.signal / stats.cov_trace
        batches = grads[: len(grads) // batch_episodes * batch_episodes]
        means = batches.reshape(-1, batch_episodes, grads.shape[1]).mean(1).double()
        cosines = torch.nn.functional.cosine_similarity(
            means, target.double().expand_as(means), dim=1
        )
        rows_out.append(
            LadderRow(
                name=name,
                description=description,
                variance=stats.cov_trace,
                snr=batch_episodes * per_episode_snr,
                cosine=float(cosines.mean()),
                cosine_se=float(cosines.std()) / math.sqrt(len(cosines))
                if len(cosines) > 1
                else math.nan,
                grad_norm=stats.grad_norm,
            )
        )
    returns = discounted_returns(data.rewards, data.terminated, data.truncated, gamma)
    with torch.no_grad():
        ev, _ = value_fit(value(data.obs)[data.mask.bool()], returns[data.mask.bool()])
    return rows_out, ev, lengths

"""The estimators ``pgrl verify`` runs, each with the verdict it should get.

:func:`ladder_specs` is the article's ladder (all γ^t-weighted), :func:`usual_specs` pgrl's
default training losses (no γ^t), :func:`leak_specs` and :func:`cut_specs` bugs made on purpose
that the same bias test must flag.
"""

from __future__ import annotations

from dataclasses import dataclass

from pgrl.verify.estimators import (
    Estimator,
    action_dependent_baseline,
    actor_critic,
    gae_estimator,
    reward_to_go,
    total_return,
    with_terminated_dropped,
    with_termination_as_truncation,
    with_truncation_as_termination,
    wrong_sign,
)
from pgrl.verify.results import Expectation

__all__ = ["Spec", "cut_specs", "ladder_specs", "leak_specs", "usual_specs"]


@dataclass(frozen=True)
class Spec:
    """An estimator of the ladder: its pgrl loss and what the check should find."""

    name: str
    description: str
    estimator: Estimator
    expected: Expectation


def ladder_specs() -> list[Spec]:
    """The article's ladder, every weight γ^t-weighted (the exact discounted gradient)."""
    return [
        Spec("r(τ)", "whole-trajectory return, REINFORCE", total_return(), "unbiased"),
        Spec("G_t", "reward-to-go (×γ^t)", reward_to_go(), "unbiased"),
        Spec("G_t − b", "constant baseline: mean return of a separate batch",
             reward_to_go("constant"), "unbiased"),
        Spec("G_t − mean(G)", "pgrl baseline='mean': the same batch's mean return",
             reward_to_go("batch_mean"), None),
        Spec("G_t − V̂(s)", "learned tabular V (MC regression, separate batch)",
             reward_to_go("fitted"), "unbiased"),
        Spec("G_t − V(s)", "exact V^π baseline", reward_to_go("exact"), "unbiased"),
        Spec("AC V̂", "one-step actor-critic, learned V (TD(0), separate batch)",
             actor_critic("fitted"), None),
        Spec("AC V", "one-step actor-critic r + γV(s') − V(s), exact V",
             actor_critic("exact"), "unbiased"),
        Spec("AC const V̂", "one-step actor-critic, a constant critic (cannot represent V)",
             actor_critic("constant"), "biased"),
        Spec("AC V, 5-step", "A2C n-step target (n_step=5), exact V",
             actor_critic("exact", n_step=5), "unbiased"),
        *[
            Spec(f"GAE λ={lam:g}", f"GAE(γ, λ={lam:g}) advantage, exact V",
                 gae_estimator(lam), "unbiased")
            for lam in (0.0, 0.5, 0.95, 1.0)
        ],
    ]  # fmt: skip


def usual_specs() -> list[Spec]:
    """pgrl's default training losses: no γ^t (biased for the discounted objective if γ < 1)."""
    return [
        Spec("G_t, no γ^t", "usual REINFORCE (pgrl default, discount_weighting=False)",
             reward_to_go(discount_weighting=False), "biased"),
        Spec("AC V, no γ^t", "usual A2C advantage (pgrl default), exact V",
             actor_critic(discount_weighting=False), "biased"),
    ]  # fmt: skip


def leak_specs() -> list[Spec]:
    """Deliberate bugs checked on the ladder's episodes (every episode ends by termination)."""
    return [
        Spec("wrong sign", "G_t − V(s) with the loss negated", wrong_sign(reward_to_go("exact")),
             "biased"),
        Spec("b(s, a) = r(s, a)", "a baseline that depends on the action",
             action_dependent_baseline(), "biased"),
        Spec("G_t − V(s), terminated dropped", "returns leak into the next episode",
             with_terminated_dropped(reward_to_go("exact")), "biased"),
        Spec("GAE λ=0.95, terminated dropped", "advantages leak into the next episode",
             with_terminated_dropped(gae_estimator(0.95)), "biased"),
        Spec("AC V, terminated as truncated", "bootstraps V(s') from a terminal state",
             with_termination_as_truncation(actor_critic("exact")), "biased"),
    ]  # fmt: skip


def cut_specs() -> list[Spec]:
    """Episodes cut by a short time limit: the correct bootstrap, and the bug that drops it."""
    return [
        Spec("G_t − V(s), cut", "correct: bootstraps V(s') at the time limit",
             reward_to_go("exact"), "unbiased"),
        Spec("AC V, cut", "correct: A2C one-step advantage", actor_critic("exact"), "unbiased"),
        Spec("G_t − V(s), truncated as terminated", "no bootstrap at the time limit",
             with_truncation_as_termination(reward_to_go("exact")), "biased"),
        Spec("AC V, truncated as terminated", "A2C target without the bootstrap at a cut",
             with_truncation_as_termination(actor_critic("exact")), "biased"),
    ]  # fmt: skip

"""Finite Markov decision processes with known dynamics, for checking gradients exactly.

A :class:`FiniteMDP` holds the tuple (S, A, P, r, ρ₀, γ) as float64 tensors:

* ``transitions[s, a, s']`` = P(s'|s, a), rows summing to one;
* ``rewards[s, a]`` = r(s, a), the expected reward of taking a in s;
* ``start[s]`` = ρ₀(s), the start distribution;
* ``terminal[s]`` marks absorbing, zero-reward states: reaching one ends the episode
  (Gymnasium's ``terminated``); no action is taken there.

Episodic MDPs have terminal states that every policy reaches with probability one, so
γ = 1 is allowed for them. :func:`discount_as_termination` turns a discounted MDP into an
undiscounted episodic one with the same values (the episode ends with probability 1 − γ at
each step): discounting read as a probability of termination (Sutton & Barto 2018,
section 5.8; Nota & Thomas 2020).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from pgrl.errors import ConfigError

__all__ = [
    "MDP_NAMES",
    "FiniteMDP",
    "chain_mdp",
    "discount_as_termination",
    "gridworld_mdp",
    "make_mdp",
    "random_mdp",
    "random_policy",
    "undiscounted",
]


@dataclass(frozen=True)
class FiniteMDP:
    """A finite MDP (S, A, P, r, ρ₀, γ) with absorbing terminal states.

    Shapes: ``transitions`` ``(S, A, S)``, ``rewards`` ``(S, A)``, ``start`` ``(S,)``,
    ``terminal`` ``(S,)`` bool. All tensors are float64 (bool for ``terminal``).
    """

    name: str
    transitions: Tensor
    rewards: Tensor
    start: Tensor
    gamma: float
    terminal: Tensor
    horizon: int = 100
    """time limit H used when sampling (the episode is truncated after H steps)"""

    def __post_init__(self) -> None:
        num_states, num_actions = self.rewards.shape
        if self.transitions.shape != (num_states, num_actions, num_states):
            raise ConfigError(
                f"transitions must be (S, A, S) = ({num_states}, {num_actions}, {num_states}), "
                f"got {tuple(self.transitions.shape)}"
            )
        if not torch.allclose(self.transitions.sum(-1), torch.ones_like(self.rewards)):
            raise ConfigError("transitions[s, a, :] must sum to 1 for every (s, a)")
        if not 0.0 <= self.gamma <= 1.0:
            raise ConfigError(f"gamma must be in [0, 1], got {self.gamma!r}")
        if self.horizon < 1:
            raise ConfigError(f"horizon must be >= 1, got {self.horizon!r}")
        if bool((self.start[self.terminal] > 0).any()):
            raise ConfigError("the start distribution must not put mass on terminal states")
        term = self.terminal
        if bool(term.any()):
            stays = self.transitions[term][:, :, term].sum(-1)
            if not torch.allclose(stays, torch.ones_like(stays)) or bool(
                (self.rewards[term] != 0).any()
            ):
                raise ConfigError("terminal states must be absorbing and give zero reward")

    @property
    def num_states(self) -> int:
        """S, terminal states included."""
        return int(self.rewards.shape[0])

    @property
    def num_actions(self) -> int:
        """A."""
        return int(self.rewards.shape[1])

    @property
    def episodic(self) -> bool:
        """True when the MDP has terminal states."""
        return bool(self.terminal.any())


def _dirichlet(shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
    """Flat Dirichlet(1, ..., 1) samples over the last axis (normalised exponentials)."""
    draws = -torch.log(torch.rand(shape, generator=generator, dtype=torch.float64))
    return draws / draws.sum(-1, keepdim=True)


def random_mdp(
    num_states: int = 5,
    num_actions: int = 3,
    *,
    gamma: float = 0.9,
    seed: int = 0,
    terminal_prob: tuple[float, float] | None = (0.1, 0.3),
    reward_mean: float = 0.0,
    horizon: int = 100,
) -> FiniteMDP:
    """A random MDP from a seed: Dirichlet transitions, N(reward_mean, 1) rewards, Dirichlet ρ₀.

    With ``terminal_prob=(lo, hi)`` one terminal state is added (S = num_states + 1) and each
    (s, a) ends the episode with a probability drawn uniformly from [lo, hi], so every policy
    terminates and γ = 1 is allowed. ``terminal_prob=None`` gives a continuing MDP.

    Example:
        >>> mdp = random_mdp(4, 2, seed=1)
        >>> mdp.num_states, mdp.num_actions, mdp.episodic
        (5, 2, True)
    """
    if num_states < 1 or num_actions < 1:
        raise ConfigError(
            f"need num_states >= 1 and num_actions >= 1, got {num_states}, {num_actions}"
        )
    generator = torch.Generator().manual_seed(seed)
    inner = _dirichlet((num_states, num_actions, num_states), generator)
    rewards = reward_mean + torch.randn(
        num_states, num_actions, generator=generator, dtype=torch.float64
    )
    start = _dirichlet((num_states,), generator)
    if terminal_prob is None:
        if gamma >= 1.0:
            raise ConfigError("a continuing MDP needs gamma < 1")
        terminal = torch.zeros(num_states, dtype=torch.bool)
        return FiniteMDP("random", inner, rewards, start, gamma, terminal, horizon)
    low, high = terminal_prob
    if not 0.0 < low <= high <= 1.0:
        raise ConfigError(f"terminal_prob must satisfy 0 < lo <= hi <= 1, got {terminal_prob}")
    end = low + (high - low) * torch.rand(
        num_states, num_actions, 1, generator=generator, dtype=torch.float64
    )
    transitions = torch.zeros(num_states + 1, num_actions, num_states + 1, dtype=torch.float64)
    transitions[:num_states, :, :num_states] = (1.0 - end) * inner
    transitions[:num_states, :, num_states] = end[..., 0]
    transitions[num_states, :, num_states] = 1.0
    rewards = torch.cat([rewards, torch.zeros(1, num_actions, dtype=torch.float64)])
    start = torch.cat([start, torch.zeros(1, dtype=torch.float64)])
    terminal = torch.zeros(num_states + 1, dtype=torch.bool)
    terminal[num_states] = True
    return FiniteMDP("random", transitions, rewards, start, gamma, terminal, horizon)


def chain_mdp(
    length: int = 5, *, slip: float = 0.1, step_cost: float = 0.05, gamma: float = 0.9
) -> FiniteMDP:
    """A corridor of ``length`` cells; the rightmost is the goal (terminal, reward 1 on entry).

    Actions: 0 = left, 1 = right; the move goes the other way with probability ``slip``;
    walking into the left wall stays put. The episode starts in cell 0. Every step costs
    ``step_cost`` (so that J depends on the policy even with γ = 1); r(s, a) is the expected
    reward, P(reach the goal | s, a) − step_cost.

    Example:
        >>> mdp = chain_mdp(3, slip=0.0, step_cost=0.5)
        >>> mdp.rewards.tolist()
        [[-0.5, -0.5], [-0.5, 0.5], [0.0, 0.0]]
    """
    if length < 2:
        raise ConfigError(f"chain length must be >= 2, got {length}")
    goal = length - 1
    transitions = torch.zeros(length, 2, length, dtype=torch.float64)
    for s in range(goal):
        left, right = max(s - 1, 0), s + 1
        transitions[s, 0, left] += 1.0 - slip
        transitions[s, 0, right] += slip
        transitions[s, 1, right] += 1.0 - slip
        transitions[s, 1, left] += slip
    transitions[goal, :, goal] = 1.0
    rewards = transitions[:, :, goal] - step_cost
    rewards[goal] = 0.0
    start = torch.zeros(length, dtype=torch.float64)
    start[0] = 1.0
    terminal = torch.zeros(length, dtype=torch.bool)
    terminal[goal] = True
    return FiniteMDP("chain", transitions, rewards, start, gamma, terminal, horizon=200)


def gridworld_mdp(*, slip: float = 0.1, gamma: float = 0.9) -> FiniteMDP:
    """A 3×3 grid: start top-left, goal bottom-right (+1), a pit in the centre (−1).

    Cells are numbered row by row (0 = top-left, 4 = centre, 8 = bottom-right). Actions:
    0 = up, 1 = down, 2 = left, 3 = right; with probability ``slip`` the move goes in one
    of the other three directions (uniformly); bumping into a wall stays put. Goal and pit
    are terminal. r(s, a) is the expected reward of the move.

    Example:
        >>> mdp = gridworld_mdp()
        >>> mdp.num_states, mdp.num_actions, mdp.terminal.nonzero().flatten().tolist()
        (9, 4, [4, 8])
    """
    side, goal, pit = 3, 8, 4
    moves = ((-1, 0), (1, 0), (0, -1), (0, 1))
    transitions = torch.zeros(side * side, 4, side * side, dtype=torch.float64)
    for s in range(side * side):
        if s in (goal, pit):
            transitions[s, :, s] = 1.0
            continue
        row, col = divmod(s, side)
        for a in range(4):
            for b, (dr, dc) in enumerate(moves):
                prob = 1.0 - slip if a == b else slip / 3.0
                r2, c2 = row + dr, col + dc
                nxt = r2 * side + c2 if 0 <= r2 < side and 0 <= c2 < side else s
                transitions[s, a, nxt] += prob
    rewards = transitions[:, :, goal] - transitions[:, :, pit]
    rewards[[goal, pit]] = 0.0
    start = torch.zeros(side * side, dtype=torch.float64)
    start[0] = 1.0
    terminal = torch.zeros(side * side, dtype=torch.bool)
    terminal[[goal, pit]] = True
    return FiniteMDP("gridworld", transitions, rewards, start, gamma, terminal, horizon=200)


def undiscounted(mdp: FiniteMDP) -> FiniteMDP:
    """The same episodic MDP with γ = 1 (both policy-gradient estimators then coincide)."""
    if not mdp.episodic:
        raise ConfigError(f"MDP {mdp.name!r} has no terminal state: γ = 1 needs an episodic MDP")
    return replace(mdp, name=f"{mdp.name} (γ=1)", gamma=1.0)


def discount_as_termination(mdp: FiniteMDP) -> FiniteMDP:
    """An undiscounted MDP whose episodes end with probability 1 − γ at every step.

    P'(s'|s, a) = γ P(s'|s, a) + (1 − γ) 1[s' = end], with a new terminal state ``end`` and
    γ' = 1. Its values equal the discounted values of ``mdp``: the undiscounted return of an
    episode is an unbiased sample of the discounted return, and the usual estimator
    Σ_t G_t ∇log π is an unbiased estimate of the discounted gradient.

    Example:
        >>> mdp = discount_as_termination(random_mdp(3, 2, gamma=0.5, terminal_prob=None))
        >>> mdp.num_states, mdp.gamma
        (4, 1.0)
    """
    num_states, num_actions = mdp.num_states, mdp.num_actions
    transitions = torch.zeros(num_states + 1, num_actions, num_states + 1, dtype=torch.float64)
    transitions[:num_states, :, :num_states] = mdp.gamma * mdp.transitions
    transitions[:num_states, :, num_states] = 1.0 - mdp.gamma
    transitions[num_states, :, num_states] = 1.0
    # terminal states of the original MDP stay absorbing (their mass on `end` moves back)
    old = mdp.terminal.nonzero().flatten()
    transitions[old, :, :] = 0.0
    transitions[old, :, old] = 1.0
    rewards = torch.cat([mdp.rewards, torch.zeros(1, num_actions, dtype=torch.float64)])
    start = torch.cat([mdp.start, torch.zeros(1, dtype=torch.float64)])
    terminal = torch.cat([mdp.terminal, torch.ones(1, dtype=torch.bool)])
    return FiniteMDP(
        f"{mdp.name} (γ as termination)", transitions, rewards, start, 1.0, terminal, mdp.horizon
    )


def random_policy(mdp: FiniteMDP, seed: int = 0, scale: float = 1.0) -> Tensor:
    """Softmax logits θ ``(S, A)`` ~ N(0, scale²): the point where gradients are checked."""
    generator = torch.Generator().manual_seed(seed + 7919)
    shape = (mdp.num_states, mdp.num_actions)
    return scale * torch.randn(shape, generator=generator, dtype=torch.float64)


_NAMED: dict[str, Callable[[int], FiniteMDP]] = {
    "random": lambda seed: random_mdp(seed=seed),
    "chain": lambda seed: chain_mdp(),
    "gridworld": lambda seed: gridworld_mdp(),
}
MDP_NAMES: tuple[str, ...] = tuple(_NAMED)
"""Names accepted by :func:`make_mdp` and ``pgrl verify --mdp``."""


def make_mdp(name: str | None = None, seed: int = 0) -> FiniteMDP:
    """The MDP called ``name`` (None: the random MDP drawn from ``seed``).

    Raises:
        ConfigError: ``name`` is unknown; the message lists the known names.
    """
    key = "random" if name is None else name
    if key not in _NAMED:
        raise ConfigError(f"unknown MDP {name!r}; known MDPs: {', '.join(MDP_NAMES)}")
    return _NAMED[key](seed)

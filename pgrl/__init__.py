"""pgrl: policy-gradient reinforcement learning that reads like the equations.

>>> import pgrl
>>> sorted(pgrl.ALGORITHMS)
['a2c', 'ddpg', 'ppo', 'reinforce', 'sac', 'td3']
"""

from __future__ import annotations

from typing import Any

from pgrl.agent import Agent, load_agent
from pgrl.algos import ALGORITHMS
from pgrl.callbacks import EvalCallback, StopOnReturn
from pgrl.diagnostics import GradientDiagnostics
from pgrl.envs import EnvSource, resolve_env
from pgrl.errors import PgrlError
from pgrl.evaluation import EvalResult
from pgrl.train import resume, train

load = load_agent


def evaluate(
    agent: Agent, env: Any = None, episodes: int = 10, seed: int = 1_000_003
) -> EvalResult:
    """Deterministic evaluation of ``agent`` over ``episodes`` episodes.

    ``env`` is any form ``pgrl.train`` takes (id, ``"module:EnvId"``, class, factory,
    instance, vector environment); None evaluates in the agent's own environment.
    """
    return agent.evaluate(episodes, seed=seed, env=env)


__version__ = "0.1.0"

__all__ = [
    "ALGORITHMS",
    "Agent",
    "EnvSource",
    "EvalCallback",
    "EvalResult",
    "GradientDiagnostics",
    "PgrlError",
    "StopOnReturn",
    "__version__",
    "evaluate",
    "load",
    "load_agent",
    "resolve_env",
    "resume",
    "train",
]

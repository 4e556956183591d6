"""pgrl: policy-gradient reinforcement learning that reads like the equations.

>>> import pgrl
>>> sorted(pgrl.ALGORITHMS)
['a2c', 'ddpg', 'ppo', 'reinforce', 'sac', 'td3']
"""

from __future__ import annotations

from pgrl.agent import Agent, load_agent
from pgrl.algos import ALGORITHMS
from pgrl.errors import PgrlError
from pgrl.train import resume, train

load = load_agent

__version__ = "0.1.0"

__all__ = [
    "ALGORITHMS",
    "Agent",
    "PgrlError",
    "__version__",
    "load",
    "load_agent",
    "resume",
    "train",
]

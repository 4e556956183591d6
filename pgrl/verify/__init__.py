"""Prove the math: every policy-gradient estimator of pgrl against the exact gradient.

* :mod:`pgrl.verify.mdp`: finite MDPs (random from a seed, ``chain``, ``gridworld``).
* :mod:`pgrl.verify.exact`: V^π, Q^π, J(θ), d^π and ∇J(θ) in closed form (float64).
* :mod:`pgrl.verify.rollouts`: vectorised sampling of whole episodes in the (T, N) layout.
* :mod:`pgrl.verify.estimators`: estimators built from pgrl's own returns and losses.
* :mod:`pgrl.verify.stats`: bias (Bonferroni t-test), variance and cosine.
* :mod:`pgrl.verify.lqr`: the deterministic policy gradient on a linear-quadratic system.
* :mod:`pgrl.verify.report`: ``pgrl verify`` (:func:`run_verify`, :func:`main`).

See docs/verify.md for the derivation and the measured numbers.
"""

from pgrl.verify.mdp import MDP_NAMES, FiniteMDP, make_mdp
from pgrl.verify.report import VerifyReport, main, run_verify

__all__ = ["MDP_NAMES", "FiniteMDP", "VerifyReport", "main", "make_mdp", "run_verify"]

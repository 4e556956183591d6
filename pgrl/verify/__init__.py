"""Prove the math: every policy-gradient estimator of pgrl against the exact gradient.

* :mod:`pgrl.verify.mdp`: finite MDPs (random from a seed, ``chain``, ``gridworld``).
* :mod:`pgrl.verify.exact`: V^π, Q^π, J(θ), d^π and ∇J(θ) in closed form (float64).
* :mod:`pgrl.verify.rollouts`: vectorised sampling of whole episodes in the (T, N) layout.
* :mod:`pgrl.verify.estimators`: estimators built from pgrl's own returns and losses.
* :mod:`pgrl.verify.stats`: bias (Bonferroni t-test), variance and cosine.
* :mod:`pgrl.verify.lqr`: the deterministic policy gradient on a linear-quadratic system.
* :mod:`pgrl.verify.specs`: the estimators ``pgrl verify`` runs and the verdict each should get.
* :mod:`pgrl.verify.checks`: the checks: sample the estimators, compare with exact gradients.
* :mod:`pgrl.verify.results`: the report's data classes (:class:`VerifyReport`) and verdicts.
* :mod:`pgrl.verify.render`: the report as console text and markdown.
* :mod:`pgrl.verify.figures`: the report's figure (matplotlib).
* :mod:`pgrl.verify.report`: ``pgrl verify`` (:func:`run_verify`, :func:`main`).

See docs/verify.md for the derivation and the measured numbers.
"""

from pgrl.verify.mdp import MDP_NAMES, FiniteMDP, make_mdp
from pgrl.verify.report import main, run_verify
from pgrl.verify.results import VerifyReport

__all__ = ["MDP_NAMES", "FiniteMDP", "VerifyReport", "main", "make_mdp", "run_verify"]

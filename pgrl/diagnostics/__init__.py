"""Policy-gradient diagnostics: the gradient's noise during training, and the ladder.

* :class:`GradientDiagnostics`, a training callback: SNR, noise scale, chunk agreement,
  cosine to a larger fresh sample, and the critic's fit, logged under ``diag/``;
* :func:`ladder`, the article's estimator ladder at one fixed policy on a real task
  (``pgrl diagnose``);
* :mod:`pgrl.diagnostics.calibration`, the estimates checked against exact values on the
  finite MDPs of :mod:`pgrl.verify`.

See ``docs/diagnostics.md``.
"""

from pgrl.diagnostics.callback import GradientDiagnostics
from pgrl.diagnostics.stats import GradientStats, gradient_stats

__all__ = ["GradientDiagnostics", "GradientStats", "gradient_stats"]

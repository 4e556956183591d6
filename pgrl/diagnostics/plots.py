"""Figures of the diagnostics over training: SNR, cosines, value fit against steps."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["save_training_figure"]

_PANELS = (
    ("diag/snr", "SNR of the batch gradient", (-1.0, None)),
    ("diag/fresh_cosine", "cos(batch gradient, 4× fresh sample)", (-1.0, 1.0)),
    ("diag/pairwise_cosine", "mean cos between chunk gradients", (None, None)),
    ("diag/value_ev", "critic: explained variance of MC returns", (-3.0, 1.0)),
)


def _rolling(values: Sequence[float], window: int) -> list[float]:
    """Trailing mean over ``window`` values (fewer at the start)."""
    out = []
    for i in range(len(values)):
        part = values[max(0, i - window + 1) : i + 1]
        out.append(sum(part) / len(part))
    return out


def save_training_figure(
    histories: Mapping[str, Sequence[Mapping[str, float]]],
    path: Path,
    title: str = "",
    window: int = 10,
) -> None:
    """One panel per diagnostic (SNR, fresh cosine, chunk cosine, value EV) against
    environment steps, one line per run, plus the training return; PNG at ``path``.

    Args:
        histories: run label → ``agent.history`` (rows with ``env_steps`` and ``diag/...``).
        path: the PNG to write.
        title: the figure's title.
        window: rows of the trailing mean drawn (each row's value is noisy).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 3.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(_PANELS) + 1)
    for label, history in histories.items():
        for axis, (key, name, _) in zip(axes, _PANELS, strict=False):
            rows = [r for r in history if key in r and math.isfinite(r[key])]
            xs = [r["env_steps"] for r in rows]
            axis.plot(xs, _rolling([r[key] for r in rows], window), label=label, linewidth=1.2)
            axis.set_title(f"{name}\n(mean of {window} rows)", fontsize=9)
        rows = [r for r in history if "episode_return_mean" in r]
        axes[-1].plot([r["env_steps"] for r in rows], [r["episode_return_mean"] for r in rows])
        axes[-1].set_title("training return", fontsize=9)
    for axis, (_, _, limits) in zip(axes, _PANELS, strict=False):
        axis.set_ylim(*limits)
    for axis in axes:
        axis.set_xlabel("environment steps", fontsize=8)
        axis.tick_params(labelsize=7)
        axis.ticklabel_format(axis="x", style="sci", scilimits=(3, 3))
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)

"""The ``pgrl verify`` figure: variance, bias and cosine of every estimator against batch size."""

from __future__ import annotations

from pathlib import Path

from pgrl.verify.results import VerifyReport

__all__ = ["save_figure"]


def save_figure(report: VerifyReport, path: Path) -> None:
    """Write the three panels (variance, ‖bias‖/‖∇J‖, cosine against n) to ``path`` as PNG."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(16, 4.8))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    cmap = matplotlib.colormaps["tab20"]
    order = [*range(0, 20, 2), *range(1, 20, 2)]  # ten distinct hues first, then light ones
    colors = [cmap(order[i % 20]) for i in range(len(report.curves))]
    markers = "osD^v<>pP*Xhd"
    sizes = report.batch_sizes
    for index, (name, summaries) in enumerate(report.curves.items()):
        style = "--" if "no γ^t" in name else "-"
        kwargs = {
            "color": colors[index],
            "marker": markers[index % len(markers)],
            "linestyle": style,
            "label": name,
            "markersize": 4,
        }
        axes[0].plot(sizes, [s.variance for s in summaries], **kwargs)
        axes[1].plot(sizes, [s.bias_norm for s in summaries], **kwargs)
        axes[2].plot(sizes, [s.cosine for s in summaries], **kwargs)
    noise = [s.noise_norm for s in report.curves["r(τ)"]]
    axes[1].plot(sizes, noise, color="black", linestyle=":", label="noise level of r(τ)")
    titles = (
        "variance tr Cov(ĝ) of one batch estimate",
        "‖mean ĝ − ∇J‖ / ‖∇J‖ (over batches)",
        "mean cos(ĝ, ∇J)",
    )
    for ax, title in zip(axes, titles, strict=True):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("trajectories per batch n")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_yscale("log")
    axes[1].set_yscale("log")
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8, frameon=False)
    fig.suptitle(
        f"pgrl verify: MDP '{report.mdp}', seed {report.seed}, γ={report.gamma:g}, "
        f"{report.num_batches} batches per n; dashed: pgrl's default (no γ^t)",
        fontsize=11,
    )
    fig.tight_layout(rect=(0.0, 0.0, 0.875, 1.0))
    fig.savefig(path, dpi=110)

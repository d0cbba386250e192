"""Draw a loop's progress as a static image for READMEs and CI artifacts (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

from . import noise
from .errors import ArlError
from .record import Record
from .views import best_so_far, bounds_of, change, fmt, series

COLORS = {"baseline": "#0969da", "keep": "#1a7f37", "discard": "#afb8c1", "crash": "#cf222e"}
FORMATS = (".png", ".svg", ".pdf")


def write_plot(record: Record, path: Path, *, width_in: float = 9.0, height_in: float = 4.5, dpi: int = 110) -> Path:
    """Every attempt as a dot, keeps highlighted, the best-so-far step line; PNG, SVG or PDF by suffix."""
    import matplotlib

    matplotlib.use("Agg")  # no display on runners; must precede pyplot
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if path.suffix.lower() not in FORMATS:
        raise ArlError(f"cannot draw {path}: unknown image type {path.suffix or '(none)'!r}",
                       hint="name the output .png, .svg or .pdf")
    meta = record.meta
    fig, ax = plt.subplots(figsize=(width_in, height_in), dpi=dpi, layout="constrained")
    try:
        shrink = 1.0 if len(record.attempts) <= 300 else 0.25  # thousands of dots would merge into bands
        for status, size, z in (("discard", 10, 2), ("keep", 28, 4), ("baseline", 40, 5)):
            points = [(a.experiment, a.metric) for a in record.attempts if a.status == status and a.metric is not None]
            if points:
                ax.scatter([e for e, _ in points], [m for _, m in points], s=size * shrink, zorder=z,
                           color=COLORS[status], label=f"{status} ({len(points)})")
        bounds = bounds_of(series(record, max(1, len(record.attempts))))
        failed = [a for a in record.attempts if a.metric is None]
        if failed and bounds is not None:
            ax.scatter([a.experiment for a in failed], [bounds[0]] * len(failed), marker="x", s=14 * shrink, zorder=3,
                       color=COLORS["crash"], label=f"no metric ({len(failed)})")
        path_points = best_so_far(record)
        if path_points:
            ax.step([e for e, _ in path_points], [v for _, v in path_points], where="post", zorder=6,
                    color=COLORS["keep"], linewidth=2, label="best so far")
        if bounds is not None:
            low, high = bounds
            pad = (high - low) * 0.06 or abs(high) * 0.05 or 1.0
            bottom, top = low - pad, high + pad
            ax.set_ylim(bottom, top)
            # Diverged runs (a loss of 1e23) are clipped from the axis: mark them at its edge instead. The
            # edge is the drawn axis, padding included: a point inside the padding is on the chart.
            beyond = [(a.experiment, top if a.metric > top else bottom) for a in record.attempts
                      if a.metric is not None and not bottom <= a.metric <= top]
            if beyond:
                ax.scatter([e for e, _ in beyond], [v for _, v in beyond], marker="^", s=24 * shrink, zorder=3,
                           color=COLORS["discard"], edgecolors="#57606a", label=f"off the axis ({len(beyond)})")
        baseline, best = record.baseline, record.best
        b, m = (baseline.metric if baseline else None), (best.metric if best else None)
        ax.set_title(f"{meta.loop}: {meta.metric} {fmt(b)} → {fmt(m)}: {change(b, m, meta.goal)}", loc="left",
                     fontsize=11)
        ax.set_xlabel("experiment")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(f"{meta.metric} ({noise.better_end(meta.goal)} is better)")
        ax.grid(True, alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize=8, frameon=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, metadata={"Software": "arl-bot"} if path.suffix.lower() == ".png" else None)
    finally:
        plt.close(fig)
    return path

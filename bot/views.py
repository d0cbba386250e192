"""Formatting shared by the PR body, the report, the plot, progress, results and the bot's replies (pure).

Metrics as people read them, the change against the baseline, the history reduced to chart points and
their y range, the commands' help table, and agent or person text as one table cell.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from . import noise
from .record import Attempt, Record
from .sanitize import table_cell

NO_METRIC = "×"  # a sparkline cell or axis label for an attempt that produced no metric
# The commands a person can post, as the PR body and the bot's help reply list them.
COMMANDS = """\
| command | what it does |
| --- | --- |
| `/autoresearch continue [N]` | run N more experiments (default: the budget) |
| `/autoresearch stop` | stop after the current experiment; the schedule skips this loop |
| `/autoresearch revert <experiment>` | undo a kept experiment (a new commit), then re-measure |
| `/autoresearch redirect <text>` | tell the agent where to look next |
| `/autoresearch rebase` | merge the base branch (e.g. `main`) in, make it the base, re-measure |
| `/autoresearch status` | reply with where the loop stands |
| `/autoresearch help` | list these commands |"""


@dataclass(frozen=True)
class Series:
    """The history reduced to chart points: one per attempt, or one per bin of attempts."""

    labels: list[str]  # the last experiment of each point, marked with NO_METRIC when it has none
    tried: list[float | None]  # the attempt's metric, or the median of the bin's; None: nothing measured
    best: list[float | None]  # best so far at the end of each point; None before the baseline
    binned: bool
    first: int
    last: int


def fmt(value: float | None) -> str:
    """A metric as people read it."""
    return "—" if value is None else f"{value:.6g}"


def change(baseline: float | None, best: float | None, goal: str) -> str:
    """Best against baseline, with the sign and a word saying whether it is better."""
    if baseline is None or best is None:
        return "—"
    delta = best - baseline
    pct = f" ({delta / abs(baseline) * 100:+.2f}%)" if baseline else ""
    better = noise.sign(goal) * delta > 0
    word = "better" if better else ("no change" if delta == 0 else "worse")
    return f"{delta:+.6g}{pct}, {word}"


def best_so_far(record: Record) -> list[tuple[int, float]]:
    """(experiment, best metric after it) for every attempt since the baseline."""
    points: list[tuple[int, float]] = []
    best: float | None = None
    for attempt in record.attempts:
        if attempt.status in ("baseline", "keep") and attempt.metric is not None:
            best = attempt.metric
        if best is not None:
            points.append((attempt.experiment, best))
    return points


class _Path:
    """Each attempt's metric and the best after it, folded incrementally (see Record.fold)."""

    def __init__(self) -> None:
        self.metrics: list[float | None] = []
        self.best_after: list[float | None] = []
        self.best: float | None = None

    def add(self, attempt: Attempt) -> None:
        """Extend the path by one attempt."""
        if attempt.status in ("baseline", "keep") and attempt.metric is not None:
            self.best = attempt.metric
        self.metrics.append(attempt.metric)
        self.best_after.append(self.best)


def series(record: Record, points: int) -> Series:
    """Reduce the history to at most `points` points, binning consecutive attempts when longer."""
    attempts = record.attempts
    path = record.fold("views.path", _Path, _Path.add)
    best_after = path.best_after
    if not attempts:
        return Series([], [], [], False, 0, 0)
    n = len(attempts)
    if n <= points:
        labels = [f"{a.experiment}" if a.metric is not None else f"{a.experiment}{NO_METRIC}" for a in attempts]
        return Series(labels, [a.metric for a in attempts], best_after, False,
                      attempts[0].experiment, attempts[-1].experiment)
    labels, tried, line = [], [], []
    for i in range(points):
        lo, hi = i * n // points, (i + 1) * n // points
        measured = [m for m in path.metrics[lo:hi] if m is not None]
        labels.append(str(attempts[hi - 1].experiment))
        tried.append(statistics.median(measured) if measured else None)
        line.append(best_after[hi - 1])
    return Series(labels, tried, line, True, attempts[0].experiment, attempts[-1].experiment)


def bounds_of(s: Series) -> tuple[float, float] | None:
    """The y range: the whole best-so-far path, and tries up to one path-span beyond it."""
    line = [v for v in s.best if v is not None]
    tried = [v for v in s.tried if v is not None]
    if not line and not tried:
        return None
    core = line or tried
    span = (max(core) - min(core)) or abs(max(core)) * 0.1 or 1.0
    # Clip wild tries (a diverged run scoring 1e9) so the path people care about keeps its height.
    floor, ceiling = min(core) - span, max(core) + span
    clipped = [min(max(v, floor), ceiling) for v in tried]
    return min(core + clipped), max(core + clipped)


def cell(text: str, limit: int = 80) -> str:
    """Agent or person text as one table cell: shown as text, unable to break the table, ping or link anyone."""
    return table_cell(text, limit)

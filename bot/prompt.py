"""The prompt every agent gets: instructions, a compact history, the mode, and redirect notes."""

from __future__ import annotations

from .config import Loop
from .record import Attempt, Record

RECENT = 10  # attempts shown in full; older ones are summarised


def render(loop: Loop, instructions: str, record: Record, mode: str, experiment: int) -> str:
    """The prompt text for one experiment."""
    parts = [instructions.strip(), "", "## The task", "",
             f"You are running experiment {experiment} of the research loop `{loop.name}`.",
             f"Change only files matching: {', '.join(loop.editable)}.",
             f"Never change: {', '.join(loop.all_protected)}.",
             f"The metric is `{loop.metric.name}`; lower is better." if loop.metric.goal == "minimize"
             else f"The metric is `{loop.metric.name}`; higher is better.",
             "The bot measures the result itself; what you print about the metric is ignored.",
             f"Mode: {mode}.", "", history(record)]
    if record.redirects:
        parts += ["", "## Notes from the people running this loop", ""]
        parts += [f"- {text}" for text in record.redirects[-5:]]
    return "\n".join(parts).strip() + "\n"


def history(record: Record) -> str:
    """Best and baseline, the last few attempts in full, older ones as counts."""
    lines = ["## History", ""]
    if record.baseline is not None and record.baseline.metric is not None:
        lines.append(f"Baseline: {record.baseline.metric:.6g}")
    if record.best is not None and record.best.metric is not None:
        lines.append(f"Best so far: {record.best.metric:.6g} (experiment {record.best.experiment})")
    older = record.attempts[:-RECENT]
    if older:
        counts: dict[str, int] = {}
        for attempt in older:
            counts[attempt.status] = counts.get(attempt.status, 0) + 1
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        lines.append(f"Earlier attempts ({len(older)}): {summary}")
    recent = record.attempts[-RECENT:]
    if recent:
        lines += ["", "Recent attempts (experiment, status, metric, description):"]
        lines += [_line(a) for a in recent]
    return "\n".join(lines)


def _line(attempt: Attempt) -> str:
    metric = f"{attempt.metric:.6g}" if attempt.metric is not None else "-"
    why = f" ({attempt.reason})" if attempt.status in ("crash", "invalid") and attempt.reason else ""
    return f"- {attempt.experiment} {attempt.status} {metric} {attempt.description}{why}"

"""How a run with several workers or device slots went, from the record alone (pure): the PR body and the summary."""

from __future__ import annotations

from dataclasses import dataclass

from . import names
from .record import Note, Record


@dataclass(frozen=True)
class Workers:
    """The latest run's workers and slots, and what they got through."""

    workers: int
    slots: tuple[str, ...]
    experiments: int  # recorded by that run (baselines not counted)
    per_hour: float | None  # None until the run has taken measurable time
    busy: float | None  # the slots' evaluation time over slots times the run's time, 0..1


def latest(record: Record) -> Workers | None:
    """The latest run's figures, when it ran with more than one worker or slot (None otherwise)."""
    start = next((n for n in reversed(record.notes) if n.kind == "run_start"), None)
    if start is None or not isinstance(start.data.get("workers"), int) or isinstance(start.data["workers"], bool):
        return None
    slots = start.data.get("slots")
    labels = tuple(str(s) for s in slots) if isinstance(slots, list) else ()
    run_id = start.data.get("run_id")
    mine = [a for a in record.attempts if a.run_id == run_id and a.status != "baseline"]
    elapsed = _elapsed(start, record, run_id)
    per_hour = busy = None
    if elapsed is not None and elapsed > 0:
        per_hour = len(mine) * 3600 / elapsed
        if labels:
            busy = min(1.0, sum(a.eval_s for a in record.attempts if a.run_id == run_id) / (len(labels) * elapsed))
    return Workers(int(start.data["workers"]), labels, len(mine), per_hour, busy)


def _elapsed(start: Note, record: Record, run_id: object) -> float | None:
    """Seconds from the run's start to its end note, or else to the end of its latest attempt."""
    try:
        began = names.parse_stamp(start.at)
        end = next((n for n in reversed(record.notes) if n.kind == "run_end" and n.data.get("run_id") == run_id), None)
        if end is not None:
            return (names.parse_stamp(end.at) - began).total_seconds()
        ends = [(names.parse_stamp(a.started_at) - began).total_seconds() + a.agent_s + a.eval_s
                for a in record.attempts if a.run_id == run_id and a.started_at]
    except ValueError:
        return None
    return max(ends) if ends else None


def text(record: Record) -> str | None:
    """`4 on gpu 0, gpu 1: 120 experiments/h, slots 85% busy (latest run)`, or None with one worker and slot."""
    figures = latest(record)
    if figures is None:
        return None
    said = f"{figures.workers} on {', '.join(figures.slots) or 'one slot'}"
    if figures.per_hour is not None:
        said += f": {figures.per_hour:,.0f} experiments/h"
        if figures.busy is not None:
            said += f", slots {figures.busy:.0%} busy"
    return f"{said} (latest run)"


def row(record: Record) -> str | None:
    """A two-column table row: `| workers | 4 on gpu 0, gpu 1: 120 experiments/h, slots 85% busy (…) |`."""
    said = text(record)
    return None if said is None else f"| workers | {said} |"

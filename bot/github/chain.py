"""Runs longer than a job may live: each job stops inside its budget and hands the loop to the next (pure).

A job's token (GITHUB_TOKEN: 24 h at most) or the job itself (6 h on GitHub-hosted runners) ends before a long
loop does. So a job runs the loop under a job budget and, when that budget and not the loop's ran out, starts a
new run of the workflow (workflow_dispatch), which continues with what is left. What was used is written in the
run_start note (`chain`), so the next job reads the remainder from the record on the remote, nowhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .. import names
from ..config import Budget, Loop
from ..record import Note, Record

GITHUB_HOSTED_HOURS = 5.5  # a GitHub-hosted job is cancelled at 6 h
TOKEN_HOURS = 23.0  # GITHUB_TOKEN expires after the job's 24 h at most
HOURS_STOP = "hours:"  # how decide.stop_reason words an exhausted hours budget
SHARD_RE = re.compile(r"\.\d+$")  # research.py gives a loop's later `runners:` jobs the run id `<run id>.<shard>`


@dataclass(frozen=True)
class Leg:
    """One job's share of a loop's budget."""

    hours: float | None  # what this job's Session may use (None: no limit)
    experiments: int | None  # what it may run (None: the loop's budget)
    handover: bool  # whether running out of `hours` means "hand over" rather than "the loop is done"
    notes: dict[str, object]  # the run_start note's `chain` entry


def job_hours(configured: float | None, runner_environment: str, app_tokens: bool) -> float | None:
    """The job budget: the config's, else what the runner and the token allow."""
    if configured is not None:
        return configured
    if runner_environment == "github-hosted":
        return GITHUB_HOSTED_HOURS
    return None if app_tokens else TOKEN_HOURS  # App tokens are re-minted; a self-hosted job may run 5 days


def pending(record: Record | None) -> tuple[float, int | None] | None:
    """(hours used, experiments left) of a chain whose last job handed over, or None when none is waiting."""
    if record is None:
        return None
    start = end = None
    for note in reversed(record.notes):
        if _later_shard(note):  # a loop's `runners:` jobs: only the first hands over; the others' ends interleave
            continue
        if note.kind == "run_end" and end is None and start is None:
            end = note
        elif note.kind == "run_start":
            start = note
            break
    if start is None or end is None or not isinstance(start.data.get("chain"), dict):
        return None
    chain = start.data["chain"]
    if chain.get("handover") is not True or not str(end.data.get("reason", "")).startswith(HOURS_STOP):
        return None
    used, left, tried = chain.get("used_h"), chain.get("experiments"), chain.get("tried", 0)
    # What the run's jobs had tried when the first of them started: a job a runner picked up late saw more.
    tried = min([tried, *(n.data["chain"].get("tried", tried) for n in _same_run(record, start))], key=_number)
    try:  # anyone who may push may write the record: a damaged note ends the chain, it never crashes the job
        used_h = float(used) + max(0.0, (_time(end.at) - _time(start.at)) / 3600)
        if left is not None:
            left = max(0, int(left) - (_tried(record) - int(tried)))
    except (TypeError, ValueError):
        return None
    return used_h, left


def plan(loop: Loop, record: Record | None, *, continuing: bool, job_h: float | None,
         experiments: int | None) -> Leg:
    """This job's leg: a continuation takes what the chain left, anything else starts the loop's budget anew."""
    used_h, left = 0.0, experiments if experiments is not None else loop.budget.experiments
    waiting = pending(record) if continuing else None
    if waiting is not None:
        used_h, left = waiting
    remaining_h = None if loop.budget.hours is None else max(0.0, loop.budget.hours - used_h)
    hours = remaining_h if job_h is None else (job_h if remaining_h is None else min(job_h, remaining_h))
    handover = job_h is not None and (remaining_h is None or job_h < remaining_h)
    notes: dict[str, object] = {"used_h": round(used_h, 6), "experiments": left, "tried": _tried(record),
                                "job_h": job_h, "handover": handover}
    return Leg(hours=hours, experiments=left, handover=handover, notes=notes)


def share(total: int | None, shard: int, jobs: int) -> int | None:
    """Shard's part of total experiments shared out among a loop's `runners:` jobs (None: no limit to share)."""
    if total is None or jobs <= 1:
        return total
    return total // jobs + (1 if shard < total % jobs else 0)


def job_budget(budget: Budget, hours: float | None, jobs: int) -> Budget:
    """What one of a loop's jobs may use: its leg's hours (each job's own clock) and its part of `cost_usd`.

    The loop's budget is the run's, however many jobs run it: N jobs each under the whole `cost_usd` could
    spend N times what the config allows. Experiments are shared out the same way (`share`), exactly.
    """
    update: dict[str, object] = {}
    if hours != budget.hours:
        update["hours"] = hours
    if jobs > 1 and budget.cost_usd is not None:
        update["cost_usd"] = budget.cost_usd / jobs
    return budget.model_copy(update=update) if update else budget


def handed_over(leg: Leg, reason: str) -> bool:
    """Whether a job that stopped for reason should start the next one."""
    return leg.handover and reason.startswith(HOURS_STOP)


def _later_shard(note: Note) -> bool:
    """Whether a note is by a loop's second or later `runners:` job (its run id ends in `.<shard>`)."""
    return bool(SHARD_RE.search(str(note.data.get("run_id", ""))))


def _same_run(record: Record, start: Note) -> list[Note]:
    """The run_start notes, with a chain, of every job of start's workflow run."""
    run_id = str(start.data.get("run_id", ""))
    return [n for n in record.notes if n.kind == "run_start" and run_id and isinstance(n.data.get("chain"), dict)
            and SHARD_RE.sub("", str(n.data.get("run_id", ""))) == run_id]


def _number(value: object) -> float:
    """A note's count for ordering; a damaged one sorts last (it is checked where it is used)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return float("inf")
    try:
        return float(value)
    except ValueError:
        return float("inf")


def _tried(record: Record | None) -> int:
    return 0 if record is None else sum(1 for a in record.attempts if a.status != "baseline")


def _time(stamp: str) -> float:
    return names.parse_stamp(stamp).timestamp()  # aware: a naive time would be read as local

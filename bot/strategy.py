"""Choose where each experiment starts and in which mode (pure: record in, plan out).

Usually the agent improves the best state (the branch head). Every `explore_every`-th experiment it is
asked for a bolder change. When the loop has plateaued (`diversify_after` attempts in a row without a
keep, and again every `diversify_after` after that) it starts from another of the `top_k` best kept
states instead, taking them in turn, so a search stuck around one state gets a different parent.
A keep is still judged against the best and lands as a commit on the head, so history stays linear.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import Loop, Metric, StrategyConfig
from .record import Attempt, Record

MODES: dict[str, str] = {
    "improve": "make one focused change to the current best that you expect to improve the metric",
    "explore": "try a bolder change than usual: an idea unlike those in the history, even if riskier",
    "diversify": ("the loop has stalled around the best state, so you start from an earlier kept state; "
                  "take it in a direction the recent attempts have not tried"),
}
NOT_KEPT = ("discard", "crash", "invalid")  # statuses that lengthen a plateau; `interrupted` says nothing


@dataclass(frozen=True)
class Plan:
    """Where the agent starts and how bold it should be."""

    start: str  # the commit whose tree the agent edits (the branch head, or an earlier kept state)
    mode: str  # "improve", "explore", "diversify"


class Strategy:
    """Plans each experiment from the loop's `strategy:` settings."""

    def __init__(self, loop: Loop) -> None:
        self.loop = loop

    def plan(self, record: Record, head: str) -> Plan:
        """The plan for the next experiment."""
        return choose(self.loop.strategy, self.loop.metric, record, head)


def choose(settings: StrategyConfig, metric: Metric, record: Record, head: str) -> Plan:
    """The plan for record's next experiment, given the branch head."""
    streak = plateau(record)
    every = settings.diversify_after
    if every is not None and streak >= every and streak % every == 0:
        others = [a for a in ranked(record, metric) if a.sha != head][: settings.top_k]
        if others:
            pick = others[(streak // every - 1) % len(others)]
            assert pick.sha is not None
            return Plan(start=pick.sha, mode="diversify")
    if settings.explore_every is not None and record.next_experiment % settings.explore_every == 0:
        return Plan(start=head, mode="explore")
    return Plan(start=head, mode="improve")


class _Streak:
    """Attempts not kept since the last kept state, folded over the attempts (see Record.fold)."""

    def __init__(self) -> None:
        self.count = 0

    def add(self, attempt: Attempt) -> None:
        """Take one more attempt into account; an interrupted attempt neither counts nor resets."""
        if attempt.status in NOT_KEPT:
            self.count += 1
        elif attempt.status != "interrupted":
            self.count = 0


def plateau(record: Record) -> int:
    """Attempts since the last kept state that were not kept."""
    return record.fold("strategy.plateau", _Streak, _Streak.add).count


def ranked(record: Record, metric: Metric) -> list[Attempt]:
    """Kept states with a commit and a metric, best first (earlier first among equals)."""
    kept = [a for a in record.kept if a.sha and a.metric is not None]
    return sorted(kept, key=lambda a: (-metric.sign * (a.metric or 0.0), a.experiment))

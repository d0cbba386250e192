"""Choose where each experiment starts and in which mode (pure: record in, plan out)."""

from __future__ import annotations

from dataclasses import dataclass

from .config import Loop
from .record import Record


@dataclass(frozen=True)
class Plan:
    """Where the agent starts and how bold it should be."""

    start: str  # the commit whose tree the agent edits (the branch head, or an earlier kept state)
    mode: str  # "improve", "explore", "diversify"


class Strategy:
    """Always improve the best: the branch head."""

    def __init__(self, loop: Loop) -> None:
        self.loop = loop

    def plan(self, record: Record, head: str) -> Plan:
        """The plan for the next experiment."""
        return Plan(start=head, mode="improve")

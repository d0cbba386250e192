"""The record of a loop as plain data: every attempt and note, and what follows from them."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

Status = Literal["baseline", "keep", "discard", "crash", "invalid", "interrupted"]
STATUSES: tuple[str, ...] = ("baseline", "keep", "discard", "crash", "invalid", "interrupted")
KEPT: tuple[str, ...] = ("baseline", "keep")  # statuses that move the research branch
S = TypeVar("S")


@dataclass(frozen=True)
class Attempt:
    """One experiment, kept or not."""

    experiment: int
    status: Status
    metric: float | None
    description: str
    parent: str  # the commit the agent started from
    sha: str | None = None  # the commit on the research branch (baseline and keep only)
    best_before: float | None = None
    seeds: dict[str, float | None] = field(default_factory=dict)
    reason: str = ""  # why it crashed, was invalid, or was discarded
    mode: str = "improve"
    files: list[str] = field(default_factory=list)
    cost_usd: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    started_at: str = ""
    agent_s: float = 0.0
    eval_s: float = 0.0
    agent_log: str = ""
    eval_log: str = ""
    run_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # room for backends and later features

    @property
    def delta(self) -> float | None:
        """metric minus the best before it (sign as measured, not as judged)."""
        if self.metric is None or self.best_before is None:
            return None
        return self.metric - self.best_before

    def to_json(self) -> str:
        """One line of JSON, stable key order."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attempt:
        """Build from parsed JSON, ignoring keys from newer versions."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class Note:
    """Something that happened to the loop besides an attempt: a run started or stopped, a redirect."""

    kind: Literal["run_start", "run_end", "redirect", "pause", "resume"]
    at: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """One line of JSON."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Note:
        """Build from parsed JSON."""
        return cls(kind=data["kind"], at=data["at"], data=data.get("data", {}))


@dataclass(frozen=True)
class Meta:
    """Where a loop started."""

    loop: str
    base_branch: str
    base_sha: str
    created_at: str
    goal: str
    metric: str
    version: int = 1


class _Tally:
    """Counts, money and kept states, folded over the attempts one at a time."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(STATUSES, 0)
        self.cost = 0.0
        self.tokens_in = 0
        self.tokens_out = 0
        self.baseline: Attempt | None = None
        self.kept: list[Attempt] = []

    def add(self, attempt: Attempt) -> None:
        """Take one more attempt into account."""
        self.counts[attempt.status] = self.counts.get(attempt.status, 0) + 1
        self.cost += attempt.cost_usd
        self.tokens_in += attempt.tokens_in
        self.tokens_out += attempt.tokens_out
        if attempt.status == "baseline" and self.baseline is None:
            self.baseline = attempt
        if attempt.status in KEPT:
            self.kept.append(attempt)


@dataclass
class Record:
    """Everything known about a loop, in order."""

    meta: Meta
    attempts: list[Attempt] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    _folds: dict[str, tuple[int, int, Any]] = field(default_factory=dict, repr=False, compare=False)

    def fold(self, name: str, start: Callable[[], S], step: Callable[[S, Attempt], None]) -> S:
        """A running aggregate over the attempts, updated only with the ones added since last time.

        Attempts are only ever appended, so the bot's per-experiment work (prompt, PR body, stop
        checks) costs the same at attempt 10 and 10,000. name identifies the aggregate.
        """
        key, done, state = self._folds.get(name, (0, 0, None))
        if state is None or key != id(self.attempts) or done > len(self.attempts):
            done, state = 0, start()
        for attempt in itertools.islice(self.attempts, done, None):
            step(state, attempt)
        self._folds[name] = (id(self.attempts), len(self.attempts), state)
        return state  # type: ignore[no-any-return]

    def _tally(self) -> _Tally:
        return self.fold("tally", _Tally, _Tally.add)

    @property
    def baseline(self) -> Attempt | None:
        """The first measurement of the base."""
        return self._tally().baseline

    @property
    def kept(self) -> list[Attempt]:
        """Baseline and every keep, in order: the states on the research branch."""
        return list(self._tally().kept)

    @property
    def best(self) -> Attempt | None:
        """The state the loop currently builds on: the last kept attempt."""
        kept = self._tally().kept
        return kept[-1] if kept else None

    @property
    def next_experiment(self) -> int:
        """The number the next attempt gets."""
        return self.attempts[-1].experiment + 1 if self.attempts else 0

    @property
    def total_cost(self) -> float:
        """Money spent on agents over the whole loop."""
        return self._tally().cost

    @property
    def total_tokens(self) -> tuple[int, int]:
        """Tokens in and out over the whole loop."""
        tally = self._tally()
        return tally.tokens_in, tally.tokens_out

    @property
    def paused(self) -> bool:
        """Whether the loop was stopped by a person and not resumed since."""
        for note in reversed(self.notes):
            if note.kind in ("pause", "resume"):
                return note.kind == "pause"
        return False

    @property
    def redirects(self) -> list[str]:
        """Steering notes for the agent, oldest first."""
        return [str(n.data.get("text", "")) for n in self.notes if n.kind == "redirect"]

    @property
    def stop_reason(self) -> str | None:
        """Why the last run ended, if it ended."""
        for note in reversed(self.notes):
            if note.kind == "run_end":
                return str(note.data.get("reason", ""))
            if note.kind == "run_start":
                return None
        return None

    def counts(self) -> dict[str, int]:
        """Attempts by status."""
        return dict(self._tally().counts)

    def attempt(self, experiment: int) -> Attempt | None:
        """The attempt with that number."""
        for attempt in self.attempts:
            if attempt.experiment == experiment:
                return attempt
        return None

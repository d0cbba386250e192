"""The record of a loop as plain data: every attempt and note, and what follows from them."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, get_args

Status = Literal["baseline", "keep", "discard", "crash", "invalid", "interrupted"]  # an attempt's outcome
STATUSES: tuple[Status, ...] = get_args(Status)
KEPT: tuple[Status, ...] = ("baseline", "keep")  # statuses that move the research branch
S = TypeVar("S")


NOTE_KINDS: tuple[str, ...] = ("run_start", "run_end", "redirect", "pause", "resume")


def dumps(data: Any) -> str:
    """JSON for the record that cannot fail on anything the bot accepted.

    JSON has no infinities: a float that overflowed (the gain between metrics of -1.7e308 and
    1.7e308) is written as the string "inf"/"-inf"/"nan", which `from_dict` reads back as the float.
    A value of a type JSON lacks (a backend's numpy scalar in `extra`) is written as its str().
    """
    return json.dumps(_finite(data), sort_keys=True, allow_nan=False, default=str)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # 'inf', '-inf', 'nan': float() reads each back
    if isinstance(value, dict):  # JSON keys are strings: a backend's tuple or None key becomes its str()
        return {key if isinstance(key, str | int) else str(key): _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", int: "an integer",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _wrong(name: str, expected: str, value: Any) -> ValueError:
    shown = json.dumps(value, default=str)
    return ValueError(f"`{name}` must be {expected}, got {_kind(value)} {shown[:60]}")


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong(name, "an integer", value)
    return value


def _number(name: str, value: Any) -> float:
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)  # how `dumps` writes a float JSON cannot hold
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong(name, "a number", value)
    return float(value)


def _optional_number(name: str, value: Any) -> float | None:
    return None if value is None else _number(name, value)


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _wrong(name, "a string", value)
    return value


def _optional_text(name: str, value: Any) -> str | None:
    return None if value is None else _text(name, value)


def _mapping(name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _wrong(name, "an object", value)
    return value


def _seeds(name: str, value: Any) -> dict[str, float | None]:
    return {key: _optional_number(f"{name}.{key}", item) for key, item in _mapping(name, value).items()}


def _texts(name: str, value: Any) -> list[str]:
    if not isinstance(value, list):
        raise _wrong(name, "a list", value)
    return [_text(f"{name}[{index}]", item) for index, item in enumerate(value)]


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
        # Two finite metrics (±1.7e308) can differ by more than a float holds: that is ±inf, never an error.
        return self.metric - self.best_before

    def to_json(self) -> str:
        """One line of JSON, stable key order; never fails on a value the bot accepted (see dumps)."""
        return dumps(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Any) -> Attempt:
        """Build from parsed JSON, ignoring keys from newer versions; raise ValueError on a wrong type.

        A hand-edited or foreign entry with `"experiment": "3"` must be a damaged item the store names
        and `--repair` moves aside, not a crash in every command that reads the record.
        """
        if not isinstance(data, dict):
            raise ValueError(f"an attempt must be a JSON object, got {_kind(data)}")
        names = {f.name for f in dataclasses.fields(cls)}
        fields = {k: v for k, v in data.items() if k in names}
        for name in ("experiment", "status", "metric", "description", "parent"):
            if name not in fields:
                raise ValueError(f"`{name}` is missing")
        for name, value in fields.items():
            fields[name] = _ATTEMPT_CHECKS[name](name, value)
        if fields["experiment"] < 0:
            raise ValueError(f"`experiment` must be 0 or more, got {fields['experiment']}")
        if fields["status"] not in STATUSES:
            raise ValueError(f"`status` must be one of {', '.join(STATUSES)}, got {fields['status']!r}")
        return cls(**fields)


_ATTEMPT_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "experiment": _integer, "status": _text, "metric": _optional_number, "description": _text,
    "parent": _text, "sha": _optional_text, "best_before": _optional_number, "seeds": _seeds,
    "reason": _text, "mode": _text, "files": _texts, "cost_usd": _number, "tokens_in": _integer,
    "tokens_out": _integer, "started_at": _text, "agent_s": _number, "eval_s": _number,
    "agent_log": _text, "eval_log": _text, "run_id": _text, "extra": _mapping,
}


@dataclass(frozen=True)
class Note:
    """Something that happened to the loop besides an attempt: a run started or stopped, a redirect."""

    kind: Literal["run_start", "run_end", "redirect", "pause", "resume"]
    at: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """One line of JSON."""
        return dumps(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Any) -> Note:
        """Build from parsed JSON; raise ValueError on a wrong type."""
        if not isinstance(data, dict):
            raise ValueError(f"a note must be a JSON object, got {_kind(data)}")
        kind = _text("kind", data.get("kind"))
        if kind not in NOTE_KINDS:
            raise ValueError(f"`kind` must be one of {', '.join(NOTE_KINDS)}, got {kind!r}")
        return cls(kind=kind, at=_text("at", data.get("at")),  # type: ignore[arg-type]  # checked above
                   data=_mapping("data", data.get("data", {})))


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

    @classmethod
    def from_dict(cls, data: Any) -> Meta:
        """Build from parsed JSON; raise ValueError on a wrong type."""
        if not isinstance(data, dict):
            raise ValueError(f"meta.json must be a JSON object, got {_kind(data)}")
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [name for name in names[:-1] if name not in data]
        if missing:
            raise ValueError(f"`{missing[0]}` is missing")
        values: dict[str, Any] = {name: _text(name, data[name]) for name in names[:-1]}  # all but version
        if "version" in data:
            values["version"] = _integer("version", data["version"])
        return cls(**values)


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

    def counts(self) -> dict[Status, int]:
        """Attempts by status."""
        return dict(self._tally().counts)

    def attempt(self, experiment: int) -> Attempt | None:
        """The attempt with that number."""
        for attempt in self.attempts:
            if attempt.experiment == experiment:
                return attempt
        return None

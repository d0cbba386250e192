"""Guards: what a keep must pass besides the metric — checks (commands that exit 0) and limits on other numbers."""

from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import policy
from .config import NUMBER_NAME, Guards, Limit, Loop
from .evaluate import Measurement
from .record import Attempt, Record
from .sandbox import Sandbox, limit_note
from .sanitize import code_span, table_cell

MAX_NUMBERS = 64  # other numbers kept per attempt: an evaluation printing thousands would bloat the record
REASON_TAIL_CHARS = 600  # of a failed check's output, in the attempt's reason (which the agent reads)
LOG_TAIL_CHARS = 4_000  # of each check's output, in the record
KEPT_SHOWN = 10  # kept states listed with their guards in the PR body
_NAME = re.compile(NUMBER_NAME)
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_LINE = re.compile(rf"\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*[:=]\s*({_NUMBER})\s*")


@dataclass(frozen=True)
class Outcome:
    """One guard as it ran: a check (its exit) or a limit (the value and the bound it was held to)."""

    name: str
    kind: str  # check | limit
    ok: bool
    reason: str = ""  # why it failed, for the attempt's reason
    value: float | None = None  # a limit's number
    limit: str = ""  # a limit's bound as people read it: "≤ 40000", "≤ 126 (+5% of 120)"
    seconds: float = 0.0  # a check's time
    log: str = ""  # a check's output tail

    def as_dict(self) -> dict[str, Any]:
        """For Attempt.extra["guards"]; the log only where a check failed."""
        data = {k: v for k, v in asdict(self).items() if v not in ("", None) or k in ("value", "ok")}
        if self.kind == "limit":
            data.pop("seconds", None)
        if self.ok:
            data.pop("log", None)
        return data


Violation = Outcome  # a limit or check that did not pass


# -- the numbers an evaluation reports -------------------------------------------------------------
def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def reported(stdout: str, result_text: str, loop: Loop) -> dict[str, float]:
    """Numbers besides the metric: the result JSON's top-level keys, then each limit's `parse` or `name: value` line."""
    numbers: dict[str, float] = {}
    try:
        data = json.loads(result_text) if result_text else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key, value in data.items():
            number = _finite(value)
            if number is not None and isinstance(key, str) and _NAME.match(key) and key != loop.metric.name:
                numbers[key] = number
            if len(numbers) >= MAX_NUMBERS:
                break
    lines = stdout.splitlines()
    for name, limit in loop.guards.limits.items():
        found = _from_lines(lines, name, limit)
        if found is not None:
            numbers[name] = found
    return numbers


def _from_lines(lines: list[str], name: str, limit: Limit) -> float | None:
    """The last match in the output (like the metric): the limit's own regex, else a `name: value` line."""
    pattern = re.compile(limit.parse) if limit.parse is not None else None
    for line in reversed(lines):
        if pattern is not None:
            found = pattern.findall(line)
            if found:
                last = found[-1]
                try:
                    return _finite(float(last[0] if isinstance(last, tuple) else last))
                except ValueError:
                    return None
        elif name in line:
            match = _LINE.fullmatch(line)
            if match is not None and match.group(1) == name:
                return _finite(float(match.group(2)))
    return None


def numbers(measurement: Measurement) -> dict[str, float]:
    """The mean over seeds of each reported number (as the metric is the mean); odd names are dropped."""
    values: dict[str, list[float]] = {}
    for seed in measurement.seeds:
        for name, value in seed.metrics.items():
            number = _finite(value)
            if number is None or not isinstance(name, str) or not _NAME.match(name):
                continue
            if name in values or len(values) < MAX_NUMBERS:
                values.setdefault(name, []).append(number)
    return {name: sum(v) / len(v) for name, v in sorted(values.items())}


def recorded(measurement: Measurement | None) -> dict[str, Any]:
    """What an attempt's extra holds of the numbers: {"metrics": {...}}, or nothing."""
    found = numbers(measurement) if measurement is not None else {}
    return {"metrics": found} if found else {}


def of(attempt: Attempt | None) -> dict[str, float]:
    """The numbers an attempt recorded."""
    stored = attempt.extra.get("metrics") if attempt is not None else None
    if not isinstance(stored, dict):
        return {}
    return {k: v for k, v in ((k, _finite(v)) for k, v in stored.items()) if v is not None}


# -- limits (pure) ---------------------------------------------------------------------------------
def _change(amount: str | float, reference: float) -> tuple[float, str]:
    """A change bound as a number in the value's units, and how it reads."""
    if isinstance(amount, str):
        share = float(amount.rstrip("%")) / 100
        return abs(reference) * share, f"{amount} of {reference:g}"
    return float(amount), f"{amount:g}"


def check_limits(values: Mapping[str, float], limits: Mapping[str, Limit],
                 best: Mapping[str, float] | None) -> list[Outcome]:
    """Every limit judged; best is the best kept state's numbers (None for the baseline, its own reference)."""
    outcomes = []
    for name, limit in limits.items():
        value = values.get(name)
        if value is None:
            outcomes.append(Outcome(name, "limit", False, f"the evaluation reported no `{name}` (limit `{name}`): "
                                    "print `name: value`, write it to $AUTORESEARCH_RESULT, or give the "
                                    "limit a `parse:` regex"))
            continue
        reference = value if best is None else best.get(name)
        bounds: list[tuple[bool, str]] = []
        if limit.max is not None:
            bounds.append((value <= limit.max, f"≤ {limit.max:g}"))
        if limit.min is not None:
            bounds.append((value >= limit.min, f"≥ {limit.min:g}"))
        for amount, sign in ((limit.max_increase, 1), (limit.max_decrease, -1)):
            if amount is None:
                continue
            if reference is None:
                bounds.append((False, f"{'+' if sign > 0 else '-'}? (the best kept state has no `{name}`)"))
                continue
            step, text = _change(amount, reference)
            bound = reference + sign * step
            ok = value <= bound if sign > 0 else value >= bound
            bounds.append((ok, f"{'≤' if sign > 0 else '≥'} {bound:g} ({'+' if sign > 0 else '-'}{text})"))
        failed = [text for ok, text in bounds if not ok]
        shown = ", ".join(text for _, text in bounds)
        reason = f"limit `{name}`: {value:g} is not {' and '.join(failed)}" if failed else ""
        outcomes.append(Outcome(name, "limit", not failed, reason, value=value, limit=shown))
    return outcomes


def judge_limits(values: Mapping[str, float], limits: Mapping[str, Limit],
                 best: Mapping[str, float] | None) -> list[Violation]:
    """The limits the values break (a missing value breaks its limit)."""
    return [o for o in check_limits(values, limits, best) if not o.ok]


# -- checks (they run the agent's code, in the evaluation's sandbox) -------------------------------
def run_checks(guards: Guards, sandbox: Sandbox, tree: Path) -> list[Outcome]:
    """Run each check in tree (read-only, no network, no secrets), stopping at the first that fails."""
    outcomes: list[Outcome] = []
    for check in guards.checks:
        scratch = Path(tempfile.mkdtemp(prefix=f"arl-check-{check.name}-"))
        started = time.monotonic()
        try:
            env = {"AUTORESEARCH_SCRATCH": str(scratch), "AUTORESEARCH_CHECK": check.name}
            run = sandbox.run(["/bin/sh", "-c", check.command], cwd=tree,
                              policy=policy.evaluation_policy(tree, scratch, env), timeout=check.timeout)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        seconds = round(time.monotonic() - started, 3)
        log = run.tail()[-LOG_TAIL_CHARS:]
        if run.timed_out:
            why = f"timed out after {check.timeout:g}s"
        elif run.returncode != 0:
            note = limit_note(run)
            why = f"exited with status {run.returncode}" + (f" ({note})" if note else "")
        else:
            outcomes.append(Outcome(check.name, "check", True, seconds=seconds, log=log))
            continue
        tail = log.strip()[-REASON_TAIL_CHARS:]
        outcomes.append(Outcome(check.name, "check", False, f"check `{check.name}` {why}; its output ends:\n{tail}",
                                seconds=seconds, log=log))
        break
    return outcomes


@dataclass(frozen=True)
class Judgement:
    """Every guard's outcome for one measured tree."""

    outcomes: list[Outcome]

    @property
    def ok(self) -> bool:
        """Whether every guard passed."""
        return all(o.ok for o in self.outcomes)

    @property
    def reason(self) -> str:
        """The first failure's reason."""
        return next((o.reason for o in self.outcomes if not o.ok), "")

    @property
    def failed(self) -> str:
        """The first failed guard's name."""
        return next((o.name for o in self.outcomes if not o.ok), "")

    @property
    def seconds(self) -> float:
        """Time spent in checks."""
        return round(sum(o.seconds for o in self.outcomes), 3)

    def extra(self) -> dict[str, Any]:
        """For Attempt.extra: each guard that ran, and the checks' time apart from the evaluation's."""
        return {"guards": [o.as_dict() for o in self.outcomes], "guard_s": self.seconds}


def judge(loop: Loop, sandbox: Sandbox, tree: Path, measurement: Measurement,
          best: Attempt | None) -> Judgement:
    """Limits first (free), then the checks, which run only when every limit holds.

    best None: a baseline, which must report every limited number and pass every check, but has no
    state to compare changes with.
    """
    guards = loop.guards
    outcomes = check_limits(numbers(measurement), guards.limits, None if best is None else of(best))
    if all(o.ok for o in outcomes):
        outcomes += run_checks(guards, sandbox, tree)
    return Judgement(outcomes)


def unverified(best: Attempt | None, guards: Guards) -> bool:
    """Whether the best kept state was never held to today's guards (they were added, or a bot change made it)."""
    if best is None or not guards.active:
        return False
    entries = best.extra.get("guards")
    passed = {e.get("name") for e in entries if isinstance(e, dict) and e.get("ok") is True} \
        if isinstance(entries, list) else set()
    return any(name not in passed for name in (*(c.name for c in guards.checks), *guards.limits))


def rules(guards: Guards) -> list[dict[str, str]]:
    """The guards in force as plain data (kind, name, rule): for the prompt and the run_start note (the PR body)."""
    out = [{"kind": "check", "name": c.name, "rule": c.command} for c in guards.checks]
    for name, limit in guards.limits.items():
        parts = []
        if limit.max is not None:
            parts.append(f"at most {limit.max:g}")
        if limit.min is not None:
            parts.append(f"at least {limit.min:g}")
        if limit.max_increase is not None:
            parts.append(f"no more than {_amount_text(limit.max_increase)} above the best kept state's")
        if limit.max_decrease is not None:
            parts.append(f"no more than {_amount_text(limit.max_decrease)} below the best kept state's")
        out.append({"kind": "limit", "name": name, "rule": ", ".join(parts)})
    return out


def in_force(guards: Guards) -> list[str]:
    """The guards as one line each, for the agent's prompt."""
    return [f"check `{r['name']}`: `{r['rule']}` must exit 0" if r["kind"] == "check"
            else f"limit `{r['name']}`: {r['rule']}" for r in rules(guards)]


def _amount_text(amount: str | float) -> str:
    return amount if isinstance(amount, str) else f"{amount:g}"


def summary(attempt: Attempt) -> str:
    """One line for an attempt's guards: `tests ok 1.2s, peak_vram_mb 39000 (≤ 40000)`; empty when none ran."""
    entries = attempt.extra.get("guards")
    if not isinstance(entries, list) or not entries:
        return ""
    parts = []
    for e in entries:
        if not isinstance(e, dict):
            continue
        mark = "ok" if e.get("ok") is True else "FAILED"
        if e.get("kind") == "limit":
            value = e.get("value")
            shown = f"{value:g}" if isinstance(value, int | float) else "missing"
            parts.append(f"{e.get('name')} {shown} ({e.get('limit', '')}) {mark}")
        else:
            seconds = e.get("seconds")
            parts.append(f"{e.get('name')} {mark}" + (f" {seconds:.1f}s" if isinstance(seconds, int | float) else ""))
    return ", ".join(parts)


# -- the PR body ---------------------------------------------------------------------------------------
def _latest_rules(record: Record) -> list[dict[str, str]] | None:
    """The guards in force at the latest run's start (None: no run noted them)."""
    for note in reversed(record.notes):
        found = note.data.get("guards") if note.kind == "run_start" else None
        if isinstance(found, list):
            return [r for r in found if isinstance(r, dict)]
    return None


def pr_section(record: Record) -> list[str]:
    """Markdown lines: the guards in force, and for each recent keep which guards ran and their values."""
    in_force_now = _latest_rules(record) or []
    kept = [a for a in record.kept if summary(a)][-KEPT_SHOWN:]
    turned_down = sum(1 for a in record.attempts if a.status == "discard" and failed_guard(a))
    if not in_force_now and not kept:
        return []
    out = ["", "### Guards", ""]
    if in_force_now:
        out += ["A keep must also pass these:", "", "| guard | rule |", "| --- | --- |"]
        for r in in_force_now:
            kind, name, rule = str(r.get("kind", "")), str(r.get("name", "")), str(r.get("rule", ""))
            shown = f"{code_span(rule, in_table=True)} exits 0" if kind == "check" else table_cell(rule, 120)
            out.append(f"| {kind} {code_span(name, in_table=True)} | {shown} |")
        out.append("")
    if turned_down:
        out += [f"{turned_down} would-be keep{'s' if turned_down > 1 else ''} turned down by a guard.", ""]
    if kept:
        out += ["| # | status | guards (value, bound) | checks time |", "| --- | --- | --- | --- |"]
        out += [f"| {a.experiment} | {a.status} | {table_cell(summary(a), 300)} | "
                f"{_finite(a.extra.get('guard_s')) or 0.0:.1f}s |" for a in reversed(kept)]
    return out


def failed_guard(attempt: Attempt) -> str:
    """The name of the guard that turned the attempt down (or stopped its baseline); empty when none did."""
    entries = attempt.extra.get("guards")
    if not isinstance(entries, list):
        return ""
    return next((str(e.get("name", "?")) for e in entries if isinstance(e, dict) and e.get("ok") is False), "")

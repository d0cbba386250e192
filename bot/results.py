"""Print a loop's history from the record: a table for people; JSON, TSV and autoresearch's TSV for programs."""

from __future__ import annotations

import dataclasses
import json

from . import guards, workers_view
from .record import Attempt, Meta, Note, Record
from .sanitize import terminal_text
from .views import fmt

COLUMNS = ("experiment", "status", "metric", "delta", "sha", "cost_usd", "description", "reason", "guard_s", "numbers")


def numbers_text(attempt: Attempt) -> str:
    """The other numbers the evaluation reported, as `name=value` pairs (names are checked when measured)."""
    return " ".join(f"{name}={value:g}" for name, value in guards.of(attempt).items())


def guard_seconds(attempt: Attempt) -> float | None:
    """Time spent in the guards' checks, apart from the evaluation's; None when no guard ran."""
    value = attempt.extra.get("guard_s")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _rounded(delta: float | None) -> float | None:
    """A difference of two floats to 12 significant digits: -0.03816, not -0.03815999999999997."""
    return None if delta is None else float(f"{delta:.12g}")


def as_rows(record: Record) -> list[dict[str, object]]:
    """One flat dict per attempt with the columns people ask for first."""
    rows: list[dict[str, object]] = []
    for a in record.attempts:
        rows.append({"experiment": a.experiment, "status": a.status, "metric": a.metric,
                     "delta": _rounded(a.delta), "sha": a.sha or "", "cost_usd": a.cost_usd,
                     "description": a.description, "reason": a.reason, "guard_s": guard_seconds(a),
                     "numbers": numbers_text(a)})
    return rows


def as_json(record: Record) -> str:
    """Everything in the record: meta, attempts with every field, notes."""
    return json.dumps({
        "meta": dataclasses.asdict(record.meta),
        "attempts": [dataclasses.asdict(a) for a in record.attempts],
        "notes": [dataclasses.asdict(n) for n in record.notes],
    }, indent=2, sort_keys=True)


def _flat(text: object) -> str:
    """Agent text as one field: tabs, newlines and anything a terminal acts on become spaces or go."""
    return " ".join(terminal_text(str(text)).split())


def as_tsv(record: Record) -> str:
    """Tab-separated, one attempt a line, with a header; tabs and newlines in text become spaces."""
    lines = ["\t".join(COLUMNS)]
    for row in as_rows(record):
        lines.append("\t".join("" if row[c] is None else _flat(row[c]) for c in COLUMNS))
    return "\n".join(lines) + "\n"


def as_table(record: Record) -> str:
    """A fixed-width table for a terminal: every text from the record printed inert, one line each."""
    header = f"{'#':>5}  {'status':<11} {'metric':>12} {'delta':>11}  {'commit':<8}  description"
    meta = record.meta
    lines = [_flat(f"loop {meta.loop}: {meta.metric} ({meta.goal}), base {meta.base_branch}@{meta.base_sha[:8]}"),
             header, "-" * len(header)]
    for a in record.attempts:
        delta = f"{a.delta:+.4g}" if a.delta is not None and a.status != "baseline" else ""
        text = a.description if a.status not in ("crash", "invalid", "interrupted") else \
            f"{a.description} [{a.reason}]"
        lines.append(f"{a.experiment:>5}  {_flat(a.status):<11} {fmt(a.metric):>12} {delta:>11}  "
                     f"{_flat((a.sha or '')[:8]):<8}  {_flat(text)[:90]}")
        details = [f"numbers: {numbers_text(a)}"] if guards.of(a) else []
        if guards.summary(a):
            details.append(f"guards: {guards.summary(a)} (checks {guard_seconds(a) or 0.0:.1f}s, "
                           f"evaluation {a.eval_s:.1f}s)")
        if details:
            lines.append(" " * 7 + _flat("; ".join(details)))
    best = record.best
    counts = record.counts()
    lines.append("-" * len(header))
    lines.append(f"best {fmt(best.metric if best else None)}; " +
                 ", ".join(f"{n} {s}" for s, n in counts.items() if n) +
                 f"; cost ${record.total_cost:.2f}")
    if record.stop_reason:
        lines.append(f"last run stopped: {_flat(record.stop_reason)}")
    workers = workers_view.text(record)  # with several workers or device slots: what they got through
    if workers:
        lines.append(f"workers: {_flat(workers)}")
    return "\n".join(lines) + "\n"


def from_json(text: str) -> Record:
    """Read back what `as_json` wrote."""
    data = json.loads(text)
    return Record(meta=Meta(**data["meta"]), attempts=[Attempt.from_dict(a) for a in data["attempts"]],
                  notes=[Note.from_dict(n) for n in data["notes"]])


def parse_tsv(text: str) -> list[dict[str, object]]:
    """Read back what `as_tsv` wrote: numbers as numbers, empty cells as None."""
    lines = text.rstrip("\n").split("\n")
    header = lines[0].split("\t")
    numeric = {"experiment": int, "metric": float, "delta": float, "cost_usd": float, "guard_s": float}
    rows: list[dict[str, object]] = []
    for line in lines[1:]:
        row: dict[str, object] = {}
        for name, value in zip(header, line.split("\t"), strict=True):
            convert = numeric.get(name)
            row[name] = (None if value == "" else convert(value)) if convert else value
        rows.append(row)
    return rows


# karpathy/autoresearch's results.tsv (program.md, "Logging results"): a header, then
# commit (7 chars), the metric (6 decimals, 0.000000 for crashes), memory_gb (.1f, 0.0 for crashes),
# status (keep | discard | crash) and a short description. Our statuses map onto its three:
KARPATHY_STATUS = {"baseline": "keep",  # autoresearch logs its baseline as a keep named "baseline"
                   "keep": "keep", "discard": "discard",
                   "crash": "crash", "invalid": "crash",  # no metric: its analysis skips crash rows
                   "interrupted": "crash"}
NO_COMMIT = "0000000"  # discarded attempts never became commits; their diffs are in the record


def memory_gb(attempt: Attempt) -> float:
    """Peak accelerator memory, when the evaluation reported it (memory_gb, or peak_vram_mb in MB)."""
    reported = guards.of(attempt)  # the evaluation's other numbers; older records kept them at the top of extra
    for key, scale in (("memory_gb", 1.0), ("peak_vram_mb", 1 / 1024)):
        value = reported.get(key, attempt.extra.get(key))
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value) * scale
    return 0.0


def as_karpathy(record: Record) -> str:
    """The history as autoresearch's results.tsv, so its analysis notebook reads our loops too."""
    lines = ["\t".join(("commit", record.meta.metric, "memory_gb", "status", "description"))]
    for a in record.attempts:
        status = KARPATHY_STATUS.get(a.status, "crash")
        measured = status != "crash" and a.metric is not None
        text = a.description or a.status
        if status == "crash":
            # Its convention: the reason in parentheses, e.g. "double model width (OOM)".
            text = f"{text} ({a.status}: {a.reason})" if a.reason else f"{text} ({a.status})"
        lines.append("\t".join((
            (a.sha or NO_COMMIT)[:7],
            f"{a.metric:.6f}" if measured and a.metric is not None else "0.000000",
            f"{memory_gb(a):.1f}" if measured else "0.0",
            status,
            _flat(text),  # one line, no tabs: a tab would shift every later column
        )))
    return "\n".join(lines) + "\n"


def no_diff(record: Record, experiment: int) -> str:
    """Why an experiment has no diff to print (`results --diff N`)."""
    attempt = record.attempt(experiment)
    if attempt is not None and attempt.status == "baseline":
        return (f"experiment {experiment} is a baseline: it measured the branch as it was "
                f"({(attempt.sha or '')[:8]}) and changed nothing")
    status = attempt.status if attempt is not None else "unknown"
    return f"experiment {experiment} ({status}) recorded no change: {attempt.reason if attempt else ''}".rstrip(": ")

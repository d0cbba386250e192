"""Print a loop's history from the record: a table for people, JSON and TSV for programs."""

from __future__ import annotations

import dataclasses
import json

from .prbody import fmt
from .record import Record

COLUMNS = ("experiment", "status", "metric", "delta", "sha", "cost_usd", "description", "reason")


def as_rows(record: Record) -> list[dict[str, object]]:
    """One flat dict per attempt with the columns people ask for first."""
    rows: list[dict[str, object]] = []
    for a in record.attempts:
        rows.append({"experiment": a.experiment, "status": a.status, "metric": a.metric,
                     "delta": a.delta, "sha": a.sha or "", "cost_usd": a.cost_usd,
                     "description": a.description, "reason": a.reason})
    return rows


def as_json(record: Record) -> str:
    """Everything in the record: meta, attempts with every field, notes."""
    return json.dumps({
        "meta": dataclasses.asdict(record.meta),
        "attempts": [dataclasses.asdict(a) for a in record.attempts],
        "notes": [dataclasses.asdict(n) for n in record.notes],
    }, indent=2, sort_keys=True)


def as_tsv(record: Record) -> str:
    """Tab-separated, one attempt a line, with a header; tabs and newlines in text become spaces."""
    lines = ["\t".join(COLUMNS)]
    for row in as_rows(record):
        lines.append("\t".join("" if row[c] is None else " ".join(str(row[c]).split()) for c in COLUMNS))
    return "\n".join(lines) + "\n"


def as_table(record: Record) -> str:
    """A fixed-width table for a terminal."""
    header = f"{'#':>5}  {'status':<11} {'metric':>12} {'delta':>11}  {'commit':<8}  description"
    lines = [f"loop {record.meta.loop}: {record.meta.metric} ({record.meta.goal}), "
             f"base {record.meta.base_branch}@{record.meta.base_sha[:8]}", header, "-" * len(header)]
    for a in record.attempts:
        delta = f"{a.delta:+.4g}" if a.delta is not None and a.status != "baseline" else ""
        text = a.description if a.status not in ("crash", "invalid", "interrupted") else \
            f"{a.description} [{a.reason}]"
        lines.append(f"{a.experiment:>5}  {a.status:<11} {fmt(a.metric):>12} {delta:>11}  "
                     f"{(a.sha or '')[:8]:<8}  {' '.join(text.split())[:90]}")
    best = record.best
    counts = record.counts()
    lines.append("-" * len(header))
    lines.append(f"best {fmt(best.metric if best else None)}; " +
                 ", ".join(f"{n} {s}" for s, n in counts.items() if n) +
                 f"; cost ${record.total_cost:.2f}")
    if record.stop_reason:
        lines.append(f"last run stopped: {record.stop_reason}")
    return "\n".join(lines) + "\n"

"""Per-sample results: merge them over seeds, keep a bounded worst-first list in the record, show them.

A sample is a dict `{"id": str, "score": float | None, "error": str, "extra": {...}}` whose score
points the metric's way (for `minimize`, a higher sample score is worse). The record keeps, for each
measured attempt, the worst samples and how many there were: every kept state keeps up to KEPT_LIMIT
samples (enough to follow one sample across the loop), other attempts OTHER_LIMIT. The record stays
the truth on a fresh clone without re-running a GPU or a device farm; `arl-bot diagnose --eval`
re-evaluates the checkout when the full list is wanted.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

from . import noise
from .record import Attempt, Record
from .sanitize import one_line

KEPT_LIMIT = 500  # samples stored for the baseline and each keep
OTHER_LIMIT = 30  # samples stored for discards and crashes
PROMPT_TOP = 5  # worst samples of the current best shown to the agent
ID_CHARS = 200
ERROR_CHARS = 300
EXTRA_CHARS = 400


def merge(per_seed: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One entry per sample id: the mean score over the seeds that scored it, the first error."""
    order: list[str] = []
    scores: dict[str, list[float]] = {}
    first: dict[str, dict[str, Any]] = {}
    for samples in per_seed:
        for sample in samples:
            key = str(sample.get("id", ""))
            if key not in first:
                order.append(key)
                first[key] = dict(sample)
                scores[key] = []
            score = sample.get("score")
            if isinstance(score, int | float) and not isinstance(score, bool) and math.isfinite(score):
                scores[key].append(float(score))
            if sample.get("error") and not first[key].get("error"):
                first[key]["error"] = sample["error"]
    merged = []
    for key in order:
        item = first[key]
        item["score"] = statistics.fmean(scores[key]) if scores[key] else None
        merged.append(item)
    return merged


def worst_first(samples: Iterable[dict[str, Any]], goal: str) -> list[dict[str, Any]]:
    """Samples sorted worst first; a sample with no score (it failed) counts as worst of all."""
    def key(sample: dict[str, Any]) -> tuple[int, float]:
        score = sample.get("score")
        if not isinstance(score, int | float) or isinstance(score, bool):
            return (0, 0.0)
        return (1, noise.sign(goal) * float(score))  # the worse, the smaller
    return sorted(samples, key=key)


def bounded(samples: Sequence[dict[str, Any]], goal: str, limit: int) -> dict[str, Any]:
    """What the record stores: the total and the worst `limit` samples, each trimmed."""
    worst = worst_first(samples, goal)[:limit]
    return {"total": len(samples), "worst": [_trim(s) for s in worst]}


def _trim(sample: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": str(sample.get("id", ""))[:ID_CHARS], "score": sample.get("score")}
    if sample.get("error"):
        out["error"] = str(sample["error"])[:ERROR_CHARS]
    extra = sample.get("extra")
    if isinstance(extra, dict) and extra:
        text = json.dumps(extra, default=str, sort_keys=True)
        out["extra"] = extra if len(text) <= EXTRA_CHARS else {"truncated": text[:EXTRA_CHARS]}
    return out


def stored(attempt: Attempt) -> list[dict[str, Any]]:
    """The samples an attempt's record entry holds, worst first."""
    data = attempt.extra.get("samples")
    return list(data.get("worst", [])) if isinstance(data, dict) else []


def latest_with_samples(record: Record, experiment: int | None = None) -> Attempt | None:
    """The attempt to diagnose: the one asked for, else the best state, else the latest that has samples."""
    if experiment is not None:
        return record.attempt(experiment)
    best = record.best
    if best is not None and stored(best):
        return best
    return next((a for a in reversed(record.attempts) if stored(a)), None)


def prompt_section(record: Record, top: int = PROMPT_TOP) -> str:
    """The agent's view: where the current best does worst (validation only; never the holdout)."""
    best = record.best
    if best is None:
        return ""
    samples = stored(best)[:top]
    if not samples:
        return ""
    total = best.extra.get("samples", {}).get("total", len(samples))
    lines = [f"## Worst samples of the current best (experiment {best.experiment}, {total} samples)", ""]
    for sample in samples:
        error = f" — {_one_line(sample['error'], 160)}" if sample.get("error") else ""
        lines.append(f"- `{_one_line(sample['id'], 80)}`: {_score(sample.get('score'))}{error}")
    return "\n".join(lines)


def render_table(samples: Sequence[dict[str, Any]], title: str) -> str:
    """A terminal table of samples, in the order given."""
    lines = [title, f"{'rank':>4}  {'score':>12}  {'sample':<40}  error", "-" * 80]
    for rank, sample in enumerate(samples, 1):
        lines.append(f"{rank:>4}  {_score(sample.get('score')):>12}  {_one_line(sample.get('id', ''), 40):<40}  "
                     f"{_one_line(sample.get('error') or '', 60)}")
    return "\n".join(lines) + "\n"


def history(record: Record, sample_id: str) -> list[dict[str, Any]]:
    """One sample across the loop: every attempt whose stored samples include it."""
    rows = []
    for attempt in record.attempts:
        for sample in stored(attempt):
            if sample.get("id") == sample_id:
                rows.append({"experiment": attempt.experiment, "status": attempt.status,
                             "score": sample.get("score"), "error": sample.get("error", "")})
                break
    return rows


def _score(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, int | float) and not isinstance(value, bool) else "failed"


def _one_line(text: Any, limit: int) -> str:
    # Sample ids and errors come from the evaluation, which runs the agent's code: clean them like any
    # outside text before a prompt or a terminal shows them.
    return one_line(str(text), limit)

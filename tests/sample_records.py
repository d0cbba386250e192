"""Deterministic records for rendering tests: a short readable loop and a 10,000-attempt one."""

from __future__ import annotations

import math

from arl_bot.record import KEPT, Attempt, Meta, Note, Record

META = Meta(loop="curve", base_branch="main", base_sha="b" * 40, created_at="2025-01-01T00:00:00.000000Z",
            goal="minimize", metric="val_loss")


def _sha(n: int) -> str:
    return f"{n:07x}".rjust(40, "c")


def _at(minute: int) -> str:
    return f"2025-01-01T{minute // 60 % 24:02d}:{minute % 60:02d}:00.000000Z"


def small_record() -> Record:
    """Twelve attempts with every status, two seeds each, and a description that tries to escape."""
    plan = [  # (status, metric, description, reason)
        ("baseline", 0.0500, "baseline", ""),
        ("discard", 0.0512, "lr: 0.1 -> 0.3", "val_loss 0.0512 does not beat 0.05"),
        ("keep", 0.0410, "degree: 3 -> 4", "val_loss 0.041 beats 0.05"),
        ("crash", None, "steps: 200 -> 3000", "timed out after 60s"),
        ("keep", 0.0320, "l2: 0.01 -> 0.003", "val_loss 0.032 beats 0.041"),
        ("invalid", None, "edit eval/run.py", "changed protected paths: eval/run.py"),
        ("discard", 0.0900, "degree: 4 -> 6 | <b>bold</b>", "val_loss 0.09 does not beat 0.032"),
        ("crash", None, "lr: 0.1 -> 3.0", "exit status 1"),
        ("keep", 0.0251, "degree: 4 -> 5", "val_loss 0.0251 beats 0.032"),
        ("discard", 0.0262, "l2: 0.003 -> 0.001", "val_loss 0.0262 does not beat 0.0251"),
        ("discard", 0.0255, "steps: 200 -> 300\n::error::injected", "val_loss 0.0255 does not beat 0.0251"),
        ("keep", 0.0240, "lr: 0.1 -> 0.05", "val_loss 0.024 beats 0.0251"),
    ]
    attempts: list[Attempt] = []
    best: float | None = None
    for n, (status, metric, description, reason) in enumerate(plan):
        seeds: dict[str, float | None] = {}
        if metric is not None:
            seeds = {"1": round(metric * 0.98, 6), "2": round(metric * 1.02, 6)}
        attempts.append(Attempt(
            experiment=n, status=status, metric=metric, description=description,  # type: ignore[arg-type]
            parent=_sha(max(0, n - 1)), sha=_sha(n) if status in ("baseline", "keep") else None,
            best_before=best, seeds=seeds, reason=reason, mode="baseline" if n == 0 else "improve",
            cost_usd=0.0 if n == 0 else 0.05 + 0.01 * (n % 3), tokens_in=0 if n == 0 else 1200 + 10 * n,
            tokens_out=0 if n == 0 else 300 + n, started_at=_at(2 * n), agent_s=0.0 if n == 0 else 40.0,
            eval_s=0.0 if metric is None else 20.0, run_id="run-1" if n < 8 else "run-2",
            extra={"holdout": {"metric": round(metric * 1.1, 6)}} if status in KEPT and metric else {},
        ))
        if status in ("baseline", "keep"):
            best = metric
    notes = [
        Note(kind="run_start", at=_at(0), data={"run_id": "run-1"}),
        Note(kind="run_end", at=_at(15), data={"run_id": "run-1", "reason": "experiments: ran 7 of 7"}),
        Note(kind="run_start", at=_at(16), data={"run_id": "run-2"}),
        Note(kind="run_end", at=_at(24), data={"run_id": "run-2", "reason": "experiments: ran 4 of 4"}),
    ]
    return Record(meta=META, attempts=attempts, notes=notes)


def long_record(n: int = 10_000) -> Record:
    """A loop that ran n attempts: slow improvement, noise, a crash every 13th, long descriptions."""
    attempts = [Attempt(experiment=0, status="baseline", metric=1.0, description="baseline",
                        parent=_sha(0), sha=_sha(0), seeds={"1": 1.0}, started_at=_at(0))]
    best = 1.0
    for i in range(1, n):
        # A deterministic wobble (no random module: its stream may change between Python versions).
        wobble = math.sin(i * 12.9898) * 0.5 + 0.5
        metric = None if i % 13 == 0 else round(best * (0.998 + 0.05 * wobble), 6)
        if metric is None:
            status, reason = "crash", "timed out after 600s"
        elif metric < best:
            status, reason = "keep", f"val_loss {metric:.6g} beats {best:.6g}"
        else:
            status, reason = "discard", f"val_loss {metric:.6g} does not beat {best:.6g}"
        attempts.append(Attempt(
            experiment=i, status=status, metric=metric,  # type: ignore[arg-type]
            description=f"experiment {i}: " + "try a slightly different schedule and width " * 3,
            parent=_sha(i - 1), sha=_sha(i) if status == "keep" else None, best_before=best,
            seeds={"1": metric}, reason=reason, cost_usd=0.02, tokens_in=900, tokens_out=200,
            started_at=_at(i), agent_s=30.0, eval_s=30.0, run_id=f"run-{i // 100}",
        ))
        if status == "keep" and metric is not None:
            best = metric
    notes = [Note(kind="run_start", at=_at(0), data={"run_id": "run-0"})]
    return Record(meta=META, attempts=attempts, notes=notes)

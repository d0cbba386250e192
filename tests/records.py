"""Synthetic records for tests and benchmarks: long loops without running them."""

from __future__ import annotations

import random

from arl_bot.record import Attempt, Meta, Record

IDEAS = ["raise the learning rate", "lower the learning rate", "add a layer", "remove dropout",
         "switch to GELU", "use cosine schedule", "double the batch size", "add weight decay",
         "tie embeddings", "warm up for 200 steps", "label smoothing 0.1", "larger context window"]


def synthetic_record(n: int, *, seed: int = 0, loop: str = "demo") -> Record:
    """A record of n attempts after a baseline: mostly discards, some keeps, crashes and invalids."""
    rng = random.Random(seed)
    record = Record(meta=Meta(loop=loop, base_branch="main", base_sha="0" * 40, created_at="2024-01-01T00:00:00Z",
                              goal="minimize", metric="val_bpb"))
    best = 2.0
    record.attempts.append(Attempt(experiment=0, status="baseline", metric=best, description="baseline",
                                   parent="0" * 40, sha="0" * 40, mode="baseline"))
    for number in range(1, n + 1):
        idea = f"{rng.choice(IDEAS)} (variant {rng.randrange(40)})"
        roll = rng.random()
        mode = "explore" if number % 5 == 0 else "improve"
        if roll < 0.05:
            metric = best * (1 - rng.uniform(0.001, 0.02))
            attempt = Attempt(experiment=number, status="keep", metric=metric, description=idea, parent="a" * 40,
                              sha=f"{number:040x}", best_before=best, mode=mode)
            best = metric
        elif roll < 0.8:
            attempt = Attempt(experiment=number, status="discard", metric=best * (1 + rng.uniform(0, 0.05)),
                              description=idea, parent="a" * 40, best_before=best, mode=mode,
                              reason="val_bpb does not beat the best")
        elif roll < 0.95:
            attempt = Attempt(experiment=number, status="crash", metric=None, description=idea, parent="a" * 40,
                              best_before=best, mode=mode,
                              reason="evaluation exited with status 1: CUDA out of memory " + "x" * 300)
        else:
            attempt = Attempt(experiment=number, status="invalid", metric=None, description=idea,
                              parent="a" * 40, best_before=best, mode=mode,
                              reason="changed protected paths: eval/run.py")
        record.attempts.append(attempt)
    return record

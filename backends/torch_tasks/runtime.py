"""What every torch task shares at training time: device, seed, time budget, and reporting the score."""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import torch

from . import BUDGET_ENV, DEVICE_ENV, RESULT_ENV, SEED_ENV, SPLIT_ENV
from .data import Prepared, TaskError

DEFAULT_SEED = 42
_STARTED = time.monotonic()  # process start, near enough: the report says how long the run took


def device() -> torch.device:
    """The device to train on: $ARL_TASK_DEVICE, or CUDA when present, else the CPU."""
    wanted = os.environ.get(DEVICE_ENV, "auto").strip() or "auto"
    if wanted == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if wanted.startswith("cuda") and not torch.cuda.is_available():
        raise TaskError(f"${DEVICE_ENV}={wanted} but this torch sees no CUDA device",
                            hint="set `device: auto` in evaluate.options, or install a CUDA build of torch")
    return torch.device(wanted)


def seed() -> int:
    """This evaluation's seed ($AUTORESEARCH_SEED, default 42)."""
    return int(os.environ.get(SEED_ENV, DEFAULT_SEED))


def seed_everything(value: int | None = None) -> int:
    """Seed Python's and torch's generators (CPU and CUDA) with value or this evaluation's seed."""
    chosen = seed() if value is None else value
    random.seed(chosen)
    torch.manual_seed(chosen)  # also seeds every CUDA device
    return chosen


def time_budget(default: float) -> float:
    """Seconds of training each experiment gets: $ARL_TASK_TIME_BUDGET, else the task's default."""
    return float(os.environ.get(BUDGET_ENV, default))


class Clock:
    """Counts training time against the fixed budget; evaluation after it is not counted."""

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self.start = time.monotonic()

    @property
    def elapsed(self) -> float:
        """Seconds since the clock started."""
        return time.monotonic() - self.start

    @property
    def remaining(self) -> float:
        """Seconds left, never below zero."""
        return max(0.0, self.budget - self.elapsed)

    def done(self) -> bool:
        """Whether the budget is spent."""
        return self.elapsed >= self.budget


def eval_split() -> str:
    """The split the score is computed on: val, unless the evaluation is a holdout run on test."""
    split = os.environ.get(SPLIT_ENV, "val")
    if split not in ("val", "test"):
        raise TaskError(f"${SPLIT_ENV}={split!r} is not a split the score can be computed on",
                            hint="use val or test")
    return split


def report(task: str, name: str, value: float, data: Prepared, extra: dict[str, Any],
           samples: list[dict[str, Any]]) -> None:
    """Write the score and per-sample results where the evaluator reads them; print the score for a person."""
    result = {
        "task": task, "metric": name, "value": value, "data_sha256": data.sha256, "data": data.source,
        "seed": seed(), "elapsed_s": round(time.monotonic() - _STARTED, 3), **extra, "samples": samples,
    }
    target = os.environ.get(RESULT_ENV)
    if target:
        Path(target).write_text(json.dumps(result) + "\n", encoding="utf-8")
    shown = f"{value:.6f}" if math.isfinite(value) else str(value)
    print(f"{name}: {shown}")
    print(f"data: {data.source} sha256:{data.sha256[:16]}")
    for key, number in extra.items():
        print(f"{key}: {number}")
    sys.stdout.flush()

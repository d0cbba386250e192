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

from . import BUDGET_BY_ENV, BUDGET_ENV, DEVICE_ENV, RESULT_ENV, SEED_ENV, SPLIT_ENV, STEPS_ENV
from .data import Prepared, TaskError

DEFAULT_SEED = 42
_STARTED = time.monotonic()  # process start, near enough: the report says how long the run took
BUDGET_KINDS = ("auto", "time", "steps")
_clocks: list[Clock] = []  # every clock this process made: the report says how much training the last one saw


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


def step_budget(default: int) -> int:
    """Training steps each experiment gets when budgeted by steps: $ARL_TASK_STEPS, else the task's default."""
    return int(os.environ.get(STEPS_ENV, default))


def budget_by() -> str:
    """time or steps: $ARL_TASK_BUDGET_BY, where auto is steps on the CPU and time on CUDA.

    A CPU shared with other work trains at any speed: 20 s gave the same commit 97 to 404 steps and
    2.91 to 3.92 bits per byte, so a time budget there measures the machine, not the model. A fixed
    number of steps makes a slow machine slower, never worse.
    """
    wanted = os.environ.get(BUDGET_BY_ENV, "auto").strip() or "auto"
    if wanted not in BUDGET_KINDS:
        raise TaskError(f"${BUDGET_BY_ENV}={wanted!r} is not a kind of budget", hint="use auto, time or steps")
    if wanted == "auto":
        return "time" if device().type == "cuda" else "steps"
    return wanted


class Clock:
    """Counts training against the fixed budget, in seconds or in steps; evaluation after it is not counted.

    Each `done()` that answers False counts one step (the training loop asks once per step), so a
    script written for a time budget trains for a step budget unchanged.
    """

    def __init__(self, budget: float, steps: int | None = None) -> None:
        self.budget = budget  # seconds, when steps is None
        self.max_steps = steps  # steps, when budgeted by steps
        self.steps = 0  # steps taken so far
        self.start = time.monotonic()
        self.trained_s: float | None = None  # seconds of training, once done() first said so
        _clocks.append(self)

    @property
    def by(self) -> str:
        """time or steps: what this clock counts."""
        return "time" if self.max_steps is None else "steps"

    @property
    def elapsed(self) -> float:
        """Seconds since the clock started."""
        return time.monotonic() - self.start

    @property
    def remaining(self) -> float:
        """Seconds left, never below zero (a step budget has no end in seconds: infinity)."""
        return math.inf if self.max_steps is not None else max(0.0, self.budget - self.elapsed)

    @property
    def progress(self) -> float:
        """How much of the budget is spent, 0.0 to 1.0, in steps or seconds: for learning-rate schedules."""
        if self.max_steps is not None:
            return min(1.0, self.steps / self.max_steps)
        return min(1.0, self.elapsed / self.budget) if self.budget > 0 else 1.0

    def done(self) -> bool:
        """Whether the budget is spent; each False answer counts one step."""
        over = self.steps >= self.max_steps if self.max_steps is not None else self.elapsed >= self.budget
        if not over:
            self.steps += 1
        elif self.trained_s is None:
            self.trained_s = self.elapsed
        return over


def budget(default_time: float, default_steps: int) -> Clock:
    """The task's clock: steps on the CPU and time on CUDA unless $ARL_TASK_BUDGET_BY says otherwise."""
    if budget_by() == "steps":
        return Clock(time_budget(default_time), step_budget(default_steps))
    return Clock(time_budget(default_time))


def training() -> dict[str, Any]:
    """What the report says about the training: the last clock's kind of budget, steps and seconds."""
    if not _clocks:
        return {}
    clock = _clocks[-1]
    trained = clock.trained_s if clock.trained_s is not None else clock.elapsed
    return {"steps": clock.steps, "train_s": round(trained, 3),
            "budget_steps" if clock.max_steps is not None else "budget_s":
                clock.max_steps if clock.max_steps is not None else clock.budget}


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
        "seed": seed(), "elapsed_s": round(time.monotonic() - _STARTED, 3), **training(), **extra,
        "samples": samples,
    }
    target = os.environ.get(RESULT_ENV)
    if target:
        Path(target).write_text(json.dumps(result) + "\n", encoding="utf-8")
    shown = f"{value:.6f}" if math.isfinite(value) else str(value)
    print(f"{name}: {shown}")
    print(f"data: {data.source} sha256:{data.sha256[:16]}")
    for key, number in {**training(), **extra}.items():
        print(f"{key}: {number}")
    sys.stdout.flush()

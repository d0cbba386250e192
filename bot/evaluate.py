"""The evaluator interface, metric parsing, and measuring a tree over seeds."""

from __future__ import annotations

import json
import math
import re
import statistics
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Loop, Parse
from .registry import load_plugin
from .sandbox import Sandbox


@dataclass(frozen=True)
class SeedResult:
    """One evaluation run on one seed."""

    seed: int
    metric: float | None
    error: str = ""  # empty when the run produced a finite metric
    log: str = ""
    duration_s: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)  # other numbers the evaluation reported
    samples: list[dict[str, Any]] = field(default_factory=list)  # per-sample results, when available


@dataclass(frozen=True)
class Measurement:
    """A tree measured over all its seeds."""

    seeds: tuple[SeedResult, ...]

    @property
    def error(self) -> str:
        """The first seed's error; a crash on any seed makes the measurement a crash."""
        return next((s.error for s in self.seeds if s.error), "")

    @property
    def metric(self) -> float | None:
        """The mean over seeds, or None when any seed failed."""
        if self.error or not self.seeds:
            return None
        return statistics.fmean(s.metric for s in self.seeds if s.metric is not None)

    @property
    def per_seed(self) -> dict[str, float | None]:
        """seed -> value, as the record stores it."""
        return {str(s.seed): s.metric for s in self.seeds}

    @property
    def log(self) -> str:
        """The last seed's log tail."""
        return self.seeds[-1].log if self.seeds else ""

    @property
    def duration_s(self) -> float:
        """Total evaluation time."""
        return sum(s.duration_s for s in self.seeds)


class Evaluator(ABC):
    """Turns a working tree into a score for one seed."""

    def __init__(self, loop: Loop, sandbox: Sandbox) -> None:
        self.loop = loop
        self.sandbox = sandbox

    @abstractmethod
    def evaluate(self, tree: Path, seed: int, scratch: Path) -> SeedResult:
        """Evaluate tree with seed; scratch is an empty folder outside the tree for outputs."""


def get_evaluator(loop: Loop, sandbox: Sandbox) -> Evaluator:
    """The evaluator the loop's config asks for: `command`, or a registered/`file.py:Class` backend."""
    name = "command" if loop.evaluate.command is not None else str(loop.evaluate.backend)
    from .backends.python import is_lab_reference

    if is_lab_reference(name):  # a lab's EvalBackend file: it imports the agent's code, so never import it here
        name = "python"
    cls = load_plugin("arl_bot.evaluators", name)
    evaluator = cls(loop, sandbox)
    if not isinstance(evaluator, Evaluator):
        raise TypeError(f"{cls!r} is not an Evaluator")
    return evaluator


def measure(evaluator: Evaluator, tree: Path, seeds: list[int], scratch_root: Path) -> Measurement:
    """Evaluate every seed in order; stop at the first crash (the rest cannot rescue it)."""
    results: list[SeedResult] = []
    for seed in seeds:
        scratch = scratch_root / f"seed-{seed}"
        scratch.mkdir(parents=True, exist_ok=True)
        result = evaluator.evaluate(tree, seed, scratch)
        results.append(result)
        if result.error:
            break
    return Measurement(tuple(results))


_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf"
_NAME_VALUE = re.compile(rf"^\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*[:=]\s*({_NUMBER})\s*$", re.IGNORECASE | re.MULTILINE)


class MetricNotFound(ValueError):
    """The output had no metric where the config says to look."""


def parse_metric(stdout: str, parse: Parse, name: str, result_file: Path | None = None) -> float:
    """Read the metric from an evaluation's output as the config says; raise MetricNotFound."""
    if parse.regex is not None:
        found = re.findall(parse.regex, stdout, re.MULTILINE)
        if not found:
            raise MetricNotFound(f"no line matched the regex {parse.regex!r}")
        last = found[-1]
        return _number(last[0] if isinstance(last, tuple) else last)
    if parse.json_key is not None:
        text = ""
        if result_file is not None and result_file.exists():
            text = result_file.read_text(encoding="utf-8", errors="replace").strip()
        if not text:
            lines = [line for line in stdout.splitlines() if line.strip()]
            text = lines[-1] if lines else ""
        try:
            data = json.loads(text)
        except ValueError:
            raise MetricNotFound("the last line is not a JSON object") from None
        value: Any = data
        for part in parse.json_key.split("."):
            if not isinstance(value, dict) or part not in value:
                raise MetricNotFound(f"the JSON has no key {parse.json_key!r}")
            value = value[part]
        return _number(value)
    matches = [m for m in _NAME_VALUE.finditer(stdout) if m.group(1) == name]
    if not matches:
        raise MetricNotFound(f"no line `{name}: <number>` in the output")
    return _number(matches[-1].group(2))


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise MetricNotFound(f"{value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MetricNotFound(f"{value!r} is not a number") from None
    if math.isnan(number) or math.isinf(number):
        raise MetricNotFound(f"the metric is {number}")
    return number

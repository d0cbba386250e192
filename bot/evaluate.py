"""The evaluator interface, metric parsing, and a tree's measurement over seeds."""

from __future__ import annotations

import copy
import json
import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from . import safefile
from .config import AnyOptions, Loop, Parse, PluginOptions, plugin_options
from .noise import mean
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
        return mean([s.metric for s in self.seeds if s.metric is not None])  # ±1.7e308 seeds: no overflow

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

    # What the backend takes under `evaluate.options`, checked when the config loads and shown by
    # `arl-bot schema`; a backend that declares none takes any key (it reads `loop.evaluate.options`).
    Options: ClassVar[type[PluginOptions]] = AnyOptions
    options: PluginOptions

    def __init__(self, loop: Loop, sandbox: Sandbox) -> None:
        self.loop = loop
        self.sandbox = sandbox
        self.options = plugin_options(self.Options, loop.evaluate.options, f"loops.{loop.name}.evaluate.options")

    @abstractmethod
    def evaluate(self, tree: Path, seed: int, scratch: Path) -> SeedResult:
        """Evaluate tree with seed; scratch is an empty folder outside the tree for outputs."""

    def using(self, sandbox: Sandbox) -> Evaluator:
        """A shallow copy that runs under sandbox; self is unchanged (the measurer binds services so)."""
        bound = copy.copy(self)
        bound.sandbox = sandbox
        return bound


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


# `\d+(?:\.\d*)?`, not `\d+\.?\d*`: the latter backtracks quadratically over a long run of digits.
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf"
# Matched against one line at a time: over the whole output with MULTILINE, `^\s*` could cross newlines,
# and many empty lines made the default parse quadratic (60,000 lines: 37 s).
_NAME_VALUE = re.compile(rf"\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*[:=]\s*({_NUMBER})\s*", re.IGNORECASE)
RESULT_BYTES = 1_000_000  # a result file bigger than this is not read


class MetricNotFound(ValueError):
    """The output had no metric where the config says to look."""


def parse_metric(stdout: str, parse: Parse, name: str, result_file: Path | None = None) -> float:
    """Read the metric from an evaluation's output as the config says; raise MetricNotFound.

    Linear in the output: lines are scanned from the last one back, and a regex is matched against one
    line at a time (`^` and `$` are the line's ends, as in MULTILINE), never against the whole output.
    """
    lines = stdout.splitlines()
    if parse.regex is not None:
        pattern = re.compile(parse.regex, re.MULTILINE)
        for line in reversed(lines):
            found = pattern.findall(line)
            if found:
                last = found[-1]
                return _number(last[0] if isinstance(last, tuple) else last)
        raise MetricNotFound(f"no line matched the regex {parse.regex!r}")
    if parse.json_key is not None:
        text = _result_text(result_file)
        if not text:
            text = next((line for line in reversed(lines) if line.strip()), "")
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
    for line in reversed(lines):
        if name in line:
            match = _NAME_VALUE.fullmatch(line)
            if match is not None and match.group(1) == name:
                return _number(match.group(2))
    raise MetricNotFound(f"no line `{name}: <number>` in the output")


def result_text_of(result_file: Path | None) -> str:
    """The result file's text (its other keys are numbers the guards read); raise MetricNotFound on a bad file."""
    return _result_text(result_file)


def _result_text(result_file: Path | None) -> str:
    """The result file's text, empty when there is none; the evaluation wrote it, so it is read untrusted."""
    if result_file is None:
        return ""
    try:
        return safefile.text_untrusted(result_file.parent, result_file.name, RESULT_BYTES).strip()
    except safefile.MissingFileError:
        return ""
    except safefile.UntrustedFileError as exc:
        raise MetricNotFound(f"the result file {exc.message}") from None


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

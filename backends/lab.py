"""autoresearch-lab's backend interface, so a lab's `backend.py` runs under arl-bot unchanged.

The names and shapes match `autoresearch_lab.harness.backend`: a lab writes

    from arl_bot.backends.lab import EvalBackend, EvalResult, SampleResult

(or keeps its `from autoresearch_lab.harness.backend import ...`: the runner answers that import with
this module when autoresearch-lab is not installed). `score` is the one number the loop tracks; the
loop's `metric.goal` says which way is better (autoresearch-lab itself always minimises).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SampleResult:
    """How one sample did."""

    sample_id: str
    score: float
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalResult:
    """What one evaluation returns: the score, other numbers to log, and per-sample results."""

    score: float
    metrics: dict[str, float] = field(default_factory=dict)
    sample_results: list[SampleResult] = field(default_factory=list)


class EvalBackend(ABC):
    """A lab's evaluation: run the pipeline in pipeline_dir against the data in data_dir."""

    @abstractmethod
    def evaluate(self, pipeline_dir: Path, data_dir: Path, sample_ids: list[str] | None = None) -> EvalResult:
        """Evaluate the pipeline; with sample_ids, only those samples (optional to honour)."""

    def setup(self) -> None:  # noqa: B027 -- optional hook, empty on purpose
        """Prepare once before evaluating (start a device, build a container)."""

    def teardown(self) -> None:  # noqa: B027 -- optional hook, empty on purpose
        """Clean up after evaluating."""

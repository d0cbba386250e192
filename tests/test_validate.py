"""Pre-run validation: a change that does not compile is invalid before any evaluation runs."""

from __future__ import annotations

from pathlib import Path

from tests.sandbox_lab import run_once, sandbox_lab


def test_python_that_does_not_compile_is_invalid_without_running(tmp_path: Path) -> None:
    broken = "def run(:\n    return 0.0\n"
    lab = sandbox_lab(tmp_path, broken, evaluate_extra="validate: [python]")
    attempt = run_once(lab).record.attempts[1]
    assert attempt.status == "invalid"
    assert attempt.reason.startswith("model/pipeline.py:1: does not compile")
    assert attempt.eval_log == "" and attempt.eval_s == 0.0


def test_without_validation_the_same_change_costs_an_evaluation(tmp_path: Path) -> None:
    attempt = run_once(sandbox_lab(tmp_path, "def run(:\n    return 0.0\n")).record.attempts[1]
    assert attempt.status == "crash"
    assert "SyntaxError" in attempt.eval_log
